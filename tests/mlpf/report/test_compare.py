"""`hepbench report compare`: scores, ratios, window rates, energy, differences and like-for-like flags."""

from __future__ import annotations

import argparse
import json

import pytest

from hepbench.core.schema import ReportError
from hepbench.core.terminal import Table, plain_text
from hepbench.mlpf.report import cli as report_cli
from hepbench.mlpf.report.compare import Entry, compare, labels, load_entries, window_rates, workload_scores


def run(*argv) -> int:
    parser = argparse.ArgumentParser(prog="hepbench")
    report_cli.register(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(list(map(str, argv)))
    return args.func(args)


def write(path, report):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report))
    return path


def tables(doc):
    return [part for part in doc if isinstance(part, Table)]


def rows_by_first_cell(table: Table) -> dict:
    return {row[0]: row for row in table.rows}


@pytest.fixture
def pair(tmp_path, ok_report):
    """The example report, and the same run with 2 threads per copy and a 10 % higher score."""
    other = json.loads(json.dumps(ok_report))
    other["run_info"]["threads_per_copy"] = 2
    other["report"]["wl-scores"]["train"] = ok_report["report"]["wl-scores"]["train"] * 1.1
    ci = other["report"]["throughput"]["confidence_interval"]
    ci["low"], ci["high"] = ci["low"] * 1.1, ci["high"] * 1.1
    for copy in other["report"]["copies"]:
        for w in copy["windows"]:
            w["events_per_second"] *= 1.1
    return write(tmp_path / "t1" / "mlpf_summary.json", ok_report), write(tmp_path / "t2" / "mlpf_summary.json", other)


def test_scores_ratios_and_the_difference_that_explains_them(pair):
    doc, problems = compare(load_entries(list(pair)))
    assert problems == []
    text = plain_text(doc)
    assert "like for like: same workload, data set and model config" in text
    scores, windows, differences = tables(doc)
    assert scores.headers[1] == "train events/s"  # the main score and its unit, from the schema
    rows = rows_by_first_cell(scores)
    assert rows["t1"][1:5] == ["0.5313", "0.5249 to 0.5377", "1.2", "1.000"]
    assert rows["t2"][1] == "0.5844" and rows["t2"][4] == "1.100"
    assert rows["t2"][5] == "1.7"  # 1.2 % and 1.2 % in quadrature
    assert rows["t2"][6] == "yes"  # 10 % is beyond that
    # The model FLOP/s and their share of the devices' peak, beside the score.
    assert scores.headers[8:10] == ["GFLOP/s", "MFU %"] and rows["t1"][8:10] == ["27.1", "12.3"]
    # Each window's rate summed over the two copies: 0.2606 + 0.2730 for window 1.
    assert windows.rows[0] == ["1", "0.5336", "0.5870"]
    assert "per-window rates (events/s, summed over copies):" in text
    assert rows_by_first_cell(differences) == {"threads per copy": ["threads per copy", "1", "2"]}


def test_tf32_matmuls_are_named_as_a_difference_once(pair, tmp_path, ok_report):
    # One GPU's rows of two engines (or two runs) are only the same arithmetic with the same setting.
    other = json.loads(json.dumps(ok_report))
    other["report"]["fp32_matmul"] = other["report"]["config"]["train"]["fp32_matmul"] = "tf32"
    doc, _ = compare(load_entries([pair[0], write(tmp_path / "tf32" / "mlpf_summary.json", other)]))
    _, _, differences = tables(doc)
    assert rows_by_first_cell(differences) == {"fp32 matmul": ["fp32 matmul", "highest", "tf32"]}


def test_a_ratio_within_the_intervals_is_not_beyond_noise(pair, tmp_path):
    report = json.loads(pair[1].read_text())
    report["report"]["wl-scores"]["train"] = 0.5320
    doc, _ = compare(load_entries([pair[0], write(tmp_path / "close.json", report)]))
    assert rows_by_first_cell(tables(doc)[0])["close.json"][6] == "no"


def test_a_different_data_set_or_model_is_not_like_for_like(pair, tmp_path):
    report = json.loads(pair[1].read_text())
    report["app"]["bmkdata_checksum"] = "ab" * 32
    report["report"]["config"]["model"]["bin_size"] = 320
    doc, problems = compare(load_entries([pair[0], write(tmp_path / "other.json", report)]))
    assert problems == [
        "different data set checksum: app.bmkdata_checksum",
        "different model config: report.config.model.bin_size",
    ]
    text = plain_text(doc)
    assert "NOT LIKE FOR LIKE: different model config: report.config.model.bin_size" in text
    differences = rows_by_first_cell(tables(doc)[-1])
    first = json.loads(pair[0].read_text())["app"]["bmkdata_checksum"]
    assert differences["data set checksum"][1:] == [first[:12], "abababababab"]  # checksums cut as `report show` does
    assert run("report", "compare", pair[0], tmp_path / "other.json", "--strict") == 1
    assert run("report", "compare", pair[0], tmp_path / "other.json") == 0


def test_a_failed_report_has_no_ratio_and_is_flagged(pair, tmp_path, failed_report):
    failed = write(tmp_path / "failed.json", failed_report)
    doc, problems = compare(load_entries([pair[0], failed]))
    assert any(p.startswith("failed.json has no score: ") for p in problems)
    row = rows_by_first_cell(tables(doc)[0])["failed.json"]
    assert row[1] == "-" and row[4] == "-" and row[-1] == "failed"


def test_energy_is_compared_where_reports_have_it(pair, tmp_path):
    report = json.loads(pair[1].read_text())
    report["report"]["wl-scores"]["events_per_joule"] = 0.0125
    report["report"]["energy"] = {
        "status": "measured",
        "reason": None,
        "joules": 11500.0,
        "seconds": 180.0,
        "mean_watts": 63.9,
        "events_per_joule": 0.0125,
        "sources": [
            {
                "name": "package-0",
                "kind": "powercap",
                "domain": "package",
                "path": "/sys/x",
                "status": "measured",
                "reason": None,
                "joules": 11500.0,
                "mean_watts": 63.9,
                "windows": [],
            },
            {
                "name": "gpu0",
                "kind": "nvml",
                "domain": "gpu",
                "path": None,
                "status": "unavailable",
                "reason": "no NVML",
                "joules": None,
                "mean_watts": None,
                "windows": [],
            },
        ],
    }
    doc, _ = compare(load_entries([pair[0], write(tmp_path / "energy.json", report)]))
    scores, _, energy, _ = tables(doc)
    assert scores.headers[-2] == "events/J"
    assert rows_by_first_cell(scores)["energy.json"][-2] == "0.01250"
    assert rows_by_first_cell(scores)["mlpf_summary.json"][-2] == "-"
    rows = rows_by_first_cell(energy)
    assert rows["mlpf_summary.json"][1:] == ["not recorded", "-", "-", "-", "-", "older report: no energy block"]
    assert rows["energy.json"][1:] == ["measured", "11500", "180.0", "63.90", "0.01250", "package-0"]


def test_reports_without_energy_have_no_energy_columns(pair):
    doc, _ = compare(load_entries(list(pair)))
    assert "events/J" not in tables(doc)[0].headers and "energy of the timed windows:" not in plain_text(doc)


def qsvr_summary(fits_per_second: float, sampler: str = "simulated") -> dict:
    return {
        "app": {"name": "qsvr-bmk", "version": "0.1.0", "bmkdata_checksum": "cd" * 32},
        "run_info": {"copies": 1, "threads_per_copy": 1, "events_per_thread": 2},
        "report": {
            "status": "ok",
            "log": "ok",
            "wl-scores": {"fits_per_second": fits_per_second, "mean_r2": 0.9},
            "fits": [{"fit": 0, "seconds": 0.5, "r2": 0.9}, {"fit": 1, "seconds": 0.25, "r2": 0.9}],
            "protocol": {"fits": 2, "sampler": sampler},
            "software": {"hepbench": "0.1.0"},
        },
    }


def test_qsvr_summaries_compare_on_their_own_score_and_protocol(tmp_path):
    a = write(tmp_path / "a.json", qsvr_summary(2.0))
    b = write(tmp_path / "b.json", qsvr_summary(3.0, sampler="dwave"))
    doc, problems = compare(load_entries([a, b]))
    scores, windows, _ = tables(doc)
    # No intervals in qsvr reports: those columns are left out.
    assert scores.headers == ["report", "fits_per_second fits/s", "ratio", "mean_r2", "status"]
    assert rows_by_first_cell(scores)["b.json"] == ["b.json", "3.000", "1.500", "0.9000", "ok"]
    assert windows.headers == ["fit", "a.json", "b.json"] and "per-fit rates (fits/s):" in plain_text(doc)
    assert windows.rows == [["1", "2.000", "2.000"], ["2", "4.000", "4.000"]]  # a fit's rate: 1 / its seconds
    assert problems == ["different protocol: report.protocol.sampler"]


def test_different_workloads_are_flagged(tmp_path, ok_report):
    doc, problems = compare(
        load_entries([write(tmp_path / "m.json", ok_report), write(tmp_path / "q.json", qsvr_summary(2.0))])
    )
    assert problems[0] == "different workloads: app.name"


def test_main_scores_come_from_the_schemas():
    scores = workload_scores()
    assert scores["mlpf-bmk"] == ("train", "events/s")
    assert scores["qsvr-bmk"] == ("fits_per_second", "fits/s")
    assert scores["hpo-bmk"] == ("trial_epochs_per_hour", "trial-epochs/hour")


def test_labels_are_the_shortest_distinguishing_paths(tmp_path):
    assert labels([tmp_path / "a/t1/mlpf_summary.json", tmp_path / "b/t1/mlpf_summary.json"]) == ["a/t1", "b/t1"]
    assert labels([tmp_path / "x.json", tmp_path / "y.json"]) == ["x.json", "y.json"]
    assert labels([tmp_path / "x.json", tmp_path / "x.json"]) == [
        f"{tmp_path / 'x.json'} (1)",
        f"{tmp_path / 'x.json'} (2)",
    ]


def test_bad_inputs_name_the_file(tmp_path, pair, capsys):
    with pytest.raises(ReportError, match="at least two report files, got 1"):
        load_entries([pair[0]])
    with pytest.raises(ReportError, match=f"{tmp_path / 'missing.json'}: no such file"):
        load_entries([pair[0], tmp_path / "missing.json"])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ReportError, match="bad.json: not valid JSON"):
        load_entries([pair[0], tmp_path / "bad.json"])
    (tmp_path / "list.json").write_text('{"app": [], "report": {}}')
    with pytest.raises(ReportError, match="list.json: not a benchmark summary"):
        load_entries([pair[0], tmp_path / "list.json"])
    from hepbench import cli

    assert cli.main(["report", "compare", str(pair[0]), str(tmp_path / "missing.json")]) == 1
    assert f"hepbench: error: {tmp_path / 'missing.json'}: no such file" in capsys.readouterr().err


def test_the_cli_prints_the_comparison_and_writes_the_plot(pair, tmp_path, capsys):
    png = tmp_path / "plots" / "compare.png"
    assert run("report", "compare", *pair, "--plot", png) == 0
    out = capsys.readouterr().out
    assert "compare: 2 reports of mlpf-bmk; ratios are to t1" in out and f"plot: {png}" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in png.parent.iterdir()] == ["compare.png"]  # no temporary file left beside it
    assert run("report", "compare", *pair, "--all") == 0
    assert "report.config.model.bin_size" in capsys.readouterr().out


def test_entry_of_an_unknown_workload_uses_its_first_score(tmp_path):
    entry = Entry(tmp_path, "x", {"app": {"name": "new-bmk"}, "report": {"status": "ok", "wl-scores": {"speed": 2.0}}})
    assert (entry.score_key, entry.score, entry.unit) == ("speed", 2.0, "")


def test_window_rates_of_a_report_without_windows_are_empty(tmp_path):
    assert window_rates(Entry(tmp_path, "x", {"app": {}, "report": {}})) == {}


def test_hpo_summaries_compare_on_trial_epochs_and_cpus_per_trial_is_not_a_model_change(tmp_path):
    def hpo(rate, cpus):
        return {
            "app": {"name": "hpo-bmk", "version": "0.1.0", "bmkdata_checksum": "ef" * 32},
            "run_info": {"copies": 1, "threads_per_copy": cpus, "events_per_thread": 8},
            "report": {
                "status": "ok",
                "log": "ok",
                "wl-scores": {"trial_epochs_per_hour": rate, "events_per_second": rate / 10},
                "protocol": {"scheduler": "asha", "trials": 4, "cpus_per_trial": cpus},
            },
        }

    doc, problems = compare(
        load_entries([write(tmp_path / "a.json", hpo(100.0, 1)), write(tmp_path / "b.json", hpo(150.0, 2))])
    )
    assert problems == []
    scores = tables(doc)[0]
    assert scores.headers == [
        "report",
        "trial_epochs_per_hour trial-epochs/hour",
        "ratio",
        "events_per_second",
        "status",
    ]
    assert rows_by_first_cell(scores)["b.json"][2] == "1.500"
    assert set(rows_by_first_cell(tables(doc)[-1])) == {"threads per copy", "report.protocol.cpus_per_trial"}


def test_an_unwritable_plot_path_is_a_clear_error(pair, tmp_path, capsys):
    from hepbench import cli

    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "compare.png"  # a file where a directory would have to be
    assert cli.main(["report", "compare", str(pair[0]), str(pair[1]), "--plot", str(target)]) == 1
    err = capsys.readouterr().err
    assert f"hepbench: error: --plot {target}: cannot write the plot" in err and "Traceback" not in err
