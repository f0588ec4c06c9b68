"""The summary of the records that reports/leaderboard.json stores beside them: every board (one per
dataset and profile: rows by accuracy, references, tier flips, robustness rows, sweeps, the
conversion methods' curves at matched accuracy), each method's sweeps and grids, and the record ids.
Computed here, once; the render layer only draws it.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from typing import Any, Sequence

from benchmark.data.corruptions import OFFICIAL_FAMILIES
from benchmark.results.aggregate import NAN, by_dataset_profile, mean_std, missing, summarize
from benchmark.results.claims import evaluate_claims
from benchmark.results.comparisons import board_comparisons
from benchmark.results.records import ReportError
from benchmark.results.series import (axis_value, chosen_point, grid_axes, grid_points, matched_levels, matched_points,
                                      spike_curves, t_sweeps)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, accuracy) points that no other point dominates (cost ≤ and accuracy
    ≥, one of them strictly), ordered by cost."""
    front = [i for i, (cost, accuracy) in enumerate(points)
             if not any(c <= cost and a >= accuracy and (c < cost or a > accuracy) for c, a in points)]
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def energy_unit(records: list[dict], tier: str = "tier1_pj") -> str:
    """nJ, or µJ once some run spends at least 1 µJ (10⁶ pJ) per sample in that tier."""
    largest = max((record["energy"][tier] for record in records if record["energy"].get(tier) is not None), default=0)
    return "µJ" if largest >= 1e6 else "nJ"


def cost_model_of(records: list[dict], dataset: str, profile: str) -> str:
    models = sorted({record["energy"]["cost_model"] for record in records})
    if len(models) > 1:
        raise ReportError(
            f"the {dataset}/{profile} runs mix energy cost models {models}; their energies cannot share a "
            "table: re-run `spikecode energy` for all of them with one cost model"
        )
    return models[0]


def tier_flips(rows: list[dict]) -> list[tuple[str, str]]:
    """Pairs of rows whose energy order differs between the tiers: (cheaper in tier 1, cheaper in
    tier 2), rows named by their label, energies the means over seeds. A pair is a flip when one is
    strictly cheaper in tier 1 and the other strictly cheaper in tier 2 (a tie in either is none).
    Only rows priced in both tiers take part. Sorted by label pair."""
    priced = sorted((row for row in rows if not missing(row["tier2_pj"][0])), key=lambda row: row["label"])
    flips = []
    for i, a in enumerate(priced):
        for b in priced[i + 1:]:
            d1 = a["tier1_pj"][0] - b["tier1_pj"][0]
            d2 = a["tier2_pj"][0] - b["tier2_pj"][0]
            if d1 * d2 < 0:
                flips.append((a["label"] if d1 < 0 else b["label"], a["label"] if d2 < 0 else b["label"]))
    return flips


# --- robustness --------------------------------------------------------------------------------


def _severity_means(per_corruption: dict, field: str) -> dict[str, dict[int, float]]:
    """{family: {severity: mean of `field` over the family's corruptions}} of one record."""
    sums: dict[str, dict[int, list[float]]] = {}
    for entry in per_corruption.values():
        severities = entry.get("severities") or range(1, len(entry[field]) + 1)
        for severity, value in zip(severities, entry[field]):
            sums.setdefault(entry["family"], {}).setdefault(int(severity), []).append(value)
    return {family: {s: statistics.fmean(values) for s, values in sorted(by_severity.items())}
            for family, by_severity in sums.items()}


def _overall_severity_means(per_corruption: dict, field: str) -> dict[int, float]:
    """{severity: mean of `field` over every corruption} of one record."""
    return _severity_means({name: {**entry, "family": "all"} for name, entry in per_corruption.items()}, field)["all"]


def is_early_exit(record: dict) -> bool:
    """True when the run can answer before its last step: some mean decision step, clean or
    under a corruption, is below T."""
    steps = [record["decision_step"]["mean"]]
    for entry in ((record.get("robustness") or {}).get("per_corruption") or {}).values():
        steps += entry.get("decision_step_mean") or []
    return any(step < record["T"] - 1e-9 for step in steps)


def robustness_rows(records: list[dict]) -> list[dict]:
    """One entry per (method, variant, T) with robustness results, sorted by mean corruption
    accuracy (descending). Beside the keys of `summarize`: "baseline", "early_exit",
    "clean_accuracy", "corruption_accuracy" (%), "relative_error", "step_clean",
    "step_shift" (mean decision step under corruption − clean) as (mean, std) over seeds;
    "families" {family: accuracy %}, "step_shift_by_family" {family: steps},
    "severity_accuracy" {family: [(severity, mean, std)]} (severity 0 = clean) and
    "severity_step_shift" {family: [(severity, mean, std)]}."""
    rows = []
    for row in summarize([record for record in records if record.get("robustness")]):
        members = row["records"]
        accuracy = [_severity_means(r["robustness"]["per_corruption"], "accuracy") for r in members]
        steps = [_severity_means(r["robustness"]["per_corruption"], "decision_step_mean") for r in members]
        clean_steps = [r["decision_step"]["mean"] for r in members]
        families = list(dict.fromkeys(family for per_seed in accuracy for family in per_seed))
        overall_steps = [_overall_severity_means(r["robustness"]["per_corruption"], "decision_step_mean")
                         for r in members]
        severity_accuracy = {family: [(0, *row["accuracy"]), *(
            (severity, *mean_std(100 * per_seed[family][severity] for per_seed in accuracy
                                 if severity in per_seed.get(family, {})))
            for severity in sorted({s for per_seed in accuracy for s in per_seed.get(family, {})}))]
            for family in families}
        severity_shift = {family: [(0, 0.0, NAN), *(
            (severity, *mean_std(per_seed[family][severity] - clean for per_seed, clean in zip(steps, clean_steps)
                                 if severity in per_seed.get(family, {})))
            for severity in sorted({s for per_seed in steps for s in per_seed.get(family, {})}))]
            for family in families}
        rows.append({
            **row,
            "baseline": ", ".join(sorted({r["robustness"].get("baseline") or "" for r in members} - {""})),
            "early_exit": any(is_early_exit(r) for r in members),
            "clean_accuracy": row["accuracy"],
            "step_clean": row["decision_step"],
            "step_shift": mean_std(statistics.fmean(per_seed.values()) - clean
                                   for per_seed, clean in zip(overall_steps, clean_steps) if per_seed),
            "families": {family: mean_std(100 * statistics.fmean(per_seed[family].values()) for per_seed in accuracy
                                          if family in per_seed) for family in families},
            "step_shift_by_family": {family: mean_std(statistics.fmean(per_seed[family].values()) - clean
                                                      for per_seed, clean in zip(steps, clean_steps)
                                                      if family in per_seed) for family in families},
            "severity_accuracy": severity_accuracy,
            "severity_step_shift": severity_shift,
        })
    return sorted(rows, key=lambda row: -row["corruption_accuracy"][0])


def corruption_families(rows: list[dict]) -> list[str]:
    """The corruption families of `robustness_rows`: those of `benchmark.data.corruptions` in its
    order (noise, blur, weather, digital, affine, ...), then any other alphabetically."""
    order = list(dict.fromkeys(OFFICIAL_FAMILIES.values()))
    present = {family for row in rows for family in row["families"]}
    return sorted(present, key=lambda family: (order.index(family) if family in order else len(order), family))


# --- the summary stored with the records ----------------------------------------------------------


def record_ids(records: list[dict], grids: dict[str, list[dict]]) -> tuple[list[str], dict[str, list[str]]]:
    """A unique, readable id per record (the site's provenance anchors and files): the leaderboard's
    records first, then each grid's, a grid record naming the axes of its grid that no variant names
    (the architecture, training keys such as `lr`); a `-2`, `-3` suffix where two would still share one."""
    taken: set[str] = set()

    def assign(record: dict, grid: str | None, point_keys: list[str] = ()) -> str:
        point = "-".join(f"{key}-{axis_value(record, key)}" for key in point_keys)
        base = slug(".".join(part for part in (
            f"grid-{grid}" if grid else "", record["dataset"], record["profile"], record["method"],
            record["variant"] or "default", point, f"T{record['T']}", f"s{record['seed']}") if part))
        candidate, number = base, 1
        while candidate in taken:
            number += 1
            candidate = f"{base}-{number}"
        taken.add(candidate)
        return candidate

    ids = [assign(record, None) for record in records]
    return ids, {grid: [assign(record, grid, _unnamed_axes(members)) for record in members]
                 for grid, members in grids.items()}


def _unnamed_axes(members: list[dict]) -> list[str]:
    """The axes of a grid (`grid_axes`) that no record's variant names. Every id ends in its record's
    T already: T is a point axis only as a hyperparameter that varies (a grid of CSS's silent period
    varies the steps run, T + silent period, at one declared T)."""
    named = set().union(*(_variant_keys(record["variant"]) for record in members))
    declared_t = {json.dumps(record.get("hyperparameters", {}).get("T")) for record in members}
    return [axis for axis in grid_axes(members) if axis not in named and (axis != "T" or len(declared_t) > 1)]


def _variant_keys(variant: str | None) -> set[str]:
    """The keys a variant label names: "T=10,lr=0.01" -> {"T", "lr"}."""
    return {part.split("=")[0] for part in (variant or "").split(",") if part}


def slug(text: str) -> str:
    """`text` as a file name and URL anchor: runs of other characters than [A-Za-z0-9._-] become '-'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "-"


def board(records: list[dict], references: list[dict], grids: dict[str, list[dict]], baseline: str,
          ids: dict[int, str], budget_exceptions: dict[str, str] | None = None) -> dict[str, Any]:
    """Everything shown of one (dataset, profile): `records` are its runs, `references` its paper
    figures, `grids` every grid's records (this board's are picked out), `ids` record id by id(),
    `budget_exceptions` the profile's declared exceptions to the same budget (method -> reason)."""
    dataset, profile = records[0]["dataset"], records[0]["profile"]
    rows = sorted(summarize(records), key=lambda row: (-row["accuracy"][0], row["method"], row["variant"], row["T"]))
    robust = robustness_rows(records)
    board_grids = {name: [r for r in members if (r["dataset"], r["profile"]) == (dataset, profile)]
                   for name, members in grids.items()}
    curves = [curve for curve in spike_curves(records, grids) if (curve["dataset"], curve["profile"]) == (dataset, profile)]
    levels = matched_levels(records, board_grids, baseline)
    reference = baseline_accuracy(rows, baseline)
    for row in rows:
        row["steps_to_baseline"] = steps_to_reach(row["anytime"], reference - ANYTIME_MARGIN_PP)
    comparisons = board_comparisons(rows)
    _mark_ranks(rows, comparisons["accuracy"])
    _mark_ranks(robust, comparisons["corruption_accuracy"])
    return {
        "dataset": dataset, "profile": profile, "title": f"{dataset} ({profile} profile)",
        "cost_model": cost_model_of(records, dataset, profile),
        "units": {"tier1_pj": energy_unit(records), "tier2_pj": energy_unit(records, "tier2_pj")},
        "has_tier2": any(record["energy"].get("tier2_pj") is not None for record in records),
        "baseline": {"method": baseline, "accuracy": reference, "anytime_margin_pp": ANYTIME_MARGIN_PP},
        "budget_exceptions": {method: reason for method, reason in (budget_exceptions or {}).items()
                              if any(record["method"] == method for record in records)},
        "rows": [{**_public(row, ids), "layers": layer_stats(row["records"])} for row in rows],
        "references": sorted(references, key=lambda ref: -ref["accuracy"]),
        "flips": tier_flips(rows),
        "robustness": {"rows": [_public(row, ids) for row in robust], "families": corruption_families(robust)},
        "sweeps": [sweep for sweep in t_sweeps(records, grids)
                   if (sweep["dataset"], sweep["profile"]) == (dataset, profile)],
        "spike_curves": curves, "matched_levels": levels, "matched": matched_points(curves, levels) if curves else {},
        "comparisons": {"accuracy": comparisons["accuracy"]["pairs"],
                        "corruption_accuracy": comparisons["corruption_accuracy"]["pairs"],
                        "anytime": {t: {"labels": [_key(row) for row in rows], **found}
                                    for t, found in comparisons["anytime"].items()}},
    }


def _key(row: dict) -> str:
    return row["label"] + f"|T={row['T']}"


def _mark_ranks(rows: list[dict], compared: dict) -> None:
    """Each row's tie-aware "rank" and "top" (benchmark.results.comparisons), found by its label and T."""
    labels = compared.get("labels") or [_key(row) for row in rows]
    by_key = dict(zip(labels, zip(compared["ranks"], compared["top"])))
    for row in rows:
        row["rank"], row["top"] = by_key.get(_key(row), (None, False))


ANYTIME_MARGIN_PP = 1.0  # "steps to reach the baseline's accuracy − 1 pp"


def baseline_accuracy(rows: list[dict], baseline: str) -> float:
    """The mean accuracy (%) of the baseline's default row of a board (the best of its rows when it
    has several); nan when the board has no baseline run."""
    own = [row for row in rows if row["method"] == baseline]
    default = [row for row in own if not row["variant"]] or own
    return max((row["accuracy"][0] for row in default), default=NAN)


def steps_to_reach(curve: list[tuple[float, float]], level: float) -> int | None:
    """The first step t (1-based) at which the mean anytime accuracy reaches `level` (%); None when it
    never does (or the level is undefined)."""
    return next((t for t, (mean, _) in enumerate(curve, start=1) if mean >= level), None)


def method_summary(method: str, records: list[dict], grids: dict[str, list[dict]], ids: dict[int, str]) -> dict:
    """A method's sweeps (its accuracy-vs-T series) and its grids (points and axes)."""
    own_grids = {name: [r for r in members if r["method"] == method] for name, members in grids.items()}
    ablations = {}
    for name, members in own_grids.items():
        if members:
            axes = grid_axes(members)
            points = grid_points(axes, members)
            chosen = chosen_point(points)
            points = [{**point, "chosen": index == chosen} for index, point in enumerate(points)]
            points.sort(key=lambda row: -row["val_accuracy"][0] if not missing(row["val_accuracy"][0]) else math.inf)
            ablations[name] = {"axes": axes, "points": [_public(point, ids) for point in points],
                               "boards": sorted({f'{r["dataset"]} ({r["profile"]})' for r in members})}
    return {"sweeps": t_sweeps([r for r in records if r["method"] == method], own_grids), "grids": ablations}


def summary(records: list[dict], references: list[dict], grids: dict[str, list[dict]], baseline: str,
            budget_exceptions: dict[str, dict[str, str]] | None = None, claims: list[dict] = (),
            evidence: dict[str, Any] | None = None) -> dict:
    """The aggregated document of reports/leaderboard.json: "boards" (one per dataset and profile),
    "methods" (each method's sweeps and grids), "sweeps" (every accuracy-vs-T series),
    "record_ids" (aligned with `records`), "grid_ids" ({grid: ids aligned with its records}) and
    "claims" (each claim's verdict, benchmark.results.claims; `evidence` gives it "resolution" and
    "severity" {name: results}, "perf" and the default "profile"). NaN (undefined) values are null."""
    leaderboard_ids, grid_ids = record_ids(records, grids)
    ids = {id(record): rid for record, rid in zip(records, leaderboard_ids)}
    ids.update({id(record): rid for grid, members in grids.items() for record, rid in zip(members, grid_ids[grid])})
    boards = [board(subset, [ref for ref in references if ref["dataset"] == dataset], grids, baseline, ids,
                    (budget_exceptions or {}).get(profile))
              for (dataset, profile), subset in by_dataset_profile(records).items()]
    methods = sorted({r["method"] for r in records} | {r["method"] for members in grids.values() for r in members})
    document = {"boards": boards, "methods": {method: method_summary(method, records, grids, ids) for method in methods},
                "sweeps": t_sweeps(records, grids), "record_ids": leaderboard_ids, "grid_ids": grid_ids,
                "baseline": baseline}
    evidence = evidence or {}
    profile = evidence.get("profile") or (records[0]["profile"] if records else "")
    document["claims"] = evaluate_claims(list(claims), {"records": records, "grids": grids, "baseline": baseline,
                                                        "resolution": evidence.get("resolution") or {},
                                                        "severity": evidence.get("severity") or {},
                                                        "perf": evidence.get("perf"), "profile": profile}, ids)
    return json_safe(document)


LAYER_METRICS = ("spikes_per_neuron", "spikes", "acs", "macs", "dense", "neuron_updates")


def layer_stats(records: list[dict]) -> list[dict]:
    """The per-layer breakdown of a row: each layer of its first record (name, type, events in,
    neurons) with (mean, std) over the seeds of every metric of LAYER_METRICS it has."""
    layers = records[0].get("layers") or []
    stats = []
    for index, layer in enumerate(layers):
        per_seed = [r["layers"][index] for r in records if len(r.get("layers") or []) > index]
        stats.append({"name": layer.get("name", str(index)), "type": layer.get("type", ""),
                      "event_kind_in": layer.get("event_kind_in", ""), "neurons": layer.get("neurons"),
                      **{key: mean_std(entry.get(key) for entry in per_seed) for key in LAYER_METRICS if key in layer}})
    return stats


def _public(row: dict, ids: dict[int, str]) -> dict:
    """A row for the summary: its records replaced by their ids ("runs")."""
    return {**{key: value for key, value in row.items() if key not in ("records", "key")},
            "runs": [ids[id(record)] for record in row["records"]]}


def json_safe(value: Any) -> Any:
    """`value` with tuples as lists and nan as None, for strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value
