"""snn.conversion: BN folding, the module walk and its errors, data-based normalization, and the
conversion stage end to end through the CLI. Also home of `trained`, the tiny digits models the
method tests (test_convert, test_qcfs, test_css) convert."""

from __future__ import annotations

import json
from contextlib import contextmanager
from functools import lru_cache

import pytest
import torch
from torch import nn

from benchmark.contract.method import CodingMethod
from benchmark.contract.registry import create_method
from snn.arch import ArchSpec, build_network
from snn.conversion import ConversionError, calibrate, fold_network, normalize, percentile, skeleton, transfer
from snn.layers import Folded, ReLU
from tests.conftest import make_workspace
import methods.convert  # noqa: F401  (import registers)
import methods.css  # noqa: F401
import methods.qcfs  # noqa: F401

SHAPE = (1, 8, 8)
MLP = ArchSpec(kind="mlp", hidden=[32])
CNN = ArchSpec(kind="cnn", conv=[8, "M"], hidden=[32], batch_norm=True)  # conv → BN → ReLU → avg pool


# --- tiny trained models on scikit-learn digits, shared by the method tests ------------------------


@lru_cache(maxsize=None)
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train images, train labels, test images, test labels): 1400 / 397, images `[N, 1, 8, 8]` in [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16
    labels = torch.tensor(bunch.target)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    train, test = order[:1400], order[1400:]
    return images[train], labels[train], images[test], labels[test]


@contextmanager
def single_thread():
    """Tiny models run faster on one thread, above all on a shared, busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_TRAINED: dict[tuple[str, str, int], CodingMethod] = {}


def trained(method: str, arch: ArchSpec, steps: int = 300) -> CodingMethod:
    """`method` (an ANN family method) trained for `steps` Adam steps on digits; cached per session
    (never modify the returned model)."""
    key = (method, arch.model_dump_json(), steps)
    if key not in _TRAINED:
        with single_thread():
            _TRAINED[key] = _train(method, arch, steps)
    return _TRAINED[key]


def _train(method: str, arch: ArchSpec, steps: int) -> CodingMethod:
    train_x, train_y, _, _ = digits()
    torch.manual_seed(0)
    model = create_method(method, {}, arch, SHAPE, 10)
    optimizer = torch.optim.Adam(model.network.parameters(), lr=3e-3)
    for _ in range(steps):
        batch = torch.randint(0, len(train_y), (64,))
        loss = model.loss(model.forward(train_x[batch]), train_y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.network.eval()
    return model


def calibration_set() -> list[torch.Tensor]:
    train_x = digits()[0]
    return [train_x[start:start + 100] for start in range(0, 400, 100)]


@torch.no_grad()
def predictions(method: CodingMethod, images: torch.Tensor) -> torch.Tensor:
    with single_thread():
        return method.readout(method.forward(images)).prediction


# --- 1. fold --------------------------------------------------------------------------------------


def _ann_with_batch_norm() -> nn.Sequential:
    torch.manual_seed(3)
    network = build_network(ArchSpec(kind="cnn", conv=[6, "M", 4], hidden=[12], batch_norm=True), SHAPE, 10,
                            make_neuron=lambda name: ReLU())
    for module in network.modules():  # non-trivial running statistics and affine parameters
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.2, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.3, 0.3)
    return network.eval()


def test_folding_batch_norm_preserves_the_ann_outputs_exactly():
    network = _ann_with_batch_norm()
    folded = fold_network(network)
    x = torch.rand(1, 5, *SHAPE)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert torch.allclose(folded(x), network(x), atol=1e-5)
    # the folded conv has W' = W·γ/σ and b' = (0 − μ)·γ/σ + β for a conv without its own bias
    conv, norm = network.conv1.layer, network.bn1.layer
    factor = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    assert torch.allclose(folded.conv1.layer.weight, conv.weight * factor.view(-1, 1, 1, 1))
    assert torch.allclose(folded.conv1.layer.bias, -norm.running_mean * factor + norm.bias)


def test_folding_leaves_the_source_untouched():
    network = _ann_with_batch_norm()
    before = {key: value.clone() for key, value in network.state_dict().items()}
    fold_network(network)
    assert all(torch.equal(before[key], value) for key, value in network.state_dict().items())


@pytest.mark.parametrize(
    "network, match",
    [
        (build_network(ArchSpec(kind="cnn", conv=[4, "M"], hidden=[8], pool="max"), SHAPE, 10,
                       make_neuron=lambda name: ReLU()), r"layer 'pool1' \(Folded\(MaxPool2d\)\).*pool: avg"),
        (nn.Sequential(Folded(nn.Flatten()), Folded(nn.Linear(64, 8)), nn.Sigmoid(), Folded(nn.Linear(8, 2))),
         r"layer '2' \(Sigmoid\)"),
        (nn.Sequential(Folded(nn.Flatten()), Folded(nn.Linear(64, 8)), Folded(nn.Linear(8, 2))),
         r"layer '2' \(Folded\(Linear\)\) follows the synaptic layer '1' with no activation"),
        (nn.Sequential(Folded(nn.Flatten()), Folded(nn.Linear(64, 8)), ReLU(), Folded(nn.BatchNorm1d(8)),
                       Folded(nn.Linear(8, 2))), r"layer '3' \(Folded\(BatchNorm1d\)\) does not directly follow"),
        (nn.Sequential(ReLU(), Folded(nn.Flatten()), Folded(nn.Linear(64, 2))), r"layer '0' \(ReLU\) is an activation"),
    ],
    ids=["max-pool", "unknown-module", "no-activation", "bn-after-activation", "leading-activation"],
)
def test_a_layer_the_walk_cannot_convert_is_an_error_naming_it(network, match):
    with pytest.raises(ConversionError, match=match):
        fold_network(network)


# --- 2. calibrate ---------------------------------------------------------------------------------


def _identity_ann() -> nn.Sequential:
    """x -> ReLU(1·x + 0) -> 1·a: the activations are the inputs themselves."""
    first, last = nn.Linear(1, 1), nn.Linear(1, 1)
    for layer in (first, last):
        nn.init.ones_(layer.weight)
        nn.init.zeros_(layer.bias)
    return nn.Sequential(Folded(nn.Flatten()), Folded(first), ReLU(), Folded(last))


def test_calibration_tracks_the_max_with_a_momentum_ema_over_batches():
    # batch maxima 4, 2, 10; momentum 0.25: λ = 4 → 0.75·4 + 0.25·2 = 3.5 → 0.75·3.5 + 0.25·10 = 5.125
    batches = [torch.tensor([1.0, 4.0, -3.0]), torch.tensor([2.0, 0.5, 1.0]), torch.tensor([10.0, 0.0, 3.0])]
    scales = calibrate(_identity_ann(), [b.view(-1, 1, 1, 1) for b in batches], norm="max", momentum=0.25)
    assert list(scales) == ["2"] and scales["2"] == pytest.approx(5.125)


def test_the_99_9th_percentile_is_the_nearest_rank_over_all_activations():
    # 2000 activations 1..1000 and 1000 zeros: rank ⌈0.999·2000⌉ = 1998 is the value 998
    values = torch.cat([torch.arange(1.0, 1001.0), torch.zeros(1000)])
    assert float(percentile(values, 99.9)) == 998.0
    scales = calibrate(_identity_ann(), [values.view(-1, 1, 1, 1)], norm="p99.9", momentum=0.1)
    assert scales["2"] == 998.0


def test_a_layer_that_never_activates_is_an_error_naming_it():
    with pytest.raises(ConversionError, match=r"activation '2' has λ = 0"):
        calibrate(_identity_ann(), [-torch.rand(4, 1, 1, 1)], norm="max", momentum=0.1)


# --- 3. normalize ---------------------------------------------------------------------------------


def test_normalization_preserves_the_logits_and_scales_every_activation_by_its_lambda():
    network = _ann_with_batch_norm()
    folded = fold_network(network)
    scales = calibrate(folded, [torch.rand(16, *SHAPE) for _ in range(3)], norm="p99.9", momentum=0.1)
    normalized = normalize(folded, scales)
    x = torch.rand(1, 5, *SHAPE)
    assert torch.allclose(normalized(x), network(x), atol=1e-5)
    seen = {}
    for name in scales:  # hidden layer l computes a_l/λ_l
        getattr(folded, name).register_forward_hook(lambda m, i, o, name=name: seen.setdefault(("ann", name), o))
        getattr(normalized, name).register_forward_hook(lambda m, i, o, name=name: seen.setdefault(("snn", name), o))
    folded(x), normalized(x)
    for name, scale in scales.items():
        assert torch.allclose(seen[("snn", name)], seen[("ann", name)] / scale, atol=1e-6)


def test_transfer_names_a_source_of_another_architecture():
    source = fold_network(build_network(MLP, SHAPE, 10, make_neuron=lambda name: ReLU()))
    target = skeleton(ArchSpec(kind="mlp", hidden=[32, 16]), SHAPE, 10, lambda name: ReLU(), None)
    with pytest.raises(ConversionError, match="synaptic layers"):
        transfer(source, target)


# --- the conversion stage, end to end ---------------------------------------------------------------


@pytest.mark.parametrize("method, source", [("convert", "ann"), ("qcfs", "qcfs-ann"), ("css", "ann")])
def test_the_cli_converts_a_trained_source_and_evaluates_it(tmp_path, monkeypatch, prepared_digits, method, source):
    from benchmark.cli import main

    root = make_workspace(tmp_path / "ws", prepared_digits, **{f"methods.{method}": {}, f"methods.{source}": {}})
    monkeypatch.chdir(root)
    for command, name in [("train", source), ("evaluate", source), ("train", method), ("evaluate", method)]:
        assert main([command, "--dataset", "digits", "--method", name, "--seed", "0", "--no-progress"]) == 0
    source_record = json.loads((root / "runs" / "digits" / source / "0" / "eval.json").read_text())
    record = json.loads((root / "runs" / "digits" / method / "0" / "eval.json").read_text())
    assert record["family"] == "conversion" and record["decision_step"]["mean"] == record["T"]
    assert record["accuracy"] > 0.2 and abs(record["accuracy"] - source_record["accuracy"]) < 0.15
    ops = json.loads((root / "runs" / "digits" / method / "0" / "ops.json").read_text())
    assert ops["ops"]["acs"] > 0 and ops["spikes_per_sample"] > 0
