"""The claims tested over what a report folder holds (`spikecode claims`): the records of
reports/leaderboard.json, the grids of reports/grids, the resolution sweeps of reports/resolution, the
severity sweeps of reports/severity and reports/perf.json, named by the same record ids as the report's
(benchmark.results.summary)."""

from __future__ import annotations

from pathlib import Path

from benchmark.contract.io import read_json
from benchmark.results.claims import evaluate_claims
from benchmark.results.records import ReportError, load_grids
from benchmark.results.summary import record_ids


def reported_claims(reports_dir: Path, claims: list[dict], baseline: str, profile: str) -> list[dict]:
    reports_dir = Path(reports_dir)
    board = reports_dir / "leaderboard.json"
    if not board.exists():
        raise ReportError(f"{board} does not exist: run `dvc repro` (or `spikecode report`) first")
    records = read_json(board)["records"]
    grids = load_grids(reports_dir / "grids")
    leaderboard_ids, grid_ids = record_ids(records, grids)
    ids = {id(record): rid for record, rid in zip(records, leaderboard_ids)}
    ids.update({id(record): rid for grid, members in grids.items() for record, rid in zip(members, grid_ids[grid])})
    sources = {"records": records, "grids": grids, "baseline": baseline, "profile": profile,
               **sweep_evidence(reports_dir)}
    return evaluate_claims(claims, sources, ids)


def sweep_evidence(reports_dir: Path) -> dict:
    """What the claims read beside the records and grids of a report folder: "resolution" and
    "severity" ({sweep name: its results.json}) and "perf" (reports/perf.json, None when absent)."""
    reports_dir = Path(reports_dir)
    perf = reports_dir / "perf.json"
    return {kind: {path.parent.name: read_json(path) for path in sorted((reports_dir / kind).glob("*/results.json"))}
            for kind in ("resolution", "severity")} | {"perf": read_json(perf) if perf.exists() else None}
