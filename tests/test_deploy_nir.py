"""NIR export and round trip (benchmark/deploy): a hand-checked 2-layer IF network exported, imported by
other libraries and run spike for spike; the same network with subtractive reset exported approximately
(reset to zero) and diverging where computed by hand; every refusal and every approximation on a network
that has it; the deploy stage on the smoke workspace, for every rate-coded and converted method."""

from __future__ import annotations

from collections import OrderedDict

import nir
import numpy as np
import pytest
import torch
from torch import nn

from benchmark.contract.method import Readout
from benchmark.contract.semantics import EventKind, OpSemantics
from benchmark.deploy.nir_export import APPROXIMATED, DT, REFUSED, export_network, nir_semantics, reason_codes
from benchmark.deploy.roundtrip import roundtrip
from snn.conversion import Integrator
from snn.engine import LIF
from snn.layers import Folded, ReLU
from snn.temporal import SingleSpikeIF


class CountReadout:
    """The least a round trip needs of a method: its network and a readout (most output spikes)."""

    def __init__(self, network: nn.Module):
        self.network = network

    def readout(self, output: torch.Tensor) -> Readout:
        prediction = output.sum(0).argmax(-1)
        return Readout(prediction, torch.full_like(prediction, output.shape[0]))


def linear(weight: list[list[float]]) -> Folded:
    layer = nn.Linear(len(weight[0]), len(weight), bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
    return Folded(layer)


# W1, W2 and x are dyadic and no membrane equals θ = 1, so every value below is exact in float32.
W1 = [[0.5, 0.375], [0.875, -0.5]]
W2 = [[0.625, 0.5]]
X = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).unsqueeze(1)  # [T=4, B=1, 2]
# Layer 1, I = W1·x: a: 0.875, 0.5, 0.375, 0.875  -> H = 0.875, 1.375 (spike, V = 0), 0.375, 1.25 (spike)
#                    b: 0.375, 0.875, -0.5, 0.375 -> H = 0.375, 1.25 (spike, V = 0), -0.5, -0.125
# Layer 2, I = 0.625·S_a + 0.5·S_b: 0, 1.125, 0, 0.625 -> H = 0, 1.125 (spike, V = 0), 0, 0.625
HIDDEN = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]).unsqueeze(1)
OUTPUT = torch.tensor([[0.0], [1.0], [0.0], [0.0]]).unsqueeze(1)


def if_network(beta: float = 1.0) -> nn.Sequential:
    return nn.Sequential(OrderedDict(fc1=linear(W1), act1=LIF(beta=beta, reset="zero"),
                                     fc2=linear(W2), act2=LIF(beta=beta, reset="zero")))


def test_the_hand_checked_if_network_runs_as_computed_in_the_harness():
    network = if_network()
    assert torch.equal(network[:2](X), HIDDEN) and torch.equal(network(X), OUTPUT)


def test_the_if_network_exports_with_its_weights_thresholds_resets_and_time_step(tmp_path):
    export = export_network(if_network(), X)
    assert export.exportable and export.reasons == []
    assert [(row["node"], row["nir"]) for row in export.nodes] == [("fc1", "Affine"), ("act1", "IF"),
                                                                   ("fc2", "Affine"), ("act2", "IF")]
    nir.write(tmp_path / "model.nir", export.graph)
    graph = nir.read(tmp_path / "model.nir")
    assert np.array_equal(graph.nodes["fc1"].weight, np.array(W1, np.float32))
    assert np.array_equal(graph.nodes["fc1"].bias, np.zeros(2, np.float32))  # no bias: Affine with b = 0
    assert np.array_equal(graph.nodes["act1"].r, np.full(2, 1 / DT, np.float32))  # v += DT·r·I = I
    assert np.array_equal(graph.nodes["act1"].v_threshold, np.ones(2, np.float32))
    assert np.array_equal(graph.nodes["act1"].v_reset, np.zeros(2, np.float32))
    assert float(graph.metadata["dt"]) == DT and int(graph.metadata["steps"]) == 4
    assert sorted(graph.edges) == sorted([("input", "fc1"), ("fc1", "act1"), ("act1", "fc2"), ("fc2", "act2"),
                                          ("act2", "output")])


def test_a_leak_becomes_tau_and_r_that_give_beta_under_euler():
    node = export_network(if_network(beta=0.75), X).graph.nodes["act1"]
    tau, r = float(node.tau[0]), float(node.r[0])
    assert 1 - DT / tau == pytest.approx(0.75) and DT / tau * r == pytest.approx(1.0)  # v ← β·v + I


def _round_trip(network, x, libraries, tmp_path):
    export = export_network(network, x)
    nir.write(tmp_path / "model.nir", export.graph)
    labels = torch.zeros(x.shape[1], dtype=torch.long)
    stated = None if export.exact else nir_semantics(network, export)
    return roundtrip(CountReadout(network), nir.read(tmp_path / "model.nir"), export.nodes, [x], labels, libraries,
                     stated)


def test_the_if_network_round_trips_spike_for_spike_in_spikingjelly_and_norse(tmp_path):
    pytest.importorskip("spikingjelly")
    pytest.importorskip("norse")
    report = _round_trip(if_network(), X, ("spikingjelly", "norse"), tmp_path)["libraries"]
    for library in ("spikingjelly", "norse"):
        assert report[library]["status"] == "ok", report[library]
        assert report[library]["exact"] and report[library]["first_divergence"] is None
        assert report[library]["prediction_agreement"] == 1.0
        act1, act2 = (row for row in report[library]["layers"] if row["nir"] == "IF")
        assert act1["mismatched"] == 0 and act1["spikes_per_sample"] == act1["library_spikes_per_sample"] == 3.0
        assert act2["mismatched"] == 0 and act2["library_spikes_per_sample"] == 1.0


def test_snntorch_refuses_the_if_nodes_with_its_own_error(tmp_path):
    """snnTorch 1.0.0 maps nir.IF to snn.Leaky(beta=0.9) and asserts r == 1: a named difference."""
    report = _round_trip(if_network(), X, ("snntorch",), tmp_path)["libraries"]["snntorch"]
    assert report["status"] == "failed" and report["stage"] == "import"
    assert "r != 1" in report["error"] and "beta=0.9" in report["notes"]


def test_a_leaky_network_is_exact_in_snntorch_and_spikingjelly_and_norse_diverges_at_its_first_lif(tmp_path):
    pytest.importorskip("spikingjelly")
    pytest.importorskip("norse")
    torch.manual_seed(0)  # weights that are not dyadic: no membrane equals θ (see the next test)
    network = nn.Sequential(OrderedDict(fc1=Folded(nn.Linear(2, 3)), act1=LIF(beta=0.5, reset="zero"),
                                        fc2=Folded(nn.Linear(3, 2)), act2=LIF(beta=0.5, reset="zero")))
    with torch.no_grad():
        for layer in (network.fc1.layer, network.fc2.layer):
            layer.weight.uniform_(0.2, 1.2)
    x = (torch.rand(6, 16, 2) > 0.3).float()
    report = _round_trip(network, x, ("snntorch", "spikingjelly", "norse"), tmp_path)["libraries"]
    assert report["spikingjelly"]["layers"][1]["spikes_per_sample"] > 1  # the test sees spikes
    assert report["snntorch"]["exact"] and report["spikingjelly"]["exact"]
    assert report["norse"]["first_divergence"]["layer"] == "act1"  # norse reads no r: input scaled by DT/τ
    assert "r is not read" in report["norse"]["notes"]


def test_a_membrane_equal_to_the_threshold_fires_in_the_harness_and_spikingjelly_not_in_norse(tmp_path):
    """NIR and norse fire at v > θ, snn.engine.LIF and SpikingJelly at v ≥ θ (the graph's threshold_test)."""
    pytest.importorskip("spikingjelly")
    pytest.importorskip("norse")
    network = nn.Sequential(OrderedDict(fc1=linear([[0.5]]), act1=LIF(beta=1.0, reset="zero")))
    x = torch.ones(2, 1, 1)  # H = 0.5, then 1.0 = θ
    assert network(x).flatten().tolist() == [0.0, 1.0]
    report = _round_trip(network, x, ("spikingjelly", "norse"), tmp_path)["libraries"]
    assert report["spikingjelly"]["exact"]
    assert report["norse"]["first_divergence"] == {"layer": "act1", "node": "act1", "step": 1}


# --- a subtractive reset exported as NIR's reset to zero ---------------------------------------------

# Layer 1 takes X[t] = 1 for T = 7 steps through W1 = [0.625, 0.375]ᵀ; θ = 1 everywhere, no membrane equals θ.
#   a, I = 0.625  subtract: H = .625, 1.25 S (V .25), .875, 1.5 S (V .5), 1.125 S (V .125), .75, 1.375 S
#                 zero:     H = .625, 1.25 S (V 0),  .625, 1.25 S,       .625,             1.25 S, .625
#   b, I = 0.375  subtract: H = .375, .75, 1.125 S (V .125), .5, .875, 1.25 S (V .25), .625
#                 zero:     H = .375, .75, 1.125 S (V 0),    .375, .75, 1.125 S,       .375   (the same spikes)
# Layer 2, I = 0.625·S_a + 0.5·S_b:
#   subtract: I = 0, .625, .5, .625, .625, .5, .625 -> H = 0, .625, 1.125 S (V .125), .75, 1.375 S (V .375), .875, 1.5 S
#   zero:     I = 0, .625, .5, .625, 0, 1.125, 0    -> H = 0, .625, 1.125 S (V 0), .625, .625, 1.75 S, 0
RESIDUAL_W1, RESIDUAL_W2 = [[0.625], [0.375]], [[0.625, 0.5]]
ONES = torch.ones(7, 1, 1)
SUBTRACT_HIDDEN = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 0], [1, 0], [0, 1], [1, 0]], dtype=torch.float32)
SUBTRACT_OUTPUT = torch.tensor([0, 0, 1, 0, 1, 0, 1], dtype=torch.float32)
ZERO_HIDDEN = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 0], [0, 0], [1, 1], [0, 0]], dtype=torch.float32)
ZERO_OUTPUT = torch.tensor([0, 0, 1, 0, 0, 1, 0], dtype=torch.float32)


def subtracting_network() -> nn.Sequential:
    return nn.Sequential(OrderedDict(fc1=linear(RESIDUAL_W1), act1=LIF(reset="subtract"),
                                     fc2=linear(RESIDUAL_W2), act2=LIF(reset="subtract")))


def test_the_residual_network_runs_as_computed_with_either_reset():
    network = subtracting_network()
    stated = nir_semantics(network, export_network(network, ONES))
    assert torch.equal(network[:2](ONES).squeeze(1), SUBTRACT_HIDDEN)
    assert torch.equal(network(ONES).flatten(), SUBTRACT_OUTPUT)
    assert torch.equal(stated[:2](ONES).squeeze(1), ZERO_HIDDEN) and torch.equal(stated(ONES).flatten(), ZERO_OUTPUT)
    assert network.act1.reset == "subtract"  # nir_semantics changes a copy


def test_a_subtractive_reset_exports_as_reset_to_zero_and_says_so_in_the_export_and_the_file(tmp_path):
    export = export_network(subtracting_network(), ONES)
    assert export.exportable and not export.exact and export.reasons == []
    assert [(r.layer, r.code) for r in export.approximations] == [("act1", "subtractive-reset"),
                                                                  ("act2", "subtractive-reset")]
    detail = "harness: V[t] = H[t] - theta*S[t] (reset 'subtract', theta = 1.0); NIR IF: v = v_reset = 0 after a spike"
    assert export.approximations[0].detail == detail
    nir.write(tmp_path / "model.nir", export.graph)
    graph = nir.read(tmp_path / "model.nir")
    assert np.array_equal(graph.nodes["act1"].v_reset, np.zeros(2, np.float32))
    assert str(graph.metadata["approximations"]).startswith(f"act1: subtractive-reset: {detail}; act2: ")


def test_the_approximate_graph_diverges_from_the_harness_where_computed_in_spikingjelly_and_norse(tmp_path):
    """The libraries run the graph's reset to zero, compared with the harness's subtraction: layer 1 first
    differs at t = 4 (a fires again on its residual), at t = 4, 5, 6; so does layer 2."""
    pytest.importorskip("spikingjelly")
    pytest.importorskip("norse")
    report = _round_trip(subtracting_network(), ONES, ("spikingjelly", "norse"), tmp_path)
    assert report["harness_nir_semantics"] == {"accuracy": 1.0, "prediction_agreement": 1.0}  # one class
    for library in ("spikingjelly", "norse"):
        result = report["libraries"][library]
        assert result["status"] == "ok" and not result["exact"], result
        assert result["first_divergence"] == {"layer": "act1", "node": "act1", "step": 4}
        act1, act2 = (row for row in result["layers"] if row["nir"] == "IF")
        assert (act1["mismatched"], act1["spikes_per_sample"], act1["library_spikes_per_sample"]) == (3, 6.0, 5.0)
        assert act1["spike_count_correlation"] == pytest.approx(1.0)  # counts (4, 2) against (3, 2)
        assert (act2["mismatched"], act2["spikes_per_sample"], act2["library_spikes_per_sample"]) == (3, 3.0, 2.0)
        assert act2["spike_count_correlation"] is None  # one neuron: no spread to correlate


def test_an_approximate_graph_is_exact_where_no_residual_reaches_the_threshold_again(tmp_path):
    """Neuron b alone: its residuals (0.125, 0.25) never change a crossing within T = 7 steps."""
    pytest.importorskip("spikingjelly")
    pytest.importorskip("norse")
    network = nn.Sequential(OrderedDict(fc1=linear([[0.375]]), act1=LIF(reset="subtract")))
    assert network(ONES).flatten().tolist() == SUBTRACT_HIDDEN[:, 1].tolist()
    report = _round_trip(network, ONES, ("spikingjelly", "norse"), tmp_path)["libraries"]
    for library in ("spikingjelly", "norse"):
        assert report[library]["exact"] and report[library]["first_divergence"] is None, report[library]


def test_a_leaky_subtractive_reset_diverges_where_computed_in_snntorch_and_spikingjelly(tmp_path):
    """β = 1/2, θ = 1, I = 0.875 (LIF nodes: snnTorch imports them).
    subtract: H = .875, 1.3125 S (V .3125), 1.03125 S (V .03125), .890625, 1.3203125 S (V .3203125), 1.03515625 S
    zero:     H = .875, 1.3125 S (V 0),     .875,                 1.3125 S, .875,                     1.3125 S
    They first differ at t = 2, at t = 2, 3, 4."""
    pytest.importorskip("spikingjelly")
    network = nn.Sequential(OrderedDict(fc1=linear([[0.875]]), act1=LIF(beta=0.5, reset="subtract")))
    x = torch.ones(6, 1, 1)
    assert network(x).flatten().tolist() == [0, 1, 1, 0, 1, 1]
    report = _round_trip(network, x, ("snntorch", "spikingjelly"), tmp_path)["libraries"]
    for library in ("snntorch", "spikingjelly"):
        assert report[library]["first_divergence"] == {"layer": "act1", "node": "act1", "step": 2}, report[library]
        (act1,) = (row for row in report[library]["layers"] if row["nir"] == "LIF")
        assert (act1["mismatched"], act1["spikes_per_sample"], act1["library_spikes_per_sample"]) == (3, 4.0, 3.0)


# --- every refusal and every approximation on a network that has it -----------------------------------


class Emits(nn.Module):
    """A neuron stand-in that declares the events it emits (the exporter reads only the declaration)."""

    def __init__(self, semantics: OpSemantics):
        super().__init__()
        self.op_semantics = semantics

    def forward(self, x):
        return (x > 0).to(x.dtype)


class FirstStepOnly(Folded):
    """A synaptic layer that reads step 0 only (like the latency method's LE layer)."""

    def forward(self, x):
        if x.shape[0] > 1 and bool(x[1:].any()):
            raise ValueError("reads the input of step 0 only")
        return self.layer(x[0]).unsqueeze(0)


class StandardizedLinear(nn.Linear):
    """Computes its weight at run time (like weight standardization)."""

    def forward(self, x):
        return nn.functional.linear(x, self.weight / self.weight.norm(), self.bias)


class LeakyHolder(nn.Module):
    """A module holding an snntorch.Leaky with subtractive reset, stepped from zero (the snnTorch pattern)."""

    def __init__(self):
        super().__init__()
        import snntorch

        self.lif = snntorch.Leaky(beta=0.9, reset_mechanism="subtract")
        self.op_semantics = OpSemantics(EventKind.BINARY, update_acs=1, update_macs=1)

    def forward(self, x):
        membrane, spikes = torch.zeros_like(x[0]), []
        for x_t in x:
            spike, membrane = self.lif(x_t, membrane)
            spikes.append(spike)
        return torch.stack(spikes)


def mlp(neuron: nn.Module, first: nn.Module | None = None) -> nn.Sequential:
    return nn.Sequential(OrderedDict(fc1=first or Folded(nn.Linear(4, 3)), act1=neuron, fc2=Folded(nn.Linear(3, 2))))


CASES = {
    "ternary-events": lambda: mlp(Emits(OpSemantics(EventKind.TERNARY, payload_bits=2))),
    "graded-events": lambda: mlp(Emits(OpSemantics(EventKind.GRADED, payload_bits=32))),
    "single-spike-mask": lambda: mlp(SingleSpikeIF(1.0)),
    "analog-activation": lambda: mlp(ReLU()),
    "analog-state": lambda: mlp(Emits(OpSemantics(EventKind.ANALOG, payload_bits=32, update_acs=1))),
    "unknown-neuron": lambda: mlp(Emits(OpSemantics(EventKind.BINARY))),
    "not-per-step": lambda: mlp(LIF(reset="zero"), first=FirstStepOnly(nn.Linear(4, 3))),
    "runtime-weights": lambda: mlp(LIF(reset="zero"), first=Folded(StandardizedLinear(4, 3))),
    "max-pooling": lambda: nn.Sequential(OrderedDict(pool=Folded(nn.MaxPool2d(2)), flatten=Folded(nn.Flatten()),
                                                     fc1=Folded(nn.Linear(4, 3)), act1=LIF(reset="zero"))),
    "batch-norm": lambda: nn.Sequential(OrderedDict(fc1=Folded(nn.Linear(4, 3)), act1=LIF(reset="zero"),
                                                    bn=Folded(nn.BatchNorm1d(3)).eval())),
    "unsupported-layer": lambda: mlp(LIF(reset="zero"), first=Folded(nn.Sequential(nn.Linear(4, 3), nn.Tanh()))),
}


def test_every_refusal_has_a_case_and_no_code_is_both_refused_and_approximated():
    assert set(CASES) == set(REFUSED) and not set(REFUSED) & set(APPROXIMATED)


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_refusal_is_named_with_its_layer_and_no_graph_is_made(code):
    network = CASES[code]()
    x = torch.rand(3, 2, 1, 4, 4) if code == "max-pooling" else torch.rand(3, 2, 4)
    if code == "not-per-step":
        x[1:] = 0  # what such a layer is given: the input at step 0, zeros after
    export = export_network(network, x)
    assert not export.exportable and export.graph is None
    assert reason_codes(export) == [code], export.reasons
    assert export.reasons[0].layer in dict(network.named_children()) and export.reasons[0].detail


def test_an_initial_membrane_exports_as_the_zero_state_and_the_detail_gives_its_value():
    export = export_network(mlp(LIF(reset="zero", threshold=2.0, initial_membrane=0.5)), torch.rand(3, 2, 4))
    assert export.exportable and [r.code for r in export.approximations] == ["initial-membrane"]
    assert export.approximations[0].detail == "harness: V[-1] = 0.5*theta = 1.0; NIR IF: v[-1] = 0"


def test_a_neuron_with_two_approximations_lists_both_and_nir_semantics_applies_both():
    network = mlp(LIF(reset="subtract", initial_membrane=0.5))
    export = export_network(network, torch.rand(3, 2, 4))
    assert [r.code for r in export.approximations] == ["subtractive-reset", "initial-membrane"]
    stated = nir_semantics(network, export).act1
    assert (stated.reset, stated.initial_membrane) == ("zero", 0.0)


def test_an_snntorch_leaky_with_subtractive_reset_exports_as_a_zero_reset_lif():
    network = mlp(LeakyHolder())
    export = export_network(network, torch.rand(3, 2, 4))
    assert [row["nir"] for row in export.nodes] == ["Affine", "LIF", "Affine"]
    assert [r.code for r in export.approximations] == ["subtractive-reset"]
    assert "U[t] = beta*U[t-1] + I[t] - theta*S[t-1]" in export.approximations[0].detail
    current = torch.full((4, 1, 1), 0.75)  # β = 0.9: U = .75, 1.425 S, then 1.0325 S (subtract) or .75 (zero)
    assert network.act1(current).flatten().tolist() == [0, 1, 1, 0]
    assert nir_semantics(network, export).act1(current).flatten().tolist() == [0, 1, 0, 1]


def test_a_refusal_stops_the_export_and_the_approximations_are_still_listed():
    network = nn.Sequential(OrderedDict(fc1=Folded(nn.Linear(4, 3)), act1=LIF(reset="subtract"),
                                        fc2=Folded(nn.Linear(3, 2)), act2=SingleSpikeIF(1.0)))
    export = export_network(network, torch.rand(3, 2, 4))
    assert export.graph is None and reason_codes(export) == ["single-spike-mask"]
    assert [(r.layer, r.code) for r in export.approximations] == [("act1", "subtractive-reset")]


def test_an_integrator_output_and_a_folded_batch_norm_export():
    network = nn.Sequential(OrderedDict(fc1=Folded(nn.Linear(4, 3)), bn=Folded(nn.BatchNorm1d(3)),
                                        act1=LIF(reset="zero"), fc2=Folded(nn.Linear(3, 2)), out=Integrator())).eval()
    export = export_network(network, torch.rand(3, 2, 4))
    assert [row["nir"] for row in export.nodes] == ["Affine", "IF", "Affine", "I"]


def _library(agreement: float, dropped: tuple[str, ...] = ()) -> dict:
    return {"status": "ok", "prediction_agreement": agreement,
            "layers": [{"node": "fc1", "compared": True}, *({"node": node, "compared": False} for node in dropped)]}


FAILED = {"status": "failed", "stage": "import", "error": "AssertionError: r != 1 not supported"}


def test_the_portable_cell_states_the_kind_what_is_approximated_and_each_measured_agreement():
    from benchmark.deploy.nir_export import Export, Reason
    from benchmark.deploy.stage import portable

    graph = export_network(if_network(), X).graph
    reset, start = (Reason("act1", "LIF", code, "") for code in ("subtractive-reset", "initial-membrane"))
    exact = {"harness_nir_semantics": None, "libraries": {"snntorch": _library(1.0), "norse": _library(0.5)}}
    assert portable(Export(graph, [], [], []), exact) == "exact (agreement: snntorch 100.0 %, norse 50.0 %)"
    measured = {"harness_nir_semantics": {"accuracy": 0.5, "prediction_agreement": 0.844},
                "libraries": {"snntorch": FAILED, "norse": _library(0.429, ("act_output",))}}
    assert portable(Export(graph, [], [], [reset, start]), measured) == (
        "approximate (subtractive reset → reset to zero, initial membrane → 0; agreement: NIR semantics in the "
        "harness 84.4 %, norse 42.9 % without act_output)")
    measured["libraries"] = {"snntorch": FAILED}
    assert portable(Export(graph, [], [], [reset]), measured) == (
        "approximate (subtractive reset → reset to zero; agreement: NIR semantics in the harness 84.4 %; no library "
        "ran it)")
    refusals = [Reason("act2", "GammaSigmaDelta", "graded-events", ""), Reason("act1", "SingleSpikeIF",
                                                                                "single-spike-mask", "")]
    assert portable(Export(None, refusals, [], [reset]), None) == "no: graded-events, single-spike-mask"


# --- the stage on the smoke workspace ----------------------------------------------------------------


def _deploy(workspace, method: str, *trained: str) -> dict:
    """Trains `trained` then `method` on the smoke workspace and runs its deploy stage."""
    from benchmark.cli import main
    from benchmark.deploy.stage import run_deploy
    from benchmark.run.config import load_params, resolve_run

    for name in (*trained, method):
        assert main(["train", "--dataset", "digits", "--method", name, "--seed", "0", "--no-progress"]) == 0
    return run_deploy(resolve_run(load_params(workspace / "params.yaml"), "digits", method, 0))


def test_the_deploy_stage_exports_a_subtractive_reset_run_approximately_and_measures_it(workspace):
    from benchmark.cli import main
    from benchmark.contract.io import read_json

    record = _deploy(workspace, "rate")
    assert record == read_json(workspace / "runs/digits/rate/0/deploy.json")
    export = record["export"]
    assert export["exportable"] == "approximate" and export["file"] == "model.nir" and export["reasons"] == []
    assert (workspace / "runs/digits/rate/0/model.nir").exists()
    assert export["approximation_codes"] == ["subtractive-reset"]
    assert [r["layer"] for r in export["approximations"]] == ["act_fc1", "act_output"]
    roundtrip_record, snntorch = record["roundtrip"], record["roundtrip"]["libraries"]["snntorch"]
    assert snntorch["status"] == "ok" and snntorch["first_divergence"]["layer"] == "act_fc1"
    stated = roundtrip_record["harness_nir_semantics"]
    # snnTorch and the harness with the graph's semantics run the same equations (up to float rounding)
    assert snntorch["prediction_agreement"] == pytest.approx(stated["prediction_agreement"], abs=0.01)
    assert record["portable"].startswith("approximate (subtractive reset → reset to zero; agreement: NIR semantics "
                                         f"in the harness {100 * stated['prediction_agreement']:.1f} %, snntorch ")
    assert main(["evaluate", "--dataset", "digits", "--method", "rate", "--seed", "0", "--no-progress"]) == 0
    evaluated = read_json(workspace / "runs/digits/rate/0/eval.json")
    assert record["fixed_point"]["fp32"]["accuracy"] == evaluated["accuracy"]  # the same inputs as evaluate


@pytest.mark.parametrize("method, source, approximated, summary", [
    ("convert", "ann", ["subtractive-reset"], "subtractive reset → reset to zero"),
    ("qcfs", "qcfs-ann", ["initial-membrane", "subtractive-reset"],
     "subtractive reset → reset to zero, initial membrane → 0"),
])
def test_the_converted_runs_export_approximately_with_their_reset_and_initial_membrane_stated(
        workspace, method, source, approximated, summary):
    record = _deploy(workspace, method, source)
    export = record["export"]
    assert export["exportable"] == "approximate" and export["approximation_codes"] == approximated
    assert [row["nir"] for row in export["nodes"]] == ["Affine", "IF", "Affine", "I"]  # the analog input is exact
    assert 0 <= record["roundtrip"]["harness_nir_semantics"]["prediction_agreement"] <= 1
    for entry in record["roundtrip"]["libraries"].values():  # each library ran it, or says why not
        assert entry["status"] == "ok" or entry["error"]
    assert record["portable"].startswith(f"approximate ({summary}; agreement: NIR semantics in the harness ")


def test_the_deploy_stage_refuses_a_single_spike_run_with_its_reason(workspace):
    record = _deploy(workspace, "ttfs")
    assert record["export"]["exportable"] is False and record["roundtrip"] is None
    assert record["export"]["reason_codes"] == ["single-spike-mask"] and record["portable"] == "no: single-spike-mask"
    assert not (workspace / "runs/digits/ttfs/0/model.nir").exists()


def test_the_deploy_stage_exports_and_round_trips_a_zero_reset_network(workspace, monkeypatch):
    """The rate run's trained weights with zero-reset LIF neurons: NIR expresses it; snnTorch and
    SpikingJelly run it spike for spike on the test set."""
    pytest.importorskip("spikingjelly")
    import benchmark.deploy.stage as stage
    from benchmark.cli import main
    from benchmark.run.config import load_params, resolve_run

    assert main(["train", "--dataset", "digits", "--method", "rate", "--seed", "0", "--no-progress"]) == 0
    loaded = stage.load_for_evaluation

    def with_zero_reset(spec):
        method, *rest = loaded(spec)
        for name, child in list(method.network.named_children()):
            if hasattr(child, "lif"):
                setattr(method.network, name, LIF(beta=float(child.lif.beta), threshold=float(child.lif.threshold),
                                                  reset="zero"))
        return (method, *rest)

    monkeypatch.setattr(stage, "load_for_evaluation", with_zero_reset)
    record = stage.run_deploy(resolve_run(load_params(workspace / "params.yaml"), "digits", "rate", 0))
    assert record["export"]["exportable"] is True and (workspace / "runs/digits/rate/0/model.nir").exists()
    assert record["export"]["approximations"] == [] and record["roundtrip"]["harness_nir_semantics"] is None
    assert record["portable"].startswith("exact (agreement: snntorch 100.0 %, spikingjelly 100.0 %")
    assert [row["nir"] for row in record["export"]["nodes"]] == ["Affine", "LIF", "Affine", "LIF"]
    libraries = record["roundtrip"]["libraries"]
    for library in ("snntorch", "spikingjelly"):
        assert libraries[library]["exact"], libraries[library]
        assert libraries[library]["accuracy"] == record["roundtrip"]["harness_accuracy"]
        assert all(row["spike_count_correlation"] in (None, 1.0) for row in libraries[library]["layers"]
                   if row["nir"] == "LIF")
