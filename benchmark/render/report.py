"""The report stage: runs/ become reports/, written atomically.

    reports/leaderboard.json                      {"schema", "records", "references", "summary"}: the
                                                  records, the paper references and their aggregate
                                                  (benchmark.results.aggregate.summary)
    reports/<dataset>-<profile>/leaderboard.md    one row per (method, variant, T): seeds collapse
    reports/<dataset>-<profile>/leaderboard.csv   into mean ± sample std (ddof = 1) with n seeds;
                                                  the md adds the robustness table and flags the
                                                  pairs whose energy order flips between tiers
    reports/<dataset>-<profile>/leaderboard.json  that dataset and profile's records
    reports/<dataset>-<profile>/robustness.csv    the robustness table (once robust.json exists)
    reports/<dataset>-<profile>/*.png             the board's plots (benchmark.render.plots)
    reports/methods/<method>-T.png                accuracy vs T of a method's sweeps
    reports/metrics.json                          per dataset-profile and row: accuracy, decision
                                                  step, both energies, corruption accuracy
                                                  (`dvc metrics show`, `dvc exp show`)
    reports/plots/accuracy_vs_energy.csv          the plotted points, fixed column names, and the
    reports/plots/accuracy_vs_T.csv               T sweeps, grids included (`dvc plots show`)
    reports/<dataset>-<profile>/comparisons.csv   every paired test of the board (benchmark.results.comparisons)
    reports/timings.md                            where the reproduction's time went (runs/timings.jsonl)
    reports/claims.md                             every claim of the seed papers with its verdict
    reports/resolution/<name>/                    each resolution sweep's results.json (from runs/resolution/),
                                                  its table.md and resolution.png
    reports/severity/<name>/                      read only: the severity sweeps' results.json
                                                  (`spikecode severity NAME` writes them) feed the claims

Published figures enter only as labelled reference rows, after the measured rows and never
aggregated with them. The static site (benchmark.render.site) is built from leaderboard.json and
copies these plots.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

from benchmark.contract.io import atomic_write_bytes, atomic_write_text, write_json
from benchmark.render.claims import claims_markdown
from benchmark.render.plots import board_plots, plot_accuracy_vs_T
from benchmark.render.resolution import write_resolution_reports
from benchmark.render.tables import (board_markdown, comparisons_table, leaderboard_table, robustness_table, stat,
                                     timings_markdown)
from benchmark.results.aggregate import missing
from benchmark.results.claims_report import sweep_evidence
from benchmark.results.records import (SCHEMA, ReportError, checked_reference, collect_records, load_grids,
                                       unique_items)
from benchmark.results.summary import summary
from benchmark.results.timings import timing_summary
from benchmark.run.paths import TIMINGS_FILE
from benchmark.run.timings import load_timings

PLOT_COLUMNS = ["dataset", "profile", "method", "variant", "T", "label", "seeds", "accuracy", "accuracy_std",
                "decision_step", "energy_tier1_nj", "energy_tier2_nj", "corruption_accuracy"]
SWEEP_COLUMNS = ["series", "dataset", "profile", "method", "source", "T", "accuracy", "accuracy_std", "seeds"]


def board_folder(reports_dir: Path, board: dict) -> Path:
    return Path(reports_dir) / f"{board['dataset']}-{board['profile']}"


def method_plot(reports_dir: Path, method: str) -> Path:
    return Path(reports_dir) / "methods" / f"{method}-T.png"


def build_report(runs_dir: Path, reports_dir: Path, baseline: str, references: Iterable[dict] = (),
                 grids_dir: Path | None = None, budget_exceptions: dict[str, dict[str, str]] | None = None, *,
                 claims: Iterable[dict] = (), profile: str | None = None) -> list[Path]:
    """Collect every run under `runs_dir` and write the reports under `reports_dir` (`write_leaderboard`)."""
    records = collect_records(runs_dir, baseline)
    write_resolution_reports(Path(runs_dir) / "resolution", Path(reports_dir) / "resolution")
    timings = load_timings(Path(runs_dir) / TIMINGS_FILE.name)
    if timings:
        atomic_write_text(Path(reports_dir) / "timings.md", timings_markdown(timing_summary(timings)))
    if not records:
        raise ReportError(
            f"no results to report: {runs_dir} holds no <dataset>/<method>/<seed>/eval.json; "
            "run `dvc repro`, or `spikecode train`, `spikecode evaluate` and `spikecode energy` first"
        )
    return write_leaderboard(records, reports_dir, baseline, references, grids_dir, budget_exceptions,
                             claims=claims, profile=profile)


def write_leaderboard(records: list[dict], reports_dir: Path, baseline: str, references: Iterable[dict] = (),
                      grids_dir: Path | None = None,
                      budget_exceptions: dict[str, dict[str, str]] | None = None, *,
                      claims: Iterable[dict] = (), profile: str | None = None) -> list[Path]:
    """Write every file of the module docstring from `records`; return the paths.

    `references` are published figures, {"dataset", "method", "accuracy" in [0, 1], "source",
    optional "T" and "variant"}; only those for datasets present in `records` are shown, each once.
    `grids_dir` (reports/grids) adds the grids' points to the sweeps, curves and method summaries.
    `baseline`: the method every other is held against (params.yaml `run.baseline`);
    `budget_exceptions`: {profile: {method: reason}} (params.yaml `profiles.<p>.budget_exceptions`);
    `claims`: params.yaml's claims, tested over the records, the grids, reports/resolution/*/results.json,
    reports/severity/*/results.json and reports/perf.json (benchmark.results.claims), selections defaulting to `profile`.
    """
    reports_dir = Path(reports_dir)
    datasets = {record["dataset"] for record in records}
    references = unique_items([ref for ref in map(checked_reference, references) if ref["dataset"] in datasets])
    evidence = {**sweep_evidence(reports_dir), "profile": profile}
    document = summary(records, references, load_grids(grids_dir), baseline, budget_exceptions, list(claims), evidence)
    path = reports_dir / "leaderboard.json"
    write_json(path, {"schema": SCHEMA, "records": records, "references": references, "summary": document})
    written = [path]
    for board in document["boards"]:
        subset = [r for r in records if (r["dataset"], r["profile"]) == (board["dataset"], board["profile"])]
        written += _write_board(board_folder(reports_dir, board), board, subset)
    (reports_dir / "methods").mkdir(parents=True, exist_ok=True)  # a DVC output, so it exists when empty too
    for method, entry in document["methods"].items():
        if entry["sweeps"]:
            written.append(method_plot(reports_dir, method))
            atomic_write_bytes(written[-1], plot_accuracy_vs_T(entry["sweeps"], f"{method}: accuracy vs T"))
    written.append(reports_dir / "claims.md")
    atomic_write_text(written[-1], claims_markdown(document["claims"]))
    return written + _write_dvc_files(reports_dir, document)


def _write_board(folder: Path, board: dict, records: list[dict]) -> list[Path]:
    board_json, board_csv, board_md = (folder / f"leaderboard.{suffix}" for suffix in ("json", "csv", "md"))
    write_json(board_json, {"schema": SCHEMA, "records": records, "references": board["references"]})
    atomic_write_text(board_csv, leaderboard_table(board).to_csv(index=False))
    atomic_write_text(board_md, board_markdown(board))
    atomic_write_text(folder / "comparisons.csv", comparisons_table(board).to_csv(index=False))
    written = [board_json, board_csv, board_md, folder / "comparisons.csv"]
    if board["robustness"]["rows"]:
        written.append(folder / "robustness.csv")
        atomic_write_text(written[-1], robustness_table(board).to_csv(index=False))
    for name, png in board_plots(board).items():
        written.append(folder / name)
        atomic_write_bytes(written[-1], png)
    return written


def _write_dvc_files(reports_dir: Path, document: dict) -> list[Path]:
    """reports/metrics.json {"<dataset>-<profile>": {row label: metrics}} and the plot data of
    reports/plots/ with fixed column names (the markdown tables' names carry units that change)."""
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    points = []
    for board in document["boards"]:
        for row in board["rows"]:
            accuracy, tier1, tier2 = stat(row["accuracy"]), stat(row["tier1_pj"]), stat(row["tier2_pj"])
            corruption = stat(row["corruption_accuracy"])
            values = {"accuracy": accuracy[0] / 100, "decision_step": stat(row["decision_step"])[0],
                      "energy_tier1_pj": tier1[0], "energy_tier2_pj": tier2[0],
                      "corruption_accuracy": corruption[0] / 100,
                      "relative_corruption_error": stat(row["relative_error"])[0], "seeds": len(row["seeds"])}
            metrics.setdefault(f"{board['dataset']}-{board['profile']}", {})[row["label"]] = {
                key: value for key, value in values.items() if not missing(value)}
            points.append({"dataset": board["dataset"], "profile": board["profile"], "method": row["method"],
                           "variant": row["variant"], "T": row["T"], "label": row["label"], "seeds": len(row["seeds"]),
                           "accuracy": accuracy[0], "accuracy_std": accuracy[1],
                           "decision_step": stat(row["decision_step"])[0], "energy_tier1_nj": tier1[0] / 1e3,
                           "energy_tier2_nj": tier2[0] / 1e3, "corruption_accuracy": corruption[0]})
    sweep_points = [{"series": sweep["series"], "dataset": sweep["dataset"], "profile": sweep["profile"],
                     "method": sweep["method"], "source": sweep["source"], "T": T, "accuracy": mean,
                     "accuracy_std": std, "seeds": n}
                    for sweep in document["sweeps"] for T, mean, std, n in sweep["points"]]
    paths = [reports_dir / "metrics.json", reports_dir / "plots" / "accuracy_vs_energy.csv",
             reports_dir / "plots" / "accuracy_vs_T.csv"]
    write_json(paths[0], metrics)
    atomic_write_text(paths[1], pd.DataFrame(points, columns=PLOT_COLUMNS).to_csv(index=False))
    atomic_write_text(paths[2], pd.DataFrame(sweep_points, columns=SWEEP_COLUMNS).to_csv(index=False))
    return paths
