"""Evaluation of one trained run on the clean test set: accuracy, decision steps, ops, throughput.

Writes `<run>/eval.json` (accuracy, decision step statistics, size, throughput, provenance) and
`<run>/ops.json` (per-sample op counts, per layer and per time step). The decision step of a sample
is the number of time steps consumed before its prediction is available (1..T), as the method's
`readout` reports it; the harness only aggregates it. On an event dataset the test samples are event
frames, run through the method's `encode_frames` (benchmark/method.py), and the op counter charges
the first layer by the kind of events `frame_semantics` declares.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from tqdm import tqdm

from benchmark.config import RunSpec
from benchmark.data import FrameFormat, Prepared, load_prepared
from benchmark.io import write_json
from benchmark.method import CodingMethod
from benchmark.ops import OpCounter
from benchmark.provenance import provenance
from benchmark.train import Processes, as_inputs, forward_inputs, input_semantics, load_model, seed_for

RECORD_SCHEMA = 1


def test_split(data: Prepared, spec: RunSpec) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = data.test_images, data.test_labels
    if spec.profile.test_subset:
        images, labels = images[: spec.profile.test_subset], labels[: spec.profile.test_subset]
    return images, labels


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
def predict(method: CodingMethod, images: torch.Tensor, device: torch.device, batch_size: int,
            generator: torch.Generator, progress: bool = False, desc: str = "evaluate",
            frames: FrameFormat | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions [N], decision steps [N]) of `method` on uint8 `images` (event frames `[N, T, C, H, W]`
    when `frames` is set)."""
    predictions, steps = [], []
    for start in tqdm(range(0, len(images), batch_size), desc=desc, leave=False, disable=not progress):
        x = as_inputs(images[start:start + batch_size].to(device), frames)
        readout = method.readout(forward_inputs(method, x, frames, generator))
        predictions.append(readout.prediction.cpu())
        steps.append(readout.decision_step.cpu())
    return torch.cat(predictions), torch.cat(steps)


@torch.no_grad()
def throughput(method: CodingMethod, images: torch.Tensor, device: torch.device, batch_size: int,
               frames: FrameFormat | None = None) -> float:
    """Samples per second of encode + network + readout, op counter off, after one warm-up batch."""
    generator = torch.Generator().manual_seed(0)
    predict(method, images[:batch_size], device, batch_size, generator, frames=frames)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    predict(method, images, device, batch_size, generator, frames=frames)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return len(images) / (time.perf_counter() - started)


def load_for_evaluation(spec: RunSpec) -> tuple[CodingMethod, Prepared, torch.device, torch.Tensor, torch.Tensor]:
    """(trained method on its device in eval mode, dataset, device, test images, test labels)."""
    device = Processes.from_env().device
    data = load_prepared(spec.dataset)
    method = load_model(spec, data)
    method.network.to(device).eval()
    images, labels = test_split(data, spec)
    return method, data, device, images, labels


def evaluate(spec: RunSpec, progress: bool = True) -> dict[str, Any]:
    method, data, device, images, labels = load_for_evaluation(spec)
    batch_size = spec.profile.eval_batch_size
    generator = torch.Generator().manual_seed(seed_for(spec.seed, 0, stream=3000))

    with OpCounter(method.network, input_semantics(method, data.frames)) as counter:
        predictions, steps = predict(method, images, device, batch_size, generator, progress, f"evaluate {spec.method}",
                                     frames=data.frames)
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
        "throughput_samples_per_s": throughput(method, images[: spec.profile.throughput_samples], device, batch_size,
                                               data.frames),
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
