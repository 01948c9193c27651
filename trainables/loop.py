"""One trial's loop, the same for every family: resume, train, report, checkpoint.

Owns the :class:`Training` protocol a family's training class follows, what a checkpoint holds
(:func:`checkpoint_state`), the Ray Tune side of a trial (:func:`run_trial`) and the function
trainable that carries a family's entry to the workers (:func:`trial_function`). Checkpoints of
every family hold the family's state dict plus the trial's resolved config (``config``, JSON),
so a trial can be rebuilt from its checkpoint alone.

The loop sits below the registry: it is handed a family's entry (anything that is a
:class:`TrialFamily`, e.g. a :class:`~trainables.registry.TrainableEntry`) and never looks
families up by name itself.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from trainables.config import CrossFieldError, TrialConfig, describe_validation_error
from trainables.report import make_report

__all__ = ["Training", "TrialFamily", "TrialConfigError", "config_error_message", "run_trial", "trial_function", "checkpoint_state"]


class TrialConfigError(ValueError):
    """A sampled trial config the family's model rejects (e.g. ``model.groups`` > ``model.width``)."""


def config_error_message(exc: ValidationError) -> str:
    """The first error of a config validation as one line: ``field: what is wrong``."""
    err = exc.errors()[0]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, CrossFieldError):
        return str(cause)
    return f"{'.'.join(str(p) for p in err['loc'])}: {describe_validation_error(err)}"


@runtime_checkable
class Training(Protocol):
    """One training run of a family, epoch by epoch.

    Built from a typed trial config (``Training(config, splits=None)``: data loaded from
    ``config.data`` when ``splits`` is None). ``epoch`` counts finished epochs and ``epochs`` is
    the full budget. :meth:`state_dict` holds tensors and plain values only (it is saved with
    ``weights_only`` loading in mind) and, loaded into a run built from the same config,
    continues bit-identically on CPU.
    """

    epoch: int
    epochs: int
    device: Any

    def train_epoch(self) -> float:
        """Train one more epoch; returns the mean training loss."""

    def metrics(self) -> dict[str, Any]:
        """This epoch's report values: every base contract key and the family's own."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run."""

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict` of a run of the same config."""

    @classmethod
    def build_model(cls, config: TrialConfig, info: Any) -> Any:
        """The ``nn.Module`` of a config with the shapes its trained state dict needs."""

    def deployable(self) -> Any:
        """The trained network as a :class:`~trainables.deploy.DeployableModel` (natural units in, logits out)."""


class TrialFamily(Protocol):
    """What the loop needs of a family: what :class:`~trainables.registry.TrainableEntry` provides."""

    name: str

    @property
    def extra_report_keys(self) -> tuple[str, ...]:
        """The family's own report keys (every report carries them)."""

    def resolve(self, config: Mapping[str, Any] | TrialConfig) -> TrialConfig:
        """A typed, validated trial config (raises ``pydantic.ValidationError``)."""

    def training_class(self) -> Any:
        """The family's :class:`Training` class."""


def checkpoint_state(run: Training, config: TrialConfig) -> dict[str, Any]:
    """What a checkpoint holds: the run's state dict, the resolved config (JSON) and, for
    families with a deployable model, its input preprocessing (JSON; what an export needs)."""
    state = {**run.state_dict(), "config": json.dumps(config.model_dump())}
    deployable = getattr(run, "deployable", None)
    if deployable is not None:
        state["preprocessing"] = deployable().preprocessing.to_json()
    return state


def run_trial(entry: TrialFamily, config: Mapping[str, Any]) -> None:
    """Train one configuration of a family (its registry ``entry``) inside a Ray Tune trial.

    A family named in a spec is looked up first (:func:`trainables.registry.get_trainable`);
    the loop itself knows no names.

    Resumes from Tune's checkpoint when there is one (a retried trial), else from
    ``runtime.continue_from`` (a trial of an interrupted sweep that a resumed one continues),
    reports every epoch (every contract key and the family's own) and checkpoints every
    ``budget.checkpoint_every`` epochs and at the end.
    """
    from ray import tune

    from trainables.training import configure_threads, load_state

    try:
        cfg = entry.resolve(config)
    except ValidationError as exc:
        # pydantic's errors do not survive Ray's pickling; the trial fails with one plain line.
        raise TrialConfigError(config_error_message(exc)) from None
    configure_threads(cfg.runtime.threads)
    run: Training = entry.training_class()(cfg)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None and cfg.runtime.continue_from:
        checkpoint = tune.Checkpoint(cfg.runtime.continue_from)
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            state = load_state(directory, map_location=run.device)
        state.pop("config", None)
        state.pop("preprocessing", None)
        run.load_state_dict(state)
    every = cfg.budget.checkpoint_every
    if checkpoint is not None and run.epoch >= run.epochs:
        # Its final checkpoint was written but the trial's end was never recorded (the driver
        # stopped first): report the final epoch again (evaluation is deterministic).
        _report(run, cfg, entry, checkpoint=True)
    while run.epoch < run.epochs:
        run.train_epoch()
        _report(run, cfg, entry, checkpoint=run.epoch % every == 0 or run.epoch == run.epochs)


def _report(run: Training, cfg: TrialConfig, entry: TrialFamily, checkpoint: bool) -> None:
    from ray import tune

    from trainables.training import save_state

    values = run.metrics()
    if cfg.cost.latency:
        from trainables.deploy import measure_latency

        model = run.deployable()
        values.update(measure_latency(model, model.input_shape, run.device, threads=cfg.cost.latency_threads))
    report = make_report(values, entry.extra_report_keys)
    if not checkpoint:
        tune.report(report)
        return
    with tempfile.TemporaryDirectory() as directory:
        save_state(directory, checkpoint_state(run, cfg))
        tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))


def trial_function(entry: TrialFamily) -> Callable[[dict[str, Any]], None]:
    """The Ray Tune function trainable of a family (named ``<family>_trainable``).

    It carries the entry itself to the workers, so a family registered only in the driver
    (a benchmark's, a notebook's) trains there too.
    """

    def trainable(config: dict[str, Any]) -> None:
        run_trial(entry, config)

    trainable.__name__ = trainable.__qualname__ = f"{entry.name}_trainable"
    trainable.__doc__ = f"Train one {entry.name} configuration, reporting the contract keys every epoch."
    return trainable
