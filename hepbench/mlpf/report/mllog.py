"""MLPerf-style `:::MLLOG` lines for a finished run, written with the `mlperf-logging` package.

The log is written from the report after the run, with each event's own timestamp (windows
carry their unix start/stop times), so that it can say how the run ended (`run_stop` status)
and is written atomically like every other result file. Windows are MLPerf epochs.
"""
from __future__ import annotations

import datetime
import io
import logging
from pathlib import Path

from mlperf_logging.mllog import constants as C
from mlperf_logging.mllog.mllog import MLLogger

from hepbench.core.files import atomic_open


def _ms(unix_seconds: float) -> int:
    return int(round(unix_seconds * 1000))


def _iso_ms(text: str) -> int:
    return _ms(datetime.datetime.fromisoformat(text).timestamp())


def mllog_lines(report: dict) -> str:
    """The whole log as text (one `:::MLLOG {...}` line per event)."""
    buffer = io.StringIO()
    logger = logging.getLogger(f"hepbench.mllog.{id(buffer)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(buffer)
    logger.addHandler(handler)
    try:
        _log(MLLogger(logger=logger, default_namespace=""), report)
    finally:
        logger.removeHandler(handler)
    return buffer.getvalue()


def _log(ml: MLLogger, report: dict) -> None:
    r = report["report"]
    start, stop = _iso_ms(r["timing"]["start"]), _iso_ms(r["timing"]["end"])
    cfg, bench = r["config"], r["benchmark"]
    copies = report["run_info"]["copies"]
    ml.event(C.SUBMISSION_BENCHMARK, "mlpf", time_ms=start)
    ml.event(C.SUBMISSION_PLATFORM, r["host"]["cpu_model"] if bench["device"] == "cpu"
             else ", ".join(g["name"] for g in r["host"]["gpus"]), time_ms=start)
    ml.event(C.SEED, cfg["train"]["seed"], time_ms=start)
    # Copies are independent trainings: the batch of one optimiser step is one copy's batch.
    ml.event(C.GLOBAL_BATCH_SIZE, cfg["data"]["batch_size"], time_ms=start)
    ml.event(C.OPT_BASE_LR, cfg["train"]["learning_rate"], time_ms=start)
    ml.event("number_of_copies", copies, time_ms=start)
    ml.event("accelerators_per_node", copies if bench["device"] == "gpu" else 0, time_ms=start)
    ml.start(C.RUN_START, time_ms=start)
    trained = 0
    for copy in r["copies"]:
        for w in copy["windows"]:
            meta = {C.EPOCH_NUM: w["window"], "copy": copy["copy"]}
            ml.start(C.EPOCH_START, time_ms=_ms(w["start_time"]), metadata=meta)
            ml.end(C.EPOCH_STOP, time_ms=_ms(w["stop_time"]),
                   metadata={**meta, "events_per_second": w["events_per_second"], "loss": w["loss"]})
            trained += w["events"]
    ml.event(C.TRAIN_SAMPLES, trained, time_ms=stop)
    if r["throughput"]["train"] is not None:
        ml.event("throughput", r["throughput"]["train"], time_ms=stop, metadata={"unit": "events/s"})
    status = C.SUCCESS if r["status"] == "ok" else C.ABORTED
    ml.end(C.RUN_STOP, time_ms=stop, metadata={C.STATUS: status, "log": r["log"]})


def write_mllog(report: dict, path: Path) -> Path:
    text = mllog_lines(report)
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)
