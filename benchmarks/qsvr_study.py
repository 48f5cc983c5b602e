#!/usr/bin/env python
"""The full default study protocol on the shipped table, timed, with every table printed:
SVR x1000, Sim-QSVR x100 (7 rules pooled), QSVR ensemble x10; both scaling variants (published,
leak-free) and both R² argument orders (correct, swapped), the published rows beside them.

    python benchmarks/qsvr_study.py [--seed 0] [--out DIR] [--svr-repeats N] [--qsvr-repeats N] [--ensemble-repeats N]

The same numbers as `hepbench qsvr study` (which writes qsvr_study.json/.md/.png); this script
also checks the acceptance bounds of the issue (published scaling) and prints PASS/FAIL for each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hepbench.core.hostinfo import command_line, host_info
from hepbench.core.timestamps import now_iso
from hepbench.qsvr.curves import load_curves, study_features
from hepbench.qsvr.study import MODELS, VARIANTS, Protocol, run_study, stderr_reporter
from hepbench.qsvr.study_report import PUBLISHED, build_document, data_info, model_label, published_key, write_outputs

# (variant, convention, model, statistic, comparison, bound)
ACCEPTANCE = (
    ("published", "swapped", "svr", "mean", "within 0.02 of", 0.889),
    ("published", "correct", "svr", "mean", ">=", 0.87),
    ("published", "correct", "qsvr", "mean", ">=", 0.88),
    ("published", "correct", "qsvr_ensemble", "std", "<=", 0.03),
    ("published", "correct", "qsvr_ensemble", "worst", ">=", 0.80),
)


def check(value: float, comparison: str, bound: float) -> bool:
    return {"within 0.02 of": abs(value - bound) <= 0.02, ">=": value >= bound, "<=": value <= bound}[comparison]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--svr-repeats", type=int, default=1000)
    parser.add_argument("--qsvr-repeats", type=int, default=100)
    parser.add_argument("--ensemble-repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="where the study's JSON/markdown/PNG go")
    args = parser.parse_args()
    protocol = Protocol(
        svr_repeats=args.svr_repeats,
        qsvr_repeats=args.qsvr_repeats,
        ensemble_repeats=args.ensemble_repeats,
        seed=args.seed,
    )
    curves = load_curves()
    X, y = study_features(curves)
    start, t0 = now_iso(), time.perf_counter()
    run = run_study(X, y, protocol, curves.source, report=stderr_reporter())
    wall = time.perf_counter() - t0
    doc = build_document(
        run,
        protocol,
        data_info(curves, X, None),
        {"start": start, "end": now_iso(), "wall_seconds": wall},
        command_line(),
        host_info([]),
    )
    out = args.out or Path(tempfile.mkdtemp(prefix="hepbench-qsvr-study-"))
    write_outputs(doc, out)

    print(f"{'scaling':<10} {'R²':<8} {'model':<32} {'best':>6} {'worst':>6} {'mean':>6} {'std':>6} {'n':>5}")
    for variant in VARIANTS:
        for convention in ("correct", "swapped"):
            for model in MODELS:
                s = doc["results"][variant][convention][model]["stats"]
                print(
                    f"{variant:<10} {convention:<8} {model_label(model, 'simulated'):<32} {s['best']:6.3f} "
                    f"{s['worst']:6.3f} {s['mean']:6.3f} {s['std']:6.3f} {s['trainings']:5d}"
                )
    for model in MODELS:
        p = PUBLISHED[published_key(model, "simulated")]
        print(
            f"{'(paper)':<10} {'swapped':<8} {p['label']:<32} {p['best']:6.3f} {p['worst']:6.3f} {p['mean']:6.3f} "
            f"{p['std']:6.3f} {p['trainings']:5d}"
        )
    print(
        f"wall time {wall:.0f} s ("
        + ", ".join(f"{m} {s:.0f} s" for m, s in run["seconds"].items())
        + f"); files in {out}"
    )
    failed = 0
    for variant, convention, model, stat, comparison, bound in ACCEPTANCE:
        value = doc["results"][variant][convention][model]["stats"][stat]
        ok = check(value, comparison, bound)
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'}: {variant}/{convention} {model} {stat} {value:.3f} {comparison} {bound}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
