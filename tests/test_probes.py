"""Per-layer probes (benchmark.sweeps.probes): firing rate and gradient norm by hand, the init probe's
weights against training's, the reconstruction error by hand, and grids that probe every seed."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from torch import nn

import benchmark.run.train as train_module
from benchmark.cli import main
from benchmark.contract.errors import ConfigError
from benchmark.contract.io import read_json
from benchmark.contract.registry import create_method
from benchmark.contract.semantics import ANALOG_VALUES, HELD_ANALOG
from benchmark.data.prepared import load_prepared
from benchmark.run.config import load_params
from benchmark.sweeps.grid import grid_points
from benchmark.sweeps.probes import initial_method, layer_probe, reconstruction_errors
from snn.arch import ArchSpec

TWO_IN = (1, 1, 2)  # two input features: [C, H, W]
ONE_HIDDEN = ArchSpec(kind="mlp", hidden=[2])


def _set(layer: nn.Linear, weight: list[list[float]]) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.zero_()


def test_gradient_norm_by_hand_on_a_relu_network():
    # x = (1, 2), W1 = I, W2 = 0: h = (1, 2), logits = 0, p = (1/2, 1/2), label 0, CE averaged over the one sample:
    #   ∂L/∂logits = p − y = (−1/2, 1/2);  ∂L/∂W2 = (p − y) hᵀ, ‖·‖ = ‖p − y‖·‖h‖ = √(1/2)·√5
    #   ∂L/∂h = W2ᵀ(p − y) = 0, so ∂L/∂W1 = 0;  L = log 2
    method = create_method("ann", {}, ONE_HIDDEN, TWO_IN, 2)
    _set(method.network.fc1.layer, [[1.0, 0.0], [0.0, 1.0]])
    _set(method.network.output.layer, [[0.0, 0.0], [0.0, 0.0]])
    encoded = torch.tensor([1.0, 2.0]).view(1, 1, *TWO_IN)
    probe = layer_probe(method, encoded, torch.tensor([0]), ANALOG_VALUES)
    assert probe["loss"] == pytest.approx(math.log(2))
    assert [row["layer"] for row in probe["grad_norm"]] == ["fc1", "output"]
    assert [row["value"] for row in probe["grad_norm"]] == pytest.approx([0.0, math.sqrt(0.5) * math.sqrt(5)])
    assert probe["firing_rate"] == []  # ReLU sends analog values, not spikes


def test_firing_rate_by_hand_on_an_integrate_and_fire_layer():
    # IF, θ = 1, soft reset, T = 4, constant currents 0.5 and 0.25 (W1 = diag(0.5, 0.25), x = (1, 1)):
    #   0.5:  H = 0.5, 1.0 → spike, 0.5, 1.0 → spike: 2 spikes;  0.25: H = 0.25, 0.5, 0.75, 1.0 → spike: 1
    #   ρ = (2 + 1) spikes / (2 neurons · 1 sample) = 1.5;  a conversion has no loss and no gradient
    method = create_method("convert", {"T": 4}, ONE_HIDDEN, TWO_IN, 2)
    _set(method.network.fc1.layer, [[0.5, 0.0], [0.0, 0.25]])
    _set(method.network.output.layer, [[1.0, 0.0], [0.0, 1.0]])
    probe = layer_probe(method, method.encode(torch.ones(1, *TWO_IN)), torch.tensor([0]), HELD_ANALOG)
    assert probe["firing_rate"] == [{"layer": "act_fc1", "value": 1.5}]
    assert probe["loss"] is None and probe["grad_norm"] == []


def _converted(name: str, hyperparameters: dict):
    """`name` converted from the ReLU network W1 = diag(1, 1/2) (output: identity), calibrated with the
    max on x = (1, 1): a = (1, 1/2), λ_1 = 1, so the normalized activation is a itself."""
    source = create_method("ann", {}, ONE_HIDDEN, TWO_IN, 2)
    _set(source.network.fc1.layer, [[1.0, 0.0], [0.0, 0.5]])
    _set(source.network.output.layer, [[1.0, 0.0], [0.0, 1.0]])
    method = create_method(name, {**hyperparameters, "norm": "max"}, ONE_HIDDEN, TWO_IN, 2)
    x = torch.ones(1, *TWO_IN)
    with torch.no_grad():
        method.convert(source, [x])
    return method, source, x


@pytest.mark.parametrize("name, hyperparameters, expected", [
    # rate, T = 4: currents 1 and 1/2 fire 4 and 2 times: r = λ·N/T = (1, 1/2) = a exactly
    ("convert", {"T": 4}, 0.0),
    # rate, T = 3: 1/2 fires once (H = 0.5, 1.0 → spike, 0.5): r = (1, 1/3), ‖r − a‖ = 1/6, ‖a‖ = √1.25
    ("convert", {"T": 3}, (1 / 6) / math.sqrt(1.25)),
    # CSS, T = 1, β = 2, d = 1: S_T = 1, V = β^d/S_T = 2; the image arrives at t = 0, u[1] = 2·a = (2, 1) ≥ V/2 = 1:
    # both fire +1, r = λ·s·β^0/S_T = (1, 1): ‖r − a‖ = 1/2
    ("css", {"T": 1, "beta": 2.0, "silent_period": 1}, 0.5 / math.sqrt(1.25)),
    # CSS, T = 2: S_T = 3/2, V = 4/3, V/2 = 2/3; u[1] = (2, 1): both +1, u = (2/3, −1/3); u[2] = (4/3, −2/3):
    # +1 and −1 (its sent value is positive), r = ((1 + 1/2)/(3/2), (1 − 1/2)/(3/2)) = (1, 1/3)
    ("css", {"T": 2, "beta": 2.0, "silent_period": 1}, (1 / 6) / math.sqrt(1.25)),
])
def test_reconstruction_error_by_hand(name, hyperparameters, expected):
    method, source, x = _converted(name, hyperparameters)
    errors = reconstruction_errors(method, source, method.encode(x), source.encode(x))
    assert [row["layer"] for row in errors] == ["act_fc1"]
    assert errors[0]["value"] == pytest.approx(expected, abs=1e-7)


def test_css_decoding_is_within_half_the_last_digit_of_an_analog_input():
    # the first layer sees the whole image before its window: |a − r| ≤ λ·(V/2)·β^(−(d+T−1)) per element
    method, source, x = _converted("css", {"T": 12, "beta": 2.0, "silent_period": 1})
    (error,) = reconstruction_errors(method, source, method.encode(x), source.encode(x))
    bound = (method.threshold / 2) * 2.0 ** -(1 + 12 - 1)
    assert error["value"] <= bound * math.sqrt(2) / math.sqrt(1.25)


def _smoke_spec(workspace, method: str, axes: dict, fixed: dict | None = None):
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["grids"] = {"probe": {"method": method, "dataset": "digits", "seeds": [0], "axes": axes,
                                 "fixed": fixed or {}}}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    return grid_points(load_params(workspace / "params.yaml"), "probe")[0][1]


class _Captured(Exception):
    """Stops training at its first batch, once the weights it starts from are copied."""


@pytest.mark.parametrize("method, axes", [("ttfs", {"init": ["data"]}),  # data-driven init on a seeded batch
                                          ("latency", {"T": [2]})])  # the LE's BatchNorm statistics
def test_the_init_probe_sees_exactly_the_weights_training_starts_from(workspace, monkeypatch, method, axes):
    spec = _smoke_spec(workspace, method, axes)
    built, seen = [], {}

    def build(*args):
        built.append(original_build(*args))
        return built[-1]

    def first_batch(samples, *args):  # called on the first batch, before its forward pass
        seen.update({key: value.clone() for key, value in built[0].network.state_dict().items()})
        raise _Captured

    original_build = train_module.build_method
    monkeypatch.setattr(train_module, "build_method", build)
    monkeypatch.setattr(train_module, "augment", first_batch)
    with pytest.raises(_Captured):
        train_module.train(spec, progress=False)
    probed = initial_method(spec, load_prepared("digits"), torch.device("cpu")).network.state_dict()
    assert probed.keys() == seen.keys()
    assert all(torch.equal(probed[key], seen[key]) for key in seen)


def _write_grids(workspace, grids: dict) -> None:
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["architectures"].update({"tiny-1": {"kind": "mlp", "hidden": [12]},
                                    "tiny-2": {"kind": "mlp", "hidden": [12, 12]}})
    params["grids"] = grids
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))


def test_a_grid_with_probes_runs_every_seed_and_writes_probes_and_their_table(workspace, capsys):
    _write_grids(workspace, {"depth": {"method": "latency", "dataset": "digits", "seeds": [0, 1], "probes": ["layers"],
                                       "axes": {"arch": ["tiny-1", "tiny-2"], "hidden": ["relaxed"]},
                                       "fixed": {"T": 2}}})
    assert main(["grid", "depth", "--no-progress"]) == 0
    records = read_json(workspace / "reports" / "grids" / "depth" / "records.json")["records"]
    assert sorted((record["arch"], record["seed"]) for record in records) == [
        ("tiny-1", 0), ("tiny-1", 1), ("tiny-2", 0), ("tiny-2", 1)]
    runs = workspace / "runs" / "grids" / "depth" / "digits"
    probes = read_json(runs / "latency@arch=tiny-2,hidden=relaxed" / "1" / "probes.json")
    for stage in ("init", "trained"):  # LE, one hidden LIF, the output neuron; fc1, fc2, output
        assert [row["layer"] for row in probes["stages"][stage]["firing_rate"]] == ["act_fc1", "act_fc2", "act_output"]
        assert [row["layer"] for row in probes["stages"][stage]["grad_norm"]] == ["fc1", "fc2", "output"]
    out = workspace / "reports" / "grids" / "depth"
    table = (out / "probes.csv").read_text().splitlines()
    assert table[0] == "arch,hidden,stage,quantity,layer,name,mean,std,seeds"
    assert len(table) == 1 + 2 * ((2 + 2) + (3 + 3))  # stages × (rates + gradient norms) of tiny-1, then tiny-2
    assert all(line.endswith(",2") for line in table[1:])  # two seeds a layer
    assert "| tiny-2 | relaxed | trained | grad_norm |" in (out / "probes.md").read_text()
    assert all((out / f"{quantity}.png").read_bytes()[:4] == b"\x89PNG" for quantity in ("firing_rate", "grad_norm"))
    written = (runs / "latency@arch=tiny-1,hidden=relaxed" / "0" / "probes.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["grid", "depth", "--no-progress"]) == 0
    assert capsys.readouterr().out.count("done before") == 4
    assert (runs / "latency@arch=tiny-1,hidden=relaxed" / "0" / "probes.json").stat().st_mtime_ns == written


def test_a_conversion_grid_probes_the_reconstruction_of_every_hidden_layer(workspace):
    _write_grids(workspace, {"coupling": {"method": "css", "dataset": "digits", "arch": "tiny-2", "seeds": [0],
                                          "probes": ["layers", "reconstruction"],
                                          "axes": {"T": [2], "negative_spikes": [True, False]}}})
    assert main(["grid", "coupling", "--no-progress"]) == 0
    probes = read_json(workspace / "runs" / "grids" / "coupling" / "digits" / "css@T=2,negative_spikes=False" / "0"
                       / "probes.json")
    assert list(probes["stages"]) == ["trained"]  # converted, never initialised for training
    errors = probes["stages"]["trained"]["reconstruction_error"]
    assert [row["layer"] for row in errors] == ["act_fc1", "act_fc2"] and all(row["value"] > 0 for row in errors)
    assert (workspace / "reports" / "grids" / "coupling" / "reconstruction_error.png").exists()


@pytest.mark.parametrize("grid, message", [
    ({"method": "latency", "arch": "mlp-s", "axes": {"arch": ["mlp-s"]}}, "name the architecture once"),
    ({"method": "latency", "axes": {"T": [2]}, "fixed": {"arch": "mlp-s"}}, "name the architecture once"),
])
def test_an_architecture_is_named_once(workspace, grid, message):
    _write_grids(workspace, {"bad": {"dataset": "digits", **grid}})
    with pytest.raises(ConfigError, match=message):
        load_params(workspace / "params.yaml")


def test_reconstruction_is_a_conversion_probe(workspace, capsys):
    _write_grids(workspace, {"bad": {"method": "latency", "dataset": "digits", "probes": ["reconstruction"],
                                     "axes": {"T": [2]}}})
    assert main(["grid", "bad", "--no-progress"]) == 2
    assert "compares a converted network with its source ANN" in capsys.readouterr().err
