"""The JSON Schema of sweep specs, generated from the spec's models: ``python -m search.schema``.

The schema is generated from the same pydantic models the loader validates with
(:class:`search.spec.Spec`, the trainables' config sections) and the trainables registry, so it
knows every key, type, default, range and allowed value, each key's description, the trainables,
and each family's parameter names and report keys: a misspelt ``space.model.widht``, an
unknown ``trainable: resnet``, ``sampler: tpee`` or ``budget.epochs: 0`` is flagged by any JSON
Schema reader. It is written in draft 7, the dialect YAML editors (yaml-language-server) read.

The generated file, ``search/spec/spec.schema.json``, is committed and shipped with the package.
Each spec in ``spaces/`` names it on its first line, so an editor completes keys and flags a
misspelt one while typing::

    # yaml-language-server: $schema=../search/spec/spec.schema.json

The loader stays the authority: it makes the checks a schema cannot (``$param`` bounds that name
an earlier parameter, cross-field rules, a value that has to fit the family's config) and gives
each error as one line.

    python -m search.schema              # print the schema
    python -m search.schema --write      # (re)write search/spec/spec.schema.json
    python -m search.schema --check      # exit 1 when the committed file is out of date
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

__all__ = ["SCHEMA_PATH", "SCHEMA_FIRST_LINE", "build_parser", "main", "plain_text", "spec_schema", "schema_text"]

#: The committed schema file (shipped with the package).
SCHEMA_PATH = Path(__file__).resolve().parent / "spec" / "spec.schema.json"
#: The first line of every spec in ``spaces/``: where YAML editors find the schema.
SCHEMA_FIRST_LINE = "# yaml-language-server: $schema=../search/spec/spec.schema.json"
_DRAFT = "http://json-schema.org/draft-07/schema#"
#: A constraint as a spec writes it: ``metric <= number`` or ``metric >= number``.
_CONSTRAINT_PATTERN = r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*(<=|>=)\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def plain_text(doc: str) -> str:
    """A docstring fragment as plain text: reST roles and double backticks become Markdown code."""
    doc = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", doc)
    return " ".join(doc.replace("``", "`").split())


def _models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every pydantic model reachable from ``root`` through its fields, by class name."""
    found: dict[str, type[BaseModel]] = {}

    def walk(model: type[BaseModel]) -> None:
        if model.__name__ in found:
            return
        found[model.__name__] = model
        for field in model.model_fields.values():
            stack = [field.annotation]
            while stack:
                node = stack.pop()
                if isinstance(node, type) and issubclass(node, BaseModel):
                    walk(node)
                stack.extend(typing.get_args(node))

    walk(root)
    return found


def _summary(model: type[BaseModel]) -> str:
    return plain_text((model.__doc__ or "").strip().split("\n\n")[0])


def _strip_titles(node: Any) -> None:
    """Drop pydantic's generated ``title`` keys (noise in an editor's hover) and use draft 7's tuple form."""
    if isinstance(node, dict):
        node.pop("title", None)
        if "prefixItems" in node:  # draft 2020-12 tuples -> draft 7
            node["items"] = node.pop("prefixItems")
        for value in node.values():
            _strip_titles(value)
    elif isinstance(node, list):
        for value in node:
            _strip_titles(value)


def _describe(node: dict[str, Any], model: type[BaseModel]) -> None:
    """Put each field's description (its ``description=`` or docstring entry) on its property."""
    from trainables.config import field_docs

    node["description"] = _summary(model)
    docs = field_docs(model)
    for name, field in model.model_fields.items():
        prop = node.get("properties", {}).get(field.alias or name)
        if prop is not None and docs.get(name):
            prop["description"] = plain_text(docs[name])


def _parameter_schemas(config: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """A family's parameters by dotted name → the JSON Schema of one value, with its description."""
    from trainables.config import field_docs, flatten, param_field, param_names

    defaults = flatten(config().model_dump())  # the family's own (a section's defaults may differ from its class's)
    out = {}
    for dotted in param_names(config):
        field = param_field(config, dotted)
        annotation = typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        schema = TypeAdapter(annotation).json_schema(ref_template="#/definitions/{model}")
        schema.pop("$defs", None)
        owner: Any = config
        for part in dotted.split(".")[:-1]:
            owner = owner.model_fields[part].annotation
        doc = field_docs(owner).get(dotted.split(".")[-1], "")
        if doc:
            schema["description"] = plain_text(doc)
        if defaults.get(dotted) is not None:
            schema["default"] = defaults[dotted]
        out[dotted] = schema
    return out


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 7) of a sweep spec file."""
    from search.spec import Spec
    from search.spec.model import _NAME_RE
    from trainables.registry import get_trainable, metric_table, trainable_names

    schema = Spec.model_json_schema(by_alias=True, mode="validation", ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    models = _models(Spec)
    _describe(schema, Spec)
    for name, node in definitions.items():
        if name in models:
            _describe(node, models[name])
    props = schema["properties"]
    props["name"]["pattern"] = _NAME_RE.pattern
    families = trainable_names()
    props["trainable"]["enum"] = families
    # A constraint is written as text; the loader reads it into metric, operator and bound.
    definitions.pop("Constraint", None)
    props["constraints"]["items"] = {
        "type": "string",
        "pattern": _CONSTRAINT_PATTERN,
        "description": "`metric <= number` or `metric >= number`, e.g. `macs <= 2e5`",
    }
    # `sampler: tpe` is short for `sampler: {name: tpe}` (and so for the scheduler).
    for key, section in (("sampler", "SamplerSection"), ("scheduler", "SchedulerSection")):
        names = definitions[section]["properties"]["name"]["enum"]
        shorthand = {"type": "string", "enum": names}
        props[key] = {"description": props[key].get("description", ""), "anyOf": [{"$ref": f"#/definitions/{section}"}, shorthand]}
    run = definitions["RunSection"]["properties"]
    run["device"]["pattern"] = r"^(auto|cpu|cuda(:[0-9]+)?)$"
    bound = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^\$[A-Za-z_][A-Za-z0-9_.]*$"}]}
    for key in ("int", "float", "log"):
        param = definitions["Param"]["properties"][key]
        for option in param.get("anyOf", []):
            if option.get("type") == "array":
                option["items"] = [copy.deepcopy(bound), copy.deepcopy(bound)]
    # Per family: the parameter names `space` and `fixed` may use (with each fixed value's
    # schema), and the report keys objectives may name.
    schema["allOf"] = []
    for family in families:
        entry = get_trainable(family)
        parameters = _parameter_schemas(entry.config)
        metrics = sorted(k for k in metric_table(family) if k != "test_accuracy" and k in set(entry.report_keys))
        schema["allOf"].append(
            {
                "if": {"properties": {"trainable": {"const": family}}, "required": ["trainable"]},
                "then": {
                    "properties": {
                        "space": {"propertyNames": {"enum": sorted(parameters)}},
                        "fixed": {"properties": parameters, "additionalProperties": False},
                        "objectives": {"items": {"properties": {"metric": {"enum": metrics}}}},
                    }
                },
            }
        )
    _strip_titles(schema)
    _strip_titles(definitions)
    return {
        "$schema": _DRAFT,
        "$id": "https://brainsweep.invalid/spec.schema.json",
        "title": "brainsweep sweep spec",
        **schema,
        "definitions": definitions,
    }


def schema_text() -> str:
    """The schema as the committed file holds it (sorted keys, two-space indent, final newline)."""
    return json.dumps(spec_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m search.schema", description="Print, write or check the JSON Schema of sweep specs.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="write it to search/spec/spec.schema.json (shipped with the package)")
    group.add_argument("--check", action="store_true", help="exit 1 when the committed schema differs from what the models generate")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    text = schema_text()
    if args.write:
        SCHEMA_PATH.write_text(text)
        print(f"wrote {SCHEMA_PATH}")
    elif args.check:
        current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"error: {SCHEMA_PATH} is out of date; regenerate it with: python -m search.schema --write", file=sys.stderr)
            return 1
        print(f"{SCHEMA_PATH} is up to date")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
