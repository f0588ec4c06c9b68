"""Energy estimates from op counts, per sample; every figure carries the name of its cost model.

Tier 1 (METHODS.md §8), a declared cost table priced on the op counter's totals:

    E_tier1 = E_MAC · MACs + E_AC · ACs  (+ E_update · neuron_updates when the table prices updates)

Presets, 45 nm (Horowitz, "Computing's energy problem", ISSCC 2014); a MAC is one multiply plus
one add:
    fp32-45nm   AC 0.9 pJ    MAC 4.6 pJ   (mult 3.7 + add 0.9)
    fp16-45nm   AC 0.4 pJ    MAC 1.5 pJ   (mult 1.1 + add 0.4)
    int8-45nm   AC 0.03 pJ   MAC 0.23 pJ  (mult 0.2 + add 0.03)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmark.errors import ConfigError
from benchmark.ops import OpCounts


class CostModel(BaseModel):
    """Energy per operation in picojoules; `e_neuron_update_pj` None: updates are not priced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source: str
    e_ac_pj: float = Field(ge=0)
    e_mac_pj: float = Field(ge=0)
    e_neuron_update_pj: float | None = Field(None, ge=0)


_HOROWITZ = "Horowitz, ISSCC 2014, 45 nm"
PRESETS: dict[str, CostModel] = {
    model.name: model
    for model in (
        CostModel(name="fp32-45nm", source=f"{_HOROWITZ}, FP32", e_ac_pj=0.9, e_mac_pj=4.6),
        CostModel(name="fp16-45nm", source=f"{_HOROWITZ}, FP16", e_ac_pj=0.4, e_mac_pj=1.5),
        CostModel(name="int8-45nm", source=f"{_HOROWITZ}, INT8", e_ac_pj=0.03, e_mac_pj=0.23),
    )
}
DEFAULT_COST_MODEL = "fp32-45nm"


def resolve_cost_model(spec: str | Mapping[str, Any] | CostModel) -> CostModel:
    """A preset name, a mapping of `CostModel` fields (a custom table), or a `CostModel`."""
    if isinstance(spec, CostModel):
        return spec
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ConfigError(f"unknown cost model {spec!r}; choose one of {', '.join(PRESETS)} "
                              "or give a table {name, source, e_ac_pj, e_mac_pj[, e_neuron_update_pj]}")
        return PRESETS[spec]
    if isinstance(spec, Mapping):
        try:
            return CostModel.model_validate(dict(spec))
        except ValidationError as error:
            raise ConfigError(f"invalid cost model table {dict(spec)!r}: {error}") from None
    raise ConfigError(f"a cost model is a preset name or a table, got {type(spec).__name__}")


def tier1_energy(
    counts: OpCounts, cost_model: str | Mapping[str, Any] | CostModel = DEFAULT_COST_MODEL
) -> dict[str, Any]:
    """Tier-1 energy per sample: `{"tier1_pj": E_tier1, "cost_model": name}` (formula above)."""
    model = resolve_cost_model(cost_model)
    totals = counts.totals
    energy = model.e_mac_pj * totals["macs"] + model.e_ac_pj * totals["acs"]
    if model.e_neuron_update_pj is not None:
        energy += model.e_neuron_update_pj * totals["neuron_updates"]
    return {"tier1_pj": float(energy), "cost_model": model.name}


# Tier 2 (memory-aware, after Lemaire et al., ICONIP 2022; METHODS.md §8) belongs below as its own
# function `tier2_energy`: it adds weight reads per effective op, membrane reads and writes per neuron
# update, and input/output traffic, priced per 64-bit SRAM read by memory size. It needs layer sizes
# (weights, state) beyond `OpCounts.totals`, so it is not a variant of `tier1_energy`.
