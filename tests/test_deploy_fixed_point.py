"""Fixed point (benchmark/deploy/fixed_point.py): the weight quantizer and the membrane format on tensors
computed by hand, a fixed-point LIF stepped by hand, and the stage's fixed-point section on a run."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from benchmark.deploy.fixed_point import (FixedPointNeuron, Grid, _integrate, fixed_point_method, leak,
                                          quantize_weight, round_half_away)
from snn.engine import LIF
from snn.layers import Folded


def test_round_half_away_from_zero():
    assert round_half_away(torch.tensor([2.5, -2.5, 0.5, -0.5, 1.49])).tolist() == [3.0, -3.0, 1.0, -1.0, 1.0]


@pytest.mark.parametrize("weight, bits, scale, expected", [
    # s = max|W|/(2^(k−1) − 1) = 1.75/7 = 0.25 (exact);  W/s = [2.5, −7, −1.5, 0.4]  -> q = [3, −7, −2, 0]
    # (ties away from zero)
    ([[0.625, -1.75], [-0.375, 0.1]], 4, 0.25, [[3, -7], [-2, 0]]),
    # s = 1/127;  W/s = [38.1, −127, −31.75, 16.002]                                   -> q = [38, −127, −32, 16]
    ([[0.3, -1.0], [-0.25, 0.126]], 8, 1 / 127, [[38, -127], [-32, 16]]),
])
def test_the_weight_quantizer_on_a_hand_computed_tensor(weight, bits, scale, expected):
    quantized, found = quantize_weight(torch.tensor(weight), bits)
    assert found == pytest.approx(scale)
    assert torch.allclose(quantized, torch.tensor(expected, dtype=torch.float32) * scale)


def test_the_largest_weight_is_kept_and_a_zero_layer_stays_zero():
    quantized, _ = quantize_weight(torch.tensor([0.3, -0.7, 0.01]), 4)
    assert float(quantized.abs().max()) == pytest.approx(0.7)  # ±max|W| is a level: q = ±7
    assert quantize_weight(torch.zeros(3), 8) == (pytest.approx(torch.zeros(3)), 0.0)


def test_the_membrane_format_covers_its_range_and_counts_what_it_clamps():
    grid = Grid.covering(3.0)  # ⌈log2 3⌉ = 2: Δ = 2^(2 − 15) = 2^−13, range [−4, 4 − 2^−13]
    assert grid.step == 2.0 ** -13
    assert grid(torch.tensor([1.00006])).item() == 1.0  # 1.00006·8192 = 8192.49 -> 8192 units
    assert grid(torch.tensor([5.0, -5.0])).tolist() == [32767 * 2.0 ** -13, -4.0]
    assert (grid.values, grid.saturated) == (3, 2)


def test_a_fixed_point_lif_stepped_by_hand():
    """β = 0.75, θ = 1, zero reset, a grid of Δ = 1/4 (4 bits: −8..7 units):
    Î = fix([0.3, 0.6, 0.9]) = [0.25, 0.5, 1.0] (1.2, 2.4, 3.6 units -> 1, 2, 4)
    H0 = 0 + 0.25;  H1 = fix(0.75·0.25 = 0.1875 -> 0.75 units -> 1) + 0.5 = 0.75;
    H2 = fix(0.75·0.75 = 0.5625 -> 2.25 units -> 2) + 1.0 = 1.5 ≥ 1: spike, V = 0."""
    spikes, membrane = _integrate(torch.tensor([[0.3], [0.6], [0.9]]), Grid(0.25, bits=4), beta=0.75, threshold=1.0,
                                  reset="zero")
    assert membrane.flatten().tolist() == [0.25, 0.75, 1.5] and spikes.flatten().tolist() == [0.0, 0.0, 1.0]


def test_the_leak_keeps_fifteen_fraction_bits():
    assert leak(1.0) == 1.0 and leak(0.9) == round(0.9 * 2 ** 15) / 2 ** 15 and abs(leak(0.9) - 0.9) < 2 ** -16


class Stub:
    def __init__(self, network):
        self.network = network


def test_a_fixed_point_network_holds_its_membranes_on_a_calibrated_grid():
    torch.manual_seed(0)
    network = nn.Sequential(OrderedDict(fc1=Folded(nn.Linear(4, 3)), act1=LIF(beta=0.5, reset="subtract")))
    calibration = torch.rand(5, 8, 4)
    fixed, layers = fixed_point_method(Stub(network), 8, calibration)
    neuron = fixed.network.act1
    assert isinstance(neuron, FixedPointNeuron) and neuron.membrane == "exact"
    assert neuron.op_semantics == network.act1.op_semantics  # the op counter sees the layer it knows
    step = neuron.fix.step
    assert step == 2.0 ** round(torch.log2(torch.tensor(step)).item())  # a power of two
    (weights,) = [row for row in layers if "weight_scale" in row]
    assert weights["weight_scale"] == pytest.approx(float(network.fc1.layer.weight.detach().abs().max()) / 127)
    levels = fixed.network.fc1.layer.weight / weights["weight_scale"]
    assert torch.allclose(levels, levels.round(), atol=1e-4)  # every weight is a level
    assert isinstance(network.act1, LIF)  # the original is untouched


def test_the_stage_reports_int8_and_int4_beside_fp32_for_the_ann(workspace):
    from benchmark.cli import main
    from benchmark.deploy.stage import run_deploy
    from benchmark.run.config import load_params, resolve_run
    from benchmark.run.runtime import load_model
    from benchmark.data.prepared import load_prepared

    assert main(["train", "--dataset", "digits", "--method", "ann", "--seed", "0", "--no-progress"]) == 0
    spec = resolve_run(load_params(workspace / "params.yaml"), "digits", "ann", 0)
    section = run_deploy(spec)["fixed_point"]
    assert section["fp32"]["cost_model"] == "fp32-45nm" and section["int8"]["cost_model"] == "int8-45nm"
    for bits in ("int8", "int4"):
        assert 0 <= section[bits]["accuracy"] <= 1 and 0 <= section[bits]["agreement_with_fp32"] <= 1
        assert section[bits]["tier1_pj"] < section["fp32"]["tier1_pj"]  # INT8 prices, about the same op counts
    assert section["int8"]["agreement_with_fp32"] >= section["int4"]["agreement_with_fp32"] - 0.05
    trained = load_model(spec, load_prepared("digits"))
    scales = {row["layer"]: row["weight_scale"] for row in section["int8"]["layers"] if "weight_scale" in row}
    assert scales["fc1.layer"] == pytest.approx(float(trained.network.fc1.layer.weight.detach().abs().max()) / 127)
    activations = [row for row in section["int8"]["layers"] if "membrane" in row]
    assert [row["membrane"] for row in activations] == ["input-only"]  # the ANN's pre-activation (ReLU's input)
