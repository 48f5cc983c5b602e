"""The qsvr schemas: valid draft 2020-12, shipped in the package, every property described."""
from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from hepbench.core.schema import load_schema, schema_path

SCHEMAS = ("qsvr_study.schema.json", "qsvr_summary.schema.json")


def property_schemas(node, where="schema"):
    """(path, schema) of every property defined; if/then/not branches only restrict them."""
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield f"{where}.{name}", sub
        for key, sub in node.items():
            if key not in ("if", "then", "else", "not"):
                yield from property_schemas(sub, f"{where}.{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from property_schemas(sub, f"{where}[{i}]")


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_shipped_and_fully_described(name):
    assert schema_path(name).is_file() and schema_path(name).parent.parent.name == "hepbench"
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema" and schema["$id"] and schema["title"]
    Draft202012Validator.check_schema(schema)
    props = list(property_schemas(schema))
    assert len(props) > 40
    assert [w for w, sub in props if not (isinstance(sub, dict) and sub.get("description"))] == []
