"""Input formats: how a dataset's stored samples reach a method's network, for images and event frames alike.

A dataset stores uint8 samples; `input_format(data)` says which kind, and every stage goes through it
instead of branching on the kind:

    Images        samples `[B, C, H, W]` -> `to_inputs` -> float `[B, C, H, W]` in [0, 1]
                  -> `encode` = the method's `encode` -> `[T, B, ...]`
    Frames        samples `[B, T_f, C, H, W]` -> `to_inputs` -> float `[T_f, B, C, H, W]` (time-major)
                  -> `encode` = the method's `encode_frames` -> `[T, B, ...]`

and what each says besides: the kind of the events that reach the first synaptic layer
(`semantics`, for the op counter), what an ANN of the same architecture takes as one step
(`ann_input`: the image, or the frames' mean over time; the calibration input of a conversion), and
the contract check of a method on a tiny batch (`check`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from benchmark.contract.errors import ConfigError
from benchmark.contract.method import CodingMethod
from benchmark.contract.registry import check_contract
from benchmark.contract.semantics import OpSemantics
from benchmark.data.prepared import Prepared, frames_to_float, to_unit_float
from benchmark.data.registry import FrameFormat


@dataclass(frozen=True)
class Images:
    """Image datasets: the method's `encode` makes the network's input."""

    def to_inputs(self, samples: Tensor) -> Tensor:
        """uint8 `[B, C, H, W]` -> float `[B, C, H, W]` in [0, 1]."""
        return to_unit_float(samples)

    def encode(self, method: CodingMethod, inputs: Tensor, generator: torch.Generator | None) -> Tensor:
        return method.encode(inputs, generator)

    def semantics(self, method: CodingMethod) -> OpSemantics:
        return method.input_semantics

    def ann_input(self, inputs: Tensor) -> Tensor:
        return inputs

    def batch_size(self, inputs: Tensor) -> int:
        return inputs.shape[0]

    def check(self, method: CodingMethod, samples: Tensor, dataset: str) -> None:
        """The contract check (`check_contract`) of `method` on uint8 `samples`."""
        inputs = self.to_inputs(samples)
        check_contract(method, self.encode(method, inputs, torch.Generator().manual_seed(0)), len(samples), "encode()")


@dataclass(frozen=True)
class Frames:
    """Event datasets: the method's `encode_frames` makes the network's input from the frames."""

    frames: FrameFormat

    def to_inputs(self, samples: Tensor) -> Tensor:
        """uint8 `[B, T_f, C, H, W]` -> float `[T_f, B, C, H, W]` (event counts, or 0/1)."""
        return frames_to_float(samples)

    def encode(self, method: CodingMethod, inputs: Tensor, generator: torch.Generator | None) -> Tensor:
        return method.encode_frames(inputs, generator)

    def semantics(self, method: CodingMethod) -> OpSemantics:
        return method.frame_semantics(self.frames.semantics)

    def ann_input(self, inputs: Tensor) -> Tensor:
        return inputs.mean(dim=0)

    def batch_size(self, inputs: Tensor) -> int:
        return inputs.shape[1]

    def check(self, method: CodingMethod, samples: Tensor, dataset: str) -> None:
        """The contract check of `method` on uint8 frames; a T mismatch names the dataset's framing."""
        inputs = self.to_inputs(samples)
        try:
            encoded = self.encode(method, inputs, torch.Generator().manual_seed(0))
        except ConfigError as error:
            raise ConfigError(f"{dataset} (params.yaml datasets.{dataset}.framing): {error}") from None
        check_contract(method, encoded, len(samples), "encode_frames()")


InputFormat = Images | Frames


def input_format(data: Prepared) -> InputFormat:
    """The input format of a prepared dataset: `Frames` for an event dataset, else `Images`."""
    return Images() if data.frames is None else Frames(data.frames)
