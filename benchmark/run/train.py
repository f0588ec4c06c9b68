"""The training stage: one loop for every trained method, and the conversion step.

- Device: CUDA when present, else the CPU (benchmark.run.runtime); under `torchrun` the network is
  wrapped in DistributedDataParallel, and a method's own `train_step` gets an optimizer that averages
  the gradients over the processes before each step. The global batch is split across processes,
  so the run computes the same gradients as one process.
- Seeds: the data order, dropout, augmentation and the spike encoder are seeded from (seed, epoch), so a run that
  resumes from a checkpoint replays exactly what an uninterrupted run would have done.
- Checkpoint: written atomically after every epoch to `<run>/checkpoint.pt` (not a DVC output, so
  DVC never deletes it); a run started again resumes from it when its settings' fingerprint matches.
- A NaN or exploding loss stops the run with `TrainingDiverged`; the last checkpoint stays.

Environment: `SPIKECODE_FAULT_AFTER_EPOCH=N` kills the process with SIGKILL right after the N-th
epoch's checkpoint is written — fault injection for the resume test, never set in normal use.
"""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as torch_dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from tqdm import tqdm

from benchmark.contract.errors import SpikeCodeError, TrainingDiverged
from benchmark.contract.io import atomic_torch_save, read_json, write_json
from benchmark.contract.method import CodingMethod
from benchmark.contract.provenance import provenance
from benchmark.contract.registry import get_method
from benchmark.data.augment import augment
from benchmark.data.prepared import Prepared, load_prepared
from benchmark.run.config import RUNS_DIR, Params, RunSpec, resolve_run
from benchmark.run.inputs import InputFormat, input_format
from benchmark.run.runtime import (Processes, accuracy, build_method, load_model, model_file, save_model, seed_for)

SHARED_SOURCES = RUNS_DIR / "grids" / "sources"  # source networks of another architecture than the profile's

EXPLODING_LOSS = 1e6
FAULT_ENV = "SPIKECODE_FAULT_AFTER_EPOCH"


def train_loader(data: Prepared, spec: RunSpec, batch_size: int, procs: Processes) -> tuple[DataLoader, DistributedSampler]:
    images, labels = data.train_images, data.train_labels
    if spec.profile.train_subset:
        images, labels = images[: spec.profile.train_subset], labels[: spec.profile.train_subset]
    # One sampler for one process too, so the sample order is the same for any world size.
    sampler = DistributedSampler(TensorDataset(labels), num_replicas=procs.world_size, rank=procs.rank,
                                 shuffle=True, seed=spec.seed)
    if batch_size % procs.world_size:
        raise SpikeCodeError(f"batch size {batch_size} is not divisible by the {procs.world_size} processes")
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size // procs.world_size, sampler=sampler)
    return loader, sampler


def train(spec: RunSpec, progress: bool = True, source: RunSpec | None = None,
          data: Prepared | None = None) -> dict[str, Any]:
    """Trains (or converts) one run and writes `model.pt` and `train.json` under `spec.run_dir`.

    `source`: for a conversion method, the run whose trained network it converts. `data`: the
    dataset to train on instead of `spec.dataset`'s prepared one (benchmark.sweeps.resolution's re-framed subsets).
    """
    procs = Processes.from_env()
    data = data or load_prepared(spec.dataset)
    method = build_method(spec, data)
    if method.family == "conversion":
        if source is None:
            raise SpikeCodeError(f"{spec.method} converts a trained {method.source_method!r}; pass its run as `source`")
        return convert(spec, method, data, procs, source)
    return _train_loop(spec, method, data, procs, progress)


def source_of(params: Params, spec: RunSpec) -> RunSpec | None:
    """The run a conversion method converts (None for a trained method): its source method's run of
    the same dataset, seed and profile; for another architecture than the profile's (a grid's), one
    trained once under `SHARED_SOURCES` and shared by every run converting that architecture."""
    source_name = get_method(spec.method).source_method
    if not source_name:
        return None
    source = resolve_run(params, spec.dataset, source_name, spec.seed, spec.profile_name)
    if source.arch_name != spec.arch_name:
        source = resolve_run(params, spec.dataset, source_name, spec.seed, spec.profile_name,
                             arch=spec.arch_name, label=f"{source_name}@arch={spec.arch_name}", root=SHARED_SOURCES)
    return source


def _train_loop(spec: RunSpec, method: CodingMethod, data: Prepared, procs: Processes, progress: bool) -> dict[str, Any]:
    run_dir = spec.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    epochs = method.config.epochs or spec.profile.epochs
    batch_size = method.config.batch_size or spec.profile.batch_size
    network = method.network.to(procs.device)
    model: nn.Module = DistributedDataParallel(network) if procs.world_size > 1 else network
    optimizer = torch.optim.Adam(network.parameters(), lr=method.config.lr, weight_decay=method.config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loader, sampler = train_loader(data, spec, batch_size, procs)
    fmt = input_format(data)
    step_optimizer = optimizer if procs.world_size == 1 else _GradientAveraging(optimizer, network)

    start_epoch, history, elapsed = _resume(spec, network, optimizer, scheduler, procs)
    if start_epoch == 0:
        initialize_weights(method, data, fmt, spec, procs.device)
    live = _live(run_dir, resumed=start_epoch > 0) if procs.is_main else None
    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()
        sampler.set_epoch(epoch)
        torch.manual_seed(seed_for(spec.seed, epoch, stream=procs.rank))
        encoder = torch.Generator().manual_seed(seed_for(spec.seed, epoch, stream=1000 + procs.rank))
        augmenter = torch.Generator().manual_seed(seed_for(spec.seed, epoch, stream=3000 + procs.rank))
        network.train()
        total_loss, correct, seen = 0.0, 0, 0
        bar = tqdm(loader, desc=f"{spec.method} epoch {epoch + 1}/{epochs}", leave=False,
                   disable=not (progress and procs.is_main))
        for batch, (samples, labels) in enumerate(bar):
            samples = augment(samples.to(procs.device), method.config.augment_shift, method.config.augment_hflip,
                              augmenter)
            encoded, labels = fmt.encode(method, fmt.to_inputs(samples), encoder), labels.to(procs.device)
            if method.train_step is not None:  # the method's own loop (benchmark/contract/method.py)
                loss, prediction = method.train_step(encoded, labels, step_optimizer)
                _check_loss(loss, spec, epoch, batch)
            else:
                output = model(encoded)
                loss = method.loss(output, labels)
                _check_loss(loss, spec, epoch, batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                prediction = method.readout(output.detach()).prediction
            total_loss += float(loss.detach()) * len(labels)
            correct += int((prediction == labels).sum())
            seen += len(labels)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}")
        scheduler.step()
        elapsed += time.perf_counter() - started
        val_accuracy = accuracy(method, data.val_images, data.val_labels, fmt, procs.device,
                                spec.profile.eval_batch_size, seed_for(spec.seed, epoch, 2000))
        history.append({"epoch": epoch + 1, "loss": total_loss / seen, "train_accuracy": correct / seen,
                        "val_accuracy": val_accuracy, "seconds": time.perf_counter() - started})
        if procs.is_main:
            _log_epoch(live, history[-1])
            _save_checkpoint(spec, network, optimizer, scheduler, epoch, history, elapsed)
            print(f"{spec.method} epoch {epoch + 1}/{epochs}: loss {history[-1]['loss']:.4f}, "
                  f"train acc {history[-1]['train_accuracy']:.4f}, val acc {val_accuracy:.4f}, "
                  f"{history[-1]['seconds']:.1f} s", flush=True)
            _inject_fault(epoch)
        procs.barrier()
    if live is not None:
        live.end()
    budget = {"epochs": len(history), "optimizer_steps": _optimizer_steps(optimizer)}
    return _finish(spec, method, data, procs, history, elapsed, budget)


def _optimizer_steps(optimizer: torch.optim.Optimizer) -> int:
    """The optimizer steps taken so far (Adam counts them per parameter; a resumed run's carry on)."""
    return max((int(state["step"]) for state in optimizer.state.values() if "step" in state), default=0)


class _GradientAveraging:
    """The optimizer a method's own `train_step` gets under `torchrun`: `step()` first averages the
    network's gradients over the processes (what DistributedDataParallel does for the harness's loop)."""

    def __init__(self, optimizer: torch.optim.Optimizer, network: nn.Module):
        self.optimizer, self.network = optimizer, network

    def step(self) -> None:
        world = torch_dist.get_world_size()
        for parameter in self.network.parameters():
            if parameter.grad is not None:
                torch_dist.all_reduce(parameter.grad)
                parameter.grad.div_(world)
        self.optimizer.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)


def initialize_weights(method: CodingMethod, data: Prepared, fmt: InputFormat, spec: RunSpec,
                       device: torch.device) -> None:
    """Runs the method's data-driven initialisation on one seeded, encoded training batch (the first
    batch of `calibration_order`; the same on every rank). With `build_method` before it, it gives the
    weights training starts from (benchmark.sweeps.probes rebuilds them so)."""
    torch.manual_seed(seed_for(spec.seed, 0, stream=4000))
    with torch.no_grad():
        chosen = calibration_order(data, spec)[:spec.profile.batch_size]
        inputs = fmt.to_inputs(data.train_images[chosen]).to(device)
        method.initialize(fmt.encode(method, inputs, None))


def _check_loss(loss: torch.Tensor, spec: RunSpec, epoch: int, batch: int) -> None:
    value = float(loss.detach())
    if not math.isfinite(value) or value > EXPLODING_LOSS:
        raise TrainingDiverged(
            f"{spec.method} on {spec.dataset} (seed {spec.seed}): the loss became {value} at epoch {epoch + 1}, "
            f"batch {batch}. Lower the learning rate (methods.{spec.method}.lr, now {spec.hyperparameters.get('lr', 'default')}) "
            f"or check the method's hyperparameters; the last completed epoch's checkpoint is kept."
        )


def _checkpoint_path(spec: RunSpec) -> Path:
    return spec.run_dir / "checkpoint.pt"


def _save_checkpoint(spec, network, optimizer, scheduler, epoch, history, elapsed) -> None:
    atomic_torch_save(
        {"fingerprint": spec.fingerprint(), "epoch": epoch, "network": network.state_dict(),
         "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
         "history": history, "elapsed": elapsed},
        _checkpoint_path(spec),
    )


def _resume(spec, network, optimizer, scheduler, procs) -> tuple[int, list[dict], float]:
    """(first epoch to run, history so far, training seconds so far)."""
    path = _checkpoint_path(spec)
    if not path.exists():
        return 0, [], 0.0
    saved = torch.load(path, map_location=procs.device, weights_only=False)
    if saved["fingerprint"] != spec.fingerprint():
        if procs.is_main:
            print(f"{path}: written under other settings; starting {spec.method} afresh", flush=True)
        return 0, [], 0.0
    network.load_state_dict(saved["network"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    if procs.is_main:
        print(f"resuming {spec.method} from {path} after epoch {saved['epoch'] + 1}", flush=True)
    return saved["epoch"] + 1, saved["history"], saved["elapsed"]


def _live(run_dir: Path, resumed: bool):
    from dvclive import Live  # imported here: it is slow to import and only the main process logs

    return Live(dir=str(run_dir / "live"), resume=resumed, save_dvc_exp=False, dvcyaml=None)


def _log_epoch(live, record: dict[str, Any]) -> None:
    for key in ("loss", "train_accuracy", "val_accuracy"):
        live.log_metric(f"train/{key}", record[key])
    live.next_step()


def _inject_fault(epoch: int) -> None:
    if os.environ.get(FAULT_ENV) == str(epoch + 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _finish(spec, method, data, procs, history, elapsed, budget) -> dict[str, Any]:
    """Writes model.pt and train.json; `budget`: {epochs, optimizer_steps} of the training (for a
    conversion, its source's), recorded with the training seconds as the run's budget."""
    method.network.to("cpu")
    summary = {
        "dataset": spec.dataset, "method": spec.method, "seed": spec.seed, "profile": spec.profile_name,
        "epochs": len(history), "train_seconds": elapsed, "history": history, "fingerprint": spec.fingerprint(),
        "budget": {**budget, "train_seconds": elapsed},
        "world_size": procs.world_size,
        "provenance": provenance(procs.device, data.sha256, spec.hyperparameters),
    }
    if procs.is_main:
        save_model(method, spec, model_file(spec.run_dir))
        write_json(spec.run_dir / "train.json", summary)
        _checkpoint_path(spec).unlink(missing_ok=True)
    procs.barrier()
    return summary


def calibration_order(data: Prepared, spec: RunSpec) -> torch.Tensor:
    """The training samples in a fixed order seeded by the run's seed (initialisation, calibration)."""
    return torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(spec.seed))


def calibration_batches(data: Prepared, spec: RunSpec) -> Iterator[torch.Tensor]:
    """The first `calibration_batches` training batches of `calibration_order`, as an ANN of the
    architecture takes them (`InputFormat.ann_input`): images `[B, C, H, W]` in [0, 1], or for an event
    dataset the frames' mean over time `[B, C, H, W]` (`CodingMethod.encode_frames`)."""
    order, fmt = calibration_order(data, spec), input_format(data)
    batch_size = spec.profile.batch_size
    for index in range(spec.profile.calibration_batches):
        chosen = order[index * batch_size:(index + 1) * batch_size]
        if len(chosen):
            yield fmt.ann_input(fmt.to_inputs(data.train_images[chosen]))


def convert(spec: RunSpec, method: CodingMethod, data: Prepared, procs: Processes, source_spec: RunSpec) -> dict[str, Any]:
    """Conversion family: loads the trained source network and converts it with a calibration set.

    Its `train_seconds` is the source's training time plus the conversion's.
    """
    source = load_model(source_spec, data)
    started = time.perf_counter()
    with torch.no_grad():
        method.convert(source, calibration_batches(data, spec))
    elapsed = time.perf_counter() - started
    source_train = read_json(source_spec.run_dir / "train.json")
    history = [{"epoch": 0, "source": str(model_file(source_spec.run_dir)),
                "source_fingerprint": source_train["fingerprint"], "conversion_seconds": elapsed}]
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    budget = {key: source_train["budget"][key] for key in ("epochs", "optimizer_steps")}
    return _finish(spec, method, data, procs, history, elapsed + source_train["train_seconds"], budget)

