"""Imports an exported NIR graph with other SNN libraries, runs it on the harness's encoded inputs and
compares it with the harness, layer by layer.

Each library builds a torch module from the graph (`IMPORTERS`); it is stepped one time step at a
time, from its rest state at the start of every batch, on the very tensors the harness's network
receives (`[T, B, ...]`, encoded once per batch). Per graph node n (its harness layer l), over all
samples and neurons:

    a node the library built no module for is not exact (compared: false)
    spiking nodes (IF, LIF)   c_l = Σ_t S_l[t] (spike count per sample and neuron), for harness and
                              library; spike_count_correlation = Pearson r(c_harness, c_library)
                              (None when either is constant); mismatched = #(t, sample, neuron) with
                              S_harness ≠ S_library; exact = mismatched = 0
    other nodes               max_abs_diff = max |y_harness − y_library|; exact = max_abs_diff ≤
                              1e-5·max(1, max |y_harness|). The I node emits U[t], the harness's
                              Integrator U[t]/(t + 1): the library's value is divided by t + 1 first
    first_divergence          the first node in graph order that is not exact, with the first step t
                              at which it differs (None: the two agree at every node)
    prediction_agreement      share of samples whose readout (the method's own `readout` on the
                              library's output) equals the harness's; accuracy against the labels

The harness side is always the method's own network, also for a graph that approximates it
(benchmark.deploy.nir_export: APPROXIMATED): the approximation's cost is what the comparison measures
(a subtractive reset exported as a reset to zero first diverges at that layer, at the first step where
the residual it drops changes a spike). Given the network with the graph's semantics (`nir_semantics`), the
harness runs it as well: its accuracy and prediction agreement with the method's network price the
approximation in the harness itself, whatever the libraries do.

A library that is not installed or fails to import or run the graph is reported with its error, and
stops no other. Known conventions of each library, read from its source, are in `LIBRARY_NOTES`.

Shapes: encoded batches `[T, B, ...]`; every per-layer record `[T, B, ...]`.
"""

from __future__ import annotations

import contextlib
import io
import keyword
import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Callable, Iterable

import nir
import torch
from torch import Tensor, nn

from benchmark.contract.method import CodingMethod
from benchmark.deploy.nir_export import DT, leaves

LIBRARIES = ("snntorch", "spikingjelly", "norse")
SPIKING = ("IF", "LIF", "CubaLIF")
LIBRARY_NOTES = {
    "snntorch": "snntorch.import_nir.import_from_nir: nir.IF becomes snn.Leaky(beta=0.9) and r != 1 is "
                "refused; nir.LIF becomes snn.Leaky(beta = 1 - 1e-4/tau, reset 'zero'), firing at mem > "
                "threshold; nir.Flatten(start_dim) becomes nn.Flatten(start_dim), without the batch offset",
    "spikingjelly": "spikingjelly.activation_based.nir_exchange.import_from_nir(dt=1e-4): nir.IF needs r = 1/dt; "
                    "nir.LIF needs r = tau/dt (or 1) and v_leak = v_reset; neurons fire at v >= threshold; nir.I "
                    "has no mapping (the import fails)",
    "norse": "norse.torch.from_nir(dt=1e-4): r is not read (LIF input is scaled by dt/tau, so only IF "
             "matches the Euler step), v_reset is not read (reset to 0); neurons fire at v > threshold; a node "
             "it has no mapping for (nir.I) is left out, its input passed on unchanged",
}


def _sanitize(name: str) -> str:
    """The module name nirtorch gives node `name` (dots to underscores, Python keywords prefixed)."""
    name = name.replace(".", "_")
    return f"nir_node_{name}" if keyword.iskeyword(name) else name


def _first(output):
    return output[0] if isinstance(output, tuple) else output


@dataclass
class Stepper:
    """A library's module for one graph: `run(x [T, B, ...])` -> {node: output `[T, B, ...]`}."""

    module: nn.Module
    step: Callable[[nn.Module, Tensor, object], tuple[Tensor, object]]
    reset: Callable[[nn.Module], None] = lambda module: None
    nodes: list[str] = field(default_factory=list)

    @torch.no_grad()
    def run(self, x: Tensor) -> dict[str, list[Tensor]]:
        self.reset(self.module)
        records: dict[str, list[Tensor]] = {node: [] for node in self.nodes}
        handles = []
        for node in self.nodes:
            try:
                target = self.module.get_submodule(_sanitize(node))
            except AttributeError:
                continue
            handles.append(target.register_forward_hook(
                lambda m, i, o, node=node: records[node].append(_first(o).detach().clone())))
        outputs, state = [], None
        try:
            for x_t in x:
                out, state = self.step(self.module, x_t, state)
                outputs.append(out)
        finally:
            for handle in handles:
                handle.remove()
        result = {node: torch.stack(values) for node, values in records.items() if len(values) == x.shape[0]}
        result["output"] = torch.stack(outputs)
        return result


def _stateful_step(module: nn.Module, x_t: Tensor, state: object) -> tuple[Tensor, object]:
    out, state = module(x_t, state)
    return _first(out), state


def _import_snntorch(graph: nir.NIRGraph) -> Stepper:
    from snntorch.import_nir import import_from_nir

    with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
        module = import_from_nir(graph)

    def reset(module: nn.Module) -> None:  # this module's neurons only (snntorch.utils.reset is process-wide)
        for child in module.modules():
            if hasattr(child, "reset_mem"):
                child.reset_mem()

    return Stepper(module, _stateful_step, reset)


def _import_spikingjelly(graph: nir.NIRGraph) -> Stepper:
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    from loguru import logger

    logger.disable("spikingjelly")
    return Stepper(import_from_nir(graph, dt=DT, step_mode="s"), _stateful_step)


def _import_norse(graph: nir.NIRGraph) -> Stepper:
    from norse.torch import from_nir

    return Stepper(from_nir(graph, ignore_warnings=True, dt=DT), _stateful_step)


IMPORTERS: dict[str, Callable[[nir.NIRGraph], Stepper]] = {
    "snntorch": _import_snntorch, "spikingjelly": _import_spikingjelly, "norse": _import_norse}


def library_version(library: str) -> str:
    try:
        return version(library)
    except PackageNotFoundError:
        return "not installed"


def import_graph(library: str, graph: nir.NIRGraph) -> Stepper:
    """`library`'s module for `graph`, stepping every node of it (raises what the library raises)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stepper = IMPORTERS[library](graph)
    stepper.nodes = [name for name in graph.nodes if not isinstance(graph.nodes[name], (nir.Input, nir.Output))]
    return stepper


@dataclass
class _LayerTally:
    """Streaming statistics of one node over batches (sums in float64 for the correlation)."""

    spiking: bool
    n: int = 0
    sums: list[float] = field(default_factory=lambda: [0.0] * 5)  # Σa, Σb, Σa², Σb², Σab
    mismatched: int = 0
    max_abs_diff: float = 0.0
    scale: float = 0.0
    first_step: int | None = None
    batches: int = 0
    spikes: list[float] = field(default_factory=lambda: [0.0, 0.0])  # harness, library

    def add(self, mine: Tensor, theirs: Tensor) -> None:
        mine, theirs = mine.double(), theirs.double().reshape(mine.shape)
        self.batches += 1
        differs = (mine != theirs) if self.spiking else (mine - theirs).abs() > 1e-5 * max(1.0, float(mine.abs().max()))
        steps = differs.flatten(1).any(1).nonzero()
        if len(steps):
            self.first_step = int(steps[0]) if self.first_step is None else min(self.first_step, int(steps[0]))
        if self.spiking:
            a, b = mine.sum(0).flatten(), theirs.sum(0).flatten()
            self.n += a.numel()
            for index, value in enumerate((a.sum(), b.sum(), (a * a).sum(), (b * b).sum(), (a * b).sum())):
                self.sums[index] += float(value)
            self.mismatched += int(differs.sum())
            self.spikes[0] += float(mine.sum())
            self.spikes[1] += float(theirs.sum())
        else:
            self.max_abs_diff = max(self.max_abs_diff, float((mine - theirs).abs().max()))

    def result(self, samples: int) -> dict:
        if self.batches == 0:  # the library built no module for this node (or dropped it)
            return {"compared": False, "exact": False, "note": "the library's module has no layer for this node"}
        if not self.spiking:
            return {"compared": True, "max_abs_diff": self.max_abs_diff, "exact": self.first_step is None}
        sa, sb, saa, sbb, sab = self.sums
        var_a, var_b = saa - sa * sa / self.n, sbb - sb * sb / self.n
        correlation = None
        if var_a > 0 and var_b > 0:
            correlation = (sab - sa * sb / self.n) / (var_a * var_b) ** 0.5
        return {"compared": True, "spike_count_correlation": correlation, "mismatched": self.mismatched,
                "exact": self.mismatched == 0, "spikes_per_sample": self.spikes[0] / samples,
                "library_spikes_per_sample": self.spikes[1] / samples}


def _harness_layers(network: nn.Module, x: Tensor, wanted: set[str]) -> tuple[Tensor, dict[str, Tensor]]:
    seen: dict[str, Tensor] = {}
    handles = [module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
               for name, module in leaves(network) if name in wanted]
    try:
        output = network(x)
    finally:
        for handle in handles:
            handle.remove()
    return output, seen


@torch.no_grad()
def roundtrip(method: CodingMethod, graph: nir.NIRGraph, rows: list[dict[str, str]], encoded: Iterable[Tensor],
              labels: Tensor, libraries: Iterable[str] = LIBRARIES, nir_semantics: nn.Module | None = None) -> dict:
    """Runs `graph` in every library of `libraries` and `method.network` on every encoded batch of
    `encoded` (CPU tensors `[T, B, ...]`, in the order of `labels`), and compares them (module
    docstring). `rows`: the export's {node, nir, layer} rows; `nir_semantics`: the network with the
    graph's semantics, for an approximate graph. Returns {"samples", "harness_accuracy",
    "harness_nir_semantics": {"accuracy", "prediction_agreement"} or None, "libraries": {name:
    {"version", "status": "ok" | "failed", ...}}}."""
    network = method.network
    steppers, report = {}, {}
    for library in libraries:
        report[library] = {"version": library_version(library), "notes": LIBRARY_NOTES.get(library, "")}
        try:
            steppers[library] = import_graph(library, graph)
        except Exception as error:  # noqa: BLE001 - any failure of a foreign library is a result to report
            report[library].update(status="failed", stage="import", error=f"{type(error).__name__}: {error}")
    tallies = {library: {row["node"]: _LayerTally(row["nir"] in SPIKING) for row in rows} for library in steppers}
    agree = {library: 0 for library in steppers}
    correct = {library: 0 for library in steppers}
    harness_correct, seen = 0, 0
    semantics_correct, semantics_agree = 0, 0
    output_node = rows[-1]["node"]
    flattened = bool(int(graph.metadata.get("input_flattened", 0)))
    for x in encoded:
        batch = x.shape[1]
        labels_batch = labels[seen:seen + batch]
        output, layers = _harness_layers(network, x, {row["layer"] for row in rows})
        mine = method.readout(output).prediction
        harness_correct += int((mine == labels_batch).sum())
        if nir_semantics is not None:
            as_stated = method.readout(nir_semantics(x)).prediction
            semantics_correct += int((as_stated == labels_batch).sum())
            semantics_agree += int((as_stated == mine).sum())
        for library in list(steppers):
            try:
                theirs = steppers[library].run(x.flatten(2) if flattened else x)
            except Exception as error:  # noqa: BLE001
                report[library].update(status="failed", stage="run", error=f"{type(error).__name__}: {error}")
                del steppers[library]
                continue
            for row in rows:
                if row["node"] in theirs:
                    value = theirs[row["node"]]
                    if row["nir"] == "I":
                        value = _running_mean(value)
                    tallies[library][row["node"]].add(layers[row["layer"]], value)
            final = theirs["output"]
            if next(r for r in rows if r["node"] == output_node)["nir"] == "I":
                final = _running_mean(final)
            prediction = method.readout(final.reshape(output.shape)).prediction
            agree[library] += int((prediction == mine).sum())
            correct[library] += int((prediction == labels_batch).sum())
        seen += batch
    for library in steppers:
        layer_results, first = [], None
        for row in rows:
            tally = tallies[library][row["node"]]
            result = {"layer": row["layer"], "node": row["node"], "nir": row["nir"], **tally.result(seen)}
            layer_results.append(result)
            if first is None and not result["exact"]:
                first = {"layer": row["layer"], "node": row["node"], "step": tally.first_step}
        report[library].update(status="ok", samples=seen, accuracy=correct[library] / max(seen, 1),
                               prediction_agreement=agree[library] / max(seen, 1),
                               exact=first is None and agree[library] == seen,
                               first_divergence=first, layers=layer_results)
    stated = None if nir_semantics is None else {"accuracy": semantics_correct / max(seen, 1),
                                                 "prediction_agreement": semantics_agree / max(seen, 1)}
    return {"samples": seen, "harness_accuracy": harness_correct / max(seen, 1), "harness_nir_semantics": stated,
            "libraries": report}


def _running_mean(value: Tensor) -> Tensor:
    """U[t] -> U[t]/(t + 1) along time (the harness Integrator's output convention)."""
    steps = torch.arange(1, value.shape[0] + 1, dtype=value.dtype).view(-1, *([1] * (value.dim() - 1)))
    return value / steps
