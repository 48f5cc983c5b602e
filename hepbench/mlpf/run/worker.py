"""A copy process: `python -m hepbench.mlpf.run.worker SPEC.json RESULT.json`.

Reads its CopySpec, runs the copy, writes {"entry", "context"} atomically to RESULT.json and exits
0 (ok), 1 (failed) or 128 + signal (stopped by SIGTERM/SIGINT).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from hepbench.core.files import write_json
from hepbench.mlpf.run.copy import CopySpec, failed_entry, run_copy
from hepbench.mlpf.run.signals import Interrupted, interruptible


def main(argv: list[str]) -> int:
    spec_path, result_path = map(Path, argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before run_copy starts TensorFlow
    spec = CopySpec.from_dict(json.loads(spec_path.read_text()))
    with interruptible():
        try:
            entry, context = run_copy(spec)
        except Interrupted as e:  # arrived after the copy's own handling: nothing more to report
            entry = failed_entry(spec, str(e))
            context = {"signal": e.signum}
        write_json(result_path, {"entry": entry, "context": context})
    if "signal" in context:
        return 128 + context["signal"]
    return 0 if entry["status"] == "ok" else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
