"""Tables: the leaderboard and robustness tables of a board as data (pandas), markdown and csv, from the
board summaries of benchmark.results.aggregate; one markdown writer for every table of the reports."""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

from benchmark.results.aggregate import NAN, missing

GROUP = ["method", "variant", "T"]
ACC, ACC_STD, SEEDS = "accuracy (%)", "accuracy std (%)", "seeds"
STEP, SPIKES, ACS, MACS = "mean decision step", "spikes/sample", "effective ACs", "effective MACs"
PARAMS, TRAIN, SOURCE = "params", "train time (s)", "source"
ENERGY = "energy tier 1 ({})"  # per sample, in the unit filled in
ENERGY2 = "energy tier 2 ({})"
CORRUPTION, RELATIVE = "corruption accuracy (%)", "relative corruption error"
PJ_PER_UNIT = {"nJ": 1e3, "µJ": 1e6}


def stat(value: Any) -> tuple[float, float]:
    """A summary's (mean, std), None (undefined) read back as nan."""
    mean, std = value
    return (NAN if mean is None else mean), (NAN if std is None else std)


def leaderboard_table(board: dict) -> pd.DataFrame:
    """One row per (method, variant, T) of the board, by accuracy descending; then one row per
    reference. Accuracy in %, energy per sample in the unit its column names (one unit per tier), mean
    corruption accuracy in % and the relative corruption error (— before robustness)."""
    energy, energy2 = ENERGY.format(board["units"]["tier1_pj"]), ENERGY2.format(board["units"]["tier2_pj"])
    scale1, scale2 = PJ_PER_UNIT[board["units"]["tier1_pj"]], PJ_PER_UNIT[board["units"]["tier2_pj"]]
    rows = [{
        "method": row["method"], "variant": row["variant"], "T": row["T"],
        ACC: stat(row["accuracy"])[0], ACC_STD: stat(row["accuracy"])[1], SEEDS: len(row["seeds"]),
        STEP: stat(row["decision_step"])[0], SPIKES: stat(row["spikes"])[0], ACS: stat(row["acs"])[0],
        MACS: stat(row["macs"])[0], energy: stat(row["tier1_pj"])[0] / scale1,
        energy2: stat(row["tier2_pj"])[0] / scale2, CORRUPTION: stat(row["corruption_accuracy"])[0],
        RELATIVE: stat(row["relative_error"])[0], PARAMS: stat(row["params"])[0], TRAIN: stat(row["train_seconds"])[0],
        SOURCE: "",
    } for row in board["rows"]]
    rows += [{"method": f"{ref['method']} (paper reference)", "variant": ref["variant"], "T": ref["T"],
              ACC: 100 * ref["accuracy"], SOURCE: ref["source"]} for ref in board["references"]]
    columns = [*GROUP, ACC, ACC_STD, SEEDS, STEP, SPIKES, ACS, MACS, energy, energy2, CORRUPTION, RELATIVE, PARAMS,
               TRAIN, SOURCE]
    table = pd.DataFrame(rows, columns=columns)
    table[PARAMS] = table[PARAMS].round()
    return table.astype({"T": "Int64", SEEDS: "Int64", PARAMS: "Int64"}).reset_index(drop=True)


def robustness_table(board: dict) -> pd.DataFrame:
    """The robustness table as data: one row per (method, variant, T) with robustness results,
    mean and std over seeds of clean accuracy, mean corruption accuracy, relative corruption error
    (against the baseline), each family's mean accuracy and the decision-step shift."""
    families = board["robustness"]["families"]
    table = []
    for row in board["robustness"]["rows"]:
        cells = {"method": row["method"], "variant": row["variant"], "T": row["T"], SEEDS: len(row["seeds"])}
        for name, value in [("clean accuracy (%)", row["clean_accuracy"]), (CORRUPTION, row["corruption_accuracy"]),
                            (RELATIVE, row["relative_error"]), ("decision step shift", row["step_shift"]),
                            *((f"{family} (%)", row["families"].get(family, (None, None))) for family in families)]:
            cells[name], cells[f"{name} std"] = stat(value)
        cells["baseline"] = row["baseline"]
        table.append(cells)
    return pd.DataFrame(table)


def board_markdown(board: dict) -> str:
    """The board's markdown page: the leaderboard, paper references, robustness and tier flips."""
    table = leaderboard_table(board)
    energy = ENERGY.format(board["units"]["tier1_pj"])
    energy2 = ENERGY2.format(board["units"]["tier2_pj"])
    sources = list(dict.fromkeys(source for source in table[SOURCE] if source))
    formats = {"T": "{}", SEEDS: "{}", STEP: "{:.2f}", SPIKES: "{:,.1f}", ACS: "{:,.0f}", MACS: "{:,.0f}",
               energy: "{:,.2f}", energy2: "{:,.2f}", CORRUPTION: "{:.2f}", RELATIVE: "{:.3f}", PARAMS: "{:,}",
               TRAIN: "{:.1f}"}
    cells = pd.DataFrame({
        "method": [f"{method} [{sources.index(source) + 1}]" if source else method
                   for method, source in zip(table["method"], table[SOURCE])],
        "variant": [variant or ("—" if source else "default") for variant, source in zip(table["variant"], table[SOURCE])],
        "T": [_cell(value, formats["T"]) for value in table["T"]],
        ACC: [f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f} ± {std:.2f}" for mean, std in zip(table[ACC], table[ACC_STD])],
        **{column: [_cell(value, formats[column]) for value in table[column]]
           for column in (SEEDS, STEP, SPIKES, ACS, MACS, energy, energy2, CORRUPTION, RELATIVE, PARAMS, TRAIN)},
    })
    lines = [
        f"# Leaderboard: {board['title']}", "",
        f"Per test sample. Accuracy is the mean ± sample standard deviation over seeds. "
        f"Energy tier 1 (compute) and tier 2 (compute and memory traffic) use the cost model `{board['cost_model']}`. "
        "Corruption accuracy: mean over every corruption and severity; relative corruption error: "
        "mCE against the ANN baseline (below 1: degrades less than the ANN).", "",
        markdown_table(cells),
    ]
    if sources:
        lines += ["", "Rows marked (paper reference) are published figures, not measured here:", ""]
        lines += [f"- [{number}] {source}" for number, source in enumerate(sources, start=1)]
    if board["robustness"]["rows"]:
        lines += ["", *_robustness_markdown(board)]
    if board["has_tier2"]:
        lines += ["", "## Energy order between tiers", ""]
        lines += ([f"- ⚑ **{cheap1}** is cheaper than **{cheap2}** in tier 1, but **{cheap2}** is cheaper in tier 2"
                   for cheap1, cheap2 in board["flips"]]
                  or ["No pair of rows changes order between tier 1 and tier 2."])
    return "\n".join(lines) + "\n"


def _robustness_markdown(board: dict) -> list[str]:
    rows, families = board["robustness"]["rows"], board["robustness"]["families"]
    cells = pd.DataFrame({
        "method": [row["method"] for row in rows],
        "variant": [row["variant"] or "default" for row in rows],
        "T": [str(row["T"]) for row in rows],
        SEEDS: [str(len(row["seeds"])) for row in rows],
        "clean accuracy (%)": [format_stat(row["clean_accuracy"]) for row in rows],
        CORRUPTION: [format_stat(row["corruption_accuracy"]) for row in rows],
        RELATIVE: [format_stat(row["relative_error"], "{:.3f}") for row in rows],
        **{f"{family} (%)": [format_stat(row["families"].get(family, (None, None))) for row in rows]
           for family in families},
        "ANN baseline": [row["baseline"] or "—" for row in rows],
    })
    lines = ["## Robustness", "",
             "Accuracy under each corruption family (mean over its corruptions and five severities), mean ± "
             "sample std over seeds. Relative corruption error: Σ_s error(c, s) / Σ_s error_ANN(c, s), averaged "
             "over corruptions c (Hendrycks & Dietterich, ICLR 2019).", "", markdown_table(cells)]
    early = [row for row in rows if row["early_exit"]]
    if early:
        shifts = pd.DataFrame({
            "method": [row["method"] for row in early],
            "variant": [row["variant"] or "default" for row in early],
            "T": [str(row["T"]) for row in early],
            "clean decision step": [format_stat(row["step_clean"]) for row in early],
            "shift, all corruptions": [format_stat(row["step_shift"], "{:+.2f}") for row in early],
            **{f"shift, {family}": [format_stat(row["step_shift_by_family"].get(family, (None, None)), "{:+.2f}")
                                    for row in early] for family in families},
        })
        lines += ["", "### Decision step under corruption (early-exit methods)", "",
                  "Mean decision step under corruption minus the clean one, in time steps (positive: the "
                  "prediction comes later on corrupted inputs).", "", markdown_table(shifts)]
    return lines


def format_stat(value: Any, template: str = "{:.2f}") -> str:
    """"mean ± std", "mean" for one seed, "—" when not measured."""
    mean, std = stat(value)
    if missing(mean):
        return "—"
    return template.format(mean) if missing(std) else f"{template.format(mean)} ± {template.format(std).lstrip('+')}"


def markdown_table(cells: pd.DataFrame, cell: Any = str) -> str:
    """A markdown table of `cells`, each value written by `cell` (`|` escaped)."""
    def line(values: Iterable[Any]) -> str:
        return "| " + " | ".join(str(value).replace("|", "\\|") for value in values) + " |"

    rows = ([cell(value) for value in row] for row in cells.itertuples(index=False))
    return "\n".join([line(cells.columns), line("---" for _ in cells.columns), *map(line, rows)])


def _cell(value: Any, template: str) -> str:
    return "—" if pd.isna(value) else template.format(value)


def grid_cell(value: Any) -> str:
    """A grid table's cell: numbers to two decimals (small ones, such as a weight decay of 5e-4, in two
    significant digits), missing values as —."""
    if isinstance(value, float):
        if pd.isna(value):
            return "—"
        return f"{value:.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2g}"
    return str(value)
