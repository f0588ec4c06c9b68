"""Evaluation of one trained run on the clean test set: accuracy, decision steps, ops, throughput.

Writes `<run>/eval.json` (accuracy, decision step statistics, size, throughput, provenance) and
`<run>/ops.json` (per-sample op counts, per layer and per time step). The decision step of a sample
is the number of time steps consumed before its prediction is available (1..T), as the method's
`readout` reports it; the harness only aggregates it. Images and event frames alike go through the
dataset's input format (benchmark.run.inputs), which also tells the op counter the kind of the events
that reach the first synaptic layer.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from benchmark.contract.io import write_json
from benchmark.contract.method import CodingMethod
from benchmark.contract.provenance import provenance
from benchmark.metrics.ops import OpCounter
from benchmark.run.config import RunSpec
from benchmark.run.inputs import InputFormat, input_format
from benchmark.run.runtime import batches, load_for_evaluation, predict, seed_for

RECORD_SCHEMA = 1


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
    predict(method, batches(samples[:batch_size], batch_size, fmt), fmt, device, generator)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    predict(method, batches(samples, batch_size, fmt), fmt, device, generator)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return len(samples) / (time.perf_counter() - started)


def evaluate(spec: RunSpec, progress: bool = True) -> dict[str, Any]:
    method, data, device, samples, labels = load_for_evaluation(spec)
    fmt = input_format(data)
    batch_size = spec.profile.eval_batch_size
    generator = torch.Generator().manual_seed(seed_for(spec.seed, 0, stream=3000))

    with OpCounter(method.network, fmt.semantics(method)) as counter:
        readout = predict(method, batches(samples, batch_size, fmt), fmt, device, generator, progress,
                          f"evaluate {spec.method}", total=-(-len(samples) // batch_size))
    predictions, steps = readout.prediction, readout.decision_step
    counts = counter.compute()
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
        "accuracy": float((predictions == labels).double().mean()),
        "test_samples": len(labels),
        "decision_step": decision_statistics(steps),
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
    write_json(spec.run_dir / "eval.json", record)
    return record
