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

Training runs the whole sequence as one autograd node (:class:`LIFSequence`): the forward steps
the same arithmetic in place without recording a graph, and the backward is the recurrence
written out (the surrogate of every step at once, then one fused multiply-add per step back in
time). :func:`lif_sequence` is the same neuron through autograd, step by step, kept as the
reference the tests compare against.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["ArctanSpike", "arctan_surrogate_grad", "lif_sequence", "lif_spikes", "LIFSequence", "LIF"]


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


class LIFSequence(torch.autograd.Function):
    """LIF spikes over ``T`` steps as one autograd node (reset by subtraction, detached).

    Forward, per step and in place: ``v = beta·v + I[t]``; ``x[t] = v - threshold``;
    ``s[t] = x[t] >= 0``; ``v -= s[t]·threshold``: the arithmetic of :func:`lif_sequence`, so
    the spikes of finite membranes are bit for bit the same. ``x`` (the pre-spike membrane minus threshold) and the
    spikes are kept for the backward (the spikes are the next layer's input, saved there too).
    Per-step tensors keep the memory layout of the input current (channels-last stays so).

    Backward, with ``g`` the gradient of the spikes and ``σ'`` the arctan surrogate at ``x``
    (every step in two passes) and ``a[t] = ∂L/∂(pre-spike membrane at t)``::

        a[T-1] = g[T-1]·σ'[T-1];   a[t] = g[t]·σ'[t] + beta·a[t+1]
        ∂L/∂I[t] = a[t]
        ∂L/∂threshold = -Σ g·σ' - beta·Σ_{t<T-1} a[t+1]·s[t]       (fire, then reset)
        ∂L/∂beta = Σ_{t<T-1} a[t+1]·v[t]                           (v: post-reset membrane)

    The sums are dot products over memory (no temporaries).
    """

    @staticmethod
    def forward(ctx, currents: Tensor, beta: Tensor, threshold: Tensor, alpha: float) -> Tensor:  # type: ignore[override]
        b, thr = float(beta), float(threshold)
        x = _empty_steps(currents)
        spikes = torch.empty_like(x)
        v = torch.zeros_like(x[0])
        for t in range(currents.shape[0]):
            v.mul_(b).add_(currents[t])
            torch.sub(v, thr, out=x[t])
            # x >= 0 as 0/1 floats: min(sign(x) + 1, 1), three float passes in place (a
            # comparison's bool tensor and its conversion cost about three times as much on
            # the CPU). NaN stays NaN: a diverged membrane shows in the loss at once.
            torch.sign(x[t], out=spikes[t]).add_(1).clamp_(max=1)
            v.sub_(spikes[t], alpha=thr)
        ctx.save_for_backward(x, spikes)
        ctx.beta, ctx.threshold, ctx.alpha = b, thr, float(alpha)
        return spikes

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, spikes = ctx.saved_tensors
        b, thr, alpha = ctx.beta, ctx.threshold, ctx.alpha
        want_beta, want_threshold = ctx.needs_input_grad[1:3]
        # g·σ'(x) = g / (2/alpha + (pi²·alpha/2)·x²): one multiply-add, one division; then
        # a[t] += beta·a[t+1], last step first. Step by step, so each step's tensors are still
        # in the cache for the next op (and keep a 4-D layout the kernels vectorise: the same
        # ops on the whole channels-last T × N × C × H × W tensor took 5x as long).
        a = torch.empty_like(x)
        denom = torch.empty_like(x[0])
        floor = x.new_tensor(2.0 / alpha)
        for t in range(x.shape[0] - 1, -1, -1):
            torch.addcmul(floor, x[t], x[t], value=math.pi**2 * alpha / 2, out=denom)
            torch.div(grad[t], denom, out=a[t])
            if t + 1 < x.shape[0]:
                a[t].add_(a[t + 1], alpha=b)
        grad_beta = grad_threshold = None
        if want_beta or want_threshold:
            # Each sum reads a[1:] once: Σ a[1:], Σ a[1:]·s[:-1] and (for beta) Σ a[1:]·x[:-1].
            later = _flat(a[1:])
            a_fired = torch.dot(later, _flat(spikes[:-1]))
            sum_later = later.sum()
            if want_threshold:
                # -Σ g·σ' = -Σ_t (a[t] - beta·a[t+1]) = -(a[0] + (1 - beta)·Σ a[1:]).
                grad_threshold = -(a[0].sum() + (1 - b) * sum_later + b * a_fired)
            if want_beta:
                # v[t] = x[t] + threshold·(1 - s[t])
                grad_beta = torch.dot(later, _flat(x[:-1])) + thr * (sum_later - a_fired)
        return a, grad_beta, grad_threshold, None


def _empty_steps(currents: Tensor) -> Tensor:
    """An uninitialised ``T × …`` tensor whose steps have the layout of ``currents[0]``."""
    step = currents[0]
    if step.dim() == 4 and not step.is_contiguous() and step.is_contiguous(memory_format=torch.channels_last):
        n, c, h, w = step.shape
        return currents.new_empty((currents.shape[0], n, h, w, c)).permute(0, 1, 4, 2, 3)
    return currents.new_empty(currents.shape)


def _flat(t: Tensor) -> Tensor:
    """A dense tensor as a 1-D view in memory order (a copy only if it is not dense)."""
    order = sorted(range(t.dim()), key=lambda d: -t.stride(d))
    return t.permute(order).reshape(-1)


def lif_spikes(currents: Tensor, beta: float | Tensor, threshold: float | Tensor, alpha: float = 2.0) -> Tensor:
    """The spikes of :func:`lif_sequence` (reset detached) through the fused :class:`LIFSequence`.

    ``beta`` and ``threshold`` may be learnt scalar tensors; they get their gradients.
    """
    if currents.dim() < 1 or currents.shape[0] < 1:
        raise ValueError("currents must have a leading time dimension of length >= 1")
    beta_t = beta if isinstance(beta, Tensor) else torch.tensor(float(beta))
    threshold_t = threshold if isinstance(threshold, Tensor) else torch.tensor(float(threshold))
    return LIFSequence.apply(currents, beta_t, threshold_t, alpha)


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

    #: Run the neuron through :class:`LIFSequence` (False: step by step through autograd,
    #: :func:`lif_sequence`; the two give the same spikes and, to rounding, the same gradients).
    fused = True

    def forward(self, currents: Tensor) -> Tensor:
        if self.fused:
            spikes = lif_spikes(currents, self.beta_tensor(), self.threshold_tensor(), self.alpha)
        else:
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
