"""`hepbench data ...`: generate, fetch, build, verify and describe the Delphes data set."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hepbench.core.cliargs import non_negative_int, positive_int
from hepbench.core.progress import Progress
from hepbench.core.terminal import emit
from hepbench.mlpf.data import fetch, info, integrity
from hepbench.mlpf.data.built import DATA_DIR_ENV, DEFAULT_DATA_DIR, default_data_dir, require_built
from hepbench.mlpf.data.format import PROCESSES
from hepbench.mlpf.data.synth import synthesize


def register(groups) -> None:
    data = groups.add_parser("data", help="generate, fetch, build, verify and describe the Delphes data set")
    commands = data.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("synth", help="generate events in the published format (offline, deterministic)")
    p.add_argument("--process", choices=PROCESSES, required=True, help="hard process: ttbar (train) or qcd (test)")
    p.add_argument("--events", type=positive_int, required=True, help="number of events (files of 100)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--out", type=Path, required=True, help="directory for the .pkl.bz2 files")
    p.add_argument("--jobs", type=positive_int, default=1, help="parallel processes (same bytes for any value)")
    p.set_defaults(func=_synth)

    p = commands.add_parser("fetch", help="download published files from Zenodo record 4559324")
    p.add_argument("--files", type=non_negative_int, default=20, help="ttbar (train) files, 100 events each")
    p.add_argument("--qcd-files", type=non_negative_int, default=2, help="QCD (test) files, 100 events each")
    p.add_argument("--out", type=Path, required=True, help="directory for the .pkl.bz2 files")
    p.add_argument("--record-url", default=None, help="record metadata URL (default: Zenodo's API)")
    p.add_argument("--retries", type=non_negative_int, default=4, help="retries per file (default 4)")
    p.set_defaults(func=_fetch)

    p = commands.add_parser("build", help="build the TFDS data set delphes_pf from .pkl.bz2 files")
    p.add_argument("--manual-dir", type=Path, required=True, help="directory with the .pkl.bz2 files")
    p.add_argument("--data-dir", type=Path, required=True, help="TFDS data directory to write")
    p.set_defaults(func=_build)

    p = commands.add_parser("verify", help="check every file of a built data set against its recorded checksums")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"built delphes_pf data set (default: ${DATA_DIR_ENV} or {DEFAULT_DATA_DIR})",
    )
    p.set_defaults(func=_verify)

    p = commands.add_parser("info", help="events, element statistics, class fractions and checksum")
    p.add_argument("directory", type=Path, help="directory of .pkl.bz2 files, or a TFDS data directory")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=_info)


def _synth(args: argparse.Namespace) -> int:
    bar = Progress(args.events, f"synth {args.process}", unit="events")

    def advance(path: Path, events: int) -> None:
        bar.update(bar.done + events, path.name)

    paths = synthesize(args.process, args.events, args.seed, args.out, jobs=args.jobs, progress=advance)
    rate = args.events / max(bar.elapsed, 1e-9)
    print(
        f"wrote {args.events} {args.process} events in {len(paths)} file{'s' * (len(paths) != 1)} to {args.out} "
        f"({rate:.1f} events/s)"
    )
    return 0


def _fetch(args: argparse.Namespace) -> int:
    kwargs = {"record_url": args.record_url} if args.record_url else {}
    paths = fetch.fetch(
        args.out,
        args.files,
        args.qcd_files,
        retries=args.retries,
        progress=lambda msg: print(msg, file=sys.stderr),
        **kwargs,
    )
    print(f"{len(paths)} files ready in {args.out}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from hepbench.mlpf.data import tfds_builder  # here: TensorFlow Datasets, which `hepbench --help` does not need

    builder = tfds_builder.build(args.manual_dir, args.data_dir)
    splits = ", ".join(f"{name}: {split.num_examples} events" for name, split in builder.info.splits.items())
    print(f"built {builder.info.full_name} in {args.data_dir} ({splits})")
    return 0


def _verify(args: argparse.Namespace) -> int:
    where = require_built(args.data_dir or default_data_dir())
    start = time.perf_counter()
    digest = integrity.verify(where)  # a DataIntegrityError names the file: exit 1
    seconds = time.perf_counter() - start
    manifest = integrity.read_manifest(where)
    mb = manifest.total_bytes / 1e6
    print(
        f"OK {where}: {len(manifest.files)} files, {mb:.1f} MB in {seconds:.2f} s "
        f"({mb / max(seconds, 1e-9):.0f} MB/s); checksum sha256:{digest}"
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    summary = info.summarize(args.directory)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        emit(info.summary_document(summary))
    return 0
