"""`spikecode severity`: every board run under Gaussian noise of growing σ, on the images a hand computation
makes, with per-sample results the claims table pairs, resumed from its cache, ranked and drawn; bad
sweeps are errors that name the problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.cli import main
from benchmark.contract.errors import ConfigError, SpikeCodeError
from benchmark.contract.io import read_json, unpack_bits
from benchmark.data.corruptions import sample_seed
from benchmark.data.prepared import load_prepared, to_unit_float
from benchmark.results.claims import HOLDS, FAILS, INCONCLUSIVE, evaluate_claims
from benchmark.run.config import load_params, resolve_run
from benchmark.run.runtime import load_model
from benchmark.sweeps import severity
from tests.conftest import make_workspace

SWEEP = {"description": "digits under noise", "dataset": "digits", "sigmas": [0.2, 0.6], "test_samples": 100}
RESULTS = Path("reports/severity/noise/results.json")


@pytest.fixture(scope="module")
def swept(tmp_path_factory, prepared_digits) -> Path:
    """A workspace whose board (ann and its conversion, seeds 0 and 1) was trained and swept."""
    root = make_workspace(tmp_path_factory.mktemp("severity") / "ws", prepared_digits,
                          **{"run.methods": ["ann"], "run.seeds": [0, 1], "severity": {"noise": SWEEP}})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for method in ("ann", "convert"):
            for seed in ("0", "1"):
                assert main(["train", "--dataset", "digits", "--method", method, "--seed", seed, "--no-progress"]) == 0
        assert main(["severity", "noise", "--no-progress"]) == 0
    return root


@pytest.fixture
def project(swept, tmp_path, monkeypatch) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(swept, root)
    monkeypatch.chdir(root)
    return root


def test_noise_draws_are_per_sample_so_a_sample_gets_the_same_draw_in_any_count():
    few, many = severity.noise_draws(2, (3,), seed=5), severity.noise_draws(4, (3,), seed=5)
    assert torch.equal(few, many[:2])
    expected = torch.randn(3, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(sample_seed(5, severity.NOISE_STREAM, 0, 1)))
    assert torch.equal(many[1], expected)
    assert not torch.equal(few, severity.noise_draws(2, (3,), seed=6))


def test_noisy_images_add_sigma_times_the_draw_and_clip_to_the_unit_interval():
    images = torch.tensor([[[[0, 255, 51, 204]]]], dtype=torch.uint8)  # 0, 1, 0.2, 0.8
    noise = torch.tensor([[[[-1.0, 1.0, 0.5, -0.5]]]], dtype=torch.float64)
    noisy = severity.noisy_images(images, noise, 0.4)(0, 1)
    # 0 − 0.4 → 0 (clipped), 1 + 0.4 → 1 (clipped), 0.2 + 0.2 = 0.4, 0.8 − 0.2 = 0.6
    assert noisy.dtype == torch.float32
    assert torch.allclose(noisy, torch.tensor([[[[0.0, 1.0, 0.4, 0.6]]]]))


def test_every_board_run_is_swept_at_every_sigma_with_its_per_sample_results(swept):
    results = read_json(swept / RESULTS)
    runs = sorted((record["method"], record["seed"]) for record in results["records"])
    assert runs == [("ann", 0), ("ann", 1), ("convert", 0), ("convert", 1)]
    for record in results["records"]:
        assert record["sigmas"] == [0.2, 0.6] and len(record["accuracy"]) == 2
        bits = record["samples"]["robust_correct"]
        assert sorted(bits) == ["gaussian_noise@1", "gaussian_noise@2"] and record["samples"]["robust_n"] == 100
        for level, key in enumerate(sorted(bits)):
            assert unpack_bits(bits[key], 100).mean() == pytest.approx(record["accuracy"][level])
        assert record["mean_accuracy"] == pytest.approx(sum(record["accuracy"]) / 2)
        assert record["provenance"]["dataset_sha256"]


def test_the_accuracy_at_a_sigma_is_the_models_on_noise_added_by_hand(project):
    record = next(r for r in read_json(RESULTS)["records"] if (r["method"], r["seed"]) == ("ann", 1))
    params = load_params(Path("params.yaml"))
    spec = resolve_run(params, "digits", "ann", 1)
    data = load_prepared("digits")
    method = load_model(spec, data)
    method.network.eval()
    images, labels = data.test_images[:100], data.test_labels[:100]
    draws = torch.stack([torch.randn(images.shape[1:], dtype=torch.float64, generator=torch.Generator().manual_seed(
        sample_seed(spec.profile.corruption_seed, 3000, 0, i))) for i in range(100)])
    x = (to_unit_float(images).double() + 0.6 * draws).clamp(0, 1).float()
    with torch.no_grad():
        predicted = method.readout(method.forward(x)).prediction
    assert float((predicted == labels).double().mean()) == pytest.approx(record["accuracy"][1])


def test_a_second_sweep_reads_its_cache_and_a_changed_model_is_evaluated_again(project, monkeypatch):
    before = read_json(RESULTS)

    def refuse(*args, **kwargs):
        raise AssertionError("evaluated again")

    monkeypatch.setattr(severity, "evaluate_corrupted", refuse)
    assert main(["severity", "noise", "--no-progress"]) == 0
    assert read_json(RESULTS)["records"] == before["records"]
    model = Path("runs/digits/ann/0/model.pt")
    saved = torch.load(model, weights_only=False)
    first = next(iter(saved["state_dict"]))
    saved["state_dict"][first] = saved["state_dict"][first] + 1.0
    torch.save(saved, model)
    with pytest.raises(AssertionError, match="evaluated again"):
        main(["severity", "noise", "--no-progress"])


def test_rows_are_ranked_with_ties_and_the_page_and_plot_are_written(swept):
    results = read_json(swept / RESULTS)
    assert [row["label"] for row in results["rows"]] == ["ann", "convert"]
    assert all(row["rank"] in (1, 2) for row in results["rows"]) and any(row["top"] for row in results["rows"])
    assert len(results["pairs"]) == 1 and results["pairs"][0]["seeds"] == [0, 1]
    for row in results["rows"]:
        assert len(row["accuracy"]) == 2 and row["seeds"] == [0, 1]
    table = (swept / "reports/severity/noise/table.md").read_text()
    assert "σ = 0.2 (%)" in table and "σ = 0.6 (%)" in table and "mean over σ (%)" in table
    assert (swept / "reports/severity/noise/accuracy_vs_sigma.png").read_bytes()[:4] == b"\x89PNG"


def test_a_claim_side_reads_the_severity_sweeps_records(swept):
    results = read_json(swept / RESULTS)
    claim = {"id": "c", "paper": "p", "claim": "ann beats its conversion under noise", "dataset": "digits",
             "test": {"metric": "corruption_accuracy", "direction": "greater", "threshold": 0.0,
                      "a": {"method": "ann", "severity": "noise"}, "b": {"method": "convert", "severity": "noise"}}}
    sources = {"records": [], "grids": {}, "resolution": {}, "severity": {"noise": results}, "perf": None,
               "profile": "smoke", "baseline": "ann"}
    verdict = evaluate_claims([claim], sources, {})[0]
    assert verdict["verdict"] in (HOLDS, FAILS, INCONCLUSIVE) and verdict["seeds"] == [0, 1]
    assert verdict["samples"] == 200  # both σ levels' 100 samples, concatenated
    means = {row["label"]: row["mean"][0] for row in results["rows"]}
    assert verdict["value"] == pytest.approx(means["ann"] - means["convert"])
    assert verdict["source"] == "reports/severity/noise/results.json"


def test_a_claim_on_a_sweep_not_run_is_not_tested_naming_the_command(swept):
    claim = {"id": "c", "paper": "p", "claim": "x", "dataset": "digits",
             "test": {"metric": "corruption_accuracy", "direction": "greater", "threshold": 0.0,
                      "a": {"method": "ann", "severity": "noise"}, "b": None}}
    sources = {"records": [], "grids": {}, "resolution": {}, "severity": {}, "perf": None, "profile": "smoke",
               "baseline": "ann"}
    verdict = evaluate_claims([claim], sources, {})[0]
    assert verdict["verdict"] == "not tested" and "spikecode severity noise" in verdict["reason"]


def _params(tmp_path: Path, **sweep) -> Path:
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["severity"] = {"noise": {**SWEEP, **sweep}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_sigmas_that_do_not_increase_are_named(workspace, tmp_path):
    with pytest.raises(ConfigError, match=r"severity\.noise\.sigmas: .*positive, distinct and increasing"):
        load_params(_params(tmp_path, sigmas=[0.5, 0.2]))


def test_a_claim_naming_an_undefined_severity_sweep_is_an_error(workspace, tmp_path):
    params = yaml.safe_load(_params(tmp_path).read_text())
    params["claims"] = [{"id": "c", "paper": "p", "claim": "x", "test": {
        "metric": "corruption_accuracy", "direction": "greater", "a": {"method": "ann", "severity": "nois"}}}]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(ConfigError, match="severity sweep 'nois' is not defined"):
        load_params(path)


@pytest.mark.parametrize("sweep, message", [({"dataset": "mnist"}, "run.datasets .* has no such board"),
                                            ({"methods": ["ann", "qcfs"]}, "methods qcfs are not on the digits board")])
def test_a_sweep_off_the_board_is_refused_before_anything_runs(workspace, tmp_path, sweep, message):
    params = load_params(_params(tmp_path, **sweep))
    with pytest.raises(ConfigError, match=message):
        severity.run_severity(params, "noise", progress=False)


def test_a_board_run_not_trained_yet_is_named_with_the_command_that_makes_it(workspace, tmp_path):
    with pytest.raises(SpikeCodeError, match=r"runs/digits/ann/0/model.pt not found: .*run `dvc repro`"):
        severity.run_severity(load_params(_params(tmp_path)), "noise", progress=False)


def test_a_missing_model_late_in_the_board_is_refused_before_any_run_is_evaluated(project):
    shutil.rmtree(project / "runs" / "severity")
    (project / "runs" / "digits" / "convert" / "1" / "model.pt").unlink()
    with pytest.raises(SpikeCodeError, match=r"runs/digits/convert/1/model.pt not found"):
        severity.run_severity(load_params(project / "params.yaml"), "noise", progress=False)
    assert not (project / "runs" / "severity").exists()  # ann 0, ann 1 and convert 0 were not swept first


def test_an_undefined_sweep_lists_the_defined_ones(workspace, tmp_path):
    with pytest.raises(ConfigError, match="severity sweep 'other' is not defined .*defined: noise"):
        severity.run_severity(load_params(_params(tmp_path)), "other", progress=False)
