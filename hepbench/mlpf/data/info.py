"""`hepbench data info`: what a data set holds, and its checksum (`bmkdata_checksum`).

A directory of event files: the checksum of those files. A built data set: its files verified
against the checksums recorded when it was built (integrity.verify), whose combined digest is the
checksum a run reports; the event files it was built from keep theirs as `source_checksum`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hepbench.core.errors import DataFormatError
from hepbench.core.terminal import Document, Table, plain_text
from hepbench.mlpf.data.built import require_built
from hepbench.mlpf.data.delphes import Event, read_file
from hepbench.mlpf.data.format import ElementType, ParticleClass, XCol, YCol
from hepbench.mlpf.data.integrity import verify
from hepbench.mlpf.data.sources import list_sources, source_checksum


class EventStatistics:
    """Streaming element-count statistics, element types and class fractions of events."""

    def __init__(self) -> None:
        self.counts: list[int] = []
        self.types = np.zeros(len(ElementType), np.int64)
        self.gen = np.zeros(len(ParticleClass), np.int64)
        self.cand = np.zeros(len(ParticleClass), np.int64)

    def add(self, e: Event) -> None:
        self.counts.append(e.num_elements)
        self.types += np.bincount(e.X[:, XCol.TYPE].astype(np.int64), minlength=len(ElementType))
        self.gen += np.bincount(e.ygen[:, YCol.TYPE].astype(np.int64), minlength=len(ParticleClass))
        self.cand += np.bincount(e.ycand[:, YCol.TYPE].astype(np.int64), minlength=len(ParticleClass))

    def result(self) -> dict:
        if not self.counts:
            raise DataFormatError("the data set holds no events")
        n = np.array(self.counts)
        total = max(int(n.sum()), 1)
        return {
            "events": len(n),
            "elements": {
                "total": int(n.sum()),
                "mean": float(n.mean()),
                "std": float(n.std()),
                "min": int(n.min()),
                "median": float(np.median(n)),
                "max": int(n.max()),
            },
            "element_types": {t.name.lower(): int(self.types[t]) for t in ElementType if t != ElementType.PADDING},
            "ygen_class_fractions": {c.name.lower(): float(self.gen[c] / total) for c in ParticleClass},
            "ycand_class_fractions": {c.name.lower(): float(self.cand[c] / total) for c in ParticleClass},
        }


def summarize(directory: str | os.PathLike) -> dict:
    """Describe a data set: a directory of .pkl.bz2 files (read, so validated) or a TFDS data dir."""
    directory = Path(directory)
    if (directory / "delphes_pf").is_dir():
        return _summarize_built(directory)
    sources = list_sources(directory)
    per_split: dict[str, dict] = {}
    stats = EventStatistics()
    for split, paths in sources.splits.items():
        entry = per_split[split] = {"files": len(paths), "events": 0}
        for path in paths:
            for event in read_file(path):
                stats.add(event)
                entry["events"] += 1
    return {
        "directory": str(directory.resolve()),
        "kind": "source files",
        "synthetic": sources.synthetic,
        "splits": per_split,
        "checksum": source_checksum(sources.files),
        **stats.result(),
    }


def _summarize_built(directory: Path) -> dict:
    """The same description of a built data set, verified first: its checksum is the verified
    combined digest, its source files' checksum is `source_checksum`."""
    # Here: TFDS only for a built data set, never for `hepbench --help` or a .pkl.bz2 directory.
    from hepbench.mlpf.data.records import open_builder, open_split

    checksum = verify(require_built(directory))  # before TFDS reads a file that may be damaged
    builder = open_builder(directory)
    meta = builder.info.metadata
    stats = EventStatistics()
    per_split: dict[str, dict] = {}
    for split in sorted(builder.info.splits):
        files = [f for f in meta["source_files"] if f["split"] == split]
        per_split[split] = {"files": len(files), "events": builder.info.splits[split].num_examples}
        for ex in open_split(builder, split):
            stats.add(Event(ex["X"], ex["ygen"], ex["ycand"]))
    return {
        "directory": str(directory.resolve()),
        "kind": f"TFDS {builder.info.full_name}",
        "synthetic": bool(meta["synthetic"]),
        "splits": per_split,
        "checksum": checksum,
        "source_checksum": meta["source_checksum"],
        **stats.result(),
    }


def summary_document(s: dict) -> Document:
    """The description as a two-column grid of labels and values (one space after the longest label)."""
    e = s["elements"]
    origin = "synthetic (hepbench data synth)" if s["synthetic"] else "published (Zenodo 4559324)"
    n_types = sum(s["element_types"].values())
    rows = [
        ("data set", s["directory"]),
        ("origin", origin),
        ("kind", s["kind"]),
        (
            "events",
            f"{s['events']}  ("
            + ", ".join(f"{split}: {v['events']} in {v['files']} files" for split, v in s["splits"].items())
            + ")",
        ),
        (
            "elements/evt",
            f"mean {e['mean']:.1f}  std {e['std']:.1f}  min {e['min']}  median {e['median']:.0f}  max {e['max']}",
        ),
        (
            "element types",
            "  ".join(f"{k} {v} ({100 * v / max(n_types, 1):.1f} %)" for k, v in s["element_types"].items()),
        ),
        ("ygen classes", "  ".join(f"{k} {100 * v:.2f} %" for k, v in s["ygen_class_fractions"].items())),
        ("ycand classes", "  ".join(f"{k} {100 * v:.2f} %" for k, v in s["ycand_class_fractions"].items())),
        ("checksum", f"sha256:{s['checksum']}"),
    ]
    if "source_checksum" in s:  # a built data set: also that of the event files it was built from
        rows.append(("source files", f"sha256:{s['source_checksum']}"))
    return [Table(("", ""), rows, left=2, header=False, gap=1, styles={0: "bold"})]


def format_summary(s: dict) -> str:
    """The description as plain text (what `data info` prints when not on a terminal)."""
    return plain_text(summary_document(s))
