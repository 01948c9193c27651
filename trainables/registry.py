"""Registry of trainable families: a name in a spec resolves to a :class:`TrainableEntry`.

Owns :class:`TrainableEntry` (what a family declares: config model, report keys, training
class, exporter) and the name → entry table (:func:`register_trainable`,
:func:`get_trainable`, :func:`trainable_names`, :func:`metric_table`). The trial loop it hands
entries to (:mod:`trainables.loop`) sits below it and knows no names.

Only code registered here can be named by a spec; nothing named in a YAML file is imported.
An entry is light: its config model and metric declarations load without torch or Ray, so
specs and run dirs are validated cheaply; the training code is imported when a trial (or an
export) needs it.

Adding a family: a package ``trainables/<family>/`` with a config model (a
:class:`~trainables.config.TrialConfig` subclass), a training class that follows
:class:`~trainables.loop.Training` (its ``deployable()`` from
:class:`~trainables.deploy.DeployableRun`), and a module that calls :func:`register_trainable`; then
its module name in :data:`_BUILTIN_MODULES`. Nothing else changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trainables.config import TrialConfig, unflatten
from trainables.loop import trial_function
from trainables.report import BASE_METRICS, Metric, StaticCost

__all__ = ["TrainableEntry", "register_trainable", "get_trainable", "trainable_names", "metric_table"]

# Modules that register the built-in families when imported. Fixed in code, never from a spec.
_BUILTIN_MODULES: tuple[str, ...] = ("trainables.g2g.family", "trainables.sne.family")

_REGISTRY: dict[str, TrainableEntry] = {}


@dataclass(frozen=True)
class TrainableEntry:
    """A trainable family.

    Attributes:
        name: The name specs use (``trainable: g2g``).
        config: The family's trial config model: every section, type, default and allowed
            value a spec may set by dotted name.
        training: ``"module:Class"`` of the family's :class:`~trainables.loop.Training`
            implementation, imported on first use (a fixed string in code, never from a spec),
            or the class itself.
        metrics: The family's report keys beyond the base contract, with their meaning.
        description: One line for ``--help`` and docs.
        example: A tiny, fast config over the defaults (embedded data, a couple of epochs): what
            the conformance test (``tests/test_trainable_contract.py``) trains for every family.
        exporter: The module that writes the family's portable model files into a bundle
            (``model.onnx``, ``model.nir``), imported on first use; ``None`` for none. It
            defines ``export_files(model, directory, metadata) -> dict`` (from the
            :class:`~trainables.deploy.DeployableModel`; returns a JSON-ready dict with
            ``format``, ``file`` and what the card shows) and ``run_files(directory, x) ->
            logits`` (runs the written file with its own runtime on inputs in natural units).
        static_costs: The family's static costs hook: ``"module:function"`` computing the report
            metrics known before training (:meth:`static_costs_of` calls it),
            ``function(config, info) -> {metric: StaticCost}`` from a resolved config and the
            data's :class:`~trainables.data.DataInfo` alone, with the same cost code the trial
            reports with (imported on first use); ``None`` when the family declares none.
    """

    name: str
    config: type[TrialConfig]
    training: str | type
    metrics: tuple[Metric, ...] = ()
    description: str = ""
    example: Mapping[str, Any] = field(default_factory=dict)
    exporter: str | None = None
    static_costs: str | None = None
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def extra_report_keys(self) -> tuple[str, ...]:
        """The family's own report keys (every report carries them)."""
        return tuple(m.name for m in self.metrics)

    @property
    def report_keys(self) -> tuple[str, ...]:
        """Every key of every report of this family: the base contract, then the family's."""
        return (*(m.name for m in BASE_METRICS), *self.extra_report_keys)

    @property
    def defaults(self) -> dict[str, Any]:
        """The default trial config as a nested dict (derived from :attr:`config`)."""
        return self.config().model_dump()

    def resolve(self, config: Mapping[str, Any] | TrialConfig) -> TrialConfig:
        """A typed, validated trial config from nested and/or dotted keys over the defaults.

        Raises:
            pydantic.ValidationError: an unknown key or a value the model does not accept.
        """
        if isinstance(config, self.config):
            return config
        return self.config.model_validate(unflatten(dict(config)))

    def training_class(self) -> Any:
        """The family's training class (imported on first use)."""
        if not isinstance(self.training, str):
            return self.training
        if "training" not in self._cache:
            module, _, name = self.training.partition(":")
            self._cache["training"] = getattr(importlib.import_module(module), name)
        return self._cache["training"]

    @property
    def trainable(self) -> Callable[[dict[str, Any]], None]:
        """The Ray Tune function trainable of this family (one shared loop for every family)."""
        return trial_function(self)

    def static_costs_of(self, config: Mapping[str, Any] | TrialConfig, info: Any) -> dict[str, StaticCost]:
        """A config's static costs: the report metrics it fixes before any training, by the family's
        :attr:`static_costs` hook (empty when the family declares none).

        Each :class:`~trainables.report.StaticCost` says how the trained trial's reports relate
        to it (equal, at most, at least); the contract test checks that they do.
        """
        if self.static_costs is None:
            return {}
        module, _, name = self.static_costs.partition(":")
        return dict(getattr(importlib.import_module(module), name)(self.resolve(config), info))

    def build_model(self, config: Mapping[str, Any] | TrialConfig, info: Any) -> Any:
        """``torch.nn.Module`` of a trial config, with the shapes its state dict needs."""
        return self.training_class().build_model(self.resolve(config), info)

    def export(self, model: Any, directory: Any, metadata: Mapping[str, Any]) -> dict[str, Any] | None:
        """Write the family's portable model files for a deployable model (None: the family has none)."""
        if self.exporter is None:
            return None
        return importlib.import_module(self.exporter).export_files(model, directory, metadata)

    def run_exported(self, directory: Any, x: Any) -> Any:
        """Logits of the portable file in ``directory`` on inputs ``x`` in natural units, by its own runtime."""
        if self.exporter is None:
            raise ValueError(f"trainable {self.name!r} exports no portable model file")
        return importlib.import_module(self.exporter).run_files(directory, x)


def register_trainable(entry: TrainableEntry) -> TrainableEntry:
    """Register a family. Duplicate names raise ``ValueError``."""
    if entry.name in _REGISTRY and _REGISTRY[entry.name] is not entry:
        raise ValueError(f"trainable {entry.name!r} is already registered")
    clash = {m.name for m in entry.metrics} & {m.name for m in BASE_METRICS}
    if clash:
        raise ValueError(f"trainable {entry.name!r} redeclares base report keys {sorted(clash)}")
    _REGISTRY[entry.name] = entry
    return entry


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


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


def metric_table(trainable: str | None = None) -> dict[str, Metric]:
    """Every declared report key → :class:`Metric`: the base contract plus one family's (or all families')."""
    table = {m.name: m for m in BASE_METRICS}
    names = [trainable] if trainable else trainable_names()
    for name in names:
        try:
            entry = get_trainable(name)
        except KeyError:
            continue
        table.update({m.name: m for m in entry.metrics})
    return table
