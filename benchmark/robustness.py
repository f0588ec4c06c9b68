"""Accuracy and decision step of a coding method under corruption, and the relative corruption error.

For every corruption c and severity s = 1..5 the harness corrupts the clean test set
(`benchmark.corruptions.corrupt`, seeded per sample, so every method compared with the same `seed`
sees byte-identical corrupted images), runs the method and records

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
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch
from torch import Tensor
from tqdm import tqdm

from benchmark.corruptions import CORRUPTIONS, OFFICIAL_FAMILIES, SEVERITIES, corrupt, get_corruption, sample_seed
from benchmark.data import to_unit_float
from benchmark.errors import ConfigError, SpikeCodeError
from benchmark.method import CodingMethod

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
        per_corruption[name] = {"family": family, "source": source, "severities": [], "accuracy": [],
                                "decision_step_mean": []}

    record: dict[str, Any] = {}
    if include_clean:
        accuracy, step = _run(method, images_uint8, labels, device, batch_size,
                              _generator(seed, _CLEAN_STREAM, 0), transform=None)
        record["clean_accuracy"], record["clean_decision_step_mean"] = accuracy, step

    for name, severity in tqdm(jobs, desc=f"robustness {method.name}", unit="set", disable=not progress):
        entry = per_corruption[name]
        if name in official:
            images, set_labels = official[name]
            if images.dim() != 5 or len(images[severity - 1]) != len(set_labels):
                raise ValueError(f"official set {name!r}: expected images [S, N, C, H, W] and labels [N], got "
                                 f"{tuple(images.shape)} and {tuple(set_labels.shape)}")
            accuracy, step = _run(method, images[severity - 1], set_labels.cpu(), device, batch_size,
                                  _generator(seed, _OFFICIAL_STREAM, severity), transform=None)
        else:
            corruption_id = CORRUPTIONS[name].id

            def transform(x: Tensor, indices: range, name: str = name, severity: int = severity) -> Tensor:
                return corrupt(x, name, severity, seed, indices)

            accuracy, step = _run(method, images_uint8, labels, device, batch_size,
                                  _generator(seed, corruption_id, severity), transform=transform)
        entry["severities"].append(severity)
        entry["accuracy"].append(accuracy)
        entry["decision_step_mean"].append(step)

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


def _run(method: CodingMethod, images: Tensor, labels: Tensor, device: torch.device, batch_size: int,
         generator: torch.Generator, transform: Any) -> tuple[float, float]:
    """(accuracy, mean decision step) over uint8 `images`, corrupted batch by batch on the CPU."""
    correct, steps = 0, 0.0
    for start in range(0, len(images), batch_size):
        x = to_unit_float(images[start:start + batch_size].cpu())
        if transform is not None:
            x = transform(x, range(start, start + len(x)))
        readout = method.readout(method.forward(x.to(device), generator))
        correct += int((readout.prediction.cpu() == labels[start:start + len(x)]).sum())
        steps += float(readout.decision_step.double().sum())
    n = max(len(images), 1)
    return correct / n, steps / n


# --- the pipeline stage ---------------------------------------------------------------------------

OFFICIAL_SETS = {"mnist": ("mnist_c", "load_mnist_c"), "cifar10": ("CIFAR-10-C", "load_cifar10_c")}


def official_sets(dataset: str, root) -> dict[str, tuple[Tensor, Tensor]]:
    """The released corrupted test sets of `dataset` placed under `root` (datasets/), by corruption
    name, shaped [S, N, C, H, W]; empty when none are placed."""
    from pathlib import Path

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

    Every method is evaluated on the same corrupted images: the corruption seed is the profile's
    `corruption_seed`, never the run's seed. The relative corruption error against the ANN baseline
    is computed by the report, which holds both runs' results (so retraining the baseline does not
    rerun every method's stage)."""
    from benchmark.config import DATASETS_DIR
    from benchmark.evaluate import load_for_evaluation
    from benchmark.io import write_json

    method, data, device, images, labels = load_for_evaluation(spec)
    if data.frames is not None:
        raise SpikeCodeError(
            f"{spec.dataset} is an event dataset: the image corruptions do not apply to its frames, and the event "
            f"corruptions (benchmark.corruptions.corrupt_events) are not wired into this stage yet; leave "
            f"{spec.dataset} out of the robustness stage"
        )
    samples = spec.profile.robustness_samples
    if samples:
        images, labels = images[:samples], labels[:samples]
    official = official_sets(spec.dataset, DATASETS_DIR)
    result = evaluate_robustness(method, images, labels, device=device, batch_size=spec.profile.eval_batch_size,
                                 seed=spec.profile.corruption_seed, official=official or None, progress=progress)
    result.update({"samples": len(labels), "official_sets": sorted(official)})
    write_json(spec.run_dir / "robust.json", result)
    return result
