"""The `latency` method (methods/latency.py): the LE module's spike times and straight-through
gradient, the relaxed hidden layers, the TAD loss and its weights, the early-exit readout, op
semantics, the contract of every variant and a tiny training run. Golden values are computed by hand
in each test."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmark.contract.errors import ConfigError
from benchmark.contract.registry import check_contract, create_method
from benchmark.contract.semantics import EventKind
from benchmark.metrics.ops import OpCounter
from methods.latency import (LatencyEncoder, OnceFolded, first_spike_score, latency_spike_times, latency_spikes,
                             step_weights, tad_weights, temporal_loss)
from snn.arch import ArchSpec
from snn.engine import LIF
from snn.temporal import SingleSpikeIF, TemporalDecoder
from tests.digits import digits, full_loss, train_briefly
import methods.latency  # noqa: F401  (import registers `latency`)

MLP = ArchSpec(kind="mlp", hidden=[32, 24])
CNN = ArchSpec(kind="cnn", conv=[4, "M", 6, "M"], hidden=[16])
SHAPE = (1, 8, 8)


def make(hyperparameters: dict | None = None, arch: ArchSpec = MLP, shape=SHAPE, seed: int = 0):
    torch.manual_seed(seed)
    return create_method("latency", hyperparameters or {}, arch, shape, 10)


# --- configuration ----------------------------------------------------------------------------


def test_the_defaults_are_the_full_framework():
    method = make()
    config = method.config
    assert (config.T, config.encoder, config.hidden, config.decision_signal, config.loss) == (
        4, "le", "relaxed", "membrane", "tad")
    assert (config.threshold, config.beta, config.surrogate, config.slope) == (1.0, 1.0, "sigmoid", 4.0)
    assert method.variant() == ""
    assert make({"encoder": "direct", "loss": "final"}).variant() == "encoder=direct,loss=final"


def test_an_unknown_choice_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"methods\.latency\.loss"):
        make({"loss": "focal"})
    with pytest.raises(ConfigError, match=r"methods\.latency\.hidden"):
        make({"hidden": "multi"})


def test_the_le_needs_a_feature_layer():
    with pytest.raises(ConfigError, match="encoder"):
        make({}, ArchSpec(kind="mlp", hidden=[]))
    direct = make({"encoder": "direct"}, ArchSpec(kind="mlp", hidden=[]))
    check_contract(direct, direct.encode(torch.rand(3, *SHAPE)), 3)


# --- the LE module ----------------------------------------------------------------------------


def test_le_spike_times_by_hand():
    # T = 4, t_f = floor((1 − z)·4), values exact in binary:
    #   z        1    .875  .75  .625  .5   .25  .125  .0625  0
    #   (1−z)·4  0    .5    1    1.5   2    3    3.5   3.75   4
    #   t_f      0    0     1    1     2    3    3     3      4 = T: never fires
    z = torch.tensor([1.0, 0.875, 0.75, 0.625, 0.5, 0.25, 0.125, 0.0625, 0.0])
    assert latency_spike_times(z, 4).tolist() == [0, 0, 1, 1, 2, 3, 3, 3, 4]
    spikes = latency_spikes(z, 4)
    assert spikes.shape == (4, 9)
    assert spikes.argmax(0)[:8].tolist() == [0, 0, 1, 1, 2, 3, 3, 3]
    assert spikes.sum(0).tolist() == [1, 1, 1, 1, 1, 1, 1, 1, 0]  # z = 0 never fires
    # T = 2: floor((1 − z)·2): z = .5 -> 1, z = .75 -> 0, z = .25 -> 1
    assert latency_spike_times(torch.tensor([0.5, 0.75, 0.25, 0.0]), 2).tolist() == [1, 0, 1, 2]


def test_the_le_neuron_clips_its_input_to_0_1():
    # BN outputs −0.5 and 0 never fire (z = 0); 1.7 fires at t = 0 like z = 1; 0.5 at t = 2 (T = 4)
    encoder = LatencyEncoder(T=4)
    spikes = encoder(torch.tensor([[[-0.5, 0.0, 1.7, 0.5]]]))  # [1, B = 1, F = 4]
    assert spikes.shape == (4, 1, 4)
    assert spikes[:, 0].T.tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]]
    assert encoder.op_semantics.event_kind is EventKind.BINARY
    with pytest.raises(ValueError, match="one analog frame"):
        encoder(torch.zeros(2, 1, 4))


def test_the_straight_through_gradient_is_the_upstream_gradient_at_the_spike_bin():
    # T = 4, z = (1, .5, 0) -> t_f = (0, 2, never); upstream g[t, 0, i] = (t + 1) + 10·i
    # ∂L/∂z_i = Σ_t g[t, i]·S[t, i] = g[t_f, i]: (g[0, 0], g[2, 1], 0) = (1, 13, 0)
    z = torch.tensor([[1.0, 0.5, 0.0]], requires_grad=True)
    spikes = latency_spikes(z, 4)
    upstream = torch.arange(1, 5, dtype=torch.float32).view(4, 1, 1) + 10 * torch.arange(3.0).view(1, 1, 3)
    (grad,) = torch.autograd.grad((spikes * upstream).sum(), z)
    assert grad.tolist() == [[1.0, 13.0, 0.0]]


def test_the_network_le_is_clip_bn_of_the_first_layer():
    method = make({"T": 4})
    network = method.network
    assert isinstance(network.fc1, OnceFolded)
    assert isinstance(network.le_bn.layer, nn.BatchNorm1d) and isinstance(network.act_fc1, LatencyEncoder)
    assert isinstance(network.act_fc2, LIF)
    images = torch.rand(6, *SHAPE)
    seen = {}
    handle = network.act_fc1.register_forward_hook(lambda m, i, o: seen.update(bn=i[0], spikes=o))
    with torch.no_grad():
        network.train()
        method.forward(images)
    handle.remove()
    # the BN's input is W·x + b of the image, once; training-mode BN normalises over the batch
    current = network.fc1.layer(images.flatten(1))
    expected_bn = (current - current.mean(0)) / torch.sqrt(current.var(0, unbiased=False) + 1e-5)
    assert seen["bn"].shape == (1, 6, 32)
    assert torch.allclose(seen["bn"][0], expected_bn, atol=1e-5)
    z = seen["bn"][0].clamp(0, 1)
    times = torch.floor((1 - z) * 4)
    assert torch.equal(seen["spikes"], (torch.arange(4).view(4, 1, 1) == times).float())
    assert seen["spikes"].sum(0).max() == 1


def test_a_cnn_with_batch_norm_keeps_its_own_bn_for_the_le():
    arch = ArchSpec(kind="cnn", conv=[4, "M"], hidden=[], batch_norm=True)
    network = make({}, arch).network
    names = [name for name, _ in network.named_children()]
    assert names[:3] == ["conv1", "bn1", "act_conv1"] and "le_bn" not in names
    network = make({}, CNN).network
    assert [name for name, _ in network.named_children()][:3] == ["conv1", "le_bn", "act_conv1"]


def test_encode_presents_the_image_once_or_codes_each_pixel():
    images = torch.tensor([[[[1.0, 0.5], [0.25, 0.0]]]])  # [B = 1, 1, 2, 2]
    le = make({"T": 4}).encode(images)
    assert le.shape == (4, 1, 1, 2, 2) and torch.equal(le[0], images) and le[1:].abs().sum() == 0
    direct = make({"T": 4, "encoder": "direct"})
    spikes = direct.encode(images)
    # t_f = floor((1 − x)·4): 1 -> 0, .5 -> 2, .25 -> 3, 0 -> never
    assert spikes[:, 0, 0].flatten(1).T.tolist() == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert direct.input_semantics.event_kind is EventKind.BINARY
    assert make().input_semantics.event_kind is EventKind.ANALOG
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        direct.encode(images * 2)


def test_the_le_layer_refuses_input_after_step_0():
    method = make({"T": 3})
    x = torch.rand(3, 2, *SHAPE)
    with pytest.raises(ValueError, match="step 0"):
        method.network(x)


# --- hidden layers and the output layer -------------------------------------------------------


@pytest.mark.parametrize("hidden, spikes", [("relaxed", 4), ("single-spike", 1)])
def test_relaxed_hidden_neurons_fire_more_than_once(hidden, spikes):
    # fc2: W = 0, b = θ = 1: I[t] = 1 at every step. Relaxed IF with soft reset: H = 1 ≥ θ, fires,
    # V = 1 − 1 = 0, again at every step: 4 spikes in T = 4. Single-spike: only the first.
    method = make({"T": 4, "hidden": hidden})
    with torch.no_grad():
        method.network.fc2.layer.weight.zero_()
        method.network.fc2.layer.bias.fill_(1.0)
    seen = []
    handle = method.network.act_fc2.register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        method.forward(torch.rand(3, *SHAPE))
    handle.remove()
    assert isinstance(method.network.act_fc2, LIF if hidden == "relaxed" else SingleSpikeIF)
    assert torch.equal(seen[0].sum(0), torch.full((3, 24), float(spikes)))


@pytest.mark.parametrize("hyperparameters", [{}, {"hidden": "single-spike"}, {"encoder": "direct"}])
def test_the_output_and_le_neurons_fire_at_most_once(hyperparameters):
    method = make({"T": 6, **hyperparameters})
    first = []
    handle = method.network.act_fc1.register_forward_hook(lambda m, i, o: first.append(o))
    with torch.no_grad():  # a strong output layer so that classes fire
        method.network.output.layer.weight.mul_(20)
        output = method.forward(torch.rand(32, *SHAPE))
    handle.remove()
    spikes = method.spikes(output)
    assert spikes.sum(0).max() == 1 and spikes.sum() > 0
    assert torch.equal(method.output_layer.events(output), spikes)
    if hyperparameters.get("encoder", "le") == "le":  # the LE's neurons: one spike at most
        assert isinstance(method.network.act_fc1, LatencyEncoder)
        assert first[0].sum(0).max() == 1


# --- the decision signal and the TAD loss -----------------------------------------------------


def test_the_first_spike_score_by_hand():
    # T = 4: class 0 fires at t = 1 (weight T − 1 = 3), class 1 at t = 3 (weight 1), class 2 never
    # o_t = Σ_{τ≤t} (T − τ)·S[τ]: class 0: 0, 3, 3, 3; class 1: 0, 0, 0, 1; class 2: 0
    spikes = torch.zeros(4, 1, 3)
    spikes[1, 0, 0] = spikes[3, 0, 1] = 1
    score = first_spike_score(spikes, TemporalDecoder("linear", 4))
    assert score[:, 0].T.tolist() == [[0, 3, 3, 3], [0, 0, 0, 1], [0, 0, 0, 0]]
    # the method's signal from the output membrane: θ = 1 crossed by class 0 at t = 1, class 1 at t = 3
    method = make({"T": 4, "decision_signal": "first_spike"})
    membrane = torch.zeros(4, 1, 10)
    membrane[1:, 0, 0] = 1.5
    membrane[3, 0, 1] = 1.0
    assert method.decision_signal(membrane)[:, 0, :3].T.tolist() == [[0, 3, 3, 3], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert torch.equal(make({"T": 4}).decision_signal(membrane), membrane)


def test_the_tad_weights_and_loss_by_hand():
    # T = 2, one sample, two classes, y = 0:
    #   o_0 = (0, 0)     -> p_0 = (1/2, 1/2), c_0 = 1/2
    #   o_1 = (ln 3, 0)  -> p_1 = (3/4, 1/4), c_1 = 3/4
    #   w = (1/2, 3/4) / (5/4) = (0.4, 0.6)
    #   L = 0.4·ln 2 + 0.6·ln(4/3)
    #   dL/do_t = w_t·(p_t − onehot(y)) with w constant: (−0.2, 0.2) and (−0.15, 0.15)
    signal = torch.tensor([[[0.0, 0.0]], [[math.log(3.0), 0.0]]], requires_grad=True)
    labels = torch.tensor([0])
    weights = tad_weights(signal, labels)
    assert weights[:, 0].tolist() == pytest.approx([0.4, 0.6])
    assert not weights.requires_grad and weights.grad_fn is None  # stop-gradient
    loss = temporal_loss(signal, labels, "tad")
    assert loss.item() == pytest.approx(0.4 * math.log(2) + 0.6 * math.log(4 / 3))
    (grad,) = torch.autograd.grad(loss, signal)
    assert grad[:, 0].tolist() == [pytest.approx([-0.2, 0.2]), pytest.approx([-0.15, 0.15])]
    # uniform: (ln 2 + ln 4/3)/2; final: ln(4/3) at t = T − 1 only
    assert temporal_loss(signal, labels, "uniform").item() == pytest.approx((math.log(2) + math.log(4 / 3)) / 2)
    assert temporal_loss(signal, labels, "final").item() == pytest.approx(math.log(4 / 3))
    assert step_weights(signal, labels, "final")[:, 0].tolist() == [0.0, 1.0]


def test_the_tad_weights_sum_to_one_per_sample_and_carry_no_gradient():
    torch.manual_seed(0)
    signal = torch.randn(5, 7, 10, requires_grad=True)
    labels = torch.randint(0, 10, (7,))
    weights = tad_weights(signal, labels)
    assert weights.shape == (5, 7) and (weights > 0).all()
    assert weights.sum(0).tolist() == pytest.approx([1.0] * 7)
    # the loss's gradient is Σ_t w_t·∂CE_t with w held constant
    loss = temporal_loss(signal, labels, "tad")
    (grad,) = torch.autograd.grad(loss, signal)
    onehot = torch.nn.functional.one_hot(labels, 10).float()
    expected = weights.unsqueeze(-1) * (signal.detach().softmax(-1) - onehot) / 7
    assert torch.allclose(grad, expected, atol=1e-6)


def test_the_method_loss_is_the_tad_loss_of_its_signal():
    torch.manual_seed(0)
    membrane = torch.randn(4, 3, 10)
    labels = torch.tensor([1, 2, 3])
    for loss in ("tad", "uniform", "final"):
        method = make({"T": 4, "loss": loss})
        assert method.loss(membrane, labels).item() == pytest.approx(temporal_loss(membrane, labels, loss).item())


# --- the early-exit readout -------------------------------------------------------------------


def test_the_readout_exits_at_the_first_output_spike():
    # T = 4, θ = 1, output membrane H by hand:
    #   sample 0: class 3 crosses at t = 1, class 7 at t = 2    -> 3, decision step 2
    #   sample 1: classes 2 and 5 cross at t = 0 (1.2 and 1.7)  -> 5 (crossed by most), step 1
    #   sample 2: nothing crosses; H[T−1] largest for class 8   -> 8, step T = 4
    output = torch.zeros(4, 3, 10)
    output[1:, 0, 3], output[2:, 0, 7] = 1.0, 1.5
    output[:, 1, 2], output[:, 1, 5] = 1.2, 1.7
    output[:, 2, 4], output[:, 2, 8] = torch.tensor([0.1, 0.3, 0.6, 0.5]), torch.tensor([0.2, 0.4, 0.5, 0.9])
    readout = make({"T": 4}).readout(output)
    assert readout.prediction.tolist() == [3, 5, 8]
    assert readout.decision_step.tolist() == [2, 1, 4]


# --- op semantics -----------------------------------------------------------------------------


def test_the_op_counter_charges_the_le_once_as_macs_and_its_spikes_as_acs():
    images = torch.rand(16, *SHAPE)
    images[images < 0.3] = 0  # some zero pixels: they are not charged
    method = make({"T": 4})
    with OpCounter(method.network, method.input_semantics) as counter:
        with torch.no_grad():
            method.forward(images)
    layers = {layer["name"]: layer for layer in counter.compute().layers}
    # fc1: nonzero pixels × 32 outputs, once (the image is at step 0 only); dense: 64·32 per step
    nonzero = (images != 0).sum().item() / 16
    assert layers["fc1"]["macs"] == pytest.approx(nonzero * 32) and layers["fc1"]["acs"] == 0
    assert layers["fc1"]["dense"] == 64 * 32 * 4
    # the LE: binary spikes, at most one per feature; fc2 is charged ACs per LE spike × 24
    assert layers["act_fc1"]["spikes_per_neuron"] <= 1
    assert layers["fc2"]["event_kind_in"] == EventKind.BINARY.value and layers["fc2"]["macs"] == 0
    assert layers["fc2"]["acs"] == pytest.approx(layers["act_fc1"]["spikes"] * 24)
    # direct: every pixel with x > 0 fires once, charged ACs × 32
    direct = make({"T": 4, "encoder": "direct"})
    with OpCounter(direct.network, direct.input_semantics) as counter:
        with torch.no_grad():
            direct.forward(images)
    first = counter.compute().layers[0]
    assert first["acs"] == pytest.approx(nonzero * 32) and first["macs"] == 0


# --- contract ---------------------------------------------------------------------------------


@pytest.mark.parametrize("hyperparameters", [
    {}, {"encoder": "direct"}, {"hidden": "single-spike"}, {"decision_signal": "first_spike", "loss": "uniform"},
    {"loss": "final", "T": 1}, {"beta": 0.9, "surrogate": "atan", "T": 8},
    {"encoder": "direct", "hidden": "single-spike"},
])
@pytest.mark.parametrize("arch", [MLP, CNN], ids=["mlp", "cnn"])
def test_every_variant_honours_the_contract(hyperparameters, arch):
    method = make(hyperparameters, arch)
    check_contract(method, method.encode(torch.rand(3, *SHAPE)), 3)
    output = method.forward(torch.rand(3, *SHAPE))
    method.loss(output, torch.tensor([0, 1, 2])).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.network.parameters())


# --- training ---------------------------------------------------------------------------------


def test_a_tiny_training_run_lowers_the_loss():
    images, labels = digits()
    method = make({"T": 4}, ArchSpec(kind="mlp", hidden=[64, 32]), shape=(1, 8, 8))
    before = full_loss(method, images, labels)
    train_briefly(method, images, labels)
    after = full_loss(method, images, labels)
    assert after < before - 0.5
    method.network.eval()
    with torch.no_grad():
        output = method.forward(images)
        readout = method.readout(output)
    accuracy = (readout.prediction == labels).double().mean().item()
    assert accuracy > 0.7
    assert method.spikes(output).sum(0).max() <= 1
