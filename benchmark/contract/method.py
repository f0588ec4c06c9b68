"""The method contract: the one base class every coding method derives from.

A coding method declares (DESIGN.md, "The method contract"):
- `family`: "ann", "direct" (trained as an SNN) or "conversion" (an ANN is trained, then converted);
- `Config`: its hyperparameters, a frozen pydantic model; unknown or ill-typed keys are errors;
- `citation`: the paper it implements;
- `build`, `encode`, `readout`, and `loss` (families ann and direct) or `convert` (family conversion);
- `input_semantics` (and `frame_semantics`): the kind of the events its encoder sends.

The harness owns everything else: data, seeds, device, training loop, metrics, ops, energy.

Shapes: images `[B, C, H, W]` in [0, 1] -> `encode` -> `[T, B, ...]` -> network -> `[T, B, classes]`.

Event data (N-MNIST, DVS Gesture, SHD, Fashion-MNIST-DVS; benchmark.data.events). An event dataset is
prepared as event frames: each sample's events counted per time bin, polarity and pixel, T_f bins
(`datasets.<name>.framing.T`). A method receives them through one more hook:

    frames `[T_f, B, C, H, W]` (float event counts, or 0/1 when binary) -> `encode_frames` -> `[T, B, ...]`

and the rest (network, loss, readout, decision steps, op counting, `initialize`, `train_step`) works
on the encoded input alike (the harness's input formats, benchmark.run.inputs). Defaults, so that
every registered method runs on event data as it is:
- family "ann": the frames' mean over time, one step `[1, B, C, H, W]`: the ANN runs on the
  event-count image divided by T_f. The mean rather than the sum keeps ANN-to-SNN conversion
  sound: a converted SNN that receives the frames one per step gets, on average per step, exactly
  the input its source ANN was trained and calibrated on. Its input events are analog (MACs).
- every other family: the frames themselves, passed straight to the network, so T_f must equal the
  method's T; a mismatch is a `ConfigError` naming both. The frames' events reach the first layer
  as they are: binary (`framing.binary: true`, ACs) or graded counts with an 8-bit payload (MACs)
  (`benchmark.data.registry.FrameFormat.semantics`); `frame_semantics` declares it to the op counter.
A method that codes events its own way (e.g. first spike per pixel) overrides `encode_frames` and
`frame_semantics`. Image datasets never call these hooks, and event datasets never call `encode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from benchmark.contract.errors import ConfigError
from benchmark.contract.semantics import ANALOG_VALUES, OpSemantics
from snn.arch import ArchSpec

Family = Literal["ann", "direct", "conversion"]
FAMILIES: tuple[str, ...] = ("ann", "direct", "conversion")

# Training-recipe keys: they change how a method is trained (how long, how fast, on what
# augmentation), not what it is, so they never appear in a record's `variant`.
SCHEDULE_KEYS = frozenset({"epochs", "lr", "weight_decay", "batch_size", "augment_shift", "augment_hflip"})


class MethodConfig(BaseModel):
    """Hyperparameters shared by every method; a method's `Config` subclasses this."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    T: int = Field(1, ge=1, description="time steps per sample")
    epochs: int | None = Field(None, ge=1, description="overrides the profile's epochs")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate (cosine schedule)")
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int | None = Field(None, ge=1, description="overrides the profile's batch size")
    augment_shift: int = Field(0, ge=0, description="training augmentation: random translation of up to ±N "
                               "pixels per axis (benchmark/data/augment.py)")
    augment_hflip: bool = Field(False, description="training augmentation: horizontal flip with probability 1/2")


@dataclass(frozen=True)
class Readout:
    """A method's decision for every sample.

    prediction:     `[B]` class indices.
    decision_step:  `[B]` number of time steps consumed before the prediction is available,
                    in 1..T (an early-exit method that decides at step t = 0 reports 1).
    """

    prediction: Tensor
    decision_step: Tensor


class CodingMethod:
    """Base class of coding methods. Subclass it, set the class attributes, register it."""

    name: ClassVar[str] = ""  # set by register_method
    family: ClassVar[Family]
    citation: ClassVar[str]
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    # conversion family: the registered method whose trained network is converted
    source_method: ClassVar[str | None] = None
    # kind of the events the encoder sends to the first synaptic layer
    input_semantics: ClassVar[OpSemantics] = ANALOG_VALUES

    def __init__(self, config: MethodConfig, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int):
        self.config = config
        self.arch = arch
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.network: nn.Module = self.build(arch, self.input_shape, num_classes)

    @property
    def T(self) -> int:
        return self.config.T

    # --- what a method implements -------------------------------------------------------------

    def build(self, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """The network: `[T, B, ...]` encoded input -> `[T, B, classes]` output signal."""
        raise NotImplementedError

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """`[B, C, H, W]` in [0, 1] -> `[T, B, ...]`. Draw randomness only from `generator`."""
        raise NotImplementedError

    def loss(self, output: Tensor, labels: Tensor) -> Tensor:
        """Scalar training loss from the network output `[T, B, classes]` and labels `[B]`
        (families ann and direct; a conversion method is never trained and needs none)."""
        raise NotImplementedError

    def readout(self, output: Tensor) -> Readout:
        """Prediction and decision step of every sample from the output `[T, B, classes]`."""
        raise NotImplementedError

    def readout_at(self, output: Tensor, steps: int) -> Tensor:
        """The prediction `[B]` available after `steps` of the T steps (the anytime view the harness
        records for every method): by default `readout` applied to the output up to then,
        `output[:steps]`. Override where a truncated output must be read otherwise."""
        return self.readout(output[:steps]).prediction

    def initialize(self, encoded: Tensor) -> None:
        """Optional data-driven initialisation, called once before training (never on resume)
        with an encoded batch of training inputs `[T, B, ...]` (`encode` or `encode_frames`'s
        output). The default does nothing."""

    # Optional: a method whose training is not one forward and one backward over the whole sequence
    # (per-step updates, memory constant in T) defines
    #     train_step(encoded [T, B, ...], labels [B], optimizer) -> (loss, prediction [B])
    # doing its own forward, backward and optimizer steps on the encoded batch; the harness's loop
    # then calls it for every batch instead. `loss`: the batch's scalar loss, detached;
    # `prediction`: as `readout` gives it. The harness averages gradients across processes inside
    # `optimizer.step()` when training is distributed.
    train_step: Callable[..., tuple[Tensor, Tensor]] | None = None

    def convert(self, source: "CodingMethod", calibration: Iterable[Tensor]) -> None:
        """Conversion family: turn the trained `source` method's network into `self.network`.

        `calibration` yields image batches `[B, C, H, W]` from the training split (for an event
        dataset: the frames' mean over time, the input of the source ANN; see `encode_frames`).
        """
        raise NotImplementedError

    def decode_hidden(self, name: str, events: Tensor) -> Tensor:
        """Conversion family, after `convert`: the source ANN activation that the events of hidden
        neuron layer `name` (the name of the source's activation it replaces) stand for, in the
        source's units, by the method's own decoding. Shapes: `[T, B, ...]` -> `[B, ...]`. Read by the
        reconstruction probe (benchmark.sweeps.probes); a method without it cannot be probed so."""
        raise NotImplementedError(f"method {self.name!r} does not decode its hidden layers (decode_hidden)")

    # --- event data: defaults every method may override (module docstring) ---------------------

    def encode_frames(self, frames: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Event frames `[T_f, B, C, H, W]` (float counts, or 0/1) -> the network's input `[T, B, ...]`.

        Default: family "ann": their mean over time, `[1, B, C, H, W]`; any other family: the
        frames unchanged, which needs T_f = T. Draw randomness only from `generator`.
        """
        if self.family == "ann":
            return frames.mean(dim=0, keepdim=True)
        if frames.shape[0] != self.T:
            raise ConfigError(
                f"the event frames have T = {frames.shape[0]} time steps (the dataset's framing.T) but "
                f"methods.{self.name}.T = {self.T}; method {self.name!r} passes frames straight to its network, so "
                f"the two must agree: set datasets.<dataset>.methods.{self.name}.T to the framing's T in params.yaml"
            )
        return frames

    def frame_semantics(self, frames: OpSemantics) -> OpSemantics:
        """The kind of the events `encode_frames` sends to the first synaptic layer, given the kind
        the frames carry. Default: analog for family "ann" (a mean), else the frames' own kind."""
        return ANALOG_VALUES if self.family == "ann" else frames

    @classmethod
    def at_time_step(cls, hyperparameters: dict[str, Any], factor: int) -> dict[str, Any]:
        """The hyperparameters that run the same model at time step Δt/`factor` (benchmark.sweeps.resolution):
        T·factor steps. Override when a constant is defined in the recording's time rather than per step."""
        config = cls.Config(**hyperparameters)
        return {**hyperparameters, "T": config.T * factor}

    # --- provided ---------------------------------------------------------------------------

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Encode and run the network: `[B, C, H, W]` -> `[T, B, classes]`."""
        return self.network(self.encode(images, generator))

    def variant(self) -> str:
        """Hyperparameters that differ from the method's defaults, as a short string ("" for none)."""
        defaults = self.Config().model_dump()
        changed = {
            key: value
            for key, value in self.config.model_dump().items()
            if key not in SCHEDULE_KEYS and value != defaults.get(key)
        }
        return ",".join(f"{key}={_short(value)}" for key, value in sorted(changed.items()))

    def describe(self) -> dict[str, Any]:
        return {"method": self.name, "family": self.family, "citation": self.citation,
                "hyperparameters": self.config.model_dump()}


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "-".join(_short(v) for v in value)
    return str(value)
