"""Both energy tiers, the quantized-ANN reference, the energy stage and tier flips, on hand-chosen
op counts, with the arithmetic shown."""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch
from torch import nn

from benchmark.contract.errors import ConfigError, DatasetSkipped
from benchmark.contract.semantics import BINARY_SPIKES
from benchmark.metrics.energy import (PRESETS, CostModel, EnergyError, quantized_ann_reference, resolve_cost_model,
                                      run_energy, sram_pj, tier1_energy, tier2_energy)
from benchmark.metrics.ops import OpCounter, OpCounts
from benchmark.results.aggregate import summarize
from benchmark.results.summary import tier_flips
from snn.engine import LIF
from snn.layers import Folded


def counts(acs: float, macs: float, update_acs: float = 0.0, update_macs: float = 0.0) -> OpCounts:
    totals = {"dense": 0.0, "acs": acs, "macs": macs, "neuron_updates": update_acs, "update_acs": update_acs,
              "update_macs": update_macs}
    return OpCounts(samples=1, T=1, totals=totals, spikes_per_sample=0.0, bits_per_sample=0.0, per_step={}, layers=())


@pytest.mark.parametrize(
    "preset, expected_pj",
    [
        ("fp32-45nm", 4.6 * 30 + 0.9 * 1050),  # 138 + 945 = 1083
        ("fp16-45nm", 1.5 * 30 + 0.4 * 1050),  # 45 + 420 = 465
        ("int8-45nm", 0.23 * 30 + 0.03 * 1050),  # 6.9 + 31.5 = 38.4
    ],
)
def test_tier1_prices_macs_and_acs_by_the_preset(preset, expected_pj):
    # 1000 synaptic ACs and 10 MACs; 50 neuron updates of a leaky neuron declaring one AC (+ I) each, and
    # 20 of them one MAC (the leak): MACs 10 + 20 = 30, ACs 1000 + 50 = 1050
    result = tier1_energy(counts(acs=1000, macs=10, update_acs=50, update_macs=20), preset)
    assert result["tier1_pj"] == pytest.approx(expected_pj)
    assert result["cost_model"] == preset


def test_tier1_defaults_to_fp32_45nm():
    assert tier1_energy(counts(acs=10, macs=0)) == {"tier1_pj": pytest.approx(9.0), "cost_model": "fp32-45nm"}


def test_tier1_prices_neuron_updates_by_their_declared_acs_and_macs():
    table = {"name": "custom", "source": "test", "e_ac_pj": 1.0, "e_mac_pj": 2.0}
    # 2·(10 + 20) + 1·(1000 + 50) = 60 + 1050 = 1110; without the updates 2·10 + 1000 = 1020
    result = tier1_energy(counts(acs=1000, macs=10, update_acs=50, update_macs=20), table)
    assert result == {"tier1_pj": pytest.approx(1110.0), "cost_model": "custom"}
    assert tier1_energy(counts(acs=1000, macs=10), table)["tier1_pj"] == pytest.approx(1020.0)


def test_op_counts_written_before_updates_were_counted_are_refused():
    old = {"T": 1, "layers": [], "ops": {"dense": 0.0, "acs": 1.0, "macs": 0.0, "neuron_updates": 0.0}}
    with pytest.raises(EnergyError, match=r"lack \['update_acs', 'update_macs'\].*spikecode evaluate"):
        tier1_energy(old)


def test_presets_hold_the_horowitz_45nm_values():
    assert {name: (m.e_ac_pj, m.e_mac_pj) for name, m in PRESETS.items()} == {
        "fp32-45nm": (0.9, 4.6),
        "fp16-45nm": (0.4, 1.5),
        "int8-45nm": (0.03, 0.23),
    }
    assert all("Horowitz" in m.source for m in PRESETS.values())


def test_presets_store_data_at_their_arithmetic_width_with_the_45nm_sram_table():
    widths = {name: (m.weight_bits, m.activation_bits, m.state_bits) for name, m in PRESETS.items()}
    assert widths == {"fp32-45nm": (32, 32, 32), "fp16-45nm": (16, 16, 16), "int8-45nm": (8, 8, 8)}
    for model in PRESETS.values():
        # 64-bit SRAM access: 10 pJ at 8 KiB, 20 pJ at 32 KiB, 100 pJ at 1 MiB
        assert model.sram_table == ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
        assert "Horowitz" in model.sram_source and "Lemaire" in model.sram_source


def test_unknown_preset_raises_config_error_naming_the_allowed_ones():
    with pytest.raises(ConfigError) as error:
        resolve_cost_model("fp64-7nm")
    message = str(error.value)
    assert "fp64-7nm" in message and all(name in message for name in PRESETS)


def test_malformed_table_raises_config_error():
    with pytest.raises(ConfigError, match="e_mac_pj"):
        resolve_cost_model({"name": "x", "source": "y", "e_ac_pj": 1.0})


def test_resolve_passes_a_cost_model_through():
    model = CostModel(name="m", source="s", e_ac_pj=1, e_mac_pj=2)
    assert resolve_cost_model(model) is model


def test_custom_table_defaults_to_32_bit_storage_and_the_45nm_sram_table():
    model = resolve_cost_model({"name": "custom", "source": "test", "e_ac_pj": 1.0, "e_mac_pj": 2.0})
    assert (model.weight_bits, model.activation_bits, model.state_bits) == (32, 32, 32)
    assert model.sram_table == PRESETS["fp32-45nm"].sram_table


@pytest.mark.parametrize("table", [[], [[32768, 20.0], [8192, 10.0]], [[0, 1.0]], [[8192, -1.0]]],
                         ids=["empty", "decreasing", "zero-size", "negative-energy"])
def test_malformed_sram_table_raises_config_error(table):
    with pytest.raises(ConfigError, match="sram_table"):
        resolve_cost_model({"name": "x", "source": "y", "e_ac_pj": 1.0, "e_mac_pj": 2.0, "sram_table": table})


# --- E_sram: linear in log2(size) between the table's points, clamped outside ------------------------

KIB = 1024


@pytest.mark.parametrize(
    "size_bytes, expected_pj",
    [
        (8 * KIB, 10.0),  # a table point
        (16 * KIB, 15.0),  # log2 = 14, halfway from 13 to 15: 10 + (14 − 13)/(15 − 13) · (20 − 10)
        (32 * KIB, 20.0),
        (64 * KIB, 36.0),  # log2 = 16: 20 + (16 − 15)/(20 − 15) · (100 − 20) = 20 + 16
        (256 * KIB, 68.0),  # log2 = 18: 20 + (18 − 15)/5 · 80 = 20 + 48
        (1024 * KIB, 100.0),
        (24, 10.0),  # below 8 KiB: clamped to the smallest memory's cost
        (4 * 1024 * KIB, 100.0),  # above 1 MiB: clamped
        (0, 10.0),
    ],
)
def test_sram_cost_interpolates_in_log2_size_and_clamps(size_bytes, expected_pj):
    assert sram_pj(size_bytes) == pytest.approx(expected_pj)


# --- tier 2 ------------------------------------------------------------------------------------------


def row(name, *, acs=0.0, macs=0.0, neuron_updates=0.0, update_acs=0.0, weights=0, in_elements, out_elements,
        event_kind_in, in_bits, event_kind_out, out_bits, state_elements=0, constant_input=False) -> dict:
    return {"name": name, "acs": acs, "macs": macs, "neuron_updates": neuron_updates, "update_acs": update_acs,
            "update_macs": 0.0, "constant_input": constant_input, "weights": weights,
            "weight_bytes": 4 * weights, "in_elements": in_elements, "out_elements": out_elements,
            "event_kind_in": event_kind_in, "in_bits": in_bits, "event_kind_out": event_kind_out,
            "out_bits": out_bits, "state_elements": state_elements}


# The tiny SNN of tests/test_ops.py (fc1 3→2, IF neurons, fc2 2→4; T = 2), as ops.json holds it.
SNN_OPS = {
    "T": 2,
    "samples": 1,
    "ops": {"dense": 28.0, "acs": 10.0, "macs": 0.0, "neuron_updates": 4.0, "update_acs": 4.0, "update_macs": 0.0},
    "spikes_per_sample": 1.0,
    "per_step": {},
    "layers": [
        row("fc1", acs=6, weights=6, in_elements=3, out_elements=2, event_kind_in="binary", in_bits=1,
            event_kind_out="analog", out_bits=32),
        row("lif", neuron_updates=4, update_acs=4, in_elements=2, out_elements=2, event_kind_in="analog", in_bits=32,
            event_kind_out="binary", out_bits=1, state_elements=2),
        row("fc2", acs=4, weights=8, in_elements=2, out_elements=4, event_kind_in="binary", in_bits=1,
            event_kind_out="analog", out_bits=32),
    ],
}


@pytest.mark.parametrize(
    "preset, compute, weights, state, io",
    [
        # every memory is far below 8 KiB: 10 pJ per 64-bit access. b = 32 (fp32), 16 (fp16), 8 (int8).
        # compute: E_AC · (10 synaptic ACs + 4 IF updates, one AC each)
        # weights: (6 + 4) ACs · b/64 · 10
        # state:   2 · 4 updates · b/64 · 10
        # io:      reads  fc1 T·3 spikes·1 bit = 6 bits, fc2 T·2·1 = 4 bits
        #          writes lif T·2 spikes·1 bit = 4 bits, fc2's logits T·4·b bits (no neuron follows);
        #          fc1's current goes into lif in place: not stored
        #          (6 + 4 + 4)/64 · 10 = 2.1875, plus 8·b/64 · 10
        ("fp32-45nm", 0.9 * 14, 10 * 32 / 64 * 10, 8 * 32 / 64 * 10, 2.1875 + 8 * 32 / 64 * 10),  # 12.6, 50, 40, 42.1875
        ("fp16-45nm", 0.4 * 14, 10 * 16 / 64 * 10, 8 * 16 / 64 * 10, 2.1875 + 8 * 16 / 64 * 10),  # 5.6, 25, 20, 22.1875
        ("int8-45nm", 0.03 * 14, 10 * 8 / 64 * 10, 8 * 8 / 64 * 10, 2.1875 + 8 * 8 / 64 * 10),  # 0.42, 12.5, 10, 12.1875
    ],
)
def test_tier2_adds_weight_state_and_io_traffic_to_tier1(preset, compute, weights, state, io):
    result = tier2_energy(SNN_OPS, preset)
    assert result["breakdown"] == pytest.approx({"compute": compute, "weights": weights, "state": state, "io": io})
    assert result["tier2_pj"] == pytest.approx(compute + weights + state + io)
    assert result["breakdown"]["compute"] == pytest.approx(tier1_energy(SNN_OPS, preset)["tier1_pj"])
    assert result["cost_model"] == preset


def test_tier2_per_layer_entries_sum_to_the_breakdown():
    result = tier2_energy(SNN_OPS, "fp32-45nm")
    fc1, lif, fc2 = result["layers"]
    # fc1: 6 ACs · 0.9 = 5.4; 6 · 0.5 · 10 = 30 weights; reads 6 bits = 0.9375
    assert fc1 == pytest.approx({"name": "fc1", "compute": 5.4, "weights": 30.0, "state": 0.0, "io": 0.9375})
    # lif: 4 updates · 0.9 = 3.6; 2 · 4 · 0.5 · 10 = 40 state; writes 4 bits = 0.625
    assert lif == pytest.approx({"name": "lif", "compute": 3.6, "weights": 0.0, "state": 40.0, "io": 0.625})
    # fc2: 4 · 0.9 = 3.6; 4 · 0.5 · 10 = 20; reads 4 bits 0.625 + writes 256 bits = 4 accesses = 40
    assert fc2 == pytest.approx({"name": "fc2", "compute": 3.6, "weights": 20.0, "state": 0.0, "io": 40.625})
    for key in ("compute", "weights", "state", "io"):
        assert sum(layer[key] for layer in result["layers"]) == pytest.approx(result["breakdown"][key])


# One analog layer, 128 → 128, whose int8 weights fill 16 KiB: 128 · 128 · 8 bits / 8 = 16384 bytes.
ANN_OPS = {
    "T": 1,
    "ops": {"dense": 16384.0, "acs": 0.0, "macs": 100.0, "neuron_updates": 0.0, "update_acs": 0.0, "update_macs": 0.0},
    "layers": [row("fc", macs=100, weights=128 * 128, in_elements=128, out_elements=128, event_kind_in="analog",
                   in_bits=32, event_kind_out="analog", out_bits=32)],
}


def test_tier2_prices_weights_by_the_size_of_their_memory():
    result = tier2_energy(ANN_OPS, "int8-45nm")
    # compute 0.23 · 100 = 23
    # weights: 100 MACs · 8/64 access · E_sram(16 KiB) = 15 pJ -> 187.5
    # io: analog at the model's 8 bits: read 128 · 8 = 1024 bits = 16 accesses of a 128-byte
    #     memory (10 pJ) = 160, and write the same 160 (the output: no neuron follows)
    assert result["breakdown"] == pytest.approx({"compute": 23.0, "weights": 187.5, "state": 0.0, "io": 320.0})
    assert result["tier2_pj"] == pytest.approx(530.5)


def tiny_snn() -> nn.Sequential:
    return nn.Sequential(OrderedDict(fc1=Folded(nn.Linear(3, 2, bias=False)), lif=LIF(),
                                     fc2=Folded(nn.Linear(2, 4, bias=False))))


def test_tier2_reads_op_counts_in_each_of_their_forms():
    torch.manual_seed(0)
    network = tiny_snn()
    x = (torch.rand(2, 3, 3, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    with OpCounter(network, BINARY_SPIKES) as counter:
        network(x)
    counts = counter.compute()
    as_dict = counts.to_dict()
    ops_json = {"ops": as_dict.pop("totals"), **as_dict}  # as benchmark/run/evaluate.py writes it
    expected = tier2_energy(counts)
    assert tier2_energy(counts.to_dict()) == expected
    assert tier2_energy(json.loads(json.dumps(ops_json))) == expected
    assert tier1_energy(ops_json) == tier1_energy(counts)


def test_tier2_rejects_op_counts_written_before_the_sizes_were_recorded():
    old = {**SNN_OPS, "layers": [{key: value for key, value in layer.items() if key != "weights"}
                                 for layer in SNN_OPS["layers"]]}
    with pytest.raises(EnergyError, match=r"lacks \['weights'\].*spikecode evaluate"):
        tier2_energy(old)


# --- the quantized-ANN reference ----------------------------------------------------------------------


@pytest.mark.parametrize("T, bits", [(1, 1), (2, 2), (3, 2), (4, 3), (7, 3), (8, 4), (20, 5), (31, 5), (32, 6)])
def test_reference_activations_hold_T_plus_1_levels(T, bits):
    # ⌈log2(T+1)⌉: T = 20 -> log2 21 ≈ 4.39 -> 5; T = 31 -> log2 32 = 5; T = 32 -> log2 33 -> 6
    assert quantized_ann_reference(ANN_OPS, T)["activation_bits"] == bits


@pytest.mark.parametrize(
    "T, tier1, io",
    [
        # k = 2 (T = 3): a MAC is min(2 · 0.9, 4.6) = 1.8 pJ -> 180; io 2 · 128 · 2 bits = 512 bits
        #                = 8 accesses · 10 pJ = 80
        (3, 180.0, 80.0),
        # k = 5 (T = 20): min(5 · 0.9, 4.6) = 4.5 -> 450; io 2 · 128 · 5 = 1280 bits = 20 · 10 = 200
        (20, 450.0, 200.0),
        # k = 6 (T = 63): min(6 · 0.9 = 5.4, 4.6) = 4.6, the full MAC -> 460; io 2 · 128 · 6 = 1536
        #                 bits = 24 · 10 = 240
        (63, 460.0, 240.0),
    ],
)
def test_reference_prices_macs_bit_serially_and_moves_k_bit_activations(T, tier1, io):
    reference = quantized_ann_reference(ANN_OPS, T, "fp32-45nm")
    # weights stay 32-bit: 100 MACs · 32/64 · E_sram(128·128·4 bytes = 64 KiB) = 36 pJ -> 1800
    weights = 100 * 32 / 64 * 36.0
    assert reference["tier1_pj"] == pytest.approx(tier1)
    assert reference["tier2"] == pytest.approx({"compute": tier1, "weights": weights, "state": 0.0, "io": io})
    assert reference["tier2_pj"] == pytest.approx(tier1 + weights + io)
    assert (reference["T"], reference["cost_model"]) == (T, "fp32-45nm")
    assert "log2(T+1)" in reference["conventions"]


def test_reference_rejects_counts_over_several_steps_and_a_bad_T():
    with pytest.raises(EnergyError, match="T = 2"):
        quantized_ann_reference(SNN_OPS, 4)
    with pytest.raises(ConfigError, match="T >= 1"):
        quantized_ann_reference(ANN_OPS, 0)


# --- the energy stage -----------------------------------------------------------------------------


def run_dir(tmp_path):
    path = tmp_path / "runs" / "digits" / "rate" / "0"
    path.mkdir(parents=True)
    return path


def test_run_energy_writes_both_tiers_and_returns_them(tmp_path):
    folder = run_dir(tmp_path)
    (folder / "ops.json").write_text(json.dumps(SNN_OPS))
    energy = run_energy(folder, "fp32-45nm")
    # tier 1: 0.9 · (10 + 4) = 12.6; tier 2: 12.6 + 50 + 40 + 42.1875 = 144.7875 (see the tier-2 test)
    assert energy["tier1_pj"] == pytest.approx(12.6)
    assert energy["tier2_pj"] == pytest.approx(144.7875)
    assert energy["tier2"] == pytest.approx({"compute": 12.6, "weights": 50.0, "state": 40.0, "io": 42.1875})
    assert energy["cost_model"] == "fp32-45nm" and energy["cost_table"]["weight_bits"] == 32
    assert "Lemaire" in energy["conventions"]
    assert json.loads((folder / "energy.json").read_text()) == energy
    assert not list(folder.glob("*.tmp*"))  # written atomically: no temporary file left behind


def test_run_energy_takes_a_custom_table(tmp_path):
    folder = run_dir(tmp_path)
    (folder / "ops.json").write_text(json.dumps(SNN_OPS))
    table = {"name": "flat", "source": "test", "e_ac_pj": 1.0, "e_mac_pj": 2.0, "sram_table": [[1, 64.0]]}
    energy = run_energy(folder, table)
    # 1 pJ per bit moved (64 pJ per 64-bit access, everywhere): weights 10·32, state 8·32,
    # io 14 + 8·32 bits; compute (10 + 4) ACs · 1
    assert energy["tier2"] == pytest.approx({"compute": 14.0, "weights": 320.0, "state": 256.0, "io": 270.0})
    assert energy["cost_model"] == "flat"


def test_run_energy_without_ops_json_names_the_file_and_the_stage_to_run(tmp_path):
    folder = run_dir(tmp_path)
    with pytest.raises(EnergyError) as error:
        run_energy(folder, "fp32-45nm")
    message = str(error.value)
    assert str(folder / "ops.json") in message
    assert "spikecode evaluate --dataset digits --method rate --seed 0" in message


def test_run_energy_on_a_skipped_run_raises_dataset_skipped(tmp_path):
    folder = run_dir(tmp_path)
    (folder / "ops.json").write_text(json.dumps({"skipped": "fashion-mnist files are missing"}))
    with pytest.raises(DatasetSkipped, match="files are missing"):
        run_energy(folder, "fp32-45nm")


# --- tier flips (computed on the board's rows, benchmark.results.summary) ----------------------------


def record(method, tier1, tier2, *, dataset="digits", profile="smoke", variant="", seed=0) -> dict:
    return {"dataset": dataset, "profile": profile, "method": method, "variant": variant, "seed": seed, "T": 8,
            "accuracy": 0.9, "decision_step": {"mean": 8.0}, "spikes_per_sample": 0.0,
            "ops": {"acs": 0.0, "macs": 0.0}, "energy": {"tier1_pj": tier1, "tier2_pj": tier2, "cost_model": "fp32-45nm"}}


def flips(records: list[dict]) -> list[tuple[str, str]]:
    return tier_flips(summarize(records))


def test_flips_are_pairs_whose_order_changes_between_tiers():
    records = [
        record("ann", 10, 100),
        record("rate", 20, 50),  # dearer than ann in tier 1, cheaper in tier 2: a flip
        record("css", 30, 200),  # dearest in both tiers (30 > 20 > 10, 200 > 100 > 50): no flip
    ]
    assert flips(records) == [("ann", "rate")]
    # another board, compared on its own: rate cheaper in both, no flip
    assert flips([record("rate", 5, 500, dataset="mnist"), record("ann", 10, 1000, dataset="mnist")]) == []


def test_flips_average_seeds_and_name_variants():
    records = [
        record("ann", 10, 40, seed=0), record("ann", 10, 160, seed=1),  # tier 2 mean (40 + 160)/2 = 100
        record("rate", 20, 90),  # vs ann: 20 > 10 but 90 < 100: a flip
        record("rate", 20, 110, variant="T=8"),  # 20 > 10 and 110 > 100: no flip with ann;
    ]                                            # vs rate: tie in tier 1 -> no flip
    assert flips(records) == [("ann", "rate")]
    records.append(record("rate", 1, 120, variant="T=2"))
    # rate (T=2) is the cheapest in tier 1 (1) but dearer in tier 2 (120) than ann (100), rate (90)
    # and rate (T=8) (110): three more flips, in sorted order of the pair
    assert flips(records) == [("ann", "rate"), ("rate (T=2)", "ann"), ("rate (T=2)", "rate"),
                              ("rate (T=2)", "rate (T=8)")]


def test_rows_without_tier_2_take_no_part_in_the_flips():
    unpriced = record("ann", 10, None)
    assert flips([unpriced, record("rate", 20, 50), record("css", 30, 10)]) == [("rate", "css")]


def test_tier2_reads_a_constant_input_once():
    # the ANN layer of ANN_OPS at T = 4 with its input held (constant): the read of 128 · 32 bits is
    # charged once (64 accesses of a 512-byte memory: 640 pJ), not 4 times; the output written every step
    held = {**ANN_OPS, "T": 4, "layers": [{**ANN_OPS["layers"][0], "constant_input": True}]}
    every = {**ANN_OPS, "T": 4}
    reads = 128 * 32 / 64 * 10.0
    assert tier2_energy(every, "fp32-45nm")["breakdown"]["io"] - tier2_energy(held, "fp32-45nm")["breakdown"]["io"] \
        == pytest.approx(3 * reads)
