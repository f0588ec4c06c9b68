"""Statistics before rankings: intervals over seeds, the paired bootstrap, Holm's correction, tie-aware
ranks on a board of synthetic records whose differences are known."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.results import samples as per_sample
from benchmark.results.aggregate import mean_std_ci
from benchmark.results.statistics import holm, mean_ci, paired_difference, ranks_with_ties, t_quantile
from benchmark.results.summary import summary


def test_mean_ci_is_the_student_t_interval_by_hand():
    # values 1, 2, 3: mean 2, s = 1, half-width t_{0.975,2} · 1/√3 = 4.303 / 1.7321 = 2.4843
    mean, low, high = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert high - mean == pytest.approx(4.303 / 3 ** 0.5)
    assert mean - low == pytest.approx(high - mean)
    assert t_quantile(2) == 4.303 and t_quantile(100) == 1.96


def test_one_seed_has_no_interval():
    mean, std, half = mean_std_ci([0.5])
    assert mean == 0.5 and np.isnan(std) and np.isnan(half)


def test_holm_adjusts_by_hand():
    # sorted p: 0.01 (×3 = 0.03), 0.02 (×2 = 0.04), 0.04 (×1 = 0.04, kept monotone)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1; 0.6·1 < 1.0 is raised to the running max


def test_ranks_count_the_rows_significantly_better():
    # row 0 beats rows 1 and 2; rows 1 and 2 are tied: ranks 1, 2, 2
    assert ranks_with_ties(3, {(0, 1), (0, 2)}) == [1, 2, 2]
    assert ranks_with_ties(3, set()) == [1, 1, 1]


def test_identical_runs_differ_by_zero_and_are_not_significant():
    correct = np.random.default_rng(0).random((3, 1000)) < 0.8
    result = paired_difference(correct, correct)
    assert result["difference"] == 0.0 and result["ci_low"] == 0.0 and result["ci_high"] == 0.0
    assert result["p"] == 1.0


def test_a_clear_gap_is_significant_with_its_interval_around_it():
    rng = np.random.default_rng(1)
    a = rng.random((3, 2000)) < 0.95
    b = a & (rng.random((3, 2000)) < 0.8)  # b loses about 19 pp of a's correct answers
    result = paired_difference(a, b)
    assert result["difference"] == pytest.approx((a.mean() - b.mean()))
    assert result["ci_low"] < result["difference"] < result["ci_high"]
    assert result["ci_low"] > 0.1 and result["p"] < 0.001


def test_seeds_that_disagree_leave_the_difference_unsettled():
    # the sign of the difference flips between seeds: the seed draws keep p well above 0.05
    n = 1000
    a = np.stack([np.arange(n) < 900, np.arange(n) < 800, np.arange(n) < 850])
    b = np.stack([np.arange(n) < 800, np.arange(n) < 900, np.arange(n) < 860])
    assert paired_difference(a, b)["p"] > 0.05


def _samples(correct: np.ndarray, T: int = 2) -> dict:
    """A record's `samples` with the given clean correctness, also correct at every step."""
    n = len(correct)
    return {"n": n, "correct": per_sample.pack_bits(correct), "decision_step": "",
            "by_step_correct": per_sample.pack_bits(np.tile(correct, (T, 1))), "steps": T}


def _record(method: str, seed: int, correct: np.ndarray) -> dict:
    return {"dataset": "digits", "profile": "smoke", "method": method, "variant": "", "T": 2, "seed": seed,
            "family": "direct", "accuracy": float(correct.mean()), "val_accuracy": float(correct.mean()),
            "decision_step": {"mean": 2.0}, "spikes_per_sample": 1.0, "bits_per_sample": 1.0,
            "ops": {"acs": 1.0, "macs": 1.0}, "energy": {"tier1_pj": 1.0, "cost_model": "45nm-fp32"},
            "anytime": {"accuracy": [float(correct.mean())] * 2}, "samples": _samples(correct)}


def test_a_board_ranks_a_clear_gap_apart_and_identical_runs_together():
    """`strong` is 20 pp above `weak` on every seed; `twin` is `strong` sample for sample."""
    rng = np.random.default_rng(2)
    records = []
    for seed in range(3):
        strong = rng.random(1000) < 0.9
        weak = strong & (rng.random(1000) < 0.75)
        records += [_record("strong", seed, strong), _record("twin", seed, strong.copy()), _record("weak", seed, weak)]
    [board] = summary(records, [], {}, "strong")["boards"]
    ranks = {row["method"]: (row["rank"], row["top"]) for row in board["rows"]}
    assert ranks == {"strong": (1, True), "twin": (1, True), "weak": (3, False)}
    pairs = {(pair["a"], pair["b"]): pair for pair in board["comparisons"]["accuracy"]}
    tied = pairs.get(("strong|T=2", "twin|T=2")) or pairs[("twin|T=2", "strong|T=2")]
    assert tied["difference"] == 0.0 and tied["p"] == 1.0 and not tied["different"]
    apart = pairs.get(("strong|T=2", "weak|T=2")) or pairs[("weak|T=2", "strong|T=2")]
    assert abs(apart["difference"]) > 15 and apart["p_holm"] < 0.05 and apart["different"]
    # three pairs; strong-weak and twin-weak share the smallest p (twin is strong), so Holm gives both 3·p
    assert apart["p_holm"] == pytest.approx(min(1.0, 3 * apart["p"]))
    assert board["comparisons"]["anytime"]["1"]["ranks"] == [1, 1, 3]


def test_rows_without_per_sample_results_stay_untested_and_share_the_top_rank():
    records = [{**_record(method, 0, np.ones(10, bool)), "samples": None} for method in ("a", "b")]
    [board] = summary(records, [], {}, "a")["boards"]
    assert [row["rank"] for row in board["rows"]] == [1, 1]
    [pair] = board["comparisons"]["accuracy"]
    assert pair["p"] is None and not pair["different"]
