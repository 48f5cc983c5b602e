"""The two example reports, loaded fresh for each test so that tests may break them."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
_CACHE = {name: json.loads((FIXTURES / f"{name}.json").read_text()) for name in ("ok_2copies", "failed_nan")}


@pytest.fixture
def ok_report() -> dict:
    return copy.deepcopy(_CACHE["ok_2copies"])


@pytest.fixture
def failed_report() -> dict:
    return copy.deepcopy(_CACHE["failed_nan"])
