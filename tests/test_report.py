"""The report: run directories become result records, records become the leaderboard files."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pandas as pd
import pytest

from benchmark.contract.io import write_json
from benchmark.render.report import build_report, write_leaderboard
from benchmark.render.tables import leaderboard_table, robustness_table, row_name
from benchmark.results.aggregate import portable_cell
from benchmark.results.records import ReportError, collect_records
from benchmark.results.series import grid_axes, grid_points, t_sweeps
from benchmark.results.summary import pareto_front, record_ids, robustness_rows, summary

DESIGN_KEYS = {
    "dataset", "profile", "method", "variant", "arch", "T", "seed", "accuracy", "decision_step",
    "spikes_per_sample", "ops", "energy", "robustness", "params", "footprint_bytes", "train_seconds",
    "throughput_samples_per_s", "layers", "provenance", "family", "hyperparameters", "citation",
}
ADDED_KEYS = {"converted_from", "val_accuracy", "anytime", "bits_per_sample", "budget", "samples", "deployment"}  # DESIGN.md: "keys may
# be added": a conversion's source {method, arch, accuracy}, the validation accuracy, the anytime curve, bits on
# the wire, the training budget, the per-sample results, the export stage's summary
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OPS = {"dense": 2000, "neuron_updates": 80, "update_acs": 80, "update_macs": 0}
REFERENCE = {"dataset": "digits", "method": "ttfs", "accuracy": 0.99, "T": 8, "source": "Che et al., arXiv 2410.23619"}


def write_run(runs_dir: Path, *, dataset="digits", profile="smoke", method="rate", variant="", T=8, seed=0,
              accuracy=0.9, decision_mean=5.0, spikes=100.0, acs=1000.0, macs=50.0, tier1_pj=2500.0,
              cost_model="45nm-fp32", params=1234, train_seconds=3.0, robust=None, skip=(), tier2_pj=None) -> Path:
    """Write the json files of one run as the pipeline's stages would; `skip` names files to leave out."""
    run_dir = runs_dir / dataset / (f"{method}@{variant}" if variant else method) / str(seed)
    layer = {"name": "fc1", "type": "Linear", "event_kind_in": "binary", "dense": 2000, "acs": acs, "macs": macs,
             "spikes": spikes, "spikes_per_neuron": spikes / 10, "neurons": 10, "neuron_updates": 80}
    files = {
        "eval.json": {
            "schema": 2, "dataset": dataset, "profile": profile, "method": method, "family": "direct",
            "variant": variant, "arch": "mlp-64", "T": T, "seed": seed, "accuracy": accuracy,
            "val_accuracy": accuracy - 0.01, "anytime": {"accuracy": [accuracy * (t + 1) / T for t in range(T)]},
            "decision_step": {"mean": decision_mean, "p50": 5, "p95": 8}, "params": params,
            "footprint_bytes": 4 * params, "throughput_samples_per_s": 5000.0,
            "hyperparameters": {"beta": 0.9}, "citation": "Doe 2020",
            "provenance": {"git_commit": "abc123", "git_dirty": False, "versions": {"torch": "2.14.1"},
                           "device": "cpu", "dataset_sha256": "f00d", "params_hash": "beef",
                           "created": "2026-01-01T00:00:00+00:00"},
        },
        "train.json": {"train_seconds": train_seconds, "epochs": 1,
                       "budget": {"epochs": 1, "optimizer_steps": 20, "train_seconds": train_seconds}, "history": [
            {"epoch": 0, "loss": 0.5, "train_accuracy": 0.8, "val_accuracy": 0.85, "seconds": 3.0}]},
        "ops.json": {"spikes_per_sample": spikes, "bits_per_sample": spikes, "per_step": {"spikes": [spikes / T] * T},
                     "layers": [layer], "ops": {**OPS, "acs": acs, "macs": macs, "acs_every_step": acs,
                                                "macs_every_step": macs}},
        "energy.json": {"tier1_pj": tier1_pj, "tier2_pj": tier2_pj, "cost_model": cost_model},
    }
    if robust is not None:
        files["robust.json"] = robust
    for name, document in files.items():
        if name not in skip:
            write_json(run_dir / name, document)
    return run_dir


def board(records: list[dict], references: list[dict] = ()) -> dict:
    """The summary of the one board of `records` (baseline: ann)."""
    [only] = summary(records, list(references), {}, "ann")["boards"]
    return only


def markdown_rows(path: Path, every_table: bool = False) -> list[list[str]]:
    """The cells of each row of the first markdown table in `path` (or of every table), header
    included, rule excluded."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    end = len(lines) if every_table else next((i for i in range(start, len(lines)) if not lines[i].startswith("| ")),
                                              len(lines))
    rows = [line.strip("| ").split(" | ") for line in lines[start:end] if line.startswith("| ")]
    return [row for row in rows if set(row) != {"---"}]


# --- records -----------------------------------------------------------------------------------


def robust_json(corruptions: dict, steps: float = 8.0) -> dict:
    """robust.json as the robustness stage writes it; `corruptions` maps a name to (family,
    accuracy at severities 1..5); every mean decision step is `steps`."""
    per_corruption = {name: {"family": family, "source": "generated", "severities": [1, 2, 3, 4, 5],
                             "accuracy": list(accuracy), "decision_step_mean": [steps] * 5}
                      for name, (family, accuracy) in corruptions.items()}
    mean = statistics.mean(statistics.mean(entry["accuracy"]) for entry in per_corruption.values())
    return {"per_corruption": per_corruption, "mean_accuracy": mean, "seed": 0}


def test_record_has_exactly_the_design_and_added_keys_and_carries_values_through(tmp_path):
    robust = robust_json({"gaussian_noise": ("noise", [0.8, 0.7, 0.6, 0.5, 0.4])})
    run_dir = write_run(tmp_path, accuracy=0.875, spikes=42.0, acs=420.0, macs=7.0, tier1_pj=400.0,
                        train_seconds=12.5, robust=robust)
    write_run(tmp_path, method="ann", robust=robust_json({"gaussian_noise": ("noise", [0.9, 0.8, 0.7, 0.6, 0.5])}))
    record = next(record for record in collect_records(tmp_path, "ann") if record["method"] == "rate")
    assert set(record) == DESIGN_KEYS | ADDED_KEYS and record["converted_from"] is None  # rate is trained
    evaluation = json.loads((run_dir / "eval.json").read_text())
    carried = ("accuracy", "decision_step", "provenance", "hyperparameters", "citation", "T", "seed", "params")
    assert {key: record[key] for key in carried} == {key: evaluation[key] for key in carried}
    assert record["spikes_per_sample"] == 42.0
    assert record["ops"] == {**OPS, "acs": 420.0, "macs": 7.0, "acs_every_step": 420.0, "macs_every_step": 7.0}
    assert record["energy"] == {"tier1_pj": 400.0, "tier2_pj": None, "cost_model": "45nm-fp32"}
    # relative corruption error = Σ_s error / Σ_s error of the ANN of the same dataset and seed
    #                           = (.2 + .3 + .4 + .5 + .6) / (.1 + .2 + .3 + .4 + .5) = 2.0 / 1.5
    assert record["robustness"] == {"mean_accuracy": pytest.approx(0.6), "relative_error": pytest.approx(2.0 / 1.5),
                                    "baseline": "digits/ann/0", "per_corruption": robust["per_corruption"]}
    assert record["train_seconds"] == 12.5
    assert record["layers"][0]["spikes_per_neuron"] == 4.2


def test_robustness_is_null_before_the_robustness_stage(tmp_path):
    write_run(tmp_path)
    [record] = collect_records(tmp_path, "ann")
    assert record["robustness"] is None


def test_records_sort_by_dataset_profile_method_variant_and_seed(tmp_path):
    for dataset, method, variant, T, seed in [("mnist", "rate", "", 8, 0), ("digits", "ttfs", "", 8, 1),
                                              ("digits", "rate", "T=4", 4, 0), ("digits", "ttfs", "", 8, 0),
                                              ("digits", "rate", "T=16", 16, 0), ("digits", "rate", "", 8, 0)]:
        write_run(tmp_path, dataset=dataset, method=method, variant=variant, T=T, seed=seed)
    keys = [(r["dataset"], r["method"], r["variant"], r["T"], r["seed"]) for r in collect_records(tmp_path, "ann")]
    assert keys == [("digits", "rate", "", 8, 0), ("digits", "rate", "T=16", 16, 0), ("digits", "rate", "T=4", 4, 0),
                    ("digits", "ttfs", "", 8, 0), ("digits", "ttfs", "", 8, 1), ("mnist", "rate", "", 8, 0)]


def test_run_directory_without_eval_json_is_skipped(tmp_path):
    write_run(tmp_path, method="rate")
    write_run(tmp_path, method="ttfs", skip=("eval.json",))
    assert [record["method"] for record in collect_records(tmp_path, "ann")] == ["rate"]


@pytest.mark.parametrize("missing, stage", [("train.json", "spikecode train"), ("ops.json", "spikecode evaluate"),
                                            ("energy.json", "spikecode energy")])
def test_run_missing_a_stage_file_raises_naming_the_run_the_file_and_the_stage(tmp_path, missing, stage):
    run_dir = write_run(tmp_path, dataset="digits", method="rate", variant="beta=0.5", seed=3, skip=(missing,))
    with pytest.raises(ReportError) as raised:
        collect_records(tmp_path, "ann")
    message = str(raised.value)
    assert str(run_dir) in message and missing in message
    assert f"`{stage} --dataset digits --method rate@beta=0.5 --seed 3`" in message


def test_empty_runs_dir_raises_naming_it_and_the_commands(tmp_path):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    with pytest.raises(ReportError) as raised:
        build_report(runs_dir, tmp_path / "reports", "ann")
    message = str(raised.value)
    assert str(runs_dir) in message and "dvc repro" in message and "spikecode train" in message
    assert not (tmp_path / "reports").exists()


# --- tables ------------------------------------------------------------------------------------


def test_seeds_collapse_into_one_row_with_mean_std_and_count(tmp_path):
    accuracies, energies = [0.90, 0.92, 0.97], [2000.0, 2600.0, 3500.0]
    for seed, (accuracy, tier1_pj) in enumerate(zip(accuracies, energies)):
        write_run(tmp_path / "runs", seed=seed, accuracy=accuracy, tier1_pj=tier1_pj)
    build_report(tmp_path / "runs", tmp_path / "reports", "ann")

    mean = statistics.mean(100 * a for a in accuracies)  # 93.0
    std = statistics.stdev(100 * a for a in accuracies)  # sample std: sqrt((9 + 1 + 16) / 2) = 3.6056
    energy_nj = statistics.mean(energies) / 1000  # 2.7 nJ
    header, *rows = markdown_rows(tmp_path / "reports" / "digits-smoke" / "leaderboard.md")
    assert len(rows) == 1
    row = dict(zip(header, rows[0]))
    assert row["accuracy (%)"] == f"{mean:.2f} ± {std:.2f}" == "93.00 ± 3.61"
    assert row["seeds"] == "3"
    assert row["energy tier 1 (nJ)"] == "2.70"

    [csv_row] = pd.read_csv(tmp_path / "reports" / "digits-smoke" / "leaderboard.csv").to_dict("records")
    assert csv_row["accuracy (%)"] == pytest.approx(mean)
    assert csv_row["accuracy std (%)"] == pytest.approx(std)
    assert csv_row["seeds"] == 3
    assert csv_row["energy tier 1 (nJ)"] == pytest.approx(energy_nj)


def test_single_seed_shows_no_spread(tmp_path):
    write_run(tmp_path, accuracy=0.8125)
    table = leaderboard_table(board(collect_records(tmp_path, "ann")))
    assert table.loc[0, "seeds"] == 1 and pd.isna(table.loc[0, "accuracy std (%)"])


def test_rows_sort_by_accuracy_descending(tmp_path):
    for method, accuracy in [("latency", 0.80), ("rate", 0.95), ("phase", 0.90), ("burst", 0.85)]:
        write_run(tmp_path, method=method, accuracy=accuracy)
    table = leaderboard_table(board(collect_records(tmp_path, "ann")))
    assert list(table["method"]) == ["rate", "phase", "burst", "latency"]
    assert list(table["accuracy (%)"]) == pytest.approx([95.0, 90.0, 85.0, 80.0])


def test_each_variant_of_a_sweep_is_its_own_row(tmp_path):
    write_run(tmp_path, method="rate", variant="T=4", T=4, accuracy=0.8)
    write_run(tmp_path, method="rate", T=8, accuracy=0.9)
    write_run(tmp_path, method="rate", variant="beta=0.5", T=8, accuracy=0.7)
    table = leaderboard_table(board(collect_records(tmp_path, "ann")))
    assert list(zip(table["variant"], table["T"])) == [("", 8), ("T=4", 4), ("beta=0.5", 8)]


def test_markdown_and_csv_hold_every_column_for_one_run(tmp_path):
    write_run(tmp_path / "runs", method="ttfs", variant="tau=2", T=16, accuracy=0.8765, decision_mean=3.456,
              spikes=123.45, acs=45678.0, macs=1234.0, tier1_pj=45678.0 * 0.9 + 1234.0 * 4.6, params=101770,
              train_seconds=61.25)
    build_report(tmp_path / "runs", tmp_path / "reports", "ann")
    folder = tmp_path / "reports" / "digits-smoke"

    energy_nj = (45678.0 * 0.9 + 1234.0 * 4.6) / 1000  # 41.1102 + 5.6764 = 46.7866 nJ
    header, row = markdown_rows(folder / "leaderboard.md")
    assert header == ["method", "variant", "T", "rank", "accuracy (%)", "95% CI", "seeds", "val accuracy (%)",
                      "mean decision step",
                      "steps to baseline − 1 pp", "spikes/sample", "bits/sample", "effective ACs", "effective MACs",
                      "energy tier 1 (nJ)", "energy tier 2 (nJ)", "corruption accuracy (%)",
                      "relative corruption error", "params", "epochs", "optimizer steps", "train time (s)",
                      "portable (NIR)"]
    # no baseline (ann) run on this board: no level to reach, "—"
    assert row == ["ttfs", "tau=2", "16", "1 ★", "87.65", "—", "1", "86.65", "3.46", "—", "123.5", "123", "45,678", "1,234",
                   f"{energy_nj:,.2f}", "—", "—", "—", "101,770", "1", "20", "61.2", "—"]
    assert "`45nm-fp32`" in (folder / "leaderboard.md").read_text()

    [csv_row] = pd.read_csv(folder / "leaderboard.csv", keep_default_na=False).to_dict("records")
    assert csv_row == {
        "method": "ttfs", "variant": "tau=2", "T": 16, "rank": 1, "accuracy (%)": pytest.approx(87.65),
        "accuracy std (%)": "", "accuracy 95% CI (±)": "", "seeds": 1, "val accuracy (%)": pytest.approx(86.65), "mean decision step": 3.456,
        "steps to baseline − 1 pp": "", "spikes/sample": 123.45, "bits/sample": 123.45, "effective ACs": 45678.0,
        "effective MACs": 1234.0, "energy tier 1 (nJ)": pytest.approx(energy_nj), "energy tier 2 (nJ)": "",
        "corruption accuracy (%)": "", "relative corruption error": "", "params": 101770, "epochs": 1,
        "optimizer steps": 20, "train time (s)": 61.25, "portable (NIR)": "", "source": "",
    }


def test_energy_column_switches_to_microjoules_from_one_microjoule(tmp_path):
    write_run(tmp_path, method="ann", tier1_pj=3.2e6)
    write_run(tmp_path, method="rate", tier1_pj=4.0e5)
    table = leaderboard_table(board(collect_records(tmp_path, "ann"))).set_index("method")
    assert table["energy tier 1 (µJ)"].to_dict() == pytest.approx({"ann": 3.2, "rate": 0.4})


def test_mixed_cost_models_in_one_table_raise(tmp_path):
    write_run(tmp_path / "runs", method="rate", cost_model="45nm-fp32")
    write_run(tmp_path / "runs", method="ttfs", cost_model="loihi")
    with pytest.raises(ReportError, match="45nm-fp32.*loihi"):
        build_report(tmp_path / "runs", tmp_path / "reports", "ann")


# --- paper references ----------------------------------------------------------------------------


def test_reference_rows_are_labelled_listed_after_measured_rows_and_footnoted(tmp_path):
    write_run(tmp_path / "runs", method="ttfs", accuracy=0.9)
    write_run(tmp_path / "runs", method="rate", accuracy=0.8)
    burst = {"dataset": "digits", "method": "burst", "accuracy": 0.7, "source": "Park et al. 2019"}
    build_report(tmp_path / "runs", tmp_path / "reports", "ann", [burst, REFERENCE])
    folder = tmp_path / "reports" / "digits-smoke"

    header, *rows = markdown_rows(folder / "leaderboard.md")
    cells = [dict(zip(header, row)) for row in rows]
    assert [(c["method"], c["variant"], c["T"], c["accuracy (%)"], c["seeds"]) for c in cells] == [
        ("ttfs", "default", "8", "90.00", "1"), ("rate", "default", "8", "80.00", "1"),
        ("ttfs (paper reference) [1]", "—", "8", "99.00", "—"),
        ("burst (paper reference) [2]", "—", "—", "70.00", "—")]
    text = (folder / "leaderboard.md").read_text()
    assert "- [1] Che et al., arXiv 2410.23619\n- [2] Park et al. 2019\n" in text

    csv = pd.read_csv(folder / "leaderboard.csv", keep_default_na=False)
    assert list(csv["source"]) == ["", "", "Che et al., arXiv 2410.23619", "Park et al. 2019"]
    board = json.loads((tmp_path / "reports" / "leaderboard.json").read_text())
    assert [r["method"] for r in board["records"]] == ["rate", "ttfs"]
    assert [r["accuracy"] for r in board["records"]] == [0.8, 0.9]
    assert board["references"] == [{"variant": "", "T": None, **burst}, {**REFERENCE, "variant": ""}]


def test_references_for_datasets_without_measurements_are_left_out(tmp_path):
    write_run(tmp_path / "runs")
    other = {**REFERENCE, "dataset": "cifar10"}
    build_report(tmp_path / "runs", tmp_path / "reports", "ann", [other])
    assert "paper reference" not in (tmp_path / "reports" / "digits-smoke" / "leaderboard.md").read_text()
    assert json.loads((tmp_path / "reports" / "leaderboard.json").read_text())["references"] == []


def test_reference_accuracy_given_in_percent_is_rejected(tmp_path):
    write_run(tmp_path / "runs")
    with pytest.raises(ReportError, match=r"92\.9.*\[0, 1\]"):
        build_report(tmp_path / "runs", tmp_path / "reports", "ann", [{**REFERENCE, "accuracy": 92.9}])


# --- files ---------------------------------------------------------------------------------------


def test_one_folder_per_dataset_and_profile_with_its_own_records(tmp_path):
    write_run(tmp_path / "runs", dataset="digits", profile="smoke")
    write_run(tmp_path / "runs", dataset="fashion-mnist", profile="quick", seed=0)
    write_run(tmp_path / "runs", dataset="fashion-mnist", profile="quick", seed=1)
    reports = tmp_path / "reports"
    written = build_report(tmp_path / "runs", reports, "ann")

    names = ["leaderboard.json", "leaderboard.csv", "leaderboard.md", "comparisons.csv", "accuracy_vs_energy.png",
             "accuracy_vs_decision_step.png", "accuracy_vs_step.png"]
    assert written == [reports / "leaderboard.json", *(reports / "digits-smoke" / n for n in names),
                       *(reports / "fashion-mnist-quick" / n for n in names), reports / "claims.md", reports / "metrics.json",
                       reports / "plots" / "accuracy_vs_energy.csv", reports / "plots" / "accuracy_vs_T.csv"]
    subset = json.loads((reports / "fashion-mnist-quick" / "leaderboard.json").read_text())
    assert subset["schema"] == 2
    assert [(r["dataset"], r["seed"]) for r in subset["records"]] == [("fashion-mnist", 0), ("fashion-mnist", 1)]
    assert len(json.loads((reports / "leaderboard.json").read_text())["records"]) == 3
    assert not [path for path in reports.rglob("*") if path.name.endswith(".tmp")]


def test_plots_are_png_images(tmp_path):
    for seed, accuracy in enumerate([0.9, 0.92]):
        write_run(tmp_path / "runs", method="rate", seed=seed, accuracy=accuracy)
    write_run(tmp_path / "runs", method="ttfs", variant="tau=2", tier1_pj=900.0, decision_mean=2.0)
    reports = tmp_path / "reports"
    build_report(tmp_path / "runs", reports, "ann")
    for name in ("accuracy_vs_energy.png", "accuracy_vs_decision_step.png"):
        data = (reports / "digits-smoke" / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


def test_write_json_sorts_keys_and_indents(tmp_path):
    path = tmp_path / "nested" / "out.json"
    write_json(path, {"b": 1, "a": [1]})
    assert path.read_text() == '{\n  "a": [\n    1\n  ],\n  "b": 1\n}\n'


# --- robustness, tier flips, Pareto front, DVC files ------------------------------------------------

NOISE_ANN = [0.9, 0.8, 0.7, 0.6, 0.5]  # errors .1 .2 .3 .4 .5, sum 1.5


def write_robust_runs(runs: Path) -> None:
    """ann (baseline) and rate on noise and blur, two seeds; ttfs (early exit) on one seed."""
    for seed, noise in [(0, [0.8, 0.7, 0.6, 0.5, 0.4]), (1, [0.9, 0.8, 0.7, 0.6, 0.5])]:
        write_run(runs, method="ann", T=1, seed=seed, accuracy=0.95, decision_mean=1.0,
                  robust=robust_json({"gaussian_noise": ("noise", NOISE_ANN), "gaussian_blur": ("blur", [0.9] * 5)},
                                     steps=1.0))
        write_run(runs, method="rate", seed=seed, accuracy=0.9, decision_mean=8.0,
                  robust=robust_json({"gaussian_noise": ("noise", noise), "gaussian_blur": ("blur", [0.7] * 5)}))
    write_run(runs, method="ttfs", seed=0, accuracy=0.85, decision_mean=3.0,
              robust=robust_json({"gaussian_noise": ("noise", NOISE_ANN), "gaussian_blur": ("blur", [0.8] * 5)},
                                 steps=4.5))


def test_robustness_table_holds_clean_and_corruption_accuracy_relative_error_and_family_means(tmp_path):
    write_robust_runs(tmp_path)
    table = robustness_table(board(collect_records(tmp_path, "ann"))).set_index("method")
    rate = table.loc["rate"]
    # noise means 60 % and 70 %, blur 70 %: corruption accuracy (60 + 70) / 2 = 65 % and (70 + 70) / 2 = 70 %
    assert rate["seeds"] == 2 and rate["clean accuracy (%)"] == pytest.approx(90)
    assert rate["noise (%)"] == pytest.approx(65) and rate["noise (%) std"] == pytest.approx(statistics.stdev([60, 70]))
    assert rate["blur (%)"] == pytest.approx(70)
    assert rate["corruption accuracy (%)"] == pytest.approx(67.5)
    # seed 0: noise 2.0 / 1.5, blur (5 × .3) / (5 × .1) = 3  -> mCE (4/3 + 3) / 2
    # seed 1: noise 1.5 / 1.5 = 1, blur 3                    -> mCE (1 + 3) / 2 = 2
    assert rate["relative corruption error"] == pytest.approx(((4 / 3 + 3) / 2 + 2) / 2)
    assert rate["baseline"] == "digits/ann/0, digits/ann/1"
    assert table.loc["ann", "relative corruption error"] == pytest.approx(1.0)
    assert list(table.index) == ["ann", "ttfs", "rate"]  # by corruption accuracy: 80, 75, 67.5


def test_robustness_and_early_exit_sections_in_the_markdown(tmp_path):
    write_robust_runs(tmp_path / "runs")
    written = build_report(tmp_path / "runs", tmp_path / "reports", "ann")
    folder = tmp_path / "reports" / "digits-smoke"
    text = (folder / "leaderboard.md").read_text()
    assert "## Robustness" in text and "### Decision step under corruption (early-exit methods)" in text
    rows = {row[0]: row for row in markdown_rows(folder / "leaderboard.md", every_table=True)}
    # the robustness table comes after the leaderboard: its rows replace the leaderboard's in `rows`;
    # the early-exit table has ttfs only (ann answers at T = 1 and rate at T = 8)
    shift_header = next(row for row in markdown_rows(folder / "leaderboard.md", every_table=True) if "shift, all corruptions" in row)
    assert shift_header == ["method", "variant", "T", "clean decision step", "shift, all corruptions", "shift, noise",
                            "shift, blur"]
    assert rows["ttfs"][3:] == ["3.00", "+1.50", "+1.50", "+1.50"]  # 4.5 − 3.0 under every corruption
    assert [r["method"] for r in robustness_rows(collect_records(tmp_path / "runs", "ann")) if r["early_exit"]] == ["ttfs"]
    for name in ("accuracy_vs_severity_noise.png", "accuracy_vs_severity_blur.png", "decision_step_shift.png",
                 "robustness.csv"):
        assert folder / name in written
    assert (folder / "decision_step_shift.png").read_bytes().startswith(PNG_SIGNATURE)


def test_pairs_whose_energy_order_flips_between_tiers_are_flagged(tmp_path):
    write_run(tmp_path / "runs", method="ann", tier1_pj=1000.0, tier2_pj=5000.0)
    write_run(tmp_path / "runs", method="rate", tier1_pj=2000.0, tier2_pj=3000.0)
    write_run(tmp_path / "runs", method="ttfs", tier1_pj=500.0, tier2_pj=900.0)
    written = build_report(tmp_path / "runs", tmp_path / "reports", "ann")
    text = (tmp_path / "reports" / "digits-smoke" / "leaderboard.md").read_text()
    assert "- ⚑ **ann** is cheaper than **rate** in tier 1, but **rate** is cheaper in tier 2" in text
    assert text.count("⚑") == 1  # ttfs is the cheapest in both tiers
    assert tmp_path / "reports" / "digits-smoke" / "accuracy_vs_energy_tier2.png" in written
    header, *rows = markdown_rows(tmp_path / "reports" / "digits-smoke" / "leaderboard.md")
    assert [dict(zip(header, row))["energy tier 2 (nJ)"] for row in rows] == ["5.00", "3.00", "0.90"]


def test_no_flip_is_said_when_both_tiers_agree(tmp_path):
    write_run(tmp_path / "runs", method="ann", tier1_pj=1000.0, tier2_pj=2000.0)
    write_run(tmp_path / "runs", method="rate", tier1_pj=2000.0, tier2_pj=3000.0)
    build_report(tmp_path / "runs", tmp_path / "reports", "ann")
    assert "No pair of rows changes order" in (tmp_path / "reports" / "digits-smoke" / "leaderboard.md").read_text()


@pytest.mark.parametrize("points, front", [
    ([(1, 50), (2, 60), (3, 55), (4, 70)], [0, 1, 3]),  # (3, 55) costs more than (2, 60) for less
    ([(5, 90), (1, 90), (1, 80)], [1]),                  # same accuracy for less; same cost for more
    ([(2, 60), (2, 60)], [0, 1]),                        # equal points dominate neither
])
def test_pareto_front_keeps_the_points_nothing_beats_in_both(points, front):
    assert pareto_front(points) == front


def test_metrics_and_plot_data_for_dvc_have_fixed_names(tmp_path):
    for T, accuracy in [(4, 0.80), (8, 0.90)]:
        write_run(tmp_path / "runs", method="rate", variant="" if T == 8 else f"T={T}", T=T, accuracy=accuracy,
                  tier1_pj=1000.0 * T, tier2_pj=2000.0 * T)
    grid_records = [{**record, "hyperparameters": {"T": record["T"], "beta": 0.9}}
                    for record in collect_records(tmp_path / "runs", "ann")]
    write_json(tmp_path / "reports" / "grids" / "rate-T" / "records.json",
               {"schema": 2, "grid": "rate-T", "records": grid_records})
    write_leaderboard(collect_records(tmp_path / "runs", "ann"), tmp_path / "reports", "ann",
                      grids_dir=tmp_path / "reports" / "grids")

    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert metrics["digits-smoke"]["rate (T=4)"] == {"accuracy": 0.8, "decision_step": 5.0, "energy_tier1_pj": 4000.0,
                                                      "energy_tier2_pj": 8000.0, "seeds": 1}
    points = pd.read_csv(tmp_path / "reports" / "plots" / "accuracy_vs_energy.csv")
    assert list(points["energy_tier1_nj"]) == [8.0, 4.0] and list(points["accuracy"]) == [90.0, 80.0]
    sweeps = pd.read_csv(tmp_path / "reports" / "plots" / "accuracy_vs_T.csv")
    assert list(zip(sweeps["series"], sweeps["T"], sweeps["accuracy"])) == [
        ("rate", 4, 80.0), ("rate", 8, 90.0), ("rate-T: rate", 4, 80.0), ("rate-T: rate", 8, 90.0)]


def test_a_sweep_needs_two_values_of_T(tmp_path):
    write_run(tmp_path, method="rate", variant="beta=0.5", T=8)
    write_run(tmp_path, method="rate", T=8, seed=1)
    assert t_sweeps(collect_records(tmp_path, "ann")) == []


def test_a_reference_given_twice_is_shown_once(tmp_path):
    write_run(tmp_path / "runs")
    build_report(tmp_path / "runs", tmp_path / "reports", "ann", [REFERENCE, dict(REFERENCE)])
    assert json.loads((tmp_path / "reports" / "leaderboard.json").read_text())["references"] == [
        {**REFERENCE, "variant": ""}]


def test_seeds_that_export_alike_share_one_portable_cell_with_agreement_ranges():
    texts = ["approximate (subtractive reset; agreement: snntorch 91.0 %, norse 11.2 %)",
             "approximate (subtractive reset; agreement: snntorch 90.8 %, norse 11.2 %)"]
    assert portable_cell(texts) == "approximate (subtractive reset; agreement: snntorch 90.8–91.0 %, norse 11.2 %)"


def test_seeds_that_export_differently_list_each_portable_text_once():
    texts = ["no: single-spike-mask", "exact (agreement: snntorch 100.0 %)", "no: single-spike-mask", ""]
    assert portable_cell(texts) == "no: single-spike-mask; exact (agreement: snntorch 100.0 %)"


def test_a_row_name_states_T_once():
    assert row_name({"label": "rate (T=10)", "T": 10}) == "rate (T=10)"
    assert row_name({"label": "ann", "T": 1}) == "ann (T=1)"


def test_grid_record_ids_name_the_axis_that_the_variant_leaves_out():
    def grid_record(lr: float, seed: int) -> dict:
        return {"dataset": "d", "profile": "quick", "method": "sigma-delta", "variant": "T=10,gradient=full",
                "T": 10, "seed": seed, "arch": "mlp", "hyperparameters": {"T": 10, "gradient": "full", "lr": lr, "dt": 1.0}}

    deep = {**grid_record(0.01, 0), "arch": "mlp-d8"}
    _, grid_ids = record_ids([], {"g": [grid_record(0.001, 0), grid_record(0.01, 0), deep]})

    assert grid_ids["g"] == ["grid-g.d.quick.sigma-delta.T-10-gradient-full.arch-mlp-lr-0.001.T10.s0",
                             "grid-g.d.quick.sigma-delta.T-10-gradient-full.arch-mlp-lr-0.01.T10.s0",
                             "grid-g.d.quick.sigma-delta.T-10-gradient-full.arch-mlp-d8-lr-0.01.T10.s0"]


def test_grid_record_ids_leave_out_T_when_only_the_steps_run_vary():
    """CSS at a declared T = 8 runs T + silent period steps: 10 with the silent period (2), 8 without;
    the ids end in T10 and T8 already, so the point names the silent period alone."""
    def css(silent_period: int) -> dict:
        return {"dataset": "d", "profile": "quick", "method": "css", "variant": "", "T": 8 + 2 * silent_period,
                "seed": 0, "arch": "mlp", "hyperparameters": {"T": 8, "silent_period": silent_period}}

    _, grid_ids = record_ids([], {"g": [css(1), css(0)]})

    assert grid_ids["g"] == ["grid-g.d.quick.css.default.silent_period-1.T10.s0",
                             "grid-g.d.quick.css.default.silent_period-0.T8.s0"]


def test_a_grid_over_architectures_keeps_each_depth_its_own_point(tmp_path):
    """Two depths × two hidden modes, one seed each: four points, not two points of two depths each."""
    settings = [("mlp-d2", "relaxed", 0.8), ("mlp-d2", "single", 0.7), ("mlp-d8", "relaxed", 0.6),
                ("mlp-d8", "single", 0.1)]
    for index, (_, _, accuracy) in enumerate(settings):
        write_run(tmp_path, method="latency", variant=f"point{index}", accuracy=accuracy)
    records = sorted(collect_records(tmp_path, "latency"), key=lambda record: record["variant"])
    for record, (arch, hidden, _) in zip(records, settings):
        record.update(arch=arch, variant="", hyperparameters={"hidden": hidden, "lr": 0.001})
    axes = grid_axes(records)
    assert axes == ["arch", "hidden"]
    points = grid_points(axes, records)
    assert [row["point"] for row in points] == [[arch, hidden] for arch, hidden, _ in settings]
    assert [len(row["records"]) for row in points] == [1, 1, 1, 1]
