"""Trial configs: nested dicts addressed by dotted names (``model.width``)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["flatten", "unflatten", "resolve_config", "has_path", "get_path", "set_path"]


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"width": 8}}`` → ``{"model.width": 8}``. Leaves are non-mapping values."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten`; nested mappings in ``flat`` are merged too."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if isinstance(value, Mapping):
            for sub, v in flatten(value, key + ".").items():
                set_path(out, sub, v)
        else:
            set_path(out, key, value)
    return out


def has_path(tree: Mapping[str, Any], dotted: str) -> bool:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def get_path(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        node = node[part]
    return node


def set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"cannot set {dotted!r}: {part!r} is a value, not a section")
    node[parts[-1]] = value


def resolve_config(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` (nested and/or dotted keys) onto ``defaults``.

    Raises:
        KeyError: for a key that does not exist in ``defaults`` (a typo must not be ignored).
    """
    resolved = copy.deepcopy(dict(defaults))
    for key, value in flatten(unflatten(overrides)).items():
        if not has_path(defaults, key):
            # A default that is an empty mapping or None may take a whole sub-tree.
            parent = key.rsplit(".", 1)[0] if "." in key else None
            if not (parent and has_path(defaults, parent) and get_path(defaults, parent) in ({}, None)):
                raise KeyError(f"unknown config key {key!r}")
        set_path(resolved, key, value)
    return resolved
