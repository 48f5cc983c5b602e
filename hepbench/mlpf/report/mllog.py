"""MLPerf-style `:::MLLOG` lines for a finished run, written with the `mlperf-logging` package.

The log is written from the report after the run, with each event's own timestamp (windows
carry their unix start/stop times), so that it can say how the run ended (`run_stop` status)
and is written atomically like every other result file. Windows are MLPerf epochs. Each measured
energy counter gets MLPerf's power keys (mlperf_logging.mllog.constants: power_measurement_start,
one power_reading per window, in watts, and power_measurement_stop; docs/energy.md).
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
    ml.event(
        C.SUBMISSION_PLATFORM,
        r["host"]["cpu_model"] if bench["device"] == "cpu" else ", ".join(g["name"] for g in r["host"]["gpus"]),
        time_ms=start,
    )
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
            ml.end(
                C.EPOCH_STOP,
                time_ms=_ms(w["stop_time"]),
                metadata={**meta, "events_per_second": w["events_per_second"], "loss": w["loss"]},
            )
            trained += w["events"]
    _power(ml, r)
    ml.event(C.TRAIN_SAMPLES, trained, time_ms=stop)
    if r["throughput"]["train"] is not None:
        ml.event("throughput", r["throughput"]["train"], time_ms=stop, metadata={"unit": "events/s"})
    status = C.SUCCESS if r["status"] == "ok" else C.ABORTED
    ml.end(C.RUN_STOP, time_ms=stop, metadata={C.STATUS: status, "log": r["log"]})


def _power(ml: MLLogger, r: dict) -> None:
    """MLPerf's power keys for every measured counter, timed by the windows of the copy that read it."""
    for copy in r["copies"]:
        times = {w["window"]: (w["start_time"], w["stop_time"]) for w in copy["windows"]}
        for source in copy.get("energy_sources", []):
            windows = [w for w in source["windows"] if w["window"] in times]
            if source["status"] != "measured" or not windows:
                continue
            meta = {"source": source["name"], "kind": source["kind"], "domain": source["domain"], "copy": copy["copy"]}
            ml.event(
                C.POWER_MEASUREMENT_START, source["name"], time_ms=_ms(times[windows[0]["window"]][0]), metadata=meta
            )
            for w in windows:
                ml.event(
                    C.POWER_READING,
                    w["watts"],
                    time_ms=_ms(times[w["window"]][1]),
                    metadata={
                        **meta,
                        C.EPOCH_NUM: w["window"],
                        "joules": w["joules"],
                        "seconds": w["seconds"],
                        "unit": "W",
                    },
                )
            ml.event(
                C.POWER_MEASUREMENT_STOP, source["name"], time_ms=_ms(times[windows[-1]["window"]][1]), metadata=meta
            )
    energy = r.get("energy")
    if energy and energy["status"] == "measured" and energy["events_per_joule"] is not None:
        ml.event(
            "events_per_joule",
            energy["events_per_joule"],
            time_ms=_iso_ms(r["timing"]["end"]),
            metadata={"unit": "events/J", "joules": energy["joules"]},
        )


def write_mllog(report: dict, path: Path) -> Path:
    text = mllog_lines(report)
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)
