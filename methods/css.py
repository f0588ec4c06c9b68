"""Canonic Signed Spike (CSS) coding — Gu, Gu, Shen, Huang, "Canonic Signed Spike Coding for
Efficient Spiking Neural Networks", arXiv 2408.17245 (METHODS.md §6: our reading of the abstract).

A trained ReLU `ann` is converted without retraining: BN folded, λ_l = the 99.9th percentile (params:
`norm`, `momentum`) of hidden layer l's activations on the calibration set, and the weights
normalized so that λ_l = 1 (`snn.conversion`: W_l ← W_l·λ_{l−1}/λ_l, b_l ← b_l/λ_l). Each value
is then sent most-significant digit first as a signed-digit number in base β.

Timing (params: `T` the firing window, `silent_period` d): the image is injected once at t = 0;
hidden layer l = 1..L (the first one is the encoding layer, fed the analog image) may fire during
    t0_l ≤ t < t0_l + T,     t0_0 = 0 (the image),  t0_l = t0_{l−1} + d,
and the output is read at t0_L + T − 1: latency T + d·L steps, which is this method's time axis
(`T` property) and every sample's decision step. L counts the hidden synaptic layers.

Ternary Self-Amplifying (TSA) neuron of layer l, per step t (params: `beta` β, `negative_spikes`):
    S_T = Σ_{k<T} β^(−k);   V_l = λ_l·β^d/S_T (= β^d/S_T with λ_l = 1);   c_l = V_l/β^d (c_0 = 1)
    I[t] = W_l·(c_{l−1}·s_{l−1}[t]) + b_l·1[t = t0_{l−1}]     c_{l−1} is folded into W_l at conversion
    u[t] = β·u[t−1] + I[t],   u[−1] = 0                       self-amplification
    in the window, k = t − t0_l:
        s[t] = +1   if u[t] ≥ +V/2
        s[t] = −1   if u[t] ≤ −V/2 and Σ_{j<k} s[t0_l + j]·β^(−j) > 0   (ReLU guard: never send < 0
                                                                         from a non-positive value)
        s[t] =  0   otherwise;                                           outside the window s = 0
        u[t] ← u[t] − s[t]·V                                             reset by subtraction
    value carried: â_l = c_l·Σ_{k<T} s[t0_l + k]·β^(−k) ≈ clip(z_l, 0, λ_l), z_l the ANN's pre-activation
    decoded in the source ANN's units (`decode_hidden`; λ_l from `scales`, set by `convert`): r_l = λ_l·â_l
`negative_spikes: false` drops the −1 branch only (the +V/2 threshold stays), so a digit fired on
partial input can never be taken back: the temporal-coupling error. With the whole input known
before the window (an analog input), |z − â| ≤ (V/2)·β^(−(d+T−1)), half the last digit, for
0 ≤ z ≤ λ and 1 ≤ β ≤ 3 (a residual of half a digit is at most 3/2 of the next one; above 3 it is not).

Output layer: non-spiking accumulator with the same β, bias injected at t0_L (where its input starts):
    U[t] = β·U[t−1] + W_L·(c_L·s_L[t]) + b_L·1[t = t0_L];   O[t] = U[t]·β^(−(t − t0_L)) for t ≥ t0_L
    O at the last step = W_L·â_L + b_L, the logits;  ŷ = argmax O[T + d·L − 1]

Energy convention (reported with every number): the per-step weight β^(−k) is absorbed by the
receiving neuron's amplification, so the events on the wire are ternary (EventKind.TERNARY, 2 bits)
and each nonzero event costs one signed AC per fan-out (the weight is added or subtracted); every
neuron (TSA and output) pays one shift-and-add per step for β·u + I, declared as update_acs = 1
(β ∈ {1.5, 2, 3}: u + (u >> 1), u << 1, (u << 1) + u). The encoding layer's analog input is charged
as MACs, once (the image is nonzero at t = 0 only). Biases are not charged (harness convention).
"""

from __future__ import annotations

from typing import Iterable

import torch
from pydantic import Field
from torch import Tensor, nn

from benchmark.contract.method import CodingMethod, MethodConfig, Readout
from benchmark.contract.registry import register_method
from benchmark.contract.semantics import EventKind, OpSemantics
from snn.arch import ArchSpec
from snn.conversion import (NormName, calibrate, fold_network, hidden_layer_count, normalize, skeleton,
                                  synaptic_layers, transfer)
from snn.layers import Folded


class CssConfig(MethodConfig):
    T: int = Field(8, ge=1, description="firing window of every layer (digits per value); latency is T + d·L")
    beta: float = Field(2.0, ge=1.0, le=3.0, description="self-amplification β (digit base)")
    silent_period: int = Field(1, ge=0, description="d: steps a layer waits after its input layer starts")
    negative_spikes: bool = Field(True, description="allow −1 spikes (ablation: false)")
    norm: NormName = Field("p99.9", description="λ_l: 'p99.9' (99.9th percentile) or 'max' of the activations")
    momentum: float = Field(0.1, ge=0, le=1, description="weight of each new calibration batch in λ's EMA")


def digit_sum(beta: float, window: int) -> float:
    """S_T = Σ_{k<T} β^(−k): the largest digit sum, so V = λ·β^d/S_T makes λ the largest value."""
    return sum(beta ** -k for k in range(window))


def tsa_step(
    current: Tensor,
    state: tuple[Tensor, Tensor],
    *,
    beta: float,
    threshold: float,
    digit: float,
    fire: bool,
    negative_spikes: bool,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """One TSA step: (I[t], (u[t−1], sent)) -> (s[t], (u[t], sent')), the equations of the module
    docstring; `sent` = Σ_{j<k} s·β^(−j) (the value sent so far), `digit` = β^(−k), `fire` = in window."""
    membrane, sent = state
    membrane = beta * membrane + current
    if not fire:
        return torch.zeros_like(membrane), (membrane, sent)
    spikes = (membrane >= threshold / 2).to(membrane.dtype)
    if negative_spikes:
        spikes = spikes - ((membrane <= -threshold / 2) & (sent > 0)).to(membrane.dtype)
    return spikes, (membrane - spikes * threshold, sent + spikes * digit)


class TSANeuron(nn.Module):
    """One layer of TSA neurons. Shapes: input current `[T, B, ...]` -> ternary spikes `[T, B, ...]`.

    `start` = t0_l, `bias_step` = t0_{l−1}; the bias (a buffer set by the conversion) is injected
    once, at `bias_step`. The membrane starts at 0 on every call: no state is kept between calls.
    """

    op_semantics = OpSemantics(EventKind.TERNARY, payload_bits=2, update_acs=1)

    def __init__(self, beta: float, threshold: float, window: int, start: int, bias_step: int,
                 negative_spikes: bool):
        super().__init__()
        self.beta, self.threshold, self.window = beta, threshold, window
        self.start, self.bias_step, self.negative_spikes = start, bias_step, negative_spikes
        self.register_buffer("bias", torch.zeros(()))

    def forward(self, current: Tensor) -> Tensor:
        state = (torch.zeros_like(current[0]), torch.zeros_like(current[0]))
        spikes = []
        for t, current_t in enumerate(current):
            if t == self.bias_step:
                current_t = current_t + self.bias
            k = t - self.start
            s, state = tsa_step(current_t, state, beta=self.beta, threshold=self.threshold,
                                digit=self.beta ** -k, fire=0 <= k < self.window,
                                negative_spikes=self.negative_spikes)
            spikes.append(s)
        return torch.stack(spikes)

    def extra_repr(self) -> str:
        return (f"beta={self.beta}, threshold={self.threshold:.4g}, window=[{self.start}, {self.start + self.window}), "
                f"bias_step={self.bias_step}, negative_spikes={self.negative_spikes}")


class SignedDigitOutput(nn.Module):
    """Non-spiking output accumulator with the same β: U[t] = β·U[t−1] + I[t] + b·1[t = start],
    O[t] = U[t]·β^(−(t − start)) for t ≥ start, O[t] = U[t] before. Shapes: `[T, B, classes]` in and out.

    Computed as O[t] = O[t−1] + β^(−(t − start))·I[t] after `start`: the same values, without U
    growing as β^t (float32 overflows past about 2^127 — T ≈ 128 at β = 2, T ≈ 80 at β = 3).
    """

    op_semantics = OpSemantics(EventKind.ANALOG, payload_bits=32, update_acs=1)

    def __init__(self, beta: float, start: int):
        super().__init__()
        self.beta, self.start = beta, start
        self.register_buffer("bias", torch.zeros(()))

    def forward(self, current: Tensor) -> Tensor:
        output = torch.zeros_like(current[0])
        outputs = []
        for t, current_t in enumerate(current):
            if t < self.start:
                output = self.beta * output + current_t  # O = U before the input layer starts
            elif t == self.start:
                output = self.beta * output + current_t + self.bias
            else:
                output = output + current_t * self.beta ** -(t - self.start)
            outputs.append(output)
        return torch.stack(outputs)


@register_method("css")
class Css(CodingMethod):
    family = "conversion"
    citation = "Gu, Gu, Shen, Huang, Canonic Signed Spike Coding for Efficient Spiking Neural Networks, arXiv 2408.17245"
    Config = CssConfig
    source_method = "ann"
    scales: dict[str, float]  # λ_l by the source activation's name, set by `convert`

    @property
    def T(self) -> int:
        """The time axis: the firing window plus one silent period per hidden layer, T + d·L."""
        return self.config.T + self.config.silent_period * hidden_layer_count(self.arch)

    @property
    def threshold(self) -> float:
        """V = β^d/S_T (λ = 1 after normalization)."""
        return self.config.beta ** self.config.silent_period / digit_sum(self.config.beta, self.config.T)

    def build(self, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        config, layer = self.config, iter(range(1, hidden_layer_count(arch) + 1))

        def make_neuron(name: str) -> TSANeuron:
            index = next(layer)  # build_network creates the neurons in layer order
            return TSANeuron(config.beta, self.threshold, config.T, start=index * config.silent_period,
                             bias_step=(index - 1) * config.silent_period, negative_spikes=config.negative_spikes)

        output = SignedDigitOutput(config.beta, start=hidden_layer_count(arch) * config.silent_period)
        network = skeleton(arch, input_shape, num_classes, make_neuron, output_neuron=output, bias=False)
        for synapse, receiver in _receivers(network):  # bias buffers shaped like one sample's output
            out = synapse.out_features if isinstance(synapse, nn.Linear) else synapse.out_channels
            receiver.bias = torch.zeros(out) if isinstance(synapse, nn.Linear) else torch.zeros(out, 1, 1)
        return network

    def convert(self, source: CodingMethod, calibration: Iterable[Tensor]) -> None:
        folded = fold_network(source.network, activations=(nn.ReLU,))
        self.scales = calibrate(folded, calibration, self.config.norm, self.config.momentum, activations=(nn.ReLU,))
        normalized = normalize(folded, self.scales)
        transfer(normalized, self.network)  # weights only: the skeleton's synapses have no bias
        c = 1.0 / digit_sum(self.config.beta, self.config.T)  # c_l = V_l/β^d, the same for every hidden layer
        biases = [layer.bias for layer in synaptic_layers(normalized).values()]
        with torch.no_grad():
            for index, ((synapse, receiver), bias) in enumerate(zip(_receivers(self.network), biases)):
                if index > 0:  # the encoding layer's input is the analog image: c_0 = 1
                    synapse.weight.mul_(c)
                receiver.bias.copy_(bias.view_as(receiver.bias))

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The analog image at t = 0, zeros after: `[B, C, H, W]` -> `[T + d·L, B, C, H, W]`."""
        encoded = images.new_zeros(self.T, *images.shape)
        encoded[0] = images
        return encoded

    def readout(self, output: Tensor) -> Readout:
        prediction = output[-1].argmax(dim=-1)
        return Readout(prediction, torch.full_like(prediction, self.T))

    def decode_hidden(self, name: str, events: Tensor) -> Tensor:
        """r_l = λ_l·c_l·Σ_{k<T} s[t0_l + k]·β^(−k), c_l = 1/S_T (module docstring), the spikes of layer
        `name` read over its window. Shapes: `[T + d·L, B, ...]` -> `[B, ...]`."""
        k = torch.arange(len(events), device=events.device, dtype=events.dtype) - getattr(self.network, name).start
        digits = self.config.beta ** -k  # β^(−k); outside its window the layer sends nothing
        value = torch.einsum("t,t...->...", digits, events) / digit_sum(self.config.beta, self.config.T)
        return self.scales[name] * value


def _receivers(network: nn.Sequential) -> list[tuple[nn.Linear | nn.Conv2d, nn.Module]]:
    """(synaptic layer, the TSA neuron or output accumulator that receives its current), in order."""
    pairs, synapse = [], None
    for child in network.children():
        layer = child.layer if isinstance(child, Folded) else child
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            synapse = layer
        elif isinstance(child, (TSANeuron, SignedDigitOutput)):
            pairs.append((synapse, child))
    return pairs
