"""Paired comparisons between the rows of a board, and ranks with ties (benchmark.results.statistics).

For every pair of rows the paired hierarchical bootstrap of the accuracy difference runs on the seeds
the two share and their per-sample correctness (the records' `samples`, benchmark.results.samples);
Holm's correction runs over all pairs of the board and quantity; a row's rank is 1 + the number of
rows significantly better. Three quantities get this treatment:

    accuracy              the clean test set
    corruption_accuracy   every corrupted set of the robustness stage, concatenated (each set the same
                          size, so the mean over them is the mean corruption accuracy)
    anytime@t             the accuracy of each row's readout after t steps (its last step when T < t),
                          for t = 1, 2, 4, ... up to the board's longest T

A pair whose rows share no seed with per-sample results is left untested (neither different nor
tied by evidence: its p is null, and it separates no ranks).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from benchmark.results import samples as per_sample
from benchmark.results.statistics import ALPHA, bootstrap_accuracies, bootstrap_difference, holm, ranks_with_ties, seed_draws

Correctness = Callable[[dict], np.ndarray | None]  # a record's samples -> bool [N], None when absent


def _by_seed(row: dict, correctness: Correctness) -> dict[int, np.ndarray]:
    found = {}
    for record in row["records"]:
        samples = record.get("samples")
        flags = correctness(samples) if samples else None
        if flags is not None:
            found[record["seed"]] = flags
    return found


def compare(rows: list[dict], correctness: Correctness) -> dict[str, Any]:
    """Every pair of `rows` compared on `correctness` (module docstring).

    Returns {"pairs": [{"a", "b", "seeds", "difference" (pp), "ci_low", "ci_high", "p", "p_holm",
    "different"}], "ranks": [rank per row], "top": [bool per row]}."""
    per_row = [_by_seed(row, correctness) for row in rows]
    sizes = {flags.shape[0] for found in per_row for flags in found.values()}
    if len(sizes) > 1:  # runs on different test sets cannot be paired
        per_row = [{} for _ in rows]
    pairs = _bootstrap_pairs(rows, per_row)
    tested = [pair for pair in pairs if pair["p"] is not None]
    for pair, adjusted in zip(tested, holm([pair["p"] for pair in tested])):
        pair["p_holm"] = adjusted
        pair["different"] = adjusted < ALPHA
    index = {row["label"] + f"|T={row['T']}": i for i, row in enumerate(rows)}
    better = set()
    for pair in pairs:
        if pair.get("different"):
            a, b = index[pair["a"]], index[pair["b"]]
            better.add((a, b) if pair["difference"] > 0 else (b, a))
    ranks = ranks_with_ties(len(rows), better)
    return {"pairs": pairs, "ranks": ranks, "top": [rank == 1 for rank in ranks]}


def _bootstrap_pairs(rows: list[dict], per_row: list[dict[int, np.ndarray]]) -> list[dict]:
    """The paired bootstrap of every pair, all pairs on the same replicates (sample weights drawn once,
    seed draws once per number of shared seeds)."""
    columns = [(i, seed) for i, found in enumerate(per_row) for seed in sorted(found)]
    if not columns:
        return [_untested(rows, a, b) for a in range(len(rows)) for b in range(a + 1, len(rows))]
    accuracies = bootstrap_accuracies(np.stack([per_row[i][seed] for i, seed in columns], axis=1))
    position = {column: k for k, column in enumerate(columns)}
    draws: dict[int, np.ndarray] = {}
    pairs = []
    for a in range(len(rows)):
        for b in range(a + 1, len(rows)):
            shared = sorted(set(per_row[a]) & set(per_row[b]))
            if not shared:
                pairs.append(_untested(rows, a, b))
                continue
            observed = float(np.mean([per_row[a][s].mean() - per_row[b][s].mean() for s in shared]))
            result = bootstrap_difference(accuracies[:, [position[(a, s)] for s in shared]],
                                          accuracies[:, [position[(b, s)] for s in shared]], observed,
                                          draws.setdefault(len(shared), seed_draws(len(shared))))
            pairs.append({**_names(rows, a, b), "seeds": shared, "p": result["p"],
                          **{key: 100 * result[key] for key in ("difference", "ci_low", "ci_high")}})
    return pairs


def _names(rows: list[dict], a: int, b: int) -> dict[str, str]:
    return {"a": rows[a]["label"] + f"|T={rows[a]['T']}", "b": rows[b]["label"] + f"|T={rows[b]['T']}"}


def _untested(rows: list[dict], a: int, b: int) -> dict[str, Any]:
    return {**_names(rows, a, b), "seeds": [], "difference": None, "ci_low": None, "ci_high": None, "p": None,
            "p_holm": None, "different": False}


def anytime_steps(rows: list[dict]) -> list[int]:
    """t = 1, 2, 4, ... up to the longest T among the rows (the steps the anytime ranks are taken at)."""
    longest = max((row["T"] for row in rows), default=1)
    steps, t = [], 1
    while t <= longest:
        steps.append(t)
        t *= 2
    return steps


def at_step(t: int) -> Correctness:
    """Correctness after step t (the last step when the run has fewer)."""
    def read(samples: dict) -> np.ndarray | None:
        by_step = per_sample.correct_by_step(samples)
        return by_step[min(t, len(by_step)) - 1] if len(by_step) else None
    return read


def board_comparisons(rows: list[dict]) -> dict[str, Any]:
    """The board's three compared quantities (module docstring), each `compare`'s result with the
    rows' means it ranked, keyed "accuracy", "corruption_accuracy" and "anytime" ({t: ...})."""
    accuracy = compare(rows, per_sample.correct)
    robust_rows = [row for row in rows if row["corruption_accuracy"][0] == row["corruption_accuracy"][0]]
    corruption = compare(robust_rows, per_sample.robust_correct)
    corruption["labels"] = [row["label"] + f"|T={row['T']}" for row in robust_rows]
    anytime = {}
    for t in anytime_steps(rows):
        read = at_step(t)
        means = [100 * float(np.mean([read(r["samples"]).mean() for r in row["records"] if r.get("samples")]))
                 if any(r.get("samples") for r in row["records"]) else float("nan") for row in rows]
        anytime[t] = {**compare(rows, read), "means": means}
    return {"accuracy": accuracy, "corruption_accuracy": corruption, "anytime": anytime}
