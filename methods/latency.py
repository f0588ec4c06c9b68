"""Latency coding framework — Lu, Ding, Yu, arXiv 2603.23206 (METHODS.md §4). Only the abstract is
public to us: the equations below are METHODS.md's reading of it, and the readings listed at the
end are this module's own.

BPTT on a discrete grid of T steps, t = 0..T-1 (T: `T`). The params.yaml key of each symbol is in
backticks.

(1) Latency-encoding (LE) module (`encoder` = le), the arch's first synaptic layer + BatchNorm:
    z       = clip(BN(W_1·x + b_1), 0, 1)              analog image x, evaluated once (MACs)
    t_f     = floor((1 − z)·T)                         z = 1 -> t_f = 0; z = 0 -> t_f = T: never fires
    S_1[t]  = 1[t = t_f]                               one binary spike per feature at most
    ∂L/∂z   = Σ_t ∂L/∂S_1[t]·S_1[t]                    straight-through: the gradient of the spike's
                                                        time bin (0 for a feature that never fires)
  `encoder` = direct (the ablation): no feature extraction, the pixel itself is the intensity,
    t_f = floor((1 − x)·T), S_0[t] = 1[t = t_f] (the same mapping as LE, so x = 0 never fires; not
    temporal.latency_times' round((1 − x)(T − 1)), which makes every pixel fire); the arch's first
    synaptic layer then feeds a hidden spiking layer like the others.

(2) Relaxed spiking. Hidden layers l (`hidden` = relaxed): multi-spike LIF, soft reset
  (snn/engine.py):
    I_l[t] = W_l·S_{l-1}[t] + b_l
    H_l[t] = β·V_l[t-1] + I_l[t];  S_l[t] = Θ(H_l[t] − θ);  V_l[t] = H_l[t] − θ·S_l[t];  V_l[-1] = 0
  β: `beta` (1 = IF), θ: `threshold`, Θ' the surrogate `surrogate` with slope α = `slope`.
  `hidden` = single-spike (the ablation): temporal.SingleSpikeIF, S_l[t] = Θ(H_l[t] − θ)·(1 − M_l[t-1]).
  Output layer L, single-spike (temporal.SingleSpikeOutput, emits its membrane):
    H_L[t] = H_L[t-1] + I_L[t];  S_L[t] = Θ(H_L[t] − θ)·(1 − M_L[t-1]);  M_L[t] = M_L[t-1] + S_L[t]

(3) Temporal adaptive decision (TAD) loss, per sample, label y:
    o_t  = H_L[t]                                       `decision_signal` = membrane
    o_t  = Σ_{τ≤t} (T − τ)·S_L[τ]                       `decision_signal` = first_spike
           (= T·TemporalDecoder("linear").cumulative(S_L))
    p_t  = softmax(o_t);  c_t = stopgrad(p_t[y]);  w_t = c_t / Σ_τ c_τ          `loss` = tad
    w_t  = 1/T                                                                  `loss` = uniform
    w_t  = 1[t = T − 1]                                                         `loss` = final
    L    = Σ_t w_t·CE(o_t, y),  averaged over the batch

(4) Inference, early exit: the class whose output neuron fires first wins, decision step t + 1;
  ties at that step are broken by the output membrane H_L at it; no output spike: argmax_c H_L,c[T-1],
  decision step T (temporal.first_spike_readout with membrane_at_first_spike).

Op semantics: with `encoder` = le the image reaches the first synaptic layer as analog values, at
step 0 only (X[0] = x, X[t>0] = 0, see `encode`): the op counter charges the LE's analog layer once,
nnz(x)·fan-out MACs; its dense ops are charged per step as for every layer. The LE emits binary
spikes, so the next layer is charged ACs. The LE's intensity-to-latency stage is charged one
neuron update (one addition) per feature and step: a down-counter from (1 − z)·T that fires in the
step where it drops below 1. With `encoder` = direct the input events are binary (ACs).

Our readings where the paper is not available to us (besides METHODS.md §4's): the LE's feature
extractor is the arch's first synaptic layer (784 -> 400 of the MLP; conv1 of a CNN) followed by a
BatchNorm with affine parameters (the arch's own BN when it has one), so the LE ablation keeps the
same synaptic layers; the image is presented once, at step 0; BN and clip run once per sample (BN
is charged no op: it folds into W_1 for inference); the same θ, surrogate and slope for hidden and
output layers; the first-spike score keeps the unnormalised weights T − τ of the equation (logit
gap T for a spike at t = 0; the linear decoder's (T − τ)/T would cap it at 1); the TAD weights are
per sample and the per-sample losses are averaged over the batch; the membrane tie-break; the
direct encoder's floor mapping; the LE's update cost; PyTorch's default initialisation of the
synaptic layers.

Shapes: encoded input `[T, B, C, H, W]` -> network -> output membrane H_L `[T, B, classes]`; the LE's
analog stage (first layer, BN) is `[1, B, ...]` (evaluated once), its spikes `[T, B, ...]`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from benchmark.contract.errors import ConfigError
from benchmark.contract.method import CodingMethod, MethodConfig, Readout
from benchmark.contract.registry import register_method
from benchmark.contract.semantics import ANALOG_VALUES, BINARY_SPIKES, EventKind, OpSemantics
from snn.arch import ArchSpec, build_network
from snn.engine import LIF, SurrogateName
from snn.layers import Folded
from snn.temporal import (SingleSpikeIF, SingleSpikeOutput, TemporalDecoder, first_spike_readout,
                                membrane_at_first_spike, spikes_at)

EncoderName = Literal["le", "direct"]
HiddenName = Literal["relaxed", "single-spike"]
SignalName = Literal["membrane", "first_spike"]
LossName = Literal["tad", "uniform", "final"]


class LatencyConfig(MethodConfig):
    # θ = 1 and Adam lr = 1e-3: a validation probe of θ ∈ {0.5, 1, 2} and lr ∈ {1e-3, 2e-3, 3e-3} (MLP,
    # T = 4) found no setting better than these by more than its noise
    T: int = Field(4, ge=1, description="time steps (paper: ultra-low latency, T = 2..8)")
    encoder: EncoderName = Field("le", description="le: learned feature extraction + latency; direct: pixel latency")
    hidden: HiddenName = Field("relaxed", description="relaxed: multi-spike LIF hidden layers; single-spike: ablation")
    threshold: float = Field(1.0, gt=0, description="firing threshold θ of hidden and output neurons")
    beta: float = Field(1.0, gt=0, le=1, description="membrane decay β of relaxed hidden neurons (1 = IF)")
    surrogate: SurrogateName = "sigmoid"
    slope: float = Field(4.0, gt=0, description="surrogate slope α")
    decision_signal: SignalName = Field("membrane", description="o_t of the loss: output membrane or first-spike score")
    loss: LossName = Field("tad", description="tad: confidence-weighted steps; uniform: 1/T; final: CE at t = T − 1")


# --- the LE module: pure functions ------------------------------------------------------------


def latency_spike_times(z: Tensor, T: int) -> Tensor:
    """t_f = floor((1 − z)·T) for intensities z ∈ [0, 1]; z = 0 gives T (never fires). int64, elementwise."""
    return torch.floor((1 - z) * T).long()


class _LatencySpikes(torch.autograd.Function):
    """S[t] = 1[t = floor((1 − z)·T)] forward; ∂L/∂z = Σ_t ∂L/∂S[t]·S[t] backward (straight-through)."""

    @staticmethod
    def forward(ctx, z: Tensor, T: int) -> Tensor:
        spikes = spikes_at(latency_spike_times(z, T), T, z.dtype)
        ctx.save_for_backward(spikes)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: Tensor):
        (spikes,) = ctx.saved_tensors
        return (grad_spikes * spikes).sum(0), None


def latency_spikes(z: Tensor, T: int) -> Tensor:
    """The LE's spikes with the straight-through gradient. Shapes: z `[B, ...]` in [0, 1] -> `[T, B, ...]`."""
    return _LatencySpikes.apply(z, T)


def check_intensities(x: Tensor, what: str) -> None:
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"latency coding needs {what} in [0, 1], got [{float(x.min())}, {float(x.max())}]")


# --- the LE module: thin modules --------------------------------------------------------------


class OnceFolded(Folded):
    """The LE's analog layer: W·x + b evaluated once, on the image presented at step 0.

    Shapes: `[T, B, ...]` (X[t>0] = 0) -> `[1, B, ...]`. A nonzero input after step 0 is an error: it
    would be ignored."""

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[0] > 1 and bool(x[1:].any()):
            raise ValueError("the LE layer reads the image presented at step 0; got nonzero input at later steps "
                             "(encode with Latency.encode: X[0] = x, X[t>0] = 0)")
        return self.layer(x[0]).unsqueeze(0)


class LatencyEncoder(nn.Module):
    """The LE's intensity-to-latency stage: z = clip(BN output, 0, 1) `[1, B, ...]` -> spikes `[T, B, ...]`.

    Binary spikes, one per feature at most; one addition per feature and step (a down-counter)."""

    def __init__(self, T: int):
        super().__init__()
        self.T = T
        self.op_semantics = OpSemantics(EventKind.BINARY, payload_bits=1, update_acs=1)

    def forward(self, current: Tensor) -> Tensor:
        if current.shape[0] != 1:
            raise ValueError(f"the LE encodes one analog frame [1, B, ...], got {tuple(current.shape)}")
        z = current[0].clamp(0, 1)  # z = clip(BN(W·x), 0, 1)
        return latency_spikes(z, self.T)

    def extra_repr(self) -> str:
        return f"T={self.T}"


# --- the TAD loss: pure functions -------------------------------------------------------------


def first_spike_score(spikes: Tensor, decoder: TemporalDecoder) -> Tensor:
    """o_t = Σ_{τ≤t} (T − τ)·S[τ] = T·(linear decoder).cumulative(S). `[T, B, C]` -> `[T, B, C]`."""
    return decoder.T * decoder.cumulative(spikes)


def tad_weights(signal: Tensor, labels: Tensor) -> Tensor:
    """w_t = c_t / Σ_τ c_τ with c_t = p_t[y] = softmax(o_t)[y], detached. `[T, B, C]`, `[B]` -> `[T, B]`."""
    with torch.no_grad():
        probabilities = signal.softmax(dim=-1)  # p_t
        confidence = probabilities.gather(-1, labels.view(1, -1, 1).expand(signal.shape[0], -1, 1)).squeeze(-1)
        return confidence / confidence.sum(dim=0, keepdim=True)


def step_weights(signal: Tensor, labels: Tensor, kind: LossName) -> Tensor:
    """w_t of the loss `kind` (module docstring, (3)). `[T, B, C]`, `[B]` -> `[T, B]`, Σ_t w_t = 1."""
    steps, batch = signal.shape[:2]
    if kind == "tad":
        return tad_weights(signal, labels)
    if kind == "uniform":
        return signal.new_full((steps, batch), 1.0 / steps)
    if kind == "final":
        weights = signal.new_zeros((steps, batch))
        weights[-1] = 1.0
        return weights
    raise ValueError(f"unknown loss {kind!r}; choose tad, uniform or final")


def temporal_loss(signal: Tensor, labels: Tensor, kind: LossName) -> Tensor:
    """L = mean over the batch of Σ_t w_t·CE(o_t, y). `[T, B, C]`, `[B]` -> scalar."""
    steps, batch = signal.shape[:2]
    if kind == "final":  # w is one-hot at T − 1: the other steps' CE need not be computed
        return F.cross_entropy(signal[-1], labels)
    weights = step_weights(signal, labels, kind)
    ce = F.cross_entropy(signal.flatten(0, 1), labels.repeat(steps), reduction="none").view(steps, batch)
    return (weights * ce).sum(0).mean()


# --- the method -------------------------------------------------------------------------------


def _with_le(network: nn.Sequential, first: str) -> nn.Sequential:
    """`network` with its first synaptic layer evaluated once (OnceFolded) and followed by a BN (the
    arch's own when it has one), before the LE neuron `act_<first>`."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    children = list(network.named_children())
    for index, (name, module) in enumerate(children):
        if name != first:
            layers[name] = module
            continue
        layer = module.layer
        layers[name] = OnceFolded(layer)
        following = children[index + 1][1]
        has_bn = isinstance(following, Folded) and isinstance(following.layer, (nn.BatchNorm1d, nn.BatchNorm2d))
        if not has_bn:
            conv = isinstance(layer, nn.Conv2d)
            layers["le_bn"] = Folded(nn.BatchNorm2d(layer.out_channels) if conv else nn.BatchNorm1d(layer.out_features))
    return nn.Sequential(layers)


@register_method("latency")
class Latency(CodingMethod):
    family = "direct"
    citation = ("Lu, Ding, Yu, arXiv 2603.23206: latency coding framework (latency encoding, relaxed spiking, "
                "temporal adaptive decision loss)")
    Config = LatencyConfig
    input_semantics = ANALOG_VALUES

    def __init__(self, config: LatencyConfig, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int):
        # the encoder's events: the analog image for LE (MACs, once), binary pixel spikes for direct
        self.input_semantics = ANALOG_VALUES if config.encoder == "le" else BINARY_SPIKES
        super().__init__(config, arch, input_shape, num_classes)

    def build(self, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        config = self.config
        first = "conv1" if arch.conv else ("fc1" if arch.hidden else None)
        if config.encoder == "le" and first is None:
            raise ConfigError(f"methods.latency.encoder: 'le' needs an architecture with a hidden or convolutional "
                              f"layer to extract features, got {arch.model_dump()}; use encoder: direct")

        def make_neuron(name: str) -> nn.Module:
            if config.encoder == "le" and name == first:
                return LatencyEncoder(config.T)
            if config.hidden == "single-spike":
                return SingleSpikeIF(config.threshold, config.surrogate, config.slope)
            return LIF(beta=config.beta, threshold=config.threshold, reset="subtract", surrogate=config.surrogate,
                       slope=config.slope)

        output = SingleSpikeOutput(config.threshold, config.surrogate, config.slope)
        output.decoder = TemporalDecoder("linear", config.T)  # moves with the network; no parameters
        network = build_network(arch, input_shape, num_classes, make_neuron, output_neuron=output)
        if config.encoder == "le":
            network = _with_le(network, first)
        return network

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """le: X[0] = x, X[t>0] = 0 (the image is presented once); direct: X[t] = 1[t = floor((1 − x)·T)].
        `[B, C, H, W]` in [0, 1] -> `[T, B, C, H, W]`."""
        T = self.config.T
        if self.config.encoder == "direct":
            check_intensities(images, "pixel intensities")  # the LE's analog layer takes any values
            return spikes_at(latency_spike_times(images, T), T, images.dtype)
        return torch.cat([images.unsqueeze(0), images.new_zeros(T - 1, *images.shape)])

    @property
    def output_layer(self) -> SingleSpikeOutput:
        return self.network[-1]

    def spikes(self, membrane: Tensor) -> Tensor:
        """S_L `[T, B, classes]` from the output membrane H_L, with the surrogate gradient."""
        return self.output_layer.spikes(membrane)

    def decision_signal(self, membrane: Tensor) -> Tensor:
        """o_t `[T, B, classes]` from H_L `[T, B, classes]` (module docstring, (3))."""
        if self.config.decision_signal == "membrane":
            return membrane
        return first_spike_score(self.spikes(membrane), self.output_layer.decoder)

    def loss(self, output: Tensor, labels: Tensor) -> Tensor:
        return temporal_loss(self.decision_signal(output), labels, self.config.loss)

    def readout(self, output: Tensor) -> Readout:
        spikes = self.output_layer.events(output)  # S_L without autograd
        return Readout(*first_spike_readout(spikes, membrane_at_first_spike(spikes, output)))
