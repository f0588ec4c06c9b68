"""The image datasets: MNIST and Fashion-MNIST (IDX files), CIFAR-10 (python pickles) and scikit-learn's
bundled digits; each registers its raw loader, which finds, verifies and reads the official files."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmark.contract.errors import DataError, MissingData
from benchmark.data.registry import (CIFAR10_CLASSES, FASHION_CLASSES, TEN_DIGITS, RawData, RawRequest,
                                     register_dataset, verify)
from benchmark.data.split import split_indices

DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0  # fixed, not `split_seed`: the test set must be the same in every run

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
        sha256[base] = verify(request, paths[base], base, content)
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
        sha256[name] = verify(request, folder / name, name, content)  # before unpickling: pickles run code
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
    verify(request, archive, CIFAR_ARCHIVE, content)
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
    train, test = split_indices(len(labels), round(DIGITS_TEST_FRACTION * len(labels)), DIGITS_TEST_SEED)
    content = images.numpy().tobytes() + labels.numpy().tobytes()
    return RawData(
        train_images=images[train], train_labels=labels[train],
        test_images=images[test], test_labels=labels[test],
        sha256={"sklearn.datasets.load_digits (images, labels)": hashlib.sha256(content).hexdigest()},
    )
