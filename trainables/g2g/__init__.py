"""G2GNet: group-to-group sparse MLPs, their baselines, and dynamic sparse training.

The building blocks are re-exported here; the Ray trainable lives in
``trainables.g2g.trainable`` (imported by the registry, so that importing the layers does not
import Ray).
"""

from trainables.g2g.block import BlockSparseLinear, block_pattern
from trainables.g2g.hebbian import HebbianMoments, hebbian_scores
from trainables.g2g.layers import GROUPINGS, MaskedLinear, er_mask, expected_density, g2g_mask, layer_groupings
from trainables.g2g.model import GRANULARITIES, MODEL_KINDS, G2GNet, ModelConfig, build_model, matched_dense_width
from trainables.g2g.rewiring import DSTConfig, DynamicSparseTraining, rewire_blocks, rewire_edges, rewire_fraction

__all__ = [
    "GROUPINGS",
    "GRANULARITIES",
    "MODEL_KINDS",
    "MaskedLinear",
    "BlockSparseLinear",
    "G2GNet",
    "ModelConfig",
    "build_model",
    "matched_dense_width",
    "g2g_mask",
    "er_mask",
    "expected_density",
    "layer_groupings",
    "block_pattern",
    "hebbian_scores",
    "HebbianMoments",
    "DSTConfig",
    "DynamicSparseTraining",
    "rewire_edges",
    "rewire_blocks",
    "rewire_fraction",
]
