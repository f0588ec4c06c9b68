"""Reports: per-run results become result records, records become the leaderboard.

Reads `runs/<dataset>/<method>/<seed>/{eval,train,ops,energy,robust}.json` (written by the
pipeline's stages) and writes

    reports/leaderboard.json                      {"schema", "records", "references"}
    reports/<dataset>-<profile>/leaderboard.md    one row per (method, variant, T): seeds collapse
    reports/<dataset>-<profile>/leaderboard.csv   into mean ± sample std (ddof = 1) with n seeds;
                                                  the md adds the robustness table and flags the
                                                  pairs whose energy order flips between tiers
    reports/<dataset>-<profile>/leaderboard.json  that dataset and profile's records
    reports/<dataset>-<profile>/robustness.csv    the robustness table (once robust.json exists)
    reports/<dataset>-<profile>/*.png             accuracy vs energy (tier 1, and tier 2 when priced;
                                                  Pareto front marked), vs decision step, vs
                                                  spikes/sample for the conversion methods (their
                                                  T sweeps from reports/grids, matched accuracy
                                                  marked; `spike_curves`); with
                                                  robustness results accuracy vs severity per
                                                  corruption family and the decision-step shift of
                                                  the early-exit methods
    reports/metrics.json                          per dataset-profile and row: accuracy, decision
                                                  step, both energies, corruption accuracy
                                                  (`dvc metrics show`, `dvc exp show`)
    reports/plots/accuracy_vs_energy.csv          the plotted points, fixed column names, and the
    reports/plots/accuracy_vs_T.csv               T sweeps, grids included (`dvc plots show`)

Published figures enter only as labelled reference rows, after the measured rows and never
aggregated with them. The static site (`benchmark.site`) is built from leaderboard.json with the
summaries and plots of this module. Every file is written atomically (`benchmark.io`).
"""

from __future__ import annotations

import json
import math
import re
import statistics
import sys
from io import BytesIO
from itertools import cycle
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd
from matplotlib.figure import Figure

from benchmark.errors import SpikeCodeError
from benchmark.io import atomic_write_bytes, atomic_write_text, read_json, write_json

SCHEMA = 1  # of reports/leaderboard.json
EVAL_SCHEMA = 1  # of the eval.json this module reads

# Files a run needs besides eval.json, and the stage that writes each.
STAGE_FILES = {"train.json": "spikecode train", "ops.json": "spikecode evaluate", "energy.json": "spikecode energy"}
EVAL_KEYS = ("dataset", "profile", "method", "family", "variant", "arch", "T", "seed", "accuracy", "decision_step",
             "params", "footprint_bytes", "throughput_samples_per_s", "hyperparameters", "citation", "provenance")
OP_KEYS = ("dense", "acs", "macs", "neuron_updates")
ENERGY_KEYS = ("tier1_pj", "tier2_pj", "cost_model")

# Table columns (shared by the csv and the markdown); the energy column's unit is chosen per table.
GROUP = ["method", "variant", "T"]
ACC, ACC_STD, SEEDS = "accuracy (%)", "accuracy std (%)", "seeds"
STEP, SPIKES, ACS, MACS = "mean decision step", "spikes/sample", "effective ACs", "effective MACs"
PARAMS, TRAIN, SOURCE = "params", "train time (s)", "source"
ENERGY = "energy tier 1 ({})"  # per sample, in the unit filled in
ENERGY2 = "energy tier 2 ({})"
CORRUPTION, RELATIVE = "corruption accuracy (%)", "relative corruption error"
NAN = float("nan")
PJ_PER_UNIT = {"nJ": 1e3, "µJ": 1e6}
MARKERS = "os^Dv<>PX*"


class ReportError(SpikeCodeError):
    """Results that cannot be reported: missing, incomplete or inconsistent."""


def build_report(runs_dir: Path, reports_dir: Path, references: Iterable[dict] = (),
                 grids_dir: Path | None = None) -> list[Path]:
    """Collect every run under `runs_dir` and write the leaderboard under `reports_dir`
    (`grids_dir`: see `write_leaderboard`)."""
    records = collect_records(runs_dir)
    if not records:
        raise ReportError(
            f"no results to report: {runs_dir} holds no <dataset>/<method>/<seed>/eval.json; "
            "run `dvc repro`, or `spikecode train`, `spikecode evaluate` and `spikecode energy` first"
        )
    return write_leaderboard(records, reports_dir, references, grids_dir)


# --- records -----------------------------------------------------------------------------------


def collect_records(runs_dir: Path) -> list[dict]:
    """One result record per run directory holding an eval.json, sorted by dataset, profile,
    method, variant, T and seed. Runs the pipeline skipped (their dataset is absent) are left out
    with a message."""
    records = []
    for path in Path(runs_dir).glob("*/*/*/eval.json"):
        skipped = read_json(path).get("skipped")
        if skipped:
            print(f"report: leaving out {path.parent} (skipped: {skipped.splitlines()[0]})", file=sys.stderr)
            continue
        records.append(_record(path.parent))
    return sorted(records, key=lambda r: (r["dataset"], r["profile"], r["method"], r["variant"], r["T"], r["seed"]))


def _record(run_dir: Path) -> dict:
    evaluation = _read_eval(run_dir / "eval.json")
    train, ops, energy = (_read_stage_file(run_dir, name) for name in STAGE_FILES)
    ops = _pick(ops, ("spikes_per_sample", "ops", "layers"), run_dir / "ops.json")
    return {
        **evaluation,
        "spikes_per_sample": ops["spikes_per_sample"],
        "ops": _pick(ops["ops"], OP_KEYS, run_dir / "ops.json"),
        "energy": _pick(energy, ENERGY_KEYS, run_dir / "energy.json"),
        "robustness": _read_robustness(run_dir),
        "train_seconds": _pick(train, ("train_seconds",), run_dir / "train.json")["train_seconds"],
        "layers": ops["layers"],
        "converted_from": _converted_from(train),
    }


def _converted_from(train: dict) -> dict | None:
    """A conversion run's source: {"method", "arch", "accuracy"} from the eval.json beside the model
    it converted (train.json's history names it); None for a trained run, or a source not evaluated."""
    history = train.get("history") or [{}]
    if "source" not in history[0]:
        return None
    source_eval = Path(history[0]["source"]).parent / "eval.json"
    if not source_eval.exists():
        return None
    evaluation = read_json(source_eval)
    return {key: evaluation.get(key) for key in ("method", "arch", "accuracy")}


def _read_eval(path: Path) -> dict:
    evaluation = read_json(path)
    if evaluation.get("schema") != EVAL_SCHEMA:
        raise ReportError(
            f"{path} has schema {evaluation.get('schema')!r}, this report reads schema {EVAL_SCHEMA}; "
            "re-run `spikecode evaluate` for this run with this version of the suite"
        )
    return _pick(evaluation, EVAL_KEYS, path)


def _read_stage_file(run_dir: Path, name: str) -> dict:
    """Read `name` from runs/<dataset>/<method>/<seed>/, or say which command writes it."""
    path = run_dir / name
    if not path.exists():
        command = (f"{STAGE_FILES[name]} --dataset {run_dir.parent.parent.name} --method {run_dir.parent.name} "
                   f"--seed {run_dir.name}")
        raise ReportError(f"run {run_dir} has eval.json but no {name}; run `{command}` (or `dvc repro`), "
                          "then report again")
    return read_json(path)


def _read_robustness(run_dir: Path) -> dict | None:
    """robust.json's summary, with the corruption error relative to the ANN run of the same dataset
    and seed (`<dataset>/ann/<seed>`; None until that run has robustness results)."""
    from benchmark.robustness import relative_corruption_error

    path = run_dir / "robust.json"
    if not path.exists():
        return None
    result = _pick(read_json(path), ("mean_accuracy", "per_corruption"), path)
    baseline_dir = run_dir.parent.parent / "ann" / run_dir.name
    baseline_path = baseline_dir / "robust.json"
    has_baseline = baseline_path.exists()
    return {
        "mean_accuracy": result["mean_accuracy"],
        "relative_error": relative_corruption_error(result, read_json(baseline_path)) if has_baseline else None,
        "baseline": f"{run_dir.parent.parent.name}/ann/{run_dir.name}" if has_baseline else None,
        "per_corruption": result["per_corruption"],
    }


def _pick(document: dict, keys: Iterable[str], path: Path) -> dict:
    missing = [key for key in keys if key not in document]
    if missing:
        raise ReportError(f"{path} lacks the key(s) {missing}; re-run the stage that writes it")
    return {key: document[key] for key in keys}


# --- leaderboard -------------------------------------------------------------------------------


def write_leaderboard(records: list[dict], reports_dir: Path, references: Iterable[dict] = (),
                      grids_dir: Path | None = None) -> list[Path]:
    """Write reports/leaderboard.json, metrics.json, plots/*.csv and one folder per (dataset,
    profile); return the paths.

    `references` are published figures, {"dataset", "method", "accuracy" in [0, 1], "source",
    optional "T" and "variant"}; only those for datasets present in `records` are shown, each once.
    `grids_dir` (reports/grids) adds the grids whose axes include T to plots/accuracy_vs_T.csv.
    """
    reports_dir = Path(reports_dir)
    datasets = {record["dataset"] for record in records}
    references = unique_items([ref for ref in map(checked_reference, references) if ref["dataset"] in datasets])
    path = reports_dir / "leaderboard.json"
    write_json(path, {"schema": SCHEMA, "records": records, "references": references})
    written = [path]
    grids = load_grids(grids_dir)
    for (dataset, profile), subset in by_dataset_profile(records).items():
        dataset_references = [ref for ref in references if ref["dataset"] == dataset]
        written += _write_board(reports_dir / f"{dataset}-{profile}", dataset, profile, subset, dataset_references)
        spikes = conversion_spike_plot(subset, grids, f"{dataset} ({profile} profile)")
        if spikes is not None:
            atomic_write_bytes(reports_dir / f"{dataset}-{profile}" / "accuracy_vs_spikes.png", spikes)
            written.append(reports_dir / f"{dataset}-{profile}" / "accuracy_vs_spikes.png")
    written += _write_dvc_files(reports_dir, records, grids)
    return written


def leaderboard_table(records: list[dict], references: Iterable[dict] = ()) -> pd.DataFrame:
    """One row per (method, variant, T), seeds collapsed, sorted by accuracy descending; then one
    row per reference. Accuracy in %, energy per sample in the unit its column names (one unit per
    tier), mean corruption accuracy in % and the relative corruption error (— before robustness)."""
    energy = ENERGY.format(energy_unit(records))
    energy2 = ENERGY2.format(energy_unit(records, "tier2_pj"))
    rows = pd.DataFrame([_row(record, energy, energy2) for record in records])
    means = {column: (column, "mean")
             for column in (STEP, SPIKES, ACS, MACS, energy, energy2, CORRUPTION, RELATIVE, PARAMS, TRAIN)}
    table = rows.groupby(GROUP, sort=False).agg(
        **{SEEDS: (ACC, "size"), ACC: (ACC, "mean"), ACC_STD: (ACC, "std")}, **means
    ).reset_index()
    table = table.sort_values([ACC, *GROUP], ascending=[False, True, True, True], kind="stable")
    columns = [*GROUP, ACC, ACC_STD, SEEDS, STEP, SPIKES, ACS, MACS, energy, energy2, CORRUPTION, RELATIVE, PARAMS,
               TRAIN]
    table = table[columns].assign(**{SOURCE: ""})
    reference_rows = sorted((_reference_row(ref) for ref in references), key=lambda row: -row[ACC])
    if reference_rows:
        table = pd.concat([table, pd.DataFrame(reference_rows)], ignore_index=True)
    table[PARAMS] = table[PARAMS].round()
    return table.astype({"T": "Int64", SEEDS: "Int64", PARAMS: "Int64"}).reset_index(drop=True)


def _row(record: dict, energy: str, energy2: str) -> dict:
    tier2 = record["energy"].get("tier2_pj")
    robustness = record.get("robustness") or {}
    return {
        "method": record["method"], "variant": record["variant"], "T": record["T"],
        ACC: 100 * record["accuracy"],
        STEP: record["decision_step"]["mean"],
        SPIKES: record["spikes_per_sample"],
        ACS: record["ops"]["acs"],
        MACS: record["ops"]["macs"],
        energy: record["energy"]["tier1_pj"] / PJ_PER_UNIT[_unit_of(energy)],
        energy2: NAN if tier2 is None else tier2 / PJ_PER_UNIT[_unit_of(energy2)],
        CORRUPTION: NAN if robustness.get("mean_accuracy") is None else 100 * robustness["mean_accuracy"],
        RELATIVE: NAN if robustness.get("relative_error") is None else robustness["relative_error"],
        PARAMS: record["params"],
        TRAIN: record["train_seconds"],
    }


def _unit_of(column: str) -> str:
    return column[column.rindex("(") + 1:-1]


def _reference_row(reference: dict) -> dict:
    return {
        "method": f"{reference['method']} (paper reference)", "variant": reference["variant"],
        "T": reference["T"], ACC: 100 * reference["accuracy"], SOURCE: reference["source"],
    }


def energy_unit(records: list[dict], tier: str = "tier1_pj") -> str:
    """nJ, or µJ once some run spends at least 1 µJ (10⁶ pJ) per sample in that tier."""
    largest = max((record["energy"][tier] for record in records if record["energy"].get(tier) is not None), default=0)
    return "µJ" if largest >= 1e6 else "nJ"


def checked_reference(reference: dict) -> dict:
    missing = [key for key in ("dataset", "method", "accuracy", "source") if key not in reference]
    if missing:
        raise ReportError(f"paper reference {reference!r} lacks {missing}; give dataset, method, accuracy and source")
    accuracy = reference["accuracy"]
    if not isinstance(accuracy, (int, float)) or not 0 <= accuracy <= 1:
        raise ReportError(
            f"paper reference {reference!r} has accuracy {accuracy!r}; give a fraction in [0, 1] (0.929, not 92.9)"
        )
    return {"variant": "", "T": None, **reference}


def unique_items(items: list[dict]) -> list[dict]:
    """`items` without repeats (the same reference given twice, e.g. by a merge and params.yaml)."""
    seen, unique = set(), []
    for item in items:
        key = json.dumps(item, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def by_dataset_profile(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        groups.setdefault((record["dataset"], record["profile"]), []).append(record)
    return groups


def cost_model_of(records: list[dict], dataset: str, profile: str) -> str:
    models = sorted({record["energy"]["cost_model"] for record in records})
    if len(models) > 1:
        raise ReportError(
            f"the {dataset}/{profile} runs mix energy cost models {models}; their energies cannot share a "
            "table: re-run `spikecode energy` for all of them with one cost model"
        )
    return models[0]


def _write_board(folder: Path, dataset: str, profile: str, records: list[dict], references: list[dict]) -> list[Path]:
    cost_model = cost_model_of(records, dataset, profile)
    table = leaderboard_table(records, references)
    energy = ENERGY.format(energy_unit(records))
    title = f"{dataset} ({profile} profile)"
    board_json, board_csv, board_md = (folder / f"leaderboard.{suffix}" for suffix in ("json", "csv", "md"))
    write_json(board_json, {"schema": SCHEMA, "records": records, "references": references})
    atomic_write_text(board_csv, table.to_csv(index=False))
    robust = robustness_rows(records)
    flips = tier_flips(records)
    atomic_write_text(board_md, _markdown(title, table, energy, cost_model, robust, flips, _has_tier2(records)))
    written = [board_json, board_csv, board_md]
    if robust:
        path = folder / "robustness.csv"
        atomic_write_text(path, robustness_table(records).to_csv(index=False))
        written.append(path)
    for name, png in board_plots(records, title, cost_model).items():
        atomic_write_bytes(folder / name, png)
        written.append(folder / name)
    return written


def _has_tier2(records: list[dict]) -> bool:
    return any(record["energy"].get("tier2_pj") is not None for record in records)


# --- summaries shared by the tables, the plots and the site ------------------------------------


def row_label(method: str, variant: str) -> str:
    """`method`, or `method (variant)`: the name of a leaderboard row (as in the tier flips)."""
    return f"{method} ({variant})" if variant else method


def mean_std(values: Iterable[float | None]) -> tuple[float, float]:
    """(mean, sample std, ddof = 1) of the values given (None left out); nan where undefined."""
    present = [float(value) for value in values if value is not None]
    if not present:
        return NAN, NAN
    return statistics.fmean(present), statistics.stdev(present) if len(present) > 1 else NAN


# Per-seed values summarize() averages: key -> value of one record (None: not measured).
SUMMARY_METRICS: dict[str, Callable[[dict], float | None]] = {
    "accuracy": lambda r: 100 * r["accuracy"],
    "decision_step": lambda r: r["decision_step"]["mean"],
    "spikes": lambda r: r["spikes_per_sample"],
    "acs": lambda r: r["ops"]["acs"],
    "macs": lambda r: r["ops"]["macs"],
    "dense": lambda r: r["ops"].get("dense"),
    "tier1_pj": lambda r: r["energy"]["tier1_pj"],
    "tier2_pj": lambda r: r["energy"].get("tier2_pj"),
    "corruption_accuracy": lambda r: None if not r.get("robustness") else 100 * r["robustness"]["mean_accuracy"],
    "relative_error": lambda r: (r.get("robustness") or {}).get("relative_error"),
    "params": lambda r: r.get("params"),
    "train_seconds": lambda r: r.get("train_seconds"),
}


def summarize(records: list[dict]) -> list[dict]:
    """One entry per (method, variant, T), in the order first met: "method", "variant", "T",
    "label", "family", "records" (one per seed), "seeds" (their seeds) and, for every key of
    SUMMARY_METRICS, (mean, std) over the seeds (see `mean_std`)."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault((record["method"], record["variant"], record["T"]), []).append(record)
    return [{
        "method": method, "variant": variant, "T": T, "label": row_label(method, variant),
        "family": members[0].get("family", ""), "records": members, "seeds": [r["seed"] for r in members],
        **{key: mean_std(value(r) for r in members) for key, value in SUMMARY_METRICS.items()},
    } for (method, variant, T), members in groups.items()]


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the (cost, accuracy) points that no other point dominates (cost ≤ and accuracy
    ≥, one of them strictly), ordered by cost."""
    front = [i for i, (cost, accuracy) in enumerate(points)
             if not any(c <= cost and a >= accuracy and (c < cost or a > accuracy) for c, a in points)]
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def tier_flips(records: list[dict]) -> list[tuple[str, str, str, str]]:
    """`benchmark.energy.flips_between_tiers` over the records priced in both tiers:
    (dataset, profile, cheaper in tier 1, cheaper in tier 2), rows named as by `row_label`."""
    from benchmark.energy import flips_between_tiers

    return flips_between_tiers([record for record in records if record["energy"].get("tier2_pj") is not None])


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
    "severity_accuracy" {family: {severity: accuracy %}} (severity 0 = clean) and
    "severity_step_shift" {family: {severity: steps}}, each (mean, std) over seeds."""
    rows = []
    for row in summarize([record for record in records if record.get("robustness")]):
        members = row["records"]
        accuracy = [_severity_means(r["robustness"]["per_corruption"], "accuracy") for r in members]
        steps = [_severity_means(r["robustness"]["per_corruption"], "decision_step_mean") for r in members]
        clean_steps = [r["decision_step"]["mean"] for r in members]
        families = list(dict.fromkeys(family for per_seed in accuracy for family in per_seed))
        overall_steps = [_overall_severity_means(r["robustness"]["per_corruption"], "decision_step_mean")
                         for r in members]
        severity_accuracy = {family: {0: row["accuracy"], **{
            severity: mean_std(100 * per_seed[family][severity] for per_seed in accuracy
                               if severity in per_seed.get(family, {}))
            for severity in sorted({s for per_seed in accuracy for s in per_seed.get(family, {})})}}
            for family in families}
        severity_shift = {family: {0: (0.0, NAN), **{
            severity: mean_std(per_seed[family][severity] - clean for per_seed, clean in zip(steps, clean_steps)
                               if severity in per_seed.get(family, {}))
            for severity in sorted({s for per_seed in steps for s in per_seed.get(family, {})})}}
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
    """The corruption families of `robustness_rows`: those of `benchmark.corruptions` in its
    order (noise, blur, weather, digital, affine, ...), then any other alphabetically."""
    from benchmark.corruptions import OFFICIAL_FAMILIES

    order = list(dict.fromkeys(OFFICIAL_FAMILIES.values()))
    present = {family for row in rows for family in row["families"]}
    return sorted(present, key=lambda family: (order.index(family) if family in order else len(order), family))


def robustness_table(records: list[dict]) -> pd.DataFrame:
    """The robustness table as data: one row per (method, variant, T) with robustness results,
    mean and std over seeds of clean accuracy, mean corruption accuracy, relative corruption error
    (against the ANN baseline), each family's mean accuracy and the decision-step shift."""
    rows = robustness_rows(records)
    families = corruption_families(rows)
    table = []
    for row in rows:
        cells = {"method": row["method"], "variant": row["variant"], "T": row["T"], SEEDS: len(row["seeds"])}
        for name, (mean, std) in [("clean accuracy (%)", row["clean_accuracy"]), (CORRUPTION, row["corruption_accuracy"]),
                                  (RELATIVE, row["relative_error"]), ("decision step shift", row["step_shift"]),
                                  *((f"{family} (%)", row["families"].get(family, (NAN, NAN))) for family in families)]:
            cells[name], cells[f"{name} std"] = mean, std
        cells["baseline"] = row["baseline"]
        table.append(cells)
    return pd.DataFrame(table)


# --- T sweeps and grids --------------------------------------------------------------------------


def load_grids(grids_dir: Path | None) -> dict[str, list[dict]]:
    """{grid name: records} of every reports/grids/<grid>/records.json (none when the folder is absent)."""
    grids: dict[str, list[dict]] = {}
    if grids_dir is None or not Path(grids_dir).is_dir():
        return grids
    for path in sorted(Path(grids_dir).glob("*/records.json")):
        document = read_json(path)
        if not isinstance(document, dict) or document.get("schema") != SCHEMA:
            version = document.get("schema") if isinstance(document, dict) else None
            raise ReportError(f"{path} has schema {version!r}, this report reads schema {SCHEMA}; "
                              f"re-run `spikecode grid {path.parent.name}` with this version of the suite")
        grids[document.get("grid") or path.parent.name] = document["records"]
    return grids


def grid_axes(records: list[dict]) -> list[str]:
    """The hyperparameters that vary across a grid's records (its axes), in their declared order."""
    keys = list(dict.fromkeys(key for record in records for key in record.get("hyperparameters", {})))
    axes = [key for key in keys
            if len({json.dumps(r.get("hyperparameters", {}).get(key), sort_keys=True) for r in records}) > 1]
    if "T" not in axes and len({record["T"] for record in records}) > 1:
        axes.append("T")
    return axes


def t_sweeps(records: list[dict], grids: dict[str, list[dict]] | None = None) -> list[dict]:
    """Accuracy-vs-T series with two or more T values: leaderboard rows of one method that differ
    only in T, and grids whose axes include T (one series per combination of the other axes).
    Each is {"series", "dataset", "profile", "method", "source", "points": [(T, mean, std, n)]}."""
    series: dict[tuple, list[dict]] = {}
    for record in records:
        rest = ",".join(part for part in record["variant"].split(",") if part and not part.startswith("T="))
        key = (record["dataset"], record["profile"], record["method"], "leaderboard", row_label(record["method"], rest))
        series.setdefault(key, []).append(record)
    for grid, members in (grids or {}).items():
        axes = grid_axes(members)
        if "T" not in axes:
            continue
        others = [axis for axis in axes if axis != "T"]
        for record in members:
            rest = ",".join(f"{axis}={record['hyperparameters'].get(axis)}" for axis in others)
            name = f"{grid}: {row_label(record['method'], rest)}"
            series.setdefault((record["dataset"], record["profile"], record["method"], f"grid {grid}", name),
                              []).append(record)
    sweeps = []
    for (dataset, profile, method, source, name), members in series.items():
        by_T: dict[int, list[float]] = {}
        for record in members:
            by_T.setdefault(record["T"], []).append(100 * record["accuracy"])
        if len(by_T) > 1:
            points = [(T, *mean_std(values), len(values)) for T, values in sorted(by_T.items())]
            sweeps.append({"series": name, "dataset": dataset, "profile": profile, "method": method,
                           "source": source, "points": points})
    return sweeps


# --- files for DVC (`dvc metrics show`, `dvc plots show`) ----------------------------------------


def _write_dvc_files(reports_dir: Path, records: list[dict], grids: dict[str, list[dict]]) -> list[Path]:
    """reports/metrics.json {"<dataset>-<profile>": {row label: metrics}} and the plot data of
    reports/plots/ with fixed column names (the markdown tables' names carry units that change)."""
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    points = []
    for (dataset, profile), subset in by_dataset_profile(records).items():
        for row in summarize(subset):
            values = {"accuracy": row["accuracy"][0] / 100, "decision_step": row["decision_step"][0],
                      "energy_tier1_pj": row["tier1_pj"][0], "energy_tier2_pj": row["tier2_pj"][0],
                      "corruption_accuracy": row["corruption_accuracy"][0] / 100,
                      "relative_corruption_error": row["relative_error"][0], "seeds": len(row["seeds"])}
            metrics.setdefault(f"{dataset}-{profile}", {})[row["label"]] = {
                key: value for key, value in values.items() if not _missing(value)}
            points.append({"dataset": dataset, "profile": profile, "method": row["method"], "variant": row["variant"],
                           "T": row["T"], "label": row["label"], "seeds": len(row["seeds"]),
                           "accuracy": row["accuracy"][0], "accuracy_std": row["accuracy"][1],
                           "decision_step": row["decision_step"][0], "energy_tier1_nj": row["tier1_pj"][0] / 1e3,
                           "energy_tier2_nj": row["tier2_pj"][0] / 1e3,
                           "corruption_accuracy": row["corruption_accuracy"][0]})
    sweep_points = [{"series": sweep["series"], "dataset": sweep["dataset"], "profile": sweep["profile"],
                     "method": sweep["method"], "source": sweep["source"], "T": T, "accuracy": mean,
                     "accuracy_std": std, "seeds": n}
                    for sweep in t_sweeps(records, grids) for T, mean, std, n in sweep["points"]]
    paths = [reports_dir / "metrics.json", reports_dir / "plots" / "accuracy_vs_energy.csv",
             reports_dir / "plots" / "accuracy_vs_T.csv"]
    write_json(paths[0], metrics)
    atomic_write_text(paths[1], pd.DataFrame(points, columns=PLOT_COLUMNS).to_csv(index=False))
    atomic_write_text(paths[2], pd.DataFrame(sweep_points, columns=SWEEP_COLUMNS).to_csv(index=False))
    return paths


PLOT_COLUMNS = ["dataset", "profile", "method", "variant", "T", "label", "seeds", "accuracy", "accuracy_std",
                "decision_step", "energy_tier1_nj", "energy_tier2_nj", "corruption_accuracy"]
SWEEP_COLUMNS = ["series", "dataset", "profile", "method", "source", "T", "accuracy", "accuracy_std", "seeds"]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


# --- rendering ---------------------------------------------------------------------------------


def _markdown(title: str, table: pd.DataFrame, energy: str, cost_model: str, robust: list[dict],
              flips: list[tuple], has_tier2: bool) -> str:
    energy2 = next(column for column in table.columns if column.startswith("energy tier 2"))
    sources = list(dict.fromkeys(source for source in table[SOURCE] if source))
    formats = {"T": "{}", SEEDS: "{}", STEP: "{:.2f}", SPIKES: "{:,.1f}", ACS: "{:,.0f}", MACS: "{:,.0f}",
               energy: "{:,.2f}", energy2: "{:,.2f}", CORRUPTION: "{:.2f}", RELATIVE: "{:.3f}", PARAMS: "{:,}",
               TRAIN: "{:.1f}"}
    cells = pd.DataFrame({
        "method": [_method_cell(method, source, sources) for method, source in zip(table["method"], table[SOURCE])],
        "variant": [variant or ("—" if source else "default")
                    for variant, source in zip(table["variant"], table[SOURCE])],
        "T": [_cell(value, formats["T"]) for value in table["T"]],
        ACC: [_accuracy_cell(mean, std) for mean, std in zip(table[ACC], table[ACC_STD])],
        **{column: [_cell(value, formats[column]) for value in table[column]]
           for column in (SEEDS, STEP, SPIKES, ACS, MACS, energy, energy2, CORRUPTION, RELATIVE, PARAMS, TRAIN)},
    })
    lines = [
        f"# Leaderboard: {title}", "",
        f"Per test sample. Accuracy is the mean ± sample standard deviation over seeds. "
        f"Energy tier 1 (compute) and tier 2 (compute and memory traffic) use the cost model `{cost_model}`. "
        "Corruption accuracy: mean over every corruption and severity; relative corruption error: "
        "mCE against the ANN baseline (below 1: degrades less than the ANN).", "",
        _markdown_table(cells),
    ]
    if sources:
        lines += ["", "Rows marked (paper reference) are published figures, not measured here:", ""]
        lines += [f"- [{number}] {source}" for number, source in enumerate(sources, start=1)]
    if robust:
        lines += ["", *_robustness_markdown(robust)]
    if has_tier2:
        lines += ["", "## Energy order between tiers", ""]
        lines += ([f"- ⚑ **{cheap1}** is cheaper than **{cheap2}** in tier 1, but **{cheap2}** is cheaper in tier 2"
                   for _, _, cheap1, cheap2 in flips]
                  or ["No pair of rows changes order between tier 1 and tier 2."])
    return "\n".join(lines) + "\n"


def _robustness_markdown(rows: list[dict]) -> list[str]:
    families = corruption_families(rows)
    cells = pd.DataFrame({
        "method": [row["method"] for row in rows],
        "variant": [row["variant"] or "default" for row in rows],
        "T": [str(row["T"]) for row in rows],
        SEEDS: [str(len(row["seeds"])) for row in rows],
        "clean accuracy (%)": [format_stat(row["clean_accuracy"]) for row in rows],
        CORRUPTION: [format_stat(row["corruption_accuracy"]) for row in rows],
        RELATIVE: [format_stat(row["relative_error"], "{:.3f}") for row in rows],
        **{f"{family} (%)": [format_stat(row["families"].get(family, (NAN, NAN))) for row in rows]
           for family in families},
        "ANN baseline": [row["baseline"] or "—" for row in rows],
    })
    lines = ["## Robustness", "",
             "Accuracy under each corruption family (mean over its corruptions and five severities), mean ± "
             "sample std over seeds. Relative corruption error: Σ_s error(c, s) / Σ_s error_ANN(c, s), averaged "
             "over corruptions c (Hendrycks & Dietterich, ICLR 2019).", "", _markdown_table(cells)]
    early = [row for row in rows if row["early_exit"]]
    if early:
        shifts = pd.DataFrame({
            "method": [row["method"] for row in early],
            "variant": [row["variant"] or "default" for row in early],
            "T": [str(row["T"]) for row in early],
            "clean decision step": [format_stat(row["step_clean"]) for row in early],
            "shift, all corruptions": [format_stat(row["step_shift"], "{:+.2f}") for row in early],
            **{f"shift, {family}": [format_stat(row["step_shift_by_family"].get(family, (NAN, NAN)), "{:+.2f}")
                                    for row in early] for family in families},
        })
        lines += ["", "### Decision step under corruption (early-exit methods)", "",
                  "Mean decision step under corruption minus the clean one, in time steps (positive: the "
                  "prediction comes later on corrupted inputs).", "", _markdown_table(shifts)]
    return lines


def format_stat(stat: tuple[float, float], template: str = "{:.2f}") -> str:
    """"mean ± std", "mean" for one seed, "—" when not measured."""
    mean, std = stat
    if _missing(mean):
        return "—"
    return template.format(mean) if _missing(std) else f"{template.format(mean)} ± {template.format(std).lstrip('+')}"


def _markdown_table(cells: pd.DataFrame) -> str:
    def line(values: Iterable[Any]) -> str:
        return "| " + " | ".join(str(value).replace("|", "\\|") for value in values) + " |"

    rows = cells.itertuples(index=False)
    return "\n".join([line(cells.columns), line("---" for _ in cells.columns), *map(line, rows)])


def _method_cell(method: str, source: str, sources: list[str]) -> str:
    return f"{method} [{sources.index(source) + 1}]" if source else method


def _accuracy_cell(mean: float, std: float) -> str:
    return f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f} ± {std:.2f}"


def _cell(value: Any, template: str) -> str:
    return "—" if pd.isna(value) else template.format(value)


# --- plots -------------------------------------------------------------------------------------


def board_plots(records: list[dict], title: str, cost_model: str) -> dict[str, bytes]:
    """The PNG plots of one dataset and profile, by file name: accuracy vs energy in each tier
    priced (Pareto front marked), accuracy vs decision step, and with robustness results accuracy
    vs severity per corruption family and the decision-step shift of the early-exit methods."""
    rows = summarize(records)
    plots = {}
    for tier, name in (("tier1_pj", "accuracy_vs_energy.png"), ("tier2_pj", "accuracy_vs_energy_tier2.png")):
        if all(_missing(row[tier][0]) for row in rows):
            continue
        unit = energy_unit(records, tier)
        label = f"energy {tier[:5].replace('tier', 'tier ')} ({unit}) per sample, cost model {cost_model}"
        plots[name] = plot_accuracy_vs(rows, tier, label, "log", title, scale=1 / PJ_PER_UNIT[unit], pareto=True)
    plots["accuracy_vs_decision_step.png"] = plot_accuracy_vs(rows, "decision_step", "mean decision step (time steps)",
                                                              "linear", title)
    robust = robustness_rows(records)
    for family in corruption_families(robust):
        plots[f"accuracy_vs_severity_{_file_part(family)}.png"] = plot_severity(robust, family, title)
    if any(row["early_exit"] for row in robust):
        plots["decision_step_shift.png"] = plot_step_shift(robust, title)
    return plots


def _file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "_"


def _figure(width: float = 7, height: float = 4.5) -> Figure:
    """A figure with fixed margins (a layout engine doubles the drawing time)."""
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(left=0.6 / width, right=1 - 0.15 / width, bottom=0.55 / height, top=1 - 0.4 / height)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _zero_if_missing(value: float) -> float:
    return 0.0 if _missing(value) else value


def plot_accuracy_vs(rows: list[dict], key: str, x_label: str, x_scale: str, title: str, scale: float = 1.0,
                     pareto: bool = False) -> bytes:
    """Accuracy against summary metric `key` (times `scale`), one labelled marker per row of
    `summarize`, error bars of one sample std over seeds on both axes; with `pareto`, the rows no
    other row beats in both accuracy and `key` are ringed and joined. Returns PNG bytes."""
    figure = _figure()
    axes = figure.subplots()
    shown = [row for row in rows if not _missing(row[key][0])]
    for row, marker in zip(shown, cycle(MARKERS)):
        axes.errorbar(row[key][0] * scale, row["accuracy"][0], xerr=_zero_if_missing(row[key][1]) * scale,
                      yerr=_zero_if_missing(row["accuracy"][1]), marker=marker, capsize=3, linestyle="none",
                      label=f"{row['label']}, T={row['T']}")
    if pareto and shown:
        front = [shown[i] for i in pareto_front([(row[key][0], row["accuracy"][0]) for row in shown])]
        xs, ys = [row[key][0] * scale for row in front], [row["accuracy"][0] for row in front]
        axes.plot(xs, ys, linestyle="--", color="0.3", drawstyle="steps-post", linewidth=1, zorder=1)
        axes.scatter(xs, ys, s=220, facecolors="none", edgecolors="crimson", linewidths=1.5, zorder=3,
                     label="Pareto front")
    axes.set(xscale=x_scale, xlabel=x_label, ylabel="accuracy (%)", title=title)
    axes.grid(alpha=0.3)
    if shown:
        axes.legend(fontsize="small")
    return _png(figure)


def plot_severity(robust: list[dict], family: str, title: str) -> bytes:
    """Accuracy against corruption severity (0 = clean) for one family, a line per row of
    `robustness_rows`, error bars over seeds."""
    figure = _figure()
    axes = figure.subplots()
    for row, marker in zip(robust, cycle(MARKERS)):
        curve = row["severity_accuracy"].get(family)
        if not curve:
            continue
        severities = list(curve)
        axes.errorbar(severities, [curve[s][0] for s in severities],
                      yerr=[_zero_if_missing(curve[s][1]) for s in severities], marker=marker, capsize=3,
                      label=f"{row['label']}, T={row['T']}")
    axes.set(xlabel="severity (0 = clean)", ylabel="accuracy (%)", title=f"{title}: {family} corruptions")
    axes.set_xticks(range(6))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _png(figure)


def plot_step_shift(robust: list[dict], title: str) -> bytes:
    """Mean decision step under corruption minus the clean one against severity, one panel per
    corruption family, a line per early-exit row, error bars over seeds."""
    early = [row for row in robust if row["early_exit"]]
    families = corruption_families(early)
    figure = _figure(max(7.0, 3.2 * len(families)), 4.4)
    figure.subplots_adjust(top=1 - 0.75 / 4.4, wspace=0.08)
    panels = figure.subplots(1, len(families), sharey=True, squeeze=False)[0]
    for axes, family in zip(panels, families):
        for row, marker in zip(early, cycle(MARKERS)):
            curve = row["severity_step_shift"].get(family)
            if curve:
                severities = list(curve)
                axes.errorbar(severities, [curve[s][0] for s in severities],
                              yerr=[_zero_if_missing(curve[s][1]) for s in severities], marker=marker, capsize=3,
                              label=f"{row['label']}, T={row['T']}")
        axes.axhline(0, color="0.5", linewidth=0.8)
        axes.set(xlabel="severity", title=family)
        axes.set_xticks(range(6))
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("decision step shift (time steps)")
    panels[0].legend(fontsize="small")
    figure.suptitle(f"{title}: decision step under corruption, early-exit methods")
    return _png(figure)


def plot_accuracy_vs_T(sweeps: list[dict], title: str) -> bytes:
    """Accuracy against T, a line per series of `t_sweeps`, error bars over seeds."""
    figure = _figure()
    axes = figure.subplots()
    for sweep, marker in zip(sweeps, cycle(MARKERS)):
        Ts, means, stds, _ = zip(*sweep["points"])
        axes.errorbar(Ts, means, yerr=[_zero_if_missing(std) for std in stds], marker=marker, capsize=3,
                      label=sweep["series"])
    axes.set_xscale("log", base=2)
    axes.set(xlabel="time steps T", ylabel="accuracy (%)", title=title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return _png(figure)


# --- accuracy vs spikes/sample, conversion methods (issue 5: matched accuracy, not only matched T) ---

MATCH_MARGIN_PP = 0.5  # matched accuracy: within 0.5 pp of the `ann` baseline of the same dataset, profile and arch


def spike_curves(records: list[dict], grids: dict[str, list[dict]] | None = None) -> list[dict]:
    """Accuracy-vs-spikes/sample series of the conversion methods (records of family "conversion"):
    each grid whose axes include T gives a series per combination of its other axes (as `t_sweeps`;
    series of one point are left out), and each leaderboard row not already in a grid series a
    series of its own, grouped by method and variant less T.
    Each is {"series", "dataset", "profile", "arch", "method", "source",
    "points": [(spikes/sample mean, accuracy mean (%), accuracy std, T, seeds)]}, points by spikes."""
    series: dict[tuple, list[dict]] = {}
    for grid, members in (grids or {}).items():
        members = [record for record in members if record.get("family") == "conversion"]
        axes = grid_axes(members)
        if "T" not in axes:
            continue
        found: dict[tuple, list[dict]] = {}
        for record in members:
            rest = ",".join(f"{axis}={record['hyperparameters'].get(axis)}" for axis in axes if axis != "T")
            key = (record["dataset"], record["profile"], record.get("arch"), record["method"], f"grid {grid}",
                   f"{grid}: {row_label(record['method'], rest)}")
            found.setdefault(key, []).append(record)
        series.update({key: rs for key, rs in found.items() if len({r["T"] for r in rs}) > 1})

    def point_key(record: dict) -> tuple:
        return record["dataset"], record["profile"], record["method"], record["variant"], record["T"]

    covered = {point_key(record) for members in series.values() for record in members}
    for record in records:
        if record.get("family") != "conversion" or point_key(record) in covered:
            continue
        rest = ",".join(part for part in record["variant"].split(",") if part and not part.startswith("T="))
        key = (record["dataset"], record["profile"], record.get("arch"), record["method"], "leaderboard",
               row_label(record["method"], rest))
        series.setdefault(key, []).append(record)
    curves = []
    for (dataset, profile, arch, method, source, name), members in series.items():
        by_T: dict[int, list[dict]] = {}
        for record in members:
            by_T.setdefault(record["T"], []).append(record)
        points = sorted((mean_std(r["spikes_per_sample"] for r in rs)[0], *mean_std(100 * r["accuracy"] for r in rs),
                         T, len(rs)) for T, rs in by_T.items())
        curves.append({"series": name, "dataset": dataset, "profile": profile, "arch": arch, "method": method,
                       "source": source, "points": points})
    return curves


def matched_levels(records: list[dict], grids: dict[str, list[dict]] | None = None) -> dict[str, float]:
    """{arch: its matched-accuracy level (%)}: the `ann` baseline's mean accuracy on that
    architecture less MATCH_MARGIN_PP. The baseline is the `records`' ann runs; for an architecture
    only the grids convert, the ann source their conversions were converted from (`converted_from`).
    Pass one dataset and profile's records and grids."""
    baselines: dict[str, list[float]] = {}
    for record in records:
        if record["method"] == "ann":
            baselines.setdefault(record.get("arch"), []).append(100 * record["accuracy"])
    sources: dict[str, set[float]] = {}
    for record in (record for members in (grids or {}).values() for record in members):
        source = record.get("converted_from")
        if source and source["method"] == "ann" and source["arch"] not in baselines:
            sources.setdefault(source["arch"], set()).add(100 * source["accuracy"])
    baselines.update({arch: sorted(values) for arch, values in sources.items()})
    return {arch: statistics.fmean(values) - MATCH_MARGIN_PP for arch, values in baselines.items()}


def matched_points(curves: list[dict], levels: dict[str, float]) -> dict[str, tuple | None]:
    """{series: its point with the fewest spikes/sample among those at or above its architecture's
    level, or None (also when its architecture has no level)}."""
    return {curve["series"]: min((p for p in curve["points"] if curve["arch"] in levels and p[1] >= levels[curve["arch"]]),
                                 default=None) for curve in curves}


def conversion_spike_plot(records: list[dict], grids: dict[str, list[dict]] | None, title: str) -> bytes | None:
    """`plot_accuracy_vs_spikes` of one dataset and profile's `records` and the grids' points of the
    same dataset and profile; None without any conversion record."""
    if not records:
        return None
    board = (records[0]["dataset"], records[0]["profile"])
    curves = [curve for curve in spike_curves(records, grids) if (curve["dataset"], curve["profile"]) == board]
    board_grids = {name: [r for r in members if (r["dataset"], r["profile"]) == board]
                   for name, members in (grids or {}).items()}
    return plot_accuracy_vs_spikes(curves, matched_levels(records, board_grids), title) if curves else None


def plot_accuracy_vs_spikes(curves: list[dict], levels: dict[str, float], title: str) -> bytes:
    """Accuracy against spikes/sample (log), a line per series of `spike_curves`, error bars over
    seeds; left all points, right a zoom on the top 3 pp, each point labelled with its T. For each
    architecture with a matched-accuracy level (%, `matched_levels`): a dashed line, and each of its
    series' cheapest point at or above it ringed, its spikes/sample in the legend. Points without
    spikes (T too short) are left out of the log axis."""
    figure = _figure(12, 4.8)
    figure.subplots_adjust(left=0.6 / 12, right=1 - 0.15 / 12, wspace=0.12)
    panels = figure.subplots(1, 2)
    matched = matched_points(curves, levels)
    top = max(p[1] for curve in curves for p in curve["points"] if p[0] > 0) if curves else 100.0
    for index, axes in enumerate(panels):
        for curve, marker, color in zip(curves, cycle(MARKERS), cycle(f"C{i}" for i in range(10))):
            points = [p for p in curve["points"] if p[0] > 0]
            if not points:
                continue
            spikes, means, stds, Ts, _ = zip(*points)
            label = curve["series"]
            best = matched.get(curve["series"])
            if curve["arch"] in levels:
                label += f": {best[0]:,.0f} spikes at T={best[3]}" if best else ": below the level"
            axes.errorbar(spikes, means, yerr=[_zero_if_missing(s) for s in stds], marker=marker, color=color,
                          capsize=3, label=label)
            if best:
                axes.scatter([best[0]], [best[1]], s=220, facecolors="none", edgecolors=color, linewidths=1.5,
                             zorder=3)
            if index == 1:
                for x, y, T in zip(spikes, means, Ts):
                    axes.annotate(f"{T}", (x, y), textcoords="offset points", xytext=(3, -9), fontsize=7,
                                  color=color, annotation_clip=True)
        shown_archs = {curve["arch"] for curve in curves}
        for (arch, level), style in zip(sorted(levels.items()), cycle(["--", ":", "-."])):
            if arch in shown_archs:
                shown = f"matched accuracy, {arch}: its ann − {MATCH_MARGIN_PP} pp = {level:.2f} %"
                axes.axhline(level, linestyle=style, color="0.3", linewidth=1, label=shown if index == 0 else None)
        axes.set_xscale("log")
        axes.set(xlabel="spikes per sample")
        axes.grid(alpha=0.3)
    low = min([*levels.values(), top]) - 3
    zoomed = [p[0] for curve in curves for p in curve["points"] if p[0] > 0 and p[1] >= low]
    panels[1].set_ylim(low, top + 0.5)
    if zoomed:
        panels[1].set_xlim(min(zoomed) / 1.5, max(zoomed) * 1.5)
    panels[0].set(ylabel="accuracy (%)", title=f"{title}: conversion methods")
    panels[1].set(title="top 3 pp; numbers: T (the decision step; CSS: latency)")
    panels[0].legend(fontsize="small")
    return _png(figure)
