"""`qcfs-ann` and `qcfs`: the quantization-clip-floor-shift activation and its IF conversion (METHODS.md §5)."""

from __future__ import annotations

import copy

import pytest
import torch

from benchmark.contract.registry import check_contract, create_method
from benchmark.metrics.ops import OpCounter
from methods.qcfs import QCFS, qcfs
from snn.conversion import ConversionError, fold_network, normalize
from snn.engine import LIF
from tests.test_conversion import CNN, MLP, SHAPE, calibration_set, digits, predictions, trained

# λ = 2, L = 4: steps of λ/L = 0.5; h(z) = 2·clip(floor(2z + 1/2)/4, 0, 1)
#   z = −1    floor(−1.5) = −2 → clip → 0
#   z = 0.2   floor(0.9)  = 0  → 0
#   z = 0.3   floor(1.1)  = 1  → 2·1/4 = 0.5
#   z = 0.74  floor(1.98) = 1  → 0.5
#   z = 0.76  floor(2.02) = 2  → 1.0
#   z = 1.8   floor(4.1)  = 4  → 2.0
#   z = 3     floor(6.5)  = 6  → clip 1 → 2.0
HAND = [(-1.0, 0.0), (0.2, 0.0), (0.3, 0.5), (0.74, 0.5), (0.76, 1.0), (1.8, 2.0), (3.0, 2.0)]


def test_qcfs_forward_values_by_hand():
    z = torch.tensor([z for z, _ in HAND])
    assert qcfs(z, torch.tensor(2.0), levels=4).tolist() == pytest.approx([h for _, h in HAND])


def test_qcfs_floor_is_straight_through_and_lambda_gets_its_gradient():
    # 0 < z < λ: ∂h/∂z = 1, ∂h/∂λ = h/λ − z/λ;  z > λ: ∂h/∂z = 0, ∂h/∂λ = 1;  z < 0: both 0
    z = torch.tensor([-1.0, 0.2, 0.3, 3.0], requires_grad=True)
    lam = torch.tensor(2.0, requires_grad=True)
    h = qcfs(z, lam, levels=4)
    h.sum().backward()
    assert z.grad.tolist() == [0.0, 1.0, 1.0, 0.0]  # 0.2 is rounded down to 0 and still passes its gradient
    expected = 0 + (0.0 / 2 - 0.2 / 2) + (0.5 / 2 - 0.3 / 2) + 1.0
    assert lam.grad.item() == pytest.approx(expected)


def test_lambda_is_a_trainable_parameter_per_layer():
    method = create_method("qcfs-ann", {"levels": 4, "lambda_init": 3.0}, CNN, SHAPE, 10)
    activations = [m for m in method.network.modules() if isinstance(m, QCFS)]
    assert len(activations) == 2 and all(m.levels == 4 and m.lam.item() == 3.0 for m in activations)
    parameters = {id(p) for p in method.network.parameters()}
    assert all(id(m.lam) in parameters for m in activations)
    optimizer = torch.optim.Adam(method.network.parameters(), lr=0.1)
    method.loss(method.forward(torch.rand(8, *SHAPE) * 4), torch.arange(8)).backward()
    optimizer.step()
    assert all(m.lam.item() != 3.0 for m in activations)


def test_the_qcfs_ann_must_run_one_step():
    with pytest.raises(ValueError, match=r"qcfs-ann\.T must be 1"):
        create_method("qcfs-ann", {"T": 4}, MLP, SHAPE, 10)


def test_the_snn_is_if_with_soft_reset_and_membrane_starting_at_half_threshold():
    method = create_method("qcfs", {}, MLP, SHAPE, 10)
    (neuron,) = [m for m in method.network.modules() if isinstance(m, LIF)]
    assert (neuron.beta, neuron.threshold, neuron.reset, neuron.initial_membrane) == (1.0, 1.0, "subtract", 0.5)


def test_normalization_preserves_the_qcfs_ann_outputs():
    # h(z; λ)/λ = h(z/λ; 1): with W_l·λ_{l−1}/λ_l, b_l/λ_l and every λ set to 1, the logits are the same
    ann = trained("qcfs-ann", CNN)
    folded = fold_network(ann.network, activations=(QCFS,))
    normalized = normalize(folded, {name: float(m.lam.detach()) for name, m in folded.named_children() if isinstance(m, QCFS)})
    for module in normalized.modules():
        if isinstance(module, QCFS):
            module.lam.data.fill_(1.0)
    x = digits()[2][:50].unsqueeze(0)
    with torch.no_grad():
        assert torch.allclose(normalized(x), ann.network(x), atol=1e-4)


def test_at_T_equal_L_one_hidden_layer_reproduces_the_qcfs_ann_logits():
    # The hidden layer gets a constant current z/λ; starting at θ/2 it fires floor(z·L/λ + 1/2) times
    # in T = L steps (clipped to 0..L), so its rate is h(z)/λ and the output's mean current is W·h + b.
    ann = trained("qcfs-ann", MLP)
    snn = create_method("qcfs", {"T": 8}, MLP, SHAPE, 10)
    snn.convert(ann, calibration_set())
    x = digits()[2]
    with torch.no_grad():
        assert torch.allclose(snn.forward(x)[-1], ann.forward(x)[-1], atol=1e-4)
    assert torch.equal(predictions(snn, x), predictions(ann, x))


def test_a_deeper_converted_network_agrees_with_its_qcfs_ann_at_T_8():
    _, _, test_x, _ = digits()
    ann = trained("qcfs-ann", CNN)
    snn = create_method("qcfs", {"T": 8}, CNN, SHAPE, 10)
    snn.convert(ann, calibration_set())
    assert (predictions(snn, test_x) == predictions(ann, test_x)).double().mean() >= 0.95


def test_a_relu_ann_is_not_a_qcfs_source_and_the_error_names_the_layer():
    snn = create_method("qcfs", {}, MLP, SHAPE, 10)
    with pytest.raises(ConversionError, match=r"layer 'act_fc1' \(ReLU\).*QCFS only"):
        snn.convert(trained("ann", MLP), calibration_set())


def test_a_non_positive_lambda_is_an_error_naming_the_layer():
    ann = copy.deepcopy(trained("qcfs-ann", MLP))
    ann.network.act_fc1.lam.data.fill_(-1.0)
    with pytest.raises(ConversionError, match=r"'act_fc1' has a trained λ = -1"):
        create_method("qcfs", {}, MLP, SHAPE, 10).convert(ann, [])


@pytest.mark.parametrize("name", ["qcfs-ann", "qcfs"])
def test_contract_and_op_counts(name):
    method = create_method(name, {}, CNN, SHAPE, 10)
    check_contract(method, method.encode(torch.rand(3, *SHAPE)), 3)
    with OpCounter(method.network, method.input_semantics) as counter:
        method.forward(torch.rand(2, *SHAPE))
    counts = counter.compute()
    assert counts.T == method.T and counts.totals["macs"] > 0
    kinds = {layer["name"]: layer["event_kind_in"] for layer in counts.layers}
    assert kinds["fc1"] == ("analog" if name == "qcfs-ann" else "binary")


def test_data_driven_lambda_is_each_layers_p99_9_pre_activation_in_order():
    # one pixel x = 1..1000, fc1 and fc2 the identity (1 → 1 → 1), L = 4.
    # λ1 = p99.9 of z1 = x: the 999th smallest of 1000 (nearest rank) = 999.
    # h1 = 999·floor(clip(x/999, 0, 1)·4 + 1/2)/4 = 999 for x ≥ 875 (126 samples), so λ2 = p99.9 of z2 = h1 = 999.
    # Had layer 2 seen h1 under the placeholder λ1 = 1, every h1 would be 1 and λ2 = 1.
    arch = MLP.model_copy(update={"hidden": [1, 1]})
    method = create_method("qcfs-ann", {"levels": 4}, arch, (1, 1, 1), 2)
    for layer in (method.network.fc1.layer, method.network.fc2.layer):
        layer.weight.data.fill_(1.0)
        layer.bias.data.zero_()
    method.initialize(torch.arange(1.0, 1001.0).view(1000, 1, 1, 1))
    assert [m.lam.item() for m in method.network.modules() if isinstance(m, QCFS)] == [999.0, 999.0]


def test_a_number_for_lambda_init_starts_every_layer_there_and_initialize_keeps_it():
    method = create_method("qcfs-ann", {"lambda_init": 8.0}, MLP, SHAPE, 10)
    method.initialize(torch.rand(16, *SHAPE))
    assert [m.lam.item() for m in method.network.modules() if isinstance(m, QCFS)] == [8.0]


@pytest.mark.parametrize("value", [0.0, -1.0, "max"])
def test_lambda_init_must_be_data_or_a_positive_number(value):
    with pytest.raises(Exception, match="lambda_init"):
        create_method("qcfs-ann", {"lambda_init": value}, MLP, SHAPE, 10)
