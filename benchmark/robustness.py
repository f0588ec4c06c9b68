"""Accuracy and decision step of a coding method under corruption, and the relative corruption error.

For every corruption c and severity s = 1..5 the harness corrupts the clean test set, seeded per
sample, so every method compared with the same `seed` sees byte-identical corrupted inputs:

    images       `benchmark.corruptions.corrupt` on the images (`evaluate_robustness`)
    event data   `benchmark.corruptions.corrupt_events` (noise_events, drop_events, time_jitter) on
                 each sample's events, replayed from the raw files (`benchmark.events.replay_events`),
                 then framed again exactly as prepare framed them (`evaluate_event_robustness`)

runs the method and records

    A(c, s)   top-1 accuracy,          E(c, s) = 1 − A(c, s)
    D(c, s)   mean decision step (the time step at which the prediction is available, 1..T)

    mean_accuracy = (1/|C|) Σ_c (1/|S|) Σ_s A(c, s)          (every corruption weighs the same)

Relative corruption error against a baseline (the ANN of the same architecture and dataset), the
corruption error CE and its mean mCE of Hendrycks & Dietterich, "Benchmarking Neural Network
Robustness to Common Corruptions and Perturbations", ICLR 2019, §3 (there normalised by AlexNet):

    CE_c = Σ_s E_method(c, s) / Σ_s E_baseline(c, s)
    relative_corruption_error = mCE = (1/|C|) Σ_c CE_c

and their "relative mCE", which discounts each model's clean error E_clean:

    relative_mce = (1/|C|) Σ_c Σ_s (E_method(c, s) − E_method,clean) / Σ_s (E_baseline(c, s) − E_baseline,clean)

Values below 1 mean the method degrades less than the baseline.

Shapes: images uint8 `[N, C, H, W]`, labels `[N]`; the method maps `[B, C, H, W]` -> `[T, B, classes]`.
Event data: frames uint8 `[N, T_f, C, H, W]`; the method maps `[T_f, B, C, H, W]` -> `[T, B, classes]`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from benchmark.corruptions import (
    CORRUPTIONS,
    EVENT_CORRUPTIONS,
    OFFICIAL_FAMILIES,
    SEVERITIES,
    corrupt,
    corrupt_events,
    get_corruption,
    sample_seed,
)
from benchmark.data import META_FILE, FrameFormat, frames_to_float, get_dataset, to_unit_float
from benchmark.errors import ConfigError, DataError, SpikeCodeError
from benchmark.events import Framer, Framing, replay_events
from benchmark.io import read_json, write_json
from benchmark.method import CodingMethod
from benchmark.train import forward_inputs

# `sample_seed` stream ids of the method's own randomness (stochastic encoders), apart from the
# corruption ids 1..999, so the encoder's draws never reuse a corruption's stream.
_CLEAN_STREAM = 1000
_OFFICIAL_STREAM = 2000


@torch.no_grad()
def evaluate_robustness(
    method: CodingMethod,
    images_uint8: Tensor,
    labels: Tensor,
    *,
    device: torch.device | str,
    batch_size: int,
    seed: int,
    corruptions: Iterable[str] | None = None,
    official: Mapping[str, tuple[Tensor, Tensor]] | None = None,
    include_clean: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Accuracy and mean decision step of `method` under each corruption at severities 1..5.

    `seed` fixes the corrupted images (pass the same one for every method compared) and the
    method's encoder generator, re-seeded per (corruption, severity) so the results of one
    corruption do not depend on which others are evaluated. `corruptions` defaults to all of
    `CORRUPTIONS`. `official` maps a corruption name to a released corrupted set (uint8 images
    `[S, N, C, H, W]`, severities stacked, and labels `[N]`; `load_cifar10_c`, or `load_mnist_c`
    with `.unsqueeze(0)` for its one severity): it is evaluated instead of the generated one.

    Returns {"per_corruption": {name: {"family", "source" ("generated" | "official"),
    "severities", "accuracy": [per severity], "decision_step_mean": [per severity]}},
    "mean_accuracy", "seed", and "clean_accuracy", "clean_decision_step_mean" when include_clean}.
    """
    official = dict(official or {})
    names = list(CORRUPTIONS) if corruptions is None else list(corruptions)
    for name in names:
        if name not in official:
            get_corruption(name)  # unknown names fail before any work, naming the allowed ones
    names += [name for name in official if name not in names]
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if images_uint8.dim() != 4 or len(images_uint8) != len(labels):
        raise ValueError(f"expected uint8 images [N, C, H, W] and labels [N], got {tuple(images_uint8.shape)} "
                         f"and {tuple(labels.shape)}")
    device = torch.device(device)
    labels = labels.cpu()

    jobs: list[tuple[str, int]] = [(name, s) for name in names if name not in official for s in SEVERITIES]
    for name in official:
        jobs += [(name, s) for s in range(1, len(official[name][0]) + 1)]
    per_corruption: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in official:
            family, source = OFFICIAL_FAMILIES.get(name, "other"), "official"
        else:
            family, source = CORRUPTIONS[name].family, "generated"
        per_corruption[name] = _new_entry(family, source)

    record: dict[str, Any] = {}
    if include_clean:
        accuracy, step = _run(method, lambda start, stop: to_unit_float(images_uint8[start:stop].cpu()), labels,
                              device, batch_size, _generator(seed, _CLEAN_STREAM, 0))
        record["clean_accuracy"], record["clean_decision_step_mean"] = accuracy, step

    for name, severity in tqdm(jobs, desc=f"robustness {method.name}", unit="set", disable=not progress):
        entry = per_corruption[name]
        if name in official:
            images, set_labels = official[name]
            if images.dim() != 5 or len(images[severity - 1]) != len(set_labels):
                raise ValueError(f"official set {name!r}: expected images [S, N, C, H, W] and labels [N], got "
                                 f"{tuple(images.shape)} and {tuple(set_labels.shape)}")
            severity_images = images[severity - 1]
            accuracy, step = _run(method, lambda start, stop: to_unit_float(severity_images[start:stop].cpu()),
                                  set_labels.cpu(), device, batch_size, _generator(seed, _OFFICIAL_STREAM, severity))
        else:
            accuracy, step = _run(
                method,
                lambda start, stop: corrupt(to_unit_float(images_uint8[start:stop].cpu()), name, severity, seed,
                                            range(start, stop)),
                labels, device, batch_size, _generator(seed, CORRUPTIONS[name].id, severity))
        _add_result(entry, severity, accuracy, step)
    return _summary(per_corruption, seed, record)


@torch.no_grad()
def evaluate_event_robustness(
    method: CodingMethod,
    events: Sequence[np.ndarray],
    frames_uint8: Tensor,
    labels: Tensor,
    *,
    framer: Framer,
    device: torch.device | str,
    batch_size: int,
    seed: int,
    corruptions: Iterable[str] | None = None,
    include_clean: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Accuracy and mean decision step of `method` under each event corruption at severities 1..5.

    `events` are the test samples' events (`benchmark.events.replay_events`), `frames_uint8` their
    prepared frames and `framer` the framing that made them: sample i is corrupted by
    `corrupt_events(..., seed, sample_index=i)` and framed again by `framer`, batch by batch. The
    clean accuracy is that of the prepared frames, which `framer` must reproduce from `events`
    (otherwise clean and corrupted frames would not be comparable). `seed` and the encoder
    generator as in `evaluate_robustness`; `corruptions` defaults to all of `EVENT_CORRUPTIONS`.

    Returns the record of `evaluate_robustness`, every entry of family "events", source "generated".

    Shapes: events `N` structured arrays (x, y, t, p), frames uint8 `[N, T_f, C, H, W]`, labels `[N]`.
    """
    names = list(EVENT_CORRUPTIONS) if corruptions is None else list(corruptions)
    unknown = [name for name in names if name not in EVENT_CORRUPTIONS]
    if unknown:
        raise ConfigError(f"unknown event corruption(s) {', '.join(map(repr, unknown))}; "
                          f"allowed: {', '.join(EVENT_CORRUPTIONS)}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if tuple(frames_uint8.shape[1:]) != framer.output_shape or not len(events) == len(frames_uint8) == len(labels):
        raise ValueError(f"expected N samples' events, uint8 frames [N, {', '.join(map(str, framer.output_shape))}] "
                         f"and labels [N], got {len(events)} samples' events, frames {list(frames_uint8.shape)} "
                         f"and labels {list(labels.shape)}")
    for index, sample in enumerate(events):
        if not np.array_equal(framer(sample), frames_uint8[index].cpu().numpy()):
            raise DataError(f"test sample {index}: its events framed with {framer.framing!r} differ from its "
                            "prepared frames (the framing or tonic changed since prepare); run `spikecode prepare` "
                            "again")
    device = torch.device(device)
    labels = labels.cpu()
    frame_format = FrameFormat(T=framer.framing.T, binary=framer.framing.binary)

    record: dict[str, Any] = {}
    if include_clean:
        accuracy, step = _run(method, lambda start, stop: frames_to_float(frames_uint8[start:stop].cpu()), labels,
                              device, batch_size, _generator(seed, _CLEAN_STREAM, 0), frame_format)
        record["clean_accuracy"], record["clean_decision_step_mean"] = accuracy, step

    per_corruption = {name: _new_entry("events", "generated") for name in names}
    jobs = [(name, severity) for name in names for severity in SEVERITIES]
    for name, severity in tqdm(jobs, desc=f"robustness {method.name}", unit="set", disable=not progress):
        accuracy, step = _run(
            method,
            lambda start, stop: frames_to_float(corrupted_frames(events[start:stop], framer, name, severity, seed,
                                                                 range(start, stop))),
            labels, device, batch_size, _generator(seed, EVENT_CORRUPTIONS[name].id, severity), frame_format)
        _add_result(per_corruption[name], severity, accuracy, step)
    return _summary(per_corruption, seed, record)


def corrupted_frames(events: Sequence[np.ndarray], framer: Framer, name: str, severity: int, seed: int,
                     sample_indices: Sequence[int]) -> Tensor:
    """Samples' events corrupted by event corruption `name` at `severity`, then framed by `framer`.
    `sample_indices`: the samples' indices in the test set, which with `seed` fix their randomness.

    Shapes: `B` structured arrays -> uint8 `[B, T_f, C, H, W]`.
    """
    framed = [framer(corrupt_events(sample, framer.sensor_size, name, severity, seed, sample_index=int(index)))
              for sample, index in zip(events, sample_indices, strict=True)]
    return torch.from_numpy(np.stack(framed)) if framed else torch.zeros((0, *framer.output_shape), dtype=torch.uint8)


def _new_entry(family: str, source: str) -> dict[str, Any]:
    return {"family": family, "source": source, "severities": [], "accuracy": [], "decision_step_mean": []}


def _add_result(entry: dict[str, Any], severity: int, accuracy: float, step: float) -> None:
    entry["severities"].append(severity)
    entry["accuracy"].append(accuracy)
    entry["decision_step_mean"].append(step)


def _summary(per_corruption: dict[str, dict[str, Any]], seed: int, record: dict[str, Any]) -> dict[str, Any]:
    mean_per_corruption = [sum(e["accuracy"]) / len(e["accuracy"]) for e in per_corruption.values() if e["accuracy"]]
    return {
        "per_corruption": per_corruption,
        "mean_accuracy": sum(mean_per_corruption) / len(mean_per_corruption) if mean_per_corruption else float("nan"),
        "seed": seed,
        **record,
    }


def relative_corruption_error(record: Mapping[str, Any], baseline_record: Mapping[str, Any]) -> float:
    """mCE of `record` relative to `baseline_record` (Hendrycks & Dietterich, ICLR 2019):
    mean over the record's corruptions c of Σ_s (1 − A_method(c, s)) / Σ_s (1 − A_baseline(c, s))."""
    ratios = []
    for name, method_errors, baseline_errors in _paired_errors(record, baseline_record):
        denominator = sum(baseline_errors)
        if denominator <= 0:
            raise SpikeCodeError(f"relative corruption error undefined for {name!r}: the baseline makes no "
                                 "error at any severity; evaluate on more samples or drop this corruption")
        ratios.append(sum(method_errors) / denominator)
    return sum(ratios) / len(ratios)


def relative_mce(record: Mapping[str, Any], baseline_record: Mapping[str, Any]) -> float:
    """Relative mCE (Hendrycks & Dietterich, ICLR 2019): the corruption errors minus each model's
    clean error, mean over corruptions of Σ_s (E_m(c, s) − E_m,clean) / Σ_s (E_b(c, s) − E_b,clean)."""
    for which, rec in (("record", record), ("baseline record", baseline_record)):
        if "clean_accuracy" not in rec:
            raise ConfigError(f"relative_mce needs clean_accuracy in the {which}; "
                              "evaluate it with include_clean=True")
    clean_method, clean_baseline = 1 - record["clean_accuracy"], 1 - baseline_record["clean_accuracy"]
    ratios = []
    for name, method_errors, baseline_errors in _paired_errors(record, baseline_record):
        denominator = sum(e - clean_baseline for e in baseline_errors)
        if denominator == 0:
            raise SpikeCodeError(f"relative mCE undefined for {name!r}: the baseline's error under it equals "
                                 "its clean error")
        ratios.append(sum(e - clean_method for e in method_errors) / denominator)
    return sum(ratios) / len(ratios)


def _paired_errors(record: Mapping[str, Any],
                   baseline_record: Mapping[str, Any]) -> list[tuple[str, list[float], list[float]]]:
    method_rows, baseline_rows = record["per_corruption"], baseline_record["per_corruption"]
    if not method_rows:
        raise ConfigError("the robustness record has no corruptions to compare")
    missing = [name for name in method_rows if name not in baseline_rows]
    if missing:
        raise ConfigError(f"the baseline record lacks corruption(s) {', '.join(missing)}; evaluate the baseline "
                          f"on the same corruptions (it has: {', '.join(baseline_rows) or 'none'})")
    pairs = []
    for name, row in method_rows.items():
        base = baseline_rows[name]
        if len(row["accuracy"]) != len(base["accuracy"]) or row.get("severities") != base.get("severities"):
            raise ConfigError(f"corruption {name!r}: record and baseline were evaluated at different severities "
                              f"({row.get('severities')} vs {base.get('severities')})")
        pairs.append((name, [1 - a for a in row["accuracy"]], [1 - a for a in base["accuracy"]]))
    return pairs


def _generator(seed: int, stream: int, severity: int) -> torch.Generator:
    return torch.Generator().manual_seed(sample_seed(seed, stream, severity, 0))


def _run(method: CodingMethod, inputs: Callable[[int, int], Tensor], labels: Tensor, device: torch.device,
         batch_size: int, generator: torch.Generator, frames: FrameFormat | None = None) -> tuple[float, float]:
    """(accuracy, mean decision step) over `labels`' samples; `inputs(start, stop)` makes (and
    corrupts) the method's inputs of samples start..stop-1 on the CPU, one batch at a time: images
    `[B, C, H, W]` in [0, 1], or float event frames `[T_f, B, C, H, W]` when `frames` is set."""
    correct, steps = 0, 0.0
    for start in range(0, len(labels), batch_size):
        stop = min(start + batch_size, len(labels))
        readout = method.readout(forward_inputs(method, inputs(start, stop).to(device), frames, generator))
        correct += int((readout.prediction.cpu() == labels[start:stop]).sum())
        steps += float(readout.decision_step.double().sum())
    n = max(len(labels), 1)
    return correct / n, steps / n


# --- the pipeline stage ---------------------------------------------------------------------------

OFFICIAL_SETS = {"mnist": ("mnist_c", "load_mnist_c"), "cifar10": ("CIFAR-10-C", "load_cifar10_c")}


def official_sets(dataset: str, root) -> dict[str, tuple[Tensor, Tensor]]:
    """The released corrupted test sets of `dataset` placed under `root` (datasets/), by corruption
    name, shaped [S, N, C, H, W]; empty when none are placed."""
    from benchmark import corruptions

    if dataset not in OFFICIAL_SETS:
        return {}
    folder, loader_name = OFFICIAL_SETS[dataset]
    base = Path(root) / folder
    if not base.is_dir():
        return {}
    loader = getattr(corruptions, loader_name)
    sets = {}
    for name in sorted(OFFICIAL_FAMILIES):
        candidate = base / name if dataset == "mnist" else base / f"{name}.npy"
        if candidate.exists():
            images, labels = loader(Path(root), name)
            sets[name] = (images if images.ndim == 5 else images.unsqueeze(0), labels)
    return sets


def run_robustness(spec, progress: bool = True) -> dict[str, Any]:
    """The `robustness` stage: writes `<run>/robust.json` for one trained run.

    Every method is evaluated on the same corrupted inputs: the corruption seed is the profile's
    `corruption_seed`, never the run's seed. An event dataset's first `robustness_samples` test
    samples are replayed from its raw files (or simulated again) and get the event corruptions,
    framed as meta.json records they were prepared; the record then holds that `framing`. The
    relative corruption error against the ANN baseline is computed by the report, which holds both
    runs' results (so retraining the baseline does not rerun every method's stage)."""
    from benchmark.config import DATASETS_DIR
    from benchmark.evaluate import load_for_evaluation

    method, data, device, samples, labels = load_for_evaluation(spec)
    if spec.profile.robustness_samples:
        samples, labels = samples[:spec.profile.robustness_samples], labels[:spec.profile.robustness_samples]
    options = {"device": device, "batch_size": spec.profile.eval_batch_size, "seed": spec.profile.corruption_seed,
               "progress": progress}
    if data.frames is not None:
        framer = prepared_framer(spec.dataset, DATASETS_DIR)
        events = replay_events(spec.dataset, "test", range(len(labels)), DATASETS_DIR)
        result = evaluate_event_robustness(method, events, samples, labels, framer=framer, **options)
        result.update({"samples": len(labels), "framing": framer.framing.model_dump()})
    else:
        official = official_sets(spec.dataset, DATASETS_DIR)
        result = evaluate_robustness(method, samples, labels, official=official or None, **options)
        result.update({"samples": len(labels), "official_sets": sorted(official)})
    write_json(spec.run_dir / "robust.json", result)
    return result


def prepared_framer(dataset: str, root: Path) -> Framer:
    """The framer that made the prepared frames of event dataset `dataset` under `root`: the framing
    its meta.json records (params.yaml may have changed since) on its source's sensor."""
    framing = Framing(**read_json(Path(root) / dataset / META_FILE)["framing"])
    return Framer(framing, get_dataset(dataset).events.sensor_size)
