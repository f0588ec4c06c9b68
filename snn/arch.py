"""Named architectures: the one network every method builds, from a `params.yaml` entry.

An architecture is data (a `params.yaml` entry under `architectures:`); `build_network` turns it into
an `nn.Sequential` of time-first layers with the method's neuron after every hidden synaptic layer:

    mlp    Flatten → [Linear → neuron] × len(hidden) → Linear(→ classes) [→ output neuron]
    cnn    [Conv3×3 (→ BN) → neuron (→ pool 2×2)] per entry of `conv` ("M" marks a pool after the
           previous conv) → Flatten → [Linear → neuron] × len(hidden) → Linear(→ classes)

Shapes: input `[T, B, C, H, W]` -> output `[T, B, classes]` (before the optional output neuron).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from snn.layers import Folded

PoolName = Literal["avg", "max"]


class ArchSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["mlp", "cnn"]
    hidden: list[int] = Field(default_factory=list)
    conv: list[int | Literal["M"]] = Field(default_factory=list)
    batch_norm: bool = False
    pool: PoolName = "avg"


NeuronFactory = Callable[[str], nn.Module]
"""Called with the layer's name ("hidden1", "conv2", ...), returns the neuron module placed after it."""


def build_network(
    arch: ArchSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    make_neuron: NeuronFactory,
    output_neuron: nn.Module | None = None,
    pool: PoolName | None = None,
) -> nn.Sequential:
    """Builds `arch` for inputs of `input_shape` (C, H, W); `pool` overrides the arch's pooling."""
    pool = pool or arch.pool
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels, height, width = input_shape
    conv_index = 0
    for entry in arch.conv:
        if entry == "M":
            pool_layer = nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2)
            layers[f"pool{conv_index}"] = Folded(pool_layer)
            height, width = height // 2, width // 2
            continue
        conv_index += 1
        layers[f"conv{conv_index}"] = Folded(nn.Conv2d(channels, entry, 3, padding=1, bias=not arch.batch_norm))
        if arch.batch_norm:
            layers[f"bn{conv_index}"] = Folded(nn.BatchNorm2d(entry))
        layers[f"act_conv{conv_index}"] = make_neuron(f"conv{conv_index}")
        channels = entry
    layers["flatten"] = Folded(nn.Flatten())
    features = channels * height * width
    for index, width_out in enumerate(arch.hidden, start=1):
        layers[f"fc{index}"] = Folded(nn.Linear(features, width_out))
        layers[f"act_fc{index}"] = make_neuron(f"fc{index}")
        features = width_out
    layers["output"] = Folded(nn.Linear(features, num_classes))
    if output_neuron is not None:
        layers["act_output"] = output_neuron
    return nn.Sequential(layers)
