"""Peak training memory of `sigma-delta` (methods/sigma_delta.py) at T and 4T, beside BPTT's.

`sigma-delta` trains step by step (`train_step`): each step's graph is freed by its backward and
the past bucket states are detached constants, so the peak must not grow with T. Measured as in
tests/perf/test_memory.py (`workloads.peak_memory`: peak bytes of live tensors above those held
when the call starts; CPU: the profiler's replay of every allocation), on the MLP 784-400-400-10,
one call after a first one (so Adam's state exists), gradients freed first:

    sigma-delta online / offline   `train_step` (forward, backward and optimizer steps, every step)
    sigma-delta BPTT               the same network through its event form, one backward over the
                                   sequence (`loss(forward(x))`, what a loop without the hook does)
    LIF BPTT                       the harness's fused LIF engine (workloads.build_snn, TrainStep)

Checked: sigma-delta's peaks at T and 4T differ by less than 10 %; both BPTT peaks grow.
"""

from __future__ import annotations

import torch

from benchmark.contract.registry import create_method
from tests.perf.workloads import (ARCHS, INPUT_SHAPE, NUM_CLASSES, TrainStep, bptt_peak_memory, build_snn, make_batch,
                                  peak_memory)
import methods.sigma_delta  # noqa: F401  (import registers `sigma-delta`)

STEPS = 4  # T; the peaks are compared at T and 4T
MAX_GROWTH = 0.10


def sigma_delta_peak(T: int, training: str, batch: int, device: torch.device) -> int:
    torch.manual_seed(0)
    method = create_method("sigma-delta", {"T": T, "training": training}, ARCHS["mlp"], INPUT_SHAPE, NUM_CLASSES)
    method.network.to(device).train()
    images, _, labels = make_batch(T, batch, device)
    optimizer = torch.optim.Adam(method.network.parameters(), lr=1e-4)
    encoded = method.encode(images)
    method.train_step(encoded, labels, optimizer)  # Adam's state exists from here on
    optimizer.zero_grad(set_to_none=True)
    return peak_memory(lambda: method.train_step(encoded, labels, optimizer), device)


def sigma_delta_bptt_peak(T: int, batch: int, device: torch.device) -> int:
    torch.manual_seed(0)
    method = create_method("sigma-delta", {"T": T}, ARCHS["mlp"], INPUT_SHAPE, NUM_CLASSES)
    method.network.to(device).train()
    images, _, labels = make_batch(T, batch, device)
    step = TrainStep(method.network, method.encode(images), labels)
    step.forward_backward = lambda: method.loss(method.network(step.inputs), labels).backward()
    step()
    return bptt_peak_memory(step, device)


def lif_bptt_peak(T: int, batch: int, device: torch.device) -> int:
    _, spikes, labels = make_batch(T, batch, device)
    step = TrainStep(build_snn("mlp", device), spikes, labels)
    step()
    return bptt_peak_memory(step, device)


def test_sigma_delta_training_memory_is_constant_in_T(benchmark, perf):
    batch = perf.profile.memory_batch
    steps = (STEPS, 4 * STEPS)

    def measure() -> dict[str, dict[int, int]]:
        return {
            "sigma-delta online": {T: sigma_delta_peak(T, "online", batch, perf.device) for T in steps},
            "sigma-delta offline": {T: sigma_delta_peak(T, "offline", batch, perf.device) for T in steps},
            "sigma-delta BPTT (event form)": {T: sigma_delta_bptt_peak(T, batch, perf.device) for T in steps},
            "LIF BPTT (fused engine)": {T: lif_bptt_peak(T, batch, perf.device) for T in steps},
        }

    peaks = benchmark.pedantic(measure, rounds=1, iterations=1)
    growth = {name: by_T[steps[1]] / by_T[steps[0]] - 1 for name, by_T in peaks.items()}
    per_step = {name: (by_T[steps[1]] - by_T[steps[0]]) / (steps[1] - steps[0]) for name, by_T in peaks.items()}
    perf.record("memory-sigma-delta", batch=batch, T=list(steps),
                peak_bytes={name: {str(T): value for T, value in by_T.items()} for name, by_T in peaks.items()},
                growth_T_to_4T=growth, growth_bytes_per_step=per_step)
    for name in ("sigma-delta online", "sigma-delta offline"):
        assert abs(growth[name]) < MAX_GROWTH, (
            f"{name}: peak memory {peaks[name]} grows {growth[name]:.1%} from T to 4T")
    for name in ("sigma-delta BPTT (event form)", "LIF BPTT (fused engine)"):
        assert peaks[name][steps[1]] > peaks[name][steps[0]], f"{name}: BPTT memory does not grow with T: {peaks[name]}"
