"""Grids: sweeps and ablations of one method, declared in params.yaml under `grids:` (or a `grid_files` file).

    grids:
      ttfs-ablation:
        method: ttfs
        dataset: fashion-mnist
        arch: mlp                        # optional; the profile's architecture otherwise
        seeds: [0]
        axes: {init: [ettfs, kaiming], norm: [ws, none]}
        fixed: {T: 8}                    # optional hyperparameters shared by every point
        probes: [layers]                 # optional per-layer probes (benchmark.sweeps.probes)

Every combination of the axes' values is one point: a full run (train or convert, evaluate,
energy) for every seed, in `runs/grids/<grid>/<dataset>/<method>@<point>/<seed>/`, with the same
record as a leaderboard run. An axis `arch` sweeps architectures (names of `architectures:`). A
conversion grid converts the leaderboard's source run, or, for another architecture, a source
trained once in `runs/grids/sources/` and shared by every grid (benchmark.run.train.source_of). A
point whose results exist under the same settings is not run again, so an interrupted grid resumes
where it stopped. `spikecode grid NAME` writes
`reports/grids/<grid>/{table.md, table.csv, records.json, accuracy.png}`: one row per point (the axis
values, accuracy mean and std over seeds, decision step, spikes, tier-1 energy) and, for a grid of
two or more axes, the main effects (each value's mean accuracy over the other axes). A grid with
`probes` also writes each run's probes.json (done again when its run is) and their report
(benchmark.render.probes: probes.md, probes.csv, a plot per quantity).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.contract.errors import ConfigError
from benchmark.contract.io import atomic_write_bytes, atomic_write_text, read_json, write_json
from benchmark.data.prepared import prepare
from benchmark.metrics.energy import run_energy
from benchmark.render.plots import plot_grid
from benchmark.render.probes import write_probe_report
from benchmark.render.tables import grid_cell, markdown_table, stat
from benchmark.results.records import SCHEMA, collect_records
from benchmark.results.series import grid_points as aggregate_points
from benchmark.results.series import chosen_point, main_effects
from benchmark.run.config import DATASETS_DIR, RUNS_DIR, Params, RunSpec, resolve_run
from benchmark.run.evaluate import evaluate
from benchmark.run.runtime import trained_summary
from benchmark.run.train import source_of, train
from benchmark.sweeps.probes import PROBES_FILE, check_probes, probes_current, write_probes

GRIDS_RUNS = RUNS_DIR / "grids"
GRIDS_REPORTS = Path("reports") / "grids"
TABLE_METRICS = {"val_accuracy": ("val_accuracy", 0), "accuracy": ("accuracy", 0), "accuracy_std": ("accuracy", 1),
                 "decision_step": ("decision_step", 0), "spikes_per_sample": ("spikes", 0),
                 "energy_tier1_nj": ("tier1_pj", 0)}
CHOSEN = "◀ chosen"  # the point a default may take: the best validation accuracy


def point_label(method: str, point: dict[str, Any]) -> str:
    return f"{method}@" + ",".join(f"{key}={value}" for key, value in point.items())


def grid_points(params: Params, name: str, profile: str | None = None) -> list[tuple[dict[str, Any], RunSpec]]:
    """(axis values, run spec) of every point of grid `name`, in axis order."""
    if name not in params.grids:
        raise ConfigError(f"grid {name!r} is not defined under `grids:` in params.yaml or its grid_files "
                          f"(defined: {', '.join(params.grids) or 'none'})")
    grid = params.grids[name]
    keys = list(grid.axes)
    points = []
    for values in itertools.product(*(grid.axes[key] for key in keys)):
        point = dict(zip(keys, values))
        settings = {key: value for key, value in point.items() if key != "arch"}  # an arch axis is no hyperparameter
        for seed in grid.seeds:
            spec = resolve_run(params, grid.dataset, grid.method, seed, profile, arch=point.get("arch", grid.arch),
                               overrides={**grid.fixed, **settings}, label=point_label(grid.method, point),
                               root=GRIDS_RUNS / name)
            points.append((point, spec))
    return points


def is_done(spec: RunSpec, source: RunSpec | None = None) -> bool:
    """True when the point's results exist and were trained under its current settings; for a
    conversion, also from its source as the source is now specified (a retrained source, e.g. after
    its hyperparameters changed, makes every conversion of it stale)."""
    if not all((spec.run_dir / name).exists() for name in ("energy.json", "eval.json")):
        return False
    summary = trained_summary(spec)
    if summary is None:
        return False
    return source is None or summary["history"][0].get("source_fingerprint") == source.fingerprint()


def run_point(params: Params, spec: RunSpec, source: RunSpec | None, progress: bool) -> None:
    """Trains (or converts `source`'s network, training and evaluating the source first where it is
    missing or stale), evaluates and costs one point."""
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
    points = grid_points(params, name, profile)
    grid = params.grids[name]
    check_probes(grid.method, grid.probes)
    if not (DATASETS_DIR / grid.dataset / "prepared.pt").exists():
        prepare(grid.dataset, DATASETS_DIR, **points[0][1].dataset_params.model_dump(exclude={"methods"}))
    for index, (point, spec) in enumerate(points, start=1):
        source = source_of(params, spec)
        done = is_done(spec, source)
        if done:
            print(f"grid {name}: point {index}/{len(points)} {spec.label} seed {spec.seed}: done before", flush=True)
        else:
            print(f"grid {name}: point {index}/{len(points)} {spec.label} seed {spec.seed}", flush=True)
            run_point(params, spec, source, progress)
        if grid.probes and not (done and probes_current(spec, grid.probes)):
            write_probes(spec, source, grid.probes)
    records = collect_records(GRIDS_RUNS / name, params.run.baseline)
    paths = write_grid_report(name, list(grid.axes), records, GRIDS_REPORTS / name)
    if grid.probes:
        documents = [(point, read_json(spec.run_dir / PROBES_FILE)) for point, spec in points]
        paths += write_probe_report(name, list(grid.axes), documents, GRIDS_REPORTS / name)
    return paths


def grid_table(axes: list[str], records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per point, by axis values: the axis values, then the key metrics' means over seeds
    (validation and test accuracy %, the test accuracy's std, decision step, spikes/sample, tier-1 nJ),
    the seeds, and the mark of the point chosen on validation (`chosen_point`)."""
    points = aggregate_points(axes, records)
    chosen = chosen_point(points)
    rows = []
    for index, point in enumerate(points):
        row = dict(zip(axes, point["point"]))
        for column, (metric, part) in TABLE_METRICS.items():
            value = stat(point[metric])[part]
            row[column] = value / 1e3 if metric == "tier1_pj" else value
        row["seeds"] = len(point["seeds"])
        row["choice"] = CHOSEN if index == chosen else ""
        rows.append(row)
    return pd.DataFrame(rows, columns=[*axes, *TABLE_METRICS, "seeds", "choice"])


def write_grid_report(name: str, axes: list[str], records: list[dict[str, Any]], out: Path) -> list[Path]:
    points = aggregate_points(axes, records)
    table = grid_table(axes, records)
    paths = [out / "table.md", out / "table.csv", out / "records.json", out / "accuracy.png"]
    text = (f"# Grid `{name}`\n\nAccuracy in %, mean over seeds. Settings are chosen on the validation split "
            f"(`val_accuracy`): `{CHOSEN}` marks the point a default may take; the test accuracy is read once per "
            "point, never to choose.\n\n" + markdown_table(table, grid_cell) + "\n")
    if len(axes) > 1:
        effects = pd.DataFrame(main_effects(axes, points), columns=["axis", "value", "mean_val_accuracy", "vs_best",
                                                                    "points"])
        text += ("\n## Main effects\n\nMean validation accuracy (%) at each value of an axis, over every combination "
                 "of the other axes; `vs_best` is the gap to that axis's best value.\n\n"
                 + markdown_table(effects, grid_cell) + "\n")
    atomic_write_text(paths[0], text)
    atomic_write_text(paths[1], table.to_csv(index=False))
    write_json(paths[2], {"schema": SCHEMA, "grid": name, "records": records})
    atomic_write_bytes(paths[3], plot_grid(name, axes, points))
    return paths
