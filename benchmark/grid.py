"""Grids: sweeps and ablations of one method, declared in params.yaml under `grids:`.

    grids:
      ttfs-ablation:
        method: ttfs
        dataset: fashion-mnist
        arch: mlp                        # optional; the profile's architecture otherwise
        seeds: [0]
        axes: {init: [ettfs, kaiming], norm: [ws, none]}
        fixed: {T: 8}                    # optional hyperparameters shared by every point

Every combination of the axes' values is one point: a full run (train or convert, evaluate,
energy) in `runs/grids/<grid>/<dataset>/<method>@<point>/<seed>/`, with the same record as a
leaderboard run. A conversion grid converts the leaderboard's source run, or, for another
architecture, a source trained once in `runs/grids/sources/` and shared by every grid. A point whose results exist under the same settings is not run again, so an
interrupted grid resumes where it stopped. `spikecode grid NAME` writes
`reports/grids/<grid>/{table.md, table.csv, records.json, accuracy.png}`.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from benchmark.config import DATASETS_DIR, RUNS_DIR, Params, RunSpec, resolve_run
from benchmark.errors import ConfigError
from benchmark.io import atomic_write_bytes, atomic_write_text, write_json
from benchmark.train import trained_summary

GRIDS_RUNS = RUNS_DIR / "grids"
GRIDS_REPORTS = Path("reports") / "grids"


def point_label(method: str, point: dict[str, Any]) -> str:
    return f"{method}@" + ",".join(f"{key}={value}" for key, value in point.items())


def grid_points(params: Params, name: str, profile: str | None = None) -> list[tuple[dict[str, Any], RunSpec]]:
    """(axis values, run spec) of every point of grid `name`, in axis order."""
    if name not in params.grids:
        raise ConfigError(f"grid {name!r} is not defined under `grids:` in params.yaml (defined: {', '.join(params.grids) or 'none'})")
    grid = params.grids[name]
    keys = list(grid.axes)
    points = []
    for values in itertools.product(*(grid.axes[key] for key in keys)):
        point = dict(zip(keys, values))
        for seed in grid.seeds:
            spec = resolve_run(params, grid.dataset, grid.method, seed, profile, arch=grid.arch,
                               overrides={**grid.fixed, **point}, label=point_label(grid.method, point),
                               root=GRIDS_RUNS / name)
            points.append((point, spec))
    return points


def is_done(spec: RunSpec, source: RunSpec | None = None) -> bool:
    """True when the point's results exist and were trained under its current settings; for a
    conversion, also from its source as the source is now specified (a retrained source, e.g. after
    its hyperparameters changed, makes every conversion of it stale)."""
    if not all((spec.run_dir / name).exists() for name in ("energy.json", "eval.json")):
        return False
    train = trained_summary(spec)
    if train is None:
        return False
    return source is None or train["history"][0].get("source_fingerprint") == source.fingerprint()


def source_of(params: Params, spec: RunSpec) -> RunSpec | None:
    """The run a conversion point converts: the leaderboard's, or for another architecture one
    trained once under runs/grids/sources/ and shared by every grid converting that architecture."""
    from benchmark.registry import get_method

    source_name = get_method(spec.method).source_method
    if not source_name:
        return None
    source = resolve_run(params, spec.dataset, source_name, spec.seed, spec.profile_name)
    if source.arch_name != spec.arch_name:
        source = resolve_run(params, spec.dataset, source_name, spec.seed, spec.profile_name,
                             arch=spec.arch_name, label=f"{source_name}@arch={spec.arch_name}",
                             root=GRIDS_RUNS / "sources")
    return source


def run_point(params: Params, spec: RunSpec, source: RunSpec | None, progress: bool) -> None:
    """Trains (or converts `source`'s network, training and evaluating the source first where it is
    missing or stale), evaluates and costs one point."""
    from benchmark.energy import run_energy
    from benchmark.evaluate import evaluate
    from benchmark.train import train

    if source is not None:
        retrain = trained_summary(source) is None
        if retrain:
            train(source, progress=progress)  # a grid of conversions needs its source trained once
        if retrain or not (source.run_dir / "eval.json").exists():
            evaluate(source, progress=progress)  # its accuracy is what the conversions are held to
    train(spec, progress=progress, source=source)
    evaluate(spec, progress=progress)
    run_energy(spec.run_dir, params.energy.cost_model)


def run_grid(params: Params, name: str, profile: str | None = None, progress: bool = True) -> list[Path]:
    from benchmark.data import prepare
    from benchmark.report import collect_records

    points = grid_points(params, name, profile)
    grid = params.grids[name]
    if not (DATASETS_DIR / grid.dataset / "prepared.pt").exists():
        prepare(grid.dataset, DATASETS_DIR, **points[0][1].dataset_params.model_dump())
    for index, (point, spec) in enumerate(points, start=1):
        source = source_of(params, spec)
        if is_done(spec, source):
            print(f"grid {name}: point {index}/{len(points)} {spec.label} seed {spec.seed}: done before", flush=True)
            continue
        print(f"grid {name}: point {index}/{len(points)} {spec.label} seed {spec.seed}", flush=True)
        run_point(params, spec, source, progress)
    records = collect_records(GRIDS_RUNS / name)
    return write_grid_report(name, list(grid.axes), records, GRIDS_REPORTS / name)


def grid_table(axes: list[str], records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per point: the axis values, then mean (and std over seeds) of the key metrics."""
    rows = []
    for record in records:
        hyperparameters = record["hyperparameters"]
        rows.append({
            **{axis: hyperparameters[axis] for axis in axes},
            "accuracy": 100 * record["accuracy"],
            "decision_step": record["decision_step"]["mean"],
            "spikes_per_sample": record["spikes_per_sample"],
            "energy_tier1_nj": record["energy"]["tier1_pj"] / 1e3,
            "seed": record["seed"],
        })
    frame = pd.DataFrame(rows)
    metrics = ["accuracy", "decision_step", "spikes_per_sample", "energy_tier1_nj"]
    grouped = frame.groupby(axes, sort=False, dropna=False)
    table = grouped[metrics].mean()
    table["accuracy_std"] = grouped["accuracy"].std()
    table["seeds"] = grouped["seed"].count()
    return table.reset_index().sort_values(axes, kind="stable", ignore_index=True)


def main_effects(axes: list[str], table: pd.DataFrame) -> pd.DataFrame:
    """For every axis of two or more values and each of its values: the mean accuracy over all the
    other axes' combinations, and its difference from the axis's best value (an ablation's summary)."""
    rows = []
    for axis in axes:
        if table[axis].nunique() < 2:
            continue
        means = table.groupby(axis, sort=False)["accuracy"].mean()
        for value, accuracy in means.items():
            rows.append({"axis": axis, "value": value, "mean_accuracy": accuracy,
                         "vs_best": accuracy - means.max(), "points": int((table[axis] == value).sum())})
    return pd.DataFrame(rows, columns=["axis", "value", "mean_accuracy", "vs_best", "points"])


def write_grid_report(name: str, axes: list[str], records: list[dict[str, Any]], out: Path) -> list[Path]:
    table = grid_table(axes, records)
    paths = [out / "table.md", out / "table.csv", out / "records.json", out / "accuracy.png"]
    text = f"# Grid `{name}`\n\n" + _markdown(table) + "\n"
    if len(axes) > 1:
        text += ("\n## Main effects\n\nMean accuracy (%) at each value of an axis, over every combination of the "
                 "other axes; `vs_best` is the gap to that axis's best value.\n\n" + _markdown(main_effects(axes, table)) + "\n")
    atomic_write_text(paths[0], text)
    atomic_write_text(paths[1], table.to_csv(index=False))
    write_json(paths[2], {"schema": 1, "grid": name, "records": records})
    atomic_write_bytes(paths[3], _plot(name, axes, table))
    return paths


def _markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    lines = [header, rule]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(value) for value in row) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if pd.isna(value):
            return "—"
        return f"{value:.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2g}"  # a weight decay of 5e-4 too
    return str(value)


def _plot(name: str, axes: list[str], table: pd.DataFrame) -> bytes:
    """Accuracy vs the first numeric axis (one line per combination of the others), else a bar per point."""
    from io import BytesIO

    figure = Figure(figsize=(7, 4.2), layout="constrained")
    ax = figure.add_subplot()
    numeric = [axis for axis in axes if pd.api.types.is_numeric_dtype(table[axis]) and table[axis].nunique() > 2]
    if numeric:
        x_axis, others = numeric[0], [axis for axis in axes if axis != numeric[0]]
        series = table.groupby(others, sort=False) if others else [((), table)]
        for key, group in series:
            label = ", ".join(f"{a}={v}" for a, v in zip(others, key if isinstance(key, tuple) else (key,))) or "accuracy"
            group = group.sort_values(x_axis)
            ax.errorbar(group[x_axis], group["accuracy"], yerr=group["accuracy_std"].fillna(0), marker="o", label=label, capsize=3)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(x_axis)
        ax.legend(fontsize=7)
    else:
        labels = [", ".join(f"{a}={row[a]}" for a in axes) for _, row in table.iterrows()]
        ax.barh(range(len(table)), table["accuracy"], xerr=table["accuracy_std"].fillna(0))
        ax.set_yticks(range(len(table)), labels, fontsize=7)
        ax.set_xlim(max(0, table["accuracy"].min() - 5), min(100, table["accuracy"].max() + 2))
        ax.set_xlabel("accuracy (%)")
    if numeric:
        ax.set_ylabel("accuracy (%)")
    ax.set_title(f"grid {name}")
    ax.grid(alpha=0.3)
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()
