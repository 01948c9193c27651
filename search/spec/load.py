"""Reading a spec: YAML text and ``--set`` overrides to a validated :class:`~search.spec.Spec`.

:func:`load_spec` reads a file, applies the command line's ``--set key=value`` overrides
(:func:`apply_overrides`) and validates (:func:`parse_spec`: the models of
:mod:`search.spec.model`, then :func:`search.spec.checks.check_spec`); every error is one
:class:`~search.spec.SpecError` line naming the file (or ``--set``), the dotted field and what was
expected. :func:`spec_to_yaml` writes a resolved spec back. YAML is read as YAML 1.2 reads
numbers (:func:`load_yaml`).
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from search.spec.checks import check_spec
from search.spec.model import Spec, SpecError
from trainables.config import describe_validation_error

__all__ = ["load_yaml", "load_spec", "parse_spec", "apply_overrides", "spec_to_yaml"]


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading numbers as YAML 1.2 does: ``1e-3`` and ``1E5`` are floats.

    YAML 1.1 (PyYAML's default) needs a dot in a float (``1.0e-3``) and reads ``1e-3`` as the
    string ``"1e-3"``, which would silently turn a learning rate into text.
    """


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+
        |[-+]?[0-9][0-9_]*\.[0-9_]*
        |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with YAML 1.2 numbers (``1e-3`` is a float, not a string)."""
    return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass


def load_spec(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Spec:
    """Read, override (``--set key=value``) and validate a spec file.

    Raises:
        SpecError: one line naming the file, the dotted field and what was expected.
    """
    source = str(path)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise SpecError(source, "", "spec file not found") from None
    except OSError as exc:
        raise SpecError(source, "", f"cannot read spec file ({exc.strerror})") from None
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, "", f"invalid YAML: {where}{problem}") from None
    if not isinstance(raw, dict):
        raise SpecError(source, "", f"expected a mapping of spec sections, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides, source)
    try:
        return parse_spec(raw, source)
    except SpecError as exc:
        key = _override_behind(exc.path, overrides)
        if key is None:
            raise
        raise SpecError("--set", key, exc.message) from None


def _override_behind(path: str, overrides: Sequence[str]) -> str | None:
    """The ``--set`` key that put the value at a spec error's ``path`` there, if one did."""
    for item in reversed(overrides):  # the last override of a key wins
        key = item.partition("=")[0].strip()
        if path in (key, f"fixed.{key}", f"space.{key}") or path.startswith((f"{key}.", f"fixed.{key}.", f"space.{key}.")):
            return key
        if key.startswith("space.") and key.startswith(f"{path}."):  # one field of a range: space.<parameter>.choice
            return key
    return None


#: The fields of a searched parameter's range (``space.<parameter>.<field>=...``).
_RANGE_FIELDS = ("choice", "int", "float", "log", "step", "when")


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str], source: str = "--set") -> dict[str, Any]:
    """Apply ``key=value`` overrides (values parsed as YAML) to a raw spec mapping.

    A key naming a searched parameter pins it: it leaves ``space`` and joins ``fixed``. A key
    ``space.<parameter>`` searches that parameter over the range given (narrowing a searched
    range, or searching a fixed one: it leaves ``fixed``); ``space.<parameter>.<field>``
    (``space.model.groups.choice=[2, 4]``) sets one field of its range, keeping its ``step`` and
    ``when`` where they still apply. ``fixed.<parameter>`` is the parameter itself. A key whose
    first part is another spec section (``run.num_samples``) sets that field. Any other key
    (``model.width``) is a fixed parameter.
    """
    spec = copy.deepcopy(dict(raw))
    sections = set(Spec.model_fields)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError("--set", item, "expected key=value")
        try:
            value = load_yaml(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        space = spec.get("space") or {}
        if key.startswith("fixed.") and len(key) > len("fixed."):
            key = key.removeprefix("fixed.")  # a fixed parameter's name is dotted itself
        if key.startswith("space.") and len(key) > len("space."):
            name = key.removeprefix("space.")
            head, _, field = name.rpartition(".")
            if head and field in _RANGE_FIELDS and not isinstance(value, dict):  # a range is a mapping: this is one of its fields
                old = space.get(head) if isinstance(space, dict) and isinstance(space.get(head), dict) else {}
                kinds = {"choice", "int", "float", "log"} if not (field == "log" and value is True) else set()  # log: true scales an int range
                kept = {k: v for k, v in old.items() if not (field in kinds and k in kinds) and not (field in ("choice", "log") and k == "step")}
                name, value = head, {**kept, field: value}
            spec["space"] = {**(space if isinstance(space, dict) else {}), name: value}
            spec["fixed"] = {k: v for k, v in (spec.get("fixed") or {}).items() if k != name}
        elif isinstance(space, dict) and key in space:
            space = dict(space)
            space.pop(key)
            spec["space"] = space
            spec["fixed"] = {**(spec.get("fixed") or {}), key: value}
        elif key.split(".")[0] in sections:
            parts = key.split(".")
            node = spec
            for part in parts[:-1]:
                child = node.get(part)
                if child is None or isinstance(child, str):  # e.g. sampler: tpe shorthand
                    child = {} if child is None else {"name": child}
                elif not isinstance(child, dict):
                    hint = f": it is a list, set it whole (--set '{'.'.join(parts[: parts.index(part) + 1])}=[...]')" if isinstance(child, list) else ": it is not a section"
                    raise SpecError("--set", key, f"cannot descend into {part!r}{hint}")
                node[part] = dict(child)
                node = node[part]
            node[parts[-1]] = value
        else:
            spec["fixed"] = {**(spec.get("fixed") or {}), key: value}
    return spec


def parse_spec(raw: Mapping[str, Any], source: str = "<spec>", check_sampler: bool = True) -> Spec:
    """Validate a raw mapping into a :class:`Spec`, including checks against the trainable.

    Every ``fixed`` value, choice option, range bound and ``when`` value is checked against the
    family's config model and stored as the trial will get it (``1`` for a float parameter
    becomes ``1.0``). ``check_sampler`` builds the sampler once to check its options (skipped
    when re-reading a run dir's saved spec: that needs no Optuna).
    """
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        path = path.replace("int_", "int").replace("float_", "float").replace("log_", "log")
        message = describe_validation_error(err)
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][-1]), _section_keys(err["loc"][:-1]), n=1)
            message = f"unknown key (did you mean {path.rpartition('.')[0] + '.' if '.' in path else ''}{close[0]}?)" if close else message
        raise SpecError(source, path, message) from None
    return check_spec(spec, source, check_sampler=check_sampler)


def _section_keys(loc: Sequence[Any]) -> list[str]:
    """The keys the spec accepts at ``loc`` (a pydantic error location), for a did-you-mean."""
    model: Any = Spec
    for part in loc:
        field = getattr(model, "model_fields", {}).get(str(part))
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


def spec_to_yaml(spec: Spec) -> str:
    """The resolved spec as YAML (constraints back to their text form)."""
    data = spec.model_dump(by_alias=True, exclude_none=True)
    data["constraints"] = [c.text for c in spec.constraints]
    return yaml.safe_dump(data, sort_keys=False)
