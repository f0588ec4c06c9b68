"""(a) A harness SNN training step (LIF, surrogate gradient, BPTT) against T ANN training steps.

An SNN trained over T steps cannot cost less than T forward/backward passes of the same network as
an ANN; the ratio time(SNN step) / time(T × ANN step) measures how close the engine comes to that
limit. Also: what each engine optimization buys (fused neuron vs the `lif_step` loop,
channels-last, torch.compile), each raced against the default engine.
"""

from __future__ import annotations

import time

import pytest
import torch

from snn import engine, layers, memory
from tests.perf.workloads import (
    STEPS, TARGET_SNN_OVER_T_ANN, TARGET_STEPS, Race, TrainStep, build_ann, build_snn, make_batch, repeat,
)


@pytest.mark.parametrize("steps", STEPS)
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_snn_step_vs_T_ann_steps(benchmark, perf, arch, steps):
    images, spikes, labels = make_batch(steps, perf.profile.batch, perf.device)
    snn = TrainStep(build_snn(arch, perf.device), spikes, labels)
    ann = TrainStep(build_ann(arch, perf.device), images.unsqueeze(0), labels)
    race = Race({"snn": snn, "T_x_ann": repeat(ann, steps)}, perf.device)
    race.run(benchmark, perf.profile)
    ratio = race.ratio("snn", "T_x_ann")
    perf.record("snn_vs_T_ann", arch=arch, T=steps, batch=perf.profile.batch, ratio=ratio,
                ann_step_ms=race.summary()["T_x_ann"]["median_ms"] / steps, times=race.summary(),
                target=TARGET_SNN_OVER_T_ANN if steps == TARGET_STEPS else None)
    if perf.assert_targets and steps == TARGET_STEPS:
        assert ratio <= TARGET_SNN_OVER_T_ANN, (
            f"{arch} T={steps}: SNN step = {ratio:.2f} × (T × ANN step), target ≤ {TARGET_SNN_OVER_T_ANN}")


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_fused_neuron_vs_reference_loop(benchmark, perf, arch):
    """The same SNN step with the fused LIF (default) and with the plain `lif_step` loop."""
    steps = TARGET_STEPS
    _, spikes, labels = make_batch(steps, perf.profile.batch, perf.device)
    fused = TrainStep(build_snn(arch, perf.device), spikes, labels)
    reference = TrainStep(build_snn(arch, perf.device, implementation="reference"), spikes, labels)
    race = Race({"fused": fused, "reference": reference}, perf.device)
    race.run(benchmark, perf.profile)
    speedup = race.ratio("reference", "fused")
    perf.record("fused_vs_reference", arch=arch, T=steps, batch=perf.profile.batch, speedup=speedup,
                times=race.summary())
    if perf.assert_targets and arch == "cnn":  # the MLP's neurons are too few to matter in its step
        assert speedup > 1.0, f"{arch}: the fused LIF is no faster than the lif_step loop ({speedup:.2f}×)"


def test_channels_last_cnn(benchmark, perf):
    """`layers.prefer_channels_last` (NHWC convolutions) for the CNN, SNN and ANN alike; reported.
    On CUDA the helper leaves the network as it is, so both sides of each pair are the same."""
    steps = TARGET_STEPS
    images, spikes, labels = make_batch(steps, perf.profile.batch, perf.device)
    def nhwc(network):
        return layers.prefer_channels_last(network, perf.device)

    contestants = {
        "snn": TrainStep(build_snn("cnn", perf.device), spikes, labels),
        "snn_channels_last": TrainStep(nhwc(build_snn("cnn", perf.device)), spikes, labels),
        "T_x_ann": repeat(TrainStep(build_ann("cnn", perf.device), images.unsqueeze(0), labels), steps),
        "T_x_ann_channels_last": repeat(
            TrainStep(nhwc(build_ann("cnn", perf.device)), images.unsqueeze(0), labels), steps),
    }
    race = Race(contestants, perf.device)
    race.run(benchmark, perf.profile)
    perf.record("channels_last", arch="cnn", T=steps, batch=perf.profile.batch, times=race.summary(),
                snn_speedup=race.ratio("snn", "snn_channels_last"),
                ann_speedup=race.ratio("T_x_ann", "T_x_ann_channels_last"),
                ratio_channels_last=race.ratio("snn_channels_last", "T_x_ann_channels_last"))


def engine_setting_race(perf, set_setting, values: dict, default) -> Race:
    """A race of the CNN SNN training step at T = 8, one fresh network per contestant; contestant
    `name` runs with the process-wide engine setting `set_setting(values[name])`, and
    `set_setting(default)` is restored after each of its calls."""
    _, spikes, labels = make_batch(TARGET_STEPS, perf.profile.batch, perf.device)

    def with_setting(value, step):
        def run():
            set_setting(value)
            try:
                step()
            finally:
                set_setting(default)
        return run

    return Race({name: with_setting(value, TrainStep(build_snn("cnn", perf.device), spikes, labels))
                 for name, value in values.items()}, perf.device)


def test_per_step_kernels_on_one_thread(benchmark, perf):
    """The fused LIF's per-step kernels on one thread (the default) and on PyTorch's threads, CNN."""
    if perf.device.type != "cpu":
        pytest.skip("thread counts concern the CPU")
    race = engine_setting_race(perf, engine.set_step_threads, {"one_thread": 1, "all_threads": None}, default=1)
    race.run(benchmark, perf.profile)
    perf.record("step_threads", arch="cnn", T=TARGET_STEPS, batch=perf.profile.batch,
                threads=torch.get_num_threads(), speedup=race.ratio("all_threads", "one_thread"),
                times=race.summary())


def test_compiled_engine_vs_eager(benchmark, perf):
    """torch.compile of the fused LIF (engine.set_compile) against the eager fused path, CNN, T = 8."""
    if not perf.compile:
        pytest.skip("set SPIKECODE_PERF_COMPILE=1 to race torch.compile (it compiles for about a minute)")
    race = engine_setting_race(perf, engine.set_compile, {"eager": False, "compiled": True}, default=False)
    started = time.perf_counter()
    race.contestants["compiled"]()  # compiles forward and backward for this shape
    compile_s = time.perf_counter() - started
    assert not engine._compile_failed, "torch.compile failed; the eager path ran instead"
    race.run(benchmark, perf.profile)
    perf.record("compile", arch="cnn", T=TARGET_STEPS, batch=perf.profile.batch, compile_s=compile_s,
                speedup=race.ratio("eager", "compiled"), times=race.summary())


def test_cpu_allocation_cache(benchmark, perf):
    """The same SNN step with `memory.cache_cpu_allocations()` on and off (CPU only)."""
    if perf.device.type != "cpu":
        pytest.skip("the allocation cache concerns glibc's malloc, i.e. CPU tensors")
    if not perf.info["cpu_allocation_cache"]:
        pytest.skip("glibc's mallopt is not available here")
    race = engine_setting_race(perf, memory.cache_cpu_allocations, {"cached": True, "uncached": False}, default=True)
    race.run(benchmark, perf.profile)
    perf.record("allocation_cache", arch="cnn", T=TARGET_STEPS, batch=perf.profile.batch,
                speedup=race.ratio("uncached", "cached"), times=race.summary())
