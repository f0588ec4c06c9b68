"""Temporal-resolution sweeps (benchmark/sweeps/resolution.py): finer framing, each method's rule for a
finer time step, and a tiny sweep end to end on a simulated Fashion-MNIST-DVS."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from benchmark.cli import main
from benchmark.contract.errors import ConfigError
from benchmark.contract.io import read_json, unpack_bits, write_json
from benchmark.contract.registry import get_method
from benchmark.data.events import Framer, Framing
from benchmark.render.resolution import write_resolution_reports, write_seed_reports
from benchmark.run.config import load_params
from benchmark.sweeps.resolution import finer_framing
from methods.sigma_delta import decay_factors
from tests.test_event_harness import DATASET, T, workspace


def test_finer_framing_splits_each_time_window_into_k_equal_ones():
    rng = np.random.default_rng(0)
    events = np.zeros(500, dtype=[("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
    events["x"], events["y"], events["p"] = rng.integers(0, 4, 500), rng.integers(0, 4, 500), rng.integers(0, 2, 500)
    events["t"] = np.sort(rng.integers(0, 4000, 500))
    events["t"][0] = 0
    coarse = Framing(T=4, time_window=1000.0)
    fine = finer_framing(coarse, 2)
    assert (fine.T, fine.time_window) == (8, 500.0)
    sensor = (4, 4, 2)
    coarse_frames = Framer(coarse, sensor).counts(events)
    fine_frames = Framer(fine, sensor).counts(events)
    assert np.array_equal(fine_frames.reshape(4, 2, 2, 4, 4).sum(axis=1), coarse_frames)


def test_each_method_says_how_it_runs_at_a_finer_time_step():
    sigma_delta = get_method("sigma-delta").at_time_step({"T": 10, "dt": 1.0, "loss_from": 2, "tau": [8.0],
                                                           "lr": 0.002}, 4)
    assert (sigma_delta["T"], sigma_delta["dt"], sigma_delta["loss_from"], sigma_delta["tau"]) == (40, 0.25, 8, [8.0])
    assert sigma_delta["lr"] == 0.0005  # online: four updates where there was one
    offline = get_method("sigma-delta").at_time_step({"training": "offline", "lr": 0.002}, 4)
    assert offline["lr"] == 0.002  # one update per batch at any step
    rate = get_method("rate").at_time_step({"T": 10, "beta": 0.9}, 2)
    assert (rate["T"], rate["beta"]) == (20, 0.9)  # β is per step: the default rule keeps it


def test_sigma_delta_decays_by_the_same_amount_over_the_same_time_at_any_step():
    method = get_method("sigma-delta")
    coarse, fine = (method.Config(**method.at_time_step({"dt": 1.0, "tau": [5.0, 2.0]}, k)) for k in (1, 4))
    for alpha_coarse, alpha_fine in zip(decay_factors(coarse.dt, coarse.tau), decay_factors(fine.dt, fine.tau)):
        assert alpha_fine ** 4 == pytest.approx(alpha_coarse)


def test_factors_must_include_delta_t_itself(tmp_path, monkeypatch):
    root = workspace(tmp_path / "ws", **{"resolution": {"tiny": {"dataset": DATASET, "methods": ["rate"],
                                                                 "factors": [2, 4], "train_samples": 8,
                                                                 "test_samples": 4, "epochs": 1}}})
    monkeypatch.chdir(root)
    with pytest.raises(ConfigError, match="include 1"):
        load_params()


def test_a_tiny_sweep_trains_every_factor_and_evaluates_every_model_at_every_step(tmp_path, monkeypatch):
    sweep = {"dataset": DATASET, "methods": ["sigma-delta", "rate"], "factors": [1, 2], "train_samples": 24,
             "val_samples": 6, "test_samples": 12, "epochs": 1, "reference_seeds": [1],
             "overrides": {"sigma-delta": {"training": "offline", "lr": 0.01}}}
    root = workspace(tmp_path / "ws", **{"resolution": {"tiny": sweep}})
    (root / "datasets" / "fashion-mnist").mkdir()
    (root / "datasets" / "fashion-mnist" / "raw").symlink_to(root / "raw")  # where replay finds the images
    monkeypatch.chdir(root)
    assert main(["resolution", "tiny", "--no-progress"]) == 0
    record = read_json(root / "runs" / "resolution" / "tiny" / "results.json")
    for method in ("sigma-delta", "rate"):
        entry = record["methods"][method]
        assert set(entry["accuracy"]) == {"1", "2"} and all(set(row) == {"1", "2"} for row in entry["accuracy"].values())
        assert entry["hyperparameters"]["2"]["T"] == 2 * T
        reference = entry["accuracy"]["1"]["1"]
        shifts = [abs(entry["accuracy"]["1"]["2"] - reference), abs(entry["accuracy"]["2"]["2"] - reference)]
        assert entry["evaluated_shift_pp"] == pytest.approx(100 * shifts[0])
        assert max(entry["evaluated_shift_pp"], entry["retrained_shift_pp"]) == pytest.approx(100 * max(shifts))
        for factor in (1, 2):
            [run] = (root / "runs" / "resolution" / "tiny").glob(f"*/{DATASET}/{method}@dt-{factor}/0/train.json")
            assert read_json(run)["epochs"] == 1
    assert record["methods"]["sigma-delta"]["hyperparameters"]["2"]["dt"] == 0.5
    offline = record["methods"]["sigma-delta"]["hyperparameters"]["2"]
    assert (offline["training"], offline["lr"]) == ("offline", 0.01)  # the sweep's override; offline keeps lr
    seeds = record["methods"]["rate"]["seed_accuracy_at_dt"]
    assert seeds["0"] == record["methods"]["rate"]["accuracy"]["1"]["1"] and set(seeds) == {"0", "1"}
    assert record["methods"]["rate"]["seed_range_pp"] == pytest.approx(100 * abs(seeds["0"] - seeds["1"]))
    at_dt = record["methods"]["rate"]["at_dt"]
    assert set(at_dt) == {"0", "1"} and all(set(runs) == {"1", "2"} for runs in at_dt.values())
    correct = unpack_bits(at_dt["1"]["2"]["correct"], 12)  # seed 1 trained at Δt, run at Δt/2
    assert correct.mean() == pytest.approx(at_dt["1"]["2"]["accuracy"]) and at_dt["0"]["2"]["accuracy"] == pytest.approx(
        record["methods"]["rate"]["accuracy"]["1"]["2"])
    retrained = record["methods"]["rate"]["retrained"]["2"]  # trained and run at Δt/2: the seeds of claims at Δt/2
    assert unpack_bits(retrained["correct"], 12).mean() == pytest.approx(record["methods"]["rate"]["accuracy"]["2"]["2"])
    assert retrained["spikes_per_sample"] > 0 and record["profile"] == "smoke"  # the workspace's profile
    trained_at_dt = read_json(next((root / "runs" / "resolution" / "tiny").glob(f"*/{DATASET}/rate@dt-2/0/train.json")))
    assert retrained["provenance"] == trained_at_dt["provenance"]  # each model keeps where and how it was trained
    assert set(record["methods"]["rate"]["at_dt_provenance"]) == {"0", "1"}
    write_resolution_reports(root / "runs" / "resolution", root / "reports" / "resolution")  # the report stage's part
    assert read_json(root / "reports" / "resolution" / "tiny" / "results.json") == record
    table = (root / "reports" / "resolution" / "tiny" / "table.md").read_text()
    assert f"Models trained on {trained_at_dt['provenance']['device']}, torch " in table
    assert "| sigma-delta | Δt/2 |" in table and (root / "reports" / "resolution" / "tiny" / "resolution.png").stat().st_size
    # a second run trains nothing again: the models exist
    before = {p: p.stat().st_mtime_ns for p in (root / "runs" / "resolution").rglob("model.pt")}
    assert main(["resolution", "tiny", "--no-progress"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (root / "runs" / "resolution").rglob("model.pt")} == before
    # new settings retrain
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["resolution"]["tiny"]["epochs"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["resolution", "tiny", "--no-progress"]) == 0
    assert all(read_json(p.parent / "train.json")["epochs"] == 2 for p in before)


def test_sweeps_that_differ_in_their_seed_are_tabled_over_seeds(tmp_path):
    """Two sweeps of rate (seeds 0, 1) at Δt and Δt/2: accuracy 80 and 84 % at Δt (mean 82.00, sample
    standard deviation √8 = 2.83), 70 and 70 % at Δt/2; spikes 100 and 120 at Δt (110 ± 14)."""
    for seed, (at_1, at_2, spikes) in enumerate([(0.80, 0.70, 100.0), (0.84, 0.70, 120.0)]):
        record = {"sweep": {"dataset": "toy", "seed": seed, "factors": [1, 2], "epochs": 3, "test_samples": 10,
                            "overrides": {"rate": {"lr": 0.01}}},
                  "methods": {"rate": {"retrained": {"1": {"accuracy": at_1, "spikes_per_sample": spikes,
                                                           "provenance": {"device": f"cpu {seed}", "git_commit": "0123456789ab",
                                                                          "git_dirty": False, "versions": {"torch": "2.14.1"}}},
                                                     "2": {"accuracy": at_2, "spikes_per_sample": 2 * spikes}}}}}
        write_json(tmp_path / f"toy-s{seed}" / "results.json", record)
    written = write_seed_reports(tmp_path)
    assert [path.name for path in written] == ["toy-seeds.md", "toy-seeds.png"] and written[1].stat().st_size
    table = written[0].read_text()
    assert "| rate (lr 0.01) | 3 | 0, 1 | 82.00 ± 2.83 | 70.00 ± 0.00 | 110 ± 14 | 220 ± 28 | toy-s0, toy-s1 |" in table
    assert "Models trained on cpu 0, torch 2.14.1 (commits 0123456789); cpu 1, torch 2.14.1 (commits 0123456789)." in table
