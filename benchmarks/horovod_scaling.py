#!/usr/bin/env python
"""Horovod weak scaling on this machine: the same per-rank workload at 1, 2, ... ranks (Gloo,
localhost, 1 thread per rank), printing events/s per rank and the scaling efficiency

    efficiency(n) = train(n) / (n * train(1))

    python benchmarks/horovod_scaling.py DATA_DIR [--ranks 1,2] [--events 8] [--windows 2] [-- MORE RUN OPTIONS]

Each size is a full `hepbench run --strategy horovod` under horovodrun; the reports stay in
--out (default: a temporary directory).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent


def run(n: int, args, extra: list[str], out: Path) -> dict:
    results = out / f"ranks{n}"
    cmd = [str(BIN / "horovodrun"), "-np", str(n), "--gloo", "-H", f"localhost:{n}", str(BIN / "hepbench"), "run",
           "--strategy", "horovod", "--data-dir", args.data_dir, "-w", str(results), "--threads", "1",
           "--events", str(args.events), "--windows", str(args.windows), "--quiet", *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads((results / "mlpf_summary.json").read_text())


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir")
    parser.add_argument("--ranks", default="1,2")
    parser.add_argument("--events", type=int, default=8, help="training events per rank and window")
    parser.add_argument("--windows", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="hepbench-scaling-"))

    rows, base = [], None
    for n in (int(r) for r in args.ranks.split(",")):
        report = run(n, args, extra, out)
        train = report["report"]["wl-scores"]["train"]
        per_rank = [c["train"]["events_per_second"] for c in report["report"]["copies"]]
        base = base if base is not None else train / n
        rows.append((n, train, train / n, min(per_rank), max(per_rank), train / (n * base)))
    print(f"{'ranks':>5} {'train events/s':>15} {'per rank':>9} {'min':>8} {'max':>8} {'efficiency':>10}")
    for n, train, mean, low, high, eff in rows:
        print(f"{n:>5} {train:>15.4g} {mean:>9.4g} {low:>8.4g} {high:>8.4g} {eff:>10.1%}")
    print(f"reports: {out}")


if __name__ == "__main__":
    main()
