"""The temporal-resolution sweeps' pages: runs/resolution/<name>/results.json (written by the resolution
stage, benchmark.sweeps.resolution) copied to reports/resolution/<name>/ and drawn there as table.md and
resolution.png.

Sweeps of one dataset that differ in their `seed` are one experiment over seeds (one sweep per seed, so
that every Δt/k is retrained per seed): reports/resolution/<dataset>-seeds.md and .png give, per method
and its overrides, the mean ± standard deviation over those seeds of the accuracy and spikes per sample of
the models trained and run at each Δt/k (their "retrained" entries). They are drawn from the committed
reports/resolution/*/results.json, so sweeps run outside `dvc repro` are in them on a fresh clone."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from benchmark.contract.io import atomic_write_bytes, atomic_write_text, read_json, write_json
from benchmark.render.plots import plot_resolution, plot_resolution_over_seeds


def write_resolution_reports(runs_dir: Path, reports_dir: Path) -> list[Path]:
    """For every `runs_dir`/<name>/results.json: `reports_dir`/<name>/{results.json, table.md,
    resolution.png}; the paths written."""
    written = []
    for results in sorted(Path(runs_dir).glob("*/results.json")):
        record, folder = read_json(results), Path(reports_dir) / results.parent.name
        written += [folder / "results.json", folder / "table.md", folder / "resolution.png"]
        write_json(written[-3], record)
        atomic_write_text(written[-2], markdown_table(record))
        atomic_write_bytes(written[-1], plot_resolution(record))
    return written + write_seed_reports(reports_dir)


def write_seed_reports(reports_dir: Path) -> list[Path]:
    """`reports_dir`/<dataset>-seeds.{md,png} for every dataset whose sweeps there give some method
    several seeds (module docstring); the paths written."""
    written = []
    for dataset, rows in over_seeds(reports_dir).items():
        if any(len(row["seeds"]) > 1 for row in rows):
            written += [Path(reports_dir) / f"{dataset}-seeds.md", Path(reports_dir) / f"{dataset}-seeds.png"]
            atomic_write_text(written[-2], seeds_markdown(dataset, rows))
            atomic_write_bytes(written[-1], plot_resolution_over_seeds(dataset, rows))
    return written


def over_seeds(reports_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """{dataset: rows}: a row per method and its overrides over the sweeps that retrained it, with
    "seeds", "sweeps", "factors" and, per factor k, the seeds' "accuracy" and "spikes" at Δt/k."""
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(Path(reports_dir).glob("*/results.json")):
        record = read_json(path)
        sweep = record["sweep"]
        for method, entry in record["methods"].items():
            if "retrained" not in entry:  # written before sweeps kept them
                continue
            overrides = sweep["overrides"].get(method, {})
            label = method + (f" ({', '.join(f'{k} {v}' for k, v in overrides.items())})" if overrides else "")
            key = json.dumps([method, overrides, sweep["factors"], sweep["epochs"], sweep["test_samples"]])
            row = rows.setdefault(sweep["dataset"], {}).setdefault(key, {
                "label": label, "factors": sweep["factors"], "epochs": sweep["epochs"], "seeds": [], "sweeps": [],
                "accuracy": {k: [] for k in sweep["factors"]}, "spikes": {k: [] for k in sweep["factors"]},
                "made_on": set()})
            row["made_on"].update(made_on(entry))
            row["seeds"].append(sweep["seed"])
            row["sweeps"].append(path.parent.name)
            for k in sweep["factors"]:
                row["accuracy"][k].append(100 * entry["retrained"][str(k)]["accuracy"])
                row["spikes"][k].append(entry["retrained"][str(k)]["spikes_per_sample"])
    return {dataset: list(found.values()) for dataset, found in rows.items()}


def made_on(entry: dict[str, Any]) -> set[tuple[str, str]]:
    """Where a method's models of a sweep were trained: {(device and torch, commit)}, from each model's
    provenance (empty for sweeps written before they kept it)."""
    found = [run.get("provenance") for run in entry.get("retrained", {}).values()]
    found += list(entry.get("at_dt_provenance", {}).values())
    return {(f"{p['device']}, torch {p['versions']['torch']}",
             p["git_commit"][:10] + (" with uncommitted changes" if p["git_dirty"] else "")) for p in found if p}


def _made_on_line(places: set[tuple[str, str]]) -> list[str]:
    machines = sorted({machine for machine, _ in places})
    return ["", "Models trained on " + "; ".join(
        f"{machine} (commits {', '.join(sorted(commit for where, commit in places if where == machine))})"
        for machine in machines) + "."] if places else []


def _mean_std(values: list[float], digits: int) -> str:
    spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.{digits}f}{spread}"


def seeds_markdown(dataset: str, rows: list[dict[str, Any]]) -> str:
    """The rows of `over_seeds` as a table: accuracy (%) and spikes per sample at every Δt/k."""
    factors = sorted({k for row in rows for k in row["factors"]})
    header = [f"Temporal resolution on {dataset} over seeds: each method trained and run at Δt/k (T·k bins of the "
              "same events), mean ± standard deviation over the seeds (one resolution sweep per seed); test "
              "accuracy (%) and spikes per sample.", "",
              "| method | epochs | seeds | " + " | ".join(f"accuracy at Δt/{k}" for k in factors) + " | "
              + " | ".join(f"spikes at Δt/{k}" for k in factors) + " | sweeps |",
              "|---|---|---|" + "---|" * (2 * len(factors) + 1)]
    lines = []
    for row in rows:
        accuracy = [_mean_std(row["accuracy"][k], 2) if k in row["accuracy"] else "—" for k in factors]
        spikes = [_mean_std(row["spikes"][k], 0) if k in row["spikes"] else "—" for k in factors]
        lines.append(f"| {row['label']} | {row['epochs']} | {', '.join(map(str, row['seeds']))} | "
                     + " | ".join(accuracy + spikes) + f" | {', '.join(row['sweeps'])} |")
    places = set().union(*(row["made_on"] for row in rows))
    return "\n".join(header + lines + _made_on_line(places)) + "\n"


def markdown_table(record: dict[str, Any]) -> str:
    """A(j → k) of every method and factor pair, then each method's shifts against the tolerance."""
    sweep, framing = record["sweep"], record["framing"]
    factors = sweep["factors"]
    header = [f"Temporal resolution on {sweep['dataset']}: frames of T = {framing['T']}·k bins (Δt/k), "
              f"{sweep['train_samples']} training / {sweep['test_samples']} test samples, {sweep['epochs']} epochs; "
              f"test accuracy (%).", "",
              "| method | trained at | " + " | ".join(f"run at Δt/{k}" for k in factors) + " |",
              "|---|---|" + "---|" * len(factors)]
    rows, verdicts = [], []
    for method, entry in record["methods"].items():
        for trained in factors:
            cells = [f"{100 * entry['accuracy'][str(trained)][str(k)]:.2f}" for k in factors]
            rows.append(f"| {method} | Δt/{trained} | " + " | ".join(cells) + " |")
        seeds = entry["seed_accuracy_at_dt"]
        noise = (f"; trained at Δt with seeds {', '.join(seeds)}: {', '.join(f'{100 * a:.2f}' for a in seeds.values())} "
                 f"(range {entry['seed_range_pp']:.2f} pp)" if len(seeds) > 1 else "")
        verdicts.append(f"- {method}: trained at Δt, run at Δt/k: largest shift {entry['evaluated_shift_pp']:.2f} pp; "
                        f"retrained at Δt/k: {entry['retrained_shift_pp']:.2f} pp — "
                        f"{'within' if entry['invariant'] else 'outside'} {sweep['tolerance_pp']:g} pp{noise}")
        if "at_dt" in entry and len(entry["at_dt"]) > 1:
            means = {k: sum(runs[str(k)]["accuracy"] for runs in entry["at_dt"].values()) / len(entry["at_dt"])
                     for k in factors}
            verdicts.append(f"  - trained at Δt, mean over seeds {', '.join(entry['at_dt'])}: "
                            + ", ".join(f"run at Δt/{k} {100 * mean:.2f} %" for k, mean in means.items()))
    places = set().union(*(made_on(entry) for entry in record["methods"].values()))
    return "\n".join(header + rows + [""] + verdicts + _made_on_line(places)) + "\n"
