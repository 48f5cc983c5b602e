"""The argparse types: what they accept, and the usage error (exit 2) for what they do not."""

from __future__ import annotations

import argparse

import pytest

from hepbench.core.cliargs import finite_float, non_negative_int, positive_float, positive_int


def parse(kind, text: str):
    parser = argparse.ArgumentParser(prog="t")
    parser.add_argument("--x", type=kind)
    return parser.parse_args([f"--x={text}"]).x


@pytest.mark.parametrize(
    "kind, text, value",
    [
        (positive_int, "3", 3),
        (non_negative_int, "0", 0),
        (finite_float, "-1.5", -1.5),
        (finite_float, "1e3", 1000.0),
        (positive_float, "0.25", 0.25),
    ],
)
def test_accepted_values(kind, text, value):
    assert parse(kind, text) == value and type(parse(kind, text)) is type(value)


@pytest.mark.parametrize(
    "kind, text, message",
    [
        (positive_int, "0", "expected a positive integer, got 0"),
        (positive_int, "1.5", "expected a positive integer, got '1.5'"),
        (non_negative_int, "-1", "expected an integer >= 0, got -1"),
        (finite_float, "abc", "expected a number, got 'abc'"),
        (finite_float, "nan", "expected a finite number, got 'nan'"),
        (finite_float, "-inf", "expected a finite number, got '-inf'"),
        (positive_float, "0", "expected a positive number, got '0'"),
        (positive_float, "inf", "expected a finite number, got 'inf'"),
    ],
)
def test_rejected_values_are_usage_errors_naming_the_option(capsys, kind, text, message):
    with pytest.raises(SystemExit) as e:
        parse(kind, text)
    assert e.value.code == 2
    assert f"argument --x: {message}" in capsys.readouterr().err
