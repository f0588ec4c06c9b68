"""The probe report of a grid: each point's per-layer probes (benchmark.sweeps.probes), mean ± std
(sample std, ddof = 1) over its seeds, layer by layer.

    probes.md    one row per point, stage (init, trained) and quantity: the axis values, then layer
                 1..n ("mean ± std"); layers are counted in network order within the quantity
                 (spiking layers for the firing rate, synaptic layers for the gradient norm, hidden
                 layers for the reconstruction error), so the last firing rate and gradient norm are
                 the output layer's
    probes.csv   the same, one row per layer: axis values, stage, quantity, layer index and name,
                 mean, std, seeds
    <quantity>.png   the quantity against the layer index, a line per point (line style: the first
                 axis's value, colour: the other axes'), a panel per stage; error bars: one std;
                 gradient norms on a symmetric log axis, linear below the smallest positive one (a
                 gradient that vanished shows at 0)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from benchmark.contract.io import atomic_write_bytes, atomic_write_text
from benchmark.render.plots import png_bytes
from benchmark.render.tables import format_stat, markdown_table
from benchmark.results.aggregate import mean_std, missing

QUANTITIES = {"firing_rate": "firing rate (spikes per neuron per sample)",
              "grad_norm": "gradient norm ‖∂L/∂W_l‖",
              "reconstruction_error": "reconstruction error ‖r_l − a_l‖ / ‖a_l‖"}
STAGES = ("init", "trained")
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = "os^Dv<>PX*"


def probe_rows(axes: list[str], documents: list[tuple[dict[str, Any], dict]]) -> list[dict[str, Any]]:
    """One row per point, stage, quantity and layer, in that order: {"point" (axis values), "stage",
    "quantity", "index", "layer", "mean", "std", "seeds"}. `documents`: (axis values, probes.json) of
    every point and seed, a point's seeds alike in layers."""
    seeds: dict[str, list[dict]] = {}
    for point, document in documents:
        seeds.setdefault(json.dumps([point[axis] for axis in axes]), []).append(document)
    rows = []
    for key, found in seeds.items():
        for stage in STAGES:
            for quantity in QUANTITIES:
                layers = zip(*(document["stages"].get(stage, {}).get(quantity, []) for document in found))
                for index, entries in enumerate(layers, start=1):
                    values = [entry["value"] for entry in entries]
                    mean, std = mean_std(values)
                    rows.append({"point": json.loads(key), "stage": stage, "quantity": quantity, "index": index,
                                 "layer": entries[0]["layer"], "mean": mean, "std": std,
                                 "seeds": sum(value is not None for value in values)})
    return rows


def write_probe_report(name: str, axes: list[str], documents: list[tuple[dict[str, Any], dict]],
                       out: Path) -> list[Path]:
    """Writes probes.md, probes.csv and a plot per quantity measured (module docstring); returns their paths."""
    rows = probe_rows(axes, documents)
    long = pd.DataFrame([[*row["point"], row["stage"], row["quantity"], row["index"], row["layer"], row["mean"],
                          row["std"], row["seeds"]] for row in rows],
                        columns=[*axes, "stage", "quantity", "layer", "name", "mean", "std", "seeds"])
    paths = [out / "probes.md", out / "probes.csv"]
    atomic_write_text(paths[0], _markdown(name, axes, rows))
    atomic_write_text(paths[1], long.to_csv(index=False))
    for quantity in dict.fromkeys(row["quantity"] for row in rows):
        path = out / f"{quantity}.png"
        atomic_write_bytes(path, plot_probe(name, axes, [row for row in rows if row["quantity"] == quantity], quantity))
        paths.append(path)
    return paths


def _markdown(name: str, axes: list[str], rows: list[dict[str, Any]]) -> str:
    """probes.md: a row per point, stage and quantity, a column per layer."""
    depth = max(row["index"] for row in rows)
    table: dict[tuple, list[str]] = {}
    for row in rows:
        cells = table.setdefault((json.dumps(row["point"]), row["stage"], row["quantity"]),
                                 [*map(str, row["point"]), row["stage"], row["quantity"], *["—"] * depth])
        cells[len(axes) + 1 + row["index"]] = format_stat((row["mean"], row["std"]), "{:.3g}")
    cells = pd.DataFrame(list(table.values()), columns=[*axes, "stage", "quantity",
                                                        *(f"layer {index}" for index in range(1, depth + 1))])
    quantities = "\n".join(f"- `{key}`: {label}" for key, label in QUANTITIES.items())
    return (f"# Probes of grid `{name}`\n\nPer layer, mean ± std over seeds, on one fixed validation batch "
            "(benchmark/sweeps/probes.py): `init` is the network training starts from, `trained` the trained "
            "(or converted) one. Layers are counted in network order within each quantity; the last firing "
            f"rate and gradient norm are the output layer's.\n\n{quantities}\n\n" + markdown_table(cells) + "\n")


def _styles(axes: list[str], points: list[list[Any]]) -> dict[str, dict[str, Any]]:
    """Matplotlib style of each point's line, by its JSON: line style and marker by the first axis's
    value, colour by the other axes' values, a label naming them all."""
    firsts = list(dict.fromkeys(json.dumps(point[:1]) for point in points))
    others = list(dict.fromkeys(json.dumps(point[1:]) for point in points))
    colours = colormaps["tab10" if len(others) <= 10 else "tab20"]
    styles = {}
    for point in points:
        first, rest = firsts.index(json.dumps(point[:1])), others.index(json.dumps(point[1:]))
        styles[json.dumps(point)] = {"color": colours(rest % colours.N), "marker": MARKERS[first % len(MARKERS)],
                                     "linestyle": LINE_STYLES[first % len(LINE_STYLES)],
                                     "label": ", ".join(f"{axis}={value}" for axis, value in zip(axes, point))}
    return styles


def plot_probe(name: str, axes: list[str], rows: list[dict[str, Any]], quantity: str) -> bytes:
    """`quantity` against the layer index, a line per point, a panel per stage (module docstring)."""
    stages = [stage for stage in STAGES if any(row["stage"] == stage for row in rows)]
    figure = Figure(figsize=(5.5 * len(stages) + 2.5, 4.5), layout="constrained")
    panels = figure.subplots(1, len(stages), squeeze=False)[0]
    styles = _styles(axes, list({json.dumps(row["point"]): row["point"] for row in rows}.values()))
    for panel, stage in zip(panels, stages):
        for key, style in styles.items():
            line = [row for row in rows if row["stage"] == stage and json.dumps(row["point"]) == key]
            panel.errorbar([row["index"] for row in line], [row["mean"] for row in line],
                           yerr=[0.0 if missing(row["std"]) else row["std"] for row in line], capsize=2, **style)
        if quantity == "grad_norm":  # decades apart; linear below the smallest positive norm, so a zero shows
            panel.set_yscale("symlog", linthresh=min((row["mean"] for row in rows if row["mean"] > 0), default=1.0))
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
        panel.set(title=f"{name}: {stage}", xlabel="layer (network order)", ylabel=QUANTITIES[quantity])
        panel.grid(alpha=0.3)
    panels[-1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return png_bytes(figure)
