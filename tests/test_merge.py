"""Merging leaderboards from several machines: schema check, duplicates by provenance, conflicts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmark.contract.io import write_json
from benchmark.render.report import write_leaderboard
from benchmark.results.merge import MergeError, merge_leaderboards, summary


def record(method: str, seed: int, accuracy: float = 0.9, *, machine: str = "cpu", params_hash: str = "p1",
           dataset: str = "digits", variant: str = "", T: int = 8) -> dict:
    """A result record as produced on `machine` (device and creation time differ per machine)."""
    return {
        "dataset": dataset, "profile": "smoke", "method": method, "family": "direct", "variant": variant,
        "arch": "mlp-s", "T": T, "seed": seed, "accuracy": accuracy, "val_accuracy": accuracy,
        "decision_step": {"mean": T, "p50": T, "p95": T}, "anytime": {"accuracy": [accuracy] * T},
        "spikes_per_sample": 20.0, "bits_per_sample": 20.0,
        "budget": {"epochs": 1, "optimizer_steps": 20, "train_seconds": 3.0},
        "ops": {"dense": 4000, "acs": 200.0, "macs": 100.0, "neuron_updates": 80},
        "energy": {"tier1_pj": 640.0, "tier2_pj": 900.0, "cost_model": "fp32-45nm"}, "robustness": None,
        "params": 4810, "footprint_bytes": 19240, "train_seconds": 3.0 if machine == "cpu" else 0.4,
        "throughput_samples_per_s": 9000.0, "layers": [{"name": "fc1", "spikes_per_neuron": 2.0}],
        "hyperparameters": {"T": T}, "citation": "Doe 2020",
        "provenance": {"git_commit": "abc", "git_dirty": False, "versions": {"torch": "2.14.1"}, "device": machine,
                       "numerics": {"threads": 2}, "dataset_sha256": "d1", "params_hash": params_hash,
                       "created": "2026-01-01T00:00:00+00:00" if machine == "cpu" else "2026-02-01T00:00:00+00:00"},
    }


def leaderboard(path: Path, records: list[dict], references: list[dict] = (), schema: int = 2) -> Path:
    write_json(path, {"schema": schema, "records": records, "references": list(references)})
    return path


REFERENCE = {"dataset": "digits", "method": "ttfs", "accuracy": 0.929, "source": "Che et al.", "variant": "", "T": 8}


def test_two_machines_merge_into_one_leaderboard(tmp_path):
    cpu = leaderboard(tmp_path / "cpu" / "leaderboard.json", [record("ann", 0), record("rate", 0)], [REFERENCE])
    gpu = leaderboard(tmp_path / "gpu" / "leaderboard.json", [record("rate", 1, 0.92, machine="cuda"),
                                                              record("ttfs", 0, 0.85, machine="cuda")], [REFERENCE])
    merged = merge_leaderboards([cpu, gpu.parent])  # a file, and a reports/ folder holding one
    assert [(r["method"], r["seed"]) for r in merged["records"]] == [("ann", 0), ("rate", 0), ("rate", 1), ("ttfs", 0)]
    assert merged["schema"] == 2 and merged["references"] == [REFERENCE]
    assert merged["duplicates"] == [] and merged["conflicts"] == []
    assert [source["records"] for source in merged["sources"]] == [2, 2]

    written = write_leaderboard(merged["records"], tmp_path / "reports", "ann", merged["references"])
    board = json.loads((tmp_path / "reports" / "leaderboard.json").read_text())
    assert len(board["records"]) == 4 and tmp_path / "reports" / "digits-smoke" / "leaderboard.md" in written
    rate_row = next(line for line in (tmp_path / "reports" / "digits-smoke" / "leaderboard.md").read_text().splitlines()
                    if line.startswith("| rate |"))
    assert "| 91.00 ± 1.41 | [78.29, 100.00] | 2 |" in rate_row  # seeds 0 (cpu) and 1 (gpu): 90 and 92 %; t_{0.975,1}·1.41/√2 = 12.71


def test_an_incompatible_schema_is_a_clear_error_naming_the_file_and_versions(tmp_path):
    good = leaderboard(tmp_path / "a.json", [record("ann", 0)])
    old = leaderboard(tmp_path / "b.json", [record("rate", 0)], schema=1)
    with pytest.raises(MergeError) as raised:
        merge_leaderboards([good, old])
    message = str(raised.value)
    assert str(old) in message and "schema 1" in message and "schema 2 only" in message
    assert "spikecode report" in message


def test_a_file_that_is_no_leaderboard_is_refused(tmp_path):
    (tmp_path / "x.json").write_text('{"records": []}')
    with pytest.raises(MergeError, match=r"x\.json is not a leaderboard: it has no `schema` key"):
        merge_leaderboards([tmp_path / "x.json"])
    with pytest.raises(MergeError, match="neither a leaderboard.json nor run folders"):
        merge_leaderboards([tmp_path])
    broken = record("ann", 0)
    del broken["energy"]
    with pytest.raises(MergeError, match=r"record 0 lacks \['energy'\]"):
        merge_leaderboards([leaderboard(tmp_path / "y.json", [broken])])


def test_a_record_without_complete_provenance_is_refused(tmp_path):
    untraced = record("rate", 0)
    del untraced["provenance"]["dataset_sha256"]
    with pytest.raises(MergeError, match=r"record 0 \(digits/smoke/rate/T=8/seed 0\) has no \['dataset_sha256'\]"):
        merge_leaderboards([leaderboard(tmp_path / "z.json", [untraced])])


def test_a_duplicate_run_is_kept_once_and_reported_once(tmp_path):
    # the same run (same seed, settings and data) on three machines with the same results; timing,
    # device and creation time differ and do not count
    run = record("rate", 0)
    paths = [leaderboard(tmp_path / "cpu.json", [run, record("ann", 0)]),
             leaderboard(tmp_path / "gpu.json", [record("rate", 0, machine="cuda"), record("ttfs", 0)]),
             leaderboard(tmp_path / "cpu-again.json", [copy.deepcopy(run), record("css", 0)])]
    merged = merge_leaderboards(paths)
    assert [(r["method"], r["seed"]) for r in merged["records"]] == [("ann", 0), ("css", 0), ("rate", 0), ("ttfs", 0)]
    assert merged["duplicates"] == [{"run": "digits/smoke/rate/T=8/seed 0", "found_in": [str(p) for p in paths],
                                     "kept": str(paths[0])}]
    assert merged["conflicts"] == []
    assert next(r for r in merged["records"] if r["method"] == "rate")["provenance"]["device"] == "cpu"  # the first
    assert summary(merged).count("duplicate:") == 1


def test_a_conflicting_duplicate_is_reported_with_what_differs(tmp_path):
    first = leaderboard(tmp_path / "a.json", [record("rate", 0, 0.90)])
    second = leaderboard(tmp_path / "b.json", [record("rate", 0, 0.91, machine="cuda")])
    merged = merge_leaderboards([first, second])
    assert [r["accuracy"] for r in merged["records"]] == [0.90]
    assert merged["conflicts"] == [{"run": "digits/smoke/rate/T=8/seed 0", "found_in": [str(first), str(second)],
                                    "kept": str(first), "differences": ["accuracy", "anytime", "val_accuracy"]}]
    assert "CONFLICT: digits/smoke/rate/T=8/seed 0 differs in accuracy" in summary(merged)
    with pytest.raises(MergeError, match="conflicting duplicates.*differs in accuracy"):
        merge_leaderboards([first, second], on_conflict="error")


def test_the_same_seed_under_other_settings_is_an_error_naming_both(tmp_path):
    first = leaderboard(tmp_path / "a.json", [record("rate", 0, params_hash="p1")])
    second = leaderboard(tmp_path / "b.json", [record("rate", 0, params_hash="p2")])
    with pytest.raises(MergeError) as raised:
        merge_leaderboards([first, second])
    message = str(raised.value)
    assert str(first) in message and str(second) in message and "count the seed twice" in message


def test_run_folders_merge_with_a_leaderboard(tmp_path):
    from tests.test_report import write_run

    write_run(tmp_path / "runs", method="rate", seed=3)
    merged = merge_leaderboards([leaderboard(tmp_path / "a.json", [record("ann", 0)]), tmp_path / "runs"])
    assert [(r["method"], r["seed"]) for r in merged["records"]] == [("ann", 0), ("rate", 3)]


def test_report_merge_of_the_committed_reports_tests_the_claims(tmp_path, monkeypatch, prepared_digits):
    """`spikecode report --merge reports/` on a clone without runs/ redraws what the report stage would:
    the claims are tested over the merged records (a merge used to write a claims page without claims)."""
    from benchmark.cli import main
    from tests.conftest import make_workspace
    from tests.test_site import CLAIM

    root = make_workspace(tmp_path / "ws", prepared_digits, claims=[CLAIM])
    monkeypatch.chdir(root)
    records = [record("ann", seed, 0.9) for seed in (0, 1, 2)] + [record("rate", seed, 0.88) for seed in (0, 1, 2)]
    for rate in records[3:]:
        rate["energy"] = {**rate["energy"], "tier1_pj": 64.0}  # a tenth of the ANN's 640 pJ, every seed
    leaderboard(root / "reports" / "leaderboard.json", records)

    assert main(["report", "--merge", "reports/"]) == 0
    claims = (root / "reports" / "claims.md").read_text()
    assert "| rate costs less energy than the ANN | ✅ holds |" in claims and "1 holds, 0 fails" in claims
    assert len(json.loads((root / "reports" / "leaderboard.json").read_text())["records"]) == 6
