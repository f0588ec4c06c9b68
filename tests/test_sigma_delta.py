"""The `sigma-delta` method (methods/sigma_delta.py, SpikingGamma): the shared reconstruction, the
settled code's error bound, the gamma cascade's impulse response, gradients without surrogates, a
hand-stepped network, the trace and event forms' equivalence, per-step training, op semantics."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from benchmark.contract.errors import ConfigError
from benchmark.contract.registry import check_contract, create_method
from benchmark.contract.semantics import EventKind
from benchmark.metrics.ops import OpCounter
from methods.sigma_delta import (GammaReadout, GammaSigmaDelta, gamma_memory_step, network_step, receive,
                                 sigma_delta_step, trace_step)
from snn import engine
from snn.arch import ArchSpec
import methods.sigma_delta  # noqa: F401  (import registers `sigma-delta`)

MLP = ArchSpec(kind="mlp", hidden=[12, 10])
CNN = ArchSpec(kind="cnn", conv=[3, "M"], hidden=[8])
SHAPE = (1, 6, 6)


def make(hyperparameters: dict | None = None, arch: ArchSpec = MLP, shape=SHAPE, classes: int = 10, seed: int = 0):
    torch.manual_seed(seed)
    return create_method("sigma-delta", hyperparameters or {}, arch, shape, classes)


def tau_for(alpha: float) -> float:
    """τ such that exp(−1/τ) = α (Δt = 1)."""
    return -1.0 / math.log(alpha)


class CountingOptimizer:
    """What `train_step` asks of an optimizer, no update: counts steps and leaves the gradients
    to look at (and builds no torch.optim optimizer, whose first construction imports for seconds)."""

    def __init__(self, parameters):
        self.parameters, self.steps = list(parameters), 0

    def zero_grad(self, set_to_none: bool = True) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    def step(self) -> None:
        self.steps += 1


def run_traces(method, images: torch.Tensor, detach: bool) -> torch.Tensor:
    """The trace form over the whole sequence (train_step's loop without the optimizer):
    `[B, C, H, W]` -> O `[T, B, classes]`."""
    events = method.encode(images)
    alphas = events.new_tensor(method.alphas)
    inputs = events.new_zeros(len(method.alphas), *events.shape[1:])
    traces = [None] * sum(isinstance(m, GammaSigmaDelta) for m in method.network.modules())
    outputs = []
    for t in range(events.shape[0]):
        inputs = gamma_memory_step(events[t], inputs, alphas)
        output, traces = network_step(method.network, inputs, traces)
        outputs.append(output)
        if detach:
            traces = [trace.detach() for trace in traces]
    return torch.stack(outputs)


# --- the code ---------------------------------------------------------------------------------


@pytest.mark.parametrize("height", ["fixed", "adaptive"])
def test_sender_and_receiver_reconstructions_stay_equal(height):
    # the receiver sees only the events; it must hold the sender's ŷ⁰ bit for bit at every step
    torch.manual_seed(0)
    y = torch.relu(torch.randn(40, 64).cumsum(0) * 0.2)  # wandering values, some at 0
    alphas = torch.tensor([math.exp(-1 / 7.0), math.exp(-1 / 3.0)])
    sender = torch.zeros(64)
    receiver = torch.zeros(2, 64)
    for y_t in y:
        events, sender = sigma_delta_step(y_t, sender, alpha0=alphas[0], threshold=0.05, height=height)
        receiver = gamma_memory_step(events, receiver, alphas)
        assert torch.equal(receiver[0], sender)
    assert 0 < int((events != 0).sum())


@pytest.mark.parametrize("y", [0.37, 0.08, 0.9, 1.7])
def test_the_reconstruction_of_a_constant_input_settles_within_half_the_height(y):
    # fixed height H = 2ϑ = 0.1, α = 0.95. While rising, one event a step: ŷ(t) = H·(1 − α^(t+1))/(1 − α).
    # It settles at the first t where ŷ(t) ≥ y − ϑ; from then on |ŷ − y| ≤ ϑ = H/2: with ŷ(t−1) in
    # [y − ϑ, y + ϑ], no event leaves ŷ = α·ŷ(t−1) ≥ y − ϑ, an event (y − α·ŷ(t−1) > ϑ) gives
    # α·ŷ(t−1) + H ∈ (y − ϑ, y + ϑ) as long as α·(y − ϑ) + H ≥ y − ϑ,
    # i.e. y ≤ ϑ·(3 − α)/(1 − α) = 41.
    threshold, alpha, unit = 0.05, 0.95, 0.1
    rise = [unit * (1 - alpha ** (t + 1)) / (1 - alpha) for t in range(200)]
    settle = next(t for t, value in enumerate(rise) if value >= y - threshold)
    if y == 0.37:
        assert settle == 3  # ŷ = 0.1, 0.195, 0.28525, 0.3709875 (by hand)
    reconstruction, errors = torch.zeros((), dtype=torch.float64), []
    for t in range(settle + 60):
        _, reconstruction = sigma_delta_step(torch.tensor(y, dtype=torch.float64), reconstruction,
                                             alpha0=torch.tensor(alpha, dtype=torch.float64), threshold=threshold,
                                             height="fixed")
        if t <= settle:
            assert float(reconstruction) == pytest.approx(rise[t], abs=1e-12)
        errors.append(abs(float(reconstruction) - y))
    assert all(error > threshold for error in errors[:settle])
    assert max(errors[settle:]) <= threshold + 1e-12


def test_the_adaptive_height_is_within_half_the_height_from_the_first_step():
    # e = H·floor((y − p)/H + 1/2) when y − p > ϑ: |ŷ − y| ≤ H/2 right after every event
    y = torch.tensor([0.0, 0.04, 0.06, 0.37, 1.0, 2.33, 7.9], dtype=torch.float64)
    reconstruction = torch.zeros_like(y)
    for t in range(30):
        events, reconstruction = sigma_delta_step(y, reconstruction, alpha0=torch.tensor(0.9, dtype=torch.float64),
                                                  threshold=0.05, height="adaptive")
        assert float((reconstruction - y).abs().max()) <= 0.05 + 1e-12
        if t == 0:  # one event carries 7.9: 79 heights of 0.1
            assert events.tolist() == pytest.approx([0.0, 0.0, 0.1, 0.4, 1.0, 2.3, 7.9])


@pytest.mark.parametrize("taus", [[5.0, 5.0, 5.0, 5.0], [8.0, 3.0, 1.5, 0.7]], ids=["equal", "distinct"])
def test_the_gamma_cascade_impulse_response_matches_the_closed_form(taus):
    # one event of height 1 at t = 0. Bucket 0: α_0^t. Bucket k is bucket k−1 delayed one step and
    # low-passed by (1 − α_k)/(1 − α_k·z⁻¹), so in z: Π_{m≤k} 1/(1 − α_m z⁻¹) · Π_{1≤m≤k}(1 − α_m) · z⁻ᵏ.
    #   equal α:    ŷᵏ(t) = C(t, k)·(1 − α)ᵏ·α^(t−k)                                 (the gamma kernel)
    #   distinct α: ŷᵏ(t) = Π_{1≤m≤k}(1 − α_m) · Σ_{m≤k} α_m^t / Π_{n≤k, n≠m}(α_m − α_n)   (partial fractions)
    alphas = torch.tensor([math.exp(-1 / tau) for tau in taus], dtype=torch.float64)
    a = alphas.tolist()

    def closed_form(k: int, t: int) -> float:
        if t < k:
            return 0.0
        gain = math.prod(1 - a[m] for m in range(1, k + 1))
        if len(set(taus)) == 1:
            return math.comb(t, k) * (1 - a[0]) ** k * a[0] ** (t - k)
        return gain * sum(a[m] ** t / math.prod(a[m] - a[n] for n in range(k + 1) if n != m) for m in range(k + 1))

    buckets = torch.zeros(len(taus), 1, dtype=torch.float64)
    for t in range(25):
        impulse = torch.tensor([1.0 if t == 0 else 0.0], dtype=torch.float64)
        buckets = gamma_memory_step(impulse, buckets, alphas)
        for k in range(len(taus)):
            assert float(buckets[k, 0]) == pytest.approx(closed_form(k, t), abs=1e-12), (k, t)


# --- a network stepped by hand ------------------------------------------------------------------


def hand_network(**changes):
    """One pixel -> two hidden neurons -> two classes; α = (0.5, 0.75), ϑ = 0.1 (H = 0.2), fixed height, T = 3."""
    method = make({"T": 3, "threshold": 0.1, "height": "fixed", "tau": [tau_for(0.5), tau_for(0.75)], **changes},
                  arch=ArchSpec(kind="mlp", hidden=[2]), shape=(1, 1, 1), classes=2)
    network = method.network.double()
    with torch.no_grad():
        network.fc1.layer.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        network.act_fc1.v.copy_(torch.tensor([[1.0, 1.0], [0.5, 0.5]]))  # [K, neurons]
        network.act_fc1.b.fill_(0.1)
        network.output.layer.weight.copy_(torch.tensor([[1.5, 1.0], [-0.5, 2.0]]))
        network.act_output.v.copy_(torch.tensor([[1.0, 1.0], [0.5, 0.5]]))
        network.act_output.b.copy_(torch.tensor([0.0, 0.05]))
    return method


def test_three_steps_by_hand():
    method = hand_network()
    image = torch.full((1, 1, 1, 1), 0.45, dtype=torch.float64)
    alphas = torch.tensor(method.alphas, dtype=torch.float64)
    assert alphas.tolist() == pytest.approx([0.5, 0.75], abs=1e-15)
    # input sender, y = 0.45:  p = 0.5·ŷ⁰(t−1);  0.45 − p > 0.1 at every step -> e = 0.2
    #   t=0: p = 0    -> ŷ⁰ = 0.2      t=1: p = 0.1  -> ŷ⁰ = 0.3      t=2: p = 0.15 -> ŷ⁰ = 0.35
    # input bucket 1: ŷ¹(t) = 0.75·ŷ¹(t−1) + 0.25·ŷ⁰(t−1) = 0, 0.05, 0.0375 + 0.075 = 0.1125
    events = method.encode(image)
    assert events.flatten().tolist() == pytest.approx([0.2, 0.2, 0.2])
    expected_inputs = [[0.2, 0.0], [0.3, 0.05], [0.35, 0.1125]]
    # hidden neuron 1: x = 2·(1·ŷ⁰ + 0.5·ŷ¹) + 0.1 = 0.5, 0.75, 0.9125; p = 0, 0.1, 0.15; fires every step,
    #   ŷ⁰ = 0.2, 0.3, 0.35 and its bucket 1 = 0, 0.05, 0.1125 (the same numbers as the input's)
    # hidden neuron 2: x = −1·(ŷ⁰ + 0.5·ŷ¹) + 0.1 = −0.1, −0.225, −0.30625 -> y = 0, never fires
    expected_x = [[0.5, -0.1], [0.75, -0.225], [0.9125, -0.30625]]
    # as ŷ⁰_1, ŷ⁰_2, ŷ¹_1, ŷ¹_2
    expected_hidden = [[0.2, 0.0, 0.0, 0.0], [0.3, 0.0, 0.05, 0.0], [0.35, 0.0, 0.1125, 0.0]]
    # output: O_c = Σ_k v_cᵏ·Σ_i w_ci·ŷᵏ_i + b_c, only hidden neuron 1 is nonzero: s = ŷ⁰ + 0.5·ŷ¹
    #   s = 0.2, 0.325, 0.40625;  O_1 = 1.5·s;  O_2 = −0.5·s + 0.05
    expected_output = [[0.3, -0.05], [0.4875, -0.1125], [0.609375, -0.153125]]
    network = method.network
    inputs = torch.zeros(2, 1, 1, 1, 1, dtype=torch.float64)
    hidden = torch.zeros(2, 1, 2, dtype=torch.float64)
    for t in range(3):
        inputs = gamma_memory_step(events[t], inputs, alphas)
        assert inputs.flatten().tolist() == pytest.approx(expected_inputs[t])
        weighted = network.fc1.layer(inputs.flatten(1))  # [K, B·1] -> [K, neurons]: Z_k = W·ŷᵏ_in
        weighted = weighted.unsqueeze(1)  # [K, B = 1, neurons]
        x = receive(weighted, network.act_fc1.v, network.act_fc1.b)
        assert x.flatten().tolist() == pytest.approx(expected_x[t])
        hidden_events, hidden = trace_step(weighted, hidden, v=network.act_fc1.v, b=network.act_fc1.b, alphas=alphas,
                                           threshold=0.1, height="fixed")
        assert hidden_events.flatten().tolist() == pytest.approx([0.2, 0.0])
        assert hidden.flatten().tolist() == pytest.approx(expected_hidden[t])
        output = receive(network.output.layer(hidden), network.act_output.v, network.act_output.b)
        assert output.flatten().tolist() == pytest.approx(expected_output[t])
    # the whole network, both forms
    flat = [value for row in expected_output for value in row]
    assert method.forward(image).flatten().tolist() == pytest.approx(flat)
    assert run_traces(method, image, detach=True).flatten().tolist() == pytest.approx(flat)


def test_the_per_step_gradients_by_hand():
    # step t, past states constant, ∂ŷ⁰/∂y = 1:  O_1(t) = 1.5·(ŷ⁰_h + 0.5·ŷ¹_h), ŷ⁰_h ≡ y_h(t) = x_h(t),
    #   ∂O_1/∂w_h = 1.5·v_o⁰·Σ_k v_hᵏ·ŷᵏ_in(t) = 1.5·(ŷ⁰_in + 0.5·ŷ¹_in):
    #             t=0: 1.5·0.2 = 0.3;  t=1: 1.5·0.325 = 0.4875
    #   ∂O_1/∂v_o⁰ = w_o·ŷ⁰_h = 1.5·0.2, 1.5·0.3;   ∂O_1/∂v_o¹ = w_o·ŷ¹_h = 0, 1.5·0.05
    method = hand_network()
    network = method.network
    image = torch.full((1, 1, 1, 1), 0.45, dtype=torch.float64)
    events = method.encode(image)
    alphas = torch.tensor(method.alphas, dtype=torch.float64)
    inputs, traces = torch.zeros(2, 1, 1, 1, 1, dtype=torch.float64), [None]
    for t, (w_grad, v0_grad, v1_grad) in enumerate([(0.3, 0.3, 0.0), (0.4875, 0.45, 0.075)]):
        inputs = gamma_memory_step(events[t], inputs, alphas)
        network.zero_grad()
        output, traces = network_step(network, inputs, traces)
        output[0, 0].backward()
        assert network.fc1.layer.weight.grad[0, 0].item() == pytest.approx(w_grad)
        assert network.act_output.v.grad[0, 0].item() == pytest.approx(v0_grad)
        assert network.act_output.v.grad[1, 0].item() == pytest.approx(v1_grad)
        assert network.fc1.layer.weight.grad[1, 0].item() == 0.0  # hidden neuron 2: ReLU at 0
        traces = [trace.detach() for trace in traces]


@pytest.mark.parametrize("label", [0, 1])
def test_the_full_gradient_by_hand_over_two_steps(label):
    # T = 2, offline, loss = (CE(O(0), y) + CE(O(1), y))/2 with the outputs of test_three_steps_by_hand,
    # O(0) = (0.3, −0.05), O(1) = (0.4875, −0.1125); both depend on w = w_h1 (fc1, hidden neuron 1)
    # only through s(t) = ŷ⁰_h(t) + 0.5·ŷ¹_h(t): O_1 = 1.5·s, O_2 = −0.5·s + 0.05. With ŷ⁰_h ≡ y_h = x_h,
    #   ∂y_h(0)/∂w = ŷ⁰_in(0) + 0.5·ŷ¹_in(0) = 0.2,   ∂y_h(1)/∂w = 0.3 + 0.5·0.05 = 0.325
    #   truncated:  ∂s(0)/∂w = 0.2,  ∂s(1)/∂w = 0.325 (ŷ¹_h(1) = 0.75·ŷ¹_h(0) + 0.25·ŷ⁰_h(0) held constant)
    #   full:       ∂s(1)/∂w = 0.325 + 0.5·0.25·∂y_h(0)/∂w = 0.325 + 0.025 = 0.35
    # ∂loss/∂w = ½·Σ_t Σ_c (softmax(O(t))_c − 1[c = y])·w_oc·∂s(t)/∂w, w_o = (1.5, −0.5)
    outputs = torch.tensor([[0.3, -0.05], [0.4875, -0.1125]], dtype=torch.float64)
    error = torch.softmax(outputs, dim=1) - F.one_hot(torch.tensor(label), 2)
    image = torch.full((1, 1, 1, 1), 0.45, dtype=torch.float64)
    for gradient, ds in (("truncated", [0.2, 0.325]), ("full", [0.2, 0.35])):
        method = hand_network(T=2, training="offline", gradient=gradient)
        method.train_step(method.encode(image), torch.tensor([label]), CountingOptimizer(method.network.parameters()))
        expected = 0.5 * sum(float(error[t] @ torch.tensor([1.5, -0.5], dtype=torch.float64)) * ds[t] for t in range(2))
        # rel 1e-8: hand_network's b_2 = 0.05 comes from a float32 tensor (0.05 + 7e-10)
        assert method.network.fc1.layer.weight.grad[0, 0].item() == pytest.approx(expected, rel=1e-8), gradient
        assert method.network.fc1.layer.weight.grad[1, 0].item() == 0.0  # hidden neuron 2: ReLU at 0


@pytest.mark.parametrize("loss_from", [0, 2])
def test_the_full_gradient_is_the_event_forms_bptt_gradient(loss_from):
    method = make({"T": 5, "training": "offline", "gradient": "full", "loss_from": loss_from, "tau": [6.0, 2.0, 3.0]})
    method.network.double()
    with torch.no_grad():  # nonzero v for every bucket, so every bucket's path is checked
        for module in method.network.modules():
            if isinstance(module, (GammaSigmaDelta, GammaReadout)):
                module.v.uniform_(0.3, 1.0)
    images, labels = torch.rand(6, *SHAPE, dtype=torch.float64), torch.arange(6) % 10
    method.loss(method.forward(images), labels).backward()
    bptt = {name: p.grad.clone() for name, p in method.network.named_parameters()}
    optimizer = CountingOptimizer(method.network.parameters())
    method.train_step(method.encode(images), labels, optimizer)
    assert optimizer.steps == 1
    for name, parameter in method.network.named_parameters():
        assert torch.allclose(parameter.grad, bptt[name], rtol=1e-9, atol=1e-12), name


def test_the_default_gradient_is_the_truncated_one_bit_for_bit():
    """Three Adam batches of online training: the default, `gradient: truncated` and the online rule
    written out here (per step: CE backward, an update, traces detached) end on the same weights."""
    frames = torch.poisson(torch.full((3, 4, 8, *SHAPE), 0.4), generator=torch.Generator().manual_seed(1))
    labels = torch.arange(8) % 10
    weights = []
    for rule in ("default", "truncated", "written out"):
        method = make({"T": 4} if rule != "truncated" else {"T": 4, "gradient": "truncated"})
        optimizer = torch.optim.Adam(method.network.parameters(), lr=method.config.lr)
        for batch in frames:
            if rule == "written out":
                inputs, traces = batch.new_zeros(2, *batch.shape[1:]), [None, None]
                for events in batch:
                    inputs = gamma_memory_step(events, inputs, batch.new_tensor(method.alphas))
                    output, traces = network_step(method.network, inputs, traces)
                    optimizer.zero_grad(set_to_none=True)
                    F.cross_entropy(output, labels).backward()
                    optimizer.step()
                    traces = [trace.detach() for trace in traces]
            else:
                method.train_step(method.encode_frames(batch), labels, optimizer)
        weights.append(method.network.state_dict())
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]) and torch.equal(value, weights[2][name]), name


def test_a_full_gradient_needs_offline_training():
    with pytest.raises(ConfigError, match="gradient: full .* training: offline"):
        make({"gradient": "full"})
    assert make({"gradient": "full", "training": "offline"}).config.gradient == "full"


def test_the_board_names_the_height_and_the_gradient_that_ran():
    """The record's `variant` (the board's column) names every key off the method's defaults: the
    fixed height and the full gradient appear, the defaults (adaptive, truncated) read as ""."""
    assert make().variant() == ""
    assert make({"height": "fixed"}).variant() == "height=fixed"
    assert make({"training": "offline", "gradient": "full"}).variant() == "gradient=full,training=offline"
    assert make({"height": "adaptive", "gradient": "truncated"}).variant() == ""


# --- gradients and the two forms ----------------------------------------------------------------


def test_gradients_exist_without_any_surrogate_function(monkeypatch):
    def no_surrogate(*args, **kwargs):
        raise AssertionError("sigma-delta must not use a surrogate gradient")

    for name in ("spike", "_surrogate_grad", "_surrogate_grad_"):
        monkeypatch.setattr(engine, name, no_surrogate)
    method = make({"training": "offline"})
    optimizer = CountingOptimizer(method.network.parameters())
    images = torch.rand(8, *SHAPE) + 0.2
    loss, prediction = method.train_step(method.encode(images), torch.arange(8) % 10, optimizer)
    assert math.isfinite(float(loss)) and prediction.shape == (8,)
    for name, parameter in method.network.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    # the event form's backward (BPTT through the whole sequence) needs none either
    method.network.zero_grad()
    method.loss(method.forward(images), torch.arange(8) % 10).backward()
    assert all(torch.isfinite(p.grad).all() for p in method.network.parameters())


@pytest.mark.parametrize("height", ["fixed", "adaptive"])
@pytest.mark.parametrize("arch", [MLP, CNN], ids=["mlp", "cnn"])
def test_the_event_form_equals_the_trace_form_in_values_and_gradients(arch, height):
    # float64: the two forms round differently, and a spike must not flip on that
    method = make({"T": 6, "height": height, "tau": [6.0, 2.0, 3.0]}, arch=arch)
    method.network.double()
    with torch.no_grad():  # nonzero v for every bucket, so every bucket's path is checked
        for module in method.network.modules():
            if isinstance(module, (GammaSigmaDelta, GammaReadout)):
                module.v.uniform_(0.3, 1.0)
    images = torch.rand(5, *SHAPE, dtype=torch.float64)
    labels = torch.arange(5)
    gradients = []
    for forward in (lambda: method.forward(images), lambda: run_traces(method, images, detach=False)):
        method.network.zero_grad()
        output = forward()
        method.loss(output, labels).backward()
        gradients.append((output.detach(), {n: p.grad.clone() for n, p in method.network.named_parameters()}))
    (events_out, events_grads), (traces_out, traces_grads) = gradients
    assert torch.allclose(events_out, traces_out, rtol=0, atol=1e-12)
    for name in events_grads:
        assert torch.allclose(events_grads[name], traces_grads[name], rtol=1e-9, atol=1e-12), name


def test_offline_training_takes_one_step_of_the_loss_gradient_and_online_one_per_loss_step():
    images, labels = torch.rand(6, *SHAPE), torch.arange(6) % 10
    for training, loss_from, steps in (("offline", 0, 1), ("online", 0, 5), ("online", 2, 3)):
        method = make({"T": 5, "training": training, "loss_from": loss_from})
        with torch.no_grad():
            expected = method.loss(method.forward(images), labels)  # before any update
        optimizer = CountingOptimizer(method.network.parameters())
        loss, _ = method.train_step(method.encode(images), labels, optimizer)
        assert optimizer.steps == steps
        if training == "offline":  # one update, at the end: the loss of the event form's output
            assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_on_event_frames_the_frames_are_the_input_events_of_the_per_step_loop():
    """Offline, the loss train_step reports on encoded frames is the event form's loss on the same
    frames, and one update is taken; online, one update per step."""
    frames, labels = torch.poisson(torch.full((5, 6, *SHAPE), 0.3)), torch.arange(6) % 10
    for training, steps in (("offline", 1), ("online", 5)):
        method = make({"T": 5, "training": training})
        with torch.no_grad():
            expected = method.loss(method.network(method.encode_frames(frames)), labels)
        optimizer = CountingOptimizer(method.network.parameters())
        loss, prediction = method.train_step(method.encode_frames(frames), labels, optimizer)
        assert optimizer.steps == steps and prediction.shape == (6,)
        if training == "offline":
            assert float(loss) == pytest.approx(float(expected), rel=1e-5)


# --- the method ---------------------------------------------------------------------------------


def test_the_contract_and_the_declared_op_semantics():
    for arch in (MLP, CNN):
        method = make(arch=arch)
        check_contract(method, method.encode(torch.rand(3, *SHAPE)), 3)
    method = make()
    K = len(method.config.tau)
    hidden = [m for m in method.network.modules() if isinstance(m, GammaSigmaDelta)]
    assert [m.op_semantics.event_kind for m in hidden] == [EventKind.GRADED] * 2
    assert [(m.op_semantics.update_macs, m.op_semantics.update_acs) for m in hidden] == [(3 * K, 3)] * 2
    assert method.network.act_output.op_semantics.update_macs == 3 * K - 1
    assert method.input_semantics.event_kind is EventKind.GRADED


def test_the_op_counter_charges_every_event_one_mac_per_fan_out():
    method = make()
    images = torch.rand(4, *SHAPE)
    events = method.encode(images)
    with torch.no_grad():
        hidden = method.network[:3](events)  # flatten, fc1, act_fc1: the first hidden layer's events
        with OpCounter(method.network, method.input_semantics) as counter:
            method.forward(images)
    layers = {layer["name"]: layer for layer in counter.compute(4).layers}
    # per sample: nonzero events reaching the layer × its fan-out (12, then 10 neurons), all MACs
    assert layers["fc1"]["macs"] == pytest.approx(int((events != 0).sum()) * 12 / 4)
    assert layers["fc2"]["macs"] == pytest.approx(int((hidden != 0).sum()) * 10 / 4)
    assert layers["fc1"]["acs"] == layers["fc2"]["acs"] == 0
    assert layers["act_fc1"]["spikes"] == pytest.approx(int((hidden != 0).sum()) / 4)


@pytest.mark.parametrize("change, key", [({"tau": [5.0, -1.0]}, "tau"), ({"tau": []}, "tau"),
                                         ({"T": 3, "loss_from": 3}, "loss_from"), ({"height": "huge"}, "height")])
def test_invalid_hyperparameters_name_the_key(change, key):
    with pytest.raises(ConfigError, match=key):
        make(change)


@pytest.mark.parametrize("arch", [ArchSpec(kind="cnn", conv=[3, "M"], hidden=[8], batch_norm=True),
                                  ArchSpec(kind="cnn", conv=[3, "M"], hidden=[8], pool="max")])
def test_a_nonlinear_layer_between_sender_and_buckets_is_refused(arch):
    with pytest.raises(ConfigError, match="batch_norm: false and pool: avg"):
        make(arch=arch)


def test_a_state_of_the_wrong_shape_raises():
    neuron = make().network.act_fc1
    with pytest.raises(ValueError, match="state of shape"):
        neuron.step(torch.zeros(2, 4, 12), torch.zeros(2, 3, 12))


def test_decision_at_T_from_the_last_output():
    method = make({"T": 3})
    output = torch.zeros(3, 2, 10)
    output[0, :, 1] = 5.0  # an early winner does not count
    output[2, 0, 4], output[2, 1, 7] = 1.0, 2.0
    readout = method.readout(output)
    assert readout.prediction.tolist() == [4, 7] and readout.decision_step.tolist() == [3, 3]
    labels = torch.tensor([4, 7])
    assert float(method.loss(output, labels)) == pytest.approx(
        float(sum(F.cross_entropy(output[t], labels) for t in range(3)) / 3))


def test_the_harness_trains_it_through_its_train_step(workspace, monkeypatch):
    from benchmark.cli import main
    from benchmark.contract.io import read_json
    from methods.sigma_delta import SigmaDelta

    calls = []
    original = SigmaDelta.train_step
    monkeypatch.setattr(SigmaDelta, "train_step", lambda self, *args: calls.append(1) or original(self, *args))
    run = ["--dataset", "digits", "--seed", "0", "--no-progress"]
    assert main(["train", "--method", "sigma-delta", *run]) == 0
    assert main(["evaluate", "--method", "sigma-delta", *run]) == 0
    assert calls
    assert read_json("runs/digits/sigma-delta/0/eval.json")["accuracy"] > 0.5
