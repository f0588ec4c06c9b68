"""The leaderboard as a static site, rendered with Jinja2 templates from reports/leaderboard.json (its
records and their summary) and the plots the report stage wrote, which it copies.

    index.html                      one sortable leaderboard per (dataset, profile): rows are
                                    (method, variant, T) with mean ± sample std over seeds and the
                                    number of seeds; paper references as labelled rows below them;
                                    pairs whose energy order flips between tiers flagged (⚑); the
                                    robustness table; the board's plots
    methods/<method>.html           the paper, the equations (the method module's docstring), the
                                    hyperparameters (defaults and the runs' values), the per-layer
                                    spike and op breakdown, the ablation tables of its grids
    portability.html                each board run's NIR export (exact, approximate with what differs,
                                    or why not), its round trip through other libraries, and its
                                    fixed-point accuracy (int8/int4 weights, 16-bit membranes)
    claims.html                     every claim of the seed papers with its verdict, the test and
                                    the measured interval, linked to the records behind it
    provenance.html                 one anchored entry per record (every row links to its seeds')
    provenance/<id>.json            the full record (its per-sample results left out: they are in
                                    leaderboard.json)
    <dataset>-<profile>/*.png       copied from reports/<dataset>-<profile>/
    methods/<method>-T.png          copied from reports/methods/
    grids/<grid>/accuracy.png       copied from reports/grids/<grid>/

The pages use relative links only, inline CSS and a small inline script (click a column header to
sort; again to reverse), and no external resource, so the folder works opened from disk and served
by any static host. The output folder is the site's own: files a previous build wrote and this one
did not are removed; a non-empty folder that no build wrote is refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from benchmark.contract.errors import SpikeCodeError
from benchmark.contract.io import atomic_write_bytes, atomic_write_text, read_json, write_json
from benchmark.contract.registry import available_methods
from benchmark.render.claims import MARKS, measured_text, test_text
from benchmark.render.plots import caption, plot_order
from benchmark.render.report import board_folder, method_plot
from benchmark.render.tables import PJ_PER_UNIT
from benchmark.results.aggregate import missing, row_label
from benchmark.results.records import SCHEMA, checked_reference, load_grids
from benchmark.results.summary import slug

MARKER = ".spikecode-site"  # marks a folder this module built
LAYER_COLUMNS = [("spikes_per_neuron", "spikes/neuron", "{:.3f}"), ("spikes", "spikes", "{:,.1f}"),
                 ("acs", "effective ACs", "{:,.0f}"), ("macs", "effective MACs", "{:,.0f}"),
                 ("dense", "dense ops", "{:,.0f}"), ("neuron_updates", "neuron updates", "{:,.0f}")]


class SiteError(SpikeCodeError):
    """A leaderboard the site cannot be built from, or an output folder it must not write into."""


def build_site(leaderboard_json: Path, out_dir: Path, reports_dir: Path | None = None) -> list[Path]:
    """Build the site from `leaderboard_json` and the plots of `reports_dir` (its folder by default;
    reports/grids/ for the grids' images) into `out_dir` (reports/site); return the paths written."""
    leaderboard_json, out_dir = Path(leaderboard_json), Path(out_dir)
    reports_dir = Path(reports_dir) if reports_dir is not None else leaderboard_json.parent
    board = _read_leaderboard(leaderboard_json)
    if not board["records"]:
        raise SiteError(f"{leaderboard_json} holds no records; run `spikecode report` (or `dvc repro`) first")
    for reference in board.get("references", []):
        checked_reference(reference)
    _check_out_dir(out_dir)
    site = _Site(out_dir, reports_dir, board)
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
    if "summary" not in document:
        raise SiteError(f"{path} has no summary of its records; rebuild it with `spikecode report` from this "
                        "version of the suite")
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


# --- Jinja2 --------------------------------------------------------------------------------------


def _data_value(value: Any) -> str:
    """What the sorter compares: empty when not measured, full precision for floats."""
    if missing(value):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _stat_html(stat: list, template: str = "{:.2f}", scale: float = 1.0) -> Markup:
    """"mean ± std" (std in a span), the 95 % confidence interval of the mean as its tooltip."""
    mean, std = stat[:2]
    if missing(mean):
        return Markup("—")
    text = escape(template.format(mean * scale))
    if not missing(std):
        text += Markup(' <span class="sd">± {}</span>').format(template.format(std * scale).lstrip("+"))
    half = stat[2] if len(stat) > 2 else None
    if not missing(half):
        low, high = template.format((mean - half) * scale), template.format((mean + half) * scale)
        return Markup('<span title="95 % CI of the mean: [{}, {}]">{}</span>').format(low, high, text)
    return Markup(text)


def _json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def environment() -> Environment:
    env = Environment(loader=PackageLoader("benchmark.render", "templates"), autoescape=select_autoescape(["j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(slug=lambda text: slug(str(text)), data_value=_data_value, stat_html=_stat_html,
                       tojson_text=_json_text, zip=lambda a, b: list(zip(a, b)),
                       flatten=lambda pairs: [item for pair in pairs for item in pair])
    return env


# --- the site ------------------------------------------------------------------------------------


class _Site:
    def __init__(self, out_dir: Path, reports_dir: Path, document: dict):
        self.out, self.reports = out_dir, reports_dir
        self.records = document["records"]
        self.summary = document["summary"]
        self.written: list[Path] = []
        self.env = environment()
        self.boards = [{**board, "anchor": slug(f"{board['dataset']}-{board['profile']}"),
                        "runs": sum(len(row["runs"]) for row in board["rows"])} for board in self.summary["boards"]]
        self.methods = sorted(self.summary["methods"])
        newest = max((r.get("provenance", {}).get("created", "") for r in self.records), default="")
        self.common = {"boards": self.boards, "methods": self.methods, "schema": SCHEMA, "newest": newest,
                       "baseline": self.summary.get("baseline", "")}

    def _write_text(self, relative: str, text: str) -> None:
        path = self.out / relative
        atomic_write_text(path, text)
        self.written.append(path)

    def _copy(self, source: Path, relative: str) -> str | None:
        """Copies a plot the report wrote into the site; its path there, or None when absent."""
        if not source.is_file():
            return None
        path = self.out / relative
        if path not in self.written:
            atomic_write_bytes(path, source.read_bytes())
            self.written.append(path)
        return relative

    def _render(self, relative: str, template: str, title: str, depth: int, **context: Any) -> None:
        page = self.env.get_template(template).render(title=title, root="../" * depth, **self.common, **context)
        self._write_text(relative, page)

    def build(self) -> list[Path]:
        self._write_text(MARKER, "built by benchmark.render.site (spikecode publish); the whole folder is regenerated\n")
        self.written.remove(self.out / MARKER)
        for board in self.boards:
            folder = board_folder(self.reports, board)
            names = sorted((path.name for path in folder.glob("*.png")), key=plot_order) if folder.is_dir() else []
            board["plots"] = [(name, caption(name)) for name in names
                              if self._copy(folder / name, f"{board['anchor']}/{name}")]
        self._render("index.html", "index.html.j2", "Leaderboard", 0, per_unit=PJ_PER_UNIT)
        for method in self.methods:
            self._render(f"methods/{slug(method)}.html", "method.html.j2", f"Method: {method}", 1,
                         **self._method_context(method))
        self._render_claims()
        self._render_portability()
        self._write_provenance()
        return self.written

    def _render_portability(self) -> None:
        """One entry per exported record (its first seed's detail per row: the seeds share a network shape)."""
        ids = dict(zip(map(id, self.records), self.summary["record_ids"]))
        details = {}
        for board in self.boards:
            entries = []
            for row in board["rows"]:
                record = next((r for r in self.records if ids[id(r)] in row["runs"] and r.get("deployment")), None)
                if record is not None:
                    entries.append({"id": f"deploy-{ids[id(record)]}", "deployment": record["deployment"],
                                    "title": f'{row_label(record["method"], record["variant"])} · T = {record["T"]} · '
                                             f'seed {record["seed"]}'})
            details[board["anchor"]] = entries
        self._render("portability.html", "portability.html.j2", "Portability (NIR) and fixed point", 0,
                     details=details)

    def _render_claims(self) -> None:
        verdicts = [{**verdict, "test_text": test_text(verdict), "measured_text": measured_text(verdict)}
                    for verdict in self.summary.get("claims", [])]
        counts = [(kind, sum(v["verdict"] == kind for v in verdicts)) for kind in MARKS]
        self._render("claims.html", "claims.html.j2", "The seed papers' claims", 0, verdicts=verdicts,
                     counts=counts, marks=MARKS)

    def _method_context(self, method: str) -> dict[str, Any]:
        cls = available_methods().get(method)
        records = [r for r in self.records if r["method"] == method]
        grid_records = [r for g in self._grid_records().values() for r in g if r["method"] == method]
        sample = (records or grid_records or [{}])[0]
        results = [(board, row) for board in self.boards for row in board["rows"] if row["method"] == method]
        entry = self.summary["methods"][method]
        ablations = [{"name": name, **grid, "image": self._copy(self.reports / "grids" / name / "accuracy.png",
                                                                f"grids/{slug(name)}/accuracy.png")}
                     for name, grid in entry["grids"].items()]
        sweep_plot = self._copy(method_plot(self.reports, method), f"methods/{slug(method)}-T.png")
        return {
            "method": method, "installed": cls is not None,
            "citation": getattr(cls, "citation", None) or sample.get("citation", ""),
            "family": getattr(cls, "family", None) or sample.get("family", ""),
            "docstring": (sys.modules[cls.__module__].__doc__ or "").strip() if cls is not None else "",
            "results": results, "hyperparameters": _hyperparameters(cls, records),
            "layers": [(board, row) for board, row in results if row.get("layers")], "layer_columns": LAYER_COLUMNS,
            "anytime_plots": [(board, f"../{board['anchor']}/accuracy_vs_step.png") for board in self.boards
                              if any(row["method"] == method for row in board["rows"])
                              and "accuracy_vs_step.png" in dict(board["plots"])],
            "ablations": ablations, "sweep_plot": sweep_plot and Path(sweep_plot).name,
        }

    def _grid_records(self) -> dict[str, list[dict]]:
        return load_grids(self.reports / "grids")

    def _write_provenance(self) -> None:
        entries = [(record, rid, None) for record, rid in zip(self.records, self.summary["record_ids"])]
        grids = self._grid_records()
        for grid, ids in self.summary["grid_ids"].items():
            entries += [(record, rid, grid) for record, rid in zip(grids.get(grid, []), ids)]
        shown = []
        for record, rid, grid in entries:
            path = self.out / "provenance" / f"{rid}.json"
            write_json(path, {"grid": grid, **{key: value for key, value in record.items() if key != "samples"}})
            self.written.append(path)
            title = (f'{record["dataset"]} ({record["profile"]}) · {row_label(record["method"], record["variant"])} · '
                     f'T = {record["T"]} · seed {record["seed"]}' + (f" · grid {grid}" if grid else ""))
            shown.append({"record": record, "id": rid, "title": title})
        self._render("provenance.html", "provenance.html.j2", "Provenance", 0, entries=shown)


def _hyperparameters(cls: Any, records: list[dict]) -> dict[str, Any]:
    """The hyperparameter table of a method page: each key's default and description (from the
    method's Config) and the value every (board, row) used, flagged where it differs."""
    fields = dict(getattr(getattr(cls, "Config", None), "model_fields", {}) or {})
    configs: dict[str, dict] = {}
    for record in records:
        name = f'{record["dataset"]} ({record["profile"]}), {row_label(record["method"], record["variant"])}'
        configs.setdefault(name, record.get("hyperparameters", {}))
    keys = []
    for key in dict.fromkeys([*fields, *(key for config in configs.values() for key in config)]):
        field = fields.get(key)
        default = _json_text(field.default) if field is not None and not field.is_required() else "—"
        values = [(_json_text(config[key]) if key in config else "—",
                   key in config and field is not None and _json_text(config[key]) != default)
                  for config in configs.values()]
        keys.append({"name": key, "default": default, "description": (field.description or "") if field else "",
                     "cells": values})
    return {"configs": list(configs), "rows": keys}

