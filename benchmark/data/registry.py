"""The dataset registry: what a dataset is, where its raw files are checked, and how its samples are stored.

Every dataset registers a raw loader (`register_dataset`; event datasets `register_event_dataset`)
that reads its official files into `RawData`, checking each against `KNOWN_CHECKSUMS` (`verify`).
`benchmark.data.prepared` turns that into the prepared tensors every later stage reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmark.contract.errors import DataError, RegistryError
from benchmark.contract.semantics import BINARY_SPIKES, EventKind, OpSemantics

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

TEN_DIGITS = tuple(str(digit) for digit in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


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
    events: Any = None  # event datasets: their benchmark.data.events.EventSource; None for image datasets


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
    """Records an event dataset: `prepare` frames its events (benchmark.data.events) instead of reading images."""
    if name in _DATASETS:
        raise RegistryError(f"dataset name {name!r} is registered twice; rename one of them")
    _DATASETS[name] = DatasetInfo(name, description, input_shape, len(classes), tuple(classes), None, events=source)


def available_datasets() -> dict[str, DatasetInfo]:
    return dict(sorted(_DATASETS.items()))


def get_dataset(name: str) -> DatasetInfo:
    if name not in _DATASETS:
        raise RegistryError(f"unknown dataset {name!r}; known datasets: {', '.join(available_datasets())}")
    return _DATASETS[name]


def verify(request: RawRequest, path: Path, key: str, content: bytes) -> str:
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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(2**22), b""):
            digest.update(chunk)
    return digest.hexdigest()
