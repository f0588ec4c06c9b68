"""Datasets: a registry, finding and verifying the official raw files, and the prepared tensors.

`prepare(name)` finds a dataset's official raw files, checks them against known checksums, and
writes `datasets/<name>/prepared.pt` (uint8 images [N, C, H, W], int64 labels, and a seeded
train/validation split of the official train set) plus `datasets/<name>/meta.json` (split sizes,
seed and checksums, for provenance). `load_prepared(name)` reads them back for every later stage.
Both files are written atomically, so an interrupted `prepare` never leaves a half-written one.

Event datasets (benchmark.events: N-MNIST, DVS Gesture, SHD, the simulated Fashion-MNIST-DVS)
prepare the same two files, with uint8 event frames `[N, T, C, H, W]` in place of the images
(`Prepared.frames` says so, and how to read them); `frames_to_float` turns a batch of them into the
time-major `[T, B, C, H, W]` a method's `encode_frames` receives.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import tempfile
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmark.errors import ConfigError, DatasetSkipped, DataError, MissingData, RegistryError
from benchmark.io import atomic_write_bytes, read_json, write_json
from benchmark.semantics import BINARY_SPIKES, EventKind, OpSemantics

# (algorithm, hex digest) of each raw file, by dataset. IDX files are checked on their DECOMPRESSED
# content: Debian recompresses the .gz files, so their bytes differ from upstream's while the
# content is identical, and users may place either the .gz or the uncompressed file.
Checksums = Mapping[str, tuple[str, str]]
KNOWN_CHECKSUMS: dict[str, Checksums] = {
    # Measured from the official content (Debian's dataset-fashion-mnist holds the same content).
    "fashion-mnist": {
        "train-images-idx3-ubyte": ("sha256", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train-labels-idx1-ubyte": ("sha256", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "t10k-images-idx3-ubyte": ("sha256", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "t10k-labels-idx1-ubyte": ("sha256", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
    # SHA-256 of the decompressed files, as pinned identically by several independent public projects
    # (the .gz files they decompress match TensorFlow Datasets' url_checksums/mnist.txt, e.g.
    # train-images-idx3-ubyte.gz 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609).
    "mnist": {
        "train-images-idx3-ubyte": ("sha256", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "train-labels-idx1-ubyte": ("sha256", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        "t10k-images-idx3-ubyte": ("sha256", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        "t10k-labels-idx1-ubyte": ("sha256", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    },
    "cifar10": {
        # The archive's SHA-256 is published by Keras (keras/datasets/cifar10.py, `file_hash`).
        "cifar-10-python.tar.gz": ("sha256", "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),
        # Only MD5s are published for the extracted pickles (torchvision/datasets/cifar.py), so
        # these are MD5 checks: they catch corruption and wrong files, not deliberate tampering.
        "data_batch_1": ("md5", "c99cafc152244af753f735de768cd75f"),
        "data_batch_2": ("md5", "d4bba439e000b95fd0a9bffe97cbabec"),
        "data_batch_3": ("md5", "54ebc095f3ab1f0389bbae665268c751"),
        "data_batch_4": ("md5", "634d18415352ddfa80567beed471001a"),
        "data_batch_5": ("md5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        "test_batch": ("md5", "40351d587109b95175f43aff81a1287e"),
        "batches.meta": ("md5", "5ff9c542aee3614f3951f8cda6e48888"),
    },
    # Event datasets: the archives' MD5s as tonic 1.7 ships them (tonic/datasets/nmnist.py,
    # dvsgesture.py, hsd.py), the only checksums published for them: they catch corruption and
    # wrong files, not deliberate tampering.
    "nmnist": {
        "train.zip": ("md5", "20959b8e626244a1b502305a9e6e2031"),
        "test.zip": ("md5", "69ca8762b2fe404d9b9bad1103e97832"),
    },
    "dvs-gesture": {
        "ibmGestureTrain.tar.gz": ("md5", "3a8f0d4120a166bac7591f77409cb105"),
        "ibmGestureTest.tar.gz": ("md5", "56070e45dadaa85fff82e0fbfbc06de5"),
    },
    "shd": {
        "shd_train.h5.zip": ("md5", "f3252aeb598ac776c1b526422d90eecb"),
        "shd_test.h5.zip": ("md5", "1503a5064faa34311c398fb0a1ed0a6f"),
    },
}
KNOWN_CHECKSUMS["fashion-mnist-dvs"] = KNOWN_CHECKSUMS["fashion-mnist"]  # simulated from Fashion-MNIST's files

PREPARED_FILE = "prepared.pt"
META_FILE = "meta.json"
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0  # fixed, not `split_seed`: the test set must be the same in every run

TEN_DIGITS = tuple(str(digit) for digit in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


# ---------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class RawRequest:
    """What a dataset's raw loader needs: where to look and how to check what it finds."""

    name: str
    dataset_dir: Path  # datasets/<name>
    search: tuple[Path, ...] | None  # folders to search instead of the dataset's default places
    verify: bool
    checksums: Checksums
    allow_download: bool

    def places(self, *defaults: Path) -> tuple[Path, ...]:
        return self.search if self.search is not None else defaults


@dataclass(frozen=True)
class FrameFormat:
    """How an event dataset's samples are stored: uint8 frames `[N, T, C, H, W]` of event counts.

    T:       frames per sample, the time steps a method receives (`datasets.<name>.framing.T`).
    binary:  True: each value is 0 or 1 (binary events, charged as ACs); False: counts saturated
             at 255, each nonzero value one graded event with an 8-bit payload (charged as a MAC).
    """

    T: int
    binary: bool

    @property
    def semantics(self) -> OpSemantics:
        """The kind of the events the frames carry, for the op counter."""
        return BINARY_SPIKES if self.binary else OpSemantics(EventKind.GRADED, payload_bits=8)


@dataclass(frozen=True, eq=False)
class RawData:
    """A dataset's official train and test sets, as read from its raw files."""

    train_images: torch.Tensor  # uint8 [N, C, H, W] (event datasets: frames [N, T, C, H, W])
    train_labels: torch.Tensor  # int64 [N]
    test_images: torch.Tensor
    test_labels: torch.Tensor
    sha256: dict[str, str]  # raw file -> SHA-256 of what was read (decompressed for IDX)
    # event datasets only:
    frames: FrameFormat | None = None
    input_shape: tuple[int, int, int] | None = None  # of one frame, when framing changes the registry's
    classes: tuple[str, ...] | None = None  # when the files name the classes
    meta: dict[str, Any] = field(default_factory=dict)  # added to meta.json
    event_digests: dict[str, torch.Tensor] | None = None  # split -> uint8 [N, 32]: SHA-256 of each sample's events


RawLoader = Callable[[RawRequest], RawData]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    input_shape: tuple[int, int, int]
    num_classes: int
    classes: tuple[str, ...]
    load_raw: RawLoader | None
    events: Any = None  # event datasets: their benchmark.events.EventSource; None for image datasets


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(
    name: str, description: str, *, input_shape: tuple[int, int, int], classes: Sequence[str]
) -> Callable[[RawLoader], RawLoader]:
    """Function decorator: records a raw loader under `name`."""

    def decorate(load_raw: RawLoader) -> RawLoader:
        if name in _DATASETS:
            raise RegistryError(f"dataset name {name!r} is registered twice; rename one of them")
        _DATASETS[name] = DatasetInfo(name, description, input_shape, len(classes), tuple(classes), load_raw)
        return load_raw

    return decorate


def register_event_dataset(name: str, description: str, *, input_shape: tuple[int, int, int], classes: Sequence[str],
                           source: Any) -> None:
    """Records an event dataset: `prepare` frames its events (benchmark.events) instead of reading images."""
    if name in _DATASETS:
        raise RegistryError(f"dataset name {name!r} is registered twice; rename one of them")
    _DATASETS[name] = DatasetInfo(name, description, input_shape, len(classes), tuple(classes), None, events=source)


def available_datasets() -> dict[str, DatasetInfo]:
    return dict(sorted(_DATASETS.items()))


def get_dataset(name: str) -> DatasetInfo:
    if name not in _DATASETS:
        raise RegistryError(f"unknown dataset {name!r}; known datasets: {', '.join(available_datasets())}")
    return _DATASETS[name]


# ---------------------------------------------------------------------------------------------
# Prepare and load


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
    missing files. Event datasets only: `framing` (benchmark.events.Framing) and, for a simulated
    one, `simulation` (benchmark.event_camera.EventCamera), as params.yaml's `datasets.<name>` holds them.
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
        from benchmark.events import load_events

        raw = load_events(name, info.events, request, framing, simulation, info.classes)
    _check_raw(info, raw)
    train_index, val_index = _split(len(raw.train_labels), round(val_fraction * len(raw.train_labels)), split_seed)
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
            # sample's events (benchmark.event_camera.events_digest), in the order of the splits
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
        sha256 = _sha256_file(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return sha256


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(2**22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_prepared(name: str, root: Path = Path("datasets")) -> Prepared:
    info = get_dataset(name)
    dataset_dir = Path(root) / name
    for path in (dataset_dir / PREPARED_FILE, dataset_dir / META_FILE):
        if not path.is_file():
            raise DataError(f"{name}: {path} does not exist; run `spikecode prepare {name}` first")
    skipped = read_json(dataset_dir / META_FILE).get("skipped")
    if skipped:
        raise DatasetSkipped(skipped)
    sha256 = _sha256_file(dataset_dir / PREPARED_FILE)
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


def _split(n: int, n_held: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded permutation of range(n) cut into (kept, held out); each part in ascending order,
    so both keep the official order of the samples."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_held:].sort().values, order[:n_held].sort().values


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


def _verify(request: RawRequest, path: Path, key: str, content: bytes) -> str:
    """Checks `content` (read from `path`) against the known checksum of `key`; returns its SHA-256."""
    sha256 = hashlib.sha256(content).hexdigest()
    if not request.verify:
        return sha256
    if key not in request.checksums:
        raise DataError(f"{request.name}: no known checksum for {key} ({path}); prepare with verify=False "
                        f"only if you trust the file")
    algorithm, expected = request.checksums[key]
    actual = sha256 if algorithm == "sha256" else hashlib.new(algorithm, content, usedforsecurity=False).hexdigest()
    if actual != expected:
        decompressed = " (of the decompressed content)" if path.suffix == ".gz" else ""
        raise DataError(
            f"{request.name}: {path} is corrupt or not the official file: {algorithm}{decompressed} is {actual}, "
            f"expected {expected}. Re-download it (or re-place the official file) and prepare again"
        )
    return sha256


# ---------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST: IDX files


IDX_FILES = {  # split part -> (official file name without .gz, number of dimensions)
    "train_images": ("train-images-idx3-ubyte", 3),
    "train_labels": ("train-labels-idx1-ubyte", 1),
    "test_images": ("t10k-images-idx3-ubyte", 3),
    "test_labels": ("t10k-labels-idx1-ubyte", 1),
}


@dataclass(frozen=True)
class _IdxSource:
    system_dirs: tuple[Path, ...]  # where a system package installs the files
    torchvision_class: str  # the torchvision dataset that can download them
    install_hint: str | None  # a package manager command that installs them


def _load_idx(request: RawRequest, source: _IdxSource) -> RawData:
    paths = _locate_idx(request, source)
    parts, sha256 = {}, {}
    for part, (base, ndim) in tqdm(IDX_FILES.items(), desc=f"{request.name}: reading raw files", unit="file",
                                   leave=False):
        content = _read_maybe_gzip(paths[base])
        sha256[base] = _verify(request, paths[base], base, content)
        parts[part] = _parse_idx(content, paths[base], ndim)
    return RawData(
        train_images=parts["train_images"].unsqueeze(1), train_labels=parts["train_labels"].long(),
        test_images=parts["test_images"].unsqueeze(1), test_labels=parts["test_labels"].long(),
        sha256=sha256,
    )


def _locate_idx(request: RawRequest, source: _IdxSource) -> dict[str, Path]:
    """The first searched folder that holds all four files (each as .gz or uncompressed)."""
    raw_dir = request.dataset_dir / "raw"
    missing_files: list[str] = []
    searched: list[str] = []  # one line per place, written when searched (a download changes them)
    for place in request.places(raw_dir, *source.system_dirs):
        found = {base: _idx_file(place, base) for base, _ in IDX_FILES.values()}
        missing = [base for base, path in found.items() if path is None]
        if not missing:
            return found  # type: ignore[return-value]  # no None left
        missing_files = missing_files or missing
        searched.append(f"{place}: missing {', '.join(missing)}" if place.is_dir() else f"{place}: does not exist")
    if request.allow_download:
        failure = _download_idx(request, source)
        if failure is None:
            return _locate_idx(replace(request, search=(raw_dir,), allow_download=False), source)
        searched.append(f"torchvision download into {raw_dir}: failed: {failure}")
    else:
        searched.append("torchvision download: not attempted (allow_download=False)")
    first_missing = missing_files[0] if missing_files else IDX_FILES["train_images"][0]
    raise MissingData(_missing_idx_message(request, source, first_missing, searched))


def _idx_file(place: Path, base: str) -> Path | None:
    for name in (f"{base}.gz", base):
        if (place / name).is_file():
            return place / name
    return None


def _missing_idx_message(request: RawRequest, source: _IdxSource, first_missing: str, searched: list[str]) -> str:
    lines = [f"{request.name}: raw file {first_missing}[.gz] not found. Searched, in order:"]
    lines += [f"  - {line}" for line in searched]
    lines.append("Fix one of:")
    if source.install_hint:
        lines.append(f"  - {source.install_hint}")
    official = ", ".join(f"{base}.gz" for base, _ in IDX_FILES.values())
    lines.append(f"  - place the official files ({official}) in {request.dataset_dir / 'raw'}/")
    lines.append("  - run with network access and allow_download=True so torchvision can download them")
    return "\n".join(lines)


def _download_idx(request: RawRequest, source: _IdxSource) -> str | None:
    """Downloads the official .gz files into datasets/<name>/raw/; returns why it failed, or None."""
    import torchvision.datasets  # only needed here, and slow to import

    raw_dir = request.dataset_dir / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    dataset_class = getattr(torchvision.datasets, source.torchvision_class)
    with tempfile.TemporaryDirectory(dir=request.dataset_dir) as scratch:
        try:
            dataset_class(scratch, train=True, download=True)  # fetches all four files
        except (RuntimeError, OSError) as error:  # torchvision reports network errors as RuntimeError
            return f"{type(error).__name__}: {error}"
        for archive in (Path(scratch) / source.torchvision_class / "raw").glob("*.gz"):
            os.replace(archive, raw_dir / archive.name)
    return None


def _read_maybe_gzip(path: Path) -> bytes:
    content = path.read_bytes()
    if path.suffix != ".gz":
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path} is not a readable gzip file ({error}); re-download it or re-place the "
                        f"official file") from None


def _parse_idx(content: bytes, path: Path, ndim: int) -> torch.Tensor:
    """IDX: magic 0x0000 0x08 (uint8) <ndim>, then ndim big-endian uint32 sizes, then the data."""
    header = 4 + 4 * ndim
    if len(content) < header or content[:4] != bytes([0, 0, 8, ndim]):
        raise DataError(f"{path} is not a {ndim}-D uint8 IDX file (magic {content[:4].hex()}); "
                        f"re-place the official file")
    shape = struct.unpack(f">{ndim}I", content[4:header])
    body = np.frombuffer(content, dtype=np.uint8, offset=header)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path}: its header says {list(shape)} but it holds {body.size} values; "
                        f"the file is truncated, re-place it")
    return torch.from_numpy(body.reshape(shape).copy())


@register_dataset("fashion-mnist", "Zalando's Fashion-MNIST: 28x28 grayscale clothing, 60k train / 10k test",
                  input_shape=(1, 28, 28), classes=FASHION_CLASSES)
def _load_fashion_mnist(request: RawRequest) -> RawData:
    return _load_idx(request, _IdxSource(
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
        torchvision_class="FashionMNIST",
        install_hint="sudo apt-get install dataset-fashion-mnist",
    ))


@register_dataset("mnist", "LeCun's MNIST: 28x28 grayscale handwritten digits, 60k train / 10k test",
                  input_shape=(1, 28, 28), classes=TEN_DIGITS)
def _load_mnist(request: RawRequest) -> RawData:
    return _load_idx(request, _IdxSource(system_dirs=(), torchvision_class="MNIST", install_hint=None))


# ---------------------------------------------------------------------------------------------
# CIFAR-10: the python pickles


CIFAR_DIR = "cifar-10-batches-py"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_FILES = (*CIFAR_TRAIN, "test_batch", "batches.meta")


@register_dataset("cifar10", "CIFAR-10: 32x32 colour images in 10 classes, 50k train / 10k test",
                  input_shape=(3, 32, 32), classes=CIFAR10_CLASSES)
def _load_cifar10(request: RawRequest) -> RawData:
    folder = _locate_cifar(request)
    sha256, batches = {}, {}
    for name in tqdm(CIFAR_FILES, desc="cifar10: reading raw files", unit="file", leave=False):
        content = (folder / name).read_bytes()
        sha256[name] = _verify(request, folder / name, name, content)  # before unpickling: pickles run code
        batches[name] = _unpickle(folder / name, content)
    names = [label.decode() for label in batches["batches.meta"].get(b"label_names", [])]
    if names != list(CIFAR10_CLASSES):
        raise DataError(f"{folder / 'batches.meta'} names the classes {names}, not CIFAR-10's; re-place the "
                        f"official files")
    train = [_cifar_batch(folder / name, batches[name]) for name in CIFAR_TRAIN]
    test_images, test_labels = _cifar_batch(folder / "test_batch", batches["test_batch"])
    return RawData(
        train_images=torch.cat([images for images, _ in train]),
        train_labels=torch.cat([labels for _, labels in train]),
        test_images=test_images, test_labels=test_labels, sha256=sha256,
    )


def _locate_cifar(request: RawRequest) -> Path:
    """The first searched folder holding cifar-10-batches-py/ (or the archive, which is extracted)."""
    places = request.places(request.dataset_dir, request.dataset_dir / "raw")
    searched = []
    for place in places:
        folder, archive = place / CIFAR_DIR, place / CIFAR_ARCHIVE
        missing = [name for name in CIFAR_FILES if not (folder / name).is_file()]
        if not missing:
            return folder
        if archive.is_file() and not folder.exists():
            return _extract_cifar(request, archive)
        searched.append(f"  - {folder}: missing {', '.join(missing)}" if folder.is_dir()
                        else f"  - {place}: neither {CIFAR_DIR}/ nor {CIFAR_ARCHIVE}")
    raise MissingData(
        f"cifar10: raw file {CIFAR_DIR}/{CIFAR_FILES[0]} not found. Searched, in order:\n" + "\n".join(searched)
        + f"\nFix: place the official {CIFAR_ARCHIVE} (https://www.cs.toronto.edu/~kriz/cifar.html), or its "
          f"extracted {CIFAR_DIR}/ folder, in {request.dataset_dir}/ or {request.dataset_dir / 'raw'}/"
    )


def _extract_cifar(request: RawRequest, archive: Path) -> Path:
    """Extracts the verified archive next to itself; a temporary folder keeps a failed extraction
    from leaving a partial cifar-10-batches-py/ behind."""
    content = archive.read_bytes()
    _verify(request, archive, CIFAR_ARCHIVE, content)
    with tempfile.TemporaryDirectory(dir=archive.parent) as scratch:
        try:
            with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as tar:
                tar.extractall(scratch, filter="data")
        except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
            raise DataError(f"{archive} could not be extracted ({error}); re-download it") from None
        if not (Path(scratch) / CIFAR_DIR).is_dir():
            raise DataError(f"{archive} holds no {CIFAR_DIR}/ folder; it is not the CIFAR-10 python archive")
        os.replace(Path(scratch) / CIFAR_DIR, archive.parent / CIFAR_DIR)
    return archive.parent / CIFAR_DIR


def _unpickle(path: Path, content: bytes) -> dict[bytes, Any]:
    try:
        batch = pickle.loads(content, encoding="bytes")
    except Exception as error:  # a corrupt pickle fails in many ways, all meaning the same
        raise DataError(f"{path} is not a readable CIFAR-10 pickle ({type(error).__name__}: {error}); "
                        f"re-place the official file") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path} holds a {type(batch).__name__}, not a CIFAR-10 batch dict; re-place it")
    return batch


def _cifar_batch(path: Path, batch: dict[bytes, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of 3072 bytes: the 1024 red values of a 32x32 image, then green, then blue."""
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except KeyError as error:
        raise DataError(f"{path} lacks the key {error}; it is not a CIFAR-10 batch") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path}: data has shape {list(data.shape)}, expected [N, 3072]; re-place the file")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), torch.from_numpy(labels)


# ---------------------------------------------------------------------------------------------
# scikit-learn digits: bundled, used by the smoke profile


@register_dataset("digits", "scikit-learn's bundled 8x8 handwritten digits (1797 samples; seeded 80/20 split)",
                  input_shape=(1, 8, 8), classes=TEN_DIGITS)
def _load_digits(request: RawRequest) -> RawData:
    # Installed with scikit-learn (whose installer verifies it), so there is no file to search or check.
    from sklearn.datasets import load_digits  # slow to import; only this dataset needs it

    bunch = load_digits()
    images = torch.from_numpy(np.rint(bunch.images * 255 / 16).astype(np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    # No official test set: hold out a fixed seeded 20%.
    train, test = _split(len(labels), round(DIGITS_TEST_FRACTION * len(labels)), DIGITS_TEST_SEED)
    content = images.numpy().tobytes() + labels.numpy().tobytes()
    return RawData(
        train_images=images[train], train_labels=labels[train],
        test_images=images[test], test_labels=labels[test],
        sha256={"sklearn.datasets.load_digits (images, labels)": hashlib.sha256(content).hexdigest()},
    )


# ---------------------------------------------------------------------------------------------
# Event datasets register themselves on import (benchmark.events imports this module's names, so
# it is imported last).

from benchmark import events as _events  # noqa: E402,F401
