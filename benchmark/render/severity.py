"""A Gaussian-noise severity sweep's page (benchmark.sweeps.severity): reports/severity/<name>/table.md,
the rows ranked with ties and every tested pair, and accuracy_vs_sigma.png, accuracy against σ with
error bars (sample std over seeds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from benchmark.contract.io import atomic_write_bytes, atomic_write_text
from benchmark.render.plots import png_bytes
from benchmark.render.tables import format_stat, grid_cell, markdown_table, rank_cell, row_name


def write_severity_report(folder: Path, results: dict[str, Any]) -> list[Path]:
    """table.md and accuracy_vs_sigma.png of `results` (a severity sweep's results.json) in `folder`."""
    written = [Path(folder) / "table.md", Path(folder) / "accuracy_vs_sigma.png"]
    atomic_write_text(written[0], severity_markdown(results))
    atomic_write_bytes(written[1], plot_severity_sweep(results))
    return written


def severity_markdown(results: dict[str, Any]) -> str:
    sweep, rows = results["sweep"], sorted(results["rows"], key=lambda row: (row["rank"], -(row["mean"][0] or 0)))
    samples = {record["samples"]["robust_n"] for record in results["records"]}
    sigmas = sweep["sigmas"]
    levels = [f"σ = {sigma:g} (%)" for sigma in sigmas]
    table = pd.DataFrame([[rank_cell(row["rank"]), row["label"], row["T"], len(row["seeds"]),
                           format_stat(row["clean"]), *map(format_stat, row["accuracy"]), format_stat(row["mean"])]
                          for row in rows], columns=["rank", "method", "T", "seeds", "clean (%)", *levels, "mean over σ (%)"])
    pairs = pd.DataFrame([[pair["a"], pair["b"], len(pair["seeds"]), pair["difference"], pair["ci_low"], pair["ci_high"],
                           pair.get("p_holm"), "yes" if pair["different"] else "no"] for pair in results["pairs"]],
                         columns=["a", "b", "seeds", "difference (pp)", "ci_low (pp)", "ci_high (pp)", "p (Holm)",
                                  "different"])
    lines = [f"# Gaussian-noise severity sweep {results['name']}: {sweep['dataset']}", "",
             sweep["description"], "",
             f"Every board run under clip(x + σ·z, 0, 1) on {', '.join(map(str, sorted(samples)))} test images, the "
             "same draw z per sample for every run and σ (benchmark/sweeps/severity.py). Accuracy: mean ± sample "
             "std over seeds. Rank: 1 + the rows significantly better in the mean over σ (paired bootstrap over "
             "seeds and samples, Holm-corrected over all pairs, α = 0.05); rows sharing a rank are not told apart "
             "by the evidence; ★ marks the top group.", "",
             markdown_table(table), "", "## Every pair: difference of the mean accuracy over σ", "",
             markdown_table(pairs, grid_cell)]
    return "\n".join(lines) + "\n"


def plot_severity_sweep(results: dict[str, Any]) -> bytes:
    """Accuracy against σ (σ = 0: clean), one line per row, error bars the sample std over seeds."""
    sigmas = [0.0, *results["sweep"]["sigmas"]]
    figure = Figure(figsize=(7, 4.5), layout="tight")
    axis = figure.add_subplot()
    for row in sorted(results["rows"], key=lambda row: row["label"]):
        levels = [row["clean"], *row["accuracy"]]
        axis.errorbar(sigmas, [level[0] for level in levels], yerr=[level[1] or 0.0 for level in levels],
                      marker="o", ms=3, capsize=3, label=row_name(row))
    axis.set_xlabel("σ of the Gaussian pixel noise (images in [0, 1])")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(f"Accuracy under Gaussian noise, {results['sweep']['dataset']}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return png_bytes(figure)
