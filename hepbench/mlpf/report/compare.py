"""`hepbench report compare`: summaries side by side, and what differs between them.

Works on every workload's summary (mlpf-bmk, qsvr-bmk, hpo-bmk) through the HEPscore envelope and
the fields each has. A workload's main score and its unit come from its JSON Schema (the first
property of `wl-scores`, the unit in its description's closing parentheses), so they are stated
once, there. The ratio's uncertainty adds the two scores' relative interval half-widths in
quadrature, a first-order approximation that holds while both are small (docs/reports.md).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from hepbench.core.schema import ReportError, load_report
from hepbench.core.terminal import Document, Styled, Table
from hepbench.mlpf.report.show import GIB, fixed, get, percent, sig

# Paths whose values must agree for scores to compare like for like, with the reason shown.
# qsvr-bmk's and hpo-bmk's protocol is their model configuration; how many fits are timed and how
# many CPUs a trial gets (the counterpart of threads per copy) are not.
LIKE_FOR_LIKE = (
    ("app.name", "different workloads"),
    ("app.bmkdata_checksum", "different data set checksum"),
    ("report.config.model", "different model config"),
    ("report.protocol", "different protocol"),
)
NOT_MODEL = (
    "report.protocol.fits",
    "report.protocol.warmup_fits",
    "report.protocol.svr_fits",
    "report.protocol.cpus_per_trial",
)
# Facts that differ between any two runs and explain nothing, or repeat another fact
# (run_info.backend is report.backend.name, benchmark.copies run_info's), left out of the
# differences; report.host.gpus is listed by name instead (facts()).
NOISE = (
    "app.description",
    "app.devices",
    "report.timing",
    "report.command",
    "report.definition",
    "report.log",
    "report.benchmark.data_dir",
    "run_info.backend",
    "report.benchmark.copies",
    "report.benchmark.threads_per_copy",
    "report.config.train.precision",
    "report.config.train.fp32_matmul",
    "report.config.train.jit_compile",
    "report.host.gpus",
)
MAX_PATHS = 5  # fields named in one not-like-for-like line (all are in the differences)
MAX_CELL = 60  # a long value (a list, a command) is cut so that the table stays readable


@functools.cache
def workload_scores() -> dict[str, tuple[str, str]]:
    """app.name -> (main score key, its unit), read from the packaged NAME_summary schemas."""
    out = {}
    for path in (resources.files("hepbench") / "results_schema").iterdir():
        if not path.name.partition(".")[0].endswith("_summary"):
            continue
        schema = json.loads(path.read_text(encoding="utf-8"))
        defs = schema.get("$defs", {})
        name = get(defs, "app", "properties", "name", "const")
        scores = get(defs, "report", "properties", "wl-scores", "properties") or {}
        if name and scores:
            key, spec = next(iter(scores.items()))
            unit = re.search(r"\(([^()]*)\)\.?\s*$", spec.get("description", ""))
            out[name] = (key, unit.group(1) if unit else "")
    return out


@dataclass
class Entry:
    """One report to compare: its label (a short, unique form of its path) and its fields."""

    path: Path
    label: str
    report: dict

    @property
    def workload(self) -> str:
        return str(get(self.report, "app", "name") or "?")

    @property
    def score_key(self) -> str:
        return workload_scores().get(self.workload, (next(iter(self.scores), "score"), ""))[0]

    @property
    def unit(self) -> str:
        return workload_scores().get(self.workload, ("", ""))[1]

    @property
    def scores(self) -> dict:
        scores = get(self.report, "report", "wl-scores")
        return scores if isinstance(scores, dict) else {}

    @property
    def score(self) -> float | None:
        value = self.scores.get(self.score_key)
        return value if _number(value) else None

    @property
    def ok(self) -> bool:
        return get(self.report, "report", "status") == "ok" and self.score is not None

    @property
    def interval(self) -> dict | None:
        ci = get(self.report, "report", "throughput", "confidence_interval")
        return ci if isinstance(ci, dict) and _number(ci.get("low")) and _number(ci.get("high")) else None

    @property
    def events_per_joule(self) -> float | None:
        for value in (self.scores.get("events_per_joule"), get(self.report, "report", "energy", "events_per_joule")):
            if _number(value):
                return value
        return None


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def labels(paths: list[Path]) -> list[str]:
    """The shortest trailing parts of each path that tell them apart; a file name shared by all is
    dropped ('t1/mlpf_summary.json', 't2/mlpf_summary.json' -> 't1', 't2')."""
    parts = [p.resolve().parts for p in paths]
    same_name = len({p[-1] for p in parts}) == 1 and len(parts) > 1 and all(len(p) > 1 for p in parts)
    tails = [p[:-1] if same_name else p for p in parts]
    for n in range(1, max(len(t) for t in tails) + 1):
        out = ["/".join(t[-n:]) for t in tails]
        if len(set(out)) == len(out):
            return out
    return [f"{p} ({i + 1})" for i, p in enumerate(paths)]  # a file given twice: numbered


def load_entries(paths: list[Path]) -> list[Entry]:
    """Read the reports; ReportError naming the file that is missing, not JSON or not a summary."""
    if len(paths) < 2:
        raise ReportError(f"report compare needs at least two report files, got {len(paths)}")
    reports = []
    for path in paths:
        report = load_report(path)
        if not isinstance(report.get("app"), dict) or not isinstance(report.get("report"), dict):
            raise ReportError(f"{path}: not a benchmark summary (no `app` and `report` objects at the top level)")
        reports.append(report)
    return [Entry(Path(p), label, r) for p, label, r in zip(paths, labels([Path(p) for p in paths]), reports)]


def _flatten(obj: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict) and obj:
        for key, value in obj.items():
            yield from _flatten(value, f"{prefix}.{key}")
    else:
        yield prefix, obj


HEX = re.compile(r"^[0-9a-f]{32,64}$")


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str) and HEX.match(value):
        return value[:12]  # as `report show` prints checksums: enough to tell them apart
    if isinstance(value, float):
        return f"{value:.6g}"  # a setting as it was written (0.1, 1e-05), not a measurement's digits
    if value == "":
        return "(empty)"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


# The facts that most often explain a difference, first and by name; every other fact by its path.
NAMES = {
    "report.status": "status",
    "app.version": "hepbench version",
    "report.backend.name": "backend",
    "report.backend.version": "backend version",
    "report.backend.compile": "train step",
    "report.precision": "precision",
    "report.fp32_matmul": "fp32 matmul",
    "report.jit_compile": "XLA",
    "report.benchmark.device": "device",
    "report.benchmark.strategy": "strategy",
    "run_info.copies": "copies (or ranks)",
    "run_info.threads_per_copy": "threads per copy",
    "report.config.data.batch_size": "batch size",
    "run_info.events_per_thread": "events per copy",
    "app.bmkdata_checksum": "data set checksum",
    "report.host.cpu_model": "CPU model",
    "report.host.gpus": "GPUs",
    "report.host.usable_cpus": "usable CPUs",
    "report.host.memory_bytes": "host memory GiB",
    "app.containment": "containment",
    "app.bmk_checksum": "code checksum",
}


def facts(entry: Entry) -> dict[str, str]:
    """How the run was done, as path -> text: the named facts first, then every leaf of the envelope's
    app, run_info and report sections (the measurements and the noise left out)."""
    r = entry.report
    rep = r["report"]
    measured = {"wl-scores", "wl-stats", "throughput", "copies", "fits", "r2", "search", "energy"}
    sections = [("app", r.get("app")), ("run_info", r.get("run_info"))]
    sections += [(f"report.{k}", v) for k, v in rep.items() if k not in measured]
    leaves = {
        path: _text(value)
        for prefix, section in sections
        for path, value in _flatten(section, prefix)
        if not any(path == n or path.startswith(n + ".") for n in NOISE)
    }
    gpus = [g.get("name", "?") for g in get(rep, "host", "gpus") or [] if isinstance(g, dict)]
    leaves["report.host.gpus"] = ", ".join(gpus) or "none"
    if "report.host.memory_bytes" in leaves:
        leaves["report.host.memory_bytes"] = fixed(get(rep, "host", "memory_bytes"), 1, GIB)
    return {**{p: leaves[p] for p in NAMES if p in leaves}, **leaves}


def fact_name(path: str) -> str:
    return NAMES.get(path, path)


def _like_for_like(entries: list[Entry], table: dict[str, list[str]]) -> list[str]:
    """Why the scores do not compare like for like: one line per reason, naming the paths."""
    problems = []
    for prefix, reason in LIKE_FOR_LIKE:
        paths = [
            p
            for p, values in table.items()
            if (p == prefix or p.startswith(prefix + ".")) and p not in NOT_MODEL and len(set(values)) > 1
        ]
        if paths:
            more = f" and {len(paths) - MAX_PATHS} more" if len(paths) > MAX_PATHS else ""
            problems.append(f"{reason}: " + ", ".join(paths[:MAX_PATHS]) + more)
    for e in entries:
        if not e.ok:
            why = get(e.report, "report", "log") or f"status {get(e.report, 'report', 'status')}"
            problems.append(f"{e.label} has no score: {why}")
    return problems


def _ratio(entry: Entry, first: Entry) -> tuple[float | None, float | None]:
    """(score / first score, its relative half-width in %) where both scores (and intervals) exist."""
    if not (entry.ok and first.ok) or not first.score:
        return None, None
    ratio = entry.score / first.score
    widths = [get(e.interval, "half_width_percent") for e in (entry, first)]
    if entry is first or not all(_number(w) for w in widths):
        return ratio, None
    return ratio, math.hypot(*widths)


OPTIONAL_COLUMNS = ("95 % interval", "± %", "ratio ± %", "beyond noise", "window CV %", "GFLOP/s", "MFU %")


def _score_table(entries: list[Entry]) -> Table:
    first = entries[0]
    others = sorted({k for e in entries for k in e.scores if k not in (e.score_key, "events_per_joule")})
    energy = any(e.events_per_joule is not None for e in entries)
    headers = [
        "report",
        f"{first.score_key} {first.unit}".strip(),
        "95 % interval",
        "± %",
        "ratio",
        "ratio ± %",
        "beyond noise",
        "window CV %",
        "GFLOP/s",
        "MFU %",
        *others,
    ] + (["events/J"] if energy else [])
    headers.append("status")
    rows = []
    for e in entries:
        ci, (ratio, spread) = e.interval, _ratio(e, first)
        beyond = "-"
        if ratio is not None and spread is not None:
            beyond = "yes" if abs(ratio - 1) * 100 > spread * ratio else "no"
        rows.append(
            [
                e.label,
                sig(e.score),
                f"{sig(ci['low'])} to {sig(ci['high'])}" if ci else "-",
                fixed(get(ci, "half_width_percent"), 1),
                fixed(ratio, 3),
                fixed(spread, 1),
                beyond,
                fixed(get(e.report, "report", "throughput", "window_cv_percent"), 1),
                fixed(get(e.report, "report", "throughput", "flops_per_second"), 1, 1e9),
                percent(get(e.report, "report", "throughput", "model_flops_utilisation", "value")),
                *(sig(e.scores.get(k)) for k in others),
            ]
            + ([sig(e.events_per_joule)] if energy else [])
            + [str(get(e.report, "report", "status") or "?")]
        )
    # Columns no report has a value for (the interval of qsvr-bmk and hpo-bmk) are left out.
    keep = [i for i, h in enumerate(headers) if h not in OPTIONAL_COLUMNS or any(r[i] != "-" for r in rows)]
    return Table([headers[i] for i in keep], [[r[i] for i in keep] for r in rows], left=1, indent=2)


def window_rates(entry: Entry) -> dict[int, float]:
    """Window (or timed fit) number -> rate: an mlpf window's events/s summed over the copies that ran
    it, a qsvr fit's 1/seconds; {} where the report has neither."""
    rates: dict[int, float] = {}
    for copy in get(entry.report, "report", "copies") or []:
        for w in get(copy, "windows") or []:
            if isinstance(w, dict) and isinstance(w.get("window"), int) and _number(w.get("events_per_second")):
                rates[w["window"]] = rates.get(w["window"], 0.0) + w["events_per_second"]
    for fit in get(entry.report, "report", "fits") or []:
        if (
            isinstance(fit, dict)
            and isinstance(fit.get("fit"), int)
            and _number(fit.get("seconds"))
            and fit["seconds"] > 0
        ):
            rates[fit["fit"] + 1] = 1.0 / fit["seconds"]  # fits count from 0, windows from 1
    return rates


def _window_table(entries: list[Entry]) -> list[str | Table]:
    rates = [window_rates(e) for e in entries]
    numbers = sorted({n for r in rates for n in r})
    if not numbers:
        return []
    several = any((get(e.report, "run_info", "copies") or 1) > 1 for e in entries)
    unit = entries[0].unit or "rate"
    kind = "fit" if any(get(e.report, "report", "fits") for e in entries) else "window"
    title = f"per-{kind} rates ({unit}{', summed over copies' if several else ''}):"
    rows = [[str(n)] + [sig(r.get(n)) for r in rates] for n in numbers]
    return ["", title, Table([kind] + [e.label for e in entries], rows, left=0, indent=2)]


def _energy_table(entries: list[Entry]) -> list[str | Table]:
    blocks = [get(e.report, "report", "energy") for e in entries]
    if not any(isinstance(b, dict) for b in blocks):
        return []
    rows = []
    for e, b in zip(entries, blocks):
        if not isinstance(b, dict):
            rows.append([e.label, "not recorded", "-", "-", "-", "-", "older report: no energy block"])
            continue
        sources = [s for s in b.get("sources") or [] if isinstance(s, dict)]
        measured = ", ".join(str(s.get("name")) for s in sources if s.get("status") == "measured")
        rows.append(
            [
                e.label,
                str(b.get("status") or "?"),
                sig(b.get("joules")),
                sig(b.get("seconds")),
                sig(b.get("mean_watts")),
                sig(b.get("events_per_joule")),
                measured or str(b.get("reason") or "-"),
            ]
        )
    headers = ["report", "energy", "joules", "seconds", "mean W", "events/J", "sources measured (or why none)"]
    return ["", "energy of the timed windows:", Table(headers, rows, left=2, indent=2)]


def compare(entries: list[Entry], every_fact: bool = False) -> tuple[Document, list[str]]:
    """The comparison as a document, and the reasons it is not like for like ([] if it is)."""
    per_entry = [facts(e) for e in entries]
    keys = list(dict.fromkeys(k for f in per_entry for k in f))
    table = {k: [f.get(k, "(absent)") for f in per_entry] for k in keys}
    problems = _like_for_like(entries, table)
    workloads = sorted({e.workload for e in entries})
    doc: list[str | Styled | Table] = [
        f"compare: {len(entries)} reports of {', '.join(workloads)}; ratios are to {entries[0].label}"
    ]
    doc += [Styled(f"NOT LIKE FOR LIKE: {p}", "bold red") for p in problems] or [
        "like for like: same workload, data set and model config"
    ]
    doc += ["", "scores:", _score_table(entries)]
    doc += _window_table(entries) + _energy_table(entries)
    shown = [k for k in keys if every_fact or len(set(table[k])) > 1]
    title = (
        f"all {len(keys)} facts:"
        if every_fact
        else f"differences ({len(shown)} of {len(keys)} facts; --all lists every one):"
    )
    doc += ["", title]
    doc += [
        Table(
            ["fact"] + [e.label for e in entries],
            [[fact_name(k), *table[k]] for k in shown],
            left=len(entries) + 1,
            indent=2,
        )
        if shown
        else "  none: the runs were set up identically"
    ]
    return doc, problems
