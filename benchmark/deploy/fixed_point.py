"""Quantizes a run's network to fixed point — per-layer symmetric k-bit weights, 16-bit membranes — and
evaluates it without retraining: accuracy, agreement with the float network, op counts.

Weights, every plain Linear/Conv2d l (a method's `fold_for_inference` hook runs first, so weights
computed at run time are plain weights), k bits, per-layer symmetric scale from the trained weights:

    s_l = max|W_l| / (2^(k−1) − 1)
    Ŵ_l = s_l · clamp(round(W_l / s_l), −(2^(k−1) − 1), 2^(k−1) − 1)      round: half away from zero

(k = 8: 127 levels a side, k = 4: 7). Biases stay as trained and enter the membrane with the current,
where they take its format. The ANN is quantized the same way: its weights, and its pre-activations
held like membranes.

Membranes, b = 16 bits two's complement, one format per neuron layer l:

    fix_l(v) = Δ_l · clamp(round(v/Δ_l), −2^(b−1), 2^(b−1) − 1),    Δ_l = 2^(⌈log2 m_l⌉ − (b − 1))

m_l is the largest |value| the layer holds on a calibration batch of training samples run in float
(its membrane H where the layer's dynamics are known, else its input current), and at least its
threshold θ_l, so [−m_l, m_l] fits in the format and θ_l is on its grid for θ_l ≥ Δ_l. Per layer:

    exact (snn.engine.LIF)        Î = fix(I);  H[t] = fix(fix(β̂·V[t−1]) + Î[t]);  S[t] = Θ(H[t] − θ̂);
                                  V[t] = H[t] − θ̂·S[t] (subtract) or H[t]·(1 − S[t]) (zero);
                                  V[−1] = fix(φ·θ̂);  θ̂ = fix(θ);  β̂ = round(β·2^15)/2^15 (β < 1)
    exact (snntorch.Leaky held by the layer)   Î = fix(I); β̂, θ̂ as above; snnTorch's own `state_quant`
                                  hook rounds its membrane after every update
    exact (single-spike IF, Integrator)        H[t] = fix(H[t−1] + Î[t]); the mask, the spikes and the
                                  Integrator's U[t]/(t + 1) as in float
    input-only (any other layer that declares op semantics: ternary, graded, stateless activations)
                                  its input current is fix()'d; its internal state stays float

Every fix() counts the values it clamps (`saturated`: clamped / rounded values over the test set).

Shapes: `[T, B, ...]` everywhere, as the network takes it.
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Iterable

import snntorch
import torch
from torch import Tensor, nn

from benchmark.contract.method import CodingMethod
from benchmark.contract.semantics import OpSemantics, semantics_of
from benchmark.deploy.nir_export import leaves
from benchmark.metrics.ops import OpCounter, OpCounts
from snn.conversion import Integrator
from snn.engine import LIF
from snn.temporal import SingleSpikeIF, SingleSpikeOutput, fire_once

MEMBRANE_BITS = 16
LEAK_FRACTION_BITS = 15  # β̂ = round(β·2^15)/2^15


def round_half_away(x: Tensor) -> Tensor:
    """round(x) with ties away from zero: sign(x)·floor(|x| + 1/2)."""
    return torch.sign(x) * torch.floor(x.abs() + 0.5)


def quantize_weight(weight: Tensor, bits: int) -> tuple[Tensor, float]:
    """(Ŵ, s): the symmetric per-layer quantization of the module docstring; an all-zero W stays zero."""
    if bits < 2:
        raise ValueError(f"weights need at least 2 bits for a symmetric scale, got {bits}")
    levels = 2 ** (bits - 1) - 1
    largest = float(weight.detach().abs().max()) if weight.numel() else 0.0
    if largest == 0.0:
        return weight.detach().clone(), 0.0
    scale = largest / levels
    return round_half_away(weight.detach() / scale).clamp(-levels, levels) * scale, scale


class Grid:
    """fix(v) on a b-bit grid of step Δ (module docstring); counts the values it rounds and clamps."""

    def __init__(self, step: float, bits: int = MEMBRANE_BITS):
        self.step, self.bits = step, bits
        self.low, self.high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        self.values = self.saturated = 0

    @classmethod
    def covering(cls, largest: float, bits: int = MEMBRANE_BITS) -> "Grid":
        """Δ = 2^(⌈log2 m⌉ − (b − 1)), m = `largest` (1 when it is 0)."""
        largest = largest if largest > 0 else 1.0
        return cls(2.0 ** (math.ceil(math.log2(largest)) - (bits - 1)), bits)

    def __call__(self, x: Tensor) -> Tensor:
        units = round_half_away(x / self.step)
        self.values += units.numel()
        self.saturated += int(((units < self.low) | (units > self.high)).sum())
        return units.clamp(self.low, self.high) * self.step


class Observer:
    """Calibration: passes values through unchanged and keeps the largest |value|."""

    def __init__(self):
        self.largest = 0.0

    def __call__(self, x: Tensor) -> Tensor:
        if x.numel():
            self.largest = max(self.largest, float(x.detach().abs().max()))
        return x


def _leaky_of(module: nn.Module) -> snntorch.Leaky | None:
    return next((m for m in module.modules() if isinstance(m, snntorch.Leaky)), None)


def _integrate(current: Tensor, fix: Callable[[Tensor], Tensor], *, beta: float = 1.0, threshold: float | None = None,
               reset: str = "none", initial: float = 0.0) -> tuple[Tensor, Tensor]:
    """(S, H) `[T, B, ...]` of the exact fixed-point update (module docstring); threshold None: no firing."""
    v = fix(torch.full_like(current[0], initial))
    spikes, membranes = [], []
    for current_t in fix(current):
        h = fix((fix(beta * v) if beta != 1.0 else v) + current_t)
        s = (h >= threshold).to(h.dtype) if threshold is not None else torch.zeros_like(h)
        v = h - threshold * s if reset == "subtract" else h * (1 - s) if reset == "zero" else h
        spikes.append(s)
        membranes.append(h)
    return torch.stack(spikes), torch.stack(membranes)


def leak(beta: float) -> float:
    """β̂ = round(β·2^15)/2^15 for β < 1; 1 stays 1."""
    return 1.0 if beta == 1.0 else round(beta * 2 ** LEAK_FRACTION_BITS) / 2 ** LEAK_FRACTION_BITS


class FixedPointNeuron(nn.Module):
    """A neuron layer run in fixed point (module docstring); `fix` is an `Observer` while calibrating,
    a `Grid` after. Attributes it lacks (op semantics, `events`, `spikes`, a decoder) are the wrapped
    layer's, so the op counter and the method's readout see the layer they know."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.fix: Observer | Grid = Observer()
        if isinstance(inner, (LIF, SingleSpikeIF, Integrator)) or _leaky_of(inner) is not None:
            self.membrane = "exact"
        else:
            self.membrane = "input-only"

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "inner":
                raise
            return getattr(self.inner, name)

    @property
    def threshold_value(self) -> float:
        threshold = getattr(self.inner, "threshold", None)
        leaky = _leaky_of(self.inner)
        if leaky is not None:
            threshold = leaky.threshold
        return float(torch.as_tensor(threshold).max()) if threshold is not None else 0.0

    def calibrated(self) -> None:
        """Switches from calibration to the grid covering what was observed and the threshold."""
        self.fix = Grid.covering(max(self.fix.largest, self.threshold_value))
        inner, fix = self.inner, self.fix
        leaky = _leaky_of(inner)
        if isinstance(inner, (LIF, SingleSpikeIF)):
            inner.threshold = float(fix(torch.tensor(float(inner.threshold))))
        if leaky is not None:
            with torch.no_grad():
                leaky.beta.copy_(torch.tensor(leak(float(leaky.beta))))
                leaky.threshold.copy_(fix(leaky.threshold.detach()))
        fix.values = fix.saturated = 0

    def forward(self, current: Tensor) -> Tensor:
        inner, fix = self.inner, self.fix
        if isinstance(inner, LIF):
            beta = leak(inner.beta) if isinstance(fix, Grid) else inner.beta
            spikes, _ = _integrate(current, fix, beta=beta, threshold=inner.threshold, reset=inner.reset,
                                   initial=inner.initial_membrane * inner.threshold)
            return spikes
        if isinstance(inner, SingleSpikeIF) or isinstance(inner, Integrator):
            _, membrane = _integrate(current, fix)
            if isinstance(inner, SingleSpikeOutput):
                return membrane
            if isinstance(inner, SingleSpikeIF):
                return fire_once(membrane, threshold=inner.threshold)
            steps = torch.arange(1, current.shape[0] + 1, dtype=current.dtype, device=current.device)
            return membrane / steps.view(-1, *([1] * (current.dim() - 1)))
        leaky = _leaky_of(inner)
        if leaky is not None:
            leaky.state_quant = fix  # snnTorch rounds its membrane with it after every update
        return inner(fix(current))


def quantize(network: nn.Module, bits: int) -> list[dict]:
    """Quantizes every plain Linear/Conv2d weight of `network` in place to `bits` bits; returns one
    row per layer {layer, weight_scale} (scale 0: all-zero weights; None: a subclass left float)."""
    rows = []
    for name, module in network.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            if type(module) not in (nn.Linear, nn.Conv2d):
                rows.append({"layer": name, "weight_scale": None, "note": f"{type(module).__name__} left in float"})
                continue
            quantized, scale = quantize_weight(module.weight, bits)
            with torch.no_grad():
                module.weight.copy_(quantized)
            rows.append({"layer": name, "weight_scale": scale})
    return rows


def wrap_neurons(network: nn.Module) -> dict[str, FixedPointNeuron]:
    """Replaces every layer of `network` that declares op semantics by a `FixedPointNeuron` around it."""
    wrapped = {}
    for name, module in leaves(network):
        if semantics_of(module) is None:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = network.get_submodule(parent_name) if parent_name else network
        wrapped[name] = FixedPointNeuron(module)
        setattr(parent, child, wrapped[name])
    return wrapped


@torch.no_grad()
def fixed_point_method(method: CodingMethod, weight_bits: int, calibration: Tensor) -> tuple[CodingMethod, list[dict]]:
    """A copy of `method` with `weight_bits`-bit weights and 16-bit membranes, calibrated on the encoded
    training batch `calibration` `[T, B, ...]`; and its per-layer report {layer, weight_scale} /
    {layer, membrane, membrane_step, range}."""
    fixed = copy.deepcopy(method)
    weights = quantize(fixed.network, weight_bits)
    neurons = wrap_neurons(fixed.network)
    fixed.network.eval()
    fixed.network(calibration)
    rows = []
    for name, neuron in neurons.items():
        neuron.calibrated()
        rows.append({"layer": name, "membrane": neuron.membrane, "membrane_step": neuron.fix.step,
                     "range": neuron.fix.step * 2 ** (MEMBRANE_BITS - 1)})
    return fixed, weights + rows


def saturation(method: CodingMethod) -> dict[str, float]:
    """Per neuron layer: the share of values its membrane format clamped since calibration."""
    return {name: (m.fix.saturated / m.fix.values if m.fix.values else 0.0)
            for name, m in leaves_of(method.network) if isinstance(m.fix, Grid)}


def leaves_of(network: nn.Module) -> list[tuple[str, FixedPointNeuron]]:
    return [(name, module) for name, module in leaves(network) if isinstance(module, FixedPointNeuron)]


@torch.no_grad()
def run_counted(method: CodingMethod, encoded: Iterable[Tensor], input_semantics: OpSemantics
                ) -> tuple[Tensor, OpCounts]:
    """Predictions `[N]` of `method` on the encoded batches, and its op counts on them."""
    method.network.eval()
    predictions = []
    with OpCounter(method.network, input_semantics) as counter:
        for x in encoded:
            predictions.append(method.readout(method.network(x)).prediction.cpu())
    return torch.cat(predictions), counter.compute()
