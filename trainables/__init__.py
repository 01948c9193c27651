"""Trainable families (G2GNet, SNE), their configs, data, costs, the report contract and the trial loop.

Trainables know nothing of the search or the analysis. Importing this package, the registry or
a family's config model loads neither torch nor Ray.
"""

from trainables.registry import TrainableEntry, get_trainable, register_trainable, trainable_names
from trainables.report import BASE_KEYS

__all__ = ["TrainableEntry", "get_trainable", "register_trainable", "trainable_names", "BASE_KEYS"]
