"""`hepbench qsvr study` from the command line: data and option errors, a small run end to end, determinism."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from hepbench.cli import main
from hepbench.core.schema import validate_report
from hepbench.qsvr.curves import packaged_csv

# Few repeats and a cheap annealer: the protocol end to end in a few seconds.
SMALL = [
    "--svr-repeats",
    "6",
    "--qsvr-repeats",
    "2",
    "--ensemble-repeats",
    "2",
    "--num-reads",
    "60",
    "--num-sweeps",
    "20",
    "-q",
]


def table(rows: int | None = None, drop: str | None = None, nan_at: tuple[int, str] | None = None):
    with open(packaged_csv(), newline="") as f:
        data = list(csv.reader(f))
    header, body = data[0], data[1:] if rows is None else data[1 : rows + 1]
    if nan_at:
        body[nan_at[0]][header.index(nan_at[1])] = "nan"
    if drop:
        i = header.index(drop)
        header, body = header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in body]
    return [header, *body]


def write(path, rows) -> str:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return str(path)


def study(tmp_path, *args, out="out"):
    return main(["qsvr", "study", "-w", str(tmp_path / out), *args])


@pytest.mark.parametrize(
    "kind, message",
    [
        ({"drop": "lr"}, "missing column(s) lr"),
        ({"drop": "loss_0"}, "missing column(s) loss_0"),
        ({"nan_at": (3, "loss_7")}, "line 5, column loss_7: nan (every value must be a finite number)"),
        ({"rows": 5}, "5 training run(s); at least 10 are needed"),
        ({"rows": 40}, "the protocol tests on 20 and needs 80 training curves"),
    ],
)
def test_bad_tables_exit_1_with_the_file_and_the_problem(tmp_path, capsys, kind, message):
    bad = write(tmp_path / "bad.csv", table(**kind))
    assert study(tmp_path, "--data", bad, *SMALL) == 1
    err = capsys.readouterr().err
    assert err.startswith("hepbench: error: ") and message in err and ("bad.csv" in err)
    assert not (tmp_path / "out").exists()


def test_a_missing_table_is_a_usage_error(tmp_path, capsys):
    assert study(tmp_path, "--data", str(tmp_path / "nope.csv")) == 2
    assert "nope.csv: cannot read the learning-curve table" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--svr-repeats", "0"], "expected a positive integer, got 0"),
        (["--qsvr-repeats", "0"], "expected a positive integer, got 0"),
        (["--ensemble-repeats", "-1"], "expected a positive integer, got -1"),
        (["--bits", "0"], "expected a positive integer, got 0"),
        (["-K", "-2"], "expected a positive integer, got -2"),
        (["--base", "0"], "expected a positive number, got '0'"),
        (["-B", "-0.5"], "expected a positive number, got '-0.5'"),
        (["--base", "nan"], "expected a finite number"),
        (["--num-reads", "0"], "expected a positive integer, got 0"),
        (["--r2-convention", "sideways"], "invalid choice: 'sideways'"),
        (["--seed", "-1"], "expected an integer >= 0, got -1"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        study(tmp_path, *args)
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_dwave_sampler_without_a_token_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    assert study(tmp_path, "--sampler", "dwave", *SMALL) == 2
    assert "DWAVE_API_TOKEN" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_without_the_qsvr_extra_the_message_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "dimod", None)  # import dimod now raises ImportError
    assert study(tmp_path, *SMALL) == 2
    assert "pip install 'hepbench[qsvr]'" in capsys.readouterr().err


def test_a_small_study_writes_valid_json_markdown_and_png(tmp_path, capsys):
    assert study(tmp_path, *SMALL, "--r2-convention", "swapped", "--seed", "7") == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["qsvr_study.json", "qsvr_study.md", "qsvr_study.png"]
    doc = json.loads((out / "qsvr_study.json").read_text())
    validate_report(doc, "qsvr_study.schema.json")
    p = doc["protocol"]
    assert (p["svr_repeats"], p["qsvr_repeats"], p["ensemble_repeats"], p["seed"]) == (6, 2, 2, 7)
    assert p["r2_convention"] == "swapped" and p["test_size"] == 148 and doc["data"]["curves"] == 295
    for variant in ("published", "leak-free"):
        for convention in ("correct", "swapped"):
            models = doc["results"][variant][convention]
            assert len(models["svr"]["r2"]) == 6
            assert len(models["qsvr"]["r2"]) == 2 * 7 and len(models["qsvr"]["rules"]) == 7  # rules pooled
            assert len(models["qsvr_ensemble"]["r2"]) == 2 and models["qsvr_ensemble"]["stats"]["trainings"] == 2
    md = (out / "qsvr_study.md").read_text()
    assert (
        "R² convention: **swapped**" in md
        and "| SVR | published (swapped R²) | 0.959 | 0.318 | 0.889 | 0.050 | 1000 |" in md
    )
    assert "## Scaling `leak-free`" in md and "softmax_inverse_logcosh" in md
    assert (out / "qsvr_study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out


def test_the_same_seed_gives_the_same_study(tmp_path):
    args = [
        "--svr-repeats",
        "4",
        "--qsvr-repeats",
        "1",
        "--ensemble-repeats",
        "1",
        "--num-reads",
        "40",
        "--num-sweeps",
        "10",
        "-q",
    ]
    assert study(tmp_path, *args, "--seed", "3", out="a") == 0
    assert study(tmp_path, *args, "--seed", "3", out="b") == 0
    assert study(tmp_path, *args, "--seed", "4", out="c") == 0
    a, b, c = (json.loads((tmp_path / d / "qsvr_study.json").read_text())["results"] for d in "abc")
    assert a == b and a != c


def test_baker_writes_its_table_and_plot(tmp_path, capsys):
    out = tmp_path / "bk"
    assert main(["qsvr", "baker", "-w", str(out), "--repeats", "2", "--fractions", "0.25,0.5", "--seed", "1"]) == 0
    result = json.loads((out / "qsvr_baker.json").read_text())
    assert [r["fraction"] for r in result["table"]] == [0.25, 0.5] and result["settings"]["repeats"] == 2
    assert (out / "qsvr_baker.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fractions", "0.5,1.5"], "each fraction must be in (0, 1]"),
        (["--fractions", "a,b"], "expected comma-separated numbers"),
        (["--test-size", "1.5"], "expected a fraction in (0, 1) or a number of curves"),
        (["--repeats", "0"], "expected a positive integer, got 0"),
    ],
)
def test_baker_bad_options_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main(["qsvr", "baker", "-w", str(tmp_path / "bk"), *args])
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "bk").exists()


def test_study_with_baker_adds_its_result(tmp_path):
    assert study(tmp_path, *SMALL, "--baker") == 0
    out = tmp_path / "out"
    doc = json.loads((out / "qsvr_study.json").read_text())
    validate_report(doc, "qsvr_study.schema.json")
    assert doc["baker"]["table"] and (out / "qsvr_baker.png").exists()
    assert "## Baker-style ν-SVR" in (out / "qsvr_study.md").read_text()


def test_the_cli_does_not_import_the_qsvr_extra_until_a_qsvr_command_runs():
    import subprocess

    code = (
        "import sys; from hepbench.cli import build_parser; build_parser().parse_args(['qsvr', 'study']); "
        "heavy = [m for m in ('sklearn', 'dimod', 'dwave.samplers') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
