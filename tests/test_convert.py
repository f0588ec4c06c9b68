"""`convert`: rate-coded IF conversion with data-based normalization (METHODS.md §5)."""

from __future__ import annotations

import pytest
import torch

from benchmark.contract.registry import check_contract, create_method
from benchmark.contract.semantics import EventKind
from benchmark.metrics.ops import OpCounter
from snn.conversion import Integrator
from snn.engine import LIF
from tests.test_conversion import CNN, MLP, SHAPE, calibration_set, digits, predictions, trained


def _converted(arch, **hyperparameters):
    method = create_method("convert", hyperparameters, arch, SHAPE, 10)
    method.convert(trained("ann", arch), calibration_set())
    return method


def test_the_integrator_emits_the_running_mean_of_its_current():
    # I = 1, 3, 2 → U = 1, 4, 6 → O = 1/1, 4/2, 6/3
    assert Integrator()(torch.tensor([[1.0], [3.0], [2.0]])).flatten().tolist() == [1.0, 2.0, 2.0]


def test_the_skeleton_is_integrate_and_fire_with_soft_reset_and_threshold_one():
    method = create_method("convert", {}, MLP, SHAPE, 10)
    neurons = [m for m in method.network.modules() if isinstance(m, LIF)]
    assert len(neurons) == 1
    assert (neurons[0].beta, neurons[0].threshold, neurons[0].reset, neurons[0].initial_membrane) == (1.0, 1.0, "subtract", 0.0)


@pytest.mark.parametrize("arch", [MLP, CNN], ids=["mlp", "cnn-bn-avgpool"])
def test_a_converted_network_with_large_T_matches_its_ann(arch):
    _, _, test_x, _ = digits()
    ann = trained("ann", arch)
    snn = _converted(arch, T=128, norm="max")
    agreement = (predictions(snn, test_x) == predictions(ann, test_x)).double().mean()
    assert agreement >= 0.99


def test_agreement_grows_with_T():
    _, _, test_x, _ = digits()
    reference = predictions(trained("ann", MLP), test_x)
    agree = [(predictions(_converted(MLP, T=T), test_x) == reference).double().mean() for T in (2, 64)]
    assert agree[0] < agree[1]


def test_contract_decision_step_and_op_counts():
    method = _converted(MLP, T=5)
    images = torch.rand(3, *SHAPE) + 0.01  # every pixel nonzero
    check_contract(method, method.encode(images), len(images))
    assert method.readout(method.forward(images)).decision_step.tolist() == [5, 5, 5]
    with OpCounter(method.network, method.input_semantics) as counter:
        method.forward(images)
    counts = counter.compute()
    first, hidden_neurons, output = counts.layers[0], counts.layers[1], counts.layers[2]  # fc1, act_fc1, output
    # the analog image is held over the steps (a constant input): its products are charged once, 64 pixels
    # × fan-out 32; the per-step figure stays beside it (× T = 5)
    assert first["macs"] == 64 * 32 and first["acs"] == 0 and first["constant_input"]
    assert first["macs_every_step"] == 64 * 32 * 5
    assert hidden_neurons["type"] == "LIF" and hidden_neurons["event_kind_out"] == EventKind.BINARY.value
    assert output["event_kind_in"] == "binary" and output["acs"] == pytest.approx(hidden_neurons["spikes"] * 10)
    assert counts.totals["macs"] == first["macs"]


def test_the_converted_model_survives_save_and_load():
    method = _converted(MLP, T=8)
    fresh = create_method("convert", {"T": 8}, MLP, SHAPE, 10)
    fresh.network.load_state_dict(method.network.state_dict())
    images = torch.rand(4, *SHAPE)
    assert torch.equal(fresh.forward(images), method.forward(images))
