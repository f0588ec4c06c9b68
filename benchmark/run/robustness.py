"""The robustness stage: accuracy and decision step of a trained run under every corruption and severity.

For every corruption c and severity s = 1..5 the harness corrupts the clean test set, seeded per
sample, so every method compared with the same `seed` sees byte-identical corrupted inputs:

    images       `benchmark.data.corruptions.corrupt` on the images (`image_corruptions`), or the
                 official corrupted sets when placed
    event data   `benchmark.data.event_corruptions.corrupt_events` (noise_events, drop_events,
                 time_jitter) on each sample's events, replayed from the raw files
                 (`benchmark.data.replay.replay_events`), then framed again exactly as prepare framed
                 them (`event_corruptions`)

and one loop evaluates every corrupted set (`evaluate_corrupted`); it

runs the method and records

    A(c, s)   top-1 accuracy,          E(c, s) = 1 − A(c, s)
    D(c, s)   mean decision step (the time step at which the prediction is available, 1..T)

    mean_accuracy = (1/|C|) Σ_c (1/|S|) Σ_s A(c, s)          (every corruption weighs the same)

The corruption error relative to the baseline is computed from two runs' records
(benchmark.metrics.corruption), when the results are collected.

Shapes: images uint8 `[N, C, H, W]`, labels `[N]`; the method maps `[B, C, H, W]` -> `[T, B, classes]`.
Event data: frames uint8 `[N, T_f, C, H, W]`; the method maps `[T_f, B, C, H, W]` -> `[T, B, classes]`.
"""


from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from benchmark.contract.errors import ConfigError, DataError
from benchmark.contract.io import atomic_write_bytes, read_json, write_json
from benchmark.contract.method import CodingMethod
from benchmark.data.corruptions import (CORRUPTIONS, OFFICIAL_FAMILIES, SEVERITIES, corrupt, get_corruption,
                                        load_cifar10_c, load_mnist_c, sample_seed)
from benchmark.data.event_corruptions import EVENT_CORRUPTIONS, corrupt_events
from benchmark.data.events import Framer, Framing
from benchmark.data.prepared import META_FILE, frames_to_float, to_unit_float
from benchmark.data.registry import FrameFormat, get_dataset
from benchmark.data.replay import replay_events
from benchmark.run.config import DATASETS_DIR, RunSpec
from benchmark.run.inputs import Frames, Images, InputFormat, input_format
from benchmark.run.paths import ROBUST_METRICS_FILE, ROBUST_PREDICTIONS_FILE
from benchmark.run.runtime import load_for_evaluation, predict

# `sample_seed` stream ids of the method's own randomness (stochastic encoders), apart from the
# corruption ids 1..999, so the encoder's draws never reuse a corruption's stream.
_CLEAN_STREAM = 1000
_OFFICIAL_STREAM = 2000

Inputs = Callable[[int, int], Tensor]  # (start, stop) -> the float inputs of samples start..stop-1, on the CPU


@dataclass(frozen=True)
class CorruptedSet:
    """One corruption at one severity: how to make its inputs, and the stream that seeds the encoder."""

    name: str
    severity: int
    inputs: Inputs
    labels: Tensor
    stream: int


@dataclass(frozen=True)
class Corruptions:
    """Every corrupted set of a run, and each corruption's (family, source) in report order."""

    entries: dict[str, tuple[str, str]]
    sets: list[CorruptedSet]


@dataclass(frozen=True)
class CorruptionResults:
    """What `evaluate_corrupted` measured: the robust.json `record`, and each corrupted set's per-sample
    correctness (`correct`: "<corruption>@<severity>" -> bool `[N]`) for the paired statistics."""

    record: dict[str, Any]
    correct: dict[str, np.ndarray]


@torch.no_grad()
def evaluate_corrupted(method: CodingMethod, fmt: InputFormat, clean: Inputs | None, labels: Tensor,
                       corruptions: Corruptions, *, device: torch.device | str, batch_size: int, seed: int,
                       progress: bool = True) -> CorruptionResults:
    """Accuracy and mean decision step of `method` on every corrupted set, and on the clean inputs
    when `clean` is given. The encoder's generator is re-seeded per (corruption, severity) from
    `seed`, so the results of one corruption do not depend on which others are evaluated.

    The record: {"per_corruption": {name: {"family", "source" ("generated" | "official"), "severities",
    "accuracy": [per severity], "decision_step_mean": [per severity]}}, "mean_accuracy", "seed", and
    "clean_accuracy", "clean_decision_step_mean" when `clean` is given}.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device)
    record: dict[str, Any] = {}
    if clean is not None:
        accuracy, step, _ = _score(method, fmt, clean, labels.cpu(), device, batch_size,
                                   _generator(seed, _CLEAN_STREAM, 0))
        record["clean_accuracy"], record["clean_decision_step_mean"] = accuracy, step
    correct = {}
    per_corruption = {name: {"family": family, "source": source, "severities": [], "accuracy": [],
                             "decision_step_mean": []} for name, (family, source) in corruptions.entries.items()}
    for item in tqdm(corruptions.sets, desc=f"robustness {method.name}", unit="set", disable=not progress):
        accuracy, step, correct[f"{item.name}@{item.severity}"] = _score(
            method, fmt, item.inputs, item.labels.cpu(), device, batch_size, _generator(seed, item.stream, item.severity))
        entry = per_corruption[item.name]
        entry["severities"].append(item.severity)
        entry["accuracy"].append(accuracy)
        entry["decision_step_mean"].append(step)
    means = [sum(e["accuracy"]) / len(e["accuracy"]) for e in per_corruption.values() if e["accuracy"]]
    return CorruptionResults({"per_corruption": per_corruption,
                              "mean_accuracy": sum(means) / len(means) if means else float("nan"), "seed": seed,
                              **record}, correct)


def _score(method: CodingMethod, fmt: InputFormat, inputs: Inputs, labels: Tensor, device: torch.device,
           batch_size: int, generator: torch.Generator) -> tuple[float, float, np.ndarray]:
    """(accuracy, mean decision step, per-sample correctness) over `labels`' samples, their inputs
    made one batch at a time."""
    count = len(labels)
    readout = predict(method, (inputs(start, min(start + batch_size, count)) for start in range(0, count, batch_size)),
                      fmt, device, generator, anytime=False)
    n = max(count, 1)
    correct = readout.prediction == labels
    return int(correct.sum()) / n, float(readout.decision_step.double().sum()) / n, correct.numpy()


def _generator(seed: int, stream: int, severity: int) -> torch.Generator:
    return torch.Generator().manual_seed(sample_seed(seed, stream, severity, 0))


# --- images ---------------------------------------------------------------------------------------


def image_corruptions(images_uint8: Tensor, labels: Tensor, seed: int, names: Iterable[str] | None = None,
                      official: Mapping[str, tuple[Tensor, Tensor]] | None = None) -> Corruptions:
    """The generated corruptions `names` (default: all of `CORRUPTIONS`) at severities 1..5 of uint8
    images `[N, C, H, W]`, each sample seeded by (`seed`, corruption, severity, its index); and the
    released sets of `official` (name -> uint8 images `[S, N, C, H, W]`, severities stacked, and labels
    `[N]`; `load_cifar10_c`, or `load_mnist_c` with `.unsqueeze(0)`), evaluated instead of the generated ones."""
    official = dict(official or {})
    names = list(CORRUPTIONS) if names is None else list(names)
    for name in names:
        if name not in official:
            get_corruption(name)  # unknown names fail before any work, naming the allowed ones
    names += [name for name in official if name not in names]
    if images_uint8.dim() != 4 or len(images_uint8) != len(labels):
        raise ValueError(f"expected uint8 images [N, C, H, W] and labels [N], got {tuple(images_uint8.shape)} "
                         f"and {tuple(labels.shape)}")
    entries = {name: (OFFICIAL_FAMILIES.get(name, "other"), "official") if name in official
               else (CORRUPTIONS[name].family, "generated") for name in names}
    sets = [CorruptedSet(name, severity, _corrupted_images(images_uint8, name, severity, seed), labels,
                         CORRUPTIONS[name].id)
            for name in names if name not in official for severity in SEVERITIES]
    for name, (images, set_labels) in official.items():
        if images.dim() != 5 or any(len(severity) != len(set_labels) for severity in images):
            raise ValueError(f"official set {name!r}: expected images [S, N, C, H, W] and labels [N], got "
                             f"{tuple(images.shape)} and {tuple(set_labels.shape)}")
        sets += [CorruptedSet(name, severity, _slices(images[severity - 1]), set_labels, _OFFICIAL_STREAM)
                 for severity in range(1, len(images) + 1)]
    return Corruptions(entries, sets)


def _slices(images_uint8: Tensor) -> Inputs:
    return lambda start, stop: to_unit_float(images_uint8[start:stop].cpu())


def _corrupted_images(images_uint8: Tensor, name: str, severity: int, seed: int) -> Inputs:
    return lambda start, stop: corrupt(to_unit_float(images_uint8[start:stop].cpu()), name, severity, seed,
                                       range(start, stop))


def evaluate_robustness(method: CodingMethod, images_uint8: Tensor, labels: Tensor, *, device: torch.device | str,
                        batch_size: int, seed: int, corruptions: Iterable[str] | None = None,
                        official: Mapping[str, tuple[Tensor, Tensor]] | None = None, include_clean: bool = True,
                        progress: bool = True) -> dict[str, Any]:
    """`evaluate_corrupted` of `method` on images and their corruptions (`image_corruptions`); `seed`
    fixes the corrupted images (pass the same one for every method compared)."""
    sets = image_corruptions(images_uint8, labels, seed, corruptions, official)
    return evaluate_corrupted(method, Images(), _slices(images_uint8) if include_clean else None, labels, sets,
                              device=device, batch_size=batch_size, seed=seed, progress=progress).record


# --- event data -----------------------------------------------------------------------------------


def event_corruptions(events: Sequence[np.ndarray], frames_uint8: Tensor, labels: Tensor, framer: Framer, seed: int,
                      names: Iterable[str] | None = None) -> Corruptions:
    """The event corruptions `names` (default: all of `EVENT_CORRUPTIONS`) at severities 1..5 of the
    samples' `events`: sample i corrupted by `corrupt_events(..., seed, sample_index=i)` and framed
    again by `framer`, batch by batch. `framer` must reproduce the samples' prepared frames
    `frames_uint8` from `events` (otherwise clean and corrupted frames would not be comparable).

    Shapes: events `N` structured arrays (x, y, t, p), frames uint8 `[N, T_f, C, H, W]`, labels `[N]`."""
    names = list(EVENT_CORRUPTIONS) if names is None else list(names)
    unknown = [name for name in names if name not in EVENT_CORRUPTIONS]
    if unknown:
        raise ConfigError(f"unknown event corruption(s) {', '.join(map(repr, unknown))}; "
                          f"allowed: {', '.join(EVENT_CORRUPTIONS)}")
    if tuple(frames_uint8.shape[1:]) != framer.output_shape or not len(events) == len(frames_uint8) == len(labels):
        raise ValueError(f"expected N samples' events, uint8 frames [N, {', '.join(map(str, framer.output_shape))}] "
                         f"and labels [N], got {len(events)} samples' events, frames {list(frames_uint8.shape)} "
                         f"and labels {list(labels.shape)}")
    for index, sample in enumerate(events):
        if not np.array_equal(framer(sample), frames_uint8[index].cpu().numpy()):
            raise DataError(f"test sample {index}: its events framed with {framer.framing!r} differ from its "
                            "prepared frames (the framing or tonic changed since prepare); run `spikecode prepare` "
                            "again")
    return Corruptions({name: ("events", "generated") for name in names},
                       [CorruptedSet(name, severity, _corrupted_events(events, framer, name, severity, seed), labels,
                                     EVENT_CORRUPTIONS[name].id) for name in names for severity in SEVERITIES])


def _corrupted_events(events: Sequence[np.ndarray], framer: Framer, name: str, severity: int, seed: int) -> Inputs:
    return lambda start, stop: frames_to_float(corrupted_frames(events[start:stop], framer, name, severity, seed,
                                                                range(start, stop)))


def evaluate_event_robustness(method: CodingMethod, events: Sequence[np.ndarray], frames_uint8: Tensor,
                              labels: Tensor, *, framer: Framer, device: torch.device | str, batch_size: int,
                              seed: int, corruptions: Iterable[str] | None = None, include_clean: bool = True,
                              progress: bool = True) -> dict[str, Any]:
    """`evaluate_corrupted` of `method` on event frames and their event corruptions (`event_corruptions`);
    the clean accuracy is that of the prepared frames."""
    sets = event_corruptions(events, frames_uint8, labels, framer, seed, corruptions)
    fmt = Frames(FrameFormat(T=framer.framing.T, binary=framer.framing.binary))
    clean = (lambda start, stop: frames_to_float(frames_uint8[start:stop].cpu())) if include_clean else None
    return evaluate_corrupted(method, fmt, clean, labels, sets, device=device, batch_size=batch_size, seed=seed,
                              progress=progress).record


def corrupted_frames(events: Sequence[np.ndarray], framer: Framer, name: str, severity: int, seed: int,
                     sample_indices: Sequence[int]) -> Tensor:
    """Samples' events corrupted by event corruption `name` at `severity`, then framed by `framer`.
    `sample_indices`: the samples' indices in the test set, which with `seed` fix their randomness.

    Shapes: `B` structured arrays -> uint8 `[B, T_f, C, H, W]`.
    """
    framed = [framer(corrupt_events(sample, framer.sensor_size, name, severity, seed, sample_index=int(index)))
              for sample, index in zip(events, sample_indices, strict=True)]
    return torch.from_numpy(np.stack(framed)) if framed else torch.zeros((0, *framer.output_shape), dtype=torch.uint8)


# --- the pipeline stage ---------------------------------------------------------------------------

OFFICIAL_SETS = {"mnist": ("mnist_c", load_mnist_c), "cifar10": ("CIFAR-10-C", load_cifar10_c)}


def official_sets(dataset: str, root) -> dict[str, tuple[Tensor, Tensor]]:
    """The released corrupted test sets of `dataset` placed under `root` (datasets/), by corruption
    name, shaped [S, N, C, H, W]; empty when none are placed."""
    if dataset not in OFFICIAL_SETS:
        return {}
    folder, loader = OFFICIAL_SETS[dataset]
    base = Path(root) / folder
    if not base.is_dir():
        return {}
    sets = {}
    for name in sorted(OFFICIAL_FAMILIES):
        candidate = base / name if dataset == "mnist" else base / f"{name}.npy"
        if candidate.exists():
            images, labels = loader(Path(root), name)
            sets[name] = (images if images.ndim == 5 else images.unsqueeze(0), labels)
    return sets


def run_robustness(spec: RunSpec, progress: bool = True) -> dict[str, Any]:
    """The `robustness` stage: writes `<run>/robust.json` for one trained run, and each corrupted set's
    per-sample correctness to `<run>/robust_predictions.npz`.

    Every method is evaluated on the same corrupted inputs: the corruption seed is the profile's
    `corruption_seed`, never the run's seed. An event dataset's first `robustness_samples` test
    samples are replayed from its raw files (or simulated again) and get the event corruptions,
    framed as meta.json records they were prepared; the record then holds that `framing`."""
    method, data, device, samples, labels = load_for_evaluation(spec)
    if spec.profile.robustness_samples:
        samples, labels = samples[:spec.profile.robustness_samples], labels[:spec.profile.robustness_samples]
    seed = spec.profile.corruption_seed
    options = {"device": device, "batch_size": spec.profile.eval_batch_size, "seed": seed, "progress": progress}
    fmt = input_format(data)
    if data.frames is not None:
        framer = prepared_framer(spec.dataset, DATASETS_DIR)
        events = replay_events(spec.dataset, "test", range(len(labels)), DATASETS_DIR)
        sets = event_corruptions(events, samples, labels, framer, seed)
        extra = {"framing": framer.framing.model_dump()}
    else:
        official = official_sets(spec.dataset, DATASETS_DIR)
        sets = image_corruptions(samples, labels, seed, official=official or None)
        extra = {"official_sets": sorted(official)}
    clean = lambda start, stop: fmt.to_inputs(samples[start:stop].cpu())  # noqa: E731
    results = evaluate_corrupted(method, fmt, clean, labels, sets, **options)
    result = {**results.record, "samples": len(labels), **extra}
    names = sorted(results.correct)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, names=np.array(names), correct=np.stack([results.correct[n] for n in names]))
    atomic_write_bytes(spec.run_dir / ROBUST_PREDICTIONS_FILE, buffer.getvalue())
    write_json(spec.run_dir / ROBUST_METRICS_FILE, {"corruption_accuracy": result["mean_accuracy"]})
    write_json(spec.run_dir / "robust.json", result)
    return result


def prepared_framer(dataset: str, root: Path) -> Framer:
    """The framer that made the prepared frames of event dataset `dataset` under `root`: the framing
    its meta.json records (params.yaml may have changed since) on its source's sensor."""
    framing = Framing(**read_json(Path(root) / dataset / META_FILE)["framing"])
    return Framer(framing, get_dataset(dataset).events.sensor_size)
