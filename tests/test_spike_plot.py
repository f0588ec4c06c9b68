"""Accuracy vs spikes/sample of the conversion methods (issue 5): series from the grids' T sweeps and
the leaderboard, matched accuracy against the `ann` baseline, the plot in the report and the site."""

from __future__ import annotations

import math

from benchmark.contract.io import write_json
from benchmark.render.report import write_leaderboard
from benchmark.render.site import build_site
from benchmark.results.series import MATCH_MARGIN_PP, matched_levels, matched_points, spike_curves
from tests.test_site import PNG_SIGNATURE, make_record


def conversion(method: str, T: int, accuracy: float, spikes: float, variant: str = "", seed: int = 0, **hyper) -> dict:
    record = make_record(method, seed, accuracy, dataset="fashion-mnist", profile="quick", variant=variant, T=T,
                         family="conversion")
    record["spikes_per_sample"] = spikes
    record["hyperparameters"] = {"T": T, **hyper}
    return record


ANN = make_record("ann", 0, 0.89, dataset="fashion-mnist", profile="quick", T=1, family="ann")
# a T sweep of css (spikes grow with T) and of convert under two norms; css at T=8 is the leaderboard row
CSS_GRID = [conversion("css", T, accuracy, spikes, variant="" if T == 8 else f"T={T}")
            for T, accuracy, spikes in [(2, 0.80, 200.0), (4, 0.887, 600.0), (8, 0.889, 1300.0)]]
CONVERT_GRID = [conversion("convert", T, accuracy, spikes, variant=f"T={T},norm={norm}", norm=norm)
                for norm, points in [("max", [(8, 0.80, 130.0), (32, 0.888, 1150.0)]),
                                     ("p99.9", [(8, 0.878, 330.0), (32, 0.89, 2000.0)])]
                for T, accuracy, spikes in points]
ABLATION = [conversion("css", 8, 0.889, 400.0, variant="negative_spikes=False", negative_spikes=False),
            conversion("css", 8, 0.889, 1300.0, negative_spikes=True)]  # no T axis: no series
LEADERBOARD = [ANN, CSS_GRID[2], conversion("qcfs", 8, 0.887, 860.0)]
GRIDS = {"css-T": CSS_GRID, "convert-T": CONVERT_GRID, "css-ablation": ABLATION,
         "rate-T": [make_record("rate", 0, 0.8, T=T, dataset="fashion-mnist", profile="quick") for T in (4, 8)]}


def test_series_come_from_conversion_t_sweeps_and_uncovered_leaderboard_rows():
    curves = {curve["series"]: curve for curve in spike_curves(LEADERBOARD, GRIDS)}
    # convert-T: one series per norm; css-T: one; the ablation (no T axis) and rate (not conversion): none;
    # qcfs, in no grid, from the leaderboard; css T=8 of the leaderboard is already in css-T
    assert set(curves) == {"convert-T: convert (norm=max)", "convert-T: convert (norm=p99.9)", "css-T: css", "qcfs"}
    css = curves["css-T: css"]["points"]
    assert [(spikes, accuracy, T) for spikes, accuracy, _, T, _ in css] == [
        (200.0, 80.0, 2), (600.0, 88.7, 4), (1300.0, 88.9, 8)]
    assert curves["qcfs"]["source"] == "leaderboard" and len(curves["qcfs"]["points"]) == 1


def test_seeds_of_one_point_average_spikes_and_accuracy():
    records = [conversion("qcfs", 8, accuracy, spikes, seed=seed) for seed, accuracy, spikes in
               [(0, 0.88, 800.0), (1, 0.90, 900.0)]]
    (curve,) = spike_curves(records)
    spikes, accuracy, std, T, seeds = curve["points"][0]
    assert (spikes, T, seeds) == (850.0, 8, 2)
    assert math.isclose(accuracy, 89.0) and math.isclose(std, math.sqrt(2))  # sample std of 88 and 90


def test_matched_accuracy_is_the_cheapest_point_within_half_a_point_of_the_ann():
    levels = matched_levels(LEADERBOARD, None, "ann")
    assert levels.keys() == {"mlp-s"} and math.isclose(levels["mlp-s"], 89.0 - MATCH_MARGIN_PP)  # 89 % − 0.5 pp
    matched = matched_points(spike_curves(LEADERBOARD, GRIDS), levels)
    # css reaches 88.7 % ≥ 88.5 % at T=4 with 600 spikes, before its T=8 point (1300 spikes);
    # convert p99.9 first at T=32 (87.8 % at T=8 misses); qcfs's one point (88.7 %) qualifies
    assert matched["css-T: css"][0] == 600.0 and matched["css-T: css"][3] == 4
    assert matched["convert-T: convert (norm=p99.9)"][0] == 2000.0
    assert matched["convert-T: convert (norm=max)"][0] == 1150.0
    assert matched["qcfs"][0] == 860.0
    assert matched_points(spike_curves(LEADERBOARD, GRIDS), {"mlp-s": 95.0})["css-T: css"] is None
    assert matched_levels([record for record in LEADERBOARD if record["method"] != "ann"], None, "ann") == {}


def test_each_architecture_is_matched_against_its_own_ann_source():
    # a CNN css sweep converted from an ann the leaderboard does not hold (90.5 %): its level is
    # 90.5 − 0.5 = 90.0 %, not the MLP ann's 88.5 %, so T=4 (89.0 %) misses and T=8 (90.2 %) is matched
    cnn = [conversion("css", T, accuracy, spikes, variant=f"T={T}") for T, accuracy, spikes in
           [(4, 0.890, 5000.0), (8, 0.902, 9000.0)]]
    for record in cnn:
        record["arch"] = "cnn-s"
        record["converted_from"] = {"method": "ann", "arch": "cnn-s", "accuracy": 0.905}
    grids = {**GRIDS, "css-T-cnn": cnn}
    levels = matched_levels(LEADERBOARD, grids, "ann")
    assert set(levels) == {"mlp-s", "cnn-s"} and math.isclose(levels["cnn-s"], 90.0)
    matched = matched_points(spike_curves(LEADERBOARD, grids), levels)
    assert matched["css-T-cnn: css"][3] == 8 and matched["css-T: css"][3] == 4


def test_report_and_site_plot_it_from_the_records(tmp_path):
    reports = tmp_path / "reports"
    for name, records in GRIDS.items():
        write_json(reports / "grids" / name / "records.json", {"schema": 2, "grid": name, "records": records})
    digits = make_record("rate", 0, 0.9)  # another board, no conversion method: no such plot there
    written = write_leaderboard([*LEADERBOARD, digits], reports, "ann", grids_dir=reports / "grids")
    plot = reports / "fashion-mnist-quick" / "accuracy_vs_spikes.png"
    assert plot in written and plot.read_bytes().startswith(PNG_SIGNATURE) and len(plot.read_bytes()) > 10_000
    assert not (reports / "digits-smoke" / "accuracy_vs_spikes.png").exists()
    site = build_site(reports / "leaderboard.json", reports / "site")
    page = (reports / "site" / "index.html").read_text()
    assert reports / "site" / "fashion-mnist-quick" / "accuracy_vs_spikes.png" in site
    assert 'src="fashion-mnist-quick/accuracy_vs_spikes.png"' in page and "matched accuracy" in page
    assert "digits-smoke/accuracy_vs_spikes.png" not in page
