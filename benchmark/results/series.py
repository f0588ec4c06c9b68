"""Series over many runs: accuracy-vs-T sweeps, a grid's points and main effects, and the conversion
methods' accuracy-vs-spikes curves compared at matched accuracy.

The matched-accuracy level of an architecture is its baseline's mean accuracy (the method declared
as `run.baseline`) less MATCH_MARGIN_PP.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from benchmark.results.aggregate import mean_std, row_label, summarize

MATCH_MARGIN_PP = 0.5  # matched accuracy: within 0.5 pp of the baseline of the same dataset, profile and arch


def grid_axes(records: list[dict]) -> list[str]:
    """The settings that vary across a grid's records (its axes): `arch` when the architecture does,
    then the hyperparameters in their declared order, then T when it varies and is not one of them."""
    keys = list(dict.fromkeys(key for record in records for key in record.get("hyperparameters", {})))
    axes = [key for key in keys
            if len({json.dumps(r.get("hyperparameters", {}).get(key), sort_keys=True) for r in records}) > 1]
    if "T" not in axes and len({record["T"] for record in records}) > 1:
        axes.append("T")
    return (["arch"] if len({record.get("arch") for record in records}) > 1 else []) + axes


def axis_value(record: dict, axis: str) -> Any:
    """A record's value on a grid axis: its hyperparameter (its T when T is not one; its architecture's
    name for an `arch` axis)."""
    fallback = {"T": record["T"], "arch": record.get("arch")}.get(axis)
    return record.get("hyperparameters", {}).get(axis, fallback)


def t_sweeps(records: list[dict], grids: dict[str, list[dict]] | None = None) -> list[dict]:
    """Accuracy-vs-T series with two or more T values: leaderboard rows of one method that differ
    only in T, and grids whose axes include T (one series per combination of the other axes).
    Each is {"series", "dataset", "profile", "method", "source", "points": [(T, mean, std, n)]}."""
    series: dict[tuple, list[dict]] = {}
    for record in records:
        rest = ",".join(part for part in record["variant"].split(",") if part and not part.startswith("T="))
        key = (record["dataset"], record["profile"], record["method"], "leaderboard", row_label(record["method"], rest))
        series.setdefault(key, []).append(record)
    for grid, members in (grids or {}).items():
        axes = grid_axes(members)
        if "T" not in axes:
            continue
        others = [axis for axis in axes if axis != "T"]
        for record in members:
            rest = ",".join(f"{axis}={axis_value(record, axis)}" for axis in others)
            name = f"{grid}: {row_label(record['method'], rest)}"
            series.setdefault((record["dataset"], record["profile"], record["method"], f"grid {grid}", name),
                              []).append(record)
    sweeps = []
    for (dataset, profile, method, source, name), members in series.items():
        by_T: dict[int, list[float]] = {}
        for record in members:
            by_T.setdefault(record["T"], []).append(100 * record["accuracy"])
        if len(by_T) > 1:
            points = [(T, *mean_std(values), len(values)) for T, values in sorted(by_T.items())]
            sweeps.append({"series": name, "dataset": dataset, "profile": profile, "method": method,
                           "source": source, "points": points})
    return sweeps


def grid_points(axes: list[str], records: list[dict]) -> list[dict]:
    """A grid's points: `summarize` grouped by dataset, profile and the axis values, each row with
    "point" (the axis values, in `axes` order), sorted by the axis values."""
    rows = summarize(records, by=lambda record: (record["dataset"], record["profile"],
                                                  *(json.dumps(axis_value(record, axis), sort_keys=True)
                                                    for axis in axes)))
    for row in rows:
        row["point"] = [axis_value(row["records"][0], axis) for axis in axes]
    return sorted(rows, key=lambda row: [_sortable(value) for value in row["point"]])


def _sortable(value: Any) -> tuple:
    """A sort key that orders one axis's values as a table column: numbers by value, then text."""
    if isinstance(value, (bool, int, float)):
        return (0, float(value), "")
    return (1, 0.0, json.dumps(value, sort_keys=True) if not isinstance(value, str) else value)


def chosen_point(points: list[dict]) -> int | None:
    """The index of the point chosen on validation: the highest mean validation accuracy (the first of
    equals), never the test accuracy; None when no point has a validation accuracy."""
    scored = [(point["val_accuracy"][0], -index) for index, point in enumerate(points)
              if point.get("val_accuracy") and point["val_accuracy"][0] == point["val_accuracy"][0]]
    return -max(scored)[1] if scored else None


def main_effects(axes: list[str], points: list[dict]) -> list[dict]:
    """For every axis of two or more values and each of its values: the mean validation accuracy over
    all the other axes' combinations, its gap to the axis's best value, and the number of points
    (an ablation's summary, ranked on validation as every choice is)."""
    effects = []
    for index, axis in enumerate(axes):
        values: dict[str, list[float]] = {}
        shown: dict[str, Any] = {}
        for point in points:
            key = json.dumps(point["point"][index], sort_keys=True)
            values.setdefault(key, []).append(point["val_accuracy"][0])
            shown[key] = point["point"][index]
        if len(values) < 2:
            continue
        means = {key: statistics.fmean(accuracies) for key, accuracies in values.items()}
        best = max(means.values())
        effects += [{"axis": axis, "value": shown[key], "mean_val_accuracy": mean, "vs_best": mean - best,
                     "points": len(values[key])} for key, mean in means.items()]
    return effects


# --- accuracy vs spikes/sample, conversion methods (compared at matched accuracy) ----------------


def spike_curves(records: list[dict], grids: dict[str, list[dict]] | None = None) -> list[dict]:
    """Accuracy-vs-spikes/sample series of the conversion methods (records of family "conversion"):
    each grid whose axes include T gives a series per combination of its other axes (as `t_sweeps`;
    series of one point are left out), and each leaderboard row not already in a grid series a
    series of its own, grouped by method and variant less T.
    Each is {"series", "dataset", "profile", "arch", "method", "source",
    "points": [(spikes/sample mean, accuracy mean (%), accuracy std, T, seeds)]}, points by spikes."""
    series: dict[tuple, list[dict]] = {}
    for grid, members in (grids or {}).items():
        members = [record for record in members if record.get("family") == "conversion"]
        axes = grid_axes(members)
        if "T" not in axes:
            continue
        found: dict[tuple, list[dict]] = {}
        for record in members:
            rest = ",".join(f"{axis}={axis_value(record, axis)}" for axis in axes if axis != "T")
            key = (record["dataset"], record["profile"], record.get("arch"), record["method"], f"grid {grid}",
                   f"{grid}: {row_label(record['method'], rest)}")
            found.setdefault(key, []).append(record)
        series.update({key: rs for key, rs in found.items() if len({r["T"] for r in rs}) > 1})

    def point_key(record: dict) -> tuple:
        return record["dataset"], record["profile"], record["method"], record["variant"], record["T"]

    covered = {point_key(record) for members in series.values() for record in members}
    for record in records:
        if record.get("family") != "conversion" or point_key(record) in covered:
            continue
        rest = ",".join(part for part in record["variant"].split(",") if part and not part.startswith("T="))
        key = (record["dataset"], record["profile"], record.get("arch"), record["method"], "leaderboard",
               row_label(record["method"], rest))
        series.setdefault(key, []).append(record)
    curves = []
    for (dataset, profile, arch, method, source, name), members in series.items():
        by_T: dict[int, list[dict]] = {}
        for record in members:
            by_T.setdefault(record["T"], []).append(record)
        points = sorted((mean_std(r["spikes_per_sample"] for r in rs)[0], *mean_std(100 * r["accuracy"] for r in rs),
                         T, len(rs)) for T, rs in by_T.items())
        curves.append({"series": name, "dataset": dataset, "profile": profile, "arch": arch, "method": method,
                       "source": source, "points": points})
    return curves


def matched_levels(records: list[dict], grids: dict[str, list[dict]] | None, baseline: str) -> dict[str, float]:
    """{arch: its matched-accuracy level (%)}: the `baseline` method's mean accuracy on that
    architecture less MATCH_MARGIN_PP. The baseline is the `records`' runs of that method; for an
    architecture only the grids convert, the baseline source their conversions were converted from
    (`converted_from`). Pass one dataset and profile's records and grids."""
    baselines: dict[str, list[float]] = {}
    for record in records:
        if record["method"] == baseline:
            baselines.setdefault(record.get("arch"), []).append(100 * record["accuracy"])
    sources: dict[str, set[float]] = {}
    for record in (record for members in (grids or {}).values() for record in members):
        source = record.get("converted_from")
        if source and source["method"] == baseline and source["arch"] not in baselines:
            sources.setdefault(source["arch"], set()).add(100 * source["accuracy"])
    baselines.update({arch: sorted(values) for arch, values in sources.items()})
    return {arch: statistics.fmean(values) - MATCH_MARGIN_PP for arch, values in baselines.items()}


def matched_points(curves: list[dict], levels: dict[str, float]) -> dict[str, tuple | None]:
    """{series: its point with the fewest spikes/sample among those at or above its architecture's
    level, or None (also when its architecture has no level)}."""
    return {curve["series"]: min((p for p in curve["points"] if curve["arch"] in levels and p[1] >= levels[curve["arch"]]),
                                 default=None) for curve in curves}


