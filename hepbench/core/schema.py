"""The JSON Schemas of the reports (hepbench/results_schema/): load one, read a report file, and list
a report's violations as readable lines. Without a schema name, mlpf_summary.schema.json."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from hepbench.core.errors import HepbenchError

SCHEMA_FILE = "mlpf_summary.schema.json"
MAX_LISTED = 20  # violations validate_report lists before "... and N more"
MAX_LINE = 240  # a message quoting a whole copy or window would bury the path; cut it


class ReportError(HepbenchError):
    """A report file that cannot be read, or that does not match its schema."""


def schema_path(name: str = SCHEMA_FILE) -> Path:
    """Where the packaged schema `name` lives (hepbench/results_schema/)."""
    return Path(str(resources.files("hepbench") / "results_schema" / name))


@functools.cache
def load_schema(name: str = SCHEMA_FILE) -> dict:
    """The parsed schema (cached: callers must not modify it)."""
    path = schema_path(name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"schema {name} not found at {path} (is hepbench installed with its package data?)") from None


# RFC 3339 section 5.6 date-time: jsonschema checks "date-time" only when the optional
# rfc3339-validator package is installed, so the check is done here, always.
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # format applies to strings only; "type" reports the rest
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:  # e.g. month 13 or 25:00
        return False
    return True


def format_checker() -> FormatChecker:
    """The 2020-12 format checker plus an always-present RFC 3339 date-time check."""
    # Passing the format names gives this checker its own table, so the global one is untouched.
    checker = FormatChecker(Draft202012Validator.FORMAT_CHECKER.checkers)
    if "date-time" not in checker.checkers:
        checker.checks("date-time")(_is_date_time)
    return checker


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    # Built once per schema: the run validates every report before writing it.
    return Draft202012Validator(load_schema(name), format_checker=format_checker())


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    for kind, name in ((bool, "boolean"), (dict, "object"), (list, "array"), (str, "string"), ((int, float), "number")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _reject_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, but they are not JSON and other readers reject them.
    raise ValueError(f"{name} is not a JSON number")


def load_report(path: str | Path) -> dict:
    """Read a report file; ReportError naming the file if it is missing, unreadable, not JSON or not an object."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{path}: is a directory, not a report file") from None
    except UnicodeDecodeError as e:
        raise ReportError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise ReportError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except ValueError as e:
        raise ReportError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object at the top level, got {_json_type(data)}")
    return data


def json_path(parts: Iterable[str | int]) -> str:
    """('report', 'copies', 0, 'log') -> 'report.copies[0].log'; the root is '(top level)'."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _condition(schema: dict, schema_path: Iterable[str | int]) -> str | None:
    """The title of the if/then branch an error came from, e.g. 'required when report.status is "ok"'."""
    node: Any = schema
    title = None
    for key in schema_path:
        # jsonschema leaves "$ref" out of the path: step through local references here.
        while isinstance(node, dict) and key not in node and str(node.get("$ref", "")).startswith("#/"):
            node = _resolve_local(schema, node["$ref"])
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return title
        if key == "then" and isinstance(node, dict):
            title = node.get("title", title)
    return title


def _resolve_local(schema: dict, ref: str) -> Any:
    node: Any = schema
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _line(error: ValidationError, schema: dict) -> str:
    message = error.message
    if len(message) > MAX_LINE:
        message = message[: MAX_LINE - 3] + "..."
    condition = _condition(schema, error.absolute_schema_path)
    if condition:
        message += f" ({condition})"
    return f"{json_path(error.absolute_path)}: {message}"


def _sort_key(error: ValidationError) -> tuple:
    # Indices sort as numbers (copies[2] before copies[10]); keys sort as text.
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in error.absolute_path)


def validation_errors(report: dict, name: str = SCHEMA_FILE) -> list[str]:
    """Every way `report` breaks the schema, one readable line each, sorted by path ([] if valid)."""
    schema = load_schema(name)
    lines: list[str] = []
    for error in sorted(_validator(name).iter_errors(report), key=lambda e: (_sort_key(e), e.message)):
        line = _line(error, schema)
        if line not in lines:  # a rule repeated in an if/then branch can report the same thing twice
            lines.append(line)
    return lines


def validate_report(report: dict, name: str = SCHEMA_FILE, source: str = "report") -> None:
    """Raise ReportError listing the violations (at most MAX_LISTED) if `report` does not match schema `name`."""
    lines = validation_errors(report, name)
    if not lines:
        return
    shown = lines[:MAX_LISTED]
    if len(lines) > MAX_LISTED:
        shown.append(f"... and {len(lines) - MAX_LISTED} more")
    raise ReportError(f"{source} does not match {name}:\n  " + "\n  ".join(shown))
