"""Trial configs: typed, frozen section models with their defaults, and dotted-name helpers.

Every family declares its trial config as one :class:`TrialConfig` subclass (sections such as
``model``, ``dst``, ``optim`` are :class:`ConfigModel` subclasses). Those models are the *only*
place defaults, types and allowed values live: the spec loader checks every fixed value,
``--set`` value, choice option and range bound against them before a sweep starts, and every
trial builds from the same models. Nothing here imports torch or Ray, so the search and the
analysis can validate configs cheaply.

Dotted names (``model.width``) address the nested config; :func:`flatten`/:func:`unflatten`
convert between the two forms.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from trainables.energy import ENERGY_MODELS

__all__ = [
    "ConfigModel",
    "TrialConfig",
    "CrossFieldError",
    "require",
    "OptimConfig",
    "DataConfig",
    "BudgetConfig",
    "CostConfig",
    "RuntimeConfig",
    "Device",
    "DATASETS",
    "DATA_ENV_VAR",
    "ParamError",
    "param_field",
    "check_param_value",
    "param_names",
    "describe_validation_error",
    "field_docs",
    "flatten",
    "unflatten",
    "has_path",
    "get_path",
    "set_path",
]

#: Dataset names a spec may use as ``data.name``.
DATASETS: tuple[str, ...] = ("digits", "digits28", "fashion_mnist", "cifar10", "cifar100", "npz")
#: Environment variable giving the default data root when ``data.root`` is not set.
DATA_ENV_VAR = "BRAINSWEEP_DATA"
_FALLBACK_DATA_ROOT = Path("~/.cache/brainsweep/data")


# --------------------------------------------------------------------------------------------
# Field descriptions (the spec reference, the JSON schema and --help read them)
# --------------------------------------------------------------------------------------------

_ATTRIBUTE_RE = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*)(?: \(.*?\))?: (.*)$")


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """Each field of a pydantic model → its description, one line of plain text.

    A field's ``description=`` wins; otherwise its entry in the class docstring's Google-style
    ``Attributes:`` section (continuation lines joined), which is where this project documents
    config sections. A field documented nowhere maps to ``""``.
    """
    docs: dict[str, str] = {}
    for klass in reversed([k for k in model.__mro__ if isinstance(k, type) and issubclass(k, BaseModel) and k is not BaseModel]):
        docs.update(_attribute_docs(klass.__doc__ or ""))  # a subclass's entry wins over its base's
    out = {}
    for name, field in model.model_fields.items():
        text = field.description or docs.get(name) or docs.get(field.alias or "") or ""
        if not text and isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            text = (field.annotation.__doc__ or "").strip().split("\n\n")[0]  # a section: its summary
        out[name] = " ".join(text.split())
    return out


def _attribute_docs(docstring: str) -> dict[str, str]:
    """The entries of a Google-style ``Attributes:`` section: name → text."""
    docs: dict[str, str] = {}
    inside, indent, current = False, None, None
    for line in docstring.expandtabs().splitlines():
        if line.strip() == "Attributes:":
            inside, indent, current = True, None, None
            continue
        if not inside:
            continue
        if not line.strip():
            current = None
            continue
        match = _ATTRIBUTE_RE.match(line)
        depth = len(line) - len(line.lstrip())
        if match and (indent is None or depth == indent):
            indent = depth
            current = match.group(2)
            docs[current] = match.group(3).strip()
        elif current is not None and indent is not None and depth > indent:
            docs[current] += " " + line.strip()
        elif indent is not None and depth < indent:
            inside = False
    return docs


# --------------------------------------------------------------------------------------------
# Dotted names
# --------------------------------------------------------------------------------------------


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


def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class CrossFieldError(ValueError):
    """A check that relates several fields (``model.groups <= model.width``).

    The spec loader reports it at load time only when none of ``fields`` is searched; with a
    searched field, whether it holds depends on the sampled values, so a trial checks it.
    """

    def __init__(self, fields: Sequence[str], message: str) -> None:
        self.fields = tuple(fields)
        super().__init__(message)


def require(condition: bool, fields: Sequence[str], message: str) -> None:
    """Raise :class:`CrossFieldError` naming ``fields`` (dotted, from the trial config root) unless ``condition``."""
    if not condition:
        raise CrossFieldError(fields, message)


class ConfigModel(BaseModel):
    """A frozen config section: unknown keys are errors; nested sections merge onto defaults.

    A section field whose default is an instance with non-default values (a family's own
    ``optim`` defaults, say) keeps those values for the keys a config does not set: setting
    ``optim.lr`` must not reset ``optim.weight_decay`` to the generic default.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _merge_section_defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        merged = dict(data)
        for name, field in cls.model_fields.items():
            default = field.default
            if isinstance(default, BaseModel) and isinstance(merged.get(name), Mapping):
                merged[name] = _deep_merge(default.model_dump(), merged[name])
        return merged


def _check_device(value: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {value!r}")
    return value


#: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
Device = Annotated[str, AfterValidator(_check_device)]


class OptimConfig(ConfigModel):
    """The ``optim`` section: optimiser, learning rate and its schedule, batch size.

    ``schedule: cosine`` anneals the learning rate to zero over the whole budget (per step);
    ``constant`` keeps it. ``momentum`` is SGD's (Nesterov when > 0).

    Attributes:
        name: The optimiser: ``adam``, ``adamw`` or ``sgd``.
        lr: The learning rate (its peak, under ``schedule: cosine``).
        weight_decay: L2 penalty (decoupled for ``adamw``).
        momentum: SGD's momentum (Nesterov when > 0); not used by Adam.
        schedule: ``cosine`` anneals the learning rate to zero over the budget, ``constant`` keeps it.
        batch_size: Training samples per optimiser step.
    """

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    schedule: Literal["cosine", "constant"] = "cosine"
    batch_size: int = Field(default=128, ge=1)


class DataConfig(ConfigModel):
    """The ``data`` section.

    Attributes:
        name: ``digits`` (embedded), ``digits28`` (generated from it offline: distorted 28x28
            digits, harder), ``fashion_mnist``, ``cifar10``, ``cifar100`` or ``npz``.
        root: Folder holding the torchvision datasets; unset: ``$BRAINSWEEP_DATA``, else
            ``~/.cache/brainsweep/data``.
        path: The ``.npz`` file for ``name: npz`` (arrays ``x_train, y_train, x_test, y_test``).
        download: Try torchvision's download when a dataset is missing.
        val_fraction: Fraction of the training set held out as the validation split.
        split_seed: Seed of the permutation that carves the validation split.
        augment: Random crop + horizontal flip while training (cifar10/cifar100 only).
        normalize: Per-channel standardisation with statistics of the training split.
        train_subset: Use only the first N training samples (after the fixed shuffle); the
            validation split does not depend on it.
    """

    name: Literal["digits", "digits28", "fashion_mnist", "cifar10", "cifar100", "npz"] = "digits"
    root: str | None = None
    path: str | None = None
    download: bool = True
    val_fraction: float = Field(default=0.1, gt=0, lt=1)
    split_seed: int = Field(default=0, ge=0)
    augment: bool = True
    normalize: bool = True
    train_subset: int | None = Field(default=None, ge=1)

    @field_validator("root", "path", mode="before")
    @classmethod
    def _path_text(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @model_validator(mode="after")
    def _npz_needs_path(self) -> DataConfig:
        require(
            self.name != "npz" or bool(self.path),
            ("data.name", "data.path"),
            "data.name 'npz' needs data.path (a .npz with x_train, y_train, x_test, y_test)",
        )
        return self

    def resolved(self) -> DataConfig:
        """``root`` and ``path`` as absolute paths (``root`` from the environment when unset).

        Done on the driver before trials start: Ray workers change their working directory and
        may not share the driver's environment.
        """
        root = self.root or os.environ.get(DATA_ENV_VAR) or _FALLBACK_DATA_ROOT
        update: dict[str, Any] = {"root": str(Path(os.fspath(root)).expanduser().absolute())}
        if self.path is not None:
            update["path"] = str(Path(self.path).expanduser().absolute())
        return self.model_copy(update=update)


class BudgetConfig(ConfigModel):
    """The ``budget`` section: epochs per trial (the scheduler's full budget), checkpoints, test.

    Attributes:
        epochs: The full budget of a trial, in epochs.
        checkpoint_every: Epochs between a trial's checkpoints (and at the end).
        eval_test: Measure ``test_accuracy`` at full budget (reported, never an objective).
    """

    epochs: int = Field(default=10, ge=1)
    checkpoint_every: int = Field(default=1, ge=1)
    eval_test: bool = True


class CostConfig(ConfigModel):
    """The ``cost`` section: the energy preset, and whether to time the deployable model.

    ``energy_model`` is the energy-per-operation preset that counts ``energy_uj``. With
    ``latency: true`` every report also carries ``latency_ms`` (median forward time at batch 1)
    and ``throughput_sps`` (samples per second at batch 256) of the deployable model (inputs in
    natural units, preprocessing included) on the trial's device, with ``latency_threads``
    threads on CPU, and ``latency_device`` names what was timed. Without it both are NaN.

    Attributes:
        energy_model: The energy-per-operation preset of ``energy_uj``: ``fp32_45nm``,
            ``fp16_45nm`` or ``int8_45nm``.
        latency: Time the deployable model every report (``latency_ms``, ``throughput_sps``).
        latency_threads: CPU threads the timing uses.
    """

    energy_model: Literal[tuple(ENERGY_MODELS)] = "fp32_45nm"  # type: ignore[valid-type]
    latency: bool = False
    latency_threads: int = Field(default=1, ge=1)


class RuntimeConfig(ConfigModel):
    """The ``runtime`` section, filled by the sweep from ``run`` (not searchable).

    Attributes:
        device: The trial's device (``run.device``).
        threads: PyTorch threads of the trial (``run.resources.cpu``, rounded down).
        cache_dir: Where the trials of one sweep share artefacts (e.g. an SNE teacher).
        continues: Set by a resumed sweep: the run dir's id of the interrupted trial this one continues.
        continue_from: The checkpoint it continues from (None: it starts over).
    """

    device: Device = "auto"
    threads: int = Field(default=1, ge=1)
    cache_dir: str | None = None
    #: Set by a resumed sweep: the run dir's id of the interrupted trial this one continues …
    continues: str | None = None
    #: … and the checkpoint (path or URI) it continues from (None: it starts over).
    continue_from: str | None = None


class TrialConfig(ConfigModel):
    """The sections every family shares; a family subclasses it and adds its own sections.

    Attributes:
        optim: The optimiser, learning rate and its schedule, batch size.
        data: The data set and its split.
        budget: Epochs, checkpoints, the test evaluation.
        cost: The energy preset; timing of the deployable model.
        runtime: Filled by the sweep (device, threads, caches); not searchable.
        seed: Seeds the trial's initialisation, data order and masks.
    """

    optim: OptimConfig = OptimConfig()
    data: DataConfig = DataConfig()
    budget: BudgetConfig = BudgetConfig()
    cost: CostConfig = CostConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    seed: int = 0


# --------------------------------------------------------------------------------------------
# Checking one parameter (a dotted name) against a family's config model
# --------------------------------------------------------------------------------------------

#: Sections a sweep fills itself; a spec never sets them by dotted name.
_NOT_PARAMETERS = ("runtime",)


class ParamError(ValueError):
    """A dotted name that is not a parameter, or a value it does not accept (one line)."""


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def param_names(model: type[BaseModel]) -> list[str]:
    """Every settable dotted parameter of a config model (``runtime.*`` excluded)."""
    names: list[str] = []
    for name, field in model.model_fields.items():
        if name in _NOT_PARAMETERS:
            continue
        if _is_section(field.annotation):
            names += [f"{name}.{sub}" for sub in param_names(field.annotation)]
        else:
            names.append(name)
    return names


def param_field(model: type[BaseModel], dotted: str) -> Any:
    """The pydantic ``FieldInfo`` of a dotted parameter.

    Raises:
        ParamError: ``dotted`` is not a parameter (with close names as a hint).
    """
    node: Any = model
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        field = node.model_fields.get(part) if _is_section(node) else None
        if field is None or (i == 0 and part in _NOT_PARAMETERS):
            break
        if i == len(parts) - 1:
            if _is_section(field.annotation):
                break  # a whole section is not one parameter
            return field
        node = field.annotation
    known = param_names(model)
    close = difflib.get_close_matches(dotted, known, n=3, cutoff=0.6)
    close += [k for k in known if k.split(".")[-1] == parts[-1] and k not in close]
    close += [k for k in known if k.startswith(dotted + ".") and k not in close]
    hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
    raise ParamError(f"not a parameter{hint}")


def _adapter(field: Any) -> TypeAdapter:
    return TypeAdapter(Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation)


def _literal_values(annotation: Any) -> tuple[Any, ...] | None:
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    return None


def check_param_value(model: type[BaseModel], dotted: str, value: Any) -> Any:
    """Validate one value of a dotted parameter; returns it as the trial will get it.

    Numbers are read as typed: an int where a float is expected becomes a float; a whole
    float (``64.0``) where an int is expected becomes an int.

    Raises:
        ParamError: one line saying what was expected (allowed values, did-you-mean).
    """
    field = param_field(model, dotted)
    try:
        return _adapter(field).validate_python(value)
    except ValidationError as exc:
        allowed = _literal_values(field.annotation)
        if allowed is not None:
            close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ParamError(f"expected one of {', '.join(repr(a) for a in allowed)}, got {value!r}{hint}") from None
        raise ParamError(describe_validation_error(exc.errors()[0])) from None


def param_kind(model: type[BaseModel], dotted: str) -> str:
    """``int``, ``float``, ``bool``, ``str``, ``choice`` (a fixed set) or ``other``: what ranges a parameter takes."""
    annotation = param_field(model, dotted).annotation
    args = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) not in (None, Literal) else [annotation]
    base = args[0] if len(args) == 1 else annotation
    if _literal_values(base) is not None:
        return "choice"
    for kind in (bool, int, float, str):
        if base is kind:
            return kind.__name__
    return "other"


def describe_validation_error(err: Mapping[str, Any]) -> str:
    """One pydantic error as a lower-case phrase with the offending input."""
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see the spec reference, docs/reference/spec.md)"
    if kind == "missing":
        return "required key is missing"
    msg = msg.removeprefix("Value error, ")
    got = err.get("input")
    if kind != "value_error" and got is not None and not isinstance(got, (dict, list)):
        msg = f"{msg}, got {got!r}"
    return msg[0].lower() + msg[1:] if msg else msg
