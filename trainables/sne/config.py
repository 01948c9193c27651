"""The SNE trial config: ``teacher``, ``sne`` and ``student`` sections plus the shared ones.

Every field is a searchable parameter by its dotted name (``sne.students``, ``student.width``);
the defaults here are the only defaults. No torch is needed to read or validate them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from trainables.config import ConfigModel, OptimConfig, TrialConfig, require

__all__ = [
    "TEACHER_ARCHS",
    "PARTITIONS",
    "STUDENT_SHAPES",
    "STUDENT_INITS",
    "DISTILL_AUGMENTS",
    "STUDENT_NORMS",
    "TeacherConfig",
    "NeuronConfig",
    "DistillConfig",
    "SNEConfig",
    "StudentConfig",
    "SNETrialConfig",
]

#: Teacher backbones (``trainables.sne.teacher`` registers one factory per name).
TEACHER_ARCHS: tuple[str, ...] = ("cnn", "mlp", "resnet18", "cornet_s")
#: How the teacher's feature dimensions are split among the students.
PARTITIONS: tuple[str, ...] = ("sequential", "random", "correlation", "class")
STUDENT_SHAPES: tuple[str, ...] = ("mlp", "conv")
STUDENT_INITS: tuple[str, ...] = ("scratch", "ann_bridge")
DISTILL_AUGMENTS: tuple[str, ...] = ("none", "shift")
STUDENT_NORMS: tuple[str, ...] = ("none", "batch")


class TeacherConfig(ConfigModel):
    """The ``teacher`` section of an SNE config.

    Attributes:
        arch: A registered backbone (``cnn``, ``mlp``, ``resnet18``, ``cornet_s``). ``cnn``
            runs 1-D (1x3 convs over ``W``) on ``H == 1`` samples (vectors, 1-D signals);
            ``mlp`` (flattened input, two hidden layers of ``4 x width`` units) takes any
            shape; ``resnet18`` and ``cornet_s`` need images (``H > 1``).
        width: Base channel width (``cnn``, ``cornet_s``; ``mlp``: a quarter of its hidden
            units; ResNet-18's is fixed at 64).
        epochs: Training epochs (ignored when ``checkpoint`` is set).
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        lr: Learning rate (cosine-annealed per step).
        weight_decay: Weight decay.
        momentum: SGD momentum.
        batch_size: Training batch size.
        seed: Seed of the teacher's initialisation and data order. Separate from the trial seed so
            that repeating students over seeds keeps one shared teacher.
        checkpoint: Path to a state dict (or a cache file of the teacher cache) of the same
            ``arch`` to load instead of training.
    """

    arch: Literal[TEACHER_ARCHS] = "cnn"  # type: ignore[valid-type]
    width: int = Field(default=32, ge=1)
    epochs: int = Field(default=30, ge=0)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=5e-4, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    batch_size: int = Field(default=64, ge=1)
    seed: int = 0
    checkpoint: str | None = None


class NeuronConfig(ConfigModel):
    """LIF and simulation parameters shared by the students of an ensemble (from ``sne``).

    Attributes:
        timesteps: Simulation length ``T``.
        beta: Membrane leak factor.
        threshold: Firing threshold.
        surrogate_slope: ``alpha`` of the arctan surrogate gradient.
        learnable: Train each layer's leak and threshold (starting at ``beta``, ``threshold``).
    """

    timesteps: int = Field(default=4, ge=1)
    beta: float = Field(default=0.9, ge=0, le=1)
    threshold: float = Field(default=1.0, gt=0)
    surrogate_slope: float = Field(default=2.0, gt=0)
    learnable: bool = False


class DistillConfig(ConfigModel):
    """Distillation loss settings (from ``sne``).

    Attributes:
        dropout: Probability of dropping each student, per sample, in the head's input.
        kl_weight: Weight of the logit KL term (0 disables it).
        kl_temperature: Softmax temperature of the KL term.
        augment: ``none``, or ``shift``: each training input moved by a random offset of up to
            2 pixels per axis (zero-padded, no flip; along W only for ``H = 1`` signals), with the
            teacher run on the moved input for its targets.
    """

    dropout: float = Field(default=0.25, ge=0, lt=1)
    kl_weight: float = Field(default=0.0, ge=0)
    kl_temperature: float = Field(default=4.0, gt=0)
    augment: Literal[DISTILL_AUGMENTS] = "none"  # type: ignore[valid-type]


class SNEConfig(ConfigModel):
    """The ``sne`` section of a config.

    Attributes:
        students: Ensemble size ``K``.
        active: Students the static subset runs (the trial's objectives are measured there).
        partition: ``sequential``, ``random``, ``correlation`` or ``class``.
        partition_samples: Training samples whose teacher features feed the correlation partition.
        timesteps: Simulation length ``T``.
        beta: LIF leak factor.
        threshold: LIF firing threshold.
        surrogate_slope: Arctan surrogate slope ``alpha``.
        learn_neuron: Learn one leak ``beta`` and one threshold per spiking layer (parametric
            LIF, Fang et al. 2021), starting from ``beta`` and ``threshold``.
        dropout: Per-sample probability of dropping a student while training.
        kl_weight: Weight of the logit KL term (0: feature MSE + head cross-entropy only).
        kl_temperature: Temperature of the KL term.
        augment: ``shift`` distils on randomly shifted training inputs (up to 2 pixels per axis),
            the teacher labelling each shifted input; ``none`` (the default) distils on the
            inputs as stored. Independent of ``data.augment`` (which also trains the teacher).
        dynamic_threshold: Confidence at which dynamic activation stops adding students.
    """

    students: int = Field(default=4, ge=1)
    active: int = Field(default=2, ge=1)
    partition: Literal[PARTITIONS] = "correlation"  # type: ignore[valid-type]
    partition_samples: int = Field(default=10000, ge=2)
    timesteps: int = Field(default=4, ge=1)
    beta: float = Field(default=0.9, ge=0, le=1)
    threshold: float = Field(default=1.0, gt=0)
    surrogate_slope: float = Field(default=2.0, gt=0)
    learn_neuron: bool = False
    dropout: float = Field(default=0.25, ge=0, lt=1)
    kl_weight: float = Field(default=0.0, ge=0)
    kl_temperature: float = Field(default=4.0, gt=0)
    augment: Literal[DISTILL_AUGMENTS] = "none"  # type: ignore[valid-type]
    dynamic_threshold: float = Field(default=0.9, gt=0, le=1)

    @model_validator(mode="after")
    def _active_fits(self) -> SNEConfig:
        require(
            self.active <= self.students,
            ("sne.active", "sne.students"),
            f"need 1 <= sne.active ({self.active}) <= sne.students ({self.students})",
        )
        return self

    def neuron(self) -> NeuronConfig:
        return NeuronConfig(
            timesteps=self.timesteps, beta=self.beta, threshold=self.threshold, surrogate_slope=self.surrogate_slope,
            learnable=self.learn_neuron,
        )

    def distill(self) -> DistillConfig:
        return DistillConfig(
            dropout=self.dropout, kl_weight=self.kl_weight, kl_temperature=self.kl_temperature, augment=self.augment
        )


class StudentConfig(ConfigModel):
    """The ``student`` section of an SNE config.

    Attributes:
        shape: ``mlp`` (flattened input, ``depth`` spiking hidden layers of ``width`` units) or
            ``conv`` (a 3x3 conv of ``channels`` channels, then ``depth - 1`` stride-2 3x3 convs
            doubling the channels; 1x3 convs striding along ``W`` on ``H == 1`` inputs).
        width: Hidden units of an mlp student.
        channels: Channels of a conv student's first layer. Separate from ``width`` because a
            conv channel costs ``9 x H x W`` times more than an mlp unit: one range cannot
            suit both.
        depth: Spiking hidden layers.
        stem_stride: Stride of a conv student's first layer: 1, or 2 to halve the resolution at
            once (28x28 and larger inputs: a quarter of the neurons and operations after it).
        readout: ``flat`` (a linear map of every position's spike rate) or ``pool`` (of each
            channel's rate averaged over positions, like the teacher's pooled features: far
            fewer weights, shift-tolerant; conv students only, the same as ``flat`` for mlp).
        norm: ``none`` or ``batch``: batch norm on each spiking layer's input current while
            training, folded into the layer's weights and bias for inference (no extra
            operation, and none in the exported graph).
        init: ``ann_bridge`` (train as a clipped-ReLU ANN first, then as an SNN; the default:
            ANN epochs cost about ``1/T`` of spiking ones and the copied weights lose little
            accuracy as an SNN) or ``scratch``.
        bridge_epochs: ANN pre-training epochs of ``ann_bridge`` (before the budgeted epochs).
    """

    shape: Literal[STUDENT_SHAPES] = "mlp"  # type: ignore[valid-type]
    width: int = Field(default=64, ge=1)
    channels: int = Field(default=8, ge=1)
    depth: int = Field(default=1, ge=1)
    stem_stride: Literal[1, 2] = 1
    readout: Literal["flat", "pool"] = "flat"
    norm: Literal[STUDENT_NORMS] = "none"  # type: ignore[valid-type]
    init: Literal[STUDENT_INITS] = "ann_bridge"  # type: ignore[valid-type]
    bridge_epochs: int = Field(default=5, ge=0)


class SNETrialConfig(TrialConfig):
    """A whole SNE trial config."""

    teacher: TeacherConfig = TeacherConfig()
    sne: SNEConfig = SNEConfig()
    student: StudentConfig = StudentConfig()
    optim: OptimConfig = OptimConfig(lr=3e-3, weight_decay=0.0, batch_size=64)
