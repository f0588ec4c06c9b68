"""Prepared datasets: `prepare` writes `datasets/<name>/prepared.pt` and `meta.json`; `load_prepared` reads
them back for every later stage.

`prepare(name)` finds a dataset's official raw files, checks them against known checksums, and
writes `datasets/<name>/prepared.pt` (uint8 images [N, C, H, W], int64 labels, and a seeded
train/validation split of the official train set) plus `datasets/<name>/meta.json` (split sizes,
seed and checksums, for provenance). `load_prepared(name)` reads them back for every later stage.
Both files are written atomically, so an interrupted `prepare` never leaves a half-written one.

Event datasets (benchmark.data.events: N-MNIST, DVS Gesture, SHD, the simulated Fashion-MNIST-DVS, the
generated temporal-patterns)
prepare the same two files, with uint8 event frames `[N, T, C, H, W]` in place of the images
(`Prepared.frames` says so, and how to read them); `frames_to_float` turns a batch of them into the
time-major `[T, B, C, H, W]` a method's `encode_frames` receives.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmark.contract.errors import ConfigError, DatasetSkipped, DataError
from benchmark.contract.io import atomic_write_bytes, read_json, write_json
from benchmark.data.events import load_events
from benchmark.data.registry import (KNOWN_CHECKSUMS, Checksums, DatasetInfo, FrameFormat, RawData, RawRequest,
                                     available_datasets, get_dataset, sha256_file)
from benchmark.data.split import split_indices

PREPARED_FILE = "prepared.pt"
META_FILE = "meta.json"


@dataclass(frozen=True, eq=False)
class Prepared:
    """A prepared dataset: uint8 images [N, C, H, W] and int64 labels for each split.

    For an event dataset `frames` is set and the `*_images` tensors hold uint8 event frames
    `[N, T, C, H, W]` (`input_shape` is one frame's (C, H, W)); `frames_to_float` makes a batch
    of them the `[T, B, C, H, W]` that `CodingMethod.encode_frames` takes.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    sha256: str  # of prepared.pt: the dataset checksum in every result's provenance
    input_shape: tuple[int, int, int]
    num_classes: int
    frames: FrameFormat | None = None  # set for event datasets


def prepare(
    name: str,
    root: Path = Path("datasets"),
    *,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    verify: bool = True,
    search: Sequence[Path] | None = None,
    checksums: Checksums | None = None,
    allow_download: bool = False,
    framing: Mapping[str, Any] | None = None,
    simulation: Mapping[str, Any] | None = None,
) -> Path:
    """Reads and verifies the raw files of `name`, splits off a validation set and writes
    `root/<name>/prepared.pt` and `root/<name>/meta.json`; returns the path of prepared.pt.

    `search` replaces the dataset's default raw-file folders; `checksums` replaces its known
    checksums (tests use both); `allow_download` lets torchvision (tonic for event datasets) fetch
    missing files. Event datasets only: `framing` (benchmark.data.events.Framing) and, for a simulated
    one, `simulation` (the parameter model its source names, e.g. benchmark.data.event_camera.EventCamera), as
    params.yaml's `datasets.<name>` holds them.
    """
    info = get_dataset(name)
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    dataset_dir = Path(root) / name
    request = RawRequest(
        name=name,
        dataset_dir=dataset_dir,
        search=None if search is None else tuple(Path(place) for place in search),
        verify=verify,
        checksums=KNOWN_CHECKSUMS.get(name, {}) if checksums is None else checksums,
        allow_download=allow_download,
    )
    if info.events is None:
        for key, value in (("framing", framing), ("simulation", simulation)):
            if value is not None:
                raise ConfigError(f"datasets.{name}.{key}: {name} is an image dataset; `{key}` applies to event "
                                  f"datasets only ({', '.join(n for n, i in available_datasets().items() if i.events)})")
        raw = info.load_raw(request)
    else:
        raw = load_events(name, info.events, request, framing, simulation, info.classes)
    _check_raw(info, raw)
    train_index, val_index = split_indices(len(raw.train_labels), round(val_fraction * len(raw.train_labels)), split_seed)
    classes = list(raw.classes or info.classes)
    input_shape = raw.input_shape or info.input_shape
    payload = {
        "train_images": raw.train_images[train_index], "train_labels": raw.train_labels[train_index],
        "val_images": raw.train_images[val_index], "val_labels": raw.train_labels[val_index],
        "test_images": raw.test_images, "test_labels": raw.test_labels,
        "classes": classes,
    }
    if raw.frames is not None:
        payload.update({
            "frames": {"T": raw.frames.T, "binary": raw.frames.binary},
            "input_shape": list(input_shape),
            # the official train-set index of every train and val sample, and the SHA-256 of each
            # sample's events (benchmark.data.event_camera.events_digest), in the order of the splits
            "train_source": train_index, "val_source": val_index,
        })
        if raw.event_digests is not None:
            payload["event_sha256"] = {"train": raw.event_digests["train"][train_index],
                                       "val": raw.event_digests["train"][val_index],
                                       "test": raw.event_digests["test"]}
    prepared = dataset_dir / PREPARED_FILE
    sha256 = _save_payload(payload, prepared)
    write_json(dataset_dir / META_FILE, {
        "name": name,
        "classes": classes,
        "input_shape": list(input_shape),
        "num_classes": info.num_classes,
        "splits": {"train": len(train_index), "val": len(val_index), "test": len(raw.test_labels)},
        "split_seed": split_seed,
        "val_fraction": val_fraction,
        "raw_sha256": raw.sha256,
        "prepared_sha256": sha256,
        **({"prepared_bytes": prepared.stat().st_size} if raw.frames is not None else {}),
        **raw.meta,
    })
    return prepared


def _save_payload(payload: dict[str, Any], path: Path) -> str:
    """`torch.save` straight to a temporary file (no in-memory copy: event frames reach gigabytes),
    then renamed into place; returns the file's SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        sha256 = sha256_file(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return sha256


def load_prepared(name: str, root: Path = Path("datasets")) -> Prepared:
    info = get_dataset(name)
    dataset_dir = Path(root) / name
    for path in (dataset_dir / PREPARED_FILE, dataset_dir / META_FILE):
        if not path.is_file():
            raise DataError(f"{name}: {path} does not exist; run `spikecode prepare {name}` first")
    skipped = read_json(dataset_dir / META_FILE).get("skipped")
    if skipped:
        raise DatasetSkipped(skipped)
    sha256 = sha256_file(dataset_dir / PREPARED_FILE)
    recorded = read_json(dataset_dir / META_FILE).get("prepared_sha256")
    if sha256 != recorded:
        raise DataError(
            f"{name}: {dataset_dir / PREPARED_FILE} has sha256 {sha256} but {META_FILE} records {recorded}; "
            f"it changed after it was prepared: run `spikecode prepare {name}` again"
        )
    # memory-mapped: the tensors are read from the file as they are used (event frames are large)
    payload = torch.load(dataset_dir / PREPARED_FILE, weights_only=True, mmap=True)
    frames = payload.get("frames")
    return Prepared(
        name=name,
        **{key: payload[key] for key in ("train_images", "train_labels", "val_images", "val_labels",
                                         "test_images", "test_labels")},
        classes=list(payload["classes"]),
        sha256=sha256,
        input_shape=tuple(payload["input_shape"]) if "input_shape" in payload else info.input_shape,
        num_classes=info.num_classes,
        frames=FrameFormat(T=int(frames["T"]), binary=bool(frames["binary"])) if frames else None,
    )


def mark_skipped(name: str, reason: str, root: Path = Path("datasets")) -> None:
    """Writes prepare's outputs as markers saying `name` is absent, so a pipeline over several
    datasets skips this one with `reason` instead of failing (`spikecode prepare --skip-missing`)."""
    dataset_dir = Path(root) / name
    atomic_write_bytes(dataset_dir / PREPARED_FILE, f"skipped: {reason}\n".encode())
    write_json(dataset_dir / META_FILE, {"name": name, "skipped": reason})


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255 -> float32 in [0, 1]."""
    if images.dtype != torch.uint8:
        raise TypeError(f"to_unit_float expects uint8 images, got {images.dtype}")
    return images.to(torch.float32) / 255


def frames_to_float(frames: torch.Tensor) -> torch.Tensor:
    """A batch of stored event frames, uint8 `[B, T, C, H, W]` -> float32 `[T, B, C, H, W]` with the
    same values (event counts, or 0/1 for binary frames): time-major, as methods take them."""
    if frames.dtype != torch.uint8 or frames.ndim != 5:
        raise TypeError(f"frames_to_float expects uint8 frames [B, T, C, H, W], got {frames.dtype} "
                        f"{list(frames.shape)}")
    return frames.transpose(0, 1).to(torch.float32)


def _check_raw(info: DatasetInfo, raw: RawData) -> None:
    """Catches files that parse but do not hold this dataset (possible with verify=False)."""
    sample_shape = ((raw.frames.T,) if raw.frames is not None else ()) + tuple(raw.input_shape or info.input_shape)
    for split, images, labels in (("train", raw.train_images, raw.train_labels),
                                  ("test", raw.test_images, raw.test_labels)):
        problem = None
        if images.dtype != torch.uint8 or tuple(images.shape[1:]) != sample_shape:
            problem = f"images are {images.dtype} {list(images.shape)}, expected uint8 [N, {sample_shape}]"
        elif len(images) != len(labels):
            problem = f"{len(images)} images but {len(labels)} labels"
        elif len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < info.num_classes):
            problem = f"labels outside 0..{info.num_classes - 1}"
        if problem:
            raise DataError(f"{info.name}: the {split} set does not fit the dataset: {problem}; "
                            f"re-place the official files")
