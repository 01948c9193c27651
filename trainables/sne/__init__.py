"""SNE: a teacher ANN distilled into an ensemble of small spiking students.

Modules, in the order a trial uses them:

- ``teacher``: teacher backbones (registry), training, and the sweep-wide teacher cache;
- ``partition``: pure functions splitting the teacher's feature dimensions among the students;
- ``spiking``: LIF neurons with an arctan surrogate gradient and spike recording;
- ``students``: spiking students, their cost plans, and the ensemble with its head;
- ``distill``: the distillation loss and epoch (feature MSE, head fine-tuning, student dropout, KL);
- ``adaptive``: static (greedy) and dynamic activation, subset costs, the accuracy-vs-energy curve;
- ``trainable``: the Ray Tune function trainable, registered as ``sne``.

Nothing is imported here, so the pure modules (``partition``) load without torch or Ray.
"""

__all__ = ["adaptive", "distill", "partition", "spiking", "students", "teacher", "trainable"]
