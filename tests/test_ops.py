"""The op counter against counts derived by hand (NeuroBench style): arithmetic in the comments."""

from __future__ import annotations

import json
import pickle
from collections import OrderedDict

import pytest
import torch
from torch import Tensor, nn

from benchmark.contract.errors import OpCountError
from benchmark.contract.semantics import ANALOG_VALUES, BINARY_SPIKES, EventKind, OpSemantics
from benchmark.metrics.ops import OpCounter
from snn.arch import ArchSpec, build_network
from snn.engine import LIF
from snn.layers import Folded, ReLU


class Producer(nn.Module):
    """Passes its input through, declaring it as events of `kind` (the counter never looks at values)."""

    def __init__(self, kind: EventKind, stateful: bool = False):
        super().__init__()
        self.op_semantics = OpSemantics(kind, payload_bits=4 if kind is EventKind.GRADED else 1, stateful=stateful)

    def forward(self, x: Tensor) -> Tensor:
        return x


class Ternary(nn.Module):
    """Signed spikes: sign(x) in {-1, 0, +1}."""

    op_semantics = OpSemantics(EventKind.TERNARY, payload_bits=2, stateful=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sign(x)


def linear(weight: list[list[float]]) -> Folded:
    out_features, in_features = len(weight), len(weight[0])
    layer = nn.Linear(in_features, out_features, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
    return Folded(layer)


def base_totals(counts) -> dict:
    """The synaptic totals and neuron updates (the update ops, bits and every-step figures: their own tests)."""
    return {key: counts.totals[key] for key in ("dense", "acs", "macs", "neuron_updates")}


def count(network: nn.Sequential, x: Tensor, semantics: OpSemantics = BINARY_SPIKES):
    with OpCounter(network, semantics) as counter:
        network(x)
    return counter.compute(x.shape[1])


def tiny_mlp() -> nn.Sequential:
    # fc1: a = x0 + 0.5·x2, b = 0.2·x0 + 0.3·x1; IF neurons (β = 1, θ = 1, subtract reset)
    return nn.Sequential(OrderedDict(
        fc1=linear([[1.0, 0.0, 0.5], [0.2, 0.3, 0.0]]),
        lif=LIF(beta=1.0, threshold=1.0),
        fc2=linear([[1.0, 1.0]] * 4),
    ))


# T = 2, B = 1: x[0] = (1, 0, 1), x[1] = (0, 1, 0)
MLP_INPUT = torch.tensor([[[1.0, 0.0, 1.0]], [[0.0, 1.0, 0.0]]])


def test_binary_mlp_counts_match_hand_derivation():
    # t=0: I = (1 + 0.5, 0.2) = (1.5, 0.2) -> H = (1.5, 0.2): a spikes (V_a = 0.5), b does not
    # t=1: I = (0, 0.3) -> H = (0.5 + 0, 0.2 + 0.3) = (0.5, 0.5): no spike
    counts = count(tiny_mlp(), MLP_INPUT)
    fc1, lif, fc2 = counts.layers
    # fc1: binary input, nonzeros 2 at t=0 and 1 at t=1, fan-out 2 -> ACs (2 + 1)·2 = 6; dense 3·2·T=2 = 12
    assert (fc1["name"], fc1["type"], fc1["event_kind_in"]) == ("fc1", "Linear", "binary")
    assert (fc1["dense"], fc1["acs"], fc1["macs"]) == (12, 6, 0)
    # lif: 2 neurons, 1 spike; IF state updates 2 neurons · 2 steps = 4, one AC each, no leak MAC
    assert (lif["spikes"], lif["neurons"], lif["spikes_per_neuron"]) == (1, 2, 0.5)
    assert (lif["neuron_updates"], lif["update_acs"], lif["update_macs"]) == (4, 4, 0)
    assert lif["event_kind_in"] == "analog"  # the current out of fc1
    # fc2: one spike at t=0, fan-out 4 -> ACs 4; dense 2·4·2 = 16
    assert (fc2["dense"], fc2["acs"], fc2["macs"], fc2["event_kind_in"]) == (16, 4, 0, "binary")
    assert base_totals(counts) == {"dense": 12 + 16, "acs": 6 + 4, "macs": 0, "neuron_updates": 4}
    assert counts.spikes_per_sample == 1
    # per step: ACs t=0: fc1 2·2 + fc2 1·4 = 8, t=1: fc1 1·2 + fc2 0 = 2
    assert counts.per_step == {"acs": (8, 2), "macs": (0, 0), "spikes": (1, 0)}
    assert counts.T == 2 and counts.samples == 1


def test_analog_input_is_charged_as_macs_in_the_first_layer():
    counts = count(tiny_mlp(), MLP_INPUT, ANALOG_VALUES)
    # fc1 now receives analog values: the same 3 nonzero inputs · fan-out 2 = 6 MACs; fc2 unchanged
    assert counts.layers[0]["event_kind_in"] == "analog"
    assert (counts.totals["acs"], counts.totals["macs"]) == (4, 6)
    assert counts.per_step["macs"] == (4, 2)


def test_leaky_neuron_charges_one_mac_per_update():
    network = tiny_mlp()
    network.lif = LIF(beta=0.5)
    lif = count(network, MLP_INPUT).layers[1]
    assert (lif["neuron_updates"], lif["update_acs"], lif["update_macs"]) == (4, 4, 4)


def test_per_step_counts_sum_over_the_batch():
    # B = 2: the same sample twice -> per-sample counts unchanged, per-step sums over B then / 2
    counts = count(tiny_mlp(), MLP_INPUT.repeat(1, 2, 1))
    assert counts.samples == 2
    assert base_totals(counts) == {"dense": 28, "acs": 10, "macs": 0, "neuron_updates": 4}
    assert counts.per_step["acs"] == (8, 2)


@pytest.mark.parametrize(
    "pixel, positions",
    [
        ((0, 0), 4),  # corner: read by the 2×2 output positions around it
        ((0, 1), 6),  # edge: 2 rows × 3 columns
        ((1, 1), 9),  # interior: all 3×3 neighbours
        ((3, 3), 4),  # the opposite corner
    ],
)
def test_conv_fan_out_is_exact_at_borders(pixel, positions):
    out_channels = 3
    network = nn.Sequential(Folded(nn.Conv2d(1, out_channels, 3, padding=1)))
    x = torch.zeros(1, 1, 1, 4, 4)
    x[0, 0, 0, pixel[0], pixel[1]] = 1.0
    counts = count(network, x)
    # effective ACs = positions · out_channels; dense = (3·4·4 outputs) · (1 in-channel · 3·3) = 432
    assert counts.totals["acs"] == positions * out_channels
    assert counts.totals["dense"] == 3 * 4 * 4 * 1 * 3 * 3


def test_conv_corner_and_middle_pixels_add_up():
    x = torch.zeros(1, 1, 1, 4, 4)
    x[0, 0, 0, 0, 0] = x[0, 0, 0, 1, 2] = 1.0
    counts = count(nn.Sequential(Folded(nn.Conv2d(1, 3, 3, padding=1))), x)
    assert counts.totals["acs"] == (4 + 9) * 3


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(2, 4, 3, stride=2, padding=1),
        nn.Conv2d(2, 4, 3, stride=2),
        nn.Conv2d(2, 4, (3, 2), padding="same", dilation=2),
        nn.Conv2d(4, 6, 3, padding=1, groups=2),
        pytest.param(  # odd total padding: torch puts the extra pixel after
            nn.Conv2d(2, 4, 4, padding="same"), marks=pytest.mark.filterwarnings("ignore:Using padding='same'")
        ),
        nn.Conv2d(2, 4, 5, stride=3, padding=2),
    ],
    ids=["stride2-pad1", "stride2-valid", "same-dilated", "groups2", "same-even-kernel", "k5-stride3"],
)
def test_conv_effective_ops_equal_taps_reading_a_nonzero_input(conv):
    # independent reference: convolve the nonzero mask with an all-ones kernel of the layer's own
    # shape; each output sums the taps that read a nonzero input, so the total is Σ fan-out
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 3, conv.in_channels, 7, 9, generator=generator) < 0.3).float()
    ones = torch.ones_like(conv.weight)
    reference = nn.functional.conv2d(x.flatten(0, 1), ones, None, conv.stride, conv.padding, conv.dilation, conv.groups)
    counts = count(nn.Sequential(Folded(conv)), x)
    assert counts.totals["acs"] * 3 == reference.sum().item()  # per sample: B = 3
    # dense: output elements · in_channels/groups · kh·kw, per step, T = 2
    kh, kw = conv.kernel_size
    per_step = reference[0].numel() * conv.in_channels // conv.groups * kh * kw
    assert counts.totals["dense"] == 2 * per_step


def test_ternary_events_are_charged_as_acs_and_counted_as_spikes():
    # x[0] = (0.5, -2, 0, 0) -> (+1, -1, 0, 0); x[1] = (0, 0, -1, 3) -> (0, 0, -1, +1)
    network = nn.Sequential(Ternary(), Folded(nn.Linear(4, 5)))
    x = torch.tensor([[[0.5, -2.0, 0.0, 0.0]], [[0.0, 0.0, -1.0, 3.0]]])
    counts = count(network, x, ANALOG_VALUES)
    # 2 + 2 signed spikes, fan-out 5 -> 20 ACs; the ternary layer is stateless: no updates
    assert base_totals(counts) == {"dense": 2 * 4 * 5, "acs": 20, "macs": 0, "neuron_updates": 0}
    assert counts.spikes_per_sample == 4
    assert counts.layers[1]["event_kind_in"] == "ternary"


@pytest.mark.parametrize(
    "kind, acs, macs, spikes",
    [
        # the same values (1, 0, 1, 0): 2 nonzero · fan-out 3 = 6 ops, charged by declaration
        (EventKind.BINARY, 6, 0, 2),
        (EventKind.TERNARY, 6, 0, 2),
        (EventKind.GRADED, 0, 6, 2),
        (EventKind.ANALOG, 0, 6, 0),  # analog outputs are not spikes
    ],
)
def test_effective_ops_are_charged_by_the_declared_kind_not_the_values(kind, acs, macs, spikes):
    network = nn.Sequential(Producer(kind), Folded(nn.Linear(4, 3)))
    counts = count(network, torch.tensor([[[1.0, 0.0, 1.0, 0.0]]]), ANALOG_VALUES)
    assert (counts.totals["acs"], counts.totals["macs"], counts.spikes_per_sample) == (acs, macs, spikes)


def test_analog_relu_emits_no_spikes_and_performs_no_state_updates():
    # fc1 = (x0, -x0, x1) on x = (2, 3) -> (2, -2, 3) -> ReLU (2, 0, 3): 2 nonzero · fan-out 1
    network = nn.Sequential(linear([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]), ReLU(), linear([[1.0, 1.0, 1.0]]))
    counts = count(network, torch.tensor([[[2.0, 3.0]]]), ANALOG_VALUES)
    # MACs: fc1 2 nonzero inputs · 3 + fc2 2 · 1 = 8
    assert base_totals(counts) == {"dense": 2 * 3 + 3 * 1, "acs": 0, "macs": 8, "neuron_updates": 0}
    assert counts.spikes_per_sample == 0
    assert counts.layers[1]["neurons"] == 3


def test_walk_assigns_each_synaptic_layer_the_kind_of_its_producer():
    arch = ArchSpec(kind="cnn", conv=[4, "M"], hidden=[8], batch_norm=True)
    network = build_network(arch, (1, 8, 8), 10, lambda name: LIF())
    counter = OpCounter(network, ANALOG_VALUES)
    # BN, pool and flatten are pass-through: they are not listed and keep the kind
    assert [(site.name, site.kind_in.value) for site in counter.sites] == [
        ("conv1", "analog"), ("act_conv1", "analog"), ("fc1", "binary"), ("act_fc1", "analog"), ("output", "binary"),
    ]


def test_walk_recurses_into_nested_sequentials():
    network = nn.Sequential(OrderedDict(
        block=nn.Sequential(OrderedDict(fc=Folded(nn.Linear(3, 2)), act=LIF())),
        head=Folded(nn.Linear(2, 1)),
    ))
    counts = count(network, MLP_INPUT, ANALOG_VALUES)
    assert [layer["name"] for layer in counts.layers] == ["block.fc", "block.act", "head"]
    assert counts.layers[2]["event_kind_in"] == "binary"


@pytest.mark.parametrize(
    "network, path, shown",
    [
        (nn.Sequential(Folded(nn.Linear(3, 3)), nn.GELU(), Folded(nn.Linear(3, 2))), "'1'", "GELU"),
        (nn.Sequential(Folded(nn.Linear(3, 3)), Folded(nn.GELU())), "'1'", "Folded(GELU)"),
        (nn.Sequential(OrderedDict(block=nn.Sequential(OrderedDict(act=nn.Tanh())))), "'block.act'", "Tanh"),
    ],
    ids=["bare", "folded", "nested"],
)
def test_unknown_module_raises_naming_its_path_and_type(network, path, shown):
    with pytest.raises(OpCountError) as error:
        OpCounter(network, BINARY_SPIKES)
    message = str(error.value)
    assert path in message and shown in message and "op_semantics" in message


def test_two_forward_calls_accumulate_and_reset_clears():
    network = tiny_mlp()
    counter = OpCounter(network, BINARY_SPIKES).attach()
    network(MLP_INPUT)
    network(torch.zeros_like(MLP_INPUT))  # a silent sample: dense ops and updates only
    counts = counter.compute(2)
    # per sample over 2 samples: ACs (10 + 0)/2 = 5, spikes (1 + 0)/2 = 0.5; dense and updates are per sample
    assert base_totals(counts) == {"dense": 28, "acs": 5, "macs": 0, "neuron_updates": 4}
    assert counts.spikes_per_sample == 0.5
    assert counts.per_step["acs"] == (4, 1)
    counter.reset()
    with pytest.raises(OpCountError, match="no forward call"):
        counter.compute()
    network(MLP_INPUT)
    assert counter.compute(1).totals["acs"] == 10
    counter.detach()


def test_compute_rejects_a_sample_count_that_was_not_run():
    network = tiny_mlp()
    with OpCounter(network, BINARY_SPIKES) as counter:
        network(MLP_INPUT)
    with pytest.raises(OpCountError, match="saw 1 samples"):
        counter.compute(10)


def _tensors_in(value) -> list:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors_in(item)]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors_in(item)]
    if hasattr(value, "__dict__"):
        return _tensors_in(vars(value))
    return []


def test_counter_holds_no_tensors_and_its_state_does_not_grow_with_batches():
    network = tiny_mlp()
    counter = OpCounter(network, BINARY_SPIKES).attach()
    network(MLP_INPUT)
    state_after_one = len(pickle.dumps(counter._tallies))
    for _ in range(50):
        network(MLP_INPUT.repeat(1, 8, 1))
    state = {key: value for key, value in vars(counter).items() if key not in ("network", "sites", "_handles")}
    assert _tensors_in(state) == []
    # only the int values grow (a few bytes each in the pickle), never the number of entries
    assert len(pickle.dumps(counter._tallies)) <= state_after_one + 32
    counter.detach()


def test_detach_removes_every_hook():
    network = tiny_mlp()
    counter = OpCounter(network, BINARY_SPIKES).attach()
    network(MLP_INPUT)
    counter.detach()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in network.modules())
    network(MLP_INPUT)  # not counted
    assert counter.compute(1).totals["acs"] == 10


def test_counts_serialise_to_json():
    payload = json.loads(json.dumps(count(tiny_mlp(), MLP_INPUT).to_dict()))
    assert payload["totals"]["acs"] == 10 and payload["per_step"]["spikes"] == [1, 0]
    assert [layer["name"] for layer in payload["layers"]] == ["fc1", "lif", "fc2"]


# --- sizes for the memory-aware energy model (tier 2) ---------------------------------------------


def test_mlp_layers_record_weights_traffic_and_state_sizes():
    fc1, lif, fc2 = count(tiny_mlp(), MLP_INPUT).layers
    # fc1: 2×3 weights of 4 bytes (fp32); reads 3 binary inputs (1 bit) and emits 2 currents per step
    assert {key: fc1[key] for key in ("weights", "weight_bytes", "in_elements", "out_elements", "in_bits",
                                      "event_kind_out", "out_bits", "state_elements")} == {
        "weights": 6, "weight_bytes": 6 * 4, "in_elements": 3, "out_elements": 2, "in_bits": 1,
        "event_kind_out": "analog", "out_bits": 32, "state_elements": 0,
    }
    # lif: no weights; 2 currents in, 2 binary spikes out per step; one membrane per neuron
    assert {key: lif[key] for key in ("weights", "weight_bytes", "in_elements", "out_elements", "in_bits",
                                      "event_kind_out", "out_bits", "state_elements")} == {
        "weights": 0, "weight_bytes": 0, "in_elements": 2, "out_elements": 2, "in_bits": 32,
        "event_kind_out": "binary", "out_bits": 1, "state_elements": 2,
    }
    # fc2: 4×2 weights = 8, 32 bytes; 2 spikes in, 4 currents out
    assert (fc2["weights"], fc2["weight_bytes"], fc2["in_elements"], fc2["out_elements"]) == (8, 32, 2, 4)


def test_conv_sizes_count_weights_and_elements_per_sample_and_step():
    conv = nn.Conv2d(2, 4, 3, stride=2, padding=1)
    x = torch.ones(3, 5, 2, 7, 9)  # T = 3, B = 5: the sizes are per sample and per step
    row = count(nn.Sequential(Folded(conv)), x).layers[0]
    # weights 4·2·3·3 = 72 (the bias is not a weight); input 2·7·9 = 126;
    # output 4 · (⌊(7+2−3)/2⌋+1 = 4) · (⌊(9+2−3)/2⌋+1 = 5) = 80
    assert (row["weights"], row["weight_bytes"], row["in_elements"], row["out_elements"]) == (72, 72 * 4, 126, 80)


def test_weight_bytes_follow_the_stored_dtype():
    network = tiny_mlp().double()
    fc1 = count(network, MLP_INPUT.double()).layers[0]
    assert (fc1["weights"], fc1["weight_bytes"]) == (6, 6 * 8)  # float64: 8 bytes a weight


def test_stateless_activation_holds_no_state_and_declared_payload_bits_reach_the_next_layer():
    network = nn.Sequential(Producer(EventKind.GRADED), Folded(nn.Linear(4, 3)), ReLU(), Folded(nn.Linear(3, 2)))
    graded, fc1, relu, fc2 = count(network, torch.ones(2, 1, 4), ANALOG_VALUES).layers
    assert graded["state_elements"] == 0 and graded["out_bits"] == 4  # Producer(GRADED): 4-bit payload
    assert (fc1["event_kind_in"], fc1["in_bits"]) == ("graded", 4)
    assert (relu["state_elements"], relu["event_kind_out"], relu["out_bits"]) == (0, "analog", 32)
    assert (fc2["event_kind_in"], fc2["in_bits"]) == ("analog", 32)


# --- how the counter counts fast: binary sums, the per-tensor memo, declared events ---------------


class Scaled(nn.Module):
    """Declares binary spikes but sends them scaled by 0.5: a wrong declaration."""

    op_semantics = OpSemantics(EventKind.BINARY, stateful=False)

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * (x > 0).to(x.dtype)


def test_a_binary_declaration_that_sends_other_values_is_an_error_naming_the_layer():
    network = nn.Sequential(OrderedDict(fc=linear([[1.0, 1.0, 1.0]]), act=Scaled()))
    with pytest.raises(OpCountError, match=r"'act' declares binary events .* emitted 0\.5"):
        count(network, MLP_INPUT)


def test_an_in_place_change_between_two_hooks_of_one_tensor_is_counted_anew():
    # the LIF output feeds an in-place dropout (training mode) before fc2: fc2 must count what
    # reaches it, not the memoised count of the LIF's output
    torch.manual_seed(0)
    network = nn.Sequential(OrderedDict(
        fc1=Folded(nn.Linear(6, 32)), lif=LIF(beta=1.0, threshold=0.1),
        drop=nn.Dropout(p=0.5, inplace=True), fc2=Folded(nn.Linear(32, 1, bias=False)),
    ))
    reached = {}
    network.fc2.register_forward_pre_hook(lambda module, inputs: reached.update(x=inputs[0].clone()))
    x = torch.rand(3, 4, 6)
    counts = count(network.train(), x, ANALOG_VALUES)
    fc2, lif = counts.layers[2], counts.layers[1]
    # fc2: nonzeros after dropout · fan-out 1, per sample (B = 4)
    assert fc2["acs"] == (reached["x"] != 0).sum().item() / 4
    assert lif["spikes"] > fc2["acs"] > 0  # dropout removed some of the LIF's spikes


def test_a_layer_with_events_is_counted_by_what_it_sends_not_its_output():
    class MembraneOut(nn.Module):
        # outputs its membrane (cumulative input); sends a spike where the membrane first reaches 1
        op_semantics = OpSemantics(EventKind.BINARY, update_acs=1)

        def forward(self, current: Tensor) -> Tensor:
            return current.cumsum(0)

        def events(self, membrane: Tensor) -> Tensor:
            above = (membrane >= 1).to(membrane.dtype)
            return above - torch.cat([torch.zeros_like(above[:1]), above[:-1]]).clamp(max=1) * above

    # membrane of 2 neurons over T = 3: (0.6, 0.2), (1.2, 0.4), (1.8, 1.0) -> spikes at t=1 and t=2
    network = nn.Sequential(MembraneOut())
    x = torch.tensor([[[0.6, 0.2]], [[0.6, 0.2]], [[0.6, 0.6]]])
    counts = count(network, x, ANALOG_VALUES)
    assert counts.spikes_per_sample == 2  # not the 6 nonzero membrane values
    assert counts.per_step["spikes"] == (0, 1, 1)


def test_inference_mode_counts_the_same():
    # inference tensors have no version counter: the per-tensor memo must not need one
    with torch.inference_mode():
        counts = count(tiny_mlp(), MLP_INPUT)
    assert base_totals(counts) == {"dense": 28, "acs": 10, "macs": 0, "neuron_updates": 4}
    assert counts.spikes_per_sample == 1


def test_hooks_leave_the_thread_count_as_they_found_it():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        count(tiny_mlp(), MLP_INPUT)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


# --- the constant-input rule, update totals and bits on the wire (METHODS.md §8) -------------------


def test_a_constant_input_is_charged_once_and_its_every_step_figure_is_kept():
    # an analog image held over T = 3 steps, x = (1, 0, 2): nonzeros 2, fan-out 2
    layer = linear([[1.0, 0.0, 0.5], [0.2, 0.3, 0.0]])
    network = nn.Sequential(OrderedDict(fc1=layer, lif=LIF(beta=0.5, threshold=10.0)))
    x = torch.tensor([[[1.0, 0.0, 2.0]]]).expand(3, 1, 3)
    held = OpSemantics(EventKind.ANALOG, payload_bits=32, stateful=False, constant=True)
    counts = count(network, x, held)
    fc1, lif = counts.layers
    # charged once: MACs 2 · 2 = 4 and dense 3 · 2 = 6 (not 12 and 18); every step: 4 · 3 = 12
    assert (fc1["macs"], fc1["dense"], fc1["macs_every_step"], fc1["constant_input"]) == (4, 6, 12, True)
    assert counts.per_step["macs"] == (4.0, 0.0, 0.0)
    # the held current is re-injected by the neurons' updates: 2 neurons · 3 steps, each one AC (+ I) and,
    # with β = 0.5, one MAC (the leak)
    assert (lif["neuron_updates"], lif["update_acs"], lif["update_macs"]) == (6, 6, 6)
    assert counts.totals["update_acs"] == 6 and counts.totals["update_macs"] == 6
    assert counts.totals["macs"] == 4 and counts.totals["macs_every_step"] == 12
    # not held: the same input declared analog is charged at every step
    assert count(network, x, ANALOG_VALUES).layers[0]["macs"] == 12


def test_an_input_declared_constant_that_changes_is_an_error_naming_the_layer():
    held = OpSemantics(EventKind.ANALOG, payload_bits=32, stateful=False, constant=True)
    with pytest.raises(OpCountError, match="'fc1' is declared constant"):
        count(tiny_mlp(), MLP_INPUT, held)


def test_bits_on_the_wire_weigh_each_event_by_its_payload():
    # the MLP's IF layer sends one binary spike (1 bit); a graded layer's events carry 4 bits here
    assert count(tiny_mlp(), MLP_INPUT).bits_per_sample == 1
    graded = nn.Sequential(OrderedDict(fc1=linear([[1.0, 1.0, 1.0]]), out=Producer(EventKind.GRADED)))
    counts = count(graded, MLP_INPUT)  # fc1 outputs 2 at t=0 and 1 at t=1: two nonzero events
    assert counts.spikes_per_sample == 2 and counts.bits_per_sample == 2 * 4
