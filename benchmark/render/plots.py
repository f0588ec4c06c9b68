"""Plots: every figure of the reports and the site, drawn from the summaries of
benchmark.results.aggregate (matplotlib, PNG bytes). Nothing is computed here but the drawing.

    board_plots            accuracy vs energy per tier (Pareto front ringed), vs decision step, vs
                           severity per corruption family, the decision-step shift of the early-exit
                           methods, accuracy vs T, the conversion methods' accuracy vs spikes/sample
    plot_accuracy_vs_T     accuracy against T, a line per sweep (a board's, or a method's)
    plot_grid              a grid's points: accuracy vs its first numeric axis, else a bar per point
    plot_resolution        a temporal-resolution sweep: accuracy at Δt/k, trained at Δt and retrained
    plot_resolution_over_seeds  resolution sweeps, one per seed: accuracy and spikes at Δt/k, mean ± std
"""

from __future__ import annotations

import re
from io import BytesIO
from itertools import cycle
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from benchmark.render.tables import PJ_PER_UNIT, stat
from benchmark.results.aggregate import missing
from benchmark.results.series import MATCH_MARGIN_PP
from benchmark.results.summary import pareto_front

MARKERS = "os^Dv<>PX*"
CAPTIONS = {
    "accuracy_vs_energy.png": "Accuracy against energy tier 1 (compute), Pareto front ringed; error bars: one std "
                              "over seeds",
    "accuracy_vs_energy_tier2.png": "Accuracy against energy tier 2 (compute and memory traffic), Pareto front "
                                    "ringed; error bars: one std over seeds",
    "accuracy_vs_decision_step.png": "Accuracy against the mean decision step; error bars: one std over seeds",
    "accuracy_vs_step.png": "Anytime accuracy: each method's readout of its output up to step t, against t; the "
                            "dashed line is the baseline's accuracy less 1 pp; bands: one std over seeds",
    "decision_step_shift.png": "Decision-step shift under corruption, early-exit methods, per corruption family",
    "accuracy_vs_T.png": "Accuracy against the number of time steps T (T sweeps and grids with a T axis)",
    "accuracy_vs_spikes.png": "Conversion methods: accuracy against spikes per sample (T sweeps and leaderboard "
                              "rows), compared at matched accuracy: each series' cheapest point within 0.5 pp of "
                              "the baseline is ringed",
}


def plot_order(name: str) -> tuple:
    """The order of a board's plots on a page: energy, decision step, severity (by family), the
    decision-step shift, accuracy vs T, accuracy vs spikes."""
    order = ["accuracy_vs_energy.png", "accuracy_vs_energy_tier2.png", "accuracy_vs_decision_step.png",
             "accuracy_vs_step.png", "accuracy_vs_severity_", "decision_step_shift.png", "accuracy_vs_T.png",
             "accuracy_vs_spikes.png"]
    position = next((i for i, prefix in enumerate(order) if name.startswith(prefix)), len(order))
    return position, name


def caption(name: str) -> str:
    """The caption of a board plot, by file name."""
    if name.startswith("accuracy_vs_severity_"):
        return f"Accuracy against severity, {name[len('accuracy_vs_severity_'):-4]} corruptions (severity 0: clean)"
    return CAPTIONS[name]


def board_plots(board: dict) -> dict[str, bytes]:
    """The PNG plots of one board summary, by file name (module docstring)."""
    rows, title = [_stats(row) for row in board["rows"]], board["title"]
    plots = {}
    for tier, name in (("tier1_pj", "accuracy_vs_energy.png"), ("tier2_pj", "accuracy_vs_energy_tier2.png")):
        if all(missing(row[tier][0]) for row in rows):
            continue
        unit = board["units"][tier]
        label = f"energy {tier[:5].replace('tier', 'tier ')} ({unit}) per sample, cost model {board['cost_model']}"
        plots[name] = plot_accuracy_vs(rows, tier, label, "log", title, scale=1 / PJ_PER_UNIT[unit], pareto=True)
    plots["accuracy_vs_decision_step.png"] = plot_accuracy_vs(rows, "decision_step", "mean decision step (time steps)",
                                                              "linear", title)
    if any(row["anytime"] for row in board["rows"]):
        plots["accuracy_vs_step.png"] = plot_anytime(board["rows"], board["baseline"], title)
    robust = board["robustness"]["rows"]
    for family in board["robustness"]["families"]:
        plots[f"accuracy_vs_severity_{_file_part(family)}.png"] = plot_severity(robust, family, title)
    if any(row["early_exit"] for row in robust):
        plots["decision_step_shift.png"] = plot_step_shift(robust, board["robustness"]["families"], title)
    if board["sweeps"]:
        plots["accuracy_vs_T.png"] = plot_accuracy_vs_T(board["sweeps"], f"{title}: accuracy vs T")
    if board["spike_curves"]:
        plots["accuracy_vs_spikes.png"] = plot_accuracy_vs_spikes(board["spike_curves"], board["matched_levels"],
                                                                  board["matched"], title)
    return plots


def _stats(row: dict) -> dict:
    """A summary row with its (mean, std) pairs read back as numbers (nan where undefined)."""
    return {key: stat(value) if isinstance(value, list) and len(value) == 2 and key not in ("seeds", "runs")
            else value for key, value in row.items()}


def _file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "_"


def _figure(width: float = 7, height: float = 4.5) -> Figure:
    """A figure with fixed margins (a layout engine doubles the drawing time)."""
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(left=0.6 / width, right=1 - 0.15 / width, bottom=0.55 / height, top=1 - 0.4 / height)
    return figure


def png_bytes(figure: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (every plot of the reports is written through here)."""
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _zero_if_missing(value: float | None) -> float:
    return 0.0 if missing(value) else value


def _number(value: float | None) -> float:
    return float("nan") if value is None else value


def plot_accuracy_vs(rows: list[dict], key: str, x_label: str, x_scale: str, title: str, scale: float = 1.0,
                     pareto: bool = False) -> bytes:
    """Accuracy against summary metric `key` (times `scale`), one labelled marker per row of
    `summarize`, error bars of one sample std over seeds on both axes; with `pareto`, the rows no
    other row beats in both accuracy and `key` are ringed and joined. Returns PNG bytes."""
    figure = _figure()
    axes = figure.subplots()
    shown = [row for row in rows if not missing(row[key][0])]
    for row, marker in zip(shown, cycle(MARKERS)):
        axes.errorbar(row[key][0] * scale, row["accuracy"][0], xerr=_zero_if_missing(row[key][1]) * scale,
                      yerr=_zero_if_missing(row["accuracy"][1]), marker=marker, capsize=3, linestyle="none",
                      label=f"{row['label']}, T={row['T']}")
    if pareto and shown:
        front = [shown[i] for i in pareto_front([(row[key][0], row["accuracy"][0]) for row in shown])]
        xs, ys = [row[key][0] * scale for row in front], [row["accuracy"][0] for row in front]
        axes.plot(xs, ys, linestyle="--", color="0.3", drawstyle="steps-post", linewidth=1, zorder=1)
        axes.scatter(xs, ys, s=220, facecolors="none", edgecolors="crimson", linewidths=1.5, zorder=3,
                     label="Pareto front")
    axes.set(xscale=x_scale, xlabel=x_label, ylabel="accuracy (%)", title=title)
    axes.grid(alpha=0.3)
    if shown:
        axes.legend(fontsize="small")
    return png_bytes(figure)


def plot_anytime(rows: list[dict], baseline: dict, title: str) -> bytes:
    """Accuracy of each row's readout after step t against t (log axis when T reaches 16), a band of
    one std over seeds, and the baseline's accuracy less its margin as a dashed line."""
    figure = _figure()
    axes = figure.subplots()
    for row, marker in zip(rows, cycle(MARKERS)):
        if not row["anytime"]:
            continue
        steps = list(range(1, len(row["anytime"]) + 1))
        means = [_number(mean) for mean, _ in row["anytime"]]
        stds = [_zero_if_missing(std) for _, std in row["anytime"]]
        line = axes.plot(steps, means, marker=marker, markersize=4, label=f"{row['label']}, T={row['T']}")[0]
        axes.fill_between(steps, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                          color=line.get_color(), alpha=0.15, linewidth=0)
    if not missing(baseline["accuracy"]):
        level = baseline["accuracy"] - baseline["anytime_margin_pp"]
        axes.axhline(level, linestyle="--", color="0.3", linewidth=1,
                     label=f"{baseline['method']} − {baseline['anytime_margin_pp']:g} pp = {level:.2f} %")
    if max((len(row["anytime"]) for row in rows), default=0) >= 16:
        axes.set_xscale("log", base=2)
    axes.set(xlabel="time step t (the readout of the output up to t)", ylabel="accuracy (%)",
             title=f"{title}: accuracy after each step")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return png_bytes(figure)


def plot_severity(robust: list[dict], family: str, title: str) -> bytes:
    """Accuracy against corruption severity (0 = clean) for one family, a line per row of
    `robustness_rows`, error bars over seeds."""
    figure = _figure()
    axes = figure.subplots()
    for row, marker in zip(robust, cycle(MARKERS)):
        curve = row["severity_accuracy"].get(family)
        if not curve:
            continue
        severities, means, stds = zip(*curve)
        axes.errorbar(severities, [_number(mean) for mean in means], yerr=[_zero_if_missing(std) for std in stds],
                      marker=marker, capsize=3, label=f"{row['label']}, T={row['T']}")
    axes.set(xlabel="severity (0 = clean)", ylabel="accuracy (%)", title=f"{title}: {family} corruptions")
    axes.set_xticks(range(6))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return png_bytes(figure)


def plot_step_shift(robust: list[dict], families: list[str], title: str) -> bytes:
    """Mean decision step under corruption minus the clean one against severity, one panel per
    corruption family, a line per early-exit row, error bars over seeds."""
    early = [row for row in robust if row["early_exit"]]
    families = [family for family in families if any(family in row["severity_step_shift"] for row in early)]
    figure = _figure(max(7.0, 3.2 * len(families)), 4.4)
    figure.subplots_adjust(top=1 - 0.75 / 4.4, wspace=0.08)
    panels = figure.subplots(1, len(families), sharey=True, squeeze=False)[0]
    for axes, family in zip(panels, families):
        for row, marker in zip(early, cycle(MARKERS)):
            curve = row["severity_step_shift"].get(family)
            if curve:
                severities, means, stds = zip(*curve)
                axes.errorbar(severities, [_number(mean) for mean in means], yerr=[_zero_if_missing(std) for std in stds],
                              marker=marker, capsize=3, label=f"{row['label']}, T={row['T']}")
        axes.axhline(0, color="0.5", linewidth=0.8)
        axes.set(xlabel="severity", title=family)
        axes.set_xticks(range(6))
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("decision step shift (time steps)")
    panels[0].legend(fontsize="small")
    figure.suptitle(f"{title}: decision step under corruption, early-exit methods")
    return png_bytes(figure)


def plot_accuracy_vs_T(sweeps: list[dict], title: str) -> bytes:
    """Accuracy against T, a line per series of `t_sweeps`, error bars over seeds."""
    figure = _figure()
    axes = figure.subplots()
    for sweep, marker in zip(sweeps, cycle(MARKERS)):
        Ts, means, stds, _ = zip(*sweep["points"])
        axes.errorbar(Ts, [_number(mean) for mean in means], yerr=[_zero_if_missing(std) for std in stds],
                      marker=marker, capsize=3, label=sweep["series"])
    axes.set_xscale("log", base=2)
    axes.set(xlabel="time steps T", ylabel="accuracy (%)", title=title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    return png_bytes(figure)


def plot_accuracy_vs_spikes(curves: list[dict], levels: dict[str, float], matched: dict[str, Any], title: str) -> bytes:
    """Accuracy against spikes/sample (log), a line per series of `spike_curves`, error bars over
    seeds; left all points, right a zoom on the top 3 pp, each point labelled with its T. For each
    architecture with a matched-accuracy level (%, `matched_levels`): a dashed line, and each of its
    series' cheapest point at or above it ringed, its spikes/sample in the legend. Points without
    spikes (T too short) are left out of the log axis."""
    figure = _figure(12, 4.8)
    figure.subplots_adjust(left=0.6 / 12, right=1 - 0.15 / 12, wspace=0.12)
    panels = figure.subplots(1, 2)
    top = max(p[1] for curve in curves for p in curve["points"] if p[0] > 0) if curves else 100.0
    for index, axes in enumerate(panels):
        for curve, marker, color in zip(curves, cycle(MARKERS), cycle(f"C{i}" for i in range(10))):
            points = [p for p in curve["points"] if p[0] > 0]
            if not points:
                continue
            spikes, means, stds, Ts, _ = zip(*points)
            label = curve["series"]
            best = matched.get(curve["series"])
            if curve["arch"] in levels:
                label += f": {best[0]:,.0f} spikes at T={best[3]}" if best else ": below the level"
            axes.errorbar(spikes, means, yerr=[_zero_if_missing(s) for s in stds], marker=marker, color=color,
                          capsize=3, label=label)
            if best:
                axes.scatter([best[0]], [best[1]], s=220, facecolors="none", edgecolors=color, linewidths=1.5,
                             zorder=3)
            if index == 1:
                for x, y, T in zip(spikes, means, Ts):
                    axes.annotate(f"{T}", (x, y), textcoords="offset points", xytext=(3, -9), fontsize=7,
                                  color=color, annotation_clip=True)
        shown_archs = {curve["arch"] for curve in curves}
        for (arch, level), style in zip(sorted(levels.items()), cycle(["--", ":", "-."])):
            if arch in shown_archs:
                shown = f"matched accuracy, {arch}: its baseline − {MATCH_MARGIN_PP} pp = {level:.2f} %"
                axes.axhline(level, linestyle=style, color="0.3", linewidth=1, label=shown if index == 0 else None)
        axes.set_xscale("log")
        axes.set(xlabel="spikes per sample")
        axes.grid(alpha=0.3)
    low = min([*levels.values(), top]) - 3
    zoomed = [p[0] for curve in curves for p in curve["points"] if p[0] > 0 and p[1] >= low]
    panels[1].set_ylim(low, top + 0.5)
    if zoomed:
        panels[1].set_xlim(min(zoomed) / 1.5, max(zoomed) * 1.5)
    panels[0].set(ylabel="accuracy (%)", title=f"{title}: conversion methods")
    panels[1].set(title="top 3 pp; numbers: T (the record's time steps)")
    panels[0].legend(fontsize="small")
    return png_bytes(figure)


def plot_grid(name: str, axes: list[str], points: list[dict]) -> bytes:
    """Accuracy vs the first numeric axis of more than two values (one line per combination of the
    other axes), else a bar per point; error bars: one std over seeds. `points`: a grid's summary
    rows (`benchmark.results.aggregate.grid_points`)."""
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    ax = figure.add_subplot()
    columns = {axis: [point["point"][index] for point in points] for index, axis in enumerate(axes)}
    numeric = [axis for axis in axes if all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                            for v in columns[axis]) and len(set(columns[axis])) > 2]
    if numeric:
        x_axis, others = numeric[0], [axis for axis in axes if axis != numeric[0]]
        series: dict[tuple, list[dict]] = {}
        for point in points:
            series.setdefault(tuple(str(point["point"][axes.index(a)]) for a in others), []).append(point)
        for key, group in series.items():
            label = ", ".join(f"{a}={v}" for a, v in zip(others, key)) or "accuracy"
            group = sorted(group, key=lambda point: point["point"][axes.index(x_axis)])
            ax.errorbar([p["point"][axes.index(x_axis)] for p in group], [stat(p["accuracy"])[0] for p in group],
                        yerr=[_zero_if_missing(p["accuracy"][1]) for p in group], marker="o", label=label, capsize=3)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(x_axis)
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize=7)
    else:
        means = [stat(point["accuracy"])[0] for point in points]
        labels = [", ".join(f"{a}={v}" for a, v in zip(axes, point["point"])) for point in points]
        ax.barh(range(len(points)), means, xerr=[_zero_if_missing(point["accuracy"][1]) for point in points])
        ax.set_yticks(range(len(points)), labels, fontsize=7)
        ax.set_xlim(max(0, min(means) - 5), min(100, max(means) + 2))
        ax.set_xlabel("accuracy (%)")
    ax.set_title(f"grid {name}")
    ax.grid(alpha=0.3)
    return png_bytes(figure, dpi=120)


def plot_resolution_over_seeds(dataset: str, rows: list[dict]) -> bytes:
    """Sweeps over seeds (benchmark.render.resolution.over_seeds): per method, accuracy and spikes per
    sample of the models trained and run at Δt/k, mean and standard deviation over the seeds."""
    figure = Figure(figsize=(10, 4), layout="tight")
    accuracy_axis, spikes_axis = figure.subplots(1, 2)
    for index, row in enumerate(rows):
        factors = row["factors"]
        for axis, values in ((accuracy_axis, row["accuracy"]), (spikes_axis, row["spikes"])):
            means = [float(np.mean(values[k])) for k in factors]
            spreads = [float(np.std(values[k], ddof=1)) if len(values[k]) > 1 else 0.0 for k in factors]
            axis.errorbar(factors, means, yerr=spreads, fmt="o-", color=f"C{index}", capsize=3,
                          label=f"{row['label']} ({len(row['seeds'])} seeds)")
    for axis, label in ((accuracy_axis, "test accuracy (%)"), (spikes_axis, "spikes per sample")):
        ticks = sorted({k for row in rows for k in row["factors"]})
        axis.set_xscale("log", base=2)
        axis.set_xticks(ticks, [f"Δt/{k}" for k in ticks])
        axis.set_xlabel("time step the model is trained and run at")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    spikes_axis.set_yscale("log")
    accuracy_axis.legend(fontsize=7)
    figure.suptitle(f"Temporal resolution over seeds, {dataset}")
    return png_bytes(figure, dpi=120)


def plot_resolution(record: dict) -> bytes:
    """A temporal-resolution sweep (benchmark.sweeps.resolution): per method, accuracy at Δt/k trained at
    Δt and retrained at Δt/k, and the range of the reference seeds at Δt beside them."""
    factors = record["sweep"]["factors"]
    figure = Figure(figsize=(6, 4), layout="tight")
    axis = figure.add_subplot()
    for index, (method, entry) in enumerate(record["methods"].items()):
        color = f"C{index}"
        axis.plot(factors, [100 * entry["accuracy"]["1"][str(k)] for k in factors], "o-", color=color,
                  label=f"{method}: trained at Δt")
        axis.plot(factors, [100 * entry["accuracy"][str(k)][str(k)] for k in factors], "s--", color=color,
                  label=f"{method}: retrained at Δt/k")
        seeds = [100 * a for a in entry["seed_accuracy_at_dt"].values()]
        if len(seeds) > 1:  # how far retraining alone moves it: the seeds' range at Δt
            offset = factors[0] * (0.96 + 0.08 * index)  # side by side, not on top of each other
            axis.plot([offset] * 2, [min(seeds), max(seeds)], "_-", color=color, lw=4, alpha=0.4, ms=14,
                      label=f"{method}: {len(seeds)} seeds at Δt")
    axis.set_xscale("log", base=2)
    axis.set_xticks(factors, [f"Δt/{k}" for k in factors])
    axis.set_xlabel("time step the model runs at")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(f"Temporal-resolution invariance, {record['sweep']['dataset']}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return png_bytes(figure, dpi=120)
