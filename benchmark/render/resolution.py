"""The temporal-resolution sweeps' pages: runs/resolution/<name>/results.json (written by the resolution
stage, benchmark.sweeps.resolution) copied to reports/resolution/<name>/ and drawn there as table.md and
resolution.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.contract.io import atomic_write_bytes, atomic_write_text, read_json, write_json
from benchmark.render.plots import plot_resolution


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
    return written


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
    return "\n".join(header + rows + [""] + verdicts) + "\n"
