"""The one aggregation: records collapse over their seeds into rows, one row per group (by default
(method, variant, T)), every metric of SUMMARY_METRICS as (mean, sample std with ddof = 1, half-width
of the 95 % confidence interval of the mean: t_{0.975, n−1}·std/√n) over the group's seeds; nan
where undefined (std and interval of one seed). Every table, plot and comparison of the
reports is built from these rows (benchmark.results.series, benchmark.results.summary).
"""

from __future__ import annotations

import math
import re
import statistics
from typing import Any, Callable, Iterable

from benchmark.results.statistics import mean_ci

NAN = float("nan")
RUN_KEY: Callable[[dict], tuple] = lambda record: (record["method"], record["variant"], record["T"])  # noqa: E731

Stat = tuple[float, float]


def row_label(method: str, variant: str) -> str:
    """`method`, or `method (variant)`: the name of a leaderboard row."""
    return f"{method} ({variant})" if variant else method


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def mean_std_ci(values: Iterable[float | None]) -> tuple[float, float, float]:
    """(mean, sample std, half-width of the 95 % t-interval of the mean) of the values (None left out)."""
    present = [float(value) for value in values if value is not None]
    mean, low, _ = mean_ci(present)
    std = statistics.stdev(present) if len(present) > 1 else NAN
    return mean, std, (mean - low) if len(present) > 1 else NAN


def mean_std(values: Iterable[float | None]) -> Stat:
    """(mean, sample std, ddof = 1) of the values given (None left out); nan where undefined."""
    present = [float(value) for value in values if value is not None]
    if not present:
        return NAN, NAN
    return statistics.fmean(present), statistics.stdev(present) if len(present) > 1 else NAN


# Per-seed values summarize() averages: key -> value of one record (None: not measured).
SUMMARY_METRICS: dict[str, Callable[[dict], float | None]] = {
    "accuracy": lambda r: 100 * r["accuracy"],
    "val_accuracy": lambda r: None if r.get("val_accuracy") is None else 100 * r["val_accuracy"],
    "decision_step": lambda r: r["decision_step"]["mean"],
    "spikes": lambda r: r["spikes_per_sample"],
    "bits": lambda r: r.get("bits_per_sample"),
    "acs": lambda r: r["ops"]["acs"],
    "macs": lambda r: r["ops"]["macs"],
    "dense": lambda r: r["ops"].get("dense"),
    "tier1_pj": lambda r: r["energy"]["tier1_pj"],
    "tier2_pj": lambda r: r["energy"].get("tier2_pj"),
    "corruption_accuracy": lambda r: None if not r.get("robustness") else 100 * r["robustness"]["mean_accuracy"],
    "relative_error": lambda r: (r.get("robustness") or {}).get("relative_error"),
    "params": lambda r: r.get("params"),
    "train_seconds": lambda r: r.get("train_seconds"),
    "epochs": lambda r: (r.get("budget") or {}).get("epochs"),
    "int8_accuracy": lambda r: _fixed_point(r, "int8", "accuracy"),
    "int4_accuracy": lambda r: _fixed_point(r, "int4", "accuracy"),
    "fp32_deploy_accuracy": lambda r: _fixed_point(r, "fp32", "accuracy"),
    "int8_tier1_pj": lambda r: _fixed_point(r, "int8", "tier1_pj", scale=1.0),
    "optimizer_steps": lambda r: (r.get("budget") or {}).get("optimizer_steps"),
}


def _fixed_point(record: dict, bits: str, key: str, scale: float = 100.0) -> float | None:
    """A value of the record's fixed-point evaluation (spikecode export), accuracies in %."""
    value = ((record.get("deployment") or {}).get("fixed_point") or {}).get(bits, {}).get(key)
    return None if value is None else scale * value


def summarize(records: list[dict], by: Callable[[dict], tuple] = RUN_KEY) -> list[dict]:
    """One entry per group of `records` with the same `by(record)`, in the order first met: "key",
    "method", "variant", "T", "label", "family" (of the group's first record), "records" (one per
    seed), "seeds" and, for every key of SUMMARY_METRICS, (mean, std, CI half-width) over the group."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault(by(record), []).append(record)
    return [{
        "key": key, "method": members[0]["method"], "variant": members[0]["variant"], "T": members[0]["T"],
        "label": row_label(members[0]["method"], members[0]["variant"]), "family": members[0].get("family", ""),
        "records": members, "seeds": [r["seed"] for r in members],
        **{name: mean_std_ci(value(r) for r in members) for name, value in SUMMARY_METRICS.items()},
        "anytime": anytime_curve(members),
        "portable": portable_cell([(r.get("deployment") or {}).get("portable", "") for r in members]),
    } for key, members in groups.items()]


_PERCENT = re.compile(r"(\d+(?:\.\d+)?) %")


def portable_cell(texts: list[str]) -> str:
    """One "portable (NIR)" cell for a row's seeds. Their texts differ only in the measured agreements
    when the seeds export alike; then the text is given once, each agreement as its range over the
    seeds ("90.8–91.0 %"). Texts that differ in more than numbers are all given, once each."""
    texts = [text for text in texts if text]
    templates = {_PERCENT.sub("{} %", text) for text in texts}
    if len(templates) != 1:
        return "; ".join(dict.fromkeys(texts))
    columns = zip(*(map(float, _PERCENT.findall(text)) for text in texts))
    ranges = [f"{low:.1f}" if low == high else f"{low:.1f}–{high:.1f}" for low, high in ((min(c), max(c)) for c in columns)]
    return templates.pop().format(*ranges)


def anytime_curve(records: list[dict]) -> list[Stat]:
    """(mean, std) over the records of the accuracy (%) after each step t = 1..T (their `anytime`
    curves, which share T within a row); empty when none was recorded."""
    curves = [r["anytime"]["accuracy"] for r in records if r.get("anytime")]
    if not curves:
        return []
    return [mean_std(100 * curve[t] for curve in curves if t < len(curve)) for t in range(max(map(len, curves)))]


def by_dataset_profile(records: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        groups.setdefault((record["dataset"], record["profile"]), []).append(record)
    return groups
