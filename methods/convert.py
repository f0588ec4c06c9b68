"""Rate-coded ANN-to-SNN conversion with data-based normalization — Diehl et al., "Fast-classifying,
high-accuracy spiking deep networks through weight and threshold balancing", IJCNN 2015; Rueckauer
et al., "Conversion of continuous-valued deep networks to efficient event-driven networks for image
classification", Front. Neurosci. 11:682, 2017 (METHODS.md §5).

The trained `ann` is converted by `snn.conversion`: BN folded, λ_l from the calibration set
(max or 99.9th percentile, momentum EMA over batches; params: `norm`, `momentum`), W_l ← W_l·λ_{l−1}/λ_l,
b_l ← b_l/λ_l. The spiking network then runs, for t = 0..T−1 (params: `T`):

    X[t] = x                                   analog input held at every step (first layer: MACs, once)
    I_l[t] = W_l·S_{l−1}[t] + b_l              S_0 = X
    H_l[t] = V_l[t−1] + I_l[t]                 integrate-and-fire, V_l[−1] = 0
    S_l[t] = Θ(H_l[t] − 1)                     binary spikes, threshold 1 (≡ θ_l = λ_l unscaled)
    V_l[t] = H_l[t] − S_l[t]                   soft reset (reset by subtraction)
    O[t] = (1/(t+1))·Σ_{τ≤t} (W_L·S_{L−1}[τ] + b_L)     non-spiking output: the rate-decoded logits
    ŷ = argmax O[T−1];  decision step = T

Rate of S_l ≈ min(1, a_l/λ_l), so O[T−1] → the ANN's logits as T grows (when no layer saturates).
Energy: spikes are binary, so every synaptic op they feed is an AC; the analog input is the same at
every step, so the first layer's MACs are charged once (the held current is re-injected at each IF
neuron's update); each IF neuron pays one addition per step.
"""

from __future__ import annotations

from typing import Iterable

from pydantic import Field
from torch import Tensor, nn

from benchmark.contract.method import CodingMethod, MethodConfig
from benchmark.contract.registry import register_method
from methods.rate_conversion import RateConversion
from snn.arch import ArchSpec
from snn.conversion import NormName, calibrate, fold_network, if_network, normalize, transfer


class ConvertConfig(MethodConfig):
    T: int = Field(32, ge=1, description="time steps")
    norm: NormName = Field("p99.9", description="λ_l: 'max' or 'p99.9' (99.9th percentile) of the activations")
    momentum: float = Field(0.1, ge=0, le=1, description="weight of each new calibration batch in λ's EMA")


@register_method("convert")
class Convert(RateConversion):
    """Encode and readout: `RateConversion`'s (the module docstring's X[t], O[T−1], decision step T)."""

    citation = ("Diehl et al., IJCNN 2015; Rueckauer et al., Conversion of continuous-valued deep networks "
                "to efficient event-driven networks for image classification, Front. Neurosci. 2017")
    Config = ConvertConfig
    source_method = "ann"

    def build(self, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        return if_network(arch, input_shape, num_classes, initial_membrane=0.0)

    def convert(self, source: CodingMethod, calibration: Iterable[Tensor]) -> None:
        folded = fold_network(source.network, activations=(nn.ReLU,))
        self.scales = calibrate(folded, calibration, self.config.norm, self.config.momentum, activations=(nn.ReLU,))
        transfer(normalize(folded, self.scales), self.network)
