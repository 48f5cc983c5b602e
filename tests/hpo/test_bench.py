"""hpo-bmk (`hepbench hpo bench`) without a Ray cluster: its schema, the scores `measure` computes from
a finished search, the summary `build_summary` writes (ok and failed), and `run_bench`'s failure report."""

from __future__ import annotations

import copy
import json
import sys

import pytest

from hepbench.core.errors import HepbenchError
from hepbench.core.schema import ReportError, load_schema, schema_path, validate_report, validation_errors
from hepbench.hpo.bench import (
    DEFINITION,
    EPOCHS,
    SCHEMA,
    SUMMARY_FILE,
    TRAIN_EVENTS,
    WORKLOAD,
    BenchOptions,
    build_summary,
    measure,
    run_bench,
    score_line,
)
from hepbench.hpo.search import SearchResult
from hepbench.hpo.trials import TrialRecord

CONFIG = {
    "lr": 1.0e-3,
    "num_graph_layers_id": 2,
    "num_graph_layers_reg": 1,
    "dropout": 0.2,
    "bin_size": 16,
    "output_dim": 32,
    "weight_decay": 1.0e-4,
}
CLUSTER = {"nodes": ["a" * 56], "resources": {"CPU": 2.0}}
TIMING = {"start": "2026-11-27T09:00:00.000+00:00", "end": "2026-11-27T09:10:05.000+00:00", "wall_seconds": 605.0}


def trial(n: int, epochs: int, status: str, error: str | None = None, loss: float = 1.0) -> TrialRecord:
    return TrialRecord(
        trial_id=f"t{n}",
        config={**CONFIG, "lr": CONFIG["lr"] * (n + 1)},
        status=status,
        val_loss=[loss - 0.1 * e for e in range(epochs)],
        train_loss=[loss] * epochs,
        events_per_second=[10.0 * (n + 1)] * epochs,
        epoch_seconds=[0.8] * epochs,
        train_events=[TRAIN_EVENTS] * epochs,
        error=error,
    )


def options(tmp_path, **kw) -> BenchOptions:
    return BenchOptions(
        data_dir=tmp_path / "data",
        results_dir=tmp_path / "res",
        num_cpus=2,
        command=("hepbench", "hpo", "bench", "--trials", "3"),
        **kw,
    )


@pytest.fixture
def ok_summary(tmp_path) -> dict:
    trials = [trial(0, EPOCHS, "completed", loss=0.9), trial(1, 1, "stopped"), trial(2, 2, "stopped")]
    return build_summary(options(tmp_path, trials=3), measure(SearchResult(trials, 600.0, CLUSTER)), None, TIMING)


@pytest.fixture
def failed_summary(tmp_path) -> dict:
    return build_summary(options(tmp_path), None, "no trial finished an epoch: boom", TIMING)


# The schema (validity and descriptions: tests/test_schemas.py).


def test_schema_is_shipped_in_the_package_and_names_this_workload():
    path = schema_path(SCHEMA)
    assert path.is_file() and path.parent.name == "results_schema" and path.parent.parent.name == "hepbench"
    assert load_schema(SCHEMA)["$defs"]["app"]["properties"]["name"]["const"] == WORKLOAD


# measure: the scores of a finished search.


def test_scores_are_epochs_and_training_events_over_the_search_wall_time():
    trials = [trial(0, 3, "stopped"), trial(1, 1, "stopped"), trial(2, 2, "stopped")]
    m = measure(SearchResult(trials, 600.0, CLUSTER))
    assert m["wl-scores"]["trial_epochs_per_hour"] == pytest.approx(6 / (600 / 3600)) == pytest.approx(36)
    assert m["wl-scores"]["events_per_second"] == pytest.approx(6 * TRAIN_EVENTS / 600)
    assert m["wl-stats"]["epochs_per_trial"] == {
        "avg": 2.0,
        "median": 2.0,
        "min": 1.0,
        "max": 3.0,
        "count": 3,
        "std": pytest.approx((2 / 3) ** 0.5),
    }
    rates = m["wl-stats"]["epoch_events_per_second"]  # one per trial-epoch: 3 x 10, 1 x 20, 2 x 30
    assert (
        rates["count"] == 6
        and rates["min"] == 10.0
        and rates["max"] == 30.0
        and rates["avg"] == pytest.approx((3 * 10 + 20 + 2 * 30) / 6)
    )
    search = m["search"]
    assert (search["trials"], search["epochs"], search["seconds"]) == (3, 6, 600.0)
    assert search["counts"] == {"completed": 0, "stopped": 3, "error": 0}
    assert search["best_val_loss"] is None and search["best_config"] is None  # no trial completed
    assert search["cluster"] == CLUSTER


def test_the_best_is_the_completed_trial_with_the_lowest_final_loss():
    trials = [
        trial(0, EPOCHS, "completed", loss=0.9),
        trial(1, EPOCHS, "completed", loss=0.5),
        trial(2, 2, "stopped", loss=0.1),
        trial(3, 1, "error", error="boom"),
    ]
    search = measure(SearchResult(trials, 3600.0, CLUSTER))["search"]
    assert search["best_val_loss"] == pytest.approx(0.5 - 0.1 * (EPOCHS - 1))
    assert search["best_config"] == trials[1].config
    assert search["counts"] == {"completed": 2, "stopped": 1, "error": 1} and search["epochs"] == 2 * EPOCHS + 3


def test_epochs_without_a_rate_give_null_rate_statistics():
    t = trial(0, 2, "stopped")
    t.events_per_second = [None, None]
    m = measure(SearchResult([t], 60.0, CLUSTER))
    assert m["wl-stats"]["epoch_events_per_second"] is None
    assert m["wl-scores"]["trial_epochs_per_hour"] == pytest.approx(120)


@pytest.mark.parametrize(
    "errors, message",
    [
        (
            ["ValueError: boom", "OSError: bang", "ValueError: boom"],
            "no trial finished an epoch: OSError: bang; ValueError: boom",
        ),
        ([None, None], "no trial finished an epoch: no trial ran"),
    ],
)
def test_measure_refuses_a_search_without_a_finished_epoch(errors, message):
    trials = [trial(i, 0, "error" if e else "stopped", error=e) for i, e in enumerate(errors)]
    with pytest.raises(HepbenchError) as e:
        measure(SearchResult(trials, 30.0, CLUSTER))
    assert str(e.value) == message


# build_summary: the report, ok and failed.


def test_ok_summary_is_valid(ok_summary):
    validate_report(ok_summary, SCHEMA, source="test")
    r = ok_summary["report"]
    assert ok_summary["app"]["name"] == "hpo-bmk" and ok_summary["app"]["bmkdata_checksum"] is None  # no data there
    assert ok_summary["run_info"] == {"copies": 1, "threads_per_copy": 2, "events_per_thread": 3, "extra_arguments": ""}
    assert r["status"] == "ok" and r["log"] == "ok" and r["definition"] == DEFINITION
    assert r["wl-scores"]["trial_epochs_per_hour"] == pytest.approx((EPOCHS + 3) / (600 / 3600))
    assert r["search"]["best_config"]["lr"] == CONFIG["lr"] and r["protocol"]["trials"] == 3
    assert r["command"] == ["hepbench", "hpo", "bench", "--trials", "3"] and r["timing"] == TIMING
    json.dumps(ok_summary, allow_nan=False)  # what write_json needs
    assert score_line(ok_summary).startswith(
        f"hpo-bmk score: {r['wl-scores']['trial_epochs_per_hour']:.4g} trial-epochs/hour"
    )


def test_failed_summary_is_valid(failed_summary):
    validate_report(failed_summary, SCHEMA, source="test")
    r = failed_summary["report"]
    assert r["status"] == "failed" and r["log"] == "no trial finished an epoch: boom"
    assert r["wl-scores"] == {} and r["wl-stats"] == {} and "search" not in r
    assert score_line(failed_summary) == "hpo-bmk: FAILED: no trial finished an epoch: boom"


def _at(doc, path):
    for key in path[:-1]:
        doc = doc[key]
    return doc, path[-1]


def _set(path, value):
    def change(doc):
        node, key = _at(doc, path)
        node[key] = value

    return change


def _delete(path):
    def change(doc):
        node, key = _at(doc, path)
        del node[key]

    return change


OK = '(when report.status is "ok")'
OK_BREAKS = {
    "missing main score": (
        _delete(("report", "wl-scores", "trial_epochs_per_hour")),
        f"report.wl-scores: 'trial_epochs_per_hour' is a required property {OK}",
    ),
    "missing rate score": (
        _delete(("report", "wl-scores", "events_per_second")),
        f"report.wl-scores: 'events_per_second' is a required property {OK}",
    ),
    "score as a string": (
        _set(("report", "wl-scores", "events_per_second"), "fast"),
        "report.wl-scores.events_per_second: 'fast' is not of type 'number'",
    ),
    "zero score": (
        _set(("report", "wl-scores", "trial_epochs_per_hour"), 0),
        "report.wl-scores.trial_epochs_per_hour: 0 is less than or equal to the minimum of 0",
    ),
    "unknown score": (
        _set(("report", "wl-scores", "trials_per_hour"), 3.0),
        "report.wl-scores: Additional properties are not allowed ('trials_per_hour' was unexpected)",
    ),
    "wrong app name": (_set(("app", "name"), "qsvr-bmk"), "app.name: 'hpo-bmk' was expected"),
    "ok without search": (_delete(("report", "search")), f"report: 'search' is a required property {OK}"),
    "ok with another log": (_set(("report", "log"), "something"), f"report.log: 'ok' was expected {OK}"),
    "ok without stats": (
        _set(("report", "wl-stats"), {}),
        f"report.wl-stats: 'epoch_events_per_second' is a required property {OK}",
    ),
    "unknown count": (
        _set(("report", "search", "counts", "paused"), 1),
        "report.search.counts: Additional properties are not allowed ('paused' was unexpected)",
    ),
    "config missing a hyperparameter": (
        _delete(("report", "search", "best_config", "dropout")),
        "report.search.best_config: {",
    ),
    "fractional layers": (
        _set(("report", "search", "best_config", "num_graph_layers_id"), 1.5),
        "report.search.best_config: {",
    ),
    "node not a string": (
        _set(("report", "search", "cluster", "nodes"), [1]),
        "report.search.cluster.nodes[0]: 1 is not of type 'string'",
    ),
    "bad scheduler": (
        _set(("report", "protocol", "scheduler"), "pbt"),
        "report.protocol.scheduler: 'asha' was expected",
    ),
    "bad date": (
        _set(("report", "timing", "start"), "yesterday"),
        "report.timing.start: 'yesterday' is not a 'date-time'",
    ),
    "two copies": (_set(("run_info", "copies"), 2), "run_info.copies: 1 was expected"),
    "unknown top-level key": (
        _set(("extra",), 1),
        "(top level): Additional properties are not allowed ('extra' was unexpected)",
    ),
}


@pytest.mark.parametrize("case", sorted(OK_BREAKS))
def test_broken_ok_summary_is_rejected_naming_the_path(ok_summary, case):
    change, expected = OK_BREAKS[case]
    doc = copy.deepcopy(ok_summary)
    change(doc)
    lines = validation_errors(doc, SCHEMA)
    assert any(line.startswith(expected) for line in lines), lines
    with pytest.raises(ReportError, match="does not match hpo_summary.schema.json"):
        validate_report(doc, SCHEMA)


def test_nulls_where_a_search_has_no_best_or_no_rates(ok_summary):
    report = ok_summary["report"]
    report["search"]["best_config"] = report["search"]["best_val_loss"] = None
    report["wl-stats"]["epoch_events_per_second"] = None
    assert validation_errors(ok_summary, SCHEMA) == []
    report["wl-stats"]["epochs_per_trial"] = None
    assert validation_errors(ok_summary, SCHEMA) == ["report.wl-stats.epochs_per_trial: None is not of type 'object'"]


def test_failed_summary_rules(failed_summary):
    report = failed_summary["report"]
    report["wl-scores"] = {"trial_epochs_per_hour": 1.0}
    report["log"] = "ok"
    assert validation_errors(failed_summary, SCHEMA) == [
        "report.log: 'ok' should not be valid under {'const': 'ok'} (when report.status is \"failed\")",
        "report.wl-scores: {'trial_epochs_per_hour': 1.0} is expected to be empty (when report.status is \"failed\")",
    ]
    report["wl-scores"], report["log"] = {}, ""
    assert validation_errors(failed_summary, SCHEMA) == ["report.log: '' should be non-empty"]


# run_bench: a failure still leaves a report for HEPscore.


def test_run_bench_without_a_data_set_writes_a_failed_summary_before_starting_ray(tmp_path, monkeypatch):
    # require_built comes first in run_search: were it passed, `import ray` would fail here, not start Ray.
    monkeypatch.setitem(sys.modules, "ray", None)
    opts = options(tmp_path)
    summary, code = run_bench(opts)
    assert code != 0
    res = tmp_path / "res"
    assert sorted(p.name for p in res.iterdir()) == ["hpo_summary.json", "inputs.log", "version.json"]
    doc = json.loads((res / SUMMARY_FILE).read_text())
    assert doc == json.loads(json.dumps(summary))
    validate_report(doc, SCHEMA)
    report = doc["report"]
    assert report["status"] == "failed" and report["wl-scores"] == {}
    assert (
        str(opts.data_dir) in report["log"] and "no delphes_pf" in report["log"] and "ray" not in report["log"].lower()
    )
    assert json.loads((res / "version.json").read_text()) == doc["app"] and doc["app"]["bmkdata_checksum"] is None
    assert (res / "inputs.log").read_text() == "NCOPIES=1\nNTHREADS=2\nNEVENTS_THREAD=8\nEXTRA_ARGS=\n"
    assert report["timing"]["wall_seconds"] < 60
