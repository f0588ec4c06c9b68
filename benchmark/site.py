"""The leaderboard as a static site, built from reports/leaderboard.json (and reports/grids/).

    index.html                      one sortable leaderboard per (dataset, profile): rows are
                                    (method, variant, T) with mean ± sample std over seeds and the
                                    number of seeds; paper references as labelled rows below them;
                                    pairs whose energy order flips between tiers flagged (⚑); the
                                    robustness table; the plots
    methods/<method>.html           the paper, the equations (the method module's docstring), the
                                    hyperparameters (defaults and the runs' values), the per-layer
                                    spike and op breakdown, the ablation tables of its grids
    provenance.html                 one anchored entry per record (every row links to its seeds')
    provenance/<id>.json            the full record
    <dataset>-<profile>/*.png       accuracy vs energy per tier (Pareto front marked), vs decision
                                    step, vs severity per corruption family, the decision-step shift
                                    of the early-exit methods, accuracy vs T, accuracy vs spikes/sample
                                    of the conversion methods (`benchmark.report`)
    methods/<method>-T.png          accuracy vs T of the method's sweeps
    grids/<grid>/accuracy.png       copied from reports/grids/<grid>/

The pages use relative links only, inline CSS and a small inline script (click a column header to
sort; again to reverse), and no external resource, so the folder works opened from disk and served
by any static host. The output folder is the site's own: files a previous build wrote and this one
did not are removed; a non-empty folder that no build wrote is refused.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterable

from benchmark.errors import SpikeCodeError
from benchmark.io import atomic_write_bytes, atomic_write_text, read_json, write_json
from benchmark.report import (
    PJ_PER_UNIT, SCHEMA, by_dataset_profile, checked_reference, cost_model_of, energy_unit, board_plots,
    conversion_spike_plot, corruption_families, grid_axes, load_grids, mean_std, plot_accuracy_vs_T, robustness_rows,
    row_label, summarize, t_sweeps, tier_flips,
)

MARKER = ".spikecode-site"  # marks a folder this module built

Stat = tuple[float, float]


class SiteError(SpikeCodeError):
    """A leaderboard the site cannot be built from, or an output folder it must not write into."""


def build_site(leaderboard_json: Path, out_dir: Path, grids_dir: Path | None = None) -> list[Path]:
    """Build the site from `leaderboard_json` (and the grids under `grids_dir`, reports/grids)
    into `out_dir` (reports/site); return the paths written."""
    leaderboard_json, out_dir = Path(leaderboard_json), Path(out_dir)
    board = _read_leaderboard(leaderboard_json)
    records = board["records"]
    if not records:
        raise SiteError(f"{leaderboard_json} holds no records; run `spikecode report` (or `dvc repro`) first")
    references = [checked_reference(reference) for reference in board.get("references", [])]
    grids = load_grids(grids_dir)
    _check_out_dir(out_dir)
    site = _Site(out_dir, records, references, grids, grids_dir)
    written = site.build()
    _remove_stale(out_dir, written)
    return written


def _read_leaderboard(path: Path) -> dict:
    if not path.is_file():
        raise SiteError(f"{path} does not exist; run `spikecode report` (or `dvc repro`) to write it")
    document = read_json(path)
    version = document.get("schema") if isinstance(document, dict) else None
    if version != SCHEMA:
        raise SiteError(f"{path} has leaderboard schema {version!r}; this site builder reads schema {SCHEMA}: "
                        "rebuild it with `spikecode report` from this version of the suite")
    return document


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise SiteError(f"{out_dir} is not empty and was not built by `spikecode publish` (no {MARKER} in it); "
                        "give an empty or new folder, the site replaces what is in it")


def _remove_stale(out_dir: Path, written: list[Path]) -> None:
    keep = {path.resolve() for path in written} | {(out_dir / MARKER).resolve()}
    for path in sorted(out_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file() and path.resolve() not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


# --- helpers -------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "-"


def _missing(value: Any) -> bool:
    return value is None or value != value  # None or nan


def _number(value: float, template: str) -> str:
    return "—" if _missing(value) else template.format(value)


def _stat_html(stat: Stat, template: str = "{:.2f}", scale: float = 1.0) -> str:
    mean, std = stat
    if _missing(mean):
        return "—"
    text = template.format(mean * scale)
    if not _missing(std):
        text += f' <span class="sd">± {template.format(std * scale).lstrip("+")}</span>'
    return text


def _td(content: str, value: Any = None, css: str = "") -> str:
    """A cell; `value` is what the sorter compares (empty when not measured)."""
    attributes = f' class="{css}"' if css else ""
    if value is not None:
        text = "" if _missing(value) else repr(value) if isinstance(value, float) else str(value)
        attributes += f' data-value="{_e(text)}"'
    return f"<td{attributes}>{content}</td>"


def _stat_td(stat: Stat, template: str = "{:.2f}", scale: float = 1.0, css: str = "num") -> str:
    return _td(_stat_html(stat, template, scale), stat[0], css)


def _header(columns: Iterable[tuple[str, str | None, str]], sorted_by: str | None = None) -> str:
    """`columns`: (label, "number" | "text" | None (not sortable), first direction)."""
    cells = []
    for label, kind, first in columns:
        attributes = f' data-type="{kind}" data-first="{first}"' if kind else ""
        if label == sorted_by:
            attributes += f' aria-sort="{first}"'
        cells.append(f'<th scope="col"{attributes}>{_e(label)}</th>')
    return "<thead><tr>" + "".join(cells) + "</tr></thead>"


# --- the site ------------------------------------------------------------------------------------


class _Site:
    def __init__(self, out_dir: Path, records: list[dict], references: list[dict], grids: dict[str, list[dict]],
                 grids_dir: Path | None):
        self.out = out_dir
        self.grids_dir = grids_dir
        self.records = records
        self.references = references
        self.grids = grids
        self.written: list[Path] = []
        self.boards = by_dataset_profile(records)
        self.methods = sorted({r["method"] for r in records} | {r["method"] for g in grids.values() for r in g})
        self.ids: dict[int, str] = {}  # id(record) -> provenance id
        for record in records:
            self._assign_id(record, None)
        for grid, members in grids.items():
            for record in members:
                self._assign_id(record, grid)
        self.newest = max((r.get("provenance", {}).get("created", "") for r in records), default="")

    # ids, links, files

    def _assign_id(self, record: dict, grid: str | None) -> None:
        base = _slug(".".join(part for part in (
            f"grid-{grid}" if grid else "", record["dataset"], record["profile"], record["method"],
            record["variant"] or "default", f"T{record['T']}", f"s{record['seed']}") if part))
        taken, candidate, number = set(self.ids.values()), base, 1
        while candidate in taken:
            number += 1
            candidate = f"{base}-{number}"
        self.ids[id(record)] = candidate

    def _provenance_links(self, records: list[dict], root: str) -> str:
        links = [f'<a href="{root}provenance.html#{self.ids[id(r)]}" title="provenance of seed {_e(r["seed"])}">'
                 f'seed {_e(r["seed"])}</a>' for r in sorted(records, key=lambda r: r["seed"])]
        return " ".join(links)

    def _write_text(self, relative: str, text: str) -> None:
        path = self.out / relative
        atomic_write_text(path, text)
        self.written.append(path)

    def _write_bytes(self, relative: str, data: bytes) -> None:
        path = self.out / relative
        atomic_write_bytes(path, data)
        self.written.append(path)

    def build(self) -> list[Path]:
        self._write_text(MARKER, "built by benchmark.site (spikecode publish); the whole folder is regenerated\n")
        self.written.remove(self.out / MARKER)
        index = [self._board_section(dataset, profile, subset) for (dataset, profile), subset in self.boards.items()]
        self._write_text("index.html", self._page("Leaderboard", self._index_intro() + "".join(index), depth=0))
        for method in self.methods:
            self._write_text(f"methods/{_slug(method)}.html", self._method_page(method))
        self._write_provenance()
        return self.written

    # page frame

    def _page(self, title: str, body: str, depth: int) -> str:
        root = "../" * depth
        methods = " ".join(f'<a href="{root}methods/{_slug(m)}.html">{_e(m)}</a>' for m in self.methods)
        boards = " ".join(f'<a href="{root}index.html#{_slug(f"{d}-{p}")}">{_e(d)} ({_e(p)})</a>'
                          for d, p in self.boards)
        newest = f"; newest result {_e(self.newest)}" if self.newest else ""
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · SpikeCode Bench</title>
<style>{CSS}</style>
</head>
<body>
<header><nav><a href="{root}index.html"><strong>SpikeCode Bench</strong></a> · leaderboards: {boards}
· methods: {methods} · <a href="{root}provenance.html">provenance</a></nav></header>
<main>
<h1>{_e(title)}</h1>
{body}
</main>
<footer>Built by <code>spikecode publish</code> from <code>leaderboard.json</code> (schema {SCHEMA}){newest}.
Every figure is per test sample; paper figures appear only as labelled reference rows.</footer>
<script>{SORTER_JS}</script>
</body>
</html>
"""

    def _index_intro(self) -> str:
        return ("<p>Each row is one (method, variant, T): the mean ± sample standard deviation over its seeds "
                "(<em>seeds</em> gives their number), per test sample. Click a column header to sort by it, again to "
                "reverse. Energy tier 1 prices the synaptic operations; tier 2 also charges weight, membrane and "
                "input/output memory traffic (after Lemaire et al., ICONIP 2022). Corruption accuracy is the mean "
                "over every corruption and five severities; the relative corruption error is the mCE against the "
                "ANN baseline of the same dataset and seed (below 1: degrades less than the ANN). Rows marked "
                "<em>paper reference</em> are published figures, not measured here. Each row links to the "
                "provenance of its seeds.</p>\n")

    # the leaderboard of one dataset and profile

    def _board_section(self, dataset: str, profile: str, records: list[dict]) -> str:
        board = _slug(f"{dataset}-{profile}")
        title = f"{dataset} ({profile} profile)"
        cost_model = cost_model_of(records, dataset, profile)
        unit1, unit2 = energy_unit(records), energy_unit(records, "tier2_pj")
        rows = sorted(summarize(records), key=lambda row: (-row["accuracy"][0], row["method"], row["variant"]))
        flips = tier_flips(records)
        flagged = {name for flip in flips for name in flip[2:]}
        references = [ref for ref in self.references if ref["dataset"] == dataset]
        columns = [("method", "text", "ascending"), ("variant", "text", "ascending"), ("T", "number", "ascending"),
                   ("accuracy (%)", "number", "descending"), ("seeds", "number", "descending"),
                   ("decision step", "number", "ascending"), ("spikes/sample", "number", "ascending"),
                   ("effective ACs", "number", "ascending"), ("effective MACs", "number", "ascending"),
                   (f"energy tier 1 ({unit1})", "number", "ascending"),
                   (f"energy tier 2 ({unit2})", "number", "ascending"),
                   ("corruption accuracy (%)", "number", "descending"),
                   ("relative corruption error", "number", "ascending"), ("provenance", None, "")]
        body = []
        for row in rows:
            flag = (' <span class="flag" title="its energy order against another row flips between tier 1 and '
                    'tier 2">⚑</span>') if row["label"] in flagged else ""
            body.append(
                f'<tr id="{board}-{_slug(row["label"])}-T{row["T"]}">'
                + _td(f'<a href="methods/{_slug(row["method"])}.html">{_e(row["method"])}</a>', row["method"])
                + _td(_e(row["variant"] or "default"), row["variant"])
                + _td(_e(row["T"]), row["T"], "num")
                + _stat_td(row["accuracy"]) + _td(str(len(row["seeds"])), len(row["seeds"]), "num")
                + _stat_td(row["decision_step"]) + _stat_td(row["spikes"], "{:,.1f}")
                + _stat_td(row["acs"], "{:,.0f}") + _stat_td(row["macs"], "{:,.0f}")
                + _stat_td(row["tier1_pj"], "{:,.2f}", 1 / PJ_PER_UNIT[unit1])
                + _td(_stat_html(row["tier2_pj"], "{:,.2f}", 1 / PJ_PER_UNIT[unit2]) + flag, row["tier2_pj"][0], "num")
                + _stat_td(row["corruption_accuracy"]) + _stat_td(row["relative_error"], "{:.3f}")
                + _td(self._provenance_links(row["records"], ""), None, "links")
                + "</tr>")
        sources = list(dict.fromkeys(ref["source"] for ref in references))
        reference_rows = []
        for ref in sorted(references, key=lambda ref: -ref["accuracy"]):
            number = sources.index(ref["source"]) + 1
            empty = "".join(_td("—", NAN_VALUE, "num") for _ in range(9))
            reference_rows.append(
                '<tr class="reference">'
                + _td(f'{_e(ref["method"])} <em>(paper reference)</em> <sup><a href="#{board}-ref-{number}">'
                      f'[{number}]</a></sup>', ref["method"])
                + _td(_e(ref["variant"] or "—"), ref["variant"])
                + _td(_number(ref["T"], "{}"), NAN_VALUE if ref["T"] is None else ref["T"], "num")
                + _td(f"{100 * ref['accuracy']:.2f}", 100 * ref["accuracy"], "num")
                + empty + _td(f'<a href="#{board}-ref-{number}">source [{number}]</a>', None, "links") + "</tr>")
        table = (f'<table class="sortable leaderboard" id="{board}-leaderboard">'
                 + _header(columns, sorted_by="accuracy (%)")
                 + '<tbody class="measured">' + "".join(body) + "</tbody>"
                 + (f'<tbody class="references">{"".join(reference_rows)}</tbody>' if reference_rows else "")
                 + "</table>")
        parts = [f'<section id="{board}">', f"<h2>{_e(title)}</h2>",
                 f"<p>Cost model <code>{_e(cost_model)}</code>; {len(records)} runs.</p>", table]
        if sources:
            parts.append('<ol class="sources">' + "".join(
                f'<li id="{board}-ref-{number}">{_e(source)}</li>' for number, source in enumerate(sources, 1))
                + "</ol>")
        parts.append(self._flips_html(flips, records))
        parts.append(self._robustness_html(board, records))
        parts.append(self._plots_html(board, title, cost_model, records))
        parts.append("</section>\n")
        return "\n".join(part for part in parts if part)

    def _flips_html(self, flips: list[tuple], records: list[dict]) -> str:
        if not any(r["energy"].get("tier2_pj") is not None for r in records):
            return '<p class="note">Tier 2 energy is not available for these runs: no tier comparison.</p>'
        if not flips:
            return '<p class="note">No pair of rows changes its energy order between tier 1 and tier 2.</p>'
        items = "".join(f"<li>⚑ <strong>{_e(a)}</strong> is cheaper than <strong>{_e(b)}</strong> in tier 1, "
                        f"but <strong>{_e(b)}</strong> is cheaper in tier 2</li>" for _, _, a, b in flips)
        return (f'<div class="flags"><h3>Energy order flips between tiers</h3><ul>{items}</ul>'
                "<p>Memory traffic (tier 2) reverses these pairs' order under compute alone (tier 1).</p></div>")

    def _robustness_html(self, board: str, records: list[dict]) -> str:
        rows = robustness_rows(records)
        if not rows:
            return ""
        families = corruption_families(rows)
        columns = [("method", "text", "ascending"), ("variant", "text", "ascending"), ("T", "number", "ascending"),
                   ("seeds", "number", "descending"), ("clean accuracy (%)", "number", "descending"),
                   ("corruption accuracy (%)", "number", "descending"),
                   ("relative corruption error", "number", "ascending"),
                   *((f"{family} (%)", "number", "descending") for family in families),
                   ("ANN baseline", "text", "ascending")]
        body = "".join(
            "<tr>" + _td(f'<a href="methods/{_slug(row["method"])}.html">{_e(row["method"])}</a>', row["method"])
            + _td(_e(row["variant"] or "default"), row["variant"]) + _td(_e(row["T"]), row["T"], "num")
            + _td(str(len(row["seeds"])), len(row["seeds"]), "num") + _stat_td(row["clean_accuracy"])
            + _stat_td(row["corruption_accuracy"]) + _stat_td(row["relative_error"], "{:.3f}")
            + "".join(_stat_td(row["families"].get(family, (NAN_VALUE, NAN_VALUE))) for family in families)
            + _td(_e(row["baseline"] or "—"), row["baseline"]) + "</tr>" for row in rows)
        parts = [f'<h3 id="{board}-robustness">Robustness</h3>',
                 "<p>Accuracy under each corruption family: the mean over its corruptions and five severities.</p>",
                 f'<table class="sortable">{_header(columns, "corruption accuracy (%)")}<tbody>{body}</tbody></table>']
        early = [row for row in rows if row["early_exit"]]
        if early:
            columns = [("method", "text", "ascending"), ("variant", "text", "ascending"), ("T", "number", "ascending"),
                       ("clean decision step", "number", "ascending"), ("shift, all corruptions", "number", "ascending"),
                       *((f"shift, {family}", "number", "ascending") for family in families)]
            body = "".join(
                "<tr>" + _td(_e(row["method"]), row["method"]) + _td(_e(row["variant"] or "default"), row["variant"])
                + _td(_e(row["T"]), row["T"], "num") + _stat_td(row["step_clean"])
                + _stat_td(row["step_shift"], "{:+.2f}")
                + "".join(_stat_td(row["step_shift_by_family"].get(family, (NAN_VALUE, NAN_VALUE)), "{:+.2f}")
                          for family in families) + "</tr>" for row in early)
            parts += ["<h4>Decision step under corruption (early-exit methods)</h4>",
                      "<p>Mean decision step under corruption minus the clean one, in time steps "
                      "(positive: the prediction comes later on corrupted inputs).</p>",
                      f'<table class="sortable">{_header(columns)}<tbody>{body}</tbody></table>']
        return "\n".join(parts)

    def _plots_html(self, board: str, title: str, cost_model: str, records: list[dict]) -> str:
        plots = board_plots(records, title, cost_model)
        sweeps = [sweep for sweep in t_sweeps(records, self.grids)
                  if (sweep["dataset"], sweep["profile"]) == (records[0]["dataset"], records[0]["profile"])]
        if sweeps:
            plots["accuracy_vs_T.png"] = plot_accuracy_vs_T(sweeps, f"{title}: accuracy vs T")
        spikes = conversion_spike_plot(records, self.grids, title)
        if spikes is not None:
            plots["accuracy_vs_spikes.png"] = spikes
        figures = []
        for name, png in plots.items():
            self._write_bytes(f"{board}/{name}", png)
            caption = CAPTIONS.get(name) or CAPTIONS["severity"].format(name[len("accuracy_vs_severity_"):-4])
            figures.append(f'<figure><a href="{board}/{name}"><img src="{board}/{name}" alt="{_e(caption)}" '
                           f'width="640"></a><figcaption>{_e(caption)}</figcaption></figure>')
        return '<h3>Plots</h3><div class="plots">' + "".join(figures) + "</div>"

    # method pages

    def _method_page(self, method: str) -> str:
        from benchmark.registry import available_methods

        cls = available_methods().get(method)
        records = [r for r in self.records if r["method"] == method]
        sample = records[0] if records else next(r for g in self.grids.values() for r in g if r["method"] == method)
        citation = getattr(cls, "citation", None) or sample.get("citation", "")
        family = getattr(cls, "family", None) or sample.get("family", "")
        docstring = (sys.modules[cls.__module__].__doc__ or "").strip() if cls is not None else ""
        parts = [f"<p><strong>Paper:</strong> {_e(citation) or '—'}<br><strong>Family:</strong> {_e(family)}</p>"]
        if cls is None:
            parts.append(f'<p class="note">The method <code>{_e(method)}</code> is not installed where this site was '
                         "built: its equations and defaults are not shown.</p>")
        parts.append(self._method_results(method, records))
        if docstring:
            parts += ["<h2>Equations</h2>", "<p>From the method module's docstring:</p>", f"<pre>{_e(docstring)}</pre>"]
        parts.append(self._hyperparameters_html(cls, records))
        parts.append(self._layers_html(records))
        parts.append(self._ablations_html(method))
        return self._page(f"Method: {method}", "\n".join(part for part in parts if part), depth=1)

    def _method_results(self, method: str, records: list[dict]) -> str:
        if not records:
            return '<p class="note">No leaderboard runs; see the ablations below.</p>'
        columns = [("leaderboard", "text", "ascending"), ("variant", "text", "ascending"), ("T", "number", "ascending"),
                   ("accuracy (%)", "number", "descending"), ("seeds", "number", "descending"),
                   ("decision step", "number", "ascending"), ("spikes/sample", "number", "ascending"),
                   ("energy tier 1 (nJ)", "number", "ascending"), ("energy tier 2 (nJ)", "number", "ascending"),
                   ("corruption accuracy (%)", "number", "descending"), ("provenance", None, "")]
        body = []
        for (dataset, profile), subset in by_dataset_profile(records).items():
            board = _slug(f"{dataset}-{profile}")
            for row in summarize(subset):
                body.append("<tr>" + _td(f'<a href="../index.html#{board}">{_e(dataset)} ({_e(profile)})</a>', board)
                            + _td(_e(row["variant"] or "default"), row["variant"]) + _td(_e(row["T"]), row["T"], "num")
                            + _stat_td(row["accuracy"]) + _td(str(len(row["seeds"])), len(row["seeds"]), "num")
                            + _stat_td(row["decision_step"]) + _stat_td(row["spikes"], "{:,.1f}")
                            + _stat_td(row["tier1_pj"], "{:,.2f}", 1e-3) + _stat_td(row["tier2_pj"], "{:,.2f}", 1e-3)
                            + _stat_td(row["corruption_accuracy"])
                            + _td(self._provenance_links(row["records"], "../"), None, "links") + "</tr>")
        return ("<h2>Results</h2>" f'<table class="sortable">{_header(columns)}<tbody>{"".join(body)}</tbody></table>')

    def _hyperparameters_html(self, cls: Any, records: list[dict]) -> str:
        fields = dict(getattr(getattr(cls, "Config", None), "model_fields", {}) or {})
        configs: dict[str, dict] = {}
        for record in records:
            name = f'{record["dataset"]} ({record["profile"]}), {row_label(record["method"], record["variant"])}'
            configs.setdefault(name, record.get("hyperparameters", {}))
        keys = list(dict.fromkeys([*fields, *(key for config in configs.values() for key in config)]))
        if not keys:
            return ""
        head = "".join(f"<th scope=\"col\">{_e(name)}</th>" for name in configs)
        rows = []
        for key in keys:
            field = fields.get(key)
            default = _json(field.default) if field is not None and not field.is_required() else "—"
            description = _e(field.description or "") if field is not None else ""
            values = []
            for config in configs.values():
                value = _json(config[key]) if key in config else "—"
                changed = key in config and field is not None and value != default
                values.append(f'<td class="{"changed" if changed else ""}">{_e(value)}</td>')
            rows.append(f"<tr><th scope=\"row\"><code>{_e(key)}</code></th><td>{_e(default)}</td>"
                        f"<td>{description}</td>{''.join(values)}</tr>")
        return ("<h2>Hyperparameters</h2><p>Defaults of the method's <code>Config</code> and the values the runs "
                "used (highlighted where they differ from the default).</p>"
                f"<table><thead><tr><th scope=\"col\">key</th><th scope=\"col\">default</th>"
                f"<th scope=\"col\">description</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")

    def _layers_html(self, records: list[dict]) -> str:
        if not records:
            return ""
        parts = ["<h2>Per-layer spikes and operations</h2>",
                 "<p>Per test sample, mean ± std over seeds. Effective ACs and MACs: nonzero input events × fan-out, "
                 "by the event kind the layer receives.</p>"]
        columns = [("spikes_per_neuron", "spikes/neuron", "{:.3f}"), ("spikes", "spikes", "{:,.1f}"),
                   ("acs", "effective ACs", "{:,.0f}"), ("macs", "effective MACs", "{:,.0f}"),
                   ("dense", "dense ops", "{:,.0f}"), ("neuron_updates", "neuron updates", "{:,.0f}")]
        for (dataset, profile), subset in by_dataset_profile(records).items():
            for row in summarize(subset):
                layers = row["records"][0].get("layers") or []
                if not layers:
                    continue
                present = [column for column in columns if any(column[0] in layer for layer in layers)]
                head = ("<tr><th scope=\"col\">layer</th><th scope=\"col\">type</th><th scope=\"col\">events in</th>"
                        "<th scope=\"col\">neurons</th>" + "".join(f"<th scope=\"col\">{_e(label)}</th>"
                                                                  for _, label, _ in present) + "</tr>")
                body = []
                for index, layer in enumerate(layers):
                    per_seed = [r["layers"][index] for r in row["records"] if len(r.get("layers") or []) > index]
                    body.append("<tr>" + f"<td>{_e(layer.get('name', index))}</td><td>{_e(layer.get('type', ''))}</td>"
                                f"<td>{_e(layer.get('event_kind_in', ''))}</td>"
                                f"<td class=\"num\">{_e(layer.get('neurons', '—'))}</td>"
                                + "".join(_stat_td(mean_std(l.get(key) for l in per_seed), template)
                                          for key, _, template in present) + "</tr>")
                parts.append(f"<h3>{_e(dataset)} ({_e(profile)}), {_e(row['label'])}, T = {_e(row['T'])}</h3>"
                             f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table>")
        return "\n".join(parts) if len(parts) > 2 else ""

    def _ablations_html(self, method: str) -> str:
        parts = []
        for grid, members in self.grids.items():
            members = [r for r in members if r["method"] == method]
            if not members:
                continue
            axes = grid_axes(members)
            groups: dict[str, list[dict]] = {}
            for record in members:
                key = json.dumps([record["dataset"], record["profile"],
                                  *(record.get("hyperparameters", {}).get(axis, record["T"] if axis == "T" else None)
                                    for axis in axes)], default=str)
                groups.setdefault(key, []).append(record)
            columns = [*((axis, "text", "ascending") for axis in axes), ("accuracy (%)", "number", "descending"),
                       ("seeds", "number", "descending"), ("decision step", "number", "ascending"),
                       ("spikes/sample", "number", "ascending"), ("energy tier 1 (nJ)", "number", "ascending"),
                       ("energy tier 2 (nJ)", "number", "ascending"), ("corruption accuracy (%)", "number", "descending"),
                       ("provenance", None, "")]
            body = []
            points = [(json.loads(key)[2:], group, summarize([{**r, "variant": key, "T": 0} for r in group])[0])
                      for key, group in groups.items()]
            for values, group, row in sorted(points, key=lambda point: -point[2]["accuracy"][0]):
                body.append("<tr>" + "".join(_td(_e(_json(value)), _json(value)) for value in values)
                            + _stat_td(row["accuracy"]) + _td(str(len(group)), len(group), "num")
                            + _stat_td(row["decision_step"]) + _stat_td(row["spikes"], "{:,.1f}")
                            + _stat_td(row["tier1_pj"], "{:,.2f}", 1e-3) + _stat_td(row["tier2_pj"], "{:,.2f}", 1e-3)
                            + _stat_td(row["corruption_accuracy"])
                            + _td(self._provenance_links(group, "../"), None, "links") + "</tr>")
            datasets = ", ".join(sorted({f'{r["dataset"]} ({r["profile"]})' for r in members}))
            parts += [f'<h3 id="grid-{_slug(grid)}">Grid <code>{_e(grid)}</code></h3>',
                      f"<p>{_e(datasets)}; axes: {_e(', '.join(axes) or 'none')}.</p>",
                      f'<table class="sortable">{_header(columns, "accuracy (%)")}<tbody>{"".join(body)}</tbody></table>']
            figures = []
            source = self.grid_image(grid)
            if source:
                figures.append(f'<figure><img src="../{source}" alt="grid {_e(grid)}: accuracy" width="640">'
                               f"<figcaption>Grid {_e(grid)}: accuracy per point (from <code>spikecode grid</code>)"
                               "</figcaption></figure>")
            parts.append('<div class="plots">' + "".join(figures) + "</div>" if figures else "")
        sweeps = [sweep for sweep in t_sweeps([r for r in self.records if r["method"] == method],
                                              {g: [r for r in m if r["method"] == method] for g, m in self.grids.items()})]
        if sweeps:
            name = f"methods/{_slug(method)}-T.png"
            self._write_bytes(name, plot_accuracy_vs_T(sweeps, f"{method}: accuracy vs T"))
            parts.append(f'<h3>Accuracy vs T</h3><figure><img src="{_e(Path(name).name)}" '
                         f'alt="{_e(method)}: accuracy vs T" width="640"><figcaption>Accuracy against the number of '
                         "time steps, mean ± std over seeds</figcaption></figure>")
        return ("<h2>Ablations and sweeps</h2>" + "\n".join(part for part in parts if part)) if parts else ""

    def grid_image(self, grid: str) -> str | None:
        """Copy reports/grids/<grid>/accuracy.png into the site once; its path there, or None."""
        relative = f"grids/{_slug(grid)}/accuracy.png"
        if self.out / relative in self.written:
            return relative
        if self.grids_dir is None:
            return None
        path = Path(self.grids_dir) / grid / "accuracy.png"
        if not path.is_file():
            return None
        self._write_bytes(relative, path.read_bytes())
        return relative

    # provenance

    def _write_provenance(self) -> None:
        entries = [(record, None) for record in self.records]
        entries += [(record, grid) for grid, members in self.grids.items() for record in members]
        sections = []
        for record, grid in entries:
            rid = self.ids[id(record)]
            write_json(self.out / "provenance" / f"{rid}.json", {"grid": grid, **record})
            self.written.append(self.out / "provenance" / f"{rid}.json")
            provenance = record.get("provenance", {})
            versions = ", ".join(f"{_e(k)} {_e(v)}" for k, v in sorted(provenance.get("versions", {}).items()))
            title = (f'{record["dataset"]} ({record["profile"]}) · {row_label(record["method"], record["variant"])} · '
                     f'T = {record["T"]} · seed {record["seed"]}' + (f" · grid {grid}" if grid else ""))
            dirty = " (uncommitted changes)" if provenance.get("git_dirty") else ""
            sections.append(
                f'<section class="provenance" id="{rid}"><h2>{_e(title)}</h2><dl>'
                f'<dt>git commit</dt><dd><code>{_e(provenance.get("git_commit", "—"))}</code>{dirty}</dd>'
                f'<dt>created</dt><dd>{_e(provenance.get("created", "—"))}</dd>'
                f'<dt>device</dt><dd>{_e(provenance.get("device", "—"))}</dd>'
                f'<dt>dataset sha256</dt><dd><code>{_e(provenance.get("dataset_sha256", "—"))}</code></dd>'
                f'<dt>params hash</dt><dd><code>{_e(provenance.get("params_hash", "—"))}</code></dd>'
                f"<dt>versions</dt><dd>{versions or '—'}</dd>"
                f'<dt>hyperparameters</dt><dd><code>{_e(_json(record.get("hyperparameters", {})))}</code></dd>'
                f'<dt>accuracy</dt><dd>{100 * record["accuracy"]:.2f} %</dd>'
                f'<dt>record</dt><dd><a href="provenance/{rid}.json">provenance/{rid}.json</a></dd>'
                "</dl></section>")
        self._write_text("provenance.html", self._page("Provenance", "<p>Every result record, with what produced "
                                                       "it.</p>\n" + "\n".join(sections), depth=0))


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


NAN_VALUE = float("nan")

CAPTIONS = {
    "accuracy_vs_energy.png": "Accuracy against energy tier 1 (compute), Pareto front ringed; error bars: one std "
                              "over seeds",
    "accuracy_vs_energy_tier2.png": "Accuracy against energy tier 2 (compute and memory traffic), Pareto front "
                                    "ringed; error bars: one std over seeds",
    "accuracy_vs_decision_step.png": "Accuracy against the mean decision step; error bars: one std over seeds",
    "decision_step_shift.png": "Decision-step shift under corruption, early-exit methods, per corruption family",
    "accuracy_vs_T.png": "Accuracy against the number of time steps T (T sweeps and grids with a T axis)",
    "accuracy_vs_spikes.png": "Conversion methods: accuracy against spikes per sample (T sweeps and leaderboard "
                              "rows), compared at matched accuracy: each series' cheapest point within 0.5 pp of "
                              "the ann baseline is ringed",
    "severity": "Accuracy against severity, {} corruptions (severity 0: clean)",
}

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d232a;background:#fff}
header,footer{background:#f3f5f7;padding:.6em 1.2em;font-size:.9em}
footer{margin-top:3em;color:#555}
main{padding:0 1.2em;max-width:110em}
a{color:#0b5cad}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border-bottom:1px solid #dde2e7;padding:.3em .6em;text-align:left;vertical-align:top}
td.num{text-align:right;white-space:nowrap}
td.links{font-size:.85em;white-space:nowrap}
thead th{background:#eef1f4;position:sticky;top:0}
th[data-type]{cursor:pointer;user-select:none}
th[data-type]:hover{background:#dfe6ee}
th[aria-sort=ascending]::after{content:" \\25B2";font-size:.75em}
th[aria-sort=descending]::after{content:" \\25BC";font-size:.75em}
.sd{color:#667;font-size:.85em}
tr.reference td{background:#fbf7e8;font-style:normal}
.flag{color:#c0392b}
.flags{border-left:4px solid #c0392b;padding:.2em 1em;background:#fdf3f2}
.note{color:#555}
td.changed{background:#fff3c4}
.plots{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;max-width:660px}
figure img{max-width:100%;height:auto;border:1px solid #e3e7eb}
figcaption{font-size:.85em;color:#555}
pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:.85em}
section.provenance{border-top:1px solid #dde2e7}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dt{font-weight:600}
dd{margin:0;word-break:break-all}
"""

# Click a sortable header to sort every <tbody> of its table by that column (measured rows and
# reference rows each among themselves); click again to reverse. Cells compare by data-value when
# present, else by text; an empty value sorts last either way.
SORTER_JS = """
(function () {
  function value(row, column) {
    var cell = row.cells[column];
    if (!cell) return '';
    return cell.hasAttribute('data-value') ? cell.getAttribute('data-value') : cell.textContent.trim();
  }
  function sortTable(table, th) {
    var column = th.cellIndex, numeric = th.getAttribute('data-type') === 'number';
    var current = th.getAttribute('aria-sort');
    var ascending = current ? current !== 'ascending' : th.getAttribute('data-first') !== 'descending';
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    Array.prototype.forEach.call(table.tBodies, function (body) {
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (r1, r2) {
        var a = value(r1, column), b = value(r2, column);
        if (a === '' || b === '') return (a === '') - (b === '');
        var d = numeric ? parseFloat(a) - parseFloat(b) : a.localeCompare(b, undefined, {numeric: true});
        return ascending ? d : -d;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable th[data-type]'), function (th) {
    th.tabIndex = 0;
    th.title = 'sort by this column (click again to reverse)';
    th.addEventListener('click', function () { sortTable(th.closest('table'), th); });
    th.addEventListener('keydown', function (event) {
      if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); sortTable(th.closest('table'), th); }
    });
  });
})();
"""
