"""What `hepbench qsvr study` and `hepbench qsvr baker` do between parsing and printing.

Every check (options, data) happens before the first fit, and nothing is written before the
document has been validated: a bad option or a bad table leaves the results directory untouched.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from hepbench.qsvr.study_report import BAKER_PNG

BAKER_JSON = "qsvr_baker.json"


def _load(path):
    from hepbench.qsvr.curves import load_curves, study_features

    curves = load_curves(path)
    X, y = study_features(curves)
    return curves, X, y


def _baker(curves, seed: int, repeats: int | None = None, fractions=None, test_size=None) -> dict:
    """The Baker-style evaluation (hepbench.qsvr.baker) as a JSON-able dict; its defaults where None."""
    from hepbench.qsvr import baker

    given = {"repeats": repeats, "fractions": fractions, "test_size": test_size}
    return baker.evaluate(curves, seed=seed, **{k: v for k, v in given.items() if v is not None})


def run_study_command(args, qsvr: dict) -> tuple[dict[str, Path], str]:
    from hepbench.qsvr.study import Protocol, run_study, stderr_reporter
    from hepbench.qsvr.study_report import build_document, data_info, markdown, now, write_outputs
    from hepbench.core.hostinfo import command_line, host_info

    protocol = Protocol(svr_repeats=args.svr_repeats, qsvr_repeats=args.qsvr_repeats,
                        ensemble_repeats=args.ensemble_repeats, seed=args.seed, r2_convention=args.r2_convention,
                        sampler=args.sampler, qsvr=qsvr)
    curves, X, y = _load(args.data)
    protocol.check_data(len(y), curves.source)
    start, t0 = now(), time.perf_counter()
    run = run_study(X, y, protocol, source=curves.source, report=None if args.quiet else stderr_reporter())
    baker = None
    if args.baker:
        baker = _baker(curves, args.seed, None)
    timing = {"start": start, "end": now(), "wall_seconds": round(time.perf_counter() - t0, 3)}
    doc = build_document(run, protocol, data_info(curves, X, args.data), timing, command_line(), host_info([]), baker)
    return write_outputs(doc, args.resultsdir), markdown(doc)


def run_baker_command(args) -> list[Path]:
    from hepbench.qsvr.baker import plot_r2_vs_fraction
    from hepbench.qsvr.study_report import write_json

    curves, _, _ = _load(args.data)
    result = _baker(curves, args.seed, args.repeats, args.fractions, args.test_size)
    json.dumps(result, allow_nan=False)  # not JSON: fail before anything is written
    out = Path(args.resultsdir)
    png = plot_r2_vs_fraction(result, out / BAKER_PNG)
    write_json(out / BAKER_JSON, result)
    return [out / BAKER_JSON, png]
