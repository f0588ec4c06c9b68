"""Energy estimates from op counts, per sample; every figure carries the name of its cost model.

Tier 1 (METHODS.md §8), a declared cost table priced on the op counter's totals:

    E_tier1 = E_MAC · (MACs + update MACs) + E_AC · (ACs + update ACs)

MACs, ACs are the effective synaptic ops; update MACs, update ACs what the neuron updates cost as each
neuron declares it (`OpSemantics.update_macs`, `update_acs` per update: an IF neuron's V + I is one AC,
a leak β·V one MAC), so a method is charged for the neurons it updates as well as for its synapses.
A constant input's products are counted once per sample by the op counter (benchmark.metrics.ops).

Tier 2, memory-aware, after Lemaire et al., "An Analytical Estimation of Spiking Neural Networks
Energy Efficiency", ICONIP 2022 (METHODS.md §8). Per sample, summed over the layers of ops.json
(`syn`: synaptic layers, `neu`: neuron layers, `out`: layers whose output is stored, see below):

    E_tier2 = E_tier1                                                         compute
            + Σ_syn (ACs_l + MACs_l) · b_w / 64 · E_sram(W_l · b_w / 8)       weights
            + Σ_neu 2 · U_l · b_s / 64 · E_sram(N_l · b_s / 8)                state
            + Σ_syn T_l · I_l · b_in,l / 64 · E_sram(I_l · b_in,l / 8)        io (reads)
            + Σ_out T · O_l · b_out,l / 64 · E_sram(O_l · b_out,l / 8)        io (writes)

    ACs_l, MACs_l  effective synaptic ops of layer l per sample: each one reads its weight
    W_l            weights of layer l (ops.json `weights`); b_w the cost model's `weight_bits`
    U_l            neuron state updates of layer l per sample (`neuron_updates`): each reads and
                   writes one membrane value (the factor 2); b_s the cost model's `state_bits`
    N_l            membrane values layer l holds (`state_elements`)
    T              time steps per sample (ops.json `T`); T_l = 1 for a synaptic layer whose input is
                   constant over the steps (`constant_input`: read once and held), else T
    I_l, O_l       elements of one sample's input / output of layer l at one step (`in_elements`,
                   `out_elements`)
    b_in, b_out    bits per element of those tensors: the declared payload of their events
                   (binary 1, ternary 2, graded n: `in_bits`/`out_bits`), or the cost model's
                   `activation_bits` for analog values (activations, currents)
    E_sram(S)      energy of one 64-bit SRAM access in a memory of S bytes (`sram_pj`): linear in
                   log2(S) between the table's points, clamped outside them; the presets use
                   Horowitz's 45 nm figures, 10 pJ at 8 KiB, 20 pJ at 32 KiB, 100 pJ at 1 MiB, so
                   E_sram(16 KiB) = 15 pJ, E_sram(4 KiB) = 10 pJ, E_sram(4 MiB) = 100 pJ
    b / 64         the share of a 64-bit access that moving b bits takes

Conventions (a reader comparing with another estimate needs these):
- One SRAM per layer and per kind of data, sized to hold exactly that data: layer l's weights
  (W_l·b_w/8 bytes), its membranes (N_l·b_s/8), one step of one sample's tensor (I_l·b/8). No DRAM,
  no cache, no reuse across samples; KiB = 1024 bytes; a write costs what a read costs.
- Accesses are packed: a 32-bit weight is half a 64-bit access, a binary spike 1/64 of one (a
  spike's fan-out reads one contiguous weight row; tensors are stored as packed words).
- Traffic is dense: every element of a layer's input is read at every step, zeros too (a bitmap
  of spikes, not address events, whose addresses this model does not price).
- Stored outputs (`out`): every neuron layer's output, and the output of a synaptic layer that is
  not directly followed by a neuron layer (the ANN's logits); a synaptic layer directly followed by
  a neuron layer accumulates its current into that neuron's state in place and stores nothing.
- Weight bits, activation bits and state bits come from the cost model, not from the checkpoint's
  dtype (ops.json's `weight_bytes` is the stored size, for the footprint only); biases, batch norm
  and pooling are not charged, as in the op counts.

Presets, 45 nm (Horowitz, "Computing's energy problem", ISSCC 2014); a MAC is one multiply plus
one add; weights, activations and membranes are stored at the arithmetic's width:
    fp32-45nm   AC 0.9 pJ    MAC 4.6 pJ   (mult 3.7 + add 0.9)   32-bit storage
    fp16-45nm   AC 0.4 pJ    MAC 1.5 pJ   (mult 1.1 + add 0.4)   16-bit storage
    int8-45nm   AC 0.03 pJ   MAC 0.23 pJ  (mult 0.2 + add 0.03)   8-bit storage

The quantized-ANN reference (`quantized_ann_reference`) prices the ANN of the same architecture
with activations of k = ⌈log2(T+1)⌉ bits, the precision of a rate code over T steps (Yan, Bai,
Wong, "Reconsidering the energy efficiency of spiking neural networks", arXiv 2409.08290), so a
reader sees at which T an SNN stops paying off.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from benchmark.contract.errors import ConfigError, DatasetSkipped, SpikeCodeError
from benchmark.contract.io import read_json, write_json
from benchmark.metrics.ops import OpCounts

ENERGY_METRICS_FILE = "energy_metrics.json"  # a run's two energies, for `dvc metrics show`


class EnergyError(SpikeCodeError):
    """Op counts that cannot be priced: missing, written by an older version, or inconsistent."""


SRAM_ACCESS_BITS = 64
KIB = 1024
_HOROWITZ = "Horowitz, ISSCC 2014, 45 nm"
HOROWITZ_SRAM: tuple[tuple[int, float], ...] = ((8 * KIB, 10.0), (32 * KIB, 20.0), (1024 * KIB, 100.0))
HOROWITZ_SRAM_SOURCE = f"{_HOROWITZ}: 64-bit SRAM read by memory size, as used by Lemaire et al., ICONIP 2022"


class CostModel(BaseModel):
    """A cost table: energy per operation and per memory access, and the widths data is stored at.

    Tier 1 uses the op prices, tier 2 all of it (formulas in the module docstring):

        e_ac_pj, e_mac_pj     E_AC, E_MAC: pJ per accumulate, per multiply-accumulate (synaptic ops
                              and the neuron updates' declared ones alike)
        weight_bits           b_w: bits per stored weight
        activation_bits       bits per analog value moved between layers (activations, currents)
        state_bits            b_s: bits per stored membrane value
        sram_table            E_sram: pairs (memory size in bytes, pJ per 64-bit access), sizes
                              increasing; interpolated linearly in log2(size), clamped outside
                              (function `sram_pj`)
        source, sram_source   where the op prices and the SRAM table come from

    A custom table in params.yaml needs only name, source, e_ac_pj and e_mac_pj: the widths then
    default to 32 bits and the SRAM table to Horowitz's 45 nm one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source: str
    e_ac_pj: float = Field(ge=0)
    e_mac_pj: float = Field(ge=0)
    weight_bits: int = Field(32, ge=1)
    activation_bits: int = Field(32, ge=1)
    state_bits: int = Field(32, ge=1)
    sram_table: tuple[tuple[float, float], ...] = HOROWITZ_SRAM
    sram_source: str = HOROWITZ_SRAM_SOURCE

    @field_validator("sram_table")
    @classmethod
    def _sram_points_increase(cls, points: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        if not points:
            raise ValueError("sram_table needs at least one (bytes, pJ) point")
        sizes = [size for size, _ in points]
        if any(size <= 0 for size in sizes) or any(b <= a for a, b in zip(sizes, sizes[1:])):
            raise ValueError(f"sram_table sizes must be positive and strictly increasing, got {sizes}")
        if any(pj < 0 for _, pj in points):
            raise ValueError(f"sram_table energies must be >= 0, got {[pj for _, pj in points]}")
        return points


def _preset(name: str, kind: str, e_ac: float, e_mac: float, bits: int) -> CostModel:
    return CostModel(name=name, source=f"{_HOROWITZ}, {kind}", e_ac_pj=e_ac, e_mac_pj=e_mac,
                     weight_bits=bits, activation_bits=bits, state_bits=bits)


PRESETS: dict[str, CostModel] = {
    model.name: model
    for model in (
        _preset("fp32-45nm", "FP32", 0.9, 4.6, 32),
        _preset("fp16-45nm", "FP16", 0.4, 1.5, 16),
        _preset("int8-45nm", "INT8", 0.03, 0.23, 8),
    )
}
DEFAULT_COST_MODEL = "fp32-45nm"
CostSpec = str | Mapping[str, Any] | CostModel


def resolve_cost_model(spec: CostSpec) -> CostModel:
    """A preset name, a mapping of `CostModel` fields (a custom table), or a `CostModel`."""
    if isinstance(spec, CostModel):
        return spec
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ConfigError(f"unknown cost model {spec!r}; choose one of {', '.join(PRESETS)} "
                              "or give a table {name, source, e_ac_pj, e_mac_pj}")
        return PRESETS[spec]
    if isinstance(spec, Mapping):
        try:
            return CostModel.model_validate(dict(spec))
        except ValidationError as error:
            raise ConfigError(f"invalid cost model table {dict(spec)!r}: {error}") from None
    raise ConfigError(f"a cost model is a preset name or a table, got {type(spec).__name__}")


def sram_pj(size_bytes: float, cost_model: CostSpec = DEFAULT_COST_MODEL) -> float:
    """E_sram(S): pJ per 64-bit access of a memory of `size_bytes`, linear in log2(S) between the
    table's points and clamped outside them (16 KiB lies halfway between 8 and 32 KiB in log2:
    (10 + 20) / 2 = 15 pJ)."""
    points = resolve_cost_model(cost_model).sram_table
    if size_bytes <= points[0][0]:
        return float(points[0][1])
    for (size_a, pj_a), (size_b, pj_b) in zip(points, points[1:]):
        if size_bytes <= size_b:
            share = (math.log2(size_bytes) - math.log2(size_a)) / (math.log2(size_b) - math.log2(size_a))
            return float(pj_a + share * (pj_b - pj_a))
    return float(points[-1][1])


# --- op counts in any of their three forms -------------------------------------------------------

OpsLike = OpCounts | Mapping[str, Any]
TIER2_LAYER_KEYS = ("name", "acs", "macs", "neuron_updates", "weights", "in_elements", "out_elements", "in_bits",
                    "event_kind_in", "event_kind_out", "out_bits", "state_elements")


def _view(ops: OpsLike) -> tuple[int, dict[str, float], list[dict[str, Any]]]:
    """(T, totals, layers) of an `OpCounts`, its `to_dict()`, or an ops.json document (totals
    under "ops")."""
    if isinstance(ops, OpCounts):
        return ops.T, dict(ops.totals), [dict(layer) for layer in ops.layers]
    totals = ops.get("ops", ops.get("totals"))
    if totals is None or "T" not in ops or "layers" not in ops:
        raise EnergyError(f"op counts need the keys 'ops' (or 'totals'), 'T' and 'layers', got {sorted(ops)}; "
                          "re-run `spikecode evaluate` to write ops.json")
    return int(ops["T"]), dict(totals), [dict(layer) for layer in ops["layers"]]


def _layers_for_tier2(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for layer in layers:
        missing = [key for key in TIER2_LAYER_KEYS if key not in layer]
        if missing:
            raise EnergyError(
                f"layer {layer.get('name', '?')!r} of the op counts lacks {missing}, which tier 2 needs; the "
                "counts were written by an older version of the op counter: re-run `spikecode evaluate`"
            )
    return layers


# --- tier 1 --------------------------------------------------------------------------------------


def _compute_pj(counts: Mapping[str, float], model: CostModel, e_mac_pj: float) -> float:
    """E_MAC·(MACs + update MACs) + E_AC·(ACs + update ACs) of op totals or one layer's counts."""
    missing = [key for key in ("update_acs", "update_macs") if key not in counts]
    if missing:
        raise EnergyError(f"the op counts lack {missing}: they were written by an older version of the op counter; "
                          "re-run `spikecode evaluate`")
    macs, acs = counts["macs"] + counts["update_macs"], counts["acs"] + counts["update_acs"]
    return float(e_mac_pj * macs + model.e_ac_pj * acs)


def tier1_energy(counts: OpsLike, cost_model: CostSpec = DEFAULT_COST_MODEL) -> dict[str, Any]:
    """Tier-1 energy per sample: `{"tier1_pj": E_tier1, "cost_model": name}` (formula above)."""
    model = resolve_cost_model(cost_model)
    _, totals, _ = _view(counts)
    return {"tier1_pj": _compute_pj(totals, model, model.e_mac_pj), "cost_model": model.name}


# --- tier 2 --------------------------------------------------------------------------------------


def _bits(kind: str, declared_bits: int, activation_bits: int) -> int:
    """Width of one element of a tensor: analog values at the cost model's (or the reference's)
    activation width, events at their declared payload."""
    return activation_bits if kind == "analog" else int(declared_bits)


def _access_pj(bits: float, memory_bits: float, model: CostModel) -> float:
    """pJ to move `bits` through a memory holding `memory_bits`: bits/64 accesses at E_sram."""
    if bits == 0:
        return 0.0
    return bits / SRAM_ACCESS_BITS * sram_pj(memory_bits / 8, model)


def _tier2(ops: OpsLike, model: CostModel, activation_bits: int, e_mac_pj: float) -> dict[str, Any]:
    steps, totals, layers = _view(ops)
    layers = _layers_for_tier2(layers)
    b_w, b_s = model.weight_bits, model.state_bits
    breakdown = {"compute": _compute_pj(totals, model, e_mac_pj), "weights": 0.0, "state": 0.0, "io": 0.0}
    per_layer = []
    for index, layer in enumerate(layers):
        synaptic = layer["weights"] > 0  # neuron layers hold no weights
        compute = _compute_pj(layer, model, e_mac_pj)
        weights = state = io = 0.0
        if synaptic:
            # each effective AC/MAC reads its weight from the layer's weight memory
            weights = _access_pj((layer["acs"] + layer["macs"]) * b_w, layer["weights"] * b_w, model)
            # the layer reads its whole input at every step
            b_in = _bits(layer["event_kind_in"], layer["in_bits"], activation_bits)
            reads = 1 if layer.get("constant_input") else steps  # a constant input is read once and held
            io += _access_pj(reads * layer["in_elements"] * b_in, layer["in_elements"] * b_in, model)
        else:
            # each state update reads and writes one membrane value
            state = _access_pj(2 * layer["neuron_updates"] * b_s, layer["state_elements"] * b_s, model)
        following = layers[index + 1] if index + 1 < len(layers) else None
        fused = synaptic and following is not None and following["weights"] == 0
        if not fused:  # a neuron's output, or a current no neuron consumes in place: stored every step
            b_out = _bits(layer["event_kind_out"], layer["out_bits"], activation_bits)
            io += _access_pj(steps * layer["out_elements"] * b_out, layer["out_elements"] * b_out, model)
        breakdown["weights"] += weights
        breakdown["state"] += state
        breakdown["io"] += io
        per_layer.append({"name": layer["name"], "compute": compute, "weights": weights, "state": state, "io": io})
    return {
        "tier2_pj": float(sum(breakdown.values())),
        "cost_model": model.name,
        "breakdown": breakdown,
        "layers": per_layer,
    }


def tier2_energy(ops: OpsLike, cost_model: CostSpec = DEFAULT_COST_MODEL) -> dict[str, Any]:
    """Tier-2 (memory-aware) energy per sample, the formula of the module docstring.

    `ops`: an `OpCounts`, its `to_dict()`, or an ops.json document. Returns
    `{"tier2_pj", "cost_model", "breakdown": {compute, weights, state, io}, "layers": [{name,
    compute, weights, state, io}]}`, all in pJ per sample; `breakdown` sums to `tier2_pj`, its
    `compute` is the tier-1 energy, and the layers' entries sum to `breakdown`'s.
    """
    model = resolve_cost_model(cost_model)
    return _tier2(ops, model, model.activation_bits, model.e_mac_pj)


# --- the quantized-ANN reference -----------------------------------------------------------------


def quantized_ann_reference(ops_of_ann: OpsLike, T: int, cost_model: CostSpec = DEFAULT_COST_MODEL) -> dict[str, Any]:
    """Both tiers of the ANN of the same architecture with k-bit activations, k = ⌈log2(T+1)⌉.

    A rate code over T steps carries T+1 levels per value, which k bits hold exactly (Yan, Bai,
    Wong, arXiv 2409.08290), so this is the ANN an SNN at T steps competes with. `ops_of_ann` are
    an ANN run's op counts (T = 1, every synaptic op a MAC); the convention:

        k        = ⌈log2(T+1)⌉               (T=1: 1, T=4: 3, T=20: 5)
        E_MAC,k  = min(k · E_AC, E_MAC)       a k-bit activation times a weight is at most k
                                              shifted additions of the weight (bit-serial
                                              arithmetic, shifts free), never more than the
                                              table's full MAC
        tier 1   = E_MAC,k · MACs + E_AC · ACs (an ANN's ReLUs update no state)
        tier 2   = the tier-2 formula with every analog tensor (the input image, activations,
                   logits) at k bits; weights and state at the cost model's widths

    Returns `{"T", "activation_bits", "tier1_pj", "tier2_pj", "tier2": {compute, weights, state,
    io}, "cost_model", "conventions"}`, in pJ per sample.
    """
    model = resolve_cost_model(cost_model)
    if not isinstance(T, int) or isinstance(T, bool) or T < 1:
        raise ConfigError(f"the quantized-ANN reference needs a number of time steps T >= 1, got {T!r}")
    ann_steps, _, _ = _view(ops_of_ann)
    if ann_steps != 1:
        raise EnergyError(f"the quantized-ANN reference prices an ANN's op counts (T = 1), got counts over "
                          f"T = {ann_steps} steps; pass the ops.json of an ANN run (T = 1)")
    bits = T.bit_length()  # = ⌈log2(T+1)⌉ for an integer T >= 1, without floating point
    e_mac_k = min(bits * model.e_ac_pj, model.e_mac_pj)
    tier2 = _tier2(ops_of_ann, model, bits, e_mac_k)
    return {
        "T": T,
        "activation_bits": bits,
        "tier1_pj": tier2["breakdown"]["compute"],
        "tier2_pj": tier2["tier2_pj"],
        "tier2": tier2["breakdown"],
        "cost_model": model.name,
        "conventions": QUANTIZED_ANN_CONVENTIONS,
    }


# --- the energy stage ----------------------------------------------------------------------------

CONVENTIONS = (
    "per sample, pJ. tier 1 = E_MAC*(MACs + update MACs) + E_AC*(ACs + update ACs), the neuron updates priced by "
    "their declared cost, a constant input's products counted once. tier 2 (after "
    "Lemaire et al., ICONIP 2022) = tier 1 + weights (each effective AC/MAC reads its b_w-bit weight) + state "
    "(each neuron update reads and writes one b_s-bit membrane) + io (each synaptic layer reads its whole input "
    "every step, a constant input once; every neuron layer, and a synaptic layer not followed by one, writes its output every step; "
    "spikes 1 bit, ternary 2, graded their payload, analog values activation_bits). Every b bits moved cost "
    "b/64 of a 64-bit SRAM access priced by the size of the memory holding that data (one memory per layer "
    "and kind of data): linear in log2(size) between 8 KiB 10 pJ, 32 KiB 20 pJ, 1 MiB 100 pJ, clamped "
    "outside; writes priced as reads; no DRAM, biases, batch norm or pooling."
)
QUANTIZED_ANN_CONVENTIONS = (
    "the ANN with activations (input, hidden, logits) of k = ceil(log2(T+1)) bits; each MAC priced "
    "min(k*E_AC, E_MAC) (bit-serial shift-and-add); tier 2 as for every run, analog tensors at k bits."
)


def run_energy(run_dir: Path, cost_model: CostSpec = DEFAULT_COST_MODEL) -> dict[str, Any]:
    """The energy stage: `<run_dir>/ops.json` -> `<run_dir>/energy.json` (written atomically).

    energy.json: `{"tier1_pj", "tier2_pj", "cost_model": name, "cost_table": the full table,
    "tier2": {compute, weights, state, io}, "tier2_layers": [{name, compute, weights, state, io}],
    "conventions"}`, all per sample in pJ; the same dict is returned.
    """
    run_dir = Path(run_dir)
    model = resolve_cost_model(cost_model)
    path = run_dir / "ops.json"
    if not path.exists():
        command = (f"spikecode evaluate --dataset {run_dir.parent.parent.name} --method {run_dir.parent.name} "
                   f"--seed {run_dir.name}")
        raise EnergyError(f"{path} does not exist: the energy stage prices the op counts the evaluation stage "
                          f"writes; run `{command}` (or `dvc repro`) first")
    ops = read_json(path)
    if "skipped" in ops:
        raise DatasetSkipped(ops["skipped"])
    tier1 = tier1_energy(ops, model)
    tier2 = tier2_energy(ops, model)
    energy = {
        "tier1_pj": tier1["tier1_pj"],
        "tier2_pj": tier2["tier2_pj"],
        "cost_model": model.name,
        "cost_table": model.model_dump(mode="json"),
        "tier2": tier2["breakdown"],
        "tier2_layers": tier2["layers"],
        "conventions": CONVENTIONS,
    }
    write_json(run_dir / ENERGY_METRICS_FILE, {"energy_tier1_pj": energy["tier1_pj"], "energy_tier2_pj": energy["tier2_pj"]})
    write_json(run_dir / "energy.json", energy)
    return energy
