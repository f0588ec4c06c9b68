"""Temporal-resolution invariance: a method trained at time step Δt, evaluated and retrained at Δt/k.

An event dataset's frames cut each recording into T bins of Δt (`datasets.<name>.framing`). The same
events cut into T·k bins (Δt/k each; `time_window / k` when framing by window) are the same stimulus
seen at a finer time step. A method's hyperparameters at Δt/k come from its own rule,
`CodingMethod.at_time_step(hyperparameters, k)`: by default T·k and nothing else (a method whose
constants are per step keeps them per step, e.g. rate coding's β); sigma-delta also divides its Δt
(`dt`), so α = exp(−Δt/τ) keeps its time constants in the recording's time.

For each method m of the sweep and each pair of factors (j, k) in `factors`, on the same test samples:

    A_m(j → k)   top-1 accuracy of m trained at Δt/j (hyperparameters at_time_step(·, j)), evaluated at
                 Δt/k with the same weights and hyperparameters at_time_step(·, k)

    evaluated shift   max over k of |A_m(1 → k) − A_m(1 → 1)|    trained at Δt, run at Δt/k
    retrained shift   max over k of |A_m(k → k) − A_m(1 → 1)|    retrained at Δt/k

both in percentage points; `tolerance_pp` (1 pp) is the invariance criterion the table marks. A
retrained model differs from the Δt one by its training too: `reference_seeds` trains more seeds at
Δt, and the range of their A(1 → 1) is the scale the retrained shift is read against. Every seed
trained at Δt is also run at every Δt/k, and its per-sample correctness is kept ("at_dt": {seed: {k:
{accuracy, correct}}}, correct as packed bits, benchmark.contract.io), so the claims table can test
"trained at Δt, run at Δt/k" with the paired bootstrap over seeds and test samples. The models trained
and run at the same Δt/k keep theirs too, with their spikes per sample ("retrained": {k: {accuracy,
correct, spikes_per_sample, provenance}}, the sweep's seed): sweeps that differ only in `seed` are the
seeds of a claim that compares methods or time steps at Δt/k (a claim side's `resolution: [names], at:
k`). Every model keeps the provenance its training recorded (commit, versions, device, threads, data
checksum): "provenance" in "retrained", and "at_dt_provenance": {seed: provenance}.

`spikecode resolution NAME` runs sweep NAME of params.yaml `resolution:` and writes
`runs/resolution/NAME/results.json`; the report stage copies it to reports/resolution/NAME/ and draws
its table.md and resolution.png there (benchmark.render.resolution). The framed subsets are cached
under `runs/resolution/frames/` (keyed, so sweeps over the same samples share them); every training
is a harness run under `runs/resolution/NAME/<key>/` (checkpointed: an interrupted sweep resumes).
The samples are the first `train_samples` / `val_samples` / `test_samples` of the prepared splits,
their events replayed and checked against the digests recorded when the dataset was prepared
(`benchmark.data.events.replay_events`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmark.contract.errors import ConfigError
from benchmark.contract.io import atomic_torch_save, pack_bits, write_json
from benchmark.contract.registry import create_method, get_method
from benchmark.data.events import Framer, Framing
from benchmark.data.prepared import Prepared, load_prepared
from benchmark.data.registry import FrameFormat, get_dataset
from benchmark.data.replay import replay_events
from benchmark.metrics.ops import OpCounter
from benchmark.run.config import DATASETS_DIR, RUNS_DIR, Params, ResolutionSweep, resolve_run
from benchmark.run.inputs import input_format
from benchmark.run.robustness import prepared_framer
from benchmark.run.runtime import batches, model_file, predict, trained_summary
from benchmark.run.train import train

RESULTS_FILE = "results.json"  # runs/resolution/<name>/results.json
REPLAY_CHUNK = 2000  # samples whose events are held in memory at once


def finer_framing(framing: Framing, factor: int) -> Framing:
    """The same events framed at Δt/factor: T·factor bins (or windows of time_window/factor)."""
    window = None if framing.time_window is None else framing.time_window / factor
    return framing.model_copy(update={"T": framing.T * factor, "time_window": window})


def framed_subsets(sweep: ResolutionSweep, data: Prepared, framing: Framing, folder: Path,
                   progress: bool) -> tuple[str, dict[int, Prepared]]:
    """(key, the sweep's samples framed at every factor as `Prepared` datasets), cached in `folder`;
    the key hashes the prepared data, the framing and the sample counts."""
    sizes = {"train": sweep.train_samples, "val": sweep.val_samples, "test": sweep.test_samples}
    key = hashlib.sha256(json.dumps({"prepared": data.sha256, "framing": framing.model_dump(), "sizes": sizes,
                                     "factors": sweep.factors}, sort_keys=True).encode()).hexdigest()[:12]
    path = folder / f"frames-{key}.pt"  # keyed by what the frames depend on: sweeps share it
    if not path.exists():
        atomic_torch_save(_frame_splits(sweep, data, framing, sizes, progress), path)
    saved = torch.load(path, weights_only=True)
    return key, {factor: replace(data, **{f"{split}_{part}": saved[factor][split][part] for split in sizes
                                     for part in ("images", "labels")},
                            sha256=f"{data.sha256}:{key}",
                            frames=FrameFormat(T=framing.T * factor, binary=framing.binary))
            for factor in sweep.factors}


def _frame_splits(sweep: ResolutionSweep, data: Prepared, framing: Framing, sizes: dict[str, int],
                  progress: bool) -> dict[int, dict[str, dict[str, torch.Tensor]]]:
    sensor = get_dataset(sweep.dataset).events.sensor_size
    framers = {factor: Framer(finer_framing(framing, factor), sensor) for factor in sweep.factors}
    result: dict[int, dict[str, dict[str, torch.Tensor]]] = {factor: {} for factor in sweep.factors}
    for split, size in sizes.items():
        labels = getattr(data, f"{split}_labels")
        size = min(size, len(labels))
        frames = {factor: [] for factor in sweep.factors}
        chunks = range(0, size, REPLAY_CHUNK)
        for start in tqdm(chunks, desc=f"{sweep.dataset} {split}: replaying events", disable=not progress):
            events = replay_events(sweep.dataset, split, range(start, min(start + REPLAY_CHUNK, size)))
            for factor, framer in framers.items():
                frames[factor] += [torch.from_numpy(framer(sample)) for sample in events]
        for factor in sweep.factors:
            result[factor][split] = {"images": torch.stack(frames[factor]), "labels": labels[:size].clone()}
    return result


def run_resolution(params: Params, name: str, profile: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Runs sweep `name`: trains every method at every factor, evaluates every trained model at
    every factor, and writes the report (module docstring)."""
    if name not in params.resolution:
        raise ConfigError(f"resolution sweep {name!r} is not defined under `resolution:` in params.yaml "
                          f"(defined: {', '.join(params.resolution) or 'none'})")
    sweep = params.resolution[name]
    data = load_prepared(sweep.dataset)
    if data.frames is None:
        raise ConfigError(f"resolution.{name}.dataset: {sweep.dataset} is an image dataset; the sweep re-frames "
                          f"the events of an event dataset at finer time steps")
    framing = prepared_framer(sweep.dataset, DATASETS_DIR).framing  # what made the prepared frames
    folder = RUNS_DIR / "resolution" / name
    key, subsets = framed_subsets(sweep, data, framing, RUNS_DIR / "resolution" / "frames", progress)

    results = {}
    for method in sweep.methods:
        base = resolve_run(params, sweep.dataset, method, sweep.seed, profile,
                           overrides={**sweep.overrides.get(method, {}), "epochs": sweep.epochs})
        retime = get_method(method).at_time_step
        specs = {factor: resolve_run(params, sweep.dataset, method, sweep.seed, profile,
                                     overrides=retime(base.hyperparameters, factor),
                                     label=f"{method}@dt-{factor}", root=folder / key)
                 for factor in sweep.factors}
        for factor, spec in specs.items():
            _train_unless_done(spec, subsets[factor], progress)
        retrained = {str(factor): _retrained(spec, subsets[factor]) for factor, spec in specs.items()}
        matrix = _accuracy_matrix(specs, subsets, retrained)
        at_dt = _seeds_at_dt(specs, sweep, subsets, progress)
        results[method] = {"hyperparameters": {factor: spec.hyperparameters for factor, spec in specs.items()},
                           "accuracy": matrix, "retrained": retrained, "at_dt": at_dt,
                           "at_dt_provenance": {seed: _provenance(replace(specs[1], seed=int(seed))) for seed in at_dt},
                           "seed_accuracy_at_dt": {seed: runs["1"]["accuracy"] for seed, runs in at_dt.items()}}
    record = {**summarize(sweep, framing, results), "profile": specs[1].profile_name}
    write_json(folder / RESULTS_FILE, record)
    return record


def _train_unless_done(spec, data: Prepared, progress: bool) -> None:
    """Trains the run on `data` unless its model exists, trained under its present settings."""
    if trained_summary(spec) is None or not model_file(spec.run_dir).exists():
        train(spec, progress=progress, data=data)


def _accuracy_matrix(specs, subsets: dict[int, Prepared], retrained: dict[str, dict[str, Any]],
                     ) -> dict[str, dict[str, float]]:
    """{trained factor j: {evaluated factor k: A(j → k)}} on each factor's test frames (the diagonal,
    A(k → k), is `retrained`'s)."""
    matrix = {}
    for trained, trained_spec in specs.items():
        weights = _weights(trained_spec)
        matrix[str(trained)] = {str(evaluated): retrained[str(trained)]["accuracy"] if evaluated == trained
                                else float(_test_correct(weights, spec, subsets[evaluated]).mean())
                                for evaluated, spec in specs.items()}
    return matrix


def _retrained(spec, data: Prepared) -> dict[str, Any]:
    """The model trained at `spec`'s Δt/k run at the same Δt/k: accuracy, per-sample correctness (packed
    bits) and spikes per sample, counted from the layers' declared op semantics as the evaluate stage does."""
    method = _loaded(_weights(spec), spec, data)
    with OpCounter(method.network, input_format(data).semantics(method)) as counter:
        correct = _correct(method, spec, data)
    return {"accuracy": float(correct.mean()), "correct": pack_bits(correct),
            "spikes_per_sample": counter.compute().to_dict()["spikes_per_sample"], "provenance": _provenance(spec)}


def _seeds_at_dt(specs, sweep: ResolutionSweep, subsets: dict[int, Prepared],
                 progress: bool) -> dict[str, dict[str, dict[str, Any]]]:
    """{seed: {k: {"accuracy", "correct"}}}: the sweep's seed and every `reference_seeds` run, trained
    at Δt, run at every Δt/k (how far retraining alone moves the accuracy, and the paired samples of
    the claims table)."""
    found = {}
    for seed in [sweep.seed, *sweep.reference_seeds]:
        run = replace(specs[1], seed=seed)
        _train_unless_done(run, subsets[1], progress)
        weights = _weights(run)
        found[str(seed)] = {}
        for factor, spec in specs.items():
            correct = _test_correct(weights, replace(spec, seed=seed), subsets[factor])
            found[str(seed)][str(factor)] = {"accuracy": float(correct.mean()), "correct": pack_bits(correct)}
    return found


def _provenance(spec) -> dict[str, Any]:
    """The provenance its training recorded (commit, versions, device, threads, data checksum) of the
    model the run holds: where and how it was made, whichever later command evaluated it."""
    return trained_summary(spec)["provenance"]


def _weights(spec) -> dict[str, torch.Tensor]:
    return torch.load(model_file(spec.run_dir), map_location="cpu", weights_only=False)["state_dict"]


def _test_correct(weights: dict[str, torch.Tensor], spec, data: Prepared) -> np.ndarray:
    """Per test sample of `data`, whether the network `weights` run with `spec`'s hyperparameters is right."""
    return _correct(_loaded(weights, spec, data), spec, data)


def _loaded(weights: dict[str, torch.Tensor], spec, data: Prepared):
    """`spec`'s method with `weights`, in eval mode."""
    method = create_method(spec.method, spec.hyperparameters, spec.arch, data.input_shape, data.num_classes)
    method.network.load_state_dict(weights)
    method.network.eval()
    return method


def _correct(method, spec, data: Prepared) -> np.ndarray:
    fmt = input_format(data)
    predictions = predict(method, batches(data.test_images, spec.profile.eval_batch_size, fmt), fmt, "cpu",
                          torch.Generator().manual_seed(spec.seed), anytime=False)
    return (predictions.prediction == data.test_labels).numpy()


def summarize(sweep: ResolutionSweep, framing: Framing, results: dict[str, Any]) -> dict[str, Any]:
    """Adds each method's evaluated and retrained shifts (pp) and whether both are within tolerance."""
    for entry in results.values():
        matrix, reference = entry["accuracy"], entry["accuracy"]["1"]["1"]
        entry["evaluated_shift_pp"] = max(abs(matrix["1"][str(k)] - reference) for k in sweep.factors) * 100
        entry["retrained_shift_pp"] = max(abs(matrix[str(k)][str(k)] - reference) for k in sweep.factors) * 100
        entry["invariant"] = max(entry["evaluated_shift_pp"], entry["retrained_shift_pp"]) <= sweep.tolerance_pp
        seeds = entry["seed_accuracy_at_dt"].values()
        entry["seed_range_pp"] = (max(seeds) - min(seeds)) * 100
    return {"sweep": sweep.model_dump(), "framing": framing.model_dump(), "methods": results}
