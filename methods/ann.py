"""ANN baseline: the shared architecture with ReLU and average pooling, trained with cross-entropy.

It is the accuracy reference, the source network of every conversion method and the reference of
relative corruption error (METHODS.md §1). It runs as a one-step network so the harness treats it
like every other method:

    x ∈ [0, 1]^(C×H×W)  ->  encode: X[0] = x  (T = 1)
    a_l = ReLU(W_l·a_{l-1} + b_l)                         hidden layers (params.yaml: architectures)
    O = W_L·a_{L-1} + b_L;  loss = CE(O, y);  ŷ = argmax O;  decision step = 1

Energy: the activations are analog, so every synaptic op it performs is a MAC.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from benchmark.contract.method import CodingMethod, MethodConfig, Readout
from benchmark.contract.registry import register_method
from snn.arch import ArchSpec, build_network
from snn.layers import ReLU


class AnnConfig(MethodConfig):
    pass


@register_method("ann")
class Ann(CodingMethod):
    family = "ann"
    citation = "Baseline: the shared architecture as a ReLU ANN (METHODS.md §1)"
    Config = AnnConfig

    def build(self, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        if self.config.T != 1:
            raise ValueError(f"methods.ann.T must be 1 (an ANN takes one pass), got {self.config.T}")
        return build_network(arch, input_shape, num_classes, make_neuron=lambda name: ReLU())

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return images.unsqueeze(0)

    def loss(self, output: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(output[-1], labels)

    def readout(self, output: Tensor) -> Readout:
        prediction = output[-1].argmax(dim=-1)
        return Readout(prediction, torch.ones_like(prediction))
