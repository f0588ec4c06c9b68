"""The spiking engine: time-first multi-step neurons, surrogate gradients and folded synaptic layers.

Shapes: every tensor that carries time is `[T, B, ...]`. Synaptic layers (Linear, Conv2d, pooling)
run once on the whole sequence by folding time into the batch (`[T*B, ...]`, see `Folded`); only
neuron dynamics loop over time.

Leaky integrate-and-fire, one step (β = 1 gives integrate-and-fire):

    H[t] = β·V[t-1] + I[t]                 membrane before firing
    S[t] = Θ(H[t] − θ)                     spike; Θ is Heaviside, its gradient a surrogate
    V[t] = H[t] − θ·S[t]                   reset "subtract" (soft)
    V[t] = H[t]·(1 − S[t])                 reset "zero" (hard)

Surrogates (x = H − θ, α = slope):
    sigmoid       dS/dx = α·σ(αx)·(1 − σ(αx))
    fast_sigmoid  dS/dx = 1 / (1 + α|x|)²
    atan          dS/dx = α / (2·(1 + (π/2·α·x)²))
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from benchmark.semantics import EventKind, OpSemantics

SurrogateName = Literal["sigmoid", "fast_sigmoid", "atan"]
ResetName = Literal["subtract", "zero"]


def _surrogate_grad(x: Tensor, name: str, slope: float) -> Tensor:
    if name == "sigmoid":
        s = torch.sigmoid(slope * x)
        return slope * s * (1 - s)
    if name == "fast_sigmoid":
        return 1.0 / (1.0 + slope * x.abs()) ** 2
    if name == "atan":
        return slope / (2 * (1 + (math.pi / 2 * slope * x) ** 2))
    raise ValueError(f"unknown surrogate {name!r}; choose one of sigmoid, fast_sigmoid, atan")


class _Heaviside(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, name: str, slope: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.name, ctx.slope = name, slope
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * _surrogate_grad(x, ctx.name, ctx.slope), None, None


def spike(x: Tensor, surrogate: SurrogateName = "sigmoid", slope: float = 4.0) -> Tensor:
    """Θ(x) forward; the named surrogate's derivative backward."""
    return _Heaviside.apply(x, surrogate, slope)


def lif_step(
    current: Tensor,
    membrane: Tensor,
    *,
    beta: float,
    threshold: float,
    reset: ResetName,
    surrogate: SurrogateName,
    slope: float,
) -> tuple[Tensor, Tensor]:
    """One LIF step: (I[t], V[t-1]) -> (S[t], V[t]), the equations of the module docstring."""
    h = beta * membrane + current
    s = spike(h - threshold, surrogate, slope)
    if reset == "subtract":
        v = h - threshold * s
    else:
        v = h * (1 - s)
    return s, v


class LIF(nn.Module):
    """Multi-step leaky integrate-and-fire neuron layer; `beta=1` is integrate-and-fire.

    Shapes: input current `[T, B, ...]` -> spikes `[T, B, ...]`. The membrane starts at
    `initial_membrane·θ` every call, so the layer holds no state between calls.
    """

    def __init__(
        self,
        beta: float = 1.0,
        threshold: float = 1.0,
        reset: ResetName = "subtract",
        surrogate: SurrogateName = "sigmoid",
        slope: float = 4.0,
        initial_membrane: float = 0.0,
    ):
        super().__init__()
        if not 0.0 < beta <= 1.0:
            raise ValueError(f"beta must be in (0, 1], got {beta}")
        if reset not in ("subtract", "zero"):
            raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
        self.beta, self.threshold, self.reset = beta, threshold, reset
        self.surrogate, self.slope = surrogate, slope
        self.initial_membrane = initial_membrane
        leak_macs = 0 if beta == 1.0 else 1
        self.op_semantics = OpSemantics(EventKind.BINARY, update_acs=1, update_macs=leak_macs)

    def forward(self, current: Tensor) -> Tensor:
        membrane = torch.full_like(current[0], self.initial_membrane * self.threshold)
        spikes = []
        for current_t in current:
            s, membrane = lif_step(
                current_t,
                membrane,
                beta=self.beta,
                threshold=self.threshold,
                reset=self.reset,
                surrogate=self.surrogate,
                slope=self.slope,
            )
            spikes.append(s)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}, reset={self.reset}, surrogate={self.surrogate}({self.slope})"


class Folded(nn.Module):
    """Runs a per-sample layer once over a whole sequence: `[T, B, ...] -> [T*B, ...] -> [T, B, ...]`."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        steps, batch = x.shape[:2]
        return self.layer(x.flatten(0, 1)).unflatten(0, (steps, batch))


class ReLU(nn.ReLU):
    """The ANN's activation, declared as a producer of analog events (every op it feeds is a MAC)."""

    op_semantics = OpSemantics(EventKind.ANALOG, payload_bits=32, stateful=False)


def neuron_layers(network: nn.Module) -> list[nn.Module]:
    """The modules of `network` that declare op semantics, in registration order."""
    return [m for m in network.modules() if getattr(m, "op_semantics", None) is not None]
