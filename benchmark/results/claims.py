"""The seed papers' claims, tested over the records: each claim of params.yaml `claims:` gets a verdict.

A claim's test (benchmark.run.config.ClaimTest) reads a metric of one selection of records, `a`, and
optionally of another, `b` (a board's row, a grid's point, a resolution sweep's method, a benchmark of
reports/perf.json), and holds d = metric(a) − metric(b) (or metric(a)) against a threshold t:

    greater   holds when the 95 % interval of d lies above t, fails when it lies at or below t
    less      holds when it lies below t, fails when it lies at or above t
    within    holds when it lies inside (−t, t), fails when it lies at or beyond ±t
    otherwise inconclusive: the interval spans the threshold

The interval of d:
    accuracy, corruption_accuracy, resolution_shift   the paired hierarchical bootstrap over the seeds
                        the sides share and their test samples (benchmark.results.statistics); one side
                        alone: the same bootstrap of its accuracy
    decision_step, steps_to_baseline, spikes, bits, energy_tier1, energy_tier2
                        Student's t over seeds: of the per-seed differences when the sides share their
                        seeds, else Welch's difference of means with min(n_a, n_b) − 1 degrees of
                        freedom; one seed gives no interval (inconclusive)
    training_memory_growth   bytes of training memory per added time step, one deterministic
                        measurement of `make bench` (reports/perf.json): its interval is the value

A selection with `resolution: [NAME, ...]` and `at: k` reads, as records, the models those temporal-
resolution sweeps trained and ran at Δt/k (benchmark.sweeps.resolution, "retrained"): one per sweep's seed,
with its per-sample correctness and spikes per sample, so sweeps that differ only in `seed` give a claim
at Δt/k its seeds. A selection with `severity: NAME` reads that Gaussian-noise severity sweep's records
(benchmark.sweeps.severity): its corruption_accuracy is the mean over the sweep's σ levels, on the whole
test set. A selection with `choose: validation` takes, of the grid points its `point` matches, the one whose
mean validation accuracy is highest (the test set never chooses).

steps_to_baseline of a run: the first step t at which its anytime accuracy reaches the board baseline's
mean accuracy − 1 pp; a run that never does counts T + 1. resolution_shift: accuracy at Δt/k minus at
Δt of the runs trained at Δt, for every k of the sweep; the verdict is that of the k whose interval is
least favourable (a claim of insensitivity must hold at every k).

A claim whose records are missing is "not tested", naming what to run; one declared `not_tested`
keeps its stated reason. Every verdict lists the record ids it read (the site links them).
"""

from __future__ import annotations

import math
import statistics as stats
from typing import Any, Callable

import numpy as np

from benchmark.contract.io import unpack_bits
from benchmark.results import samples as per_sample
from benchmark.results.aggregate import row_label
from benchmark.results.series import axis_value
from benchmark.results.statistics import bootstrap_accuracies, bootstrap_difference, seed_draws, t_quantile

HOLDS, FAILS, INCONCLUSIVE, NOT_TESTED = "holds", "fails", "inconclusive", "not tested"
UNITS = {"accuracy": "pp", "corruption_accuracy": "pp", "resolution_shift": "pp", "decision_step": "steps",
         "steps_to_baseline": "steps", "spikes": "spikes/sample", "bits": "bits/sample", "energy_tier1": "pJ",
         "energy_tier2": "pJ", "training_memory_growth": "bytes/step"}
PER_SEED: dict[str, Callable[[dict], float | None]] = {
    "decision_step": lambda r: r["decision_step"]["mean"],
    "spikes": lambda r: r["spikes_per_sample"],
    "bits": lambda r: r.get("bits_per_sample"),
    "energy_tier1": lambda r: r["energy"]["tier1_pj"],
    "energy_tier2": lambda r: r["energy"].get("tier2_pj"),
}
SAMPLED: dict[str, Callable[[dict], np.ndarray | None]] = {
    "accuracy": per_sample.correct,
    "corruption_accuracy": per_sample.robust_correct,
}


class Missing(Exception):
    """The records a claim needs are not there (the message names what to run)."""


def judge(low: float, high: float, direction: str, threshold: float) -> str:
    """The verdict of an interval [low, high] of d against the threshold (module docstring)."""
    if direction == "greater":
        return HOLDS if low > threshold else FAILS if high <= threshold else INCONCLUSIVE
    if direction == "less":
        return HOLDS if high < threshold else FAILS if low >= threshold else INCONCLUSIVE
    if -threshold < low and high < threshold:
        return HOLDS
    return FAILS if low >= threshold or high <= -threshold else INCONCLUSIVE


def evaluate_claims(claims: list[dict], sources: dict[str, Any], ids: dict[int, str]) -> list[dict]:
    """The verdict of every claim (dicts of benchmark.run.config.Claim). `sources`: "records" (the
    boards'), "grids" {name: records}, "resolution" {name: results}, "perf" (reports/perf.json or None),
    "profile" (the default profile of a selection), "baseline" (the method of steps_to_baseline);
    `ids`: record id by id(record)."""
    return [_verdict(claim, sources, ids) for claim in claims]


def _verdict(claim: dict, sources: dict[str, Any], ids: dict[int, str]) -> dict:
    entry = {key: claim.get(key) for key in ("id", "paper", "claim", "dataset", "reference", "note")}
    test = claim.get("test")
    if test is None:
        return {**entry, "verdict": NOT_TESTED, "reason": claim["not_tested"], "runs": []}
    entry.update(metric=test["metric"], unit=UNITS[test["metric"]], direction=test["direction"],
                 threshold=test["threshold"], a=_describe(test["a"]), b=_describe(test["b"]) if test["b"] else None)
    try:
        measured = MEASURES[_kind(test["metric"])](claim, test, sources)
    except Missing as missing:
        return {**entry, "verdict": NOT_TESTED, "reason": str(missing), "runs": []}
    verdict = judge(measured["ci_low"], measured["ci_high"], test["direction"], test["threshold"]) \
        if not math.isnan(measured["ci_low"]) else INCONCLUSIVE
    reason = measured.pop("reason", "") or ("the interval spans the threshold" if verdict == INCONCLUSIVE else "")
    runs = [ids[id(record)] for record in measured.pop("records", []) if id(record) in ids]
    return {**entry, **measured, "verdict": verdict, "reason": reason, "runs": runs}


def _kind(metric: str) -> str:
    return "sampled" if metric in SAMPLED else metric if metric in ("resolution_shift", "training_memory_growth") \
        else "steps_to_baseline" if metric == "steps_to_baseline" else "per_seed"


def _describe(side: dict) -> str:
    """How the claims table names a selection."""
    label = row_label(side["method"], side.get("variant") or "")
    where = [f"grid {side['grid']}"] if side.get("grid") else []
    where += [f"{key}={value}" for key, value in (side.get("point") or {}).items()]
    where += [f"T={side['T']}"] if side.get("T") else []
    where += [f"resolution {', '.join(_sweep_names(side))}"] if side.get("resolution") else []
    where += [f"trained and run at Δt/{side['at']}"] if side.get("at") else []
    where += [f"severity sweep {side['severity']}"] if side.get("severity") else []
    return label + (f" ({', '.join(where)})" if where else "")


# --- selecting records ----------------------------------------------------------------------------


def select(side: dict, claim: dict, sources: dict[str, Any]) -> list[dict]:
    """The records of one (method, variant, T) that `side` names, one per seed; Missing when none, or
    when it names several rows (the default variant is taken when one of them is it)."""
    grid, severity = side.get("grid"), side.get("severity")
    pool = (sources["grids"].get(grid, []) if grid
            else (sources.get("severity", {}).get(severity) or {}).get("records", []) if severity
            else resolution_records(side, sources) if side.get("at")
            else sources["records"])
    dataset, profile = side.get("dataset") or claim["dataset"], side.get("profile") or sources["profile"]
    found = [r for r in pool if (r["dataset"], r["profile"], r["method"]) == (dataset, profile, side["method"])
             and (side.get("variant") is None or r["variant"] == side["variant"])
             and (side.get("T") is None or r["T"] == side["T"])
             and all(axis_value(r, key) == value for key, value in (side.get("point") or {}).items())]
    groups: dict[tuple, list[dict]] = {}
    for record in found:
        groups.setdefault((record["variant"], record["T"]), []).append(record)
    if side.get("choose") == "validation" and groups:
        return max(groups.values(), key=lambda members: stats.fmean(r.get("val_accuracy") or 0.0 for r in members))
    if not groups:
        where = (f"grid {grid} (run `spikecode grid {grid}`)" if grid
                 else f"resolution {', '.join(_sweep_names(side))}" if side.get("at")
                 else f"severity sweep {severity} (run `spikecode severity {severity}`)" if severity
                 else f"the {dataset} ({profile}) board")
        raise Missing(f"no records of {_describe(side)} on {dataset} ({profile}) in {where}")
    if len(groups) > 1:
        defaults = [key for key in groups if key[0] == ""]
        if len(defaults) != 1:
            rows = ", ".join(f"{variant or 'default'} T={T}" for variant, T in groups)
            raise Missing(f"{_describe(side)} matches several rows ({rows}); name the variant or T in the claim")
        return groups[defaults[0]]
    return next(iter(groups.values()))


def resolution_records(side: dict, sources: dict[str, Any]) -> list[dict]:
    """The models the side's resolution sweeps trained and ran at Δt/`at`, as records: one per sweep
    (its seed), with the fields `select` and the measures read. Missing names the sweep to run."""
    records = []
    for name in _sweep_names(side):
        results = sources["resolution"].get(name)
        if results is None or side["method"] not in results.get("methods", {}):
            raise Missing(f"no resolution sweep {name} with {side['method']} (run `spikecode resolution {name}`)")
        entry, sweep, k = results["methods"][side["method"]], results["sweep"], str(side["at"])
        if k not in entry.get("retrained", {}):
            raise Missing(f"resolution sweep {name} kept no per-sample results of its models trained at Δt/{k} "
                          f"(re-run `spikecode resolution {name}`)")
        run = entry["retrained"][k]
        records.append({"dataset": sweep["dataset"], "profile": results.get("profile"), "method": side["method"],
                        "variant": "", "T": entry["hyperparameters"][k]["T"], "seed": sweep["seed"],
                        "hyperparameters": entry["hyperparameters"][k], "accuracy": run["accuracy"],
                        "spikes_per_sample": run["spikes_per_sample"],
                        "samples": {"n": sweep["test_samples"], "correct": run["correct"]}})
    return records


def _sweep_names(side: dict) -> list[str]:
    names = side.get("resolution") or []
    return [names] if isinstance(names, str) else list(names)


# --- the measures ---------------------------------------------------------------------------------


def _sampled(claim: dict, test: dict, sources: dict[str, Any]) -> dict:
    """Accuracy-like metrics: the paired hierarchical bootstrap over shared seeds and test samples."""
    read = SAMPLED[test["metric"]]
    sides = [select(test["a"], claim, sources)] + ([select(test["b"], claim, sources)] if test["b"] else [])
    flags = [{r["seed"]: read(r["samples"]) for r in side if r.get("samples") and read(r["samples"]) is not None}
             for side in sides]
    seeds = sorted(set.intersection(*(set(found) for found in flags)))
    if not seeds:
        raise Missing(f"no per-sample results on shared seeds for {test['metric']} (re-run the evaluate and "
                      "robustness stages of the records named)")
    sizes = {found[s].shape[0] for found in flags for s in seeds}
    if len(sizes) > 1:
        raise Missing(f"the two sides were tested on different sample counts {sorted(sizes)}: they cannot be paired")
    columns = np.stack([found[s] for found in flags for s in seeds], axis=1)
    accuracies = 100 * bootstrap_accuracies(columns)
    means = [100 * float(np.mean([found[s].mean() for s in seeds])) for found in flags]
    n = len(seeds)
    if len(sides) == 2:
        result = bootstrap_difference(accuracies[:, :n], accuracies[:, n:], means[0] - means[1], seed_draws(n))
    else:
        replicates = np.take_along_axis(accuracies, seed_draws(n), axis=1).mean(axis=1)
        low, high = np.percentile(replicates, [2.5, 97.5])
        result = {"difference": means[0], "ci_low": float(low), "ci_high": float(high)}
    return {"a_value": means[0], "b_value": means[1] if len(means) > 1 else None, "value": result["difference"],
            "ci_low": result["ci_low"], "ci_high": result["ci_high"], "seeds": seeds, "samples": sizes.pop(),
            **_sweep_source(test), "records": [r for side in sides for r in side if r["seed"] in seeds]}


def _sweep_source(test: dict) -> dict:
    """{"source": the severity or resolution sweeps' results files} when a side reads them (their records
    have no ids)."""
    sides = [side for side in (test["a"], test["b"]) if side]
    files = sorted({f"reports/severity/{side['severity']}/results.json" for side in sides if side.get("severity")}
                   | {f"reports/resolution/{name}/results.json" for side in sides if side.get("at")
                      for name in _sweep_names(side)})
    return {"source": ", ".join(files)} if files else {}


def _per_seed(claim: dict, test: dict, sources: dict[str, Any], value: Callable[[dict], float | None] | None = None,
              ) -> dict:
    """Metrics with one value per seed: Student's t over seeds (module docstring)."""
    value = value or PER_SEED[test["metric"]]
    sides = [select(test["a"], claim, sources)] + ([select(test["b"], claim, sources)] if test["b"] else [])
    values = [{r["seed"]: value(r) for r in side if value(r) is not None} for side in sides]
    if not all(values):
        raise Missing(f"{test['metric']} is not recorded for {_describe(test['a'] if not values[0] else test['b'])}")
    shared = sorted(set.intersection(*(set(v) for v in values)))
    if len(sides) == 1:
        observed, low, high = _t_interval(list(values[0].values()))
    elif shared and len(shared) == len(values[0]) == len(values[1]):
        observed, low, high = _t_interval([values[0][s] - values[1][s] for s in shared])
    else:
        observed, low, high = _welch(list(values[0].values()), list(values[1].values()))
    means = [stats.fmean(v.values()) for v in values]
    seeds = sorted(set().union(*(set(v) for v in values)))
    return {"a_value": means[0], "b_value": means[1] if len(means) > 1 else None, "value": observed,
            "ci_low": low, "ci_high": high, "seeds": seeds, "samples": None,
            "reason": "one seed: no interval" if math.isnan(low) else "", **_sweep_source(test),
            "records": [r for side in sides for r in side]}


def _t_interval(values: list[float]) -> tuple[float, float, float]:
    mean = stats.fmean(values)
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = t_quantile(len(values) - 1) * stats.stdev(values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def _welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    difference = stats.fmean(a) - stats.fmean(b)
    if min(len(a), len(b)) < 2:
        return difference, math.nan, math.nan
    half = t_quantile(min(len(a), len(b)) - 1) * math.sqrt(stats.variance(a) / len(a) + stats.variance(b) / len(b))
    return difference, difference - half, difference + half


def _steps_to_baseline(claim: dict, test: dict, sources: dict[str, Any]) -> dict:
    """Per seed, the first step reaching the baseline's mean accuracy − 1 pp (T + 1 when none does)."""
    baseline = select({"method": sources["baseline"], "variant": ""}, claim, sources)
    level = 100 * stats.fmean(r["accuracy"] for r in baseline) - 1.0

    def first_step(record: dict) -> float | None:
        curve = (record.get("anytime") or {}).get("accuracy")
        if not curve:
            return None
        return float(next((t for t, accuracy in enumerate(curve, start=1) if 100 * accuracy >= level), len(curve) + 1))

    measured = _per_seed(claim, test, sources, first_step)
    measured["records"] += baseline
    return {**measured, "level": level}


def _resolution_shift(claim: dict, test: dict, sources: dict[str, Any]) -> dict:
    """Accuracy at Δt/k − at Δt of the runs trained at Δt, bootstrapped over seeds and samples; the k
    least favourable to the claim."""
    side = test["a"]
    name = side.get("resolution")
    results = sources["resolution"].get(name)
    if results is None or side["method"] not in results.get("methods", {}):
        raise Missing(f"no resolution sweep {name} with {side['method']} (run `spikecode resolution {name}`)")
    at_dt = results["methods"][side["method"]].get("at_dt")
    if not at_dt:
        raise Missing(f"resolution sweep {name} kept no per-sample results (re-run `spikecode resolution {name}`)")
    seeds = sorted(at_dt, key=int)
    samples = results["sweep"]["test_samples"]
    factors = [k for k in results["sweep"]["factors"] if k != 1]
    worst = None
    for k in factors:
        columns = [unpack_bits(at_dt[s][key]["correct"], samples) for key in (str(k), "1") for s in seeds]
        accuracies = 100 * bootstrap_accuracies(np.stack(columns, axis=1))
        n = len(seeds)
        observed = 100 * float(np.mean([at_dt[s][str(k)]["accuracy"] - at_dt[s]["1"]["accuracy"] for s in seeds]))
        result = {**bootstrap_difference(accuracies[:, :n], accuracies[:, n:], observed, seed_draws(n)), "k": k}
        rank = {HOLDS: 0, INCONCLUSIVE: 1, FAILS: 2}[judge(result["ci_low"], result["ci_high"], test["direction"],
                                                          test["threshold"])]
        if worst is None or (rank, abs(observed)) > worst[0]:
            worst = ((rank, abs(observed)), result)
    result = worst[1]
    return {"a_value": None, "b_value": None, "value": result["difference"], "ci_low": result["ci_low"],
            "ci_high": result["ci_high"], "seeds": [int(s) for s in seeds], "samples": samples,
            "at": f"Δt/{result['k']}", "source": f"reports/resolution/{name}/results.json", "records": []}


def _training_memory_growth(claim: dict, test: dict, sources: dict[str, Any]) -> dict:
    """Bytes of training memory per added time step, from `make bench` (reports/perf.json)."""
    side = test["a"]
    label = " ".join([side["method"], *(str(v) for v in (side.get("point") or {}).values())])
    perf = sources.get("perf") or {}
    for result in perf.get("results", []):
        growth = result.get("growth_bytes_per_step")
        if isinstance(growth, dict) and label in growth:
            value = float(growth[label])
            return {"a_value": value, "b_value": None, "value": value, "ci_low": value, "ci_high": value,
                    "seeds": [], "samples": None, "source": f"reports/perf.json ({result.get('test', '')})",
                    "records": []}
    raise Missing(f"reports/perf.json has no training-memory benchmark of {label!r} (run `make bench`)")


MEASURES = {"sampled": _sampled, "per_seed": _per_seed, "steps_to_baseline": _steps_to_baseline,
            "resolution_shift": _resolution_shift, "training_memory_growth": _training_memory_growth}
