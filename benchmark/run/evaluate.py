"""Evaluation of one trained run on the clean test set: accuracy, decision steps, ops, throughput.

Writes `<run>/eval.json` (accuracy, validation accuracy, decision step statistics, the anytime curve,
size, throughput, provenance), `<run>/ops.json` (per-sample op counts, per layer and per time step) and
`<run>/predictions.npz` (per test sample: label, prediction, decision step, and the prediction after
every step t = 1..T; what the statistics of the results need, without evaluating again).

The anytime curve is the accuracy of the method's readout applied to the output up to step t, for
every t = 1..T (`CodingMethod.readout_at`): every method can answer early, whether or not its own
readout does. The validation accuracy (the validation split, which training never fits) is what
grids and defaults are chosen by; the test accuracy is read once per chosen setting. The decision step of a sample
is the number of time steps consumed before its prediction is available (1..T), as the method's
`readout` reports it; the harness only aggregates it. Images and event frames alike go through the
dataset's input format (benchmark.run.inputs), which also tells the op counter the kind of the events
that reach the first synaptic layer.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.contract.io import atomic_write_bytes, write_json
from benchmark.contract.method import CodingMethod
from benchmark.contract.provenance import provenance
from benchmark.metrics.ops import OpCounter
from benchmark.run.config import RunSpec
from benchmark.run.inputs import InputFormat, input_format
from benchmark.run.paths import METRICS_FILE, PREDICTIONS_FILE
from benchmark.run.runtime import Predictions, batches, load_for_evaluation, predict, seed_for

RECORD_SCHEMA = 2  # 2: val_accuracy, anytime


def decision_statistics(steps: torch.Tensor) -> dict[str, float]:
    steps = steps.double()
    return {
        "mean": float(steps.mean()),
        "p50": float(torch.quantile(steps, 0.5)),
        "p95": float(torch.quantile(steps, 0.95)),
    }


def footprint_bytes(network: torch.nn.Module) -> int:
    tensors = list(network.parameters()) + list(network.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


@torch.no_grad()
def throughput(method: CodingMethod, samples: torch.Tensor, fmt: InputFormat, device: torch.device,
               batch_size: int) -> float:
    """Samples per second of encode + network + readout, op counter off, after one warm-up batch."""
    generator = torch.Generator().manual_seed(0)
    predict(method, batches(samples[:batch_size], batch_size, fmt), fmt, device, generator, anytime=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    predict(method, batches(samples, batch_size, fmt), fmt, device, generator, anytime=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return len(samples) / (time.perf_counter() - started)


def evaluate(spec: RunSpec, progress: bool = True) -> dict[str, Any]:
    method, data, device, samples, labels = load_for_evaluation(spec)
    fmt = input_format(data)
    batch_size = spec.profile.eval_batch_size
    generator = torch.Generator().manual_seed(seed_for(spec.seed, 0, stream=3000))

    with OpCounter(method.network, fmt.semantics(method)) as counter:
        test = predict(method, batches(samples, batch_size, fmt), fmt, device, generator, progress,
                       f"evaluate {spec.method}", total=-(-len(samples) // batch_size), anytime=True)
    counts = counter.compute()
    validation = predict(method, batches(data.val_images, batch_size, fmt), fmt, device,
                         torch.Generator().manual_seed(seed_for(spec.seed, 0, stream=3001)), anytime=False)
    record = {
        "schema": RECORD_SCHEMA,
        "dataset": spec.dataset,
        "profile": spec.profile_name,
        "method": spec.method,
        "family": method.family,
        "variant": method.variant(),
        "arch": spec.arch_name,
        "T": method.T,
        "seed": spec.seed,
        "accuracy": float((test.prediction == labels).double().mean()),
        "val_accuracy": validation.accuracy(data.val_labels),
        "test_samples": len(labels),
        "decision_step": decision_statistics(test.decision_step),
        "anytime": {"accuracy": [float((step == labels).double().mean()) for step in test.by_step]},
        "params": sum(p.numel() for p in method.network.parameters()),
        "footprint_bytes": footprint_bytes(method.network),
        "throughput_samples_per_s": throughput(method, samples[: spec.profile.throughput_samples], fmt, device,
                                               batch_size),
        "hyperparameters": method.config.model_dump(),
        **({"frames": {"T": data.frames.T, "binary": data.frames.binary}} if data.frames is not None else {}),
        "citation": method.citation,
        "provenance": provenance(device, data.sha256, {"hyperparameters": method.config.model_dump(),
                                                       "arch": spec.arch.model_dump(), "profile": spec.profile_name}),
    }
    ops = counts.to_dict()
    write_json(spec.run_dir / "ops.json", {"ops": ops.pop("totals"), **ops})
    save_predictions(spec.run_dir / PREDICTIONS_FILE, test, labels)
    write_json(spec.run_dir / METRICS_FILE, headline(record, ops))
    write_json(spec.run_dir / "eval.json", record)
    return record


def headline(record: dict[str, Any], ops: dict[str, Any]) -> dict[str, float]:
    """The run's metrics.json: what `dvc metrics show` prints of it."""
    return {"accuracy": record["accuracy"], "val_accuracy": record["val_accuracy"],
            "decision_step": record["decision_step"]["mean"], "spikes_per_sample": ops["spikes_per_sample"],
            "bits_per_sample": ops["bits_per_sample"]}


def save_predictions(path: Path, predictions: Predictions, labels: torch.Tensor) -> None:
    """Per test sample, compact (int16): label, prediction, decision step, and `by_step` `[T, N]`."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, label=labels.numpy().astype(np.int16),
                        prediction=predictions.prediction.numpy().astype(np.int16),
                        decision_step=predictions.decision_step.numpy().astype(np.int16),
                        by_step=predictions.by_step.numpy().astype(np.int16))
    atomic_write_bytes(path, buffer.getvalue())
