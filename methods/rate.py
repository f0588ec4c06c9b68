"""Rate coding, the snnTorch way — Eshraghian et al., "Training Spiking Neural Networks Using
Lessons From Deep Learning", Proc. IEEE 111(9), 2023 (snnTorch tutorials 1–5).

Every part is snnTorch's own: `spikegen.rate`, `snn.Leaky`, a `snntorch.surrogate`, a loss from
`snntorch.functional`. With x ∈ [0, 1] the pixel intensity:

    X[t] ~ Bernoulli(x)                                   spikegen.rate, t = 0..T-1     (T: `T`)
    U[t] = β·U[t-1] + W·X[t] − S[t-1]·θ                   snn.Leaky, reset "subtract"    (β: `beta`,
    S[t] = Θ(U[t] − θ)                                    θ: `threshold`; surrogate: `surrogate`, `slope`)
    loss = (1/T)·Σ_t CE(S_out[t], y)                      ce_rate_loss  (or CE(Σ_t S_out[t], y):
                                                          ce_count_loss; `loss`)
    ŷ = argmax_c Σ_t S_out,c[t];  decision step = T

Known snnTorch hazards, guarded here and pinned by tests (METHODS.md §2):
- `snntorch.utils.reset(net)` resets every Leaky instance in the process: the membrane is passed
  explicitly and started from zero in every forward call, so nothing relies on it.
- `spikegen.rate` draws from torch's global generator: it runs inside `torch.random.fork_rng`
  seeded from the harness's generator, so the spikes are reproducible and the global stream is
  left untouched.
"""

from __future__ import annotations

from typing import Literal

import snntorch as snn
import torch
from pydantic import Field
from snntorch import functional as SF
from snntorch import spikegen, surrogate
from torch import Tensor, nn

from benchmark.contract.method import CodingMethod, MethodConfig, Readout
from benchmark.contract.registry import register_method
from benchmark.contract.semantics import BINARY_SPIKES, EventKind, OpSemantics
from snn.arch import ArchSpec, build_network

SURROGATES = {"fast_sigmoid": surrogate.fast_sigmoid, "sigmoid": surrogate.sigmoid, "atan": surrogate.atan}


class RateConfig(MethodConfig):
    T: int = Field(20, ge=1)
    beta: float = Field(0.9, gt=0, le=1, description="membrane decay β of snn.Leaky")
    threshold: float = Field(1.0, gt=0)
    # atan (snnTorch's default surrogate) and the count loss: chosen over snnTorch's tutorial setting
    # (the narrow fast_sigmoid(25) with ce_rate), which learned much slower on validation on the MLP.
    surrogate: Literal["fast_sigmoid", "sigmoid", "atan"] = "atan"
    slope: float = Field(2.0, gt=0, description="surrogate slope (atan: alpha)")
    loss: Literal["ce_rate", "ce_count"] = "ce_count"
    lr: float = 2e-3


class SnnTorchLeaky(nn.Module):
    """Multi-step wrapper of `snn.Leaky`: `[T, B, ...]` currents -> `[T, B, ...]` spikes.

    The membrane is a local variable, started at zero on every call: the state belongs to this
    call, never to the class (see the module docstring).
    """

    def __init__(self, config: RateConfig):
        super().__init__()
        self.lif = snn.Leaky(
            beta=config.beta,
            threshold=config.threshold,
            spike_grad=SURROGATES[config.surrogate](config.slope),
            reset_mechanism="subtract",
        )
        leak_macs = 0 if config.beta == 1.0 else 1
        self.op_semantics = OpSemantics(EventKind.BINARY, update_acs=1, update_macs=leak_macs)

    def forward(self, current: Tensor) -> Tensor:
        membrane = torch.zeros_like(current[0])
        spikes = []
        for current_t in current:
            spike_t, membrane = self.lif(current_t, membrane)
            spikes.append(spike_t)
        return torch.stack(spikes)


@register_method("rate")
class Rate(CodingMethod):
    family = "direct"
    citation = "Eshraghian et al., Training Spiking Neural Networks Using Lessons From Deep Learning, Proc. IEEE 2023"
    Config = RateConfig
    input_semantics = BINARY_SPIKES

    def build(self, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        return build_network(
            arch,
            input_shape,
            num_classes,
            make_neuron=lambda name: SnnTorchLeaky(self.config),
            output_neuron=SnnTorchLeaky(self.config),
        )

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        seed = int(torch.randint(2**62, (1,), generator=generator)) if generator is not None else 0
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return spikegen.rate(images, num_steps=self.config.T)

    def loss(self, output: Tensor, labels: Tensor) -> Tensor:
        loss_fn = SF.ce_rate_loss() if self.config.loss == "ce_rate" else SF.ce_count_loss()
        return loss_fn(output, labels).squeeze()

    def readout(self, output: Tensor) -> Readout:
        prediction = output.sum(dim=0).argmax(dim=-1)
        return Readout(prediction, torch.full_like(prediction, self.config.T))
