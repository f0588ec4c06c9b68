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
W_l ← W_l·λ_{l−1}/λ_l, b_l ← b_l/λ_l (`benchmark.conversion`), then for t = 0..T−1 (params: `T`):

    I_l[t] = W_l·S_{l−1}[t] + b_l,  S_0[t] = x      analog input every step
    H_l[t] = V_l[t−1] + I_l[t],     V_l[−1] = φ·θ   initial membrane θ/2 (φ: `initial_membrane`)
    S_l[t] = Θ(H_l[t] − θ);  V_l[t] = H_l[t] − θ·S_l[t]     IF, θ = 1 (≡ θ_l = λ_l), soft reset
    O[t] = (1/(t+1))·Σ_{τ≤t} (W_L·S_{L−1}[τ] + b_L);  ŷ = argmax O[T−1];  decision step = T

With φ = 1/2 the expected conversion error is zero for any T (Bu et al.), and at T = L an IF neuron
with a constant input z/λ fires floor(z·L/λ + 1/2) times (clipped to 0..L): its rate is exactly the
QCFS activation h(z)/λ.
Energy: as `convert` — binary spikes feed ACs, the analog input's first layer MACs.
Implementation note: the harness trains with Adam (one learning rate for every parameter), where the
paper used SGD; λ therefore moves about `lr` per step, so `lambda_init` matters more here.
"""

from __future__ import annotations

from typing import Iterable

import torch
from pydantic import Field
from torch import Tensor, nn

from benchmark.arch import ArchSpec, build_network
from benchmark.conversion import ConversionError, RateConversion, fold_network, if_network, normalize, transfer
from benchmark.method import CodingMethod, MethodConfig
from benchmark.registry import register_method
from benchmark.semantics import ANALOG_VALUES
from methods.ann import Ann


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
    lambda_init: float = Field(8.0, gt=0, description="initial λ of every layer (the paper's code: 8.0)")


@register_method("qcfs-ann")
class QcfsAnn(Ann):
    """The QCFS-activated ANN; encode, loss and readout are the `ann` method's (T = 1)."""

    family = "ann"
    citation = "Bu et al., Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency SNNs, ICLR 2022"
    Config = QcfsAnnConfig

    def build(self, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        if self.config.T != 1:
            raise ValueError(f"methods.qcfs-ann.T must be 1 (an ANN takes one pass), got {self.config.T}")
        return build_network(arch, input_shape, num_classes,
                             make_neuron=lambda name: QCFS(self.config.levels, self.config.lambda_init))


class QcfsConfig(MethodConfig):
    T: int = Field(8, ge=1, description="time steps")
    initial_membrane: float = Field(0.5, ge=0, le=1, description="V[−1] as a fraction of θ (the paper: 1/2)")


@register_method("qcfs")
class Qcfs(RateConversion):
    """Encode, loss and readout: `RateConversion`'s (the module docstring's x every step, O[T−1], decision step T)."""

    citation = "Bu et al., Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency SNNs, ICLR 2022"
    Config = QcfsConfig
    source_method = "qcfs-ann"

    def build(self, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        return if_network(arch, input_shape, num_classes, initial_membrane=self.config.initial_membrane)

    def convert(self, source: CodingMethod, calibration: Iterable[Tensor]) -> None:
        """λ_l comes from the trained activations; `calibration` is not needed."""
        folded = fold_network(source.network, activations=(QCFS,))
        scales = {name: float(child.lam.detach()) for name, child in folded.named_children() if isinstance(child, QCFS)}
        for name, value in scales.items():
            if not value > 0:
                raise ConversionError(f"activation {name!r} has a trained λ = {value}; a threshold must be positive")
        transfer(normalize(folded, scales), self.network)
