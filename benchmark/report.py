"""Reports: per-run results become result records, records become the leaderboard.

Reads `runs/<dataset>/<method>/<seed>/{eval,train,ops,energy,robust}.json` (written by the
pipeline's stages) and writes

    reports/leaderboard.json                      {"schema", "records", "references"}
    reports/<dataset>-<profile>/leaderboard.md    one row per (method, variant, T): seeds collapse
    reports/<dataset>-<profile>/leaderboard.csv   into mean ± sample std (ddof = 1) with n seeds
    reports/<dataset>-<profile>/leaderboard.json  that dataset and profile's records
    reports/<dataset>-<profile>/accuracy_vs_energy.png, accuracy_vs_decision_step.png

Published figures enter only as labelled reference rows, after the measured rows and never
aggregated with them. Every file is written atomically (`benchmark.io`).
"""

from __future__ import annotations

import sys

from io import BytesIO
from itertools import cycle
from pathlib import Path
from typing import Any, Iterable

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
ROBUST_KEYS = ("mean_accuracy", "relative_error", "baseline")

# Table columns (shared by the csv and the markdown); the energy column's unit is chosen per table.
GROUP = ["method", "variant", "T"]
ACC, ACC_STD, SEEDS = "accuracy (%)", "accuracy std (%)", "seeds"
STEP, SPIKES, ACS, MACS = "mean decision step", "spikes/sample", "effective ACs", "effective MACs"
PARAMS, TRAIN, SOURCE = "params", "train time (s)", "source"
ENERGY = "energy tier 1 ({})"  # per sample, in the unit filled in
PJ_PER_UNIT = {"nJ": 1e3, "µJ": 1e6}
MARKERS = "os^Dv<>PX*"


class ReportError(SpikeCodeError):
    """Results that cannot be reported: missing, incomplete or inconsistent."""


def build_report(runs_dir: Path, reports_dir: Path, references: Iterable[dict] = ()) -> list[Path]:
    """Collect every run under `runs_dir` and write the leaderboard under `reports_dir`."""
    records = collect_records(runs_dir)
    if not records:
        raise ReportError(
            f"no results to report: {runs_dir} holds no <dataset>/<method>/<seed>/eval.json; "
            "run `dvc repro`, or `spikecode train`, `spikecode evaluate` and `spikecode energy` first"
        )
    return write_leaderboard(records, reports_dir, references)


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
        "robustness": _read_robustness(run_dir / "robust.json"),
        "train_seconds": _pick(train, ("train_seconds",), run_dir / "train.json")["train_seconds"],
        "layers": ops["layers"],
    }


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


def _read_robustness(path: Path) -> dict | None:
    return _pick(read_json(path), ROBUST_KEYS, path) if path.exists() else None


def _pick(document: dict, keys: Iterable[str], path: Path) -> dict:
    missing = [key for key in keys if key not in document]
    if missing:
        raise ReportError(f"{path} lacks the key(s) {missing}; re-run the stage that writes it")
    return {key: document[key] for key in keys}


# --- leaderboard -------------------------------------------------------------------------------


def write_leaderboard(records: list[dict], reports_dir: Path, references: Iterable[dict] = ()) -> list[Path]:
    """Write reports/leaderboard.json and one folder per (dataset, profile); return the paths.

    `references` are published figures, {"dataset", "method", "accuracy" in [0, 1], "source",
    optional "T" and "variant"}; only those for datasets present in `records` are shown.
    """
    reports_dir = Path(reports_dir)
    datasets = {record["dataset"] for record in records}
    references = [ref for ref in map(_checked_reference, references) if ref["dataset"] in datasets]
    path = reports_dir / "leaderboard.json"
    write_json(path, {"schema": SCHEMA, "records": records, "references": references})
    written = [path]
    for (dataset, profile), subset in _by_dataset_profile(records).items():
        dataset_references = [ref for ref in references if ref["dataset"] == dataset]
        written += _write_board(reports_dir / f"{dataset}-{profile}", dataset, profile, subset, dataset_references)
    return written


def leaderboard_table(records: list[dict], references: Iterable[dict] = ()) -> pd.DataFrame:
    """One row per (method, variant, T), seeds collapsed, sorted by accuracy descending; then one
    row per reference. Accuracy in %, energy tier 1 per sample in the unit its column names."""
    unit = _energy_unit(records)
    energy = ENERGY.format(unit)
    rows = pd.DataFrame([_row(record, energy, PJ_PER_UNIT[unit]) for record in records])
    means = {column: (column, "mean") for column in (STEP, SPIKES, ACS, MACS, energy, PARAMS, TRAIN)}
    table = rows.groupby(GROUP, sort=False).agg(
        **{SEEDS: (ACC, "size"), ACC: (ACC, "mean"), ACC_STD: (ACC, "std")}, **means
    ).reset_index()
    table = table.sort_values([ACC, *GROUP], ascending=[False, True, True, True], kind="stable")
    table = table[[*GROUP, ACC, ACC_STD, SEEDS, STEP, SPIKES, ACS, MACS, energy, PARAMS, TRAIN]].assign(**{SOURCE: ""})
    reference_rows = sorted((_reference_row(ref) for ref in references), key=lambda row: -row[ACC])
    if reference_rows:
        table = pd.concat([table, pd.DataFrame(reference_rows)], ignore_index=True)
    table[PARAMS] = table[PARAMS].round()
    return table.astype({"T": "Int64", SEEDS: "Int64", PARAMS: "Int64"}).reset_index(drop=True)


def _row(record: dict, energy: str, pj_per_unit: float) -> dict:
    return {
        "method": record["method"], "variant": record["variant"], "T": record["T"],
        ACC: 100 * record["accuracy"],
        STEP: record["decision_step"]["mean"],
        SPIKES: record["spikes_per_sample"],
        ACS: record["ops"]["acs"],
        MACS: record["ops"]["macs"],
        energy: record["energy"]["tier1_pj"] / pj_per_unit,
        PARAMS: record["params"],
        TRAIN: record["train_seconds"],
    }


def _reference_row(reference: dict) -> dict:
    return {
        "method": f"{reference['method']} (paper reference)", "variant": reference["variant"],
        "T": reference["T"], ACC: 100 * reference["accuracy"], SOURCE: reference["source"],
    }


def _energy_unit(records: list[dict]) -> str:
    """nJ, or µJ once some run spends at least 1 µJ (10⁶ pJ) per sample."""
    largest = max(record["energy"]["tier1_pj"] for record in records)
    return "µJ" if largest >= 1e6 else "nJ"


def _checked_reference(reference: dict) -> dict:
    missing = [key for key in ("dataset", "method", "accuracy", "source") if key not in reference]
    if missing:
        raise ReportError(f"paper reference {reference!r} lacks {missing}; give dataset, method, accuracy and source")
    accuracy = reference["accuracy"]
    if not isinstance(accuracy, (int, float)) or not 0 <= accuracy <= 1:
        raise ReportError(
            f"paper reference {reference!r} has accuracy {accuracy!r}; give a fraction in [0, 1] (0.929, not 92.9)"
        )
    return {"variant": "", "T": None, **reference}


def _by_dataset_profile(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        groups.setdefault((record["dataset"], record["profile"]), []).append(record)
    return groups


def _cost_model(records: list[dict], dataset: str, profile: str) -> str:
    models = sorted({record["energy"]["cost_model"] for record in records})
    if len(models) > 1:
        raise ReportError(
            f"the {dataset}/{profile} runs mix energy cost models {models}; their energies cannot share a "
            "table: re-run `spikecode energy` for all of them with one cost model"
        )
    return models[0]


def _write_board(folder: Path, dataset: str, profile: str, records: list[dict], references: list[dict]) -> list[Path]:
    cost_model = _cost_model(records, dataset, profile)
    table = leaderboard_table(records, references)
    measured = table[table[SOURCE] == ""]
    energy = ENERGY.format(_energy_unit(records))
    title = f"{dataset} ({profile} profile)"
    board_json, board_csv, board_md = (folder / f"leaderboard.{suffix}" for suffix in ("json", "csv", "md"))
    energy_png, step_png = folder / "accuracy_vs_energy.png", folder / "accuracy_vs_decision_step.png"
    write_json(board_json, {"schema": SCHEMA, "records": records, "references": references})
    atomic_write_text(board_csv, table.to_csv(index=False))
    atomic_write_text(board_md, _markdown(title, table, energy, cost_model))
    energy_label = f"{energy} per sample, cost model {cost_model}"
    atomic_write_bytes(energy_png, _plot(measured, energy, energy_label, "log", title))
    atomic_write_bytes(step_png, _plot(measured, STEP, "mean decision step (time steps)", "linear", title))
    return [board_json, board_csv, board_md, energy_png, step_png]


# --- rendering ---------------------------------------------------------------------------------


def _markdown(title: str, table: pd.DataFrame, energy: str, cost_model: str) -> str:
    sources = list(dict.fromkeys(source for source in table[SOURCE] if source))
    formats = {"T": "{}", SEEDS: "{}", STEP: "{:.2f}", SPIKES: "{:,.1f}", ACS: "{:,.0f}", MACS: "{:,.0f}",
               energy: "{:,.2f}", PARAMS: "{:,}", TRAIN: "{:.1f}"}
    cells = pd.DataFrame({
        "method": [_method_cell(method, source, sources) for method, source in zip(table["method"], table[SOURCE])],
        "variant": [variant or ("—" if source else "default")
                    for variant, source in zip(table["variant"], table[SOURCE])],
        "T": [_cell(value, formats["T"]) for value in table["T"]],
        ACC: [_accuracy_cell(mean, std) for mean, std in zip(table[ACC], table[ACC_STD])],
        **{column: [_cell(value, formats[column]) for value in table[column]]
           for column in (SEEDS, STEP, SPIKES, ACS, MACS, energy, PARAMS, TRAIN)},
    })
    lines = [
        f"# Leaderboard: {title}", "",
        f"Per test sample. Accuracy is the mean ± sample standard deviation over seeds. "
        f"Energy tier 1 uses the cost model `{cost_model}`.", "",
        _markdown_table(cells),
    ]
    if sources:
        lines += ["", "Rows marked (paper reference) are published figures, not measured here:", ""]
        lines += [f"- [{number}] {source}" for number, source in enumerate(sources, start=1)]
    return "\n".join(lines) + "\n"


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


def _plot(measured: pd.DataFrame, x: str, x_label: str, x_scale: str, title: str) -> bytes:
    """Accuracy against `x`, one labelled marker per row (method, variant, T), error bars of one
    sample standard deviation over seeds. Returns PNG bytes."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.subplots()
    for row, marker in zip(measured.to_dict("records"), cycle(MARKERS)):
        label = f"{row['method']} @ {row['variant']}" if row["variant"] else row["method"]
        axes.errorbar(row[x], row[ACC], yerr=0 if pd.isna(row[ACC_STD]) else row[ACC_STD], marker=marker,
                      capsize=3, label=label)
    axes.set(xscale=x_scale, xlabel=x_label, ylabel="accuracy (%)", title=title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()
