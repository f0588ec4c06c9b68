"""The corruption error of a run relative to a baseline run of the same dataset (Hendrycks & Dietterich,
"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations", ICLR 2019, §3; there
normalised by AlexNet, here by the baseline declared as `run.baseline` in params.yaml).

From two robustness records (benchmark.run.robustness), A(c, s) the accuracy under corruption c at
severity s and E = 1 − A:

    CE_c = Σ_s E_method(c, s) / Σ_s E_baseline(c, s)
    relative_corruption_error = mCE = (1/|C|) Σ_c CE_c

and their "relative mCE", which discounts each model's clean error E_clean:

    relative_mce = (1/|C|) Σ_c Σ_s (E_method(c, s) − E_method,clean) / Σ_s (E_baseline(c, s) − E_baseline,clean)

Values below 1 mean the method degrades less than the baseline.
"""

from __future__ import annotations

from typing import Any, Mapping

from benchmark.contract.errors import ConfigError, SpikeCodeError


def relative_corruption_error(record: Mapping[str, Any], baseline_record: Mapping[str, Any]) -> float:
    """mCE of `record` relative to `baseline_record` (Hendrycks & Dietterich, ICLR 2019):
    mean over the record's corruptions c of Σ_s (1 − A_method(c, s)) / Σ_s (1 − A_baseline(c, s))."""
    ratios = []
    for name, method_errors, baseline_errors in _paired_errors(record, baseline_record):
        denominator = sum(baseline_errors)
        if denominator <= 0:
            raise SpikeCodeError(f"relative corruption error undefined for {name!r}: the baseline makes no "
                                 "error at any severity; evaluate on more samples or drop this corruption")
        ratios.append(sum(method_errors) / denominator)
    return sum(ratios) / len(ratios)


def relative_mce(record: Mapping[str, Any], baseline_record: Mapping[str, Any]) -> float:
    """Relative mCE (Hendrycks & Dietterich, ICLR 2019): the corruption errors minus each model's
    clean error, mean over corruptions of Σ_s (E_m(c, s) − E_m,clean) / Σ_s (E_b(c, s) − E_b,clean)."""
    for which, rec in (("record", record), ("baseline record", baseline_record)):
        if "clean_accuracy" not in rec:
            raise ConfigError(f"relative_mce needs clean_accuracy in the {which}; "
                              "evaluate it with include_clean=True")
    clean_method, clean_baseline = 1 - record["clean_accuracy"], 1 - baseline_record["clean_accuracy"]
    ratios = []
    for name, method_errors, baseline_errors in _paired_errors(record, baseline_record):
        denominator = sum(e - clean_baseline for e in baseline_errors)
        if denominator == 0:
            raise SpikeCodeError(f"relative mCE undefined for {name!r}: the baseline's error under it equals "
                                 "its clean error")
        ratios.append(sum(e - clean_method for e in method_errors) / denominator)
    return sum(ratios) / len(ratios)


def _paired_errors(record: Mapping[str, Any],
                   baseline_record: Mapping[str, Any]) -> list[tuple[str, list[float], list[float]]]:
    method_rows, baseline_rows = record["per_corruption"], baseline_record["per_corruption"]
    if not method_rows:
        raise ConfigError("the robustness record has no corruptions to compare")
    missing = [name for name in method_rows if name not in baseline_rows]
    if missing:
        raise ConfigError(f"the baseline record lacks corruption(s) {', '.join(missing)}; evaluate the baseline "
                          f"on the same corruptions (it has: {', '.join(baseline_rows) or 'none'})")
    pairs = []
    for name, row in method_rows.items():
        base = baseline_rows[name]
        if len(row["accuracy"]) != len(base["accuracy"]) or row.get("severities") != base.get("severities"):
            raise ConfigError(f"corruption {name!r}: record and baseline were evaluated at different severities "
                              f"({row.get('severities')} vs {base.get('severities')})")
        pairs.append((name, [1 - a for a in row["accuracy"]], [1 - a for a in base["accuracy"]]))
    return pairs
