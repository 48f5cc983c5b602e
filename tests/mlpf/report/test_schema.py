"""The report schema: the examples pass, broken reports fail with a line naming the broken path."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

import hepbench.core.schema
from hepbench.core.errors import HepbenchError
from hepbench.core.schema import (
    SCHEMA_FILE,
    ReportError,
    json_path,
    load_report,
    load_schema,
    schema_path,
    validate_report,
    validation_errors,
)


def test_the_default_schema_is_the_mlpf_one_shipped_in_the_package():
    # Validity and descriptions: tests/test_schemas.py, for every schema.
    path = schema_path()
    assert path.name == SCHEMA_FILE and path.is_file()
    assert path.parent.name == "results_schema" and path.parent.parent.name == "hepbench"
    schema = load_schema()
    assert schema["$defs"]["app"]["properties"]["name"]["const"] == "mlpf-bmk"
    assert load_schema() is schema  # cached


@pytest.mark.parametrize("name", ["ok_2copies", "failed_nan"])
def test_example_reports_are_valid(example_report_file, name):
    report = load_report(example_report_file(name))
    assert validation_errors(report) == []
    validate_report(report)


def _set(path, value):
    def change(report):
        *parents, last = path
        node = report
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def _delete(path):
    def change(report):
        *parents, last = path
        node = report
        for key in parents:
            node = node[key]
        del node[last]

    return change


W0 = ("report", "copies", 0, "windows", 1)
OK_BREAKS = {
    "score as a string": (
        _set(("report", "wl-scores", "train"), "fast"),
        "report.wl-scores.train: 'fast' is not of type 'number'",
    ),
    "zero score": (
        _set(("report", "wl-scores", "train"), 0),
        "report.wl-scores.train: 0 is less than or equal to the minimum of 0",
    ),
    "no report": (_delete(("report",)), "(top level): 'report' is a required property"),
    "unknown top-level key": (
        _set(("extra",), 1),
        "(top level): Additional properties are not allowed ('extra' was unexpected)",
    ),
    "ok with another log": (
        _set(("report", "log"), "something"),
        "report.log: 'ok' was expected (when report.status is \"ok\")",
    ),
    "ok without score": (
        _set(("report", "wl-scores"), {}),
        "report.wl-scores: 'train' is a required property (when report.status is \"ok\")",
    ),
    "ok without stats": (_set(("report", "wl-stats"), {}), "report.wl-stats: 'avg' is a required property"),
    "ok with null throughput": (
        _set(("report", "throughput", "train"), None),
        "report.throughput.train: None is not of type 'number' (when report.status is \"ok\")",
    ),
    "negative window events": (
        _set(W0 + ("events",), -3),
        "report.copies[0].windows[1].events: -3 is less than the minimum of 0",
    ),
    "fractional window events": (
        _set(W0 + ("events",), 2.5),
        "report.copies[0].windows[1].events: 2.5 is not of type 'integer'",
    ),
    "unknown key in a copy": (
        _set(("report", "copies", 1, "speed"), 3),
        "report.copies[1]: Additional properties are not allowed ('speed' was unexpected)",
    ),
    "bad checksum": (_set(("app", "bmk_checksum"), "3F1C-not-hex"), "app.bmk_checksum: '3F1C-not-hex' does not match"),
    "bad data checksum": (
        _set(("report", "dataset", "checksum"), "abc"),
        "report.dataset.checksum: 'abc' does not match",
    ),
    "bad status": (_set(("report", "status"), "done"), "report.status: 'done' is not one of ['ok', 'failed']"),
    "bad precision": (_set(("report", "precision"), "fp8"), "report.precision: 'fp8' is not one of"),
    "no copies": (_set(("report", "copies"), []), "report.copies: [] should be non-empty"),
    "bad containment": (_set(("app", "containment"), "lxc"), "app.containment: 'lxc' is not one of"),
    "wrong app name": (_set(("app", "name"), "mlpf"), "app.name: 'mlpf-bmk' was expected"),
    "zero copies": (_set(("run_info", "copies"), 0), "run_info.copies: 0 is less than the minimum of 1"),
    "bad date": (
        _set(("report", "timing", "start"), "yesterday"),
        "report.timing.start: 'yesterday' is not a 'date-time'",
    ),
    "date without offset": (
        _set(("report", "timing", "end"), "2026-11-27T02:35:21"),
        "report.timing.end: '2026-11-27T02:35:21' is not a 'date-time'",
    ),
    "impossible date": (
        _set(("report", "timing", "end"), "2026-13-27T02:35:21Z"),
        "report.timing.end: '2026-13-27T02:35:21Z' is not a 'date-time'",
    ),
    "stats count zero": (
        _set(("report", "wl-stats", "count"), 0),
        "report.wl-stats.count: 0 is less than the minimum of 1",
    ),
    "command not strings": (
        _set(("report", "command"), ["hepbench", 3]),
        "report.command[1]: 3 is not of type 'string'",
    ),
    "software number": (
        _set(("report", "software", "numpy"), 2.0),
        "report.software.numpy: 2.0 is not of type 'string', 'null'",
    ),
    "config without bench": (_delete(("report", "config", "bench")), "report.config: 'bench' is a required property"),
    "ok without parameter counts": (
        _set(("report", "model", "trainable_parameters"), None),
        "report.model.trainable_parameters: None is not of type 'integer' (when report.status is \"ok\")",
    ),
    "ok without an interval field": (
        _delete(("report", "throughput", "confidence_interval")),
        "report.throughput: 'confidence_interval' is a required property",
    ),
    "interval without method": (
        _delete(("report", "throughput", "confidence_interval", "method")),
        "report.throughput.confidence_interval: 'method' is a required property",
    ),
    "interval level in per cent": (
        _set(("report", "throughput", "confidence_interval", "level"), 95),
        "report.throughput.confidence_interval.level: 95 is greater than or equal to the maximum of 1",
    ),
    "real fraction above 1": (
        _set(("report", "throughput", "real_element_fraction"), 1.3),
        "report.throughput.real_element_fraction: 1.3 is greater than the maximum of 1",
    ),
    "warm shape of three numbers": (
        _set(("report", "copies", 0, "warmup", "shapes"), [[2, 6400, 1]]),
        "report.copies[0].warmup.shapes[0]: [2, 6400, 1] is too long",
    ),
    "warm shape of zero events": (
        _set(("report", "copies", 0, "warmup", "shapes"), [[0, 6400]]),
        "report.copies[0].warmup.shapes[0][0]: 0 is less than the minimum of 1",
    ),
    "gpu without index type": (
        _set(("report", "host", "gpus"), [{"name": "H100", "memory_bytes": None}]),
        "report.host.gpus[0]: 'index' is a required property",
    ),
}


@pytest.mark.parametrize("case", sorted(OK_BREAKS))
def test_broken_ok_report_names_the_path(ok_report, case):
    change, expected = OK_BREAKS[case]
    change(ok_report)
    lines = validation_errors(ok_report)
    assert any(line.startswith(expected) for line in lines), lines
    with pytest.raises(ReportError) as e:
        validate_report(ok_report, source="x.json")
    assert str(e.value).startswith(f"x.json does not match {SCHEMA_FILE}:\n  ")
    assert expected in str(e.value)


def test_failed_report_rules(failed_report):
    failed_report["report"]["wl-scores"] = {"train": 1.0}
    failed_report["report"]["log"] = "ok"
    assert validation_errors(failed_report) == [
        "report.log: 'ok' should not be valid under {'const': 'ok'} (when report.status is \"failed\")",
        "report.wl-scores: {'train': 1.0} is expected to be empty (when report.status is \"failed\")",
    ]


def test_nulls_allowed_only_where_the_format_allows_them(failed_report):
    copy0 = failed_report["report"]["copies"][0]
    copy0["compile_seconds"] = None
    copy0["warmup"] = None
    copy0["windows"] = []
    copy0["wall_seconds"] = None  # a Horovod rank that never reported
    failed_report["report"]["model"]["trainable_parameters"] = None  # failed before the model was built
    failed_report["report"]["model"]["non_trainable_parameters"] = None
    assert validation_errors(failed_report) == []
    copy0["windows"] = None
    copy0["threads"] = None
    assert validation_errors(failed_report) == [
        "report.copies[0].threads: None is not of type 'integer'",
        "report.copies[0].windows: None is not of type 'array'",
    ]


def test_errors_are_sorted_by_path_with_numeric_indices(ok_report):
    windows = ok_report["report"]["copies"][0]["windows"]
    windows.extend(json.loads(json.dumps(windows[0])) for _ in range(9))  # 12 windows
    for w in windows:
        w["events"] = -1
    ok_report["app"]["version"] = ""
    lines = validation_errors(ok_report)
    assert lines[0].startswith("app.version:")
    indices = [int(line.split("windows[")[1].split("]")[0]) for line in lines[1:]]
    assert indices == list(range(12))


def test_validate_report_lists_at_most_20_lines(ok_report):
    windows = ok_report["report"]["copies"][0]["windows"]
    windows.extend(json.loads(json.dumps(windows[0])) for _ in range(22))  # 25 windows
    for w in windows:
        w["seconds"] = -1.0
    with pytest.raises(ReportError) as e:
        validate_report(ok_report)
    lines = str(e.value).splitlines()
    assert lines[0] == f"report does not match {SCHEMA_FILE}:"
    assert len(lines) == 22 and lines[-1] == "  ... and 5 more"
    assert isinstance(e.value, HepbenchError) and e.value.exit_code == 1


def test_the_validator_is_built_once_per_schema(ok_report, monkeypatch):
    # What keeps validating every report before writing it cheap: counted, not timed on a shared machine.
    builds = []

    class Counting:
        FORMAT_CHECKER = Draft202012Validator.FORMAT_CHECKER

        def __new__(cls, schema, **kwargs):
            builds.append(schema["title"])
            return Draft202012Validator(schema, **kwargs)

    monkeypatch.setattr(hepbench.core.schema, "Draft202012Validator", Counting)
    hepbench.core.schema._validator.cache_clear()
    for _ in range(20):
        assert validation_errors(ok_report) == []
    validate_report(ok_report)
    assert builds == [load_schema()["title"]]


def test_json_path():
    assert json_path([]) == "(top level)"
    assert json_path(["report", "copies", 3, "windows", 0, "loss"]) == "report.copies[3].windows[0].loss"


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ('{"app": {}, ', "not valid JSON (line 1, column 13: Expecting property name"),
        ('{\n  "a": 1,\n  "b": tru\n}', "not valid JSON (line 3, column 8"),
        ("[1, 2]", "expected a JSON object at the top level, got array"),
        ('"text"', "expected a JSON object at the top level, got string"),
        ('{"a": NaN}', "not valid JSON (NaN is not a JSON number)"),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_load_report_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "summary.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ReportError) as e:
        load_report(path)
    assert str(e.value).startswith(f"{path}: ")
    assert message in str(e.value)


def test_load_report_directory(tmp_path):
    with pytest.raises(ReportError, match="is a directory"):
        load_report(tmp_path)
