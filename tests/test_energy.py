"""Tier-1 energy on hand-chosen op counts, for every preset, with the arithmetic shown."""

from __future__ import annotations

import pytest

from benchmark.energy import PRESETS, CostModel, resolve_cost_model, tier1_energy
from benchmark.errors import ConfigError
from benchmark.ops import OpCounts


def counts(acs: float, macs: float, neuron_updates: float = 0.0) -> OpCounts:
    totals = {"dense": 0.0, "acs": acs, "macs": macs, "neuron_updates": neuron_updates}
    return OpCounts(samples=1, T=1, totals=totals, spikes_per_sample=0.0, per_step={}, layers=())


@pytest.mark.parametrize(
    "preset, expected_pj",
    [
        ("fp32-45nm", 4.6 * 10 + 0.9 * 1000),  # 46 + 900 = 946
        ("fp16-45nm", 1.5 * 10 + 0.4 * 1000),  # 15 + 400 = 415
        ("int8-45nm", 0.23 * 10 + 0.03 * 1000),  # 2.3 + 30 = 32.3
    ],
)
def test_tier1_prices_macs_and_acs_by_the_preset(preset, expected_pj):
    # 1000 ACs, 10 MACs, 50 neuron updates: the presets do not price updates
    result = tier1_energy(counts(acs=1000, macs=10, neuron_updates=50), preset)
    assert result["tier1_pj"] == pytest.approx(expected_pj)
    assert result["cost_model"] == preset


def test_tier1_defaults_to_fp32_45nm():
    assert tier1_energy(counts(acs=10, macs=0)) == {"tier1_pj": pytest.approx(9.0), "cost_model": "fp32-45nm"}


def test_tier1_prices_neuron_updates_when_the_table_does():
    table = {"name": "custom", "source": "test", "e_ac_pj": 1.0, "e_mac_pj": 2.0, "e_neuron_update_pj": 0.1}
    # 2·10 + 1·1000 + 0.1·50 = 20 + 1000 + 5 = 1025
    result = tier1_energy(counts(acs=1000, macs=10, neuron_updates=50), table)
    assert result == {"tier1_pj": pytest.approx(1025.0), "cost_model": "custom"}


def test_presets_hold_the_horowitz_45nm_values():
    assert {name: (m.e_ac_pj, m.e_mac_pj, m.e_neuron_update_pj) for name, m in PRESETS.items()} == {
        "fp32-45nm": (0.9, 4.6, None),
        "fp16-45nm": (0.4, 1.5, None),
        "int8-45nm": (0.03, 0.23, None),
    }
    assert all("Horowitz" in m.source for m in PRESETS.values())


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
