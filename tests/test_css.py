"""`css`: the TSA neuron stepped by hand, its decoding bound, the temporal-coupling error without
negative spikes, the accumulating output, and the converted network (METHODS.md §6)."""

from __future__ import annotations

import pytest
import torch

from benchmark.contract.registry import check_contract, create_method
from benchmark.metrics.ops import OpCounter
from methods.css import SignedDigitOutput, TSANeuron, digit_sum, tsa_step
from tests.test_conversion import CNN, MLP, SHAPE, calibration_set, digits, predictions, trained


def _neuron(threshold: float, window: int, silent: int = 0, beta: float = 2.0, negative: bool = True) -> TSANeuron:
    return TSANeuron(beta, threshold, window, start=silent, bias_step=0, negative_spikes=negative)


def _decode(spikes: torch.Tensor, threshold: float, silent: int, beta: float = 2.0) -> torch.Tensor:
    """â = c·Σ_k s[t0 + k]·β^(−k), c = V/β^d; spikes `[T_total, ...]`, the window starting at t0 = d."""
    window = spikes[silent:]
    weights = beta ** -torch.arange(len(window), dtype=spikes.dtype)
    return threshold / beta ** silent * (window * weights.view(-1, *([1] * (window.ndim - 1)))).sum(0)


def test_tsa_neuron_by_hand_for_a_constant_input():
    # V = 1, β = 2, T = 4, d = 0, the value 0.7 injected at t = 0; fire +1 at u ≥ 0.5, −1 at u ≤ −0.5:
    #   t=0: u = 0.7            → s = +1, u = −0.3, sent = 1
    #   t=1: u = −0.6           → s = −1, u = +0.4, sent = 1 − 1/2 = 0.5
    #   t=2: u = 0.8            → s = +1, u = −0.2, sent = 0.5 + 1/4 = 0.75
    #   t=3: u = −0.4           → s =  0, u = −0.4, sent = 0.75
    # â = c·0.75 = 0.75 (c = V/β^0 = 1); |0.7 − 0.75| = 0.05 ≤ V·β^(−T) = 1/16; u = β³·(0.7 − 0.75)
    expected = [(0.7, 1.0, -0.3, 1.0), (-0.6, -1.0, 0.4, 0.5), (0.8, 1.0, -0.2, 0.75), (-0.4, 0.0, -0.4, 0.75)]
    state = (torch.zeros(1), torch.zeros(1))
    for k, (u_expected, s_expected, v_expected, sent_expected) in enumerate(expected):
        u_before = 2.0 * state[0] + (0.7 if k == 0 else 0.0)
        s, state = tsa_step(torch.tensor([0.7 if k == 0 else 0.0]), state, beta=2.0, threshold=1.0,
                            digit=2.0 ** -k, fire=True, negative_spikes=True)
        assert u_before.item() == pytest.approx(u_expected)
        assert s.item() == s_expected
        assert state[0].item() == pytest.approx(v_expected) and state[1].item() == pytest.approx(sent_expected)
    spikes = _neuron(1.0, 4)(torch.tensor([[0.7], [0.0], [0.0], [0.0]]))
    assert spikes.flatten().tolist() == [1.0, -1.0, 1.0, 0.0]
    decoded = _decode(spikes, 1.0, 0).item()
    assert decoded == pytest.approx(0.75) and abs(0.7 - decoded) <= 1.0 * 2.0 ** -4


def test_the_bias_is_injected_once_at_its_step():
    neuron = _neuron(1.0, 4)
    neuron.bias = torch.tensor(0.7)
    assert neuron(torch.zeros(4, 1)).flatten().tolist() == [1.0, -1.0, 1.0, 0.0]


@pytest.mark.parametrize("beta", [1.5, 2.0, 3.0])
@pytest.mark.parametrize("silent", [0, 1])
@pytest.mark.parametrize("window", [3, 6])
def test_any_value_in_0_to_lambda_decodes_within_half_the_last_digit(beta, silent, window):
    # λ = 1: V = β^d/S_T; |z − â| ≤ (V/2)·β^(−(d+T−1)) for every 0 ≤ z ≤ λ
    threshold = beta ** silent / digit_sum(beta, window)
    z = torch.linspace(0, 1, 401)
    current = torch.zeros(window + silent, len(z))
    current[0] = z
    spikes = _neuron(threshold, window, silent, beta)(current)
    error = (z - _decode(spikes, threshold, silent, beta)).abs().max().item()
    assert error <= threshold / 2 * beta ** -(silent + window - 1) + 1e-6
    assert set(spikes.unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_a_negative_value_never_fires_the_relu_guard():
    spikes = _neuron(1.0, 4)(torch.tensor([[-0.3], [0.0], [0.0], [0.0]]))
    assert spikes.abs().sum() == 0


# The input reaches the neuron digit by digit (I[t] = its t-th weighted digit): z = Σ_t I[t]·2^(−t).
# A: I = 0.75, −0.5 → z = 0.5.  d = 0, V = 1 (c = 1), T = 3:
#      negative spikes: t0 u = 0.75 → +1 (u = −0.25); t1 u = −0.5 − 0.5 = −1 → −1 (u = 0); â = 1 − 1/2 = 0.5
#      none:            t0 → +1; t1 u = −1 → 0; t2 u = −2 → 0;                             â = 1: error 0.5
# B: I = 0.75, −0.7 → z = 0.4.
#      d = 0, none:     t0 → +1 on the partial input 0.75, never taken back;              â = 1: error 0.6
#      d = 0, negative: t1 u = −0.5 − 0.7 = −1.2 → −1 (u = −0.2); t2 u = −0.4 → 0;          â = 0.5: error 0.1
#      d = 1, none (V = 2, c = V/β = 1): t0 u = 0.75 silent; t1 u = 1.5 − 0.7 = 0.8 < 1 → 0;
#                       t2 u = 1.6 → +1 (u = −0.4); t3 u = −0.8 → 0;                       â = 1/2: error 0.1
# The bound (V/2)·β^(−(d+T−1)) is 1/8 in every case.
@pytest.mark.parametrize(
    "current, silent, negative, decoded",
    [
        ([0.75, -0.5], 0, True, 0.5),
        ([0.75, -0.5], 0, False, 1.0),
        ([0.75, -0.7], 0, False, 1.0),
        ([0.75, -0.7], 0, True, 0.5),
        ([0.75, -0.7], 1, False, 0.5),
    ],
    ids=["A-negative", "A-none", "B-none", "B-negative", "B-silent-period-none"],
)
def test_without_negative_spikes_a_digit_fired_on_partial_input_is_the_temporal_coupling_error(
        current, silent, negative, decoded):
    threshold, window = 2.0 ** silent, 3
    steps = torch.zeros(window + silent, 1)
    steps[:len(current), 0] = torch.tensor(current)
    z = sum(value * 2.0 ** -t for t, value in enumerate(current))
    spikes = _neuron(threshold, window, silent, negative=negative)(steps)
    assert _decode(spikes, threshold, silent).item() == pytest.approx(decoded)
    coupled = abs(z - decoded) > threshold / 2 * 2.0 ** -(silent + window - 1)
    assert coupled == (not negative and silent == 0)


def test_the_output_accumulates_with_the_same_beta_and_reads_the_logit():
    # β = 2, start = 1, b = 0.5, I = 0, 1, −1, 1:
    #   t0: U = 0 (before start)  O = 0;  t1: U = 1 + 0.5 = 1.5  O = 1.5;  t2: U = 3 − 1 = 2  O = 2/2 = 1
    #   t3: U = 4 + 1 = 5  O = 5/4 = 1.25 = (1 − 1/2 + 1/4) + 0.5: the digits' value plus the bias
    output = SignedDigitOutput(2.0, start=1)
    output.bias = torch.tensor([0.5])
    result = output(torch.tensor([[0.0], [1.0], [-1.0], [1.0]])).flatten().tolist()
    assert result == pytest.approx([0.0, 1.5, 1.0, 1.25])


@pytest.mark.parametrize("arch, layers", [(MLP, 1), (CNN, 2)], ids=["mlp", "cnn"])
def test_the_time_axis_is_T_plus_d_times_L_and_every_layer_waits_its_silent_period(arch, layers):
    method = create_method("css", {"T": 8}, arch, SHAPE, 10)
    assert method.T == 8 + layers
    neurons = [m for m in method.network.modules() if isinstance(m, TSANeuron)]
    assert [(n.bias_step, n.start, n.window) for n in neurons] == [(l - 1, l, 8) for l in range(1, layers + 1)]
    assert all(n.threshold == pytest.approx(2.0 / (2 - 2 ** -7)) for n in neurons)  # V = β^d/S_8
    encoded = method.encode(torch.rand(2, *SHAPE))
    assert encoded.shape[0] == 8 + layers and encoded[1:].abs().sum() == 0
    check_contract(method, method.encode(torch.rand(3, *SHAPE)), 3)
    assert method.readout(method.forward(torch.rand(2, *SHAPE))).decision_step.tolist() == [8 + layers] * 2


@pytest.mark.parametrize("arch", [MLP, CNN], ids=["mlp", "cnn-bn-avgpool"])
def test_a_converted_network_at_T_8_matches_its_ann(arch):
    _, _, test_x, _ = digits()
    reference = predictions(trained("ann", arch), test_x)
    agreement = {}
    for variant in ({}, {"negative_spikes": False}):
        method = create_method("css", {"T": 8, **variant}, arch, SHAPE, 10)
        method.convert(trained("ann", arch), calibration_set())
        agreement[bool(variant)] = (predictions(method, test_x) == reference).double().mean().item()
    assert agreement[False] >= 0.99
    assert agreement[True] <= agreement[False]


def test_ternary_events_are_counted_as_signed_acs_and_the_image_as_macs_once():
    method = create_method("css", {"T": 4}, MLP, SHAPE, 10)
    method.convert(trained("ann", MLP), calibration_set())
    images = digits()[2][:20]
    with OpCounter(method.network, method.input_semantics) as counter:
        method.forward(images)
    counts = counter.compute()
    fc1, neurons, output, accumulator = counts.layers  # the T + d·L = 5 steps of one sample:
    assert fc1["macs"] == pytest.approx((images != 0).sum().item() / 20 * 32)  # the image, at t = 0 only
    assert neurons["event_kind_out"] == "ternary" and neurons["out_bits"] == 2
    assert output["event_kind_in"] == "ternary" and output["acs"] == pytest.approx(neurons["spikes"] * 10)
    assert neurons["update_acs"] == 32 * 5 and accumulator["update_acs"] == 10 * 5  # one shift-and-add a step
    assert counts.totals["macs"] == fc1["macs"]


def test_the_converted_model_survives_save_and_load():
    method = create_method("css", {"T": 6, "beta": 1.5}, CNN, SHAPE, 10)
    method.convert(trained("ann", CNN), calibration_set())
    fresh = create_method("css", {"T": 6, "beta": 1.5}, CNN, SHAPE, 10)
    fresh.network.load_state_dict(method.network.state_dict())
    images = torch.rand(4, *SHAPE)
    assert torch.equal(fresh.forward(images), method.forward(images))


@pytest.mark.parametrize("beta", [0.5, 4.0])
def test_beta_outside_1_to_3_is_refused(beta):
    from benchmark.contract.errors import ConfigError

    with pytest.raises(ConfigError, match=r"methods\.css\.beta"):
        create_method("css", {"beta": beta}, MLP, SHAPE, 10)
