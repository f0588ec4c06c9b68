"""Statistics before rankings: confidence intervals over seeds, paired tests between methods on the same
test samples and seeds, Holm's correction, and ranks with ties.

Per-sample correctness. A run's predictions (`predictions.npz`, written by the evaluate stage) give
c[s, i] ∈ {0, 1} for seed s and test sample i; two rows A, B of a board are compared on the seeds they
share, sample by sample (paired).

Paired hierarchical bootstrap of the accuracy difference d = mean_{s,i} (c_A[s, i] − c_B[s, i]):
each of R replicates draws the shared seeds with replacement, and reweights the test samples (one
draw of sample weights per replicate, the same for every pair of the board), and recomputes d; so
both the variation between training runs (seeds) and the finiteness of the test set enter the
interval. The sample weights are Poisson(1) (the Poisson bootstrap, which for N in the hundreds and
more is the multinomial resampling in all but name); samples with the same correctness in every
compared run are pooled first (a pattern seen n_p times gets weight Poisson(n_p), the same
distribution), so a board of 10,000 or 750,000 test samples costs as much as its distinct patterns.

    95 % CI of d      the 2.5th and 97.5th percentiles of the replicates
    p (two-sided)     min(1, 2·min(#(d* ≤ 0) + 1, #(d* ≥ 0) + 1) / (R + 1))

With three seeds the seeds' draws take few distinct values, so p cannot fall below about 1/27 when the
seeds disagree: the test then honestly says the seeds do not settle it.

Holm's step-down correction over all pairs of a board (or any family of tests): sort p ascending,
p_adj(k) = max_{j ≤ k} min(1, (m − j + 1)·p(j)). A pair is different when p_adj < ALPHA.

Ranks with ties: rank(A) = 1 + the number of rows significantly better than A. Rows no other row beats
share rank 1, the top group.

Confidence interval of a mean over seeds (a row's metric): mean ± t_{0.975, n−1}·s/√n, Student's t
with n − 1 degrees of freedom (t = 4.303 for three seeds); undefined for one seed.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

ALPHA = 0.05
REPLICATES = 4000
BOOTSTRAP_SEED = 20260  # one fixed stream: the same records give the same p-values and intervals
# Student's t, 0.975 quantile, by degrees of freedom (scipy.stats.t.ppf(0.975, df)); normal beyond 30
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}


def t_quantile(df: int) -> float:
    """t_{0.975, df}: the table's value, the next smaller table df's above 30 go to the normal 1.96."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df > 30:
        return 1.96
    return T_975[max(k for k in T_975 if k <= df)]


def mean_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, lower, upper) of the 95 % t-interval of the mean; the bounds are nan for one value."""
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = sum(values) / n
    if n == 1:
        return mean, math.nan, math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(n - 1) * std / math.sqrt(n)
    return mean, mean - half, mean + half


def bootstrap_accuracies(correct: np.ndarray, replicates: int = REPLICATES, seed: int = BOOTSTRAP_SEED,
                         block: int = 500) -> np.ndarray:
    """`[replicates, C]`: each column's accuracy on every replicate's reweighted test set, from correct
    `[N, C]` (0/1; a column is one run, every column on the same N samples). Poisson weights over the
    distinct rows of `correct` (module docstring), drawn `block` replicates at a time."""
    patterns, counts = np.unique(np.asarray(correct, dtype=bool), axis=0, return_counts=True)
    patterns = patterns.astype(np.float32)
    rng = np.random.default_rng(seed)
    blocks = []
    for start in range(0, replicates, block):
        weights = rng.poisson(counts, size=(min(block, replicates - start), len(counts))).astype(np.float32)
        blocks.append(weights @ patterns / np.maximum(weights.sum(axis=1, keepdims=True), 1.0))
    return np.concatenate(blocks)


def seed_draws(seeds: int, replicates: int = REPLICATES, seed: int = BOOTSTRAP_SEED + 1) -> np.ndarray:
    """`[replicates, seeds]` indices of the seeds each replicate draws, with replacement."""
    return np.random.default_rng(seed).integers(0, seeds, size=(replicates, seeds))


def bootstrap_difference(accuracies_a: np.ndarray, accuracies_b: np.ndarray, observed: float,
                         draws: np.ndarray) -> dict[str, float]:
    """The hierarchical replicates of mean_s(a_s) − mean_s(b_s) from the per-seed replicate accuracies
    `[R, S]` of two rows on the same seeds (column s of both the same seed) and the seeds' `draws`
    `[R, S]`: {"difference" (`observed`), "ci_low", "ci_high", "p"} as fractions."""
    replicates = np.take_along_axis(accuracies_a - accuracies_b, draws, axis=1).mean(axis=1)
    below, above = int((replicates <= 0).sum()), int((replicates >= 0).sum())
    low, high = np.percentile(replicates, [2.5, 97.5])
    return {"difference": observed, "ci_low": float(low), "ci_high": float(high),
            "p": min(1.0, 2 * min(below + 1, above + 1) / (len(replicates) + 1))}


def paired_difference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """The paired hierarchical bootstrap of accuracy(a) − accuracy(b) (module docstring), a and b
    `[S, N]` correctness (0/1) of the same S seeds on the same N samples. Returns {"difference",
    "ci_low", "ci_high", "p"}, the difference and its bounds as fractions."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"paired correctness must share the shape [seeds, samples], got {a.shape} and {b.shape}")
    seeds = a.shape[0]
    accuracies = bootstrap_accuracies(np.concatenate([a, b]).T)
    observed = float((a.astype(np.float64) - b).mean())
    return bootstrap_difference(accuracies[:, :seeds], accuracies[:, seeds:], observed, seed_draws(seeds))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda k: p_values[k])
    adjusted, running = [0.0] * m, 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[k]))
        adjusted[k] = running
    return adjusted


def ranks_with_ties(rows: int, better: set[tuple[int, int]]) -> list[int]:
    """rank(i) = 1 + #{j : (j, i) in `better`} for i < `rows`, where (j, i) says row j is significantly
    better than row i."""
    return [1 + sum(1 for j in range(rows) if (j, i) in better) for i in range(rows)]
