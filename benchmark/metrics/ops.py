"""The op counter: dense ops, effective ACs/MACs, spikes and neuron updates, per layer and per step.

Long because the counting rules, the static walk and the hooks are one mechanism, and this docstring,
which states the rules, is a sixth of it.

A metric object apart from the model (NeuroBench): `attach()` hooks a network, every forward call
adds counts, `compute(num_samples)` returns a typed, frozen `OpCounts`, `reset()` clears. The hooks
keep python ints only, never tensors, so memory does not grow with the test set.

Event kinds are read from declarations, never guessed from values (DESIGN.md, "The method
contract"). A static walk of the `nn.Sequential` assigns each synaptic layer the kind of its
producer: it starts with the encoder's `input_semantics`; a module with `op_semantics` (neuron,
encoder) sets the kind to its declared one; pass-through modules keep it; a synaptic layer's output
is a current, so after it the kind is analog. A module the walk does not know is an `OpCountError`.

Per synaptic layer and time step t (x[t] the input `[B, ...]`, nz = its nonzero elements):

    dense[t]      = B · MACs of the dense layer
                    Linear:  in_features · out_features
                    Conv2d:  out_channels·H_out·W_out · (in_channels/groups) · kh · kw
    effective[t]  = Σ_{i ∈ nz} fan_out(i)
                    Linear:  fan_out = out_features
                    Conv2d:  fan_out(c, h, w) = (out_channels/groups) · cover(h, w), where cover
                             counts the output positions whose window holds (h, w) — exact at
                             borders and for any stride/padding/dilation
    effective ops are ACs when the producer's kind is binary/ternary, MACs when graded/analog.

A constant input (the producer declares `constant`, e.g. an analog image held as the input of every
step; benchmark/contract/semantics.py) is charged once per sample: dense[0] and effective[0] only,
each later step re-injecting the held current at the receiving neuron's declared update cost (its
neuron updates). The counter holds the declaration to the values: the first call checks that every
step's input equals the first (`OpCountError` if not). The figure had every step's products been
charged is kept per layer and in the totals as `acs_every_step` / `macs_every_step`.

Per neuron layer (a module with `op_semantics`), y[t] its output `[B, ...]`:

    spikes[t]       = nonzeros of y[t]  (0 for an analog producer: its outputs are not spikes;
                      nonzeros of `module.events(y)[t]` for a module that defines `events`)
    neurons         = elements of y[t] per sample
    neuron_updates  = neurons · T per sample when `stateful`, else 0
    update_acs      = neuron_updates · op_semantics.update_acs     (likewise update_macs)
    bits            = spikes · out_bits: the bits on the wire (binary 1, ternary 2, graded its
                      payload; an analog layer sends no events)

Counting cost (the counter must not slow evaluation much: ≤ 20 % of inference, tests/perf):
- a binary event is a 1 by declaration (benchmark/contract/semantics.py), so a binary layer's spikes[t] is
  Σ y[t], a plain sum; the first call checks that every value is 0 or 1 (`OpCountError` if not:
  a layer that sends values must declare them graded or analog). Other kinds test each element;
- a tensor that feeds several hooks (a neuron's output straight into the next synaptic layer) is
  counted once per forward call (memoised on the tensor and its version counter);
- the hooks' kernels run on `snn.engine.set_step_threads`'s threads (one by default), as the
  LIF's per-step kernels do: on a shared CPU a multi-threaded kernel can wait a scheduler slice.

Sizes a memory-aware energy model needs (benchmark/metrics/energy.py, tier 2), per layer, static or per
sample and per step, recorded as plain ints:

    weights         weight parameters of a synaptic layer (`layer.weight.numel()`; biases excluded,
                    as they are not charged as ops); 0 for neuron layers
    weight_bytes    those weights as stored (numel · element size of the weight's dtype)
    in_elements     elements of one sample's input at one step (x[t] of one sample)
    out_elements    elements of one sample's output at one step (y[t] of one sample)
    in_bits         payload bits the producer of the input declares (binary 1, ternary 2, graded n,
                    analog 32 as declared; tier 2 replaces analog widths by its cost model's)
    event_kind_out  kind of the events the layer emits: a synaptic layer emits an analog current,
    out_bits        a neuron layer its declared kind, with its declared payload bits
    state_elements  membrane values a neuron layer holds per sample: one per neuron when
                    `stateful`, else 0 (always 0 for synaptic layers)

Conventions:
- Totals `acs`/`macs` are synaptic; a neuron's own update ops are reported per layer and in the
  totals as `update_acs`, `update_macs` (priced in tier 1 like any AC and MAC).
- `bits_per_sample` sums every layer's `bits`, beside `spikes_per_sample`, which counts events of
  every kind alike.
- BatchNorm is charged nothing: for inference it folds into the preceding layer's weights and bias.
- Biases are not charged (one add per output, identical to the dense layer's).
- Average pooling keeps its producer's kind: its 1/k² scale folds into the next layer's weights,
  and a nonzero pooled element is charged once per fan-out, as in the dense layer's input.

Shapes: the network's input and every hooked module's input/output are `[T, B, ...]`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snn.engine import per_step_threads

from benchmark.contract.errors import OpCountError
from benchmark.contract.semantics import ANALOG_VALUES, EventKind, OpSemantics, semantics_of
from snn.layers import Folded

SYNAPTIC = (nn.Linear, nn.Conv2d)
TOTAL_KEYS = ("dense", "acs", "macs", "neuron_updates", "update_acs", "update_macs", "acs_every_step",
              "macs_every_step")
PASS_THROUGH = (
    nn.Flatten, nn.Unflatten, nn.Identity, nn.Dropout, nn.Dropout2d,
    nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.BatchNorm1d, nn.BatchNorm2d,
)


@dataclass(frozen=True)
class OpCounts:
    """Op counts per sample, averaged over the `samples` counted.

    totals:            {dense, acs, macs, neuron_updates, update_acs, update_macs, acs_every_step,
                       macs_every_step}
    spikes_per_sample: spikes of every spiking layer in the network, whole window
    bits_per_sample:   bits on the wire of those spikes (spikes × payload bits)
    per_step:          {acs, macs, spikes}: tuples of length T
    layers:            one dict per synaptic or neuron layer, in network order: name, type,
                       event_kind_in, dense, acs, macs, spikes, spikes_per_neuron, neurons,
                       neuron_updates, update_acs, update_macs, bits, constant_input,
                       acs_every_step, macs_every_step, and the sizes of the module docstring:
                       weights, weight_bytes, in_elements, out_elements, in_bits, event_kind_out,
                       out_bits, state_elements
    """

    samples: int
    T: int
    totals: dict[str, float]
    spikes_per_sample: float
    bits_per_sample: float
    per_step: dict[str, tuple[float, ...]]
    layers: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "T": self.T,
            "totals": dict(self.totals),
            "spikes_per_sample": self.spikes_per_sample,
            "bits_per_sample": self.bits_per_sample,
            "per_step": {key: list(values) for key, values in self.per_step.items()},
            "layers": [dict(layer) for layer in self.layers],
        }


@dataclass(frozen=True)
class _Site:
    """One hooked layer of the static walk."""

    name: str
    module: nn.Module  # the hooked module: its input/output are [T, B, ...] (Folded or bare)
    layer: nn.Module  # the layer itself (Folded unwrapped)
    producer: OpSemantics  # declared semantics of the events reaching it
    semantics: OpSemantics | None  # set for neuron layers, None for synaptic ones

    @property
    def kind_in(self) -> EventKind:
        return self.producer.event_kind


@dataclass
class _Tally:
    """Counts of one layer over all forward calls: python ints only."""

    dense: int = 0
    effective: list[int] = field(default_factory=list)  # per step, summed over samples
    every_step: int = 0  # effective ops had a constant input's products been charged at every step
    spikes: list[int] = field(default_factory=list)  # per step, summed over samples
    neurons: int = 0
    updates: int = 0
    in_elements: int = 0  # per sample and step
    out_elements: int = 0  # per sample and step


def _plan(network: nn.Module, input_semantics: OpSemantics) -> list[_Site]:
    """The static walk: every synaptic and neuron layer of `network` with the kind reaching it."""
    if not isinstance(network, nn.Sequential):
        raise OpCountError(
            f"the op counter walks an nn.Sequential, got {type(network).__name__}; "
            "build the network as an nn.Sequential of Folded layers and neurons"
        )
    sites: list[_Site] = []
    producer = input_semantics

    def walk(container: nn.Module, prefix: str) -> None:
        nonlocal producer
        for child_name, child in container.named_children():
            path = f"{prefix}.{child_name}" if prefix else child_name
            layer = child.layer if isinstance(child, Folded) else child
            semantics = semantics_of(child) or semantics_of(layer)
            if semantics is not None:
                sites.append(_Site(path, child, layer, producer, semantics))
                producer = semantics
            elif isinstance(layer, SYNAPTIC):
                if isinstance(layer, nn.Conv2d) and layer.padding_mode != "zeros":
                    raise OpCountError(
                        f"module {path!r} (Conv2d) has padding_mode={layer.padding_mode!r}; the op "
                        "counter charges zero padding only: use padding_mode='zeros'"
                    )
                sites.append(_Site(path, child, layer, producer, None))
                producer = ANALOG_VALUES  # a synaptic layer outputs a current
            elif isinstance(layer, PASS_THROUGH):
                pass
            elif type(child) is nn.Sequential:
                walk(child, path)
            else:
                shown = f"Folded({type(layer).__name__})" if layer is not child else type(child).__name__
                raise OpCountError(
                    f"module {path!r} of type {shown} has no op semantics and is not a layer the op "
                    f"counter knows (Linear, Conv2d, nested Sequential, or pass-through: "
                    f"{', '.join(t.__name__ for t in PASS_THROUGH)}); declare "
                    "`op_semantics = OpSemantics(...)` on it (benchmark/contract/semantics.py) or wrap it in a "
                    "module that does"
                )

    walk(network, "")
    return sites


class OpCounter:
    """Counts ops of `network` run on inputs `[T, B, ...]` whose events are `input_semantics`.

    Usage:
        with OpCounter(method.network, method.input_semantics) as counter:
            for images, _ in loader:
                method.forward(images)
        counts = counter.compute(num_samples)

    The walk runs at construction, so an uncountable network fails before any forward call.
    """

    def __init__(self, network: nn.Sequential, input_semantics: OpSemantics):
        self.network = network
        self.sites = _plan(network, input_semantics)
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self.reset()

    # --- lifecycle ----------------------------------------------------------------------------

    def attach(self) -> "OpCounter":
        if self._handles:
            return self
        self._handles.append(self.network.register_forward_pre_hook(self._count_samples))
        for site in self.sites:
            hook = self._neuron_hook(site) if site.semantics else self._synapse_hook(site)
            self._handles.append(site.module.register_forward_hook(hook))
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def reset(self) -> None:
        self._samples = 0
        self._steps = 0
        self._memo: tuple[weakref.ref, int, list[int]] | None = None
        self._tallies = {site.name: _Tally() for site in self.sites}

    def __enter__(self) -> "OpCounter":
        return self.attach()

    def __exit__(self, *exc_info) -> None:
        self.detach()

    # --- hooks: they turn tensors into ints at once and keep nothing else -----------------------

    def _count_samples(self, module: nn.Module, inputs: tuple) -> None:
        steps, batch = _time_batch(inputs[0], "the network input")
        self._samples += batch
        self._steps = max(self._steps, steps)
        self._memo = None  # a new forward call: no tensor of the last one is counted again

    def _nonzeros_per_step(self, x: Tensor) -> list[int]:
        """Nonzeros of `x [T, B, ...]` per step, summed over the batch; memoised for the tensor.

        A neuron's output often feeds the next synaptic layer as it is (the MLP: LIF -> Linear):
        both hooks see the same tensor, which is counted once. The memo holds a weak reference,
        so it keeps no tensor alive, and the tensor's version counter, so an in-place change
        between the two hooks is counted anew.
        """
        memo = self._memo
        if memo is not None and not x.is_inference() and memo[0]() is x and memo[1] == x._version:
            return memo[2]
        return self._remember(x, _nonzeros(x, keep=1).tolist())

    def _remember(self, x: Tensor, counts: list[int]) -> list[int]:
        """Memoises `counts` for `x`; not for an inference-mode tensor (it has no version counter)."""
        self._memo = None if x.is_inference() else (weakref.ref(x), x._version, counts)
        return counts

    def _synapse_hook(self, site: _Site):
        layer = site.layer
        covers: dict[tuple, Tensor] = {}  # fan-out grid per input/output size: static, [H, W] ints

        constant = site.producer.constant
        checked = False  # a constant input: checked to be the same at every step on the first call

        @torch.no_grad()
        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            nonlocal checked
            tally = self._tallies[site.name]  # looked up per call: reset() replaces the tallies
            x = inputs[0]
            steps, batch = _time_batch(x, f"the input of {site.name!r}")
            if constant and not checked:
                _check_constant(x, site.name)
                checked = True
            with per_step_threads(x):
                effective, per_sample_dense = effective_ops(x[:1] if constant else x, output[:1])
            tally.every_step += effective[0] * steps if constant else sum(effective)
            tally.dense += per_sample_dense * (1 if constant else steps) * batch
            tally.in_elements, tally.out_elements = x[0, 0].numel(), output[0, 0].numel()
            _add(tally.effective, effective)

        def effective_ops(x: Tensor, output: Tensor) -> tuple[list[int], int]:
            """(effective ops per step, dense ops per sample and step)."""
            if isinstance(layer, nn.Linear):
                per_sample_dense = x[0, 0].numel() * layer.out_features
                effective = [nonzeros * layer.out_features for nonzeros in self._nonzeros_per_step(x)]
            else:
                fan = layer.out_channels // layer.groups
                kh, kw = layer.kernel_size
                per_sample_dense = output[0, 0].numel() * (layer.in_channels // layer.groups) * kh * kw
                key = (tuple(x.shape[-2:]), tuple(output.shape[-2:]), x.device)
                if key not in covers:
                    covers[key] = _conv_cover(layer, x.shape[-2:], output.shape[-2:], x.device)
                present = _nonzeros(x, keep=x.dim() - 2)  # [T, H, W]: over the batch and channels
                effective = ((present * covers[key]).sum((1, 2)) * fan).tolist()
            return effective, per_sample_dense

        return hook

    def _neuron_hook(self, site: _Site):
        semantics = site.semantics
        # a layer whose output is not what it sends (e.g. a membrane read out) says so with `events`
        events_of = getattr(site.module, "events", None) or getattr(site.layer, "events", None)
        checked = False  # binary events: checked to be 0/1 on the first call

        @torch.no_grad()
        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            nonlocal checked
            tally = self._tallies[site.name]  # looked up per call: reset() replaces the tallies
            steps, batch = _time_batch(output, f"the output of {site.name!r}")
            tally.neurons = output[0, 0].numel()
            tally.in_elements, tally.out_elements = inputs[0][0, 0].numel(), tally.neurons
            if semantics.event_kind.is_spike:
                with per_step_threads(output):
                    events = output if events_of is None else events_of(output)
                    if semantics.event_kind is EventKind.BINARY:
                        if not checked:
                            _check_binary(events, site.name)
                            checked = True
                        _add(tally.spikes, self._remember(events, _binary_events(events).tolist()))
                    else:
                        _add(tally.spikes, self._nonzeros_per_step(events))
            if semantics.stateful:
                tally.updates += tally.neurons * steps * batch

        return hook

    # --- result -------------------------------------------------------------------------------

    def compute(self, num_samples: int | None = None) -> OpCounts:
        """Counts per sample; `num_samples`, when given, must equal the samples counted."""
        if self._samples == 0:
            raise OpCountError("the op counter saw no forward call; attach() it before running the network")
        if num_samples is not None and num_samples != self._samples:
            raise OpCountError(
                f"compute(num_samples={num_samples}) but the counter saw {self._samples} samples; "
                "reset() between evaluations and pass the number of samples actually run"
            )
        n, steps = self._samples, self._steps
        per_step = {key: [0.0] * steps for key in ("acs", "macs", "spikes")}
        layers = []
        for site in self.sites:
            tally = self._tallies[site.name]
            row = dict.fromkeys(("dense", "acs", "macs", "spikes", "spikes_per_neuron", "neurons",
                                 "neuron_updates", "update_acs", "update_macs", "bits", "acs_every_step",
                                 "macs_every_step"), 0.0)
            row["neurons"] = 0
            row.update(in_elements=tally.in_elements, out_elements=tally.out_elements,
                       in_bits=site.producer.payload_bits)
            if site.semantics is None:
                key = "acs" if site.kind_in.is_accumulate else "macs"
                row["dense"], row[key] = tally.dense / n, sum(tally.effective) / n
                row[f"{key}_every_step"] = tally.every_step / n
                row["constant_input"] = site.producer.constant
                _add(per_step[key], [value / n for value in tally.effective])
                weight = site.layer.weight
                row.update(weights=weight.numel(), weight_bytes=weight.numel() * weight.element_size(),
                           event_kind_out=ANALOG_VALUES.event_kind.value, out_bits=ANALOG_VALUES.payload_bits,
                           state_elements=0)
            else:
                row.update(weights=0, weight_bytes=0, event_kind_out=site.semantics.event_kind.value,
                           out_bits=site.semantics.payload_bits, constant_input=False,
                           state_elements=tally.neurons if site.semantics.stateful else 0)
                updates = tally.updates / n
                row.update(
                    spikes=sum(tally.spikes) / n,
                    spikes_per_neuron=sum(tally.spikes) / n / tally.neurons if tally.neurons else 0.0,
                    neurons=tally.neurons,
                    neuron_updates=updates,
                    update_acs=updates * site.semantics.update_acs,
                    update_macs=updates * site.semantics.update_macs,
                    bits=sum(tally.spikes) / n * site.semantics.payload_bits,
                )
                _add(per_step["spikes"], [value / n for value in tally.spikes])
            type_name = type(site.layer).__name__
            layers.append({"name": site.name, "type": type_name, "event_kind_in": site.kind_in.value, **row})
        totals = {key: sum(layer[key] for layer in layers) for key in TOTAL_KEYS}
        return OpCounts(
            samples=n,
            T=steps,
            totals=totals,
            spikes_per_sample=sum(layer["spikes"] for layer in layers),
            bits_per_sample=sum(layer["bits"] for layer in layers),
            per_step={key: tuple(values) for key, values in per_step.items()},
            layers=tuple(layers),
        )


def _time_batch(x: Any, what: str) -> tuple[int, int]:
    if not isinstance(x, Tensor) or x.dim() < 2:
        raise OpCountError(f"{what} must be a tensor [T, B, ...], got {type(x).__name__} "
                           f"{tuple(getattr(x, 'shape', ()))}")
    return x.shape[0], x.shape[1]


_EXACT_FLOAT_SUM = 1 << 24  # float32 adds integers exactly up to 2^24


def _nonzeros(x: Tensor, keep: int) -> Tensor:
    """int64 `x.shape[:keep]`: nonzero elements of `x` summed over the dims `[1, dim − (keep − 1))`
    (the batch, and what lies between it and the `keep − 1` trailing dims). keep = 1: per step
    `[T]`; keep = 3 on `[T, B, C, H, W]`: per step and pixel `[T, H, W]`.

    Exact and fast: the nonzero flags are written as float32 0/1 (one vectorised pass, no bool
    tensor) and summed in float32 over slices of fewer than 2^24 elements (sums of 0/1 that
    stay exact), then in int64. The flags are summed per sample first, the batch last.
    """
    trailing = x.shape[x.dim() - (keep - 1):] if keep > 1 else ()
    grid = x.reshape(x.shape[0], x.shape[1], -1, *trailing)  # [T, B, inner, *trailing]
    flags = torch.ne(grid, 0, out=torch.empty(grid.shape, dtype=torch.float32, device=x.device))
    if grid.shape[2] < _EXACT_FLOAT_SUM:
        per_sample = flags.sum(2).to(torch.int64)  # [T, B, *trailing]
    else:
        per_sample = flags.to(torch.int64).sum(2)
    return per_sample.sum(1)


def _binary_events(x: Tensor) -> Tensor:
    """int64 `[T]`: events of a layer that declares binary spikes, per step, summed over the batch.

    Every binary event is a 1 (benchmark/contract/semantics.py), so the count is Σ x[t]: a plain float sum,
    several times faster than testing every element for nonzero (the op counter's largest cost
    on convolutional layers). Summed per sample in float32 (exact: fewer than 2^24 neurons a
    sample, else the nonzero test), then over the batch in int64. `_check_binary` holds a layer
    to its declaration.
    """
    grid = x.reshape(x.shape[0], x.shape[1], -1)
    if not x.is_floating_point() or grid.shape[2] >= _EXACT_FLOAT_SUM:
        return _nonzeros(x, keep=1)
    return grid.sum(2, dtype=torch.float32).to(torch.int64).sum(1)


def _check_constant(x: Tensor, name: str) -> None:
    """Raises `OpCountError` unless every step of `x [T, B, ...]` equals its first, as a constant
    input's declaration says."""
    if x.shape[0] > 1 and not (x.stride(0) == 0 or torch.equal(x[1:], x[:1].expand_as(x[1:]))):
        raise OpCountError(
            f"the input of {name!r} is declared constant over the time steps (OpSemantics.constant) but "
            "changes between steps; declare its kind without `constant` (benchmark/contract/semantics.py)"
        )


def _check_binary(x: Tensor, name: str) -> None:
    """Raises `OpCountError` unless every value of `x` is 0 or 1, as a binary declaration says."""
    stray = x[(x != 0) & (x != 1)]
    if stray.numel():
        raise OpCountError(
            f"layer {name!r} declares binary events (EventKind.BINARY: 0/1 spikes) but emitted "
            f"{float(stray[0])!r} among {stray.numel()} values other than 0 and 1; declare the kind it emits "
            "(GRADED with its payload bits for spikes that carry a value, ANALOG for activations)"
        )


def _add(total: list, values: list) -> None:
    """total += values elementwise, growing `total` when a call has more time steps."""
    total.extend([0] * (len(values) - len(total)))
    for index, value in enumerate(values):
        total[index] += value


def _conv_cover(conv: nn.Conv2d, in_hw, out_hw, device) -> Tensor:
    """`[H, W]` int64: how many output positions' windows hold each input pixel.

    The transposed convolution of an all-ones output grid with an all-ones kernel scatters each
    output position onto the padded input pixels its window reads; cropping the padding leaves
    the fan-out per real pixel (border pixels feed fewer windows, strided gaps may feed none).
    """
    (height, width), (kh, kw) = in_hw, conv.kernel_size
    if conv.padding == "valid":
        pads = [0, 0]
    elif conv.padding == "same":  # total d·(k−1); torch puts the odd pixel after
        pads = [d * (k - 1) // 2 for d, k in zip(conv.dilation, conv.kernel_size)]
    else:
        pads = list(conv.padding)
    ones_out = torch.ones(1, 1, *out_hw, device=device)
    ones_kernel = torch.ones(1, 1, kh, kw, device=device)
    cover = F.conv_transpose2d(ones_out, ones_kernel, stride=conv.stride, dilation=conv.dilation)[0, 0]
    # rows/columns of the padded input that no window reaches are missing from `cover`: pad them
    missing_rows = max(0, pads[0] + height - cover.shape[0])
    missing_cols = max(0, pads[1] + width - cover.shape[1])
    cover = F.pad(cover, (0, missing_cols, 0, missing_rows))
    return cover[pads[0]:pads[0] + height, pads[1]:pads[1] + width].round().long()
