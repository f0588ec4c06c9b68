"""ANN-to-SNN conversion toolkit: BN folding, the module walk, data-based normalization, and the
skeletons the converted weights are loaded into.

A trained ANN (`snn.arch.build_network` with ReLU-like activations) becomes the weights of a
spiking network of the same architecture in three steps:

1. fold (`fold_network`) — the module walk over the source `nn.Sequential`, in order:
       Linear, Conv2d                  copied, with an explicit bias (zeros when it had none)
       BatchNorm1d/2d                  folded into the synaptic layer right before it, per output c:
                                           W'_c = W_c·γ_c/σ_c,   b'_c = (b_c − μ_c)·γ_c/σ_c + β_c,
                                           σ_c = sqrt(running_var_c + ε)
       AvgPool2d, Flatten, Dropout, Identity   kept (linear and parameter-free; Dropout is inert at
                                           inference)
       an accepted activation          kept (ReLU for `convert`/`css`, QCFS for `qcfs`)
   Anything else — MaxPool2d (the max of spike trains is not the spike train of the max), a
   residual block, an activation of a kind the method cannot convert, an unknown module — is a
   `ConversionError` that names the layer. So is a structure that cannot be converted layer by
   layer: a BatchNorm that does not follow a synaptic layer, two synaptic layers with no
   activation between them, an activation with no synaptic layer before it.
2. calibrate (`calibrate`) — data-based normalization (Diehl et al., IJCNN 2015; Rueckauer et al.,
   Front. Neurosci. 2017), momentum as in SpikingJelly's `VoltageHook`. For the activation of
   hidden layer l and calibration batch n = 0, 1, ...:
       m_l[n] = max of a_l over the batch                       (params: norm = "max")
              = 99.9th percentile of a_l over the batch         (norm = "p99.9"; all elements,
                                                                 zeros included)
       λ_l = m_l[0];   λ_l ← (1 − momentum)·λ_l + momentum·m_l[n]   for n ≥ 1   (params: momentum)
3. normalize (`normalize`) — W_l ← W_l·λ_{l−1}/λ_l,  b_l ← b_l/λ_l, with λ_0 = 1 (the analog input)
   and λ_L = 1 for the output layer (the logits keep their scale). ReLU is positively homogeneous,
   ReLU(z/λ) = ReLU(z)/λ, so the normalized ReLU ANN computes a_l/λ_l in hidden layer l and the
   very same logits: exact, before any spiking. A spiking neuron with threshold 1 then stands for
   one activation unit λ_l per spike (equivalently: threshold θ_l = λ_l on the unscaled weights).

The converted network is the method's skeleton (`skeleton`): the architecture rebuilt without
BatchNorm, with the method's neuron after every hidden synaptic layer and its output module after
the last; `transfer` loads the normalized weights into it by layer name.

Shapes: networks are time-first, `[T, B, ...] -> [T, B, classes]`; calibration batches are images
`[B, C, H, W]` in [0, 1], run as one time step (`[1, B, C, H, W]`).
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from typing import Iterable, Literal

import torch
from torch import Tensor, nn

from benchmark.contract.errors import ContractError
from benchmark.contract.semantics import EventKind, OpSemantics
from snn.arch import ArchSpec, NeuronFactory, build_network
from snn.engine import LIF
from snn.layers import Folded

NormName = Literal["max", "p99.9"]
SYNAPTIC = (nn.Linear, nn.Conv2d)
BATCH_NORM = (nn.BatchNorm1d, nn.BatchNorm2d)
PASS_THROUGH = (nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.Dropout2d, nn.Identity)
PERCENTILE = {"p99.9": 99.9}


class ConversionError(ContractError):
    """A source network (or a layer of it) that the conversion cannot turn into a spiking network."""


# --- 1. fold: the module walk ----------------------------------------------------------------------


def _unwrap(module: nn.Module) -> nn.Module:
    return module.layer if isinstance(module, Folded) else module


def _shown(name: str, module: nn.Module) -> str:
    layer = _unwrap(module)
    kind = f"Folded({type(layer).__name__})" if layer is not module else type(module).__name__
    return f"layer {name!r} ({kind})"


def _copy_synaptic(layer: nn.Linear | nn.Conv2d) -> nn.Linear | nn.Conv2d:
    """A copy of `layer` with an explicit bias (zeros when it had none), so BN can fold into it."""
    if isinstance(layer, nn.Linear):
        fresh = nn.Linear(layer.in_features, layer.out_features, bias=True)
    else:
        fresh = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                          padding=layer.padding, dilation=layer.dilation, groups=layer.groups, bias=True,
                          padding_mode=layer.padding_mode)
    fresh = fresh.to(layer.weight.device, layer.weight.dtype)
    with torch.no_grad():
        fresh.weight.copy_(layer.weight)
        fresh.bias.copy_(layer.bias if layer.bias is not None else torch.zeros_like(fresh.bias))
    return fresh


def fold_batch_norm(layer: nn.Linear | nn.Conv2d, norm: nn.BatchNorm1d | nn.BatchNorm2d) -> None:
    """Folds the inference-mode `norm` into `layer` (which must have a bias), in place:
    W'_c = W_c·γ_c/σ_c, b'_c = (b_c − μ_c)·γ_c/σ_c + β_c, σ_c = sqrt(running_var_c + ε)."""
    if norm.running_mean is None or norm.running_var is None:
        raise ConversionError("a BatchNorm without running statistics (track_running_stats=False) cannot be folded")
    if norm.num_features != layer.weight.shape[0]:
        raise ConversionError(f"BatchNorm over {norm.num_features} features follows a layer with "
                              f"{layer.weight.shape[0]} outputs")
    gamma = norm.weight if norm.affine else torch.ones_like(norm.running_mean)
    shift = norm.bias if norm.affine else torch.zeros_like(norm.running_mean)
    factor = gamma / torch.sqrt(norm.running_var + norm.eps)  # γ/σ, one per output channel
    with torch.no_grad():
        layer.weight.mul_(factor.view(-1, *([1] * (layer.weight.ndim - 1))))
        layer.bias.copy_((layer.bias - norm.running_mean) * factor + shift)


def fold_network(source: nn.Module, activations: tuple[type[nn.Module], ...] = (nn.ReLU,)) -> nn.Sequential:
    """The module walk: a copy of `source` with every BatchNorm folded (step 1 of the module docstring).

    `activations`: the activation types the caller can convert; they are kept as they are.
    Raises `ConversionError` naming the first layer it cannot convert.
    """
    if not isinstance(source, nn.Sequential):
        raise ConversionError(f"the conversion walks an nn.Sequential (snn.arch.build_network), "
                              f"got {type(source).__name__}")
    accepted = ", ".join(t.__name__ for t in activations)
    folded: OrderedDict[str, nn.Module] = OrderedDict()
    last_synaptic: tuple[str, nn.Module] | None = None
    awaiting_activation = False  # a synaptic layer was kept and no activation since
    directly_after_synaptic = False  # the previous module was a synaptic layer (BatchNorm may fold)
    for name, child in source.named_children():
        layer = _unwrap(child)
        if isinstance(layer, SYNAPTIC):
            if awaiting_activation:
                raise ConversionError(
                    f"{_shown(name, child)} follows the synaptic layer {last_synaptic[0]!r} with no activation "
                    "between them; a converted network needs a spiking neuron after every hidden synaptic layer"
                )
            if isinstance(layer, nn.Conv2d) and layer.padding_mode != "zeros":
                raise ConversionError(f"{_shown(name, child)} pads with {layer.padding_mode!r}; only zero padding "
                                      "converts (a spike train padded by reflection is not a padded activation)")
            folded[name] = Folded(_copy_synaptic(layer))
            last_synaptic = (name, folded[name].layer)
            awaiting_activation = directly_after_synaptic = True
            continue
        if isinstance(layer, BATCH_NORM):
            if not directly_after_synaptic:
                raise ConversionError(f"{_shown(name, child)} does not directly follow a Linear or Conv2d, so it "
                                      "cannot be folded into one")
            try:
                fold_batch_norm(last_synaptic[1], layer)
            except ConversionError as error:
                raise ConversionError(f"{_shown(name, child)}: {error}") from None
            continue
        directly_after_synaptic = False
        if isinstance(child, activations) or isinstance(layer, activations):
            if not awaiting_activation:
                raise ConversionError(f"{_shown(name, child)} is an activation with no synaptic layer before it")
            folded[name] = copy.deepcopy(child)
            awaiting_activation = False
        elif isinstance(layer, PASS_THROUGH):
            folded[name] = copy.deepcopy(child)
        else:
            if isinstance(layer, nn.MaxPool2d):
                hint = ("max pooling does not convert to spikes (the max of spike trains is not the spike "
                        "train of the max): train the source with `pool: avg`")
            elif hasattr(layer, "op_semantics") or isinstance(layer, nn.ReLU):
                hint = f"this method converts activations of type {accepted} only"
            else:
                hint = (f"the walk converts Linear, Conv2d, BatchNorm1d/2d, {accepted}, and "
                        f"{', '.join(t.__name__ for t in PASS_THROUGH)}")
            raise ConversionError(f"cannot convert {_shown(name, child)}: {hint}")
    if last_synaptic is None:
        raise ConversionError("the source network has no Linear or Conv2d layer to convert")
    return nn.Sequential(folded)


# --- 2. calibrate: data-based normalization ---------------------------------------------------------


def percentile(values: Tensor, q: float) -> Tensor:
    """The q-th percentile of all elements (nearest rank: the ⌈q/100·n⌉-th smallest). Unlike
    torch.quantile it has no size limit, so a whole conv layer's activations fit."""
    flat = values.detach().flatten().float()
    exact = round(q / 100 * flat.numel(), 6)  # 0.999·2000 is 1998.0000000000002 in floating point
    rank = min(flat.numel(), max(1, math.ceil(exact)))
    return flat.kthvalue(rank).values


def batch_statistic(values: Tensor, norm: NormName) -> float:
    """m_l[n] of the module docstring: the max or the 99.9th percentile of one batch's activations."""
    if norm == "max":
        return float(values.max())
    if norm in PERCENTILE:
        return float(percentile(values, PERCENTILE[norm]))
    raise ValueError(f"unknown norm {norm!r}; choose one of max, {', '.join(PERCENTILE)}")


@torch.no_grad()
def calibrate(
    network: nn.Sequential,
    batches: Iterable[Tensor],
    norm: NormName,
    momentum: float,
    activations: tuple[type[nn.Module], ...] = (nn.ReLU,),
) -> OrderedDict[str, float]:
    """λ_l of every activation of `network` (a folded ANN), keyed by the activation's name, in order.

    Runs `network` on every calibration batch `[B, C, H, W]` as one time step and tracks
    λ_l ← (1 − momentum)·λ_l + momentum·m_l[n] (the first batch sets λ_l). A λ_l ≤ 0 (a layer that
    never activates on the calibration set) is a `ConversionError` naming the layer.
    """
    names = [name for name, child in network.named_children() if isinstance(_unwrap(child), activations)]
    scales: OrderedDict[str, float] = OrderedDict()

    def tracker(name: str):
        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            value = batch_statistic(output, norm)
            scales[name] = value if name not in scales else (1 - momentum) * scales[name] + momentum * value

        return hook

    handles = [getattr(network, name).register_forward_hook(tracker(name)) for name in names]
    was_training = network.training
    network.eval()
    seen = 0
    try:
        for images in batches:
            network(images.unsqueeze(0))
            seen += 1
    finally:
        for handle in handles:
            handle.remove()
        network.train(was_training)
    if seen == 0:
        raise ConversionError("the calibration set is empty; data-based normalization needs at least one batch")
    for name, value in scales.items():
        if not value > 0:
            raise ConversionError(f"activation {name!r} has λ = {value} on the calibration set (it never "
                                  f"activates); a threshold must be positive")
    return scales


# --- 3. normalize ----------------------------------------------------------------------------------


def normalize(network: nn.Sequential, scales: dict[str, float]) -> nn.Sequential:
    """A copy of the folded `network` with W_l ← W_l·λ_{l−1}/λ_l, b_l ← b_l/λ_l (module docstring, 3).

    `scales` maps each activation's name to its λ_l; the synaptic layer before an activation takes
    that activation's λ as λ_l, the one after it as λ_{l−1}. Activations are kept as they are (exact
    for ReLU: ReLU(z/λ) = ReLU(z)/λ).
    """
    normalized = copy.deepcopy(network)
    children = list(normalized.named_children())
    missing = [name for name in scales if not hasattr(normalized, name)]
    if missing:
        raise ConversionError(f"scales name activations the network does not have: {', '.join(missing)}")
    previous = 1.0  # λ_{l−1}: the analog input
    for index, (name, child) in enumerate(children):
        layer = _unwrap(child)
        if name in scales:
            previous = scales[name]
        elif isinstance(layer, SYNAPTIC):
            following = _next_activation(children, index, scales)
            current = scales[following] if following is not None else 1.0  # λ_L = 1: the output layer
            with torch.no_grad():
                layer.weight.mul_(previous / current)
                if layer.bias is not None:
                    layer.bias.div_(current)
        elif not isinstance(layer, PASS_THROUGH):
            raise ConversionError(f"{_shown(name, child)} has no λ in `scales` and is neither a synaptic nor a "
                                  "pass-through layer; calibrate every activation before normalizing")
    return normalized


def _next_activation(children: list[tuple[str, nn.Module]], index: int, scales: dict[str, float]) -> str | None:
    for name, child in children[index + 1:]:
        if name in scales:
            return name
        if isinstance(_unwrap(child), SYNAPTIC):
            return None
    return None


# --- the converted network ---------------------------------------------------------------------------


def synaptic_layers(network: nn.Module) -> OrderedDict[str, nn.Linear | nn.Conv2d]:
    """The Linear and Conv2d layers of a (possibly Folded) `nn.Sequential`, by name, in order."""
    return OrderedDict((name, _unwrap(child)) for name, child in network.named_children()
                       if isinstance(_unwrap(child), SYNAPTIC))


def hidden_layer_count(arch: ArchSpec) -> int:
    """Synaptic layers followed by a neuron: every conv entry (not "M") and every hidden width."""
    return sum(1 for entry in arch.conv if entry != "M") + len(arch.hidden)


def skeleton(
    arch: ArchSpec,
    input_shape: tuple[int, ...],
    num_classes: int,
    make_neuron: NeuronFactory,
    output_neuron: nn.Module | None,
    bias: bool = True,
) -> nn.Sequential:
    """`arch` rebuilt for conversion: BatchNorm removed (it folds into the conv before it, which
    therefore has a bias), `make_neuron(name)` after every hidden synaptic layer, `output_neuron`
    after the last; with `bias=False` the synaptic layers carry no bias (the method injects it)."""
    network = build_network(arch.model_copy(update={"batch_norm": False}), input_shape, num_classes,
                            make_neuron, output_neuron=output_neuron)
    if not bias:
        for layer in synaptic_layers(network).values():
            layer.bias = None
    return network


def transfer(source: nn.Sequential, target: nn.Sequential) -> None:
    """Copies the weights (and biases, where `target` has them) of every synaptic layer of `source`
    into the layer of the same name in `target`. The two must hold the same synaptic layers."""
    mine, theirs = synaptic_layers(source), synaptic_layers(target)
    if list(mine) != list(theirs):
        raise ConversionError(f"the converted network's synaptic layers {list(theirs)} differ from the source's "
                              f"{list(mine)}; was the source trained on another architecture?")
    with torch.no_grad():
        for name, layer in theirs.items():
            if layer.weight.shape != mine[name].weight.shape:
                raise ConversionError(f"layer {name!r}: weight {tuple(mine[name].weight.shape)} in the source, "
                                      f"{tuple(layer.weight.shape)} in the converted network")
            layer.weight.copy_(mine[name].weight)
            if layer.bias is not None:
                layer.bias.copy_(mine[name].bias)


# --- rate-coded IF networks -----------------------------------------------------------


class Integrator(nn.Module):
    """Non-spiking output of a rate-coded network: it accumulates the output layer's current and
    emits the running mean, the rate decoding of the logits.

        U[t] = U[t−1] + I[t]          (one addition per neuron and step: update_acs = 1)
        O[t] = U[t] / (t + 1)         (a positive scale, for reading; argmax O[t] = argmax U[t])

    Shapes: `[T, B, classes]` -> `[T, B, classes]`.
    """

    op_semantics = OpSemantics(EventKind.ANALOG, payload_bits=32, update_acs=1)

    def forward(self, current: Tensor) -> Tensor:
        steps = torch.arange(1, current.shape[0] + 1, device=current.device, dtype=current.dtype)
        return current.cumsum(0) / steps.view(-1, *([1] * (current.ndim - 1)))


def if_network(arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int, initial_membrane: float) -> nn.Sequential:
    """The skeleton of a rate-converted network: integrate-and-fire neurons with threshold 1 and
    soft reset (`snn.engine.LIF` with β = 1) after every hidden synaptic layer, the membrane
    starting at `initial_membrane`·θ, and an `Integrator` output."""
    return skeleton(arch, input_shape, num_classes,
                    make_neuron=lambda name: LIF(beta=1.0, threshold=1.0, reset="subtract",
                                                 initial_membrane=initial_membrane),
                    output_neuron=Integrator())
