"""NIR export and round trip (benchmark/deploy): a hand-checked 2-layer IF network exported, imported by
other libraries and run spike for spike; every "cannot express" reason on a network that has it;
the deploy stage on the smoke workspace."""

from __future__ import annotations

from collections import OrderedDict

import nir
import numpy as np
import pytest
import torch
from torch import nn

from benchmark.contract.method import Readout
from benchmark.contract.semantics import EventKind, OpSemantics
from benchmark.deploy.nir_export import DT, REASONS, export_network, reason_codes
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
    return roundtrip(CountReadout(network), nir.read(tmp_path / "model.nir"), export.nodes, [x], labels, libraries)


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


# --- every reason NIR cannot express a network -----------------------------------------------------


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
    "subtractive-reset": lambda: mlp(LIF(reset="subtract")),
    "initial-membrane": lambda: mlp(LIF(reset="zero", initial_membrane=0.5)),
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


def test_every_reason_has_a_case():
    assert set(CASES) == set(REASONS)


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_reason_is_named_with_its_layer_and_no_graph_is_made(code):
    network = CASES[code]()
    x = torch.rand(3, 2, 1, 4, 4) if code == "max-pooling" else torch.rand(3, 2, 4)
    if code == "not-per-step":
        x[1:] = 0  # what such a layer is given: the input at step 0, zeros after
    export = export_network(network, x)
    assert not export.exportable and export.graph is None
    assert reason_codes(export) == [code], export.reasons
    assert export.reasons[0].layer in dict(network.named_children()) and export.reasons[0].detail


def test_a_neuron_with_two_problems_lists_both():
    export = export_network(mlp(LIF(reset="subtract", initial_membrane=0.5)), torch.rand(3, 2, 4))
    assert reason_codes(export) == ["subtractive-reset", "initial-membrane"]


def test_an_snntorch_leaky_with_subtractive_reset_is_named():
    assert reason_codes(export_network(mlp(LeakyHolder()), torch.rand(3, 2, 4))) == ["subtractive-reset"]


def test_an_integrator_output_and_a_folded_batch_norm_export():
    network = nn.Sequential(OrderedDict(fc1=Folded(nn.Linear(4, 3)), bn=Folded(nn.BatchNorm1d(3)),
                                        act1=LIF(reset="zero"), fc2=Folded(nn.Linear(3, 2)), out=Integrator())).eval()
    export = export_network(network, torch.rand(3, 2, 4))
    assert [row["nir"] for row in export.nodes] == ["Affine", "IF", "Affine", "I"]


# --- the stage on the smoke workspace ----------------------------------------------------------------


def test_the_deploy_stage_names_the_reason_for_a_subtractive_reset_run(workspace):
    from benchmark.cli import main
    from benchmark.contract.io import read_json
    from benchmark.deploy.stage import run_deploy
    from benchmark.run.config import load_params, resolve_run

    run = ["--dataset", "digits", "--method", "rate", "--seed", "0", "--no-progress"]
    assert main(["train", *run]) == 0 and main(["evaluate", *run]) == 0
    record = run_deploy(resolve_run(load_params(workspace / "params.yaml"), "digits", "rate", 0))
    assert record == read_json(workspace / "runs/digits/rate/0/deploy.json")
    assert not record["export"]["exportable"] and record["roundtrip"] is None
    assert record["export"]["reason_codes"] == ["subtractive-reset"]
    assert {r["layer"] for r in record["export"]["reasons"]} == {"act_fc1", "act_output"}
    assert not (workspace / "runs/digits/rate/0/model.nir").exists()
    evaluated = read_json(workspace / "runs/digits/rate/0/eval.json")
    assert record["fixed_point"]["fp32"]["accuracy"] == evaluated["accuracy"]  # the same inputs as evaluate


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
    assert record["export"]["exportable"] and (workspace / "runs/digits/rate/0/model.nir").exists()
    assert [row["nir"] for row in record["export"]["nodes"]] == ["Affine", "LIF", "Affine", "LIF"]
    libraries = record["roundtrip"]["libraries"]
    for library in ("snntorch", "spikingjelly"):
        assert libraries[library]["exact"], libraries[library]
        assert libraries[library]["accuracy"] == record["roundtrip"]["harness_accuracy"]
        assert all(row["spike_count_correlation"] in (None, 1.0) for row in libraries[library]["layers"]
                   if row["nir"] == "LIF")
