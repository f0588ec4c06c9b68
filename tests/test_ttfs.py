"""The `ttfs` method (methods/ttfs.py): initializers, weight standardization and its folding, the
single-spike property on random and trained networks, pooling, encoding, readout, a tiny training."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmark.contract.errors import ConfigError
from benchmark.contract.registry import check_contract, create_method
from benchmark.contract.semantics import EventKind
from benchmark.metrics.ops import OpCounter
from methods.ttfs import (StaticInputFolded, WSConv2d, WSLinear, data_driven_init, fold_for_inference, initialize_layer,
                          standardize)
from snn.arch import ArchSpec
from snn.layers import Folded
from snn.temporal import SingleSpikeIF, SingleSpikeOutput
from tests.digits import digits, full_loss, train_briefly
import methods.ttfs  # noqa: F401  (import registers `ttfs`)

MLP = ArchSpec(kind="mlp", hidden=[32, 24])
CNN = ArchSpec(kind="cnn", conv=[4, "M", 6, "M"], hidden=[16])
SHAPE = (1, 8, 8)


def make(hyperparameters: dict | None = None, arch: ArchSpec = MLP, shape=SHAPE, seed: int = 0):
    torch.manual_seed(seed)
    return create_method("ttfs", hyperparameters or {}, arch, shape, 10)


def neuron_spike_counts(method, images) -> dict[str, torch.Tensor]:
    """Σ_t S of every single-spike layer (hidden and output), per sample and neuron."""
    counts, handles = {}, []
    for name, module in method.network.named_modules():
        if isinstance(module, SingleSpikeOutput):  # emits its membrane; its spikes are spikes(H)
            handles.append(module.register_forward_hook(
                lambda mod, inp, out, name=name: counts.__setitem__(name, mod.spikes(out).sum(0))))
        elif isinstance(module, SingleSpikeIF):
            handles.append(module.register_forward_hook(
                lambda mod, inp, out, name=name: counts.__setitem__(name, out.sum(0))))
    with torch.no_grad():
        method.forward(images)
    for handle in handles:
        handle.remove()
    return counts


# --- configuration ----------------------------------------------------------------------------


def test_the_defaults_are_the_papers_full_method_with_the_validation_choice_of_loss_and_decoder():
    method = make()
    config = method.config
    assert (config.T, config.init, config.norm, config.pool, config.input) == (8, "ettfs", "ws", "avg", "direct")
    assert (config.surrogate, config.slope, config.threshold) == ("sigmoid", 4.0, 1.0)
    assert (config.decoder, config.loss_scale) == ("exp", 4.0)  # grid ttfs-loss-scale's validation choice
    assert method.variant() == ""
    assert make({"init": "kaiming", "norm": "none"}).variant() == "init=kaiming,norm=none"
    assert make({"decoder": "linear", "loss_scale": 1.0}).variant() == "decoder=linear,loss_scale=1"  # the paper's


def test_an_unknown_choice_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"methods\.ttfs\.decoder"):
        make({"decoder": "quadratic"})


# --- initialization ---------------------------------------------------------------------------


@pytest.mark.parametrize("init, T, variance", [("ettfs", 8, lambda n, T: T / n), ("ettfs", 3, lambda n, T: T / n),
                                               ("kaiming", 8, lambda n, T: 2 / n)])
def test_the_initializer_variance(init, T, variance):
    # 2000 × 500 = 10⁶ weights from U(±a): Var = a²/3; the sample variance is within ~0.3 % of it
    torch.manual_seed(0)
    layer = nn.Linear(2000, 500)
    initialize_layer(layer, init, T)
    expected = variance(2000, T)
    assert layer.weight.var().item() == pytest.approx(expected, rel=0.02)
    assert layer.weight.abs().max().item() <= math.sqrt(3 * expected)
    assert layer.bias.abs().max().item() == 0.0


def test_under_weight_standardization_the_gain_carries_the_initializer_variance():
    # g = sqrt(N_in·T/N_in) = sqrt(T), so Var Ŵ_o = g²/N_in = T/N_in for every output
    torch.manual_seed(0)
    layer = WSLinear(1000, 50)
    initialize_layer(layer, "ettfs", 8)
    assert layer.gain.tolist() == pytest.approx([math.sqrt(8)] * 50)
    per_output = layer.standardized_weight().var(dim=1, unbiased=False)
    assert per_output.tolist() == pytest.approx([8 / 1000] * 50, rel=1e-4)


def test_the_data_driven_init_gives_every_layer_the_target_end_of_window_variance():
    method = make({"init": "data"}, CNN, (1, 12, 12))
    images = torch.rand(64, 1, 12, 12)
    method.initialize(method.encode(images))
    target = method.T * method.config.threshold**2  # T·θ²
    x = method.encode(images)
    variances = []
    with torch.no_grad():
        for module in method.network:
            if isinstance(module, Folded) and isinstance(module.layer, (nn.Linear, nn.Conv2d)):
                variances.append(module(x).sum(0).var().item())  # Var(Σ_t I_l[t])
            x = module(x)
    assert len(variances) == 4
    assert variances == pytest.approx([target] * 4, rel=1e-3)
    # running it again changes nothing: the factors are 1
    factors = data_driven_init(method.network, method.encode(images), target)
    assert factors == pytest.approx([1.0] * 4, rel=1e-3)


# --- weight standardization -------------------------------------------------------------------


def test_weight_standardization_by_hand():
    # W_0 = (1, 2, 3): mean 2, Var (biased) 2/3, fan_in 3 -> Ŵ_0 = g·(−1, 0, 1)/sqrt(2 + ε)
    # W_1 = (0, 0, 6): mean 2, Var 8,          fan_in 3 -> Ŵ_1 = g·(−2, −2, 4)/sqrt(24 + ε)
    weight = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]])
    gain = torch.tensor([2.0, 0.5])
    eps = 1e-5
    result = standardize(weight, gain, eps)
    expected = [[2 * v / math.sqrt(2 + eps) for v in (-1, 0, 1)], [0.5 * v / math.sqrt(24 + eps) for v in (-2, -2, 4)]]
    assert result.tolist() == [pytest.approx(row) for row in expected]


@pytest.mark.parametrize("arch, shape", [(MLP, SHAPE), (CNN, (1, 12, 12))], ids=["mlp", "cnn"])
def test_the_folded_network_equals_the_unfolded_one(arch, shape):
    method = make({}, arch, shape)
    with torch.no_grad():  # train-like perturbation so gains and biases are not at their initial values
        for module in method.network.modules():
            if isinstance(module, (WSLinear, WSConv2d)):
                module.gain.mul_(1 + 0.3 * torch.rand_like(module.gain))
                module.bias.add_(0.1 * torch.randn_like(module.bias))
    images = torch.rand(16, *shape)
    folded = fold_for_inference(method.network)
    assert not any(isinstance(m, (WSLinear, WSConv2d)) for m in folded.modules())
    assert any(isinstance(m, (WSLinear, WSConv2d)) for m in method.network.modules())  # the original is kept
    x = method.encode(images)
    with torch.no_grad():
        unfolded_out, folded_out = method.network(x), folded(x)
        unfolded_current = method.network[:-1](x)
        folded_current = folded[:-1](x)
    assert torch.allclose(unfolded_current, folded_current, atol=1e-6)
    assert torch.equal(method.spikes(unfolded_out), method.spikes(folded_out))
    assert method.spikes(unfolded_out).sum() > 0
    # the op counter charges both the same
    counts = []
    for network in (method.network, folded):
        with OpCounter(network, method.input_semantics) as counter:
            network(x)
        counts.append(counter.compute().totals)
    assert counts[0] == counts[1]


def test_fold_for_inference_on_the_method_keeps_its_readout():
    method = make()
    images = torch.rand(8, *SHAPE)
    with torch.no_grad():
        before = method.readout(method.forward(images))
        method.fold_for_inference()
        after = method.readout(method.forward(images))
    assert torch.equal(before.prediction, after.prediction)
    assert torch.equal(before.decision_step, after.decision_step)


# --- the single-spike property ----------------------------------------------------------------


@pytest.mark.parametrize("hyperparameters", [{}, {"norm": "none", "init": "kaiming"}, {"input": "latency"}])
@pytest.mark.parametrize("arch, shape", [(MLP, SHAPE), (CNN, (1, 12, 12))], ids=["mlp", "cnn"])
def test_no_neuron_fires_more_than_once_on_random_inputs(hyperparameters, arch, shape):
    method = make(hyperparameters, arch, shape)
    counts = neuron_spike_counts(method, torch.rand(32, *shape))
    assert len(counts) == len(arch.hidden) + len([c for c in arch.conv if c != "M"]) + 1
    assert all(c.max() <= 1 for c in counts.values())
    assert sum(c.sum() for c in counts.values()) > 0


def test_max_pooling_over_spikes_carries_more_than_one_spike_while_average_pooling_carries_at_most_one():
    # One pooled unit: the four conv neurons of its 2×2 window fire at t = 0, 1, 2, 3.
    spikes = torch.zeros(4, 1, 1, 2, 2)
    for t, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        spikes[t, 0, 0, row, col] = 1
    assert spikes.sum(0).max() == 1  # every neuron fired once
    max_pooled = Folded(nn.MaxPool2d(2))(spikes)
    avg_pooled = Folded(nn.AvgPool2d(2))(spikes)
    assert max_pooled.flatten().tolist() == [1, 1, 1, 1]  # four spikes from one pooled unit
    assert avg_pooled.flatten().tolist() == [0.25] * 4  # total mass 1 = the four single spikes, averaged

    # The same in a built network with random input, observed at the pooling layers.
    images = torch.rand(32, 1, 12, 12)
    totals = {}
    for pool in ("avg", "max"):
        method = make({"pool": pool}, CNN, (1, 12, 12))
        pooled = []
        handle = method.network.pool1.register_forward_hook(lambda mod, inp, out: pooled.append(out.sum(0)))
        with torch.no_grad():
            method.forward(images)
        handle.remove()
        totals[pool] = pooled[0]
    assert totals["avg"].max() <= 1 + 1e-6
    assert totals["max"].max() > 1


def test_the_op_counter_sees_at_most_one_spike_per_neuron_and_charges_the_input_by_its_kind():
    images = torch.rand(16, *SHAPE)
    for hyperparameters, first_kind in (({}, "macs"), ({"input": "latency"}, "acs")):
        method = make(hyperparameters)
        with OpCounter(method.network, method.input_semantics) as counter:
            with torch.no_grad():
                method.forward(images)
        layers = counter.compute().layers
        neurons = [layer for layer in layers if layer["neurons"]]
        assert all(layer["spikes_per_neuron"] <= 1 for layer in neurons)
        first = layers[0]
        assert first[first_kind] > 0 and first["acs" if first_kind == "macs" else "macs"] == 0
        assert all(layer["event_kind_in"] == EventKind.BINARY.value for layer in layers[1:] if not layer["neurons"])


# --- encoding, readout, contract --------------------------------------------------------------


def test_direct_input_repeats_the_image_and_latency_input_sends_one_spike_per_pixel():
    images = torch.rand(3, *SHAPE)
    direct = make().encode(images)
    assert direct.shape == (8, 3, *SHAPE) and torch.equal(direct[5], images)
    latency_method = make({"input": "latency", "T": 4})
    latency = latency_method.encode(images)
    assert latency.shape == (4, 3, *SHAPE) and torch.equal(latency.sum(0), torch.ones_like(images))
    assert latency_method.input_semantics.event_kind is EventKind.BINARY
    assert make().input_semantics.event_kind is EventKind.ANALOG


@pytest.mark.parametrize("arch, shape", [(MLP, SHAPE), (CNN, (1, 12, 12))], ids=["mlp", "cnn"])
def test_the_static_input_layer_equals_the_folded_one_in_values_gradients_and_op_counts(arch, shape):
    # direct input: the first synaptic layer computes W·x once for all T steps
    method = make({}, arch, shape)
    first = next(m for m in method.network if isinstance(m, Folded) and not isinstance(m.layer, nn.Flatten))
    assert isinstance(first, StaticInputFolded)
    images = torch.rand(8, *shape)
    labels = torch.arange(8) % 10
    results = []
    for static in (True, False):
        name = next(n for n, m in method.network.named_children() if m is first or m.layer is first.layer)
        setattr(method.network, name, StaticInputFolded(first.layer) if static else Folded(first.layer))
        method.network.zero_grad()
        with OpCounter(method.network, method.input_semantics) as counter:
            output = method.forward(images)
        method.loss(output, labels).backward()
        results.append((output.detach(), first.layer.weight.grad.clone(), counter.compute().totals))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.allclose(results[0][1], results[1][1], atol=1e-6)
    assert results[0][1].abs().sum() > 0
    assert results[0][2] == results[1][2]


def test_the_readout_decodes_with_the_configured_weights():
    # T = 4, θ = 1; the output is the membrane H: class 3 crosses θ at t = 1, class 7 at t = 2
    # -> prediction 3, decision step 2; O from the linear decoder: w_1 = 0.75, w_2 = 0.5
    method = make({"T": 4, "decoder": "linear", "loss_scale": 1.0})
    output = torch.zeros(4, 1, 10)
    output[1:, 0, 3] = 1.0
    output[2:, 0, 7] = 1.5
    readout = method.readout(output)
    assert readout.prediction.tolist() == [3] and readout.decision_step.tolist() == [2]
    assert method.decode(output)[0, [3, 7]].tolist() == [0.75, 0.5]
    expected = nn.functional.cross_entropy(method.decode(output), torch.tensor([7]))
    assert method.loss(output, torch.tensor([7])).item() == pytest.approx(expected.item())


def test_the_loss_scale_multiplies_the_decoded_output_inside_the_cross_entropy():
    # class 3 fires at t = 1 of T = 4 (O_3 = 0.75), nothing else: CE(s·O, 3) by hand
    output = torch.zeros(4, 1, 10)
    output[1:, 0, 3] = 1.0
    for scale in (1.0, 4.0):
        loss = make({"T": 4, "loss_scale": scale, "decoder": "linear"}).loss(output, torch.tensor([3])).item()
        assert loss == pytest.approx(-math.log(math.exp(0.75 * scale) / (math.exp(0.75 * scale) + 9)))


@pytest.mark.parametrize("hyperparameters", [{"decoder": "learned"}, {"decoder": "exp", "pool": "max"},
                                             {"init": "data", "norm": "none"}, {"input": "latency", "T": 2}])
@pytest.mark.parametrize("arch", [MLP, CNN], ids=["mlp", "cnn"])
def test_every_variant_honours_the_contract(hyperparameters, arch):
    method = make(hyperparameters, arch)
    method.initialize(method.encode(torch.rand(16, *SHAPE)))
    check_contract(method, method.encode(torch.rand(3, *SHAPE)), 3)


def test_the_learned_decoder_is_trained_and_saved_with_the_network():
    method = make({"decoder": "learned"})
    names = [name for name, _ in method.network.named_parameters()]
    assert "act_output.decoder.increments" in names
    assert "act_output.decoder.increments" in method.network.state_dict()


# --- training ---------------------------------------------------------------------------------


def test_a_tiny_training_run_lowers_the_loss_and_keeps_one_spike_per_neuron():
    images, labels = digits()
    method = make({"T": 4}, ArchSpec(kind="mlp", hidden=[64]))
    before = full_loss(method, images, labels)
    train_briefly(method, images, labels)
    after = full_loss(method, images, labels)
    assert after < before - 0.1
    with torch.no_grad():
        accuracy = (method.readout(method.forward(images)).prediction == labels).double().mean().item()
    assert accuracy > 0.5
    counts = neuron_spike_counts(method, images)
    assert all(c.max() <= 1 for c in counts.values())


def test_a_tie_at_the_first_output_spike_goes_to_the_class_that_crossed_the_threshold_by_most():
    # T = 3, θ = 1: classes 2 and 5 both cross at t = 0 (H = 1.2 and 1.7): membrane picks 5, the
    # decoder's O (1 for both) picks the lower index 2; no spike at all -> argmax of H[T-1]
    output = torch.zeros(3, 2, 10)
    output[:, 0, 2], output[:, 0, 5] = 1.2, 1.7
    output[:, 1, 4], output[:, 1, 8] = torch.tensor([0.1, 0.3, 0.6]), torch.tensor([0.2, 0.4, 0.5])
    by_membrane = make({"T": 3}).readout(output)
    by_decoder = make({"T": 3, "tie_break": "decoder"}).readout(output)
    assert by_membrane.prediction.tolist() == [5, 4]
    assert by_decoder.prediction.tolist() == [2, 0]  # sample 1: all O = 0 -> the lowest index
    assert by_membrane.decision_step.tolist() == by_decoder.decision_step.tolist() == [1, 3]


def test_the_output_layer_fires_like_the_single_spike_neuron_with_the_same_gradient():
    torch.manual_seed(0)
    current = torch.randn(6, 4, 10, requires_grad=True)
    reference = SingleSpikeIF(threshold=0.8, slope=4.0)(current)
    output = SingleSpikeOutput(threshold=0.8, slope=4.0)
    spikes = output.spikes(output(current))
    assert torch.equal(spikes, reference)
    assert torch.equal(output.events(output(current)), reference.detach())
    weights = torch.randn(6, 4, 10)
    (grad_reference,) = torch.autograd.grad((reference * weights).sum(), current)
    (grad_output,) = torch.autograd.grad((spikes * weights).sum(), current)
    assert torch.allclose(grad_output, grad_reference, atol=1e-6)
    assert grad_reference.abs().sum() > 0
