"""Leaky integrate-and-fire neurons trained through an arctan surrogate gradient.

Membrane dynamics per timestep ``t`` (discrete time, no refractory period)::

    v[t] = beta * v[t-1] + I[t]          leak, then integrate the input current
    s[t] = 1 if v[t] >= threshold else 0 fire
    v[t] = v[t] - s[t] * threshold       reset by subtraction (keeps the residual charge)

The Heaviside step has zero gradient almost everywhere, so backpropagation uses the derivative
of a scaled arctan instead (Fang et al. 2021; snntorch's ``ATan``)::

    d s / d v  ~=  (alpha / 2) / (1 + (pi / 2 * alpha * (v - threshold)) ** 2)

A :class:`LIF` layer can count the spikes each sample emits while it runs (``recording``), which is
what the energy model needs: synaptic operations are measured input spike rate x timesteps x MACs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["ArctanSpike", "arctan_surrogate_grad", "lif_sequence", "LIF"]


def arctan_surrogate_grad(x: Tensor, alpha: float) -> Tensor:
    """The surrogate derivative of the spike function at ``x = v - threshold``.

    Args:
        x: Membrane potential minus threshold.
        alpha: Slope: larger values approach the true step (narrower, taller bump).

    Returns:
        ``(alpha / 2) / (1 + (pi / 2 * alpha * x) ** 2)``, positive and at most ``alpha / 2``.
    """
    return (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)


class ArctanSpike(torch.autograd.Function):
    """Heaviside forward (spike when ``x >= 0``), arctan surrogate backward."""

    @staticmethod
    def forward(ctx, x: Tensor, alpha: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_output * arctan_surrogate_grad(x, ctx.alpha), None


def lif_sequence(
    currents: Tensor,
    beta: float | Tensor,
    threshold: float | Tensor,
    alpha: float = 2.0,
    detach_reset: bool = True,
) -> tuple[Tensor, Tensor]:
    """Run LIF neurons over a sequence of input currents.

    Args:
        currents: ``T x ...`` input current per timestep (any trailing shape).
        beta: Leak factor in ``[0, 1]`` (1 = perfect integrator); a scalar tensor when learnt.
        threshold: Firing threshold (> 0); also the amount subtracted on a spike; a scalar
            tensor when learnt (it then gets gradient through the surrogate and the reset).
        alpha: Slope of the arctan surrogate gradient.
        detach_reset: Do not backpropagate through the reset. The reset only moves the
            membrane by a constant when a spike fires; routing gradient through it as well
            tends to cancel the useful part (the usual choice in snntorch/SpikingJelly).

    Returns:
        ``(spikes, membranes)``, both ``T x ...``; ``membranes[t]`` is the potential after the
        reset of step ``t`` (the state carried into step ``t + 1``).
    """
    if currents.dim() < 1 or currents.shape[0] < 1:
        raise ValueError("currents must have a leading time dimension of length >= 1")
    v = torch.zeros_like(currents[0])
    spikes, membranes = [], []
    for current in currents:
        v = beta * v + current
        s = ArctanSpike.apply(v - threshold, alpha)
        v = v - (s.detach() if detach_reset else s) * threshold
        spikes.append(s)
        membranes.append(v)
    return torch.stack(spikes), torch.stack(membranes)


class LIF(nn.Module):
    """A layer of LIF neurons acting on ``T x N x ...`` currents.

    While ``recording`` is true, the layer adds each sample's spike count (summed over time and
    neurons) to :attr:`sample_spikes`, so evaluation can turn measured spikes into synaptic
    operations per sample. Recording never affects the output.

    With ``learnable=True`` the layer's leak and threshold are trained with the weights (one of
    each per layer, as in Fang et al. 2021's parametric LIF): ``beta = sigmoid(b)`` stays in
    ``(0, 1)`` and ``threshold = softplus(t)`` stays positive; both start at the given values.
    :attr:`beta` and :attr:`threshold` always read the current values as floats (what the energy
    model, the ANN bridge and the NIR export use).

    Args:
        beta: Leak factor (initial value when learnable; learnable needs ``0 < beta < 1``).
        threshold: Firing threshold (initial value when learnable).
        alpha: Surrogate-gradient slope.
        learnable: Train ``beta`` and ``threshold``.
    """

    def __init__(self, beta: float = 0.9, threshold: float = 1.0, alpha: float = 2.0, learnable: bool = False) -> None:
        super().__init__()
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        self.alpha = float(alpha)
        self.learnable = bool(learnable)
        if self.learnable:
            # The logit of beta = 1 (or 0) is infinite: start just inside the open interval.
            b = min(max(float(beta), 1e-3), 1 - 1e-3)
            self.beta_logit = nn.Parameter(torch.tensor(math.log(b / (1 - b))))
            # softplus^-1(threshold), stable for large thresholds
            t = float(threshold)
            self.threshold_raw = nn.Parameter(torch.tensor(t + math.log(-math.expm1(-t))))
        else:
            self._beta, self._threshold = float(beta), float(threshold)
        self.recording = False
        self.sample_spikes: Tensor | None = None  # N spike counts, accumulated while recording
        self.neurons = 0  # neurons per sample (set on the first recorded forward)

    def beta_tensor(self) -> Tensor | float:
        return torch.sigmoid(self.beta_logit) if self.learnable else self._beta

    def threshold_tensor(self) -> Tensor | float:
        return torch.nn.functional.softplus(self.threshold_raw) if self.learnable else self._threshold

    @property
    def beta(self) -> float:
        """The current leak factor."""
        return float(self.beta_tensor().detach()) if self.learnable else self._beta

    @property
    def threshold(self) -> float:
        """The current firing threshold."""
        return float(self.threshold_tensor().detach()) if self.learnable else self._threshold

    def forward(self, currents: Tensor) -> Tensor:
        spikes, _ = lif_sequence(currents, self.beta_tensor(), self.threshold_tensor(), self.alpha)
        if self.recording:
            counts = spikes.detach().sum(dim=0).flatten(1).sum(dim=1)
            self.neurons = int(spikes[0, 0].numel())
            self.sample_spikes = counts if self.sample_spikes is None else torch.cat([self.sample_spikes, counts])
        return spikes

    def start_recording(self) -> None:
        """Clear the counts and record from the next forward on."""
        self.recording, self.sample_spikes = True, None

    def stop_recording(self) -> Tensor:
        """Stop recording; return the per-sample spike counts gathered since the start."""
        self.recording = False
        counts = self.sample_spikes if self.sample_spikes is not None else torch.zeros(0)
        self.sample_spikes = None
        return counts

    def extra_repr(self) -> str:
        return f"beta={self.beta:.4g}, threshold={self.threshold:.4g}, alpha={self.alpha}, learnable={self.learnable}"
