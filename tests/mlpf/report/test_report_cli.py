"""`hepbench report validate|show|plot` through argparse, as the main CLI runs them."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from hepbench.mlpf.report import cli as report_cli


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="hepbench")
    report_cli.register(parser.add_subparsers(dest="group", required=True))
    args = parser.parse_args(list(map(str, argv)))
    return args.func(args)


@pytest.fixture
def files(tmp_path, example_report_file, ok_report):
    good = tmp_path / "ok_2copies.json"
    shutil.copy(example_report_file("ok_2copies"), good)
    ok_report["report"]["wl-scores"]["train"] = "0.53"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(ok_report))
    return good, bad


def test_validate(files, capsys):
    good, bad = files
    assert run("report", "validate", good) == 0
    assert capsys.readouterr().out == f"{good}: valid (mlpf_summary.schema.json)\n"
    assert run("report", "validate", good, bad, good.parent / "missing.json") == 1
    out, err = capsys.readouterr()
    assert out == f"{good}: valid (mlpf_summary.schema.json)\n"
    assert f"{bad}: invalid (mlpf_summary.schema.json), 1 problem:" in err
    assert "  report.wl-scores.train: '0.53' is not of type 'number'" in err
    assert f"{good.parent / 'missing.json'}: no such file" in err


def test_show(files, capsys):
    assert run("report", "show", files[0]) == 0
    assert "train = 0.5313 events/s" in capsys.readouterr().out


def test_plot_default_and_explicit_output(files, capsys, tmp_path):
    good = files[0]
    assert run("report", "plot", good) == 0
    default = good.with_name("ok_2copies_throughput.png")
    assert capsys.readouterr().out.strip() == str(default) and default.stat().st_size > 0
    assert run("report", "plot", good, "-o", tmp_path / "x.png") == 0
    assert (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"


def test_main_maps_report_errors_to_exit_codes(files, capsys):
    from hepbench import cli

    good, bad = files
    assert cli.main(["report", "validate", str(good)]) == 0
    assert cli.main(["report", "validate", str(bad)]) == 1
    assert cli.main(["report", "show", str(good.parent / "missing.json")]) == 1
    assert "hepbench: error: " in capsys.readouterr().err
