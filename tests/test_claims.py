"""The claims table: each verdict kind on synthetic records whose differences are known, the
threshold rule by hand, and the claims of params.yaml validated."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from benchmark.contract.errors import ConfigError
from benchmark.contract.io import pack_bits
from benchmark.results.claims import FAILS, HOLDS, INCONCLUSIVE, NOT_TESTED, evaluate_claims, judge
from benchmark.run.config import load_params
from tests.conftest import REPO


def test_judge_reads_the_interval_against_the_threshold_by_hand():
    assert judge(0.5, 2.0, "greater", 0.0) == HOLDS          # all above 0
    assert judge(-2.0, 0.0, "greater", 0.0) == FAILS         # all at or below 0
    assert judge(-0.5, 1.0, "greater", 0.0) == INCONCLUSIVE  # spans 0
    assert judge(-0.5, 1.0, "greater", -1.0) == HOLDS        # "not more than 1 pp below": d > −1
    assert judge(-3.0, -2.0, "less", 0.0) == HOLDS
    assert judge(-0.4, 0.3, "within", 1.0) == HOLDS          # inside (−1, 1)
    assert judge(1.2, 2.0, "within", 1.0) == FAILS           # all beyond +1
    assert judge(0.5, 1.5, "within", 1.0) == INCONCLUSIVE


def _record(method: str, seed: int, correct: np.ndarray, energy: float = 1.0, variant: str = "", **hyper) -> dict:
    return {"dataset": "digits", "profile": "smoke", "method": method, "variant": variant, "T": 4, "seed": seed,
            "arch": "mlp-s", "accuracy": float(correct.mean()), "decision_step": {"mean": 4.0},
            "spikes_per_sample": 1.0, "energy": {"tier1_pj": energy}, "hyperparameters": hyper,
            "anytime": {"accuracy": [float(correct.mean())] * 4},
            "samples": {"n": len(correct), "correct": pack_bits(correct)}}


def _board() -> tuple[list[dict], dict[str, list[dict]]]:
    """strong is 20 pp above weak on every seed; twin is strong sample for sample; noisy differs from
    strong by ±1 sample with its sign flipping between seeds; energies: strong 10 ± 0.1, weak 20 ± 0.1."""
    rng = np.random.default_rng(3)
    records, grid = [], []
    for seed in range(3):
        strong = rng.random(2000) < 0.9
        weak = strong & (rng.random(2000) < 0.78)
        noisy = strong.copy()
        noisy[np.flatnonzero(noisy)[0] if seed % 2 else np.flatnonzero(~noisy)[0]] ^= True
        records += [_record("strong", seed, strong, 10 + 0.1 * seed), _record("weak", seed, weak, 20 + 0.1 * seed),
                    _record("twin", seed, strong.copy()), _record("noisy", seed, noisy)]
        grid += [_record("strong", seed, strong, pool="avg"), _record("strong", seed, weak, pool="max")]
    return records, {"pooling": grid}


def claim(test: dict | None = None, **fields) -> dict:
    return {"id": "c", "paper": "p", "claim": "c", "dataset": "digits", "reference": None, "note": "",
            "test": test, "not_tested": None, **fields}


def verdicts(*claims: dict) -> list[dict]:
    records, grids = _board()
    sources = {"records": records, "grids": grids, "resolution": {}, "perf": None, "profile": "smoke",
               "baseline": "strong"}
    return evaluate_claims(list(claims), sources, {id(r): f"rec{i}" for i, r in enumerate(records)})


def side(method: str, **fields) -> dict:
    return {"method": method, "dataset": None, "profile": None, "variant": None, "T": None, "grid": None,
            "point": {}, "resolution": None, **fields}


def accuracy_test(a: str, b: str, direction: str = "greater", threshold: float = 0.0, **extra) -> dict:
    return {"metric": "accuracy", "direction": direction, "threshold": threshold, "a": side(a), "b": side(b), **extra}


def test_each_verdict_kind_on_known_differences():
    holds, fails, inconclusive, tied, missing, declared = verdicts(
        claim(accuracy_test("strong", "weak")),          # +20 pp
        claim(accuracy_test("weak", "strong")),          # −20 pp
        claim(accuracy_test("noisy", "strong")),         # ±1 sample: the interval spans 0
        claim(accuracy_test("twin", "strong")),          # identical: d = 0 exactly, [0, 0] is not > 0
        claim(accuracy_test("strong", "absent")),
        claim(None, not_tested="a GPU"))
    assert holds["verdict"] == HOLDS and holds["ci_low"] > 15 and holds["seeds"] == [0, 1, 2]
    assert holds["runs"] and all(run.startswith("rec") for run in holds["runs"])
    assert fails["verdict"] == FAILS and fails["ci_high"] < -15
    assert inconclusive["verdict"] == INCONCLUSIVE and inconclusive["ci_low"] < 0 < inconclusive["ci_high"]
    assert tied["verdict"] == FAILS and tied["value"] == 0.0
    assert missing["verdict"] == NOT_TESTED and "no records of absent" in missing["reason"]
    assert declared["verdict"] == NOT_TESTED and declared["reason"] == "a GPU"


def test_a_margin_turns_a_small_deficit_into_holds():
    [within_one_pp] = verdicts(claim(accuracy_test("noisy", "strong", threshold=-1.0)))
    assert within_one_pp["verdict"] == HOLDS


def test_per_seed_metrics_use_the_paired_t_interval():
    # energy strong − weak = −10 pJ on every seed: a zero-width interval below 0
    [cheaper] = verdicts(claim({"metric": "energy_tier1", "direction": "less", "threshold": 0.0,
                                "a": side("strong"), "b": side("weak")}))
    assert cheaper["verdict"] == HOLDS
    assert cheaper["value"] == pytest.approx(-10.0) and cheaper["ci_high"] == pytest.approx(-10.0)


def test_grid_points_are_selected_by_their_hyperparameters():
    [pooling] = verdicts(claim({"metric": "accuracy", "direction": "greater", "threshold": 0.0,
                                "a": side("strong", grid="pooling", point={"pool": "avg"}),
                                "b": side("strong", grid="pooling", point={"pool": "max"})}))
    assert pooling["verdict"] == HOLDS and pooling["a"] == "strong (grid pooling, pool=avg)"
    [absent] = verdicts(claim({"metric": "accuracy", "direction": "greater", "threshold": 0.0,
                               "a": side("strong", grid="other"), "b": None}))
    assert absent["verdict"] == NOT_TESTED and "spikecode grid other" in absent["reason"]


def test_every_claim_of_params_yaml_is_valid_and_a_broken_one_is_named(tmp_path):
    params = load_params(REPO / "params.yaml")
    assert len(params.claims) >= 20 and len({c.paper for c in params.claims}) == 4
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["grid_files"] = []
    raw["claims"] = [{"id": "x", "paper": "p", "claim": "c", "test": {
        "metric": "accuracy", "direction": "greater", "a": {"method": "ttfs", "grid": "nowhere"}}}]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="claims.x: grid 'nowhere' is not defined"):
        load_params(tmp_path / "params.yaml")
    raw["claims"] = [{"id": "x", "paper": "p", "claim": "c"}]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="exactly one of `test`"):
        load_params(tmp_path / "params.yaml")
    raw["claims"] = [{"id": "x", "paper": "p", "claim": "c", "test": {
        "metric": "accuracy", "direction": "greater", "a": {"method": "rate", "resolution": "fashion-mnist-dvs", "at": 3}}}]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="at: 3 is not among the factors of resolution sweep fashion-mnist-dvs"):
        load_params(tmp_path / "params.yaml")
    raw["claims"] = [{"id": "x", "paper": "p", "claim": "c", "test": {
        "metric": "accuracy", "direction": "greater",
        "a": {"method": "rate", "resolution": ["fashion-mnist-dvs", "fashion-mnist-dvs-offline"]}}}]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="`at`"):
        load_params(tmp_path / "params.yaml")


def _resolution_sweep(seed: int, correct: dict[str, np.ndarray], spikes: dict[str, float]) -> dict:
    """A resolution sweep's results.json of one seed: each method trained and run at Δt/4 only."""
    return {"profile": "smoke",
            "sweep": {"dataset": "digits", "seed": seed, "test_samples": 2000, "factors": [1, 4]},
            "methods": {method: {"hyperparameters": {"4": {"T": 16}},
                                 "retrained": {"4": {"accuracy": float(flags.mean()), "correct": pack_bits(flags),
                                                     "spikes_per_sample": spikes[method]}}}
                        for method, flags in correct.items()}}


def test_sweeps_of_one_seed_each_are_the_seeds_of_a_claim_at_a_finer_step():
    """fine is 20 pp above coarse at Δt/4 on every seed's sweep, with 10 spikes against 30 on each."""
    rng = np.random.default_rng(5)
    sweeps = {}
    for seed in range(3):
        fine = rng.random(2000) < 0.9
        sweeps[f"s{seed}"] = _resolution_sweep(seed, {"fine": fine, "coarse": fine & (rng.random(2000) < 0.78)},
                                               {"fine": 10.0 + seed, "coarse": 30.0 + seed})
    names = ["s0", "s1", "s2"]
    sources = {"records": [], "grids": {}, "resolution": sweeps, "perf": None, "profile": "smoke", "baseline": "fine"}
    better, fewer, unrun = evaluate_claims([
        claim({"metric": "accuracy", "direction": "greater", "threshold": 0.0,
               "a": side("fine", resolution=names, at=4), "b": side("coarse", resolution=names, at=4)}),
        claim({"metric": "spikes", "direction": "less", "threshold": 0.0,
               "a": side("fine", resolution=names, at=4), "b": side("coarse", resolution=names, at=4)}),
        claim({"metric": "accuracy", "direction": "greater", "threshold": 0.0,
               "a": side("fine", resolution=["s0", "s9"], at=4), "b": None})], sources, {})
    assert better["verdict"] == HOLDS and better["seeds"] == [0, 1, 2] and better["samples"] == 2000
    assert better["value"] == pytest.approx(better["a_value"] - better["b_value"]) and better["ci_low"] > 15
    assert better["a"] == "fine (resolution s0, s1, s2, trained and run at Δt/4)"
    assert better["source"] == ", ".join(f"reports/resolution/s{seed}/results.json" for seed in range(3))
    assert fewer["verdict"] == HOLDS and fewer["value"] == pytest.approx(-20.0)  # (10+11+12)/3 − (30+31+32)/3
    assert unrun["verdict"] == NOT_TESTED and "spikecode resolution s9" in unrun["reason"]
