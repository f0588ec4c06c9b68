"""Merging result records produced on several machines into one leaderboard.

`spikecode report --merge PATH...` takes, for each PATH, a leaderboard.json (or a reports/ folder
holding one) or a runs/ folder (its records are collected as `spikecode report` does), checks the
leaderboard schema, and combines the records:

- a duplicate is the same run met twice: the same dataset, profile, method, variant, T and seed
  under the same settings and data (provenance `params_hash` and `dataset_sha256`). One record is
  kept (the first met, in the order the paths are given) and the run is reported once, with every
  place it was found;
- a conflict is a duplicate whose results differ (e.g. the same run on a GPU and on a CPU): the
  first met is kept and the conflict is reported with the fields that differ, or, with
  `on_conflict="error"`, the merge stops;
- the same run (dataset, profile, method, variant, T, seed) under different settings or data
  cannot share a leaderboard row with the other (the seed would count twice): an error naming both.

Timing (`train_seconds`, `throughput_samples_per_s`) and provenance differ between machines by
nature and are not compared. Paper references are combined without repeats.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Literal

from benchmark.contract.errors import SpikeCodeError
from benchmark.contract.io import read_json
from benchmark.results.records import PROVENANCE_KEYS, RECORD_KEYS, SCHEMA, collect_records, record_order, unique_items

IDENTITY = ("dataset", "profile", "method", "variant", "T", "seed")
SETTINGS = ("params_hash", "dataset_sha256")  # of the provenance
NOT_COMPARED = {"train_seconds", "throughput_samples_per_s", "provenance"}
RELATIVE_TOLERANCE = 1e-9


class MergeError(SpikeCodeError):
    """Leaderboards that cannot be merged: unreadable, of another schema, or clashing."""


def merge_leaderboards(paths: Iterable[Path], on_conflict: Literal["keep-first", "error"] = "keep-first",
                       baseline: str | None = None) -> dict:
    """Combine the records of `paths` (leaderboard.json files, folders holding one, runs/ folders;
    `baseline`: the reference method of the relative corruption error of records collected from runs/).

    Returns {"schema", "records" (sorted as `collect_records` sorts them), "references",
    "sources" ([{"path", "records"}]), "duplicates" ([{"run", "found_in", "kept"}], one entry per
    run found more than once) and "conflicts" ([{"run", "found_in", "kept", "differences"}])}.
    """
    if on_conflict not in ("keep-first", "error"):
        raise MergeError(f"on_conflict must be 'keep-first' or 'error', got {on_conflict!r}")
    paths = [Path(path) for path in paths]
    if not paths:
        raise MergeError("nothing to merge: give one or more leaderboard.json files, reports/ or runs/ folders")
    kept: dict[tuple, tuple[dict, str]] = {}
    found: dict[tuple, list[str]] = {}
    differences: dict[tuple, set[str]] = {}
    by_identity: dict[tuple, tuple[tuple, str]] = {}
    references: list[dict] = []
    sources = []
    for path in paths:
        source, records, file_references = load_records(path, baseline)
        sources.append({"path": source, "records": len(records)})
        references += file_references
        for record in records:
            key = duplicate_key(record)
            identity = key[:len(IDENTITY)]
            if identity in by_identity and by_identity[identity][0] != key:
                other_key, other_source = by_identity[identity]
                raise MergeError(
                    f"run {_run_name(record)} is in {other_source} and {source} under different settings or data "
                    f"(params_hash/dataset_sha256 {other_key[len(IDENTITY):]} vs {key[len(IDENTITY):]}): one "
                    "leaderboard row would count the seed twice; re-run one of them with the other's params.yaml "
                    "and data, or leave one of the two out of the merge"
                )
            by_identity[identity] = (key, source)
            found.setdefault(key, []).append(source)
            if key not in kept:
                kept[key] = (record, source)
                continue
            changed = result_differences(kept[key][0], record)
            if changed:
                differences.setdefault(key, set()).update(changed)
    duplicates = [{"run": _run_name(kept[key][0]), "found_in": places, "kept": kept[key][1]}
                  for key, places in found.items() if len(places) > 1]
    conflicts = [{"run": _run_name(kept[key][0]), "found_in": found[key], "kept": kept[key][1],
                  "differences": sorted(fields)} for key, fields in differences.items()]
    if conflicts and on_conflict == "error":
        raise MergeError("conflicting duplicates (the same run with different results): " + "; ".join(
            f"{c['run']} in {', '.join(c['found_in'])} differs in {', '.join(c['differences'])}" for c in conflicts))
    records = sorted((record for record, _ in kept.values()), key=record_order)
    return {"schema": SCHEMA, "records": records, "references": unique_items(references), "sources": sources,
            "duplicates": duplicates, "conflicts": conflicts}


def load_records(path: Path, baseline: str | None = None) -> tuple[str, list[dict], list[dict]]:
    """(the file or folder read, its records, its references) of one merge input."""
    path = Path(path)
    if path.is_dir():
        if (path / "leaderboard.json").is_file():
            path = path / "leaderboard.json"
        elif any(path.glob("*/*/*/eval.json")):
            return str(path), collect_records(path, baseline), []
        else:
            raise MergeError(f"{path} holds neither a leaderboard.json nor run folders <dataset>/<method>/<seed>/ "
                             "with an eval.json; give a leaderboard.json, a reports/ folder or a runs/ folder")
    elif not path.is_file():
        raise MergeError(f"{path} does not exist; give a leaderboard.json, a reports/ folder or a runs/ folder")
    document = read_json(path)
    if not isinstance(document, dict) or "schema" not in document:
        raise MergeError(f"{path} is not a leaderboard: it has no `schema` key (a leaderboard.json is "
                         '{"schema": ..., "records": [...]}; `spikecode report` writes one)')
    if document["schema"] != SCHEMA:
        raise MergeError(f"{path} has leaderboard schema {document['schema']!r}; this version of spikecode merges "
                         f"schema {SCHEMA} only: rebuild that leaderboard with `spikecode report` from this version "
                         "(or merge with the version that wrote it)")
    records = document.get("records")
    if not isinstance(records, list):
        raise MergeError(f"{path} has no list of `records`")
    for index, record in enumerate(records):
        missing = [key for key in RECORD_KEYS if not isinstance(record, dict) or key not in record]
        if missing:
            raise MergeError(f"{path}: record {index} lacks {missing}; it is not a schema-{SCHEMA} result record")
        provenance = record["provenance"] if isinstance(record["provenance"], dict) else {}
        missing = [key for key in PROVENANCE_KEYS if provenance.get(key) is None]
        if missing:
            raise MergeError(f"{path}: record {index} ({_run_name(record)}) has no {missing} in its provenance; "
                             "a result that cannot be traced to its code, settings and data is not merged: "
                             "re-run it with this version of spikecode")
    return str(path), records, list(document.get("references") or [])


def duplicate_key(record: dict) -> tuple:
    """What makes two records the same run: identity, then the provenance's settings and data."""
    provenance = record.get("provenance") or {}
    return (*(record[key] for key in IDENTITY), *(provenance.get(key) for key in SETTINGS))


def result_differences(a: dict, b: dict) -> list[str]:
    """The top-level keys whose results differ between two records of one run (numbers equal
    within a relative 1e-9; timing and provenance left out)."""
    keys = (set(a) | set(b)) - NOT_COMPARED
    return sorted(key for key in keys if not _same(a.get(key), b.get(key)))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0) or (a != a and b != b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _run_name(record: dict) -> str:
    variant = f"@{record['variant']}" if record["variant"] else ""
    return f"{record['dataset']}/{record['profile']}/{record['method']}{variant}/T={record['T']}/seed {record['seed']}"


def summary(merged: dict) -> str:
    """What a merge did, for the command line: sources, duplicates (each once) and conflicts."""
    lines = [f"merged {len(merged['records'])} records from " + ", ".join(
        f"{source['path']} ({source['records']})" for source in merged["sources"])]
    for duplicate in merged["duplicates"]:
        lines.append(f"duplicate: {duplicate['run']} in {', '.join(duplicate['found_in'])}; kept the one "
                     f"from {duplicate['kept']}")
    for conflict in merged["conflicts"]:
        lines.append(f"CONFLICT: {conflict['run']} differs in {', '.join(conflict['differences'])} between "
                     f"{', '.join(conflict['found_in'])}; kept the one from {conflict['kept']}")
    return "\n".join(lines)
