"""A toy third-party method: every pixel becomes a burst of spikes whose length grows with its
intensity, read by integrate-and-fire neurons. It imports only the harness's public contract.

    X[t] = 1[t < round(x·T)]                                   burst coding, T: `T`
    H[t] = V[t-1] + W·X[t];  S[t] = Θ(H[t] − θ);  V[t] = H[t] − θ·S[t]     θ: `threshold`
    ŷ = argmax_c Σ_t S_c[t];  decision step = T
"""

import torch
from pydantic import Field
from torch.nn import functional as F

from benchmark.arch import build_network
from benchmark.engine import LIF
from benchmark.method import CodingMethod, MethodConfig, Readout
from benchmark.semantics import BINARY_SPIKES


class ToyBurstConfig(MethodConfig):
    T: int = Field(6, ge=1)
    threshold: float = Field(0.5, gt=0)


class ToyBurst(CodingMethod):
    family = "direct"
    citation = "SpikeCode Bench test plugin (burst coding)"
    Config = ToyBurstConfig
    input_semantics = BINARY_SPIKES

    def build(self, arch, input_shape, num_classes):
        neuron = lambda name=None: LIF(beta=1.0, threshold=self.config.threshold)
        return build_network(arch, input_shape, num_classes, make_neuron=neuron, output_neuron=neuron())

    def encode(self, images, generator=None):
        steps = torch.arange(self.T, device=images.device).view(-1, *([1] * images.ndim))
        return (steps < torch.round(images * self.T)).float()

    def loss(self, output, labels):
        return F.cross_entropy(output.sum(0), labels)

    def readout(self, output):
        prediction = output.sum(0).argmax(-1)
        return Readout(prediction, torch.full_like(prediction, self.T))
