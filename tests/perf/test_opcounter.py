"""(c) Inference throughput of the harness SNN with the op counter attached and without.

Two identical networks (one deep copy); `benchmark.metrics.ops.OpCounter` hooks one of them, as
`benchmark.run.evaluate` does during evaluation. Inference is what `benchmark.run.evaluate.throughput`
times: encode (rate coding, X[t] ~ Bernoulli(x)), network, readout (argmax of Σ_t O[t]), under
`torch.no_grad()`. Overhead = time(counted) / time(plain) − 1.
"""

from __future__ import annotations

import copy

import pytest
import torch

from benchmark.contract.semantics import BINARY_SPIKES
from benchmark.metrics.ops import OpCounter
from tests.perf.workloads import TARGET_OPCOUNTER_OVERHEAD, TARGET_STEPS, Race, build_snn, make_batch


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_op_counter_overhead(benchmark, perf, arch):
    steps, batch = TARGET_STEPS, perf.profile.eval_batch
    images, _, _ = make_batch(1, batch, perf.device)
    plain = build_snn(arch, perf.device).eval()
    counted = copy.deepcopy(plain)
    counter = OpCounter(counted, BINARY_SPIKES).attach()

    def infer(network):
        generator = torch.Generator(perf.device).manual_seed(0)

        def run():
            with torch.no_grad():
                noise = torch.rand((steps, *images.shape), generator=generator, device=perf.device)
                spikes = (noise < images).to(images.dtype)
                network(spikes).sum(0).argmax(-1)
        return run

    race = Race({"plain": infer(plain), "counted": infer(counted)}, perf.device)
    race.run(benchmark, perf.profile)
    counter.detach()
    overhead = race.ratio("counted", "plain") - 1
    counts = counter.compute()
    summary = race.summary()
    perf.record("opcounter", arch=arch, T=steps, batch=batch, overhead=overhead, times=summary,
                samples_per_s_plain=batch / (summary["plain"]["median_ms"] / 1e3),
                samples_per_s_counted=batch / (summary["counted"]["median_ms"] / 1e3),
                dense_ops_per_sample=counts.totals["dense"], target=TARGET_OPCOUNTER_OVERHEAD)
    assert counts.samples > 0 and counts.totals["dense"] > 0
    if perf.assert_targets:
        assert overhead <= TARGET_OPCOUNTER_OVERHEAD, (
            f"{arch}: op counter adds {overhead:.0%} to inference, target ≤ {TARGET_OPCOUNTER_OVERHEAD:.0%}")
