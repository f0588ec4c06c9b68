"""The spiking engine: LIF dynamics stepped by hand, surrogates, folding, architectures."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmark.contract.semantics import EventKind
from snn.arch import ArchSpec, build_network
from snn.engine import LIF, lif_step, spike
from snn.layers import Folded


def test_lif_soft_reset_follows_the_equations_step_by_step():
    # β = 0.5, θ = 1, I = 0.6, 0.8, 0.3, V[-1] = 0:
    #   t=0: H = 0.5·0 + 0.6 = 0.6   S = 0   V = 0.6
    #   t=1: H = 0.5·0.6 + 0.8 = 1.1 S = 1   V = 1.1 − 1 = 0.1
    #   t=2: H = 0.5·0.1 + 0.3 = 0.35 S = 0  V = 0.35
    current = torch.tensor([[0.6], [0.8], [0.3]])
    membrane = torch.zeros(1)
    expected = [(0.6, 0.0, 0.6), (1.1, 1.0, 0.1), (0.35, 0.0, 0.35)]
    for t, (h_expected, s_expected, v_expected) in enumerate(expected):
        h = 0.5 * membrane + current[t]
        s, membrane = lif_step(current[t], membrane, beta=0.5, threshold=1.0, reset="subtract",
                               surrogate="sigmoid", slope=4.0)
        assert h.item() == pytest.approx(h_expected)
        assert s.item() == s_expected
        assert membrane.item() == pytest.approx(v_expected)
    layer = LIF(beta=0.5, threshold=1.0, reset="subtract")
    assert layer(current).flatten().tolist() == [0.0, 1.0, 0.0]


def test_lif_hard_reset_zeroes_the_membrane_after_a_spike():
    # Same input, reset "zero": V[1] = 1.1·(1 − 1) = 0, so H[2] = 0.5·0 + 0.3 = 0.3.
    membrane = torch.zeros(1)
    for value in (0.6, 0.8):
        _, membrane = lif_step(torch.tensor([value]), membrane, beta=0.5, threshold=1.0, reset="zero",
                               surrogate="sigmoid", slope=4.0)
    assert membrane.item() == 0.0


def test_integrate_and_fire_spikes_every_fourth_step_on_a_constant_0_3():
    # β = 1: V accumulates 0.3, 0.6, 0.9, 1.2 → spike at t = 3, V = 0.2; then 0.5, 0.8, 1.1 → spike at t = 6.
    spikes = LIF(beta=1.0)(torch.full((8, 1), 0.3)).flatten().tolist()
    assert spikes == [0, 0, 0, 1, 0, 0, 1, 0]


@pytest.mark.parametrize(
    "surrogate, slope, x, expected",
    [
        ("sigmoid", 4.0, 0.0, 4.0 * 0.5 * 0.5),                        # α·σ(0)·(1 − σ(0))
        ("fast_sigmoid", 2.0, 0.5, 1 / (1 + 2.0 * 0.5) ** 2),           # 1 / (1 + α|x|)²
        ("atan", 2.0, 0.0, 2.0 / 2),                                   # α / (2·(1 + 0))
        ("atan", 2.0, 0.5, 2.0 / (2 * (1 + (math.pi / 2 * 2.0 * 0.5) ** 2))),
    ],
)
def test_surrogate_gradient_matches_its_formula(surrogate, slope, x, expected):
    point = torch.tensor([x], requires_grad=True)
    out = spike(point, surrogate, slope)
    out.sum().backward()
    assert out.item() == 1.0  # Θ(x) with Θ(0) = 1
    assert point.grad.item() == pytest.approx(expected)


def test_lif_passes_gradients_back_through_time():
    current = torch.full((4, 2, 3), 0.4, requires_grad=True)
    LIF(beta=0.9, threshold=1.0)(current).sum().backward()
    assert current.grad is not None and current.grad.abs().sum() > 0


def test_lif_declares_binary_events_and_its_update_cost():
    assert LIF(beta=1.0).op_semantics.event_kind is EventKind.BINARY
    assert (LIF(beta=1.0).op_semantics.update_acs, LIF(beta=1.0).op_semantics.update_macs) == (1, 0)
    assert LIF(beta=0.9).op_semantics.update_macs == 1  # the leak β·V is a multiplication


def test_lif_holds_no_state_between_calls():
    layer = LIF(beta=0.9)
    x = torch.rand(5, 2, 4) * 2
    assert torch.equal(layer(x), layer(x))


def test_folded_layer_equals_the_layer_applied_at_every_step():
    linear = nn.Linear(4, 3)
    x = torch.randn(5, 2, 4)
    assert torch.allclose(Folded(linear)(x), torch.stack([linear(x_t) for x_t in x]))


@pytest.mark.parametrize(
    "arch, expected_linear",
    [
        (ArchSpec(kind="mlp", hidden=[400, 400]), [(784, 400), (400, 400), (400, 10)]),
        (ArchSpec(kind="cnn", conv=[32, "M", 64, "M"], hidden=[256]), [(64 * 7 * 7, 256), (256, 10)]),
    ],
)
def test_build_network_sizes_layers_from_the_input_shape(arch, expected_linear):
    network = build_network(arch, (1, 28, 28), 10, make_neuron=lambda name: LIF())
    linears = [(m.in_features, m.out_features) for m in network.modules() if isinstance(m, nn.Linear)]
    assert linears == expected_linear
    assert network(torch.rand(3, 2, 1, 28, 28)).shape == (3, 2, 10)


def test_build_network_uses_the_requested_pooling():
    arch = ArchSpec(kind="cnn", conv=[4, "M"], hidden=[])
    avg = build_network(arch, (1, 8, 8), 10, make_neuron=lambda name: LIF())
    mx = build_network(arch, (1, 8, 8), 10, make_neuron=lambda name: LIF(), pool="max")
    assert any(isinstance(m, nn.AvgPool2d) for m in avg.modules())
    assert any(isinstance(m, nn.MaxPool2d) for m in mx.modules())
