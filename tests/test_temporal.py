"""Shared temporal parts (snn/temporal.py): the single-spike IF neuron stepped by hand, the
decoders on hand-computed values, the first-spike readout, latency input coding."""

from __future__ import annotations

import math

import pytest
import torch

from snn.temporal import (
    SingleSpikeIF,
    SingleSpikeState,
    TemporalDecoder,
    decoder_weights,
    first_spike_readout,
    first_spike_times,
    initial_state,
    latency_encode,
    latency_times,
    single_spike_sequence,
    single_spike_step,
    spikes_at,
)

# --- the neuron -------------------------------------------------------------------------------


def test_single_spike_neuron_follows_the_equations_step_by_step():
    # θ = 1, two neurons, I = (0.6, 0.2), (0.7, 0.3), (0.5, 0.6); V[-1] = M[-1] = 0:
    #   t=0: H = (0.6, 0.2)        S = Θ(H − 1)·(1 − 0)       = (0, 0)   M = (0, 0)  V = H
    #   t=1: H = (1.3, 0.5)        S = (1, 0)·(1 − 0)          = (1, 0)   M = (1, 0)  V = H
    #   t=2: H = (1.8, 1.1)        S = (1, 1)·(1 − (1, 0))     = (0, 1)   M = (1, 1)  V = H
    # the first neuron is still above θ at t = 2 but its mask silences it.
    current = torch.tensor([[0.6, 0.2], [0.7, 0.3], [0.5, 0.6]])
    expected = [
        ([0.6, 0.2], [0.0, 0.0], [0.0, 0.0]),
        ([1.3, 0.5], [1.0, 0.0], [1.0, 0.0]),
        ([1.8, 1.1], [0.0, 1.0], [1.0, 1.0]),
    ]
    state = initial_state(current[0])
    assert state.membrane.tolist() == [0.0, 0.0] and state.fired.tolist() == [0.0, 0.0]
    for t, (h_expected, s_expected, m_expected) in enumerate(expected):
        s, state = single_spike_step(current[t], state, threshold=1.0)
        assert state.membrane.tolist() == pytest.approx(h_expected)  # V[t] = H[t]
        assert s.tolist() == s_expected
        assert state.fired.tolist() == m_expected
    module_spikes = SingleSpikeIF(threshold=1.0)(current)
    assert module_spikes.tolist() == [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]


def test_the_module_equals_the_pure_step_loop_in_values_and_gradients():
    torch.manual_seed(0)
    current = (torch.randn(6, 4, 5) * 0.8).requires_grad_()
    weights = torch.randn(6, 4, 5)

    state = initial_state(current[0])
    stepped = []
    for current_t in current:
        s, state = single_spike_step(current_t, state, threshold=0.7, surrogate="sigmoid", slope=4.0)
        stepped.append(s)
    stepped = torch.stack(stepped)
    (grad_step,) = torch.autograd.grad((stepped * weights).sum(), current)

    module_out = SingleSpikeIF(threshold=0.7, surrogate="sigmoid", slope=4.0)(current)
    (grad_module,) = torch.autograd.grad((module_out * weights).sum(), current)
    assert torch.equal(stepped, module_out)
    assert torch.equal(grad_step, grad_module)
    assert grad_module.abs().sum() > 0


def test_the_surrogate_gradient_of_a_single_spike_is_the_sigmoid_derivative_and_the_mask_is_charged():
    # One neuron, θ = 1, I = (1.2, 0.5): H = (1.2, 1.7); S = (1, 0) (masked at t = 1).
    # dS[0]/dI[0] = σ'(0.2) (α = 4);  S[1] = Θ(H[1] − 1)·(1 − S[0]) -> ∂S[1]/∂I[0] = σ'(0.7)·0 − Θ(0.7)·σ'(0.2)
    current = torch.tensor([[1.2], [0.5]], requires_grad=True)
    spikes = SingleSpikeIF(threshold=1.0, slope=4.0)(current)
    assert spikes.flatten().tolist() == [1.0, 0.0]

    def dsig(x: float) -> float:
        s = 1 / (1 + math.exp(-4 * x))
        return 4 * s * (1 - s)

    (grad,) = torch.autograd.grad(spikes[0, 0], current, retain_graph=True)
    assert grad.flatten().tolist() == pytest.approx([dsig(0.2), 0.0])
    (grad,) = torch.autograd.grad(spikes[1, 0], current)
    assert grad.flatten().tolist() == pytest.approx([-dsig(0.2), 0.0])


def test_no_neuron_fires_more_than_once_on_random_inputs():
    torch.manual_seed(1)
    current = torch.randn(16, 32, 50) * 2 + 0.5  # strong drive: most neurons cross θ, many repeatedly
    spikes = SingleSpikeIF(threshold=1.0)(current)
    assert spikes.sum(0).max() == 1
    assert spikes.sum() > 0.5 * 32 * 50  # not trivially silent


def test_a_state_of_the_wrong_shape_raises():
    with pytest.raises(ValueError, match="does not match the input current"):
        single_spike_step(torch.zeros(2, 3), SingleSpikeState(torch.zeros(2, 4), torch.zeros(2, 4)), threshold=1.0)


def test_the_sequence_returns_the_final_membrane_and_continues_from_a_state():
    current = torch.tensor([[0.4], [0.4], [0.4], [0.4]])
    spikes, state = single_spike_sequence(current, threshold=1.0)
    assert spikes.flatten().tolist() == [0, 0, 1, 0]  # H = 0.4, 0.8, 1.2 → fires at t = 2
    assert state.membrane.item() == pytest.approx(1.6) and state.fired.item() == 1
    first, mid = single_spike_sequence(current[:2], threshold=1.0)
    second, _ = single_spike_sequence(current[2:], mid, threshold=1.0)
    assert torch.equal(torch.cat([first, second]), spikes)


def test_the_layer_holds_no_state_between_calls():
    layer = SingleSpikeIF()
    x = torch.rand(4, 3, 7)
    first = layer(x)
    layer(torch.rand(4, 5, 2) * 3)
    assert torch.equal(layer(x), first)


# --- decoders ---------------------------------------------------------------------------------


def test_linear_and_exponential_decoder_weights_by_hand():
    # linear, T = 4: w = (4 − t)/4 = 1, .75, .5, .25;  exp, T = 3: w = 3^(−t/2) = 1, 1/√3, 1/3
    assert decoder_weights("linear", 4).tolist() == [1.0, 0.75, 0.5, 0.25]
    assert decoder_weights("exp", 3).tolist() == pytest.approx([1.0, 1 / math.sqrt(3), 1 / 3])
    assert decoder_weights("exp", 1).tolist() == [1.0]


def test_the_count_decoder_weighs_every_step_alike():
    spikes = torch.zeros(4, 1, 2)
    spikes[0, 0, 0] = spikes[3, 0, 1] = 1.0  # class 0 fires first, class 1 last
    assert TemporalDecoder("count", 4)(spikes).tolist() == [[1.0, 1.0]]
    assert TemporalDecoder("linear", 4)(spikes).tolist() == [[1.0, 0.25]]


def test_the_decoder_sums_weighted_spikes():
    # T = 4, B = 1, 3 classes: class 0 fires at t = 1, class 1 at t = 3, class 2 never.
    # linear: O = (0.75, 0.25, 0); cumulative o_t = ((0,0,0), (.75,0,0), (.75,0,0), (.75,.25,0))
    spikes = torch.zeros(4, 1, 3)
    spikes[1, 0, 0] = spikes[3, 0, 1] = 1
    decoder = TemporalDecoder("linear", 4)
    assert decoder(spikes).tolist() == [[0.75, 0.25, 0.0]]
    assert decoder.cumulative(spikes)[:, 0].tolist() == [[0, 0, 0], [0.75, 0, 0], [0.75, 0, 0], [0.75, 0.25, 0]]
    with pytest.raises(ValueError, match="T=4"):
        decoder(torch.zeros(5, 1, 3))


def test_the_learned_decoder_starts_linear_and_stays_strictly_decreasing():
    decoder = TemporalDecoder("learned", 6)
    assert decoder.weights().tolist() == pytest.approx(decoder_weights("linear", 6).tolist(), abs=1e-6)
    optimizer = torch.optim.SGD(decoder.parameters(), lr=5.0)
    for _ in range(50):  # push the late weights up and the early ones down, hard
        w = decoder.weights()
        loss = w[0] - w[-1] * 10
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    w = decoder.weights().detach()
    assert (w[:-1] > w[1:]).all()
    assert w[-1] > 0


# --- first-spike readout ----------------------------------------------------------------------


def test_first_spike_times_with_no_spike_as_T():
    spikes = torch.tensor([[0, 1, 0], [1, 1, 0], [0, 0, 0]]).float().unsqueeze(1)  # [T=3, B=1, 3]
    assert first_spike_times(spikes).tolist() == [[1, 0, 3]]


def test_the_readout_on_hand_made_spike_trains():
    T = 4
    spikes = torch.zeros(T, 4, 3)
    spikes[2, 0, 1] = spikes[3, 0, 0] = 1  # sample 0: class 1 first, at t = 2  -> 1, step 3
    spikes[0, 1, 2] = 1                    # sample 1: class 2 at t = 0         -> 2, step 1
    spikes[1, 2, 0] = spikes[1, 2, 2] = 1  # sample 2: tie at t = 1 (0 and 2)   -> the higher score
    #                                        sample 3: no spike                 -> argmax score, step T
    score = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.1, 5.0, 0.3], [0.2, 0.9, 0.1]])
    readout = first_spike_readout(spikes, score)
    assert readout.prediction.tolist() == [1, 2, 2, 1]  # sample 2: class 1 scores 5 but fired never
    assert readout.decision_step.tolist() == [3, 1, 2, 4]


def test_a_tie_with_equal_scores_goes_to_the_lowest_class_and_a_last_step_spike_decides_at_T():
    spikes = torch.zeros(3, 2, 4)
    spikes[1, 0, 1] = spikes[1, 0, 3] = 1
    spikes[2, 1, 2] = 1
    score = torch.ones(2, 4)
    readout = first_spike_readout(spikes, score)
    assert readout.prediction.tolist() == [1, 2]
    assert readout.decision_step.tolist() == [2, 3]


# --- latency input coding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "x, T, expected",
    [
        (1.0, 8, 0),    # round(0·7) = 0: the brightest pixel fires first
        (0.0, 8, 7),    # round(1·7) = 7: a black pixel fires last
        (0.5, 8, 4),    # round(3.5) = 4
        (0.6, 8, 3),    # round(2.8) = 3
        (0.5, 6, 3),    # round(2.5) = 3: half up (torch.round would give 2, half to even)
        (0.3, 1, 0),    # T = 1: everything at t = 0
    ],
)
def test_latency_times_on_hand_picked_intensities(x, T, expected):
    assert latency_times(torch.tensor([x]), T).item() == expected
    encoded = latency_encode(torch.tensor([x]), T)
    assert encoded.shape == (T, 1)
    assert encoded[:, 0].tolist() == [1.0 if t == expected else 0.0 for t in range(T)]


def test_latency_coding_is_per_sample_and_independent_of_the_batch():
    torch.manual_seed(0)
    images = torch.rand(5, 1, 4, 4)
    batch = latency_encode(images, 8)
    for index in range(5):
        alone = latency_encode(images[index:index + 1], 8)
        assert torch.equal(alone[:, 0], batch[:, index])
    brighter_neighbours = torch.cat([images[:1], torch.ones(4, 1, 4, 4)])
    assert torch.equal(latency_encode(brighter_neighbours, 8)[:, 0], batch[:, 0])
    assert batch.sum(0).eq(1).all()  # one spike per pixel


def test_latency_coding_rejects_intensities_outside_0_1():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        latency_encode(torch.tensor([1.5]), 4)


def test_spikes_at_puts_no_spike_for_a_time_outside_the_window():
    assert spikes_at(torch.tensor([0, 2, 3]), 3).T.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
