"""Our op counter against NeuroBench 2.3.0's `SynapticOperations` and `ActivationSparsity`.

Both count on the same network and the same encoded batch. Where the two definitions coincide the
numbers must be equal; where they differ by design the test asserts the difference with its
arithmetic:

- event kind: we charge a synaptic layer by the *declared* kind of the events reaching it;
  NeuroBench decides per layer call from the values (all inputs in {-1, 0, 1}: ACs, else MACs).
  So average pooling of spikes (0.25, 0.5, ... ) becomes MACs there, and an ANN fed binary images
  becomes ACs there; ternary events are ACs in both.
- zero padding: our dense count of a convolution is the dense layer's MACs, out_channels·H_out·
  W_out·in_channels·kh·kw; NeuroBench's runs the layer on all-ones inputs, so the taps that fall on
  the zero padding are not counted.
- pruned weights: NeuroBench's effective ops skip zero weights (it binarises the weights); ours
  charge the architecture's fan-out.
- per-sample normalisation: NeuroBench divides by `data[0].size(0)`, the batch of NeuroBench's
  [B, T, ...] layout; handed our time-first [T, B, ...] tensor it would divide by T instead.

NeuroBench wraps models in `TorchModel` / `SNNTorchModel` and expects batch-first data; a thin
`BatchFirst` module adapts our time-first networks. The metric objects are called directly, not
through `neurobench.benchmarks.Benchmark`, whose `run` records a failing metric as 0.0.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import Tensor, nn

pytest.importorskip("neurobench", reason="NeuroBench 2.3.0 is not installed (pip install --no-deps neurobench==2.3.0)")
import snntorch as snn  # noqa: E402
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations  # noqa: E402
from neurobench.models import SNNTorchModel, TorchModel  # noqa: E402

from benchmark.contract.registry import create_method  # noqa: E402
from benchmark.contract.semantics import ANALOG_VALUES, EventKind, OpSemantics  # noqa: E402
from benchmark.metrics.ops import OpCounter, OpCounts  # noqa: E402
from snn.arch import ArchSpec  # noqa: E402
from snn.layers import Folded  # noqa: E402

BATCH = 6
INPUT_SHAPE = (1, 8, 8)
MLP = ArchSpec(kind="mlp", hidden=[32])


class BatchFirst(nn.Module):
    """NeuroBench's layout [B, T, ...] in, our network's [T, B, ...] through, [T, B, ...] out."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x.transpose(0, 1))


def images(binary: bool = False) -> Tensor:
    """Seeded `[B, 1, 8, 8]` images in [0, 1] with 40 % exact zeros (like digits' background)."""
    x = torch.rand(BATCH, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    x[x < 0.4] = 0.0
    return (x > 0).float() if binary else x


def method(name: str, hyperparameters: dict, arch: ArchSpec = MLP):
    torch.manual_seed(0)  # the network's initial weights
    built = create_method(name, hyperparameters, arch, INPUT_SHAPE, 10)
    built.network.eval()
    return built


def ours(network: nn.Module, semantics: OpSemantics, x: Tensor) -> OpCounts:
    with torch.no_grad(), OpCounter(network, semantics) as counter:
        network(x)
    return counter.compute(x.shape[1])


def neurobench(model, x_time_first: Tensor, batch_first: bool = True) -> tuple[dict, float]:
    """(SynapticOperations, ActivationSparsity) of NeuroBench on one batch."""
    data = (x_time_first.transpose(0, 1) if batch_first else x_time_first, torch.zeros(BATCH, dtype=torch.long))
    model.register_hooks()
    try:
        with torch.no_grad():
            preds = model(data[0])
        return SynapticOperations()(model, preds, data), ActivationSparsity()(model, preds, data)
    finally:
        model.cleanup_hooks()


def layer(counts: OpCounts, name: str) -> dict:
    return next(row for row in counts.layers if row["name"] == name)


def neurons_times_steps(counts: OpCounts) -> float:
    return sum(row["neurons"] for row in counts.layers) * counts.T


# --- where the definitions coincide: equal numbers -----------------------------------------------


def test_ann_macs_dense_and_activation_sparsity_agree():
    ann = method("ann", {})
    x = ann.encode(images())  # [1, B, 1, 8, 8], analog pixels
    counts = ours(ann.network, ann.input_semantics, x)
    synops, sparsity = neurobench(TorchModel(BatchFirst(ann.network)), x)
    # effective MACs: nonzero pixels · 32 (fc1) + nonzero ReLU outputs · 10 (output), per sample
    assert synops["Effective_MACs"] == pytest.approx(counts.totals["macs"])
    assert synops["Effective_ACs"] == counts.totals["acs"] == 0
    # dense: 64·32 + 32·10 = 2048 + 320 = 2368 per sample, T = 1
    assert synops["Dense"] == counts.totals["dense"] == 64 * 32 + 32 * 10
    # NeuroBench's sparsity of the ReLU outputs: 1 − nonzero / 32; we count nonzero ReLU outputs as
    # the output layer's effective MACs over its fan-out 10
    nonzero_relu = layer(counts, "output")["macs"] / 10
    assert sparsity == pytest.approx(1 - nonzero_relu / 32)


def test_rate_acs_dense_and_activation_sparsity_agree():
    rate = method("rate", {"T": 4})
    x = rate.encode(images(), torch.Generator().manual_seed(1))  # [4, B, 1, 8, 8] Bernoulli spikes
    counts = ours(rate.network, rate.input_semantics, x)
    # the snnTorch way: SNNTorchModel with a custom forward (our network runs the time loop itself)
    synops, sparsity = neurobench(SNNTorchModel(BatchFirst(rate.network), custom_forward=True), x)
    assert synops["Effective_ACs"] == pytest.approx(counts.totals["acs"])
    assert synops["Effective_MACs"] == counts.totals["macs"] == 0
    # dense: T · (64·32 + 32·10) = 4 · 2368 = 9472 per sample
    assert synops["Dense"] == counts.totals["dense"] == 4 * 2368
    # sparsity over the snn.Leaky outputs: 1 − spikes / (neurons · T), neurons = 32 + 10
    assert neurons_times_steps(counts) == (32 + 10) * 4
    assert sparsity == pytest.approx(1 - counts.spikes_per_sample / neurons_times_steps(counts))


class Ternary(nn.Module):
    """Signed spikes sign(x) ∈ {−1, 0, +1}, declared ternary."""

    op_semantics = OpSemantics(EventKind.TERNARY, payload_bits=2, stateful=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sign(x)


def test_ternary_events_are_acs_in_both():
    network = nn.Sequential(OrderedDict(sign=Ternary(), fc=Folded(nn.Linear(8, 5))))
    x = torch.randn(3, BATCH, 8, generator=torch.Generator().manual_seed(2))
    x[x.abs() < 0.5] = 0.0  # some zeros: sign(0) = 0
    counts = ours(network, ANALOG_VALUES, x)
    model = TorchModel(BatchFirst(network))
    model.add_activation_module(Ternary)
    synops, sparsity = neurobench(model, x)
    # ACs: nonzero signed spikes · fan-out 5, per sample
    nonzero = (x != 0).sum().item()
    assert counts.totals["acs"] == pytest.approx(nonzero * 5 / BATCH) and nonzero > 0
    assert synops["Effective_ACs"] == pytest.approx(counts.totals["acs"])
    assert synops["Effective_MACs"] == counts.totals["macs"] == 0
    assert sparsity == pytest.approx(1 - counts.spikes_per_sample / (8 * 3))


# --- where they differ by design: the documented difference ---------------------------------------


def test_average_pooled_spikes_are_macs_for_neurobench_and_acs_here():
    cnn = ArchSpec(kind="cnn", conv=[4, "M"], hidden=[16], pool="avg")
    rate = method("rate", {"T": 3}, cnn)
    x = rate.encode(images(), torch.Generator().manual_seed(1))
    counts = ours(rate.network, rate.input_semantics, x)
    synops, sparsity = neurobench(SNNTorchModel(BatchFirst(rate.network), custom_forward=True), x)
    fc1 = layer(counts, "fc1")
    # the 2×2 average of spikes takes values in {0, .25, .5, .75, 1}: NeuroBench sees fractions at
    # fc1 and calls its ops MACs; we keep the producer's kind (the 1/4 folds into fc1's weights)
    assert fc1["event_kind_in"] == "binary" and fc1["acs"] > 0
    assert synops["Effective_MACs"] == pytest.approx(fc1["acs"])
    assert synops["Effective_ACs"] == pytest.approx(counts.totals["acs"] - fc1["acs"])
    # the effective ops themselves agree: nonzero inputs · fan-out
    assert synops["Effective_ACs"] + synops["Effective_MACs"] == pytest.approx(counts.totals["acs"])
    assert sparsity == pytest.approx(1 - counts.spikes_per_sample / neurons_times_steps(counts))


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_neurobench_dense_conv_ops_leave_out_the_zero_padding(pool):
    cnn = ArchSpec(kind="cnn", conv=[4, "M"], hidden=[16], pool=pool)
    rate = method("rate", {"T": 3}, cnn)
    x = rate.encode(images(), torch.Generator().manual_seed(1))
    counts = ours(rate.network, rate.input_semantics, x)
    synops, _ = neurobench(SNNTorchModel(BatchFirst(rate.network), custom_forward=True), x)
    T = 3
    # conv1 3×3, padding 1, 1 -> 4 channels on 8×8. Ours: every output reads the full kernel,
    # 4·8·8 · 1·3·3 = 2304 per step. NeuroBench: only taps on real pixels; along one axis the
    # pixels are read by 2,3,3,3,3,3,3,2 windows = 22, so 4 · 22·22 = 1936 per step.
    ours_conv, neurobench_conv = 4 * 8 * 8 * 9, 4 * 22 * 22
    assert layer(counts, "conv1")["dense"] == T * ours_conv
    fc_dense = T * (4 * 4 * 4 * 16 + 16 * 10)  # fc1 64·16 and output 16·10: no padding, equal
    assert counts.totals["dense"] == T * ours_conv + fc_dense
    assert synops["Dense"] == T * neurobench_conv + fc_dense
    assert counts.totals["dense"] - synops["Dense"] == T * (2304 - 1936) == 1104
    if pool == "max":  # max-pooled spikes stay in {0, 1}: every op is an AC in both
        assert synops["Effective_ACs"] == pytest.approx(counts.totals["acs"])
        assert synops["Effective_MACs"] == counts.totals["macs"] == 0


def test_ann_on_binary_images_is_charged_macs_here_and_acs_by_neurobench():
    # the ANN declares analog input: a binarised image is still multiplied, as declared; NeuroBench
    # sees only 0/1 values at fc1 and counts its ops as ACs (the ReLU outputs stay MACs)
    ann = method("ann", {})
    x = ann.encode(images(binary=True))
    counts = ours(ann.network, ann.input_semantics, x)
    synops, _ = neurobench(TorchModel(BatchFirst(ann.network)), x)
    fc1, output = layer(counts, "fc1"), layer(counts, "output")
    # fc1: nonzero pixels · 32, the same count under the other name
    nonzero_pixels = (x != 0).sum().item() / BATCH
    assert fc1["macs"] == pytest.approx(nonzero_pixels * 32)
    assert synops["Effective_ACs"] == pytest.approx(fc1["macs"])
    assert synops["Effective_MACs"] == pytest.approx(output["macs"]) and output["macs"] > 0
    assert counts.totals["acs"] == 0


def test_neurobench_skips_pruned_weights_and_we_charge_the_fan_out():
    ann = method("ann", {})
    with torch.no_grad():
        ann.network.output.layer.weight[0].zero_()  # prune every synapse onto class 0
    x = ann.encode(images())
    counts = ours(ann.network, ann.input_semantics, x)
    synops, _ = neurobench(TorchModel(BatchFirst(ann.network)), x)
    # each nonzero ReLU output reaches 10 outputs here, 9 nonzero weights there
    nonzero_relu = layer(counts, "output")["macs"] / 10
    assert nonzero_relu > 0
    assert counts.totals["macs"] - synops["Effective_MACs"] == pytest.approx(nonzero_relu * 1)
    assert synops["Dense"] == counts.totals["dense"]  # dense counts every weight in both


def test_time_first_data_makes_neurobench_divide_by_T_instead_of_B():
    rate = method("rate", {"T": 4})
    x = rate.encode(images(), torch.Generator().manual_seed(1))  # [T=4, B=6, ...]
    counts = ours(rate.network, rate.input_semantics, x)
    # handed our [T, B, ...] tensor as it is, NeuroBench takes x.size(0) = T = 4 for the samples
    synops, _ = neurobench(TorchModel(rate.network), x, batch_first=False)
    assert synops["Effective_ACs"] == pytest.approx(counts.totals["acs"] * BATCH / 4)
    assert synops["Dense"] == pytest.approx(counts.totals["dense"] * BATCH / 4)
