"""The two example reports in fixtures/ (ok_2copies, failed_nan): as files, and loaded fresh for each
test so that tests may break them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = ("ok_2copies", "failed_nan")
_CACHE = {name: json.loads((FIXTURES / f"{name}.json").read_text()) for name in EXAMPLES}


@pytest.fixture(scope="session")
def example_report_file():
    """example_report_file(name): the path of fixtures/NAME.json (not to be modified)."""

    def path(name: str) -> Path:
        assert name in EXAMPLES, name
        return FIXTURES / f"{name}.json"

    return path


@pytest.fixture
def ok_report() -> dict:
    return copy.deepcopy(_CACHE["ok_2copies"])


@pytest.fixture
def failed_report() -> dict:
    return copy.deepcopy(_CACHE["failed_nan"])
