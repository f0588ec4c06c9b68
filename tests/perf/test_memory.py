"""(d) Peak memory of BPTT (one forward + backward of a training step) against T.

`workloads.bptt_peak_memory` measures the peak bytes of live tensors during forward + backward above
those held before (parameters, inputs, optimizer state; CPU: the profiler's replay of every
allocation; CUDA: the allocator's counters). The optimizer step is left out: its memory does not
depend on T.
Reported: the slope (bytes per extra time step, per batch and per sample) of the least-squares line
through the peaks, for the fused engine and (full profile) for the `lif_step` reference loop.

Checked: the peak grows at most linearly in T. The peak is the largest of a few phases (end of
forward, each layer's backward), each affine in T, so it is convex and piecewise linear: its growth
per step may rise while the phase holding the peak changes (at small T, or small batches, the
gradient buffers of the first layer can outweigh the activations), then stays constant. A term in
T² would instead double the growth from one doubling of T to the next. So the check is that the
growth per step over the last doubling of T is at most 10 % above the one before it.
Memory is counted, not timed, so the check holds in the quick profile too.
"""

from __future__ import annotations

import pytest

from tests.perf.workloads import FULL, TrainStep, bptt_peak_memory, build_snn, linear_fit, make_batch


def peaks_over_T(arch, implementation, perf) -> dict[int, int]:
    peaks = {}
    for steps in perf.profile.memory_steps:
        _, spikes, labels = make_batch(steps, perf.profile.memory_batch, perf.device)
        step = TrainStep(build_snn(arch, perf.device, implementation=implementation), spikes, labels)
        step()  # Adam state and gradient buffers exist from here on, as in training
        peaks[steps] = bptt_peak_memory(step, perf.device)
    return peaks


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_bptt_memory_grows_linearly_in_T(benchmark, perf, arch):
    implementations = ("fused", "reference") if perf.profile is FULL else ("fused",)
    peaks = benchmark.pedantic(lambda: {impl: peaks_over_T(arch, impl, perf) for impl in implementations},
                               rounds=1, iterations=1)
    batch = perf.profile.memory_batch
    results = {}
    for implementation, by_T in peaks.items():
        steps = sorted(by_T)
        values = [by_T[t] for t in steps]
        slope, intercept, residual = linear_fit(steps, values)
        growth = [(values[i + 1] - values[i]) / (steps[i + 1] - steps[i]) for i in range(len(steps) - 1)]
        results[implementation] = {
            "peak_bytes": {str(t): by_T[t] for t in steps},
            "slope_bytes_per_step": slope,
            "slope_bytes_per_step_per_sample": slope / batch,
            "intercept_bytes": intercept,
            "max_residual_bytes": residual,
            "growth_bytes_per_step": growth,
        }
        assert slope > 0 and values[-1] > values[0], f"{implementation}: peak memory does not grow with T: {by_T}"
        assert growth[-1] <= 1.10 * growth[-2], (
            f"{arch} {implementation}: memory grows faster than linearly in T: per-step growth {growth} (bytes)")
    perf.record("memory", arch=arch, batch=batch, T=list(perf.profile.memory_steps), **results)
