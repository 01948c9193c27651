"""Trainable families (G2GNet, SNE), their data, costs and the report contract.

Trainables know nothing of the search or the analysis.
"""

from trainables.registry import TrainableEntry, get_trainable, register_trainable, trainable_names
from trainables.report import BASE_KEYS

__all__ = ["TrainableEntry", "get_trainable", "register_trainable", "trainable_names", "BASE_KEYS"]
