"""The spec's JSON Schema: generated from the models, up to date, read by an outside validator.

The schema (``search/spec/spec.schema.json``) is what YAML editors check specs against while a
user types; these tests read it with ``jsonschema`` (not this project's code), as an editor would.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

import jsonschema
import pytest
from pydantic import BaseModel

from search.schema import SCHEMA_FIRST_LINE, SCHEMA_PATH, schema_text
from search.spec import Spec, SpecError, load_yaml, parse_spec
from tests.conftest import ROOT
from tests.unit.test_spec import MALFORMED
from trainables.config import field_docs
from trainables.registry import get_trainable, trainable_names

SPACES = sorted((ROOT / "spaces").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_the_committed_schema_is_what_the_models_generate():
    assert SCHEMA_PATH.read_text() == schema_text(), "regenerate it: python -m search.schema --write"


def _models(root):
    found, stack = [], [root]
    while stack:
        model = stack.pop()
        if model in found:
            continue
        found.append(model)
        for field in model.model_fields.values():
            nodes = [field.annotation]
            while nodes:
                node = nodes.pop()
                if isinstance(node, type) and issubclass(node, BaseModel):
                    stack.append(node)
                nodes.extend(typing.get_args(node))
    return found


@pytest.mark.parametrize("root", ["spec", *trainable_names()])
def test_every_spec_field_and_family_parameter_has_a_description(root):
    model = Spec if root == "spec" else get_trainable(root).config
    missing = [f"{m.__name__}.{name}" for m in _models(model) for name, doc in field_docs(m).items() if not doc.strip()]
    assert not missing, f"fields without a description (add it to the class docstring's Attributes: section): {missing}"


def test_every_key_of_the_schema_carries_its_description(validator):
    def walk(node, where):
        if isinstance(node, dict):
            for name, prop in (node.get("properties") or {}).items():
                assert prop.get("description") or "$ref" in prop, f"{where}.{name} has no description"
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}.{i}")

    # The keys and sections; the per-family narrowing (allOf: if trainable … then …) re-lists
    # keys described here, and each family parameter a fixed value may take is described there.
    walk({k: v for k, v in validator.schema.items() if k != "allOf"}, "schema")
    for branch in validator.schema["allOf"]:
        fixed = branch["then"]["properties"]["fixed"]["properties"]
        assert all(p.get("description") for p in fixed.values()), [n for n, p in fixed.items() if not p.get("description")]


@pytest.mark.parametrize("path", SPACES, ids=[p.name for p in SPACES])
def test_every_shipped_spec_names_the_schema_and_validates(path, validator):
    first = path.read_text().splitlines()[0]
    assert first == SCHEMA_FIRST_LINE
    assert (path.parent / first.split("$schema=", 1)[1]).resolve() == SCHEMA_PATH
    raw = load_yaml(path.read_text())  # YAML 1.2 numbers, as editors read them
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(raw)]
    assert not errors, errors


#: MALFORMED entries (by the field they name) that are a schema matter: unknown key, missing key,
#: wrong type, value out of range, a name not in a list (trainable, parameter, metric, sampler, scheduler …).
SCHEMA_MATTERS = {
    "epochs", "objectives", "objectives.0.mode", "trainable", "space.model.widht", "run.num_samples", "constraints.0",
    "objectives.0.metric", "sampler.name", "data.name", "run.resources.gpu", "run.device", "scheduler.name",
    "scheduler.tie_break", "scheduler.reduction_factor",
}
CASES = [case for case in MALFORMED if case[1] in SCHEMA_MATTERS and not isinstance(case[0], str)]


def test_the_schema_cases_cover_each_kind():
    assert {case[1] for case in CASES} == SCHEMA_MATTERS


@pytest.mark.parametrize("raw, path, words", CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_the_schema_refuses_the_malformed_specs_and_the_loader_keeps_its_own_line(raw, path, words, validator):
    errors = list(validator.iter_errors(raw))
    assert errors, f"the schema accepts {path}"
    where = {".".join(str(p) for p in e.absolute_path) for e in errors}
    top = path.split(".")[0]
    assert any(w == path or w.startswith(top) or (path == top and not w) for w in where), (path, where)
    with pytest.raises(SpecError) as info:
        parse_spec(raw, "spec.yaml")
    message = str(info.value)
    assert len(message.splitlines()) == 1 and words in message and f": {path}: " in message


def test_typed_values_are_read_as_users_type_them(validator):
    raw = load_yaml((ROOT / "spaces" / "quickstart.yaml").read_text())
    raw["space"]["optim.lr"] = load_yaml("{log: [1E-4, 3e-2]}")
    raw["fixed"]["model.kind"] = "dense"
    assert not list(validator.iter_errors(raw))
    raw["fixed"]["model.kind"] = "dens"  # a misspelt choice
    assert [e.message for e in validator.iter_errors(raw)] == ["'dens' is not one of ['g2g', 'dense', 'dense_matched', 'er']"]
