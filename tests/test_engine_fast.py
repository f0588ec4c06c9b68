"""The fused LIF path (`lif_sequence`, what `LIF` runs) equals the reference `lif_step` loop.

Values are compared bit for bit (the fused forward performs the reference's float operations in the
same order); gradients up to float rounding (the backward recurrence sums the same terms in another
order), tightly in float64.
"""

from __future__ import annotations

import itertools
import os

import pytest
import torch
from torch import nn

from snn import engine, layers
from snn.engine import LIF, lif_loop, lif_sequence

RESETS = ("subtract", "zero")
SURROGATES = ("sigmoid", "fast_sigmoid", "atan")
BETAS = (0.9, 1.0)
SHAPES = ((6, 3, 5), (4, 2, 3, 5, 5), (1, 4, 7))  # [T, B, N], [T, B, C, H, W], a single step
INITIAL = (0.0, 0.5)
TOLERANCE = {torch.float32: dict(rtol=1e-5, atol=1e-6), torch.float64: dict(rtol=1e-12, atol=1e-13)}


def settings(reset="subtract", surrogate="sigmoid", beta=0.9, threshold=1.0, slope=4.0, initial_membrane=0.0):
    return dict(beta=beta, threshold=threshold, reset=reset, surrogate=surrogate, slope=slope,
                initial_membrane=initial_membrane)


def currents(shape, dtype=torch.float32, seed=0):
    """Currents around the threshold, so that neurons both fire and stay silent."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=generator, dtype=torch.float64) * 0.8 + 0.45).to(dtype)


def run_both(current, upstream_grad, **kwargs):
    """(spikes, dL/dI) of the reference and of the fused path for the same input and dL/dS."""
    results = []
    for function in (lif_loop, lif_sequence):
        x = current.clone().requires_grad_(True)
        spikes = function(x, **kwargs)
        spikes.backward(upstream_grad)
        results.append((spikes.detach(), x.grad))
    return results


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "reset, surrogate, beta, shape, initial_membrane",
    list(itertools.product(RESETS, SURROGATES, BETAS, SHAPES, INITIAL)),
)
def test_fused_equals_the_reference_loop(reset, surrogate, beta, shape, initial_membrane, dtype):
    kwargs = settings(reset, surrogate, beta, initial_membrane=initial_membrane)
    current = currents(shape, dtype)
    upstream = currents(shape, dtype, seed=1)
    (ref_spikes, ref_grad), (fast_spikes, fast_grad) = run_both(current, upstream, **kwargs)
    assert 0 < ref_spikes.sum() < ref_spikes.numel()  # the case exercises both branches of Θ
    assert torch.equal(fast_spikes, ref_spikes)
    torch.testing.assert_close(fast_grad, ref_grad, **TOLERANCE[dtype])


@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("threshold, slope", [(0.5, 2.0), (2.0, 25.0)])
def test_fused_equals_the_reference_for_other_thresholds_and_slopes(reset, threshold, slope):
    kwargs = settings(reset, "fast_sigmoid", 0.8, threshold=threshold, slope=slope, initial_membrane=0.3)
    current = currents((9, 4, 6)) * threshold
    (ref_spikes, ref_grad), (fast_spikes, fast_grad) = run_both(current, torch.ones_like(current), **kwargs)
    assert torch.equal(fast_spikes, ref_spikes)
    torch.testing.assert_close(fast_grad, ref_grad, **TOLERANCE[torch.float32])


def test_fused_spikes_at_exactly_the_threshold_like_the_reference():
    # I = 1.0 = θ at t = 0: H = 1.0, Θ(0) = 1 → spike; soft reset V = 0; I = 0.5, 0.5: H = 0.5, 1.0 → spike.
    current = torch.tensor([[1.0], [0.5], [0.5]])
    expected = torch.tensor([[1.0], [0.0], [1.0]])
    assert torch.equal(lif_sequence(current, **settings(beta=1.0)), expected)
    assert torch.equal(lif_loop(current, **settings(beta=1.0)), expected)


def test_fused_backward_follows_the_recurrence_by_hand():
    # β = 0.5, θ = 1, fast_sigmoid α = 1 (SG(x) = 1/(1 + |x|)²), soft reset, I = 0.6, 0.8, L = S[0] + S[1]:
    #   H[0] = 0.6, S[0] = 0, V[0] = 0.6;  H[1] = 0.5·0.6 + 0.8 = 1.1, S[1] = 1
    #   SG[0] = 1/1.4² = 1/1.96,  SG[1] = 1/1.1² = 1/1.21
    #   dL/dH[1] = 1·SG[1]                                        = 1/1.21
    #   dL/dH[0] = 1·SG[0] + β·dL/dH[1]·(1 − θ·SG[0])             = 1/1.96 + 0.5/1.21·(1 − 1/1.96)
    current = torch.tensor([[0.6], [0.8]], dtype=torch.float64, requires_grad=True)
    spikes = lif_sequence(current, **settings("subtract", "fast_sigmoid", 0.5, slope=1.0))
    spikes.sum().backward()
    assert spikes.flatten().tolist() == [0.0, 1.0]
    expected = [1 / 1.96 + 0.5 / 1.21 * (1 - 1 / 1.96), 1 / 1.21]
    assert current.grad.flatten().tolist() == pytest.approx(expected, rel=1e-12)


def test_fused_hard_reset_backward_by_hand():
    # β = 1, θ = 1, fast_sigmoid α = 1, hard reset, I = 1.2, 0.3, L = S[1]:
    #   H[0] = 1.2, S[0] = 1, V[0] = 0;  H[1] = 0.3, S[1] = 0
    #   SG[0] = 1/1.2² = 1/1.44,  SG[1] = 1/1.7² = 1/2.89
    #   dL/dH[1] = SG[1];  dL/dH[0] = 0·SG[0] + β·dL/dH[1]·(1 − S[0] − H[0]·SG[0]) = SG[1]·(−1.2/1.44)
    current = torch.tensor([[1.2], [0.3]], dtype=torch.float64, requires_grad=True)
    spikes = lif_sequence(current, **settings("zero", "fast_sigmoid", 1.0, slope=1.0))
    spikes[1].sum().backward()
    assert current.grad.flatten().tolist() == pytest.approx([1 / 2.89 * (-1.2 / 1.44), 1 / 2.89], rel=1e-12)


def test_lif_module_runs_the_fused_path_and_matches_its_reference_twin():
    torch.manual_seed(0)
    linear = nn.Linear(6, 5)
    x = torch.rand(7, 3, 6) * 2
    outputs, grads = [], []
    for implementation in ("fused", "reference"):
        linear.zero_grad()
        layer = LIF(beta=0.9, reset="zero", surrogate="atan", slope=2.0, initial_membrane=0.25,
                    implementation=implementation)
        out = layer(linear(x.flatten(0, 1)).unflatten(0, (7, 3)))
        (out * torch.arange(5.0)).sum().backward()
        outputs.append(out)
        grads.append(linear.weight.grad.clone())
    assert torch.equal(outputs[0], outputs[1])
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)


def test_fused_path_keeps_the_layout_and_accepts_strided_inputs():
    base = currents((5, 2, 3, 4, 4))
    channels_last = base.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, (5, 2))
    strided = currents((5, 4, 6))[:, ::2, 1:]
    for current in (channels_last, strided):
        (ref_spikes, ref_grad), (fast_spikes, fast_grad) = run_both(current, torch.ones_like(current), **settings())
        assert torch.equal(fast_spikes, ref_spikes)
        torch.testing.assert_close(fast_grad, ref_grad, **TOLERANCE[torch.float32])
    spikes = lif_sequence(channels_last, **settings())
    assert spikes.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)


def test_fused_inference_equals_training_forward():
    current = currents((6, 3, 8))
    with torch.no_grad():
        inference = lif_sequence(current, **settings(initial_membrane=0.5))
    assert torch.equal(inference, lif_sequence(current.requires_grad_(True), **settings(initial_membrane=0.5)))


def test_fused_path_saves_only_the_membrane_for_backward():
    # The reference saves H − θ per step; the fused path one [T, B, ...] tensor H for the whole sequence.
    saved = []

    def pack(tensor):
        saved.append(tuple(tensor.shape))
        return tensor

    current = currents((6, 3, 8)).requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        lif_sequence(current, **settings(reset="zero"))
    assert saved == [(6, 3, 8)]


def test_fused_path_validates_its_settings():
    with pytest.raises(ValueError, match="surrogate"):
        lif_sequence(currents((2, 1, 3)), **{**settings(), "surrogate": "tanh"})
    with pytest.raises(ValueError, match="reset"):
        lif_sequence(currents((2, 1, 3)), **{**settings(), "reset": "none"})
    with pytest.raises(ValueError, match="implementation"):
        LIF(implementation="cuda")
    with pytest.raises(ValueError, match="surrogate"):
        LIF(surrogate="tanh")


def test_a_tensor_threshold_runs_the_reference():
    layer = LIF(beta=0.9)
    layer.threshold = torch.tensor(0.7)
    current = currents((4, 2, 3))
    assert torch.equal(layer(current), lif_loop(current, **settings(threshold=torch.tensor(0.7))))


def test_compile_switch_reads_the_environment(monkeypatch):
    monkeypatch.setattr(engine, "_compile_enabled", None)
    monkeypatch.setenv("SPIKECODE_COMPILE", "yes please")
    with pytest.raises(ValueError, match="SPIKECODE_COMPILE"):
        engine.compile_enabled()
    monkeypatch.setattr(engine, "_compile_enabled", None)
    monkeypatch.setenv("SPIKECODE_COMPILE", "0")
    assert engine.compile_enabled() is False


@pytest.mark.skipif(os.environ.get("SPIKECODE_COMPILE") != "1",
                    reason="torch.compile takes about a minute on the CPU; set SPIKECODE_COMPILE=1 to test it")
@pytest.mark.parametrize("reset", RESETS)
def test_compiled_path_equals_the_reference(reset, monkeypatch):
    monkeypatch.setattr(engine, "_compile_enabled", True)
    kwargs = settings(reset, "fast_sigmoid", 0.9, slope=5.0, initial_membrane=0.5)
    current = currents((8, 4, 3, 6, 6))
    (ref_spikes, ref_grad), (fast_spikes, fast_grad) = run_both(current, currents(current.shape, seed=1), **kwargs)
    assert not engine._compile_failed
    assert torch.equal(fast_spikes, ref_spikes)
    torch.testing.assert_close(fast_grad, ref_grad, **TOLERANCE[torch.float32])


@pytest.mark.parametrize(
    "pool_args, shape, channels_last",
    [
        (dict(kernel_size=2), (3, 4, 5, 8, 8), False),
        (dict(kernel_size=2), (3, 4, 5, 7, 7), True),  # odd sizes: the last row/column is dropped
        (dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 3, 4, 9, 7), False),
        (dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), divisor_override=5), (2, 3, 2, 6, 9), False),
        # windows that tile the input: the strided-add path (`layers._tiles`)
        (dict(kernel_size=2), (3, 4, 5, 6, 10), False),
        (dict(kernel_size=(2, 3)), (2, 3, 4, 6, 9), False),
        (dict(kernel_size=3, ceil_mode=True), (2, 2, 3, 9, 6), False),
        (dict(kernel_size=2), (3, 4, 5, 8, 8), True),  # channels-last: PyTorch's (NHWC) kernel
    ],
)
def test_folded_average_pooling_equals_pytorch_and_saves_no_input(pool_args, shape, channels_last):
    pool = nn.AvgPool2d(**pool_args)
    x = currents(shape)
    if channels_last:
        x = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, shape[:2])
    ours, theirs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
        out = layers.Folded(pool)(ours)
    expected = pool(theirs.flatten(0, 1)).unflatten(0, shape[:2])
    upstream = currents(out.shape, seed=2)
    out.backward(upstream)
    expected.backward(upstream)
    assert saved == []  # PyTorch's own avg_pool2d saves its whole input
    assert torch.equal(out, expected)
    assert torch.equal(ours.grad, theirs.grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kernel", [2, (2, 3), 4])
def test_tiled_average_pooling_is_pytorchs_bit_for_bit(kernel, dtype):
    # random reals, not spikes: the strided adds must round exactly as PyTorch's kernel does
    pool = nn.AvgPool2d(kernel)
    x = currents((3, 4, 5, 8, 12), dtype)
    assert layers._tiles(x.flatten(0, 1), pool) is not None
    with torch.no_grad():
        assert torch.equal(layers.Folded(pool)(x), pool(x.flatten(0, 1)).unflatten(0, (3, 4)))
    upstream = currents(layers.Folded(pool)(x).shape, dtype, seed=3)
    ours, theirs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    layers.Folded(pool)(ours).backward(upstream)
    pool(theirs.flatten(0, 1)).unflatten(0, (3, 4)).backward(upstream)
    assert torch.equal(ours.grad, theirs.grad)


def test_step_threads_change_nothing_but_speed_and_are_restored(monkeypatch):
    threads = torch.get_num_threads()
    current = currents((5, 4, 300))
    results = []
    for setting in (None, 1):
        monkeypatch.setattr(engine, "_step_threads", setting)
        x = current.clone().requires_grad_(True)
        out = lif_sequence(x, **settings(reset="zero"))
        out.backward(torch.ones_like(out))
        results.append((out, x.grad))
        assert torch.get_num_threads() == threads
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    with pytest.raises(ValueError, match="step threads"):
        engine.set_step_threads(0)


def test_prefer_channels_last_converts_cpu_cnns_only_and_keeps_values():
    torch.manual_seed(0)
    cnn = nn.Sequential(layers.Folded(nn.Conv2d(2, 4, 3, padding=1)), LIF(beta=0.9),
                        layers.Folded(nn.AvgPool2d(2)), layers.Folded(nn.Flatten()), layers.Folded(nn.Linear(16, 3)))
    x = (torch.rand(3, 2, 2, 4, 4) < 0.5).float()
    before = cnn(x)
    assert layers.prefer_channels_last(cnn, "cpu") is cnn
    assert cnn[0].layer.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(cnn(x), before)
    mlp = nn.Sequential(layers.Folded(nn.Linear(4, 3)))
    assert layers.prefer_channels_last(mlp, "cpu") is mlp
