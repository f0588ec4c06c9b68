"""The shared base of the rate-converted methods (`convert`, `qcfs`): analog input at every step, an
integrate-and-fire network (`snn.conversion.if_network`), the rate-decoded logits of the last step.

For t = 0..T−1 (params: `T`):

    X[t] = x                       the analog image held at every step (a view: no copy); a constant
                                   input (HELD_ANALOG), so the first layer's products are charged once
    ŷ = argmax O[T−1]              the rate-decoded logits of the last step;  decision step = T
    r_l = λ_l·N_l/T                hidden layer l decoded (`decode_hidden`): N_l its spike count over
                                   the T steps, λ_l its scale (`scales`, set by `convert`): a spike of
                                   the threshold-1 neuron stands for λ_l of the source's activation

The network is converted, never trained, so the method has no loss.

Shapes: images `[B, C, H, W]` -> `[T, B, C, H, W]`; output `[T, B, classes]`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from benchmark.contract.method import CodingMethod, Readout
from benchmark.contract.semantics import HELD_ANALOG


class RateConversion(CodingMethod):
    """Encode and readout of the rate-converted methods (the module docstring); subclasses build and convert."""

    family = "conversion"
    input_semantics = HELD_ANALOG
    scales: dict[str, float]  # λ_l by the source activation's name, set by `convert`

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return images.unsqueeze(0).expand(self.config.T, *images.shape)

    def readout(self, output: Tensor) -> Readout:
        prediction = output[-1].argmax(dim=-1)
        return Readout(prediction, torch.full_like(prediction, self.config.T))

    def decode_hidden(self, name: str, events: Tensor) -> Tensor:
        """r_l = λ_l·N_l/T (module docstring). Shapes: `[T, B, ...]` -> `[B, ...]`."""
        return self.scales[name] * events.sum(0) / self.config.T
