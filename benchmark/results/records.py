"""Result records: one typed, flat record per run, collected from the stages' files under runs/.

Reads `runs/<dataset>/<method>/<seed>/{eval,train,ops,energy,robust}.json` (written by the
pipeline's stages) and makes one record per run (DESIGN.md, "The result record"):

    dataset, profile, method, family, variant, arch, T, seed, accuracy, val_accuracy, decision_step,
    anytime {accuracy: [per step]}, params, footprint_bytes, throughput_samples_per_s,
    hyperparameters, citation, provenance                                              (eval.json)
    spikes_per_sample, bits_per_sample, ops {dense, acs, macs, neuron_updates, update_acs,
    update_macs, acs_every_step, macs_every_step}, layers                               (ops.json)
    energy {tier1_pj, tier2_pj, cost_model}                                             (energy.json)
    train_seconds, budget {epochs, optimizer_steps, train_seconds},
    converted_from {method, arch, accuracy} or null                                      (train.json)
    robustness {mean_accuracy, relative_error, baseline, per_corruption} or null         (robust.json)
    samples {n, correct, decision_step, by_step_correct, robust_correct} or null          (predictions.npz,
                                                            robust_predictions.npz; benchmark.results.samples)

`relative_error` is the corruption error against the run of the baseline method (`run.baseline` in
params.yaml) of the same dataset and seed (benchmark.metrics.corruption), null until that run has
robustness results. Published figures are checked by `checked_reference` and never mixed with
records.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable

from benchmark.contract.errors import SpikeCodeError
from benchmark.contract.io import read_json
from benchmark.metrics.corruption import relative_corruption_error
from benchmark.results.samples import from_run as samples_from_run

SCHEMA = 2  # of reports/leaderboard.json (2: constant inputs charged once, neuron updates priced in tier 1)
EVAL_SCHEMA = 2  # of the eval.json this module reads

# Files a run needs besides eval.json, and the stage that writes each.
STAGE_FILES = {"train.json": "spikecode train", "ops.json": "spikecode evaluate", "energy.json": "spikecode energy"}
EVAL_KEYS = ("dataset", "profile", "method", "family", "variant", "arch", "T", "seed", "accuracy", "val_accuracy",
             "decision_step", "anytime", "params", "footprint_bytes", "throughput_samples_per_s", "hyperparameters",
             "citation", "provenance")
OP_KEYS = ("dense", "acs", "macs", "neuron_updates", "update_acs", "update_macs", "acs_every_step", "macs_every_step")
ENERGY_KEYS = ("tier1_pj", "tier2_pj", "cost_model")
# Keys every record must have (DESIGN.md, "The result record"), e.g. to be merged.
RECORD_KEYS = ("dataset", "profile", "method", "variant", "arch", "T", "seed", "accuracy", "val_accuracy",
               "decision_step", "anytime", "spikes_per_sample", "bits_per_sample", "ops", "energy", "robustness",
               "params", "footprint_bytes", "train_seconds", "budget", "throughput_samples_per_s", "layers",
               "provenance")
# Keys a record may lack (written by optional stages): "deployment" (spikecode export).
# What a record's provenance must say for its result to be reproduced (benchmark.contract.provenance).
PROVENANCE_KEYS = ("git_commit", "git_dirty", "versions", "device", "numerics", "dataset_sha256", "params_hash")


class ReportError(SpikeCodeError):
    """Results that cannot be reported: missing, incomplete or inconsistent."""


def record_order(record: dict) -> tuple:
    """The order of records everywhere: dataset, profile, method, variant, T, seed."""
    return record["dataset"], record["profile"], record["method"], record["variant"], record["T"], record["seed"]


def collect_records(runs_dir: Path, baseline: str | None = None) -> list[dict]:
    """One result record per run directory holding an eval.json, in `record_order`. Runs the pipeline
    skipped (their dataset is absent) are left out with a message. `baseline`: the method whose run
    of the same dataset and seed is the reference of the relative corruption error (none: no error)."""
    records = []
    for path in Path(runs_dir).glob("*/*/*/eval.json"):
        skipped = read_json(path).get("skipped")
        if skipped:
            print(f"report: leaving out {path.parent} (skipped: {skipped.splitlines()[0]})", file=sys.stderr)
            continue
        records.append(_record(path.parent, baseline))
    return sorted(records, key=record_order)


def _record(run_dir: Path, baseline: str | None) -> dict:
    evaluation = _read_eval(run_dir / "eval.json")
    train, ops, energy = (_read_stage_file(run_dir, name) for name in STAGE_FILES)
    ops = _pick(ops, ("spikes_per_sample", "bits_per_sample", "ops", "layers"), run_dir / "ops.json")
    return {
        **evaluation,
        "spikes_per_sample": ops["spikes_per_sample"],
        "bits_per_sample": ops["bits_per_sample"],
        "ops": _pick(ops["ops"], OP_KEYS, run_dir / "ops.json"),
        "energy": _pick(energy, ENERGY_KEYS, run_dir / "energy.json"),
        "robustness": _read_robustness(run_dir, baseline),
        "train_seconds": _pick(train, ("train_seconds",), run_dir / "train.json")["train_seconds"],
        "budget": _pick(train, ("budget",), run_dir / "train.json")["budget"],
        "layers": ops["layers"],
        "converted_from": _converted_from(train),
        "samples": samples_from_run(run_dir),
        "deployment": _read_deployment(run_dir),
    }


def _read_deployment(run_dir: Path) -> dict | None:
    """deploy.json's summary (benchmark.deploy.stage): "portable" (a table cell: exact, approximate
    with what differs, or why not), "reasons" and "approximations" ([{layer, code, detail}]),
    "roundtrip" {library: {agreement (%), accuracy, first_divergence, status, error}}, and the
    fixed-point evaluation {fp32, int8, int4: {accuracy, tier1_pj, agreement_with_fp32}}; None
    before the export stage ran."""
    path = run_dir / "deploy.json"
    if not path.exists():
        return None
    deploy = read_json(path)
    if "skipped" in deploy:
        return None
    export = deploy["export"]
    portable = deploy.get("portable") or ("exact" if export["exportable"] is True
                                          else "no: " + ", ".join(export.get("reason_codes") or []))
    libraries = ((deploy.get("roundtrip") or {}).get("libraries") or {})
    return {
        "portable": portable,
        "reasons": [{key: reason.get(key) for key in ("layer", "code", "detail")} for reason in export.get("reasons") or []],
        "approximations": [{key: item.get(key) for key in ("layer", "code", "detail")}
                           for item in export.get("approximations") or []],
        "roundtrip": {name: {"status": entry.get("status"), "error": entry.get("error"),
                             "agreement": None if entry.get("prediction_agreement") is None
                             else 100 * entry["prediction_agreement"],
                             "accuracy": entry.get("accuracy"), "first_divergence": entry.get("first_divergence")}
                      for name, entry in libraries.items()},
        "fixed_point": {bits: {key: deploy["fixed_point"][bits].get(key)
                               for key in ("accuracy", "tier1_pj", "agreement_with_fp32")}
                        for bits in ("fp32", "int8", "int4")},
    }


def _converted_from(train: dict) -> dict | None:
    """A conversion run's source: {"method", "arch", "accuracy"} from the eval.json beside the model
    it converted (train.json's history names it); None for a trained run, or a source not evaluated."""
    history = train.get("history") or [{}]
    if "source" not in history[0]:
        return None
    source_eval = Path(history[0]["source"]).parent / "eval.json"
    if not source_eval.exists():
        return None
    evaluation = read_json(source_eval)
    return {key: evaluation.get(key) for key in ("method", "arch", "accuracy")}


def _read_eval(path: Path) -> dict:
    evaluation = read_json(path)
    if evaluation.get("schema") != EVAL_SCHEMA:
        raise ReportError(
            f"{path} has schema {evaluation.get('schema')!r}, this report reads schema {EVAL_SCHEMA}; "
            "re-run `spikecode evaluate` for this run with this version of the suite"
        )
    return _pick(evaluation, EVAL_KEYS, path)


def _read_stage_file(run_dir: Path, name: str) -> dict:
    """Read `name` from runs/<dataset>/<method>/<seed>/, or say which command writes it."""
    path = run_dir / name
    if not path.exists():
        command = (f"{STAGE_FILES[name]} --dataset {run_dir.parent.parent.name} --method {run_dir.parent.name} "
                   f"--seed {run_dir.name}")
        raise ReportError(f"run {run_dir} has eval.json but no {name}; run `{command}` (or `dvc repro`), "
                          "then report again")
    return read_json(path)


def _read_robustness(run_dir: Path, baseline: str | None) -> dict | None:
    """robust.json's summary, with the corruption error relative to the baseline method's run of the
    same dataset and seed (`<dataset>/<baseline>/<seed>`; None until that run has robustness results)."""
    path = run_dir / "robust.json"
    if not path.exists():
        return None
    result = _pick(read_json(path), ("mean_accuracy", "per_corruption"), path)
    baseline_path = run_dir.parent.parent / baseline / run_dir.name / "robust.json" if baseline else None
    has_baseline = baseline_path is not None and baseline_path.exists()
    return {
        "mean_accuracy": result["mean_accuracy"],
        "relative_error": relative_corruption_error(result, read_json(baseline_path)) if has_baseline else None,
        "baseline": f"{run_dir.parent.parent.name}/{baseline}/{run_dir.name}" if has_baseline else None,
        "per_corruption": result["per_corruption"],
    }


def _pick(document: dict, keys: Iterable[str], path: Path) -> dict:
    missing = [key for key in keys if key not in document]
    if missing:
        raise ReportError(f"{path} lacks the key(s) {missing}; re-run the stage that writes it")
    return {key: document[key] for key in keys}


# --- paper references ------------------------------------------------------------------------------


def checked_reference(reference: dict) -> dict:
    """A published figure `{dataset, method, accuracy in [0, 1], source[, T, variant]}`, checked."""
    missing = [key for key in ("dataset", "method", "accuracy", "source") if key not in reference]
    if missing:
        raise ReportError(f"paper reference {reference!r} lacks {missing}; give dataset, method, accuracy and source")
    accuracy = reference["accuracy"]
    if not isinstance(accuracy, (int, float)) or not 0 <= accuracy <= 1:
        raise ReportError(
            f"paper reference {reference!r} has accuracy {accuracy!r}; give a fraction in [0, 1] (0.929, not 92.9)"
        )
    return {"variant": "", "T": None, **reference}


def unique_items(items: list[dict]) -> list[dict]:
    """`items` without repeats (the same reference given twice, e.g. by a merge and params.yaml)."""
    seen, unique = set(), []
    for item in items:
        key = json.dumps(item, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def load_grids(grids_dir: Path | None) -> dict[str, list[dict]]:
    """{grid name: records} of every reports/grids/<grid>/records.json (none when the folder is absent)."""
    grids: dict[str, list[dict]] = {}
    if grids_dir is None or not Path(grids_dir).is_dir():
        return grids
    for path in sorted(Path(grids_dir).glob("*/records.json")):
        document = read_json(path)
        if not isinstance(document, dict) or document.get("schema") != SCHEMA:
            version = document.get("schema") if isinstance(document, dict) else None
            raise ReportError(f"{path} has schema {version!r}, this report reads schema {SCHEMA}; "
                              f"re-run `spikecode grid {path.parent.name}` with this version of the suite")
        grids[document.get("grid") or path.parent.name] = document["records"]
    return grids
