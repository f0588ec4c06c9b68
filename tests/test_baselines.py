"""The `ann` and `rate` baselines, and the snnTorch hazards METHODS.md §2 lists."""

from __future__ import annotations

import pytest
import snntorch as snn
import torch
from snntorch import spikegen, utils

from benchmark.contract.registry import create_method
from snn.arch import ArchSpec

MLP = ArchSpec(kind="mlp", hidden=[16])
SHAPE = (1, 8, 8)


def _rate(**hyperparameters):
    torch.manual_seed(0)
    return create_method("rate", hyperparameters, MLP, SHAPE, 10)


def test_ann_runs_one_step_and_decides_at_step_one():
    ann = create_method("ann", {}, MLP, SHAPE, 10)
    output = ann.forward(torch.rand(5, *SHAPE))
    readout = ann.readout(output)
    assert output.shape == (1, 5, 10)
    assert readout.decision_step.tolist() == [1] * 5
    assert torch.equal(readout.prediction, output[0].argmax(-1))


def test_ann_refuses_more_than_one_time_step():
    with pytest.raises(ValueError, match="methods.ann.T must be 1"):
        create_method("ann", {"T": 4}, MLP, SHAPE, 10)


def test_rate_encoding_is_bernoulli_with_the_pixel_as_probability():
    images = torch.tensor([0.0, 1.0, 0.25]).reshape(1, 1, 1, 3).expand(1, 1, 1, 3)
    spikes = _rate(T=4000).encode(images, torch.Generator().manual_seed(0))
    rates = spikes.mean(dim=0).flatten()
    assert rates[0] == 0 and rates[1] == 1
    assert rates[2] == pytest.approx(0.25, abs=0.03)  # 4000 draws: std ≈ 0.007


def test_rate_encoding_is_reproducible_and_leaves_the_global_generator_alone():
    method, images = _rate(), torch.rand(3, *SHAPE)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = method.encode(images, torch.Generator().manual_seed(5))
    assert torch.equal(torch.rand(1), expected_next)  # spikegen.rate drew from a forked stream
    assert torch.equal(first, method.encode(images, torch.Generator().manual_seed(5)))
    assert not torch.equal(first, method.encode(images, torch.Generator().manual_seed(6)))


def test_rate_encoding_of_a_sample_does_not_depend_on_the_rest_of_the_batch():
    method, sample = _rate(), torch.rand(1, *SHAPE)
    with_a = method.encode(torch.cat([sample, torch.rand(2, *SHAPE)]), torch.Generator().manual_seed(1))
    with_b = method.encode(torch.cat([sample, torch.ones(2, *SHAPE)]), torch.Generator().manual_seed(1))
    assert torch.equal(with_a[:, 0], with_b[:, 0])


def test_rate_readout_counts_output_spikes_and_decides_at_T():
    method = _rate(T=3)
    # sample 0: class 2 fires twice, class 5 once; sample 1: only class 7 fires
    output = torch.zeros(3, 2, 10)
    output[0, 0, 2] = output[2, 0, 2] = output[1, 0, 5] = 1
    output[1, 1, 7] = 1
    readout = method.readout(output)
    assert readout.prediction.tolist() == [2, 7]
    assert readout.decision_step.tolist() == [3, 3]


@pytest.mark.parametrize("loss", ["ce_rate", "ce_count"])
def test_rate_losses_are_snntorch_losses_and_scalar(loss):
    method = _rate(loss=loss, T=2)
    output = torch.zeros(2, 1, 10)
    output[:, 0, 3] = 1
    value = method.loss(output, torch.tensor([3]))
    assert value.ndim == 0
    if loss == "ce_rate":
        # per step: CE of logits (1 at the label, 0 elsewhere) = −log(e / (e + 9)); averaged over T
        assert value.item() == pytest.approx(-torch.log(torch.e / (torch.e + torch.tensor(9.0))).item(), rel=1e-5)


def test_snntorch_reset_hazard_reset_of_one_network_clears_another():
    """snntorch.utils.reset(b) resets every Leaky instance of the process (the class-level instance
    list): with hidden state kept on the instance, it wipes network a's membrane too."""
    leaky_a, leaky_b = snn.Leaky(beta=0.9, init_hidden=True), snn.Leaky(beta=0.9, init_hidden=True)
    leaky_a(torch.full((2, 3), 0.5))
    assert torch.all(leaky_a.mem == 0.5)
    utils.reset(torch.nn.Sequential(leaky_b))
    assert torch.all(leaky_a.mem == 0), "snnTorch no longer resets other networks: revisit the guard"


def test_rate_network_does_not_depend_on_any_stored_snntorch_state():
    """Our wrapper passes the membrane explicitly and starts it at zero on every call: neither a
    reset of another network nor a stale membrane left on the instance changes a's outputs."""
    a, b = _rate(T=5), _rate(T=5)
    images = torch.rand(4, *SHAPE)
    before = a.forward(images, torch.Generator().manual_seed(0))
    for leaky in (m for m in a.network.modules() if isinstance(m, snn.Leaky)):
        leaky.mem = torch.full_like(leaky.mem, 7.0)
    utils.reset(b.network)
    assert torch.equal(before, a.forward(images, torch.Generator().manual_seed(0)))


def test_snntorch_latency_hazard_normalized_log_latency_depends_on_the_batch():
    """Why no method uses spikegen.latency(normalize=True, linear=False): a sample's spike times
    change with the other samples of its batch."""
    sample = torch.tensor([[0.2, 0.5, 0.9]])
    alone = spikegen.latency(torch.cat([sample, sample]), num_steps=10, normalize=True, linear=False)
    mixed = spikegen.latency(torch.cat([sample, torch.full_like(sample, 0.01)]), num_steps=10, normalize=True, linear=False)
    assert not torch.equal(alone[:, 0], mixed[:, 0])
