"""Workloads of the performance suite: identical networks, data and T for every side-by-side race.

Every benchmark is a *race*: two or more contestants (callables doing the same work in different
ways) run in one process, one after the other within each round, the order alternating between
rounds. A result is the median over rounds of the per-round time ratio, so a machine that slows
down for a while (other jobs on a shared CPU) slows both sides of a ratio alike.

Workloads (shared by tests/perf and scripts/perf_table.py):

    ARCHS        the MLP 784-400-400-10 and the small CNN (conv 32, pool, conv 64, pool, fc 256)
    NEURON       LIF settings of the SNN: β = 0.9, θ = 1, soft reset, fast-sigmoid surrogate, slope 25
                 (methods/rate.py's defaults)
    train step   Adam(lr 1e-3): zero_grad, forward, loss = CE(mean_t O[t], y), backward, step;
                 the SNN on rate-coded spikes X[t] ~ Bernoulli(x) `[T, B, 1, 28, 28]`, the ANN (ReLU,
                 the same weights) on x `[1, B, 1, 28, 28]`, both built by `snn.arch`.

Shapes: inputs `[T, B, 1, 28, 28]`, outputs `[T, B, 10]`.
"""

from __future__ import annotations

import copy
import json
import math
import os
import resource
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from snn.arch import ArchSpec, build_network
from snn.engine import LIF
from snn.layers import Folded, ReLU

ARCHS: dict[str, ArchSpec] = {
    "mlp": ArchSpec(kind="mlp", hidden=[400, 400]),
    "cnn": ArchSpec(kind="cnn", conv=[32, "M", 64, "M"], hidden=[256]),
}
INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
NEURON = dict(beta=0.9, threshold=1.0, reset="subtract", surrogate="fast_sigmoid", slope=25.0)
STEPS = (4, 8, 16)

# Targets of issue 9, asserted by the full run.
TARGET_SNN_OVER_T_ANN = 1.3  # SNN step ≤ 1.3 × (T × ANN step), T = 8
TARGET_SPEEDUP_OVER_SNNTORCH = 3.0  # harness ≥ 3 × faster than snnTorch's per-step loop, CNN, T = 8
TARGET_OPCOUNTER_OVERHEAD = 0.20  # op counter on: ≤ 20 % more inference time
TARGET_STEPS = 8


@dataclass(frozen=True)
class Profile:
    """Sizes of one run of the suite: `full` measures, `quick` only proves every benchmark runs."""

    name: str
    batch: int  # training batch
    eval_batch: int  # inference batch of the op-counter benchmark
    rounds: int  # measured rounds per race
    warmup: int  # unmeasured rounds before them
    memory_batch: int
    memory_steps: tuple[int, ...]


FULL = Profile("full", batch=64, eval_batch=256, rounds=5, warmup=1, memory_batch=64, memory_steps=(4, 8, 16, 32))
QUICK = Profile("quick", batch=2, eval_batch=4, rounds=1, warmup=0, memory_batch=2, memory_steps=(2, 4, 8))
PROFILES = {"full": FULL, "quick": QUICK}


def select_device(name: str = "auto") -> torch.device:
    """`auto`: the first CUDA device when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--perf-device {name!r} but CUDA is not available here; use cpu or auto")
    return device


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- networks ---------------------------------------------------------------------------------


def build_snn(arch: str, device: torch.device, implementation: str = "fused", seed: int = 0, **neuron) -> nn.Sequential:
    """The harness SNN: `build_network` with a `snn.engine.LIF` after every hidden layer."""
    settings = {**NEURON, **neuron}
    torch.manual_seed(seed)
    network = build_network(ARCHS[arch], INPUT_SHAPE, NUM_CLASSES,
                            make_neuron=lambda name: LIF(**settings, implementation=implementation))
    return network.to(device)


def build_ann(arch: str, device: torch.device, seed: int = 0) -> nn.Sequential:
    """The same architecture with ReLU (methods/ann.py); same seed, hence the SNN's initial weights."""
    torch.manual_seed(seed)
    return build_network(ARCHS[arch], INPUT_SHAPE, NUM_CLASSES, make_neuron=lambda name: ReLU()).to(device)


class SnnTorchPerStep(nn.Module):
    """The harness SNN written the snnTorch way (snnTorch tutorials 5–6): every layer called on one
    time step `[B, ...]` at a time, an `snn.Leaky` per neuron layer, its membrane carried by hand.

    Built from a harness SNN: its synaptic layers are copied (same weights), each `LIF` becomes an
    `snn.Leaky` with the same β, θ, reset and surrogate. Note snnTorch's own semantics: the reset
    is applied one step late and undecayed (U[t] = β·U[t-1] + I[t] − θ·S[t-1]) and carries no
    gradient, so for β < 1 the two networks are the same cost, not the same function; for β = 1
    they compute the same spikes (tests/perf/test_snntorch.py checks it).

    Shapes: `[T, B, ...]` -> `[T, B, classes]`.
    """

    def __init__(self, harness: nn.Sequential):
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        surrogates = {"fast_sigmoid": surrogate.fast_sigmoid, "sigmoid": surrogate.sigmoid, "atan": surrogate.atan}
        layers = []
        for module in harness:
            if isinstance(module, LIF):
                layers.append(snn.Leaky(beta=module.beta, threshold=module.threshold,
                                        spike_grad=surrogates[module.surrogate](module.slope),
                                        reset_mechanism=module.reset))
            elif isinstance(module, Folded):
                layers.append(copy.deepcopy(module.layer))
            else:
                raise TypeError(f"SnnTorchPerStep takes Folded layers and LIF neurons, got {type(module).__name__}")
        self.layers = nn.ModuleList(layers)
        self._leaky = snn.Leaky

    def forward(self, x: Tensor) -> Tensor:
        membranes = {index: layer.init_leaky() for index, layer in enumerate(self.layers)
                     if isinstance(layer, self._leaky)}
        outputs = []
        for step in range(x.shape[0]):
            h = x[step]
            for index, layer in enumerate(self.layers):
                if index in membranes:
                    h, membranes[index] = layer(h, membranes[index])
                else:
                    h = layer(h)
            outputs.append(h)
        return torch.stack(outputs)


# --- data and steps ---------------------------------------------------------------------------


def make_batch(steps: int, batch: int, device: torch.device, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """(images x `[B, 1, 28, 28]` in [0, 1], rate-coded spikes `[T, B, 1, 28, 28]`, labels `[B]`)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, *INPUT_SHAPE, generator=generator)
    spikes = (torch.rand(steps, *images.shape, generator=generator) < images).float()
    labels = torch.randint(0, NUM_CLASSES, (batch,), generator=generator)
    return images.to(device), spikes.to(device), labels.to(device)


class TrainStep:
    """One training step of `network` on fixed `inputs [T, B, ...]`: the harness's loop body."""

    def __init__(self, network: nn.Module, inputs: Tensor, labels: Tensor, lr: float = 1e-3):
        self.network, self.inputs, self.labels = network.train(), inputs, labels
        self.optimizer = torch.optim.Adam(network.parameters(), lr=lr)

    def forward_backward(self) -> Tensor:
        """BPTT alone: the loss and its gradients (what grows with T; the optimizer step does not)."""
        loss = F.cross_entropy(self.network(self.inputs).mean(0), self.labels)
        loss.backward()
        return loss

    def __call__(self) -> Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.forward_backward()
        self.optimizer.step()
        return loss


def repeat(function: Callable, times: int) -> Callable:
    def repeated():
        for _ in range(times):
            function()

    return repeated


# --- races ------------------------------------------------------------------------------------


class Race:
    """Contestants run side by side, interleaved, their order alternating each round."""

    def __init__(self, contestants: dict[str, Callable], device: torch.device):
        self.contestants = contestants
        self.device = device
        self.times: dict[str, list[float]] = {name: [] for name in contestants}
        self.page_faults: dict[str, list[int]] = {name: [] for name in contestants}
        self._rounds = 0

    def _time(self, name: str) -> None:
        synchronize(self.device)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        started = time.perf_counter()
        self.contestants[name]()
        synchronize(self.device)
        self.times[name].append(time.perf_counter() - started)
        self.page_faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)

    def round(self) -> None:
        names = list(self.contestants)
        if self._rounds % 2:
            names.reverse()
        for name in names:
            self._time(name)
        self._rounds += 1

    def warmup(self, rounds: int) -> None:
        for _ in range(rounds):
            for function in self.contestants.values():
                function()
        synchronize(self.device)

    def run(self, benchmark, profile: Profile) -> None:
        """Warm up, then let pytest-benchmark time `profile.rounds` rounds (once when disabled)."""
        if not benchmark.disabled:
            self.warmup(profile.warmup)
        benchmark.pedantic(self.round, rounds=profile.rounds, iterations=1, warmup_rounds=0)

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratio(self, numerator: str, denominator: str) -> float:
        """Median over rounds of time(numerator) / time(denominator) in the same round."""
        return statistics.median(a / b for a, b in zip(self.times[numerator], self.times[denominator]))

    def summary(self) -> dict[str, dict[str, float]]:
        """Per contestant: median and min time (ms), rounds, median minor page faults per call."""
        return {name: {"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times), "rounds": len(times),
                       "page_faults": statistics.median(self.page_faults[name])}
                for name, times in self.times.items()}


def all_finite(values) -> bool:
    if isinstance(values, dict):
        return all(all_finite(v) for v in values.values())
    if isinstance(values, (list, tuple)):
        return all(all_finite(v) for v in values)
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        return math.isfinite(values)
    return True


# --- memory -----------------------------------------------------------------------------------


def peak_memory(function: Callable, device: torch.device) -> int:
    """Peak bytes held by tensors while `function` runs, above what was held when it started.

    CUDA: the caching allocator's own counters (`max_memory_allocated` − `memory_allocated`).
    CPU: there is no allocator counter, and process RSS is blurred by malloc's caching, so the
    call runs under `torch.profiler` with `profile_memory=True`, whose memory timeline replays
    every tensor allocation and free in order; the peak of that running total minus its first
    value (parameters and inputs, alive throughout) is the same quantity as on CUDA. It counts
    tensor bytes only (not the allocator's slack), exactly and regardless of other processes.
    Free what the call would free before measuring (e.g. `zero_grad(set_to_none=True)`): a tensor
    allocated before the window and freed inside it blurs the timeline's start.
    """
    if device.type == "cuda":
        synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        function()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        function()
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # export_memory_timeline's deprecation notice
        path = os.path.join(folder, "timeline.json")
        prof.export_memory_timeline(path, device="cpu")
        with open(path) as file:
            _, sizes = json.load(file)
    totals = [sum(row) for row in sizes]
    return int(max(totals) - totals[0]) if totals else 0


def bptt_peak_memory(step: TrainStep, device: torch.device) -> int:
    """Peak memory of one forward + backward of `step` (its optimizer already stepped once, so its
    state exists; gradients freed first, as `zero_grad(set_to_none=True)` does in training)."""
    step.optimizer.zero_grad(set_to_none=True)
    return peak_memory(step.forward_backward, device)


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """(slope, intercept, max |residual|) of the least-squares line through (xs, ys)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sxx
    intercept = mean_y - slope * mean_x
    return slope, intercept, max(abs(y - (slope * x + intercept)) for x, y in zip(xs, ys))
