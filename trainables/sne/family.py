"""The ``sne`` registry entry: config model, report keys and training class of spiking ensembles."""

from __future__ import annotations

from trainables.registry import TrainableEntry, register_trainable
from trainables.report import Metric
from trainables.sne.config import SNETrialConfig

__all__ = ["ENTRY", "SNE_METRICS", "SNE_REPORT_KEYS"]

#: Keys SNE reports besides the base contract (every report carries all of them).
SNE_METRICS: tuple[Metric, ...] = (
    Metric("students", "min", "ensemble size", kind="cost"),  # K
    Metric("students_active", "min", "active students", kind="cost"),  # of the static subset the objectives are measured on
    Metric("teacher_accuracy", None, "teacher validation accuracy", kind="info"),
    Metric("teacher_macs", None, "teacher MACs per inference", kind="info"),
    Metric("teacher_energy_uj", None, "teacher energy per inference", "µJ", kind="info"),
    Metric("energy_ratio", "max", "energy saving vs teacher", "×", kind="cost"),  # teacher energy / SNE energy at students_active
    # teacher MACs / SNE operations (real-valued MACs + synaptic ops) at students_active
    Metric("macs_ratio", "max", "operation saving vs teacher", "×", kind="cost"),
    Metric("spike_rate", "min", "spike rate", "spikes / neuron / step", kind="cost"),  # active students, validation
    Metric("synops", "min", "synaptic operations per inference", kind="cost"),  # at students_active
    Metric("dynamic_accuracy", "max", "dynamic-activation accuracy", kind="quality"),  # at sne.dynamic_threshold
    Metric("dynamic_students", "min", "students per sample (dynamic)", kind="cost"),
    Metric("dynamic_energy_uj", "min", "dynamic-activation energy per inference", "µJ", kind="cost"),
    Metric("distill_mse", "min", "distillation MSE", kind="quality"),  # all students, standardised teacher features
    Metric("curve", None, "accuracy-vs-energy curve (JSON)", kind="info"),  # k = 1..K and the dynamic points
)
SNE_REPORT_KEYS: tuple[str, ...] = tuple(m.name for m in SNE_METRICS)

ENTRY = register_trainable(
    TrainableEntry(
        name="sne",
        config=SNETrialConfig,
        training="trainables.sne.trainable:SNETraining",
        exporter="trainables.sne.nir_export",
        static_costs="trainables.sne.trainable:static_costs",
        metrics=SNE_METRICS,
        description="SNE: a teacher ANN distilled into an ensemble of spiking students, run as adaptive subsets",
        example={
            "data": {"name": "digits", "val_fraction": 0.2, "train_subset": 300},
            "teacher": {"arch": "cnn", "width": 8, "epochs": 2, "batch_size": 32, "lr": 1e-2},
            "sne": {"students": 3, "active": 2, "timesteps": 2, "partition": "correlation"},
            "student": {"shape": "mlp", "width": 16},
            "budget": {"epochs": 3},
        },
    )
)
