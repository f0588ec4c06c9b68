"""Quantization-clip-floor-shift (QCFS) conversion — Bu, Fang, Ding, Dai, Yu, Huang, "Optimal
ANN-SNN Conversion for High-accuracy and Ultra-low-latency Spiking Neural Networks", ICLR 2022
(METHODS.md §5).

Two registered methods, trained and converted by the pipeline in turn:

`qcfs-ann` (family ann): the shared architecture with the QCFS activation after every hidden
synaptic layer, trained with cross-entropy like `ann` (T = 1):

    h(z) = λ·clip(floor(z·L/λ + 1/2)/L, 0, 1)          L: `levels`; λ: one trainable scalar per layer,
                                                        initialised to `lambda_init`
    backward: floor is straight-through (d floor(y)/dy := 1), so for 0 < z < λ
        ∂h/∂z = 1,   ∂h/∂λ = h/λ − z/λ;   for z > λ ∂h/∂z = 0, ∂h/∂λ = 1;   for z < 0 both are 0.

`qcfs` (family conversion, source `qcfs-ann`): BN folded, λ_l read from the trained activations,
W_l ← W_l·λ_{l−1}/λ_l, b_l ← b_l/λ_l (`snn.conversion`), then for t = 0..T−1 (params: `T`):

    I_l[t] = W_l·S_{l−1}[t] + b_l,  S_0[t] = x      analog input every step
    H_l[t] = V_l[t−1] + I_l[t],     V_l[−1] = φ·θ   initial membrane θ/2 (φ: `initial_membrane`)
    S_l[t] = Θ(H_l[t] − θ);  V_l[t] = H_l[t] − θ·S_l[t]     IF, θ = 1 (≡ θ_l = λ_l), soft reset
    O[t] = (1/(t+1))·Σ_{τ≤t} (W_L·S_{L−1}[τ] + b_L);  ŷ = argmax O[T−1];  decision step = T

With φ = 1/2 the expected conversion error is zero for any T (Bu et al.), and at T = L an IF neuron
with a constant input z/λ fires floor(z·L/λ + 1/2) times (clipped to 0..L): its rate is exactly the
QCFS activation h(z)/λ.
Energy: as `convert` — binary spikes feed ACs, the held analog input's first layer MACs, charged once.
Initial λ (`lambda_init`): the paper's code starts every λ at 8.0 and trains with SGD (lr 0.1), where
λ's gradient — summed over every unit of its layer — moves it to the activations' scale within a few
steps. The harness trains with Adam, which moves λ by about `lr` per step whatever its gradient, so λ
stays near where it starts. Started far above the activations (λ = 4 against a conv layer's 99.9th
percentile of 1.5 on Fashion-MNIST), the ANN learns to rely on the dead zone z < λ/(2L) (most units
rounded to 0), and a converted network loses it as T grows past L: the IF rate tends to clip(z/λ, 0, 1)
(the grid qcfs-T-cnn measures the converted CNN against T).
`lambda_init: data` (the default) therefore sets each λ_l, in order, to the 99.9th percentile of its
layer's pre-activation z_l on one training batch before training (`initialize`), as the conversion's
p99.9 normalization would; a number starts every λ there instead.
"""

from __future__ import annotations

from typing import Iterable, Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor, nn

from benchmark.contract.method import CodingMethod, MethodConfig
from benchmark.contract.registry import register_method
from benchmark.contract.semantics import ANALOG_VALUES
from methods.ann import Ann
from methods.rate_conversion import RateConversion
from snn.arch import ArchSpec, build_network
from snn.conversion import ConversionError, fold_network, if_network, normalize, percentile, transfer


def floor_ste(y: Tensor) -> Tensor:
    """floor(y) forward, identity backward (straight-through)."""
    return y + (torch.floor(y) - y).detach()


def qcfs(z: Tensor, lam: Tensor, levels: int) -> Tensor:
    """h(z) = λ·clip(floor(z·L/λ + 1/2)/L, 0, 1), computed as λ·floor(clip(z/λ, 0, 1)·L + 1/2)/L with a
    straight-through floor: the same values, and clipping first (as the paper's code does) keeps the
    gradient alive for activations rounded down to 0 (torch.clamp passes no gradient at its bounds)."""
    return lam * floor_ste(torch.clamp(z / lam, 0.0, 1.0) * levels + 0.5) / levels


class QCFS(nn.Module):
    """The QCFS activation of one layer; owns its trainable λ (`lam`). Shapes: `[T, B, ...]` in and out."""

    op_semantics = ANALOG_VALUES  # an ANN activation: every synaptic op it feeds is a MAC

    def __init__(self, levels: int, lambda_init: float):
        super().__init__()
        self.levels = levels
        self.lam = nn.Parameter(torch.tensor(float(lambda_init)))

    def forward(self, z: Tensor) -> Tensor:
        return qcfs(z, self.lam, self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, lam={float(self.lam):.4g}"


class QcfsAnnConfig(MethodConfig):
    levels: int = Field(8, ge=1, description="quantization levels L")
    lambda_init: Literal["data"] | float = Field(
        "data", description="initial λ: 'data' (each layer's p99.9 pre-activation on a training batch) or a "
                            "positive number for every layer (the paper's code: 8.0)")

    @field_validator("lambda_init")
    @classmethod
    def _positive(cls, value: str | float) -> str | float:
        if not isinstance(value, str) and not value > 0:
            raise ValueError(f"lambda_init must be 'data' or a positive number, got {value}")
        return value


@register_method("qcfs-ann")
class QcfsAnn(Ann):
    """The QCFS-activated ANN; encode, loss and readout are the `ann` method's (T = 1)."""

    family = "ann"
    citation = "Bu et al., Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency SNNs, ICLR 2022"
    Config = QcfsAnnConfig

    def build(self, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        if self.config.T != 1:
            raise ValueError(f"methods.qcfs-ann.T must be 1 (an ANN takes one pass), got {self.config.T}")
        initial = 1.0 if self.config.lambda_init == "data" else self.config.lambda_init  # "data": set in initialize
        return build_network(arch, input_shape, num_classes, make_neuron=lambda name: QCFS(self.config.levels, initial))

    @torch.no_grad()
    def initialize(self, encoded: Tensor) -> None:
        """`lambda_init: data`: λ_l = p99.9 of z_l on the encoded batch, layer by layer (a pre-hook sets
        λ_l before its layer runs, so the layers after it see the activations of the new λ_l)."""
        if self.config.lambda_init != "data":
            return

        def fit(activation: QCFS, inputs: tuple[Tensor]) -> None:
            value = float(percentile(inputs[0], 99.9))
            if not value > 0:
                raise ValueError(f"lambda_init: data found no positive pre-activation before {activation!r} on "
                                 "the initialisation batch; set lambda_init to a number")
            activation.lam.fill_(value)

        handles = [module.register_forward_pre_hook(fit) for module in self.network.modules() if isinstance(module, QCFS)]
        try:
            self.network(encoded)
        finally:
            for handle in handles:
                handle.remove()


class QcfsConfig(MethodConfig):
    T: int = Field(8, ge=1, description="time steps")
    initial_membrane: float = Field(0.5, ge=0, le=1, description="V[−1] as a fraction of θ (the paper: 1/2)")


@register_method("qcfs")
class Qcfs(RateConversion):
    """Encode and readout: `RateConversion`'s (the module docstring's x every step, O[T−1], decision step T)."""

    citation = "Bu et al., Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency SNNs, ICLR 2022"
    Config = QcfsConfig
    source_method = "qcfs-ann"

    def build(self, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        return if_network(arch, input_shape, num_classes, initial_membrane=self.config.initial_membrane)

    def convert(self, source: CodingMethod, calibration: Iterable[Tensor]) -> None:
        """λ_l comes from the trained activations; `calibration` is not needed."""
        folded = fold_network(source.network, activations=(QCFS,))
        self.scales = {name: float(child.lam.detach()) for name, child in folded.named_children()
                       if isinstance(child, QCFS)}
        for name, value in self.scales.items():
            if not value > 0:
                raise ConversionError(f"activation {name!r} has a trained λ = {value}; a threshold must be positive")
        transfer(normalize(folded, self.scales), self.network)
