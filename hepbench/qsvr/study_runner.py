"""What `hepbench qsvr study` and `hepbench qsvr baker` do between parsing and printing.

Every check (options, data) happens before the first fit, and nothing is written before the
document has been validated: a bad option or a bad table leaves the results directory untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

from hepbench.core.files import write_json
from hepbench.core.hostinfo import command_line, host_info
from hepbench.core.timestamps import Stopwatch
from hepbench.qsvr import baker
from hepbench.qsvr.curves import load_curves, study_features
from hepbench.qsvr.study import Protocol, run_study, stderr_reporter
from hepbench.qsvr.study_report import BAKER_PNG, DOCUMENT_INDENT, build_document, data_info, markdown, write_outputs

BAKER_JSON = "qsvr_baker.json"


def _load(path):
    curves = load_curves(path)
    X, y = study_features(curves)
    return curves, X, y


def _baker(curves, seed: int, repeats: int | None = None, fractions=None, test_size=None) -> dict:
    """The Baker-style evaluation (hepbench.qsvr.baker) as a JSON-able dict; its defaults where None."""
    given = {"repeats": repeats, "fractions": fractions, "test_size": test_size}
    return baker.evaluate(curves, seed=seed, **{k: v for k, v in given.items() if v is not None})


def run_study_command(args, qsvr: dict) -> tuple[dict[str, Path], str]:
    protocol = Protocol(
        svr_repeats=args.svr_repeats,
        qsvr_repeats=args.qsvr_repeats,
        ensemble_repeats=args.ensemble_repeats,
        seed=args.seed,
        r2_convention=args.r2_convention,
        sampler=args.sampler,
        qsvr=qsvr,
    )
    curves, X, y = _load(args.data)
    protocol.check_data(len(y), curves.source)
    watch = Stopwatch()
    run = run_study(X, y, protocol, source=curves.source, report=None if args.quiet else stderr_reporter())
    baker_result = _baker(curves, args.seed, None) if args.baker else None
    doc = build_document(
        run,
        protocol,
        data_info(curves, X, args.data),
        watch.timing(ndigits=3),
        command_line(),
        host_info([]),
        baker_result,
    )
    return write_outputs(doc, args.resultsdir), markdown(doc)


def run_baker_command(args) -> list[Path]:
    curves, _, _ = _load(args.data)
    result = _baker(curves, args.seed, args.repeats, args.fractions, args.test_size)
    json.dumps(result, allow_nan=False)  # not JSON: fail before anything is written
    out = Path(args.resultsdir)
    png = baker.plot_r2_vs_fraction(result, out / BAKER_PNG)
    write_json(out / BAKER_JSON, result, indent=DOCUMENT_INDENT)
    return [out / BAKER_JSON, png]
