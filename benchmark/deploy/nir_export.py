"""A run's network as a NIR graph built from its own layers (exact, or with stated approximations), or
every reason NIR cannot express it.

NIR (Pedersen et al., "Neuromorphic intermediate representation", Nat. Commun. 15:8122, 2024) states
neurons in continuous time; the harness's networks are discrete. One step is `DT` seconds (1e-4 s,
the step snnTorch and SpikingJelly assume when they import a graph), and every node is chosen so
that NIR's equation, integrated by forward Euler with step DT, is the harness's step exactly:

    Folded(Linear)      Affine(W, b), b = 0 for a layer without bias:  I[t] = W·x[t] + b
                        (every importer reads Affine; norse 1.1.0 builds nir.Linear transposed)
    Folded(Conv2d)      Conv2d(W, b, stride, padding, dilation, groups); zero padding only
    BatchNorm           folded into the Linear/Conv2d right before it (snn.conversion.fold_batch_norm)
    Folded(AvgPool2d)   AvgPool2d(kernel, stride, padding)
    Folded(Flatten)     Flatten(start_dim − 1, end_dim − 1): NIR's dimensions exclude the batch; a
                        Flatten of the whole sample that comes first is a reshape of the encoder's
                        output, so it folds into the graph's input instead (metadata
                        `input_flattened` = 1: the graph takes x.flatten(2), row-major)
    LIF, β = 1          IF(r = 1/DT, v_threshold = θ, v_reset = 0):
                            v̇ = r·I          ->  v[t] = v[t−1] + DT·r·I[t] = v[t−1] + I[t]
    LIF, 0 < β < 1      LIF(τ = DT/(1 − β), r = τ/DT, v_leak = 0, v_threshold = θ, v_reset = 0):
                            τ·v̇ = −v + r·I   ->  v[t] = v[t−1] + (DT/τ)·(r·I[t] − v[t−1]) = β·v[t−1] + I[t]
    Integrator output   I(r = 1/DT): U[t] = U[t−1] + I[t] (the harness emits U[t]/(t + 1): a positive
                        scale, the same argmax)

NIR sets v to v_reset after a spike, so the harness's "zero" reset (V = H·(1 − S)) is NIR's reset; a
NIR graph holds no initial state, so V[−1] = 0. LIF here means `snn.engine.LIF`, or an `snntorch.Leaky`
held by a module that declares op semantics (read as that Leaky stepped from a zero membrane). An analog
input (an image held at every step) is exact: a graph's input is real-valued and feeds its first Affine.

Every difference between a layer and NIR is a `Reason` (one per layer and code), of one of two kinds:

    REFUSED        NIR cannot express it, nor anything near it (ternary or graded events, a single-spike
                   mask, an analog activation, ...): no graph is written, every reason is listed
    APPROXIMATED   NIR's nearest equivalent is exported in its place and said so: in the export
                   (`Export.approximations`, each detail with both equations) and in the graph's metadata
                   (`approximations`). The round trip measures its cost against the harness's own run;
                   `nir_semantics` is the harness's network with every approximation applied.

      subtractive-reset   harness  V[t] = H[t] − θ·S[t]                (snn.engine.LIF "subtract")
                                   U[t] = β·U[t−1] + I[t] − θ·S[t−1]   (snntorch.Leaky "subtract")
                          NIR      v = v_reset = 0 after a spike: the residual H[t] − θ is dropped, so
                                   an IF neuron with a constant input 0 < I < θ fires at the rate
                                   1/⌈θ/I⌉ (θ/I not an integer) instead of I/θ
      initial-membrane    harness  V[−1] = φ·θ                         (snn.engine.LIF initial_membrane)
                          NIR      v[−1] = 0: the head start φ·θ is lost

Known difference, written into the graph's metadata (`threshold_test`) and measured by every round
trip: `snn.engine.LIF` fires at H ≥ θ, NIR at v > θ; they differ only where a membrane equals θ.

Exportability is decided from module types and declared op semantics (benchmark/contract/semantics.py),
never from the method's name.

Shapes: the network takes `[T, B, ...]`; NIR types are per sample (`[...]`, no time, no batch).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import nir
import numpy as np
import snntorch
import torch
from torch import Tensor, nn

from benchmark.contract.semantics import EventKind, semantics_of
from snn.conversion import Integrator, fold_batch_norm
from snn.engine import LIF
from snn.layers import Folded
from snn.temporal import SingleSpikeIF

DT = 1e-4  # seconds per harness step
THRESHOLD_TEST = ("snn.engine.LIF fires at H >= theta, NIR at v > theta: they differ only where a membrane "
                  "equals theta exactly")
REFUSED: dict[str, str] = {  # code -> why NIR cannot express the layer
    "ternary-events": "the layer emits ternary events (-1/0/+1); NIR neurons emit binary spikes",
    "graded-events": "the layer emits graded events that carry a value (a sigma-delta sender's update); NIR "
                     "neurons emit binary spikes",
    "single-spike-mask": "each neuron fires at most once, silenced by a fired mask instead of a reset; NIR has "
                         "no such neuron",
    "analog-activation": "a non-spiking activation (analog values) between synaptic layers; NIR has no "
                         "activation node",
    "analog-state": "a non-spiking stateful layer whose dynamics no NIR node states",
    "unknown-neuron": "a neuron module whose dynamics the exporter does not know",
    "not-per-step": "a synaptic layer that does not apply the same map at every step (e.g. evaluated once); "
                    "NIR synapses act at every step",
    "runtime-weights": "a synaptic layer that computes its weights at run time (e.g. weight standardization); "
                       "fold them into plain weights first",
    "max-pooling": "max pooling; NIR has no max-pool node",
    "batch-norm": "a BatchNorm that does not directly follow a Linear or Conv2d, so it cannot be folded",
    "unsupported-layer": "a layer the exporter has no NIR node for",
}


@dataclass(frozen=True)
class Nearest:
    """What the export writes for a difference NIR can only approximate: `summary` (a few words, for a
    table cell) and `description` (the difference and its NIR equivalent)."""

    summary: str
    description: str


APPROXIMATED: dict[str, Nearest] = {
    "subtractive-reset": Nearest("subtractive reset → reset to zero",
                                 "the neuron resets by subtraction (V = H - theta*S); exported with NIR's reset to "
                                 "a value, v_reset = 0, which drops the residual H - theta"),
    "initial-membrane": Nearest("initial membrane → 0",
                                "the membrane starts at a nonzero value; exported with NIR's zero initial state "
                                "(a graph holds none)"),
}
IO_NAMES = ("input", "output")


class NirExportError(ValueError):
    """A network that cannot be written as a NIR graph; `reasons` lists every `Reason`."""

    def __init__(self, reasons: list["Reason"]):
        self.reasons = reasons
        super().__init__("; ".join(f"{r.layer} ({r.module}): {r.code}: {r.detail}" for r in reasons))


@dataclass(frozen=True)
class Reason:
    """A difference between the layer `layer` (a module of type `module`) and NIR: `code` (a key of
    REFUSED or of APPROXIMATED) and `detail` (what was found, with values; for an approximation, the
    harness's equation and the NIR one)."""

    layer: str
    module: str
    code: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Export:
    """The graph (None when a refusal was found), the refusals (`reasons`), one row per graph node:
    {node, nir, layer} (the NIR node's name, its type, the harness layer it comes from), and the
    approximations the graph makes (also listed when a refusal stops the export)."""

    graph: nir.NIRGraph | None
    reasons: list[Reason]
    nodes: list[dict[str, str]]
    approximations: list[Reason]

    @property
    def exportable(self) -> bool:
        return self.graph is not None

    @property
    def exact(self) -> bool:
        return self.exportable and not self.approximations


def leaves(network: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers of an `nn.Sequential` in order, nested plain Sequentials flattened (dotted names)."""
    found = []
    for name, child in network.named_children():
        if type(child) is nn.Sequential:
            found += [(f"{name}.{inner}", module) for inner, module in leaves(child)]
        else:
            found.append((name, child))
    return found


@torch.no_grad()
def record_io(network: nn.Module, encoded: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
    """(input, output) `[T, B, ...]` of every layer of `leaves(network)` on `encoded`."""
    seen: dict[str, tuple[Tensor, Tensor]] = {}
    handles = [module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, (i[0], o)))
               for name, module in leaves(network)]
    try:
        network(encoded)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _name(module: nn.Module) -> str:
    layer = module.layer if isinstance(module, Folded) else module
    return f"{type(module).__name__}({type(layer).__name__})" if layer is not module else type(module).__name__


def _per_step(module: Folded, x: Tensor) -> str | None:
    """None when a Folded subclass maps a time-varying input like `Folded` (its layer at every step);
    else what differs."""
    probe = torch.randn(max(2, x.shape[0]), *x.shape[1:], generator=torch.Generator().manual_seed(0))
    try:
        got = module(probe)
    except (ValueError, RuntimeError) as error:
        return f"on an input that varies over time it raised: {error}"
    want = Folded.forward(module, probe)
    if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-5, atol=1e-6):
        return f"its output over time {tuple(got.shape)} is not its layer applied at every step {tuple(want.shape)}"
    return None


def _array(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.asarray(torch.as_tensor(value, dtype=torch.float32).detach().cpu()), shape) \
        .astype(np.float32).copy()


def _neuron_node(beta: Any, threshold: Any, shape: tuple[int, ...]) -> nir.NIRNode:
    """IF (β = 1) or LIF (β < 1) with zero reset, the module docstring's mapping."""
    beta_array = _array(beta, shape)
    if np.all(beta_array == 1.0):
        return nir.IF(r=np.full(shape, 1 / DT, np.float32), v_threshold=_array(threshold, shape),
                      v_reset=np.zeros(shape, np.float32))
    tau = (DT / (1.0 - beta_array.astype(np.float64))).astype(np.float32)
    return nir.LIF(tau=tau, r=(tau / np.float32(DT)).astype(np.float32), v_leak=np.zeros(shape, np.float32),
                   v_threshold=_array(threshold, shape), v_reset=np.zeros(shape, np.float32))


_NIR_RESET = "NIR {node}: v = v_reset = 0 after a spike"


def _neuron(name: str, module: nn.Module, shape: tuple[int, ...]) -> tuple[nir.NIRNode | None, list[Reason]]:
    """The NIR node of a module that declares op semantics (None when NIR cannot express it) and every
    difference found (refusals, or approximations the node makes)."""
    semantics = semantics_of(module)
    kind = semantics.event_kind
    shown = _name(module)
    if kind in (EventKind.TERNARY, EventKind.GRADED):
        code = "ternary-events" if kind is EventKind.TERNARY else "graded-events"
        return None, [Reason(name, shown, code, f"declares {kind.value} events of {semantics.payload_bits} bits")]
    if isinstance(module, SingleSpikeIF):
        return None, [Reason(name, shown, "single-spike-mask", f"threshold {module.threshold}, at most one spike a "
                                                               "neuron")]
    if isinstance(module, LIF):
        node, found = _neuron_node(module.beta, module.threshold, shape), []
        if module.reset != "zero":
            found.append(Reason(name, shown, "subtractive-reset", f"harness: V[t] = H[t] - theta*S[t] (reset "
                                f"{module.reset!r}, theta = {module.threshold}); "
                                + _NIR_RESET.format(node=type(node).__name__)))
        if module.initial_membrane != 0:
            found.append(Reason(name, shown, "initial-membrane",
                                f"harness: V[-1] = {module.initial_membrane}*theta = "
                                f"{module.initial_membrane * module.threshold}; NIR {type(node).__name__}: v[-1] = 0"))
        return node, found
    leaky = next((m for m in module.modules() if isinstance(m, snntorch.Leaky)), None)
    if leaky is not None:
        node = _neuron_node(leaky.beta.clamp(0, 1), leaky.threshold, shape)
        mechanism = leaky.reset_mechanism
        if mechanism == "subtract":
            lowered = ("U[t] = beta*U[t-1] + I[t] - theta*S[t-1]" if leaky.reset_delay
                       else "U lowered by theta in the step it fires (reset_delay=False)")
            return node, [Reason(name, shown, "subtractive-reset",
                                 f"harness: snntorch.Leaky reset_mechanism='subtract', {lowered} (theta = "
                                 f"{float(leaky.threshold)}); " + _NIR_RESET.format(node=type(node).__name__))]
        if mechanism != "zero" or leaky.reset_delay:
            return None, [Reason(name, shown, "unknown-neuron", f"snntorch.Leaky reset_mechanism={mechanism!r}, "
                                                               f"reset_delay={leaky.reset_delay}; exported: 'zero' "
                                                               "without reset delay")]
        return node, []
    if isinstance(module, Integrator):
        return nir.I(r=np.full(shape, 1 / DT, np.float32)), []
    if kind is EventKind.ANALOG:
        code = "analog-state" if semantics.stateful else "analog-activation"
        return None, [Reason(name, shown, code, f"declares {kind.value} values, stateful={semantics.stateful}")]
    return None, [Reason(name, shown, "unknown-neuron", f"declares {kind.value} events; the exporter knows "
                                                        "snn.engine.LIF, snntorch.Leaky and snn.conversion.Integrator")]


def _synapse(layer: nn.Linear | nn.Conv2d, in_shape: tuple[int, ...]) -> nir.NIRNode:
    weight = layer.weight.detach().cpu().float().numpy().copy()
    bias = None if layer.bias is None else layer.bias.detach().cpu().float().numpy().copy()
    if isinstance(layer, nn.Linear):
        return nir.Affine(weight=weight, bias=bias if bias is not None else np.zeros(weight.shape[0], np.float32))
    return nir.Conv2d(input_shape=tuple(in_shape[-2:]), weight=weight, stride=tuple(layer.stride),
                      padding=layer.padding if isinstance(layer.padding, str) else tuple(layer.padding),
                      dilation=tuple(layer.dilation), groups=layer.groups,
                      bias=bias if bias is not None else np.zeros(weight.shape[0], np.float32))


def _pair(value: Any) -> np.ndarray:
    return np.array([value, value] if isinstance(value, int) else list(value))


def _other(name: str, child: nn.Module, layer: nn.Module, in_shape: tuple[int, ...],
           last_synaptic: nn.Module | None, previous_was_synaptic: bool) -> nir.NIRNode | Reason | None:
    """The node of a non-neuron, non-synaptic layer; None for a layer that is skipped (folded BN,
    Dropout, Identity)."""
    shown = _name(child)
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if not previous_was_synaptic:
            return Reason(name, shown, "batch-norm", "it does not directly follow a Linear or Conv2d")
        fold_batch_norm(last_synaptic, layer)
        return None
    if isinstance(layer, (nn.Dropout, nn.Dropout2d, nn.Identity)):
        return None
    if isinstance(layer, nn.MaxPool2d):
        return Reason(name, shown, "max-pooling", f"kernel {layer.kernel_size}")
    if type(layer) is nn.AvgPool2d:
        if layer.ceil_mode or layer.divisor_override is not None:
            return Reason(name, shown, "unsupported-layer", "AvgPool2d with ceil_mode or divisor_override")
        return nir.AvgPool2d(kernel_size=_pair(layer.kernel_size),
                             stride=_pair(layer.stride if layer.stride is not None else layer.kernel_size),
                             padding=_pair(layer.padding))
    if type(layer) is nn.Flatten:
        if layer.start_dim < 1:
            return Reason(name, shown, "unsupported-layer", f"Flatten over the batch (start_dim={layer.start_dim})")
        end = layer.end_dim - 1 if layer.end_dim >= 1 else layer.end_dim
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=layer.start_dim - 1, end_dim=end)
    return Reason(name, shown, "unsupported-layer", "the exporter knows Linear, Conv2d, AvgPool2d, Flatten, "
                                                    "BatchNorm (folded), Dropout, Identity and neuron modules")


def export_network(network: nn.Module, encoded: Tensor) -> Export:
    """The NIR graph of `network` (run once on `encoded` `[T, B, ...]` to learn every layer's shape),
    with every approximation it makes, or every reason it has none. The network is not changed
    (BatchNorm folds into copies)."""
    if not isinstance(network, nn.Sequential):
        raise NirExportError([Reason("<network>", type(network).__name__, "unsupported-layer",
                                     "the exporter walks an nn.Sequential (snn.arch.build_network)")])
    io = record_io(network, encoded)
    layers = [(name, child) for name, child in leaves(network) if name in io]  # those the forward pass ran
    flattened = bool(layers) and _flattens_sample(layers[0][1])
    if flattened:
        layers = layers[1:]
    input_shape = (int(np.prod(encoded.shape[2:])),) if flattened else tuple(encoded.shape[2:])
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(input_shape))}
    rows, found, order = [], [], ["input"]
    synapses: dict[str, tuple[nn.Module, tuple[int, ...]]] = {}  # copies, BN folds into them
    last_synaptic, previous_was_synaptic = None, False
    for name, child in layers:
        x, y = io[name]
        in_shape, out_shape = tuple(x.shape[2:]), tuple(y.shape[2:])
        layer = child.layer if isinstance(child, Folded) else child
        if isinstance(child, Folded) and type(child) is not Folded:
            problem = _per_step(child, x)
            if problem is not None:
                found.append(Reason(name, _name(child), "not-per-step", problem))
        node: nir.NIRNode | Reason | None
        if semantics_of(child) is not None or semantics_of(layer) is not None:
            node, differences = _neuron(name, child, out_shape)
            found += differences
            is_synaptic = False
        elif isinstance(layer, (nn.Linear, nn.Conv2d)):
            is_synaptic = True
            if type(layer) not in (nn.Linear, nn.Conv2d):
                node = Reason(name, _name(child), "runtime-weights", f"{type(layer).__name__} is a subclass whose "
                                                                      "forward may not use `weight` as it is")
            elif isinstance(layer, nn.Conv2d) and layer.padding_mode != "zeros":
                node = Reason(name, _name(child), "unsupported-layer", f"padding_mode={layer.padding_mode!r}")
            else:
                copied = copy.deepcopy(layer)
                if copied.bias is None:
                    copied.bias = nn.Parameter(torch.zeros(copied.weight.shape[0], dtype=copied.weight.dtype))
                synapses[name] = (copied, in_shape)
                last_synaptic, node = copied, None
        else:
            node = _other(name, child, layer, in_shape, last_synaptic, previous_was_synaptic)
            is_synaptic = False
        previous_was_synaptic = is_synaptic
        if isinstance(node, Reason):
            found.append(node)
        elif node is not None or name in synapses:
            key = f"{name}_layer" if name in IO_NAMES else name
            order.append(key)
            if node is not None:
                nodes[key] = node
            rows.append({"node": key, "layer": name})
    reasons = [reason for reason in found if reason.code in REFUSED]
    approximations = [reason for reason in found if reason.code in APPROXIMATED]
    if reasons:
        return Export(None, reasons, [], approximations)
    for row in rows:
        if row["layer"] in synapses:
            layer, in_shape = synapses[row["layer"]]
            nodes[row["node"]] = _synapse(layer, in_shape)
        row["nir"] = type(nodes[row["node"]]).__name__
    nodes["output"] = nir.Output(output_type=np.array(io[rows[-1]["layer"]][1].shape[2:]))
    order.append("output")
    metadata = {"dt": DT, "steps": int(encoded.shape[0]), "threshold_test": THRESHOLD_TEST,
                "input_flattened": int(flattened), "approximations": _stated(approximations),
                "source": "spikecode-bench benchmark.deploy.nir_export"}
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:])), metadata=metadata)
    return Export(graph, [], rows, approximations)


def _stated(approximations: list[Reason]) -> str:
    """The graph's own statement of what it approximates ("none": it is exact up to threshold_test)."""
    return "; ".join(f"{r.layer}: {r.code}: {r.detail}" for r in approximations) or "none"


def _flattens_sample(module: nn.Module) -> bool:
    """True for Folded(nn.Flatten) over a whole sample (start_dim 1, end_dim −1)."""
    return (type(module) is Folded and type(module.layer) is nn.Flatten and module.layer.start_dim == 1
            and module.layer.end_dim == -1)


def reason_codes(export: Export) -> list[str]:
    return [reason.code for reason in export.reasons]


def nir_semantics(network: nn.Module, export: Export) -> nn.Module:
    """A copy of `network` in which every approximated neuron follows its graph node (reset to zero,
    V[−1] = 0): the harness's own run of what the approximate graph states."""
    copied = copy.deepcopy(network)
    for name in dict.fromkeys(reason.layer for reason in export.approximations):
        module = copied.get_submodule(name)
        if isinstance(module, LIF):
            module.reset, module.initial_membrane = "zero", 0.0
            continue
        # a module holding an snntorch.Leaky: a zero-reset Leaky in its place (snnTorch binds the reset
        # function when a Leaky is built, so setting `reset_mechanism` afterwards would not change it)
        for path, leaky in list(module.named_modules()):
            if isinstance(leaky, snntorch.Leaky):
                parent, _, attribute = path.rpartition(".")
                setattr(module.get_submodule(parent), attribute,
                        snntorch.Leaky(beta=leaky.beta.detach().clone(), threshold=leaky.threshold.detach().clone(),
                                       reset_mechanism="zero"))
    return copied
