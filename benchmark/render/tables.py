"""Tables: the leaderboard and robustness tables of a board as data (pandas), markdown and csv, from the
board summaries of benchmark.results.aggregate; one markdown writer for every table of the reports."""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

from benchmark.results.aggregate import NAN, missing

GROUP = ["method", "variant", "T"]
ACC, ACC_STD, ACC_CI, SEEDS, VAL = "accuracy (%)", "accuracy std (%)", "accuracy 95% CI (±)", "seeds", "val accuracy (%)"
RANK = "rank"
STEP, SPIKES, BITS, ACS, MACS = "mean decision step", "spikes/sample", "bits/sample", "effective ACs", "effective MACs"
PARAMS, TRAIN, SOURCE, PORTABLE = "params", "train time (s)", "source", "portable (NIR)"
EPOCHS, OPT_STEPS, REACH = "epochs", "optimizer steps", "steps to baseline − 1 pp"
ENERGY = "energy tier 1 ({})"  # per sample, in the unit filled in
ENERGY2 = "energy tier 2 ({})"
CORRUPTION, RELATIVE = "corruption accuracy (%)", "relative corruption error"
PJ_PER_UNIT = {"nJ": 1e3, "µJ": 1e6}


def stat(value: Any) -> tuple[float, float]:
    """A summary's (mean, std), from (mean, std) or (mean, std, CI half-width); None (undefined) read
    back as nan."""
    mean, std = value[:2]
    return (NAN if mean is None else mean), (NAN if std is None else std)


def ci(value: Any) -> float:
    """The half-width of a summary's 95 % confidence interval of the mean (nan when undefined)."""
    half = value[2] if len(value) > 2 else None
    return NAN if half is None else half


def leaderboard_table(board: dict) -> pd.DataFrame:
    """One row per (method, variant, T) of the board, by accuracy descending; then one row per
    reference. Accuracy in %, energy per sample in the unit its column names (one unit per tier), mean
    corruption accuracy in % and the relative corruption error (— before robustness)."""
    energy, energy2 = ENERGY.format(board["units"]["tier1_pj"]), ENERGY2.format(board["units"]["tier2_pj"])
    scale1, scale2 = PJ_PER_UNIT[board["units"]["tier1_pj"]], PJ_PER_UNIT[board["units"]["tier2_pj"]]
    rows = [{
        "method": row["method"], "variant": row["variant"], "T": row["T"], RANK: row.get("rank"),
        ACC: stat(row["accuracy"])[0], ACC_STD: stat(row["accuracy"])[1], ACC_CI: ci(row["accuracy"]),
        SEEDS: len(row["seeds"]),
        VAL: stat(row["val_accuracy"])[0], STEP: stat(row["decision_step"])[0],
        REACH: NAN if row["steps_to_baseline"] is None else row["steps_to_baseline"],
        SPIKES: stat(row["spikes"])[0], BITS: stat(row["bits"])[0], ACS: stat(row["acs"])[0],
        MACS: stat(row["macs"])[0], energy: stat(row["tier1_pj"])[0] / scale1,
        energy2: stat(row["tier2_pj"])[0] / scale2, CORRUPTION: stat(row["corruption_accuracy"])[0],
        RELATIVE: stat(row["relative_error"])[0], PARAMS: stat(row["params"])[0], EPOCHS: stat(row["epochs"])[0],
        OPT_STEPS: stat(row["optimizer_steps"])[0], TRAIN: stat(row["train_seconds"])[0],
        PORTABLE: row.get("portable") or "", SOURCE: "",
    } for row in board["rows"]]
    rows += [{"method": f"{ref['method']} (paper reference)", "variant": ref["variant"], "T": ref["T"],
              ACC: 100 * ref["accuracy"], SOURCE: ref["source"]} for ref in board["references"]]
    columns = [*GROUP, RANK, ACC, ACC_STD, ACC_CI, SEEDS, VAL, STEP, REACH, SPIKES, BITS, ACS, MACS, energy, energy2, CORRUPTION,
               RELATIVE, PARAMS, EPOCHS, OPT_STEPS, TRAIN, PORTABLE, SOURCE]
    table = pd.DataFrame(rows, columns=columns)
    for column in (PARAMS, EPOCHS, OPT_STEPS):
        table[column] = table[column].round()
    return table.astype({"T": "Int64", RANK: "Int64", SEEDS: "Int64", PARAMS: "Int64", REACH: "Int64", EPOCHS: "Int64",
                         OPT_STEPS: "Int64"}).reset_index(drop=True)


def robustness_table(board: dict) -> pd.DataFrame:
    """The robustness table as data: one row per (method, variant, T) with robustness results,
    mean and std over seeds of clean accuracy, mean corruption accuracy, relative corruption error
    (against the baseline), each family's mean accuracy and the decision-step shift."""
    families = board["robustness"]["families"]
    table = []
    for row in board["robustness"]["rows"]:
        cells = {"method": row["method"], "variant": row["variant"], "T": row["T"], RANK: row.get("rank"),
                 SEEDS: len(row["seeds"])}
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
    formats = {"T": "{}", SEEDS: "{}", VAL: "{:.2f}", STEP: "{:.2f}", REACH: "{}", SPIKES: "{:,.1f}",
               BITS: "{:,.0f}", ACS: "{:,.0f}", MACS: "{:,.0f}", energy: "{:,.2f}", energy2: "{:,.2f}",
               CORRUPTION: "{:.2f}", RELATIVE: "{:.3f}", PARAMS: "{:,}", EPOCHS: "{}", OPT_STEPS: "{:,}", TRAIN: "{:.1f}"}
    cells = pd.DataFrame({
        "method": [f"{method} [{sources.index(source) + 1}]" if source else method
                   for method, source in zip(table["method"], table[SOURCE])],
        "variant": [variant or ("—" if source else "default") for variant, source in zip(table["variant"], table[SOURCE])],
        "T": [_cell(value, formats["T"]) for value in table["T"]],
        RANK: [rank_cell(rank) for rank in table[RANK]],
        ACC: [f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f} ± {std:.2f}" for mean, std in zip(table[ACC], table[ACC_STD])],
        "95% CI": [_interval(mean, half) for mean, half in zip(table[ACC], table[ACC_CI])],
        **{column: [_cell(value, formats[column]) for value in table[column]]
           for column in (SEEDS, VAL, STEP, REACH, SPIKES, BITS, ACS, MACS, energy, energy2, CORRUPTION, RELATIVE,
                          PARAMS, EPOCHS, OPT_STEPS, TRAIN)},
        PORTABLE: [portable or "—" for portable in table[PORTABLE].fillna("")],
    })
    lines = [
        f"# Leaderboard: {board['title']}", "",
        f"Per test sample. Accuracy is the mean ± sample standard deviation over seeds, with the 95 % "
        "confidence interval of the mean (Student's t over seeds). Rank: 1 + the number of rows significantly "
        "more accurate (paired hierarchical bootstrap over seeds and test samples, Holm-corrected over the "
        "board's pairs, α = 0.05); rows that share a rank are not told apart by the evidence, and rank 1 (★) is "
        "the top group. "
        f"Energy tier 1 (compute) and tier 2 (compute and memory traffic) use the cost model `{board['cost_model']}`. "
        "Corruption accuracy: mean over every corruption and severity; relative corruption error: "
        f"mCE against the baseline `{board['baseline']['method']}` (below 1: degrades less). Validation accuracy: "
        "what settings are chosen by. Steps to baseline − 1 pp: the first step t at which the method's readout of "
        "its output so far reaches the baseline's accuracy less 1 pp (— never). Bits/sample: events × their "
        "payload bits. A constant input's products are charged once; tier 1 prices the neuron updates too. "
        "Budget: epochs and optimizer steps of the training (a conversion: its source's).", "",
        markdown_table(cells),
    ]
    if sources:
        lines += ["", "Rows marked (paper reference) are published figures, not measured here:", ""]
        lines += [f"- [{number}] {source}" for number, source in enumerate(sources, start=1)]
    if board["budget_exceptions"]:
        lines += ["", "Exceptions to the same budget, as params.yaml declares them:", ""]
        lines += [f"- {method}: {reason}" for method, reason in board["budget_exceptions"].items()]
    lines += ["", *_significance_markdown(board)]
    if any(not missing(stat(row["int8_accuracy"])[0]) for row in board["rows"]):
        lines += ["", *_deployment_markdown(board)]
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
        RANK: [rank_cell(row.get("rank")) for row in rows],
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
             "over corruptions c (Hendrycks & Dietterich, ICLR 2019). Rank: by corruption accuracy, with the paired "
             "test of the leaderboard over every corrupted sample.", "", markdown_table(cells)]
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


def fixed_point_table(board: dict) -> pd.DataFrame:
    """The board's fixed-point evaluation (spikecode export): accuracy with int8 and int4 weights and
    16-bit membranes, no retraining, beside fp32 on the same samples; tier-1 energy per sample with
    the int8 cost table beside the fp32 one; and whether NIR can carry the network."""
    scale = PJ_PER_UNIT[board["units"]["tier1_pj"]]
    unit = board["units"]["tier1_pj"]
    return pd.DataFrame([{
        "method": row["method"], "variant": row["variant"], "T": row["T"], SEEDS: len(row["seeds"]),
        "fp32 accuracy (%)": stat(row["fp32_deploy_accuracy"])[0], "int8 accuracy (%)": stat(row["int8_accuracy"])[0],
        "int4 accuracy (%)": stat(row["int4_accuracy"])[0],
        f"energy tier 1, fp32 ({unit})": stat(row["tier1_pj"])[0] / scale,
        f"energy tier 1, int8 ({unit})": stat(row["int8_tier1_pj"])[0] / scale, PORTABLE: row.get("portable") or "—",
    } for row in board["rows"] if not missing(stat(row["int8_accuracy"])[0])])


def _deployment_markdown(board: dict) -> list[str]:
    table = fixed_point_table(board)
    cells = table.copy()
    for column in cells.columns:
        if cells[column].dtype.kind == "f":
            cells[column] = [_cell(value, "{:,.2f}") for value in cells[column]]
    return ["## Deployment: fixed point and NIR", "",
            "Every model run without retraining with weights quantized per layer (symmetric, int8 and int4) and "
            "16-bit fixed-point membranes, on the same test samples as fp32; tier-1 energy with the int8-45nm cost "
            "table (no int4 table: the int8 figure bounds it). Portable: whether the NIR graph carries the network "
            "exactly, approximately (what differs, and the prediction agreement measured when it is re-imported), "
            "or not (why); the site's portability page has each library's round trip.", "",
            markdown_table(cells)]


def _significance_markdown(board: dict) -> list[str]:
    """Each pair of neighbours in the accuracy order, tested; then the ranks of the anytime readout."""
    rows = board["rows"]
    pairs = {(pair["a"], pair["b"]): pair for pair in board["comparisons"]["accuracy"]}
    lines = ["## Which differences are significant", "",
             "Neighbours in the accuracy order, compared on the same test samples and seeds: the difference "
             "in accuracy (pp) with its 95 % bootstrap interval and Holm-corrected p. Every pair of the board is "
             "in comparisons.csv.", ""]
    table = []
    for upper, lower in zip(rows, rows[1:]):
        pair = pairs.get((row_key(upper), row_key(lower))) or pairs.get((row_key(lower), row_key(upper)))
        table.append(_pair_cells(pair, upper, lower))
    lines.append(markdown_table(pd.DataFrame(table, columns=PAIR_COLUMNS)) if table else "One row: nothing to compare.")
    anytime = board["comparisons"]["anytime"]
    if any(not missing(mean) for found in anytime.values() for mean in found["means"]):
        steps = sorted(anytime, key=int)
        cells = pd.DataFrame({"method": [row["label"] for row in rows], "T": [str(row["T"]) for row in rows],
                              **{f"t = {t}": [_anytime_cell(anytime[t], k) for k in range(len(rows))] for t in steps}})
        lines += ["", "### Anytime readout: accuracy (%) and rank after t steps", "",
                  "Each method's readout of its output up to step t (its last step when T < t), ranked as above.", "",
                  markdown_table(cells)]
    return lines


PAIR_COLUMNS = ["more accurate", "less accurate", "difference (pp)", "95% CI (pp)", "p (Holm)", "verdict"]


def row_key(row: dict) -> str:
    """How the comparisons name a row: its label and T."""
    return row["label"] + f"|T={row['T']}"


def row_name(row: dict) -> str:
    """A row's label with its T, once: "rate (T=10)", "ann (T=1)"."""
    return row["label"] if f"T={row['T']}" in row["label"] else f"{row['label']} (T={row['T']})"


def _pair_cells(pair: dict | None, upper: dict, lower: dict) -> list[str]:
    names = [row_name(upper), row_name(lower)]
    if pair is None or pair["p"] is None:
        return [*names, "—", "—", "—", "not tested (no per-sample results on shared seeds)"]
    sign = 1 if pair["a"] == row_key(upper) else -1
    low, high = sorted((sign * pair["ci_low"], sign * pair["ci_high"]))
    return [*names, f"{sign * pair['difference']:+.2f}", f"[{low:+.2f}, {high:+.2f}]", f"{pair['p_holm']:.3g}",
            "different" if pair["different"] else "not significantly different"]


def _anytime_cell(found: dict, k: int) -> str:
    mean = found["means"][k]
    return "—" if missing(mean) else f"{mean:.2f} ({rank_cell(found['ranks'][k])})"


def rank_cell(rank: Any) -> str:
    if rank is None or pd.isna(rank):
        return "—"
    return f"{int(rank)} ★" if int(rank) == 1 else str(int(rank))


def _interval(mean: float, half: float) -> str:
    """An accuracy's confidence interval, cut to [0, 100] % (the t-interval of few seeds can pass 100)."""
    return "—" if pd.isna(half) else f"[{max(mean - half, 0.0):.2f}, {min(mean + half, 100.0):.2f}]"


def comparisons_table(board: dict) -> pd.DataFrame:
    """Every tested pair of the board and quantity: accuracy, corruption accuracy, anytime at each t."""
    found = [("accuracy", pair) for pair in board["comparisons"]["accuracy"]]
    found += [("corruption accuracy", pair) for pair in board["comparisons"]["corruption_accuracy"]]
    found += [(f"accuracy after {t} steps", pair) for t, compared in board["comparisons"]["anytime"].items()
              for pair in compared["pairs"]]
    columns = ["quantity", "a", "b", "seeds", "difference (pp)", "ci_low (pp)", "ci_high (pp)", "p", "p (Holm)",
               "different"]
    return pd.DataFrame([[quantity, pair["a"], pair["b"], len(pair["seeds"]), pair["difference"], pair["ci_low"],
                          pair["ci_high"], pair["p"], pair.get("p_holm"), pair["different"]]
                         for quantity, pair in found], columns=columns)


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


def timings_markdown(timings: dict) -> str:
    """reports/timings.md: where the reproduction's time went (benchmark.results.timings)."""
    minutes = lambda seconds: f"{seconds / 60:.1f}"  # noqa: E731
    stages = pd.DataFrame([[stage["command"], stage["targets"], minutes(stage["seconds"]), minutes(stage["largest"]),
                            f"{100 * stage['share']:.0f}"] for stage in timings["stages"]],
                          columns=["stage", "targets", "minutes", "largest target (min)", "share (%)"])
    slowest = pd.DataFrame([[entry["command"], entry["target"], minutes(entry["seconds"])]
                            for entry in timings["slowest"]], columns=["stage", "target", "minutes"])
    threads = ", ".join(map(str, timings["threads"])) or "unrecorded"
    grids = pd.DataFrame([[entry["target"], minutes(entry["seconds"]), entry["ended"]] for entry in timings["grids"]],
                         columns=["grid", "minutes", "ended"])
    return "\n".join([
        "# Where the reproduction's time goes", "",
        f"Wall time of the pipeline's computing commands (prepare, train, evaluate, robustness, energy, export, "
        f"resolution), the latest run of each target, as `runs/timings.jsonl` recorded them; torch threads: "
        f"{threads}. Sum over commands: **{minutes(timings['total_seconds'])} min**; first start to last end: "
        f"**{minutes(timings['span_seconds'])} min** (longer than the sum when the runs were interrupted or "
        "resumed, shorter when commands ran side by side).", "",
        markdown_table(stages), "", "## Slowest targets", "", markdown_table(slowest), "",
        "## Grids", "", "Each `spikecode grid` run (by hand, or listed in run.grids), apart from the figures above.", "",
        markdown_table(grids) if len(grids) else "None recorded.", ""])
