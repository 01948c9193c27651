"""Energy per operation: the presets ``cost.energy_model`` names (no torch needed to read them).

Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm: a 32-bit float multiply-accumulate
costs 4.6 pJ and an accumulate 0.9 pJ; fp16 and int8 presets scale both. Counting the
operations is :mod:`trainables.costs`' job.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EnergyModel", "ENERGY_MODELS", "energy_model"]


@dataclass(frozen=True)
class EnergyModel:
    """Energy per operation, in picojoules."""

    name: str
    e_mac_pj: float
    e_ac_pj: float


#: Horowitz, ISSCC 2014, 45 nm. fp32 is the default.
ENERGY_MODELS: dict[str, EnergyModel] = {
    "fp32_45nm": EnergyModel("fp32_45nm", 4.6, 0.9),
    "fp16_45nm": EnergyModel("fp16_45nm", 1.5, 0.4),
    "int8_45nm": EnergyModel("int8_45nm", 0.23, 0.03),
}


def energy_model(name: str) -> EnergyModel:
    """Look up an energy preset by name (``fp32_45nm``, ``fp16_45nm``, ``int8_45nm``)."""
    try:
        return ENERGY_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown energy model {name!r} (choose from {', '.join(ENERGY_MODELS)})") from None
