"""The runtime every stage shares: processes and devices, seeds, building and loading a run's method,
its model file, and the one inference loop.

- Device: CUDA when present, else the CPU; under `torchrun` each process takes its local GPU (or
  the CPU with the gloo backend).
- Seeds: `seed_for(seed, epoch, stream)` gives every random stream of a run (data order, encoder,
  augmentation, evaluation) its own reproducible seed.
- `predict` is the one inference loop: training's validation accuracy, evaluation, throughput and
  every corruption of the robustness stage run through it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.distributed as torch_dist
from torch import Tensor
from tqdm import tqdm

from benchmark.contract.errors import SpikeCodeError
from benchmark.contract.io import atomic_torch_save, read_json
from benchmark.contract.method import CodingMethod
from benchmark.contract.registry import create_method
from benchmark.data.prepared import Prepared, load_prepared
from benchmark.run.config import RunSpec
from benchmark.run.inputs import InputFormat, input_format


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


# --- a run's method and its model file --------------------------------------------------------------


def build_method(spec: RunSpec, data: Prepared) -> CodingMethod:
    """The run's method, its weights initialised from the run's seed, checked against the contract on
    two training samples."""
    torch.manual_seed(spec.seed)  # weight initialisation
    method = create_method(spec.method, spec.hyperparameters, spec.arch, data.input_shape, data.num_classes)
    with torch.no_grad():
        input_format(data).check(method, data.train_images[:2], spec.dataset)
    return method


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


def test_split(data: Prepared, spec: RunSpec) -> tuple[Tensor, Tensor]:
    """The test samples a run is evaluated on: the first `test_subset` of the test split, or all."""
    samples, labels = data.test_images, data.test_labels
    if spec.profile.test_subset:
        samples, labels = samples[: spec.profile.test_subset], labels[: spec.profile.test_subset]
    return samples, labels


def load_for_evaluation(spec: RunSpec) -> tuple[CodingMethod, Prepared, torch.device, Tensor, Tensor]:
    """(trained method on its device in eval mode, dataset, device, test samples, test labels)."""
    device = Processes.from_env().device
    data = load_prepared(spec.dataset)
    method = load_model(spec, data)
    method.network.to(device).eval()
    samples, labels = test_split(data, spec)
    return method, data, device, samples, labels


# --- the one inference loop ---------------------------------------------------------------------------


def batches(samples: Tensor, batch_size: int, fmt: InputFormat) -> Iterable[Tensor]:
    """Stored uint8 `samples` as the method's float inputs, `batch_size` at a time (`fmt.to_inputs`)."""
    return (fmt.to_inputs(samples[start:start + batch_size]) for start in range(0, len(samples), batch_size))


@dataclass(frozen=True)
class Predictions:
    """What a method decided for every sample: `prediction` `[N]` and `decision_step` `[N]` (its
    readout), and `by_step` `[T, N]`: the prediction of its readout applied to the output up to step
    t = 1..T (`CodingMethod.readout_at`), the anytime view every method gets (`[0, N]` when not asked
    for)."""

    prediction: Tensor
    decision_step: Tensor
    by_step: Tensor

    def accuracy(self, labels: Tensor) -> float:
        return int((self.prediction == labels).sum()) / max(len(labels), 1)


@torch.no_grad()
def predict(method: CodingMethod, inputs: Iterable[Tensor], fmt: InputFormat, device: torch.device | str,
            generator: torch.Generator | None, progress: bool = False, desc: str = "evaluate",
            total: int | None = None, anytime: bool = True) -> Predictions:
    """The predictions of every sample of `inputs` (float input batches on the CPU, as `fmt.to_inputs`
    makes them): each batch is moved to `device`, encoded (`fmt.encode`, drawing from `generator`),
    run, read out, and, with `anytime`, read out at every step. Returns them concatenated, on the CPU."""
    predictions, steps, by_step = [], [], []
    for x in tqdm(inputs, desc=desc, leave=False, disable=not progress, total=total):
        output = method.network(fmt.encode(method, x.to(device), generator))
        readout = method.readout(output)
        predictions.append(readout.prediction.cpu())
        steps.append(readout.decision_step.cpu())
        if anytime:
            by_step.append(torch.stack([method.readout_at(output, t) for t in range(1, len(output) + 1)]).cpu())
    prediction = torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.long)
    decision_step = torch.cat(steps) if steps else torch.zeros(0, dtype=torch.long)
    read = torch.cat(by_step, dim=1) if by_step else torch.zeros(method.T if anytime else 0, len(prediction),
                                                                 dtype=torch.long)
    return Predictions(prediction, decision_step, read)


def accuracy(method: CodingMethod, samples: Tensor, labels: Tensor, fmt: InputFormat, device: torch.device | str,
             batch_size: int, seed: int) -> float:
    """Top-1 accuracy of `method` in eval mode on uint8 `samples`, the encoder seeded by `seed`."""
    method.network.eval()
    predictions = predict(method, batches(samples, batch_size, fmt), fmt, device, torch.Generator().manual_seed(seed),
                          anytime=False)
    return predictions.accuracy(labels)
