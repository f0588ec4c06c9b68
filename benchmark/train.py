"""The harness's training loop: one loop for every trained method, and the conversion step.

- Device: CUDA when present, else the CPU; under `torchrun` each process takes its local GPU (or
  the CPU with the gloo backend) and the network is wrapped in DistributedDataParallel. The global
  batch is split across processes, so the run computes the same gradients as one process.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as torch_dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
from tqdm import tqdm

from benchmark.augment import augment
from benchmark.config import RunSpec
from benchmark.data import FrameFormat, Prepared, frames_to_float, load_prepared, to_unit_float
from benchmark.errors import ConfigError, SpikeCodeError, TrainingDiverged
from benchmark.io import atomic_torch_save, read_json, write_json
from benchmark.method import CodingMethod
from benchmark.provenance import provenance
from benchmark.registry import check_contract, check_frames_contract, create_method
from benchmark.semantics import OpSemantics

EXPLODING_LOSS = 1e6
FAULT_ENV = "SPIKECODE_FAULT_AFTER_EPOCH"


@dataclass(frozen=True)
class Processes:
    """Where this process sits in a (possibly distributed) run."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Processes":
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size > 1 and not torch_dist.is_initialized():
            torch_dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank = torch_dist.get_rank() if world_size > 1 else 0
        if torch.cuda.is_available():
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        else:
            device = torch.device("cpu")
        return cls(rank, world_size, device)

    def barrier(self) -> None:
        if self.world_size > 1:
            torch_dist.barrier()


def seed_for(seed: int, epoch: int, stream: int = 0) -> int:
    """A distinct, reproducible seed per (run seed, epoch, stream)."""
    return (seed * 1_000_003 + epoch * 7919 + stream) % (2**62)


def build_method(spec: RunSpec, data: Prepared) -> CodingMethod:
    torch.manual_seed(spec.seed)  # weight initialisation
    method = create_method(spec.method, spec.hyperparameters, spec.arch, data.input_shape, data.num_classes)
    with torch.no_grad():
        if data.frames is None:
            check_contract(method, to_unit_float(data.train_images[:2]))
        else:
            try:
                check_frames_contract(method, frames_to_float(data.train_images[:2]))
            except ConfigError as error:
                raise ConfigError(f"{spec.dataset} (params.yaml datasets.{spec.dataset}.framing): {error}") from None
    return method


def as_inputs(samples: torch.Tensor, frames: FrameFormat | None) -> torch.Tensor:
    """Stored uint8 samples -> what a method's encoder takes: images `[B, C, H, W]` in [0, 1], or,
    for an event dataset (`frames` set), event frames `[T_f, B, C, H, W]` (benchmark/method.py)."""
    return to_unit_float(samples) if frames is None else frames_to_float(samples)


def encode_inputs(method: CodingMethod, inputs: torch.Tensor, frames: FrameFormat | None,
                  generator: torch.Generator | None) -> torch.Tensor:
    """`as_inputs`'s output -> the network's input `[T, B, ...]`: `encode` for images,
    `encode_frames` for event frames."""
    return method.encode(inputs, generator) if frames is None else method.encode_frames(inputs, generator)


def forward_inputs(method: CodingMethod, inputs: torch.Tensor, frames: FrameFormat | None,
                   generator: torch.Generator | None) -> torch.Tensor:
    """`as_inputs`'s output -> the network's output `[T, B, classes]`: `forward` for images,
    `forward_frames` for event frames."""
    return method.forward(inputs, generator) if frames is None else method.forward_frames(inputs, generator)


def input_semantics(method: CodingMethod, frames: FrameFormat | None) -> OpSemantics:
    """The kind of the events that reach the network's first synaptic layer, for the op counter."""
    return method.input_semantics if frames is None else method.frame_semantics(frames.semantics)


def model_file(run_dir: Path) -> Path:
    return run_dir / "model.pt"


def trained_summary(spec: RunSpec) -> dict[str, Any] | None:
    """`spec`'s train.json when the run was trained under its current settings (fingerprint), else None."""
    path = spec.run_dir / "train.json"
    if not path.exists():
        return None
    summary = read_json(path)
    return summary if summary.get("fingerprint") == spec.fingerprint() else None


def save_model(method: CodingMethod, spec: RunSpec, path: Path) -> None:
    atomic_torch_save(
        {
            "method": spec.method,
            "hyperparameters": spec.hyperparameters,
            "arch": spec.arch.model_dump(),
            "input_shape": method.input_shape,
            "num_classes": method.num_classes,
            "fingerprint": spec.fingerprint(),
            "state_dict": method.network.state_dict(),
        },
        path,
    )


def load_model(spec: RunSpec, data: Prepared, path: Path | None = None) -> CodingMethod:
    path = path or model_file(spec.run_dir)
    if not path.exists():
        raise SpikeCodeError(f"{path} not found; train it first: spikecode train --dataset {spec.dataset} "
                             f"--method {spec.method} --seed {spec.seed}")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    method = create_method(spec.method, saved["hyperparameters"], spec.arch, data.input_shape, data.num_classes)
    method.network.load_state_dict(saved["state_dict"])
    return method


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


@torch.no_grad()
def accuracy(method: CodingMethod, images: torch.Tensor, labels: torch.Tensor, device: torch.device,
             batch_size: int, seed: int, frames: FrameFormat | None = None) -> float:
    """Top-1 accuracy on uint8 `images` (event frames when `frames` is set)."""
    method.network.eval()
    generator = torch.Generator().manual_seed(seed)
    correct = 0
    for start in range(0, len(labels), batch_size):
        x = as_inputs(images[start:start + batch_size].to(device), frames)
        readout = method.readout(forward_inputs(method, x, frames, generator))
        correct += int((readout.prediction.cpu() == labels[start:start + batch_size]).sum())
    return correct / max(len(labels), 1)


def train(spec: RunSpec, progress: bool = True, source: RunSpec | None = None,
          data: Prepared | None = None) -> dict[str, Any]:
    """Trains (or converts) one run and writes `model.pt` and `train.json` under `spec.run_dir`.

    `source`: for a conversion method, the run whose trained network it converts. `data`: the
    dataset to train on instead of `spec.dataset`'s prepared one (benchmark.resolution's re-framed subsets).
    """
    procs = Processes.from_env()
    data = data or load_prepared(spec.dataset)
    method = build_method(spec, data)
    if method.family == "conversion":
        if source is None:
            raise SpikeCodeError(f"{spec.method} converts a trained {method.source_method!r}; pass its run as `source`")
        return convert(spec, method, data, procs, source)
    return _train_loop(spec, method, data, procs, progress)


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
    train_step = method.train_step if data.frames is None else method.train_step_frames
    if data.frames is not None and method.train_step is not None and train_step is None:
        raise SpikeCodeError(f"{spec.method} trains with its own train_step, which takes images, and defines no "
                             f"train_step_frames for event frames ({spec.dataset}); add one (benchmark/method.py)")

    start_epoch, history, elapsed = _resume(spec, network, optimizer, scheduler, procs)
    if start_epoch == 0:
        _initialize(method, data, spec, procs)
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
        for batch, (images, labels) in enumerate(bar):
            images = augment(images.to(procs.device), method.config.augment_shift, method.config.augment_hflip,
                             augmenter)
            images, labels = as_inputs(images, data.frames), labels.to(procs.device)
            if train_step is not None:  # the method's own loop (benchmark/method.py)
                loss, prediction = train_step(images, labels, optimizer, encoder)
                _check_loss(loss, spec, epoch, batch)
            else:
                output = model(encode_inputs(method, images, data.frames, encoder))
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
        val_accuracy = accuracy(method, data.val_images, data.val_labels, procs.device,
                                spec.profile.eval_batch_size, seed_for(spec.seed, epoch, 2000), data.frames)
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
    return _finish(spec, method, data, procs, history, elapsed)


def _initialize(method: CodingMethod, data: Prepared, spec: RunSpec, procs: Processes) -> None:
    """Runs the method's data-driven initialisation on one seeded training batch (same on every rank)."""
    torch.manual_seed(seed_for(spec.seed, 0, stream=4000))
    with torch.no_grad():
        if data.frames is None:
            method.initialize(next(calibration_batches(data, spec)).to(procs.device))
        else:
            order = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(spec.seed))
            chosen = order[:spec.profile.batch_size]
            method.initialize_frames(frames_to_float(data.train_images[chosen]).to(procs.device))


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


def _finish(spec, method, data, procs, history, elapsed) -> dict[str, Any]:
    method.network.to("cpu")
    summary = {
        "dataset": spec.dataset, "method": spec.method, "seed": spec.seed, "profile": spec.profile_name,
        "epochs": len(history), "train_seconds": elapsed, "history": history, "fingerprint": spec.fingerprint(),
        "world_size": procs.world_size,
        "provenance": provenance(procs.device, data.sha256, spec.hyperparameters),
    }
    if procs.is_main:
        save_model(method, spec, model_file(spec.run_dir))
        write_json(spec.run_dir / "train.json", summary)
        _checkpoint_path(spec).unlink(missing_ok=True)
    procs.barrier()
    return summary


def calibration_batches(data: Prepared, spec: RunSpec) -> Iterator[torch.Tensor]:
    """The first `calibration_batches` training batches, in a fixed seeded order: images
    `[B, C, H, W]` in [0, 1], or for an event dataset the frames' mean over time `[B, C, H, W]`
    (what an ANN receives; `CodingMethod.encode_frames`)."""
    order = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(spec.seed))
    batch_size = spec.profile.batch_size
    for index in range(spec.profile.calibration_batches):
        chosen = order[index * batch_size:(index + 1) * batch_size]
        if len(chosen):
            if data.frames is None:
                yield to_unit_float(data.train_images[chosen])
            else:
                yield frames_to_float(data.train_images[chosen]).mean(dim=0)


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
    return _finish(spec, method, data, procs, history, elapsed + source_train["train_seconds"])

