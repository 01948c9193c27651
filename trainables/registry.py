"""Registry of trainable families: a name in a spec resolves to a :class:`TrainableEntry`.

Only code registered here can be named by a spec; nothing named in a YAML file is imported.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrainableEntry", "register_trainable", "get_trainable", "trainable_names"]

# Modules that register the built-in families when imported. Fixed in code, never from a spec.
_BUILTIN_MODULES: tuple[str, ...] = ("trainables.g2g.trainable", "trainables.sne.trainable")

_REGISTRY: dict[str, TrainableEntry] = {}


@dataclass(frozen=True)
class TrainableEntry:
    """A trainable family.

    Attributes:
        name: The name specs use (``trainable: g2g``).
        trainable: The Ray Tune function trainable, ``trainable(config) -> None``.
        defaults: Nested default config. Every parameter a spec may set (by dotted name)
            must exist here, so typos in a spec are caught at load time.
        build_model: ``build_model(config, data_info) -> torch.nn.Module`` for export and
            re-evaluation of a trial's weights.
        extra_report_keys: Keys this family reports in addition to the base contract.
        description: One line for ``--help`` and docs.
    """

    name: str
    trainable: Callable[[dict[str, Any]], None]
    defaults: Mapping[str, Any]
    build_model: Callable[..., Any]
    extra_report_keys: tuple[str, ...] = ()
    description: str = ""
    evaluate: Callable[..., Any] | None = field(default=None)

    def default_config(self) -> dict[str, Any]:
        """A deep copy of the defaults, safe to mutate."""
        return copy.deepcopy(dict(self.defaults))


def register_trainable(entry: TrainableEntry) -> TrainableEntry:
    """Register a family. Duplicate names raise ``ValueError``."""
    if entry.name in _REGISTRY and _REGISTRY[entry.name] is not entry:
        raise ValueError(f"trainable {entry.name!r} is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            # A family still under construction is simply absent; anything else is a bug.
            if exc.name != module:
                raise


def get_trainable(name: str) -> TrainableEntry:
    """Resolve a registered family by name.

    Raises:
        KeyError: naming the known families when ``name`` is unknown.
    """
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"unknown trainable {name!r} (registered: {known})") from None


def trainable_names() -> list[str]:
    """Names of all registered families."""
    _load_builtins()
    return sorted(_REGISTRY)
