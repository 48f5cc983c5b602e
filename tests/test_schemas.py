"""Every schema in results_schema/: valid draft 2020-12, loadable through the package, every property described."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from hepbench.core.schema import schema_path

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = ROOT / "results_schema"
SCHEMAS = sorted(SCHEMA_DIR.glob("*.json"))

# Keywords whose value is one subschema, a list of them, or a map of them (draft 2020-12).
ONE = ("items", "additionalProperties", "unevaluatedProperties", "unevaluatedItems", "contains", "propertyNames")
CONDITIONAL = ("if", "then", "else", "not")
COMBINED = ("allOf", "anyOf", "oneOf")
LISTS = ("prefixItems",)
DEFINITIONS = ("$defs", "dependentSchemas")


class Walk:
    """The properties of a schema, at every depth, that have no description.

    A conditional or combined branch (`then: {properties: {score: {type: number}}}`), or a schema beside
    a `$ref`, only restricts properties declared elsewhere: such a property counts as described when the
    schema it restricts describes it. `bases` are those restricted schemas, followed down the walk.
    """

    def __init__(self, root: dict):
        self.root = root

    def resolve(self, node: object) -> object:
        """A local `$ref` replaced by its target (siblings of the `$ref` kept)."""
        if isinstance(node, dict) and str(node.get("$ref", "")).startswith("#/"):
            target = self.root
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return {**self.resolve(target), **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def below(self, bases: list[dict], key: str, name: str | None = None) -> list[dict]:
        found = []
        for base in bases:
            sub = base.get(key)
            if name is not None:
                sub = sub.get(name) if isinstance(sub, dict) else None
            sub = self.resolve(sub)
            if isinstance(sub, dict):
                found.append(sub)
        return found

    def undescribed(self, node: object, where: str = "(top level)", bases: list[dict] = ()) -> Iterator[str]:
        if not isinstance(node, dict):  # a boolean schema
            return
        bases = list(bases)
        if "$ref" in node:  # properties beside a $ref restrict the ones its target declares
            bases.append(self.resolve({"$ref": node["$ref"]}))
        for key in ("properties", "patternProperties"):
            for name, sub in (node.get(key) or {}).items():
                restricted = self.below(bases, key, name)
                if not any(isinstance(s, dict) and s.get("description") for s in [self.resolve(sub), *restricted]):
                    yield f"{where}.{name}"
                yield from self.undescribed(sub, f"{where}.{name}", restricted)
        for key in ONE:
            if key in node:
                yield from self.undescribed(node[key], f"{where}.{key}", self.below(bases, key))
        for key in CONDITIONAL:
            if key in node:
                yield from self.undescribed(node[key], f"{where}.{key}", [*bases, node])
        for key in COMBINED:
            for i, sub in enumerate(node.get(key) or []):
                yield from self.undescribed(sub, f"{where}.{key}[{i}]", [*bases, node])
        for key in LISTS:
            for i, sub in enumerate(node.get(key) or []):
                yield from self.undescribed(sub, f"{where}.{key}[{i}]")
        for key in DEFINITIONS:
            for name, sub in (node.get(key) or {}).items():
                yield from self.undescribed(sub, f"{where}.{key}.{name}")


def test_results_schema_holds_exactly_the_schemas_the_code_names():
    # Also keeps the parametrised test below from passing on an empty list.
    named = {
        m for path in (ROOT / "hepbench").rglob("*.py") for m in re.findall(r"\w+\.schema\.json", path.read_text())
    }
    assert named and sorted(named) == [p.name for p in SCHEMAS]


def test_the_package_links_to_these_schemas_instead_of_copying_them():
    # One copy: hepbench/results_schema is a link, so the packaged schemas cannot drift from these.
    link = ROOT / "hepbench" / "results_schema"
    assert link.is_symlink() and link.resolve() == SCHEMA_DIR.resolve()


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_schema_is_valid_and_every_property_described(path):
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema_path(path.name).resolve() == path.resolve()  # hepbench validates reports against this very file
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"] and schema["description"]
    Draft202012Validator.check_schema(schema)
    assert list(Walk(schema).undescribed(schema)) == []


@pytest.mark.parametrize(
    "schema, expected",
    [
        ({"properties": {"a": {"type": "string"}}}, ["(top level).a"]),
        ({"properties": {"a": {"description": "A.", "properties": {"b": {}}}}}, ["(top level).a.b"]),
        ({"$defs": {"d": {"items": {"properties": {"x": {}}}}}}, ["(top level).$defs.d.items.x"]),
        ({"additionalProperties": {"patternProperties": {"^x": {}}}}, ["(top level).additionalProperties.^x"]),
        ({"anyOf": [{"properties": {"new": {}}}]}, ["(top level).anyOf[0].new"]),
        # A branch may restrict a described property without repeating its description, at any depth...
        (
            {
                "properties": {"s": {"description": "S.", "properties": {"t": {"$ref": "#/$defs/t"}}}},
                "$defs": {"t": {"description": "T.", "type": "object", "properties": {"u": {"description": "U."}}}},
                "if": {"properties": {"s": {"const": 1}}},
                "then": {"properties": {"s": {"properties": {"t": {"properties": {"u": {"type": "number"}}}}}}},
            },
            [],
        ),
        # ...but a property it adds must be described.
        (
            {"properties": {"s": {"description": "S."}}, "then": {"properties": {"s": {}, "extra": {}}}},
            ["(top level).then.extra"],
        ),
    ],
)
def test_the_walk_finds_every_undescribed_property(schema, expected):
    assert list(Walk(schema).undescribed(schema)) == expected
