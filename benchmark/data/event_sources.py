"""The registered event datasets: N-MNIST, DVS Gesture and SHD read with tonic from their placed files,
and Fashion-MNIST-DVS simulated by the event camera.

Registered datasets (`spikecode prepare NAME`; `spikecode list`):

    nmnist             N-MNIST (Orchard et al., Front. Neurosci. 2015): ATIS 34×34, 2 polarities,
                       10 digits, 60k train / 10k test
    dvs-gesture        IBM DVS128 Gesture (Amir et al., CVPR 2017) as tonic's preprocessed release:
                       128×128, 2 polarities, 11 gestures
    shd                Spiking Heidelberg Digits (Cramer et al., IEEE TNNLS 2020): 700 cochlear
                       channels, 20 spoken digits (English and German)
    fashion-mnist-dvs  Fashion-MNIST watched by a simulated event camera making N-MNIST's three
                       saccades (benchmark.data.event_camera), 34×34, 2 polarities, 60k / 10k

Raw files. Each recorded dataset is read where tonic's own dataset class keeps it with
`save_to = datasets/<name>`, i.e. in `datasets/<name>/<tonic class>/`:

    datasets/nmnist/NMNIST/           train.zip, test.zip        and/or  Train/, Test/  (<digit>/<id>.bin)
    datasets/dvs-gesture/DVSGesture/  ibmGestureTrain.tar.gz,    and/or  ibmGestureTrain/, ibmGestureTest/
                                      ibmGestureTest.tar.gz              (user<NN>_<lighting>/<label>.npy)
    datasets/shd/SHD/                 shd_train.h5.zip,          and/or  shd_train.h5, shd_test.h5
                                      shd_test.h5.zip

tonic skips its download only when both the archive and the extracted files are present, so the
harness locates and checks the files itself and hands tonic a dataset class that never downloads:
an archive that is present is checked against the MD5 tonic ships (`KNOWN_CHECKSUMS`) and, when its
extracted files are absent, extracted next to it (into a temporary folder, then renamed, so an
interrupted extraction leaves nothing half-done); extracted files without their archive are used
as they are, and meta.json records that they were not verified. Missing files are a `MissingData`
error naming the file and the fix; `prepare(..., allow_download=True)` (`spikecode prepare NAME
--download`) lets tonic download them instead. `fashion-mnist-dvs` needs only Fashion-MNIST's files
(found as `spikecode prepare fashion-mnist` finds them).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmark.contract.errors import DataError, MissingData
from benchmark.data.event_camera import SIMULATOR_VERSION, EventCamera, simulate
from benchmark.data.events import EventSource, EventSplit, Framing, register
from benchmark.data.registry import FASHION_CLASSES, TEN_DIGITS, RawRequest, get_dataset

DVS_GESTURE_CLASSES = ("Hand clapping", "Right hand wave", "Left hand wave", "Right arm cw", "Right arm ccw",
                       "Left arm cw", "Left arm ccw", "Arm roll", "Air drums", "Air guitar", "Other gestures")
# SHD's label order (0-9 English, 10-19 German digits); the names its files hold (extra/keys) replace these.
SHD_CLASSES = tuple(f"english {word}" for word in ("zero", "one", "two", "three", "four", "five", "six", "seven",
                                                    "eight", "nine")) + \
    tuple(f"german {word}" for word in ("null", "eins", "zwei", "drei", "vier", "fuenf", "sechs", "sieben", "acht",
                                        "neun"))


# ---------------------------------------------------------------------------------------------
# Recorded datasets: located, verified and extracted for tonic's readers


@dataclass(frozen=True)
class TonicSplit:
    """One split of a tonic dataset on disk: its archive and what the archive extracts to."""

    archive: str  # e.g. "train.zip", the file tonic downloads
    extracted: str  # the folder ("Train") or file ("shd_train.h5") the archive holds
    suffix: str  # sample files inside the folder (".bin"); "" when `extracted` is the data file
    layout: str  # how the extracted files look, for error messages


def _locate(request: RawRequest, tonic_class: type, split: TonicSplit, train: bool) -> tuple[Path, dict[str, str]]:
    """The `save_to` folder whose `<tonic class>/` holds the split ready for tonic, and how its files
    were checked. Verifies a present archive and extracts it when its files are absent."""
    searched = []
    for save_to in request.places(request.dataset_dir):
        location = Path(save_to) / tonic_class.__name__
        archive, extracted = location / split.archive, location / split.extracted
        have_files = _extracted_present(extracted, split)
        if archive.is_file():
            check = _verify_archive(request, archive, split.archive)
            if not have_files:
                _extract(archive, location, split)
            return Path(save_to), {split.archive: check}
        if have_files:
            return Path(save_to), {split.archive: f"absent: the extracted {split.extracted} was used without a "
                                                  f"checksum (no official checksum exists for it)"}
        searched.append(f"  - {location}: " + ("does not exist" if not location.is_dir() else
                                               f"holds neither {split.archive} nor {split.layout}"))
    if request.allow_download:
        failure = _download(request, tonic_class, train)
        if failure is None:
            return _locate(RawRequest(request.name, request.dataset_dir, (request.dataset_dir,), request.verify,
                                      request.checksums, allow_download=False), tonic_class, split, train)
        searched.append(f"  - tonic download into {request.dataset_dir / tonic_class.__name__}: failed: {failure}")
    else:
        searched.append("  - tonic download: not attempted (allow_download=False)")
    location = request.dataset_dir / tonic_class.__name__
    url = getattr(tonic_class, "train_url" if train else "test_url", None) or \
        getattr(tonic_class, "base_url", "") + split.archive
    raise MissingData(
        f"{request.name}: raw file {split.archive} not found, nor its extracted {split.layout}. Searched, in order:\n"
        + "\n".join(searched)
        + f"\nFix one of:\n  - place the official {split.archive} ({url}, as tonic.datasets.{tonic_class.__name__} "
          f"downloads it) in {location}/"
          f"\n  - place its extracted {split.layout} in {location}/"
          f"\n  - run `spikecode prepare {request.name} --download` with network access (tonic downloads it)"
    )


def _extracted_present(extracted: Path, split: TonicSplit) -> bool:
    if not split.suffix:
        return extracted.is_file()
    return extracted.is_dir() and next(extracted.rglob(f"*{split.suffix}"), None) is not None


def _verify_archive(request: RawRequest, path: Path, key: str) -> str:
    """Checks an archive against its known checksum (streamed: archives reach gigabytes)."""
    if not request.verify:
        return "not verified (verify=False)"
    if key not in request.checksums:
        raise DataError(f"{request.name}: no known checksum for {key} ({path}); prepare with verify=False only if "
                        f"you trust the file")
    algorithm, expected = request.checksums[key]
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(2**22), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise DataError(f"{request.name}: {path} is corrupt or not the official file: {algorithm} is "
                        f"{digest.hexdigest()}, expected {expected}. Re-download it (or re-place the official file) "
                        f"and prepare again")
    return f"{algorithm} {expected} (verified)"


def _extract(archive: Path, location: Path, split: TonicSplit) -> None:
    """Extracts the verified archive into a temporary folder, then moves what it holds into place."""
    with tempfile.TemporaryDirectory(dir=location, prefix=".extract-") as scratch:
        try:
            if archive.name.endswith(".zip"):
                with zipfile.ZipFile(archive) as opened:
                    opened.extractall(scratch)
            else:
                with tarfile.open(archive) as opened:
                    opened.extractall(scratch, filter="data")
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, zlib.error) as error:
            raise DataError(f"{archive} could not be extracted ({type(error).__name__}: {error}); re-download it") \
                from None
        produced = Path(scratch) / split.extracted
        if not produced.exists():
            raise DataError(f"{archive} holds no {split.extracted}; it is not the official archive, re-download it")
        os.replace(produced, location / split.extracted)


def _download(request: RawRequest, tonic_class: type, train: bool) -> str | None:
    """Lets tonic download and extract the split into datasets/<name>/; returns why it failed, or None."""
    try:
        tonic_class(save_to=str(request.dataset_dir), train=train)
    except Exception as error:  # network and archive errors come in many types; all mean the same here
        return f"{type(error).__name__}: {error}"
    return None


def _offline(tonic_class: type) -> type:
    """tonic's dataset class, reading what `_locate` found and never downloading. It keeps the
    class's name, which tonic uses as the folder under `save_to`."""

    def refuse(self) -> None:
        raise MissingData(f"tonic's {tonic_class.__name__} found no {self.filename} in {self.location_on_system}")

    return type(tonic_class.__name__, (tonic_class,), {"_check_exists": lambda self: True, "download": refuse,
                                                       "__module__": __name__})


def _files_identity(paths: Sequence[str], root: Path) -> dict[str, Any]:
    """Names, sizes and modification times of the raw files: what the cache key depends on."""
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{os.path.relpath(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return {"files": len(paths), "stat_sha256": digest.hexdigest()}


def _tonic_file_split(request: RawRequest, tonic_name: str, split: TonicSplit, train: bool) -> EventSplit:
    """A split of a tonic dataset whose samples are files (N-MNIST, DVS Gesture), in path order."""
    import tonic.datasets

    tonic_class = getattr(tonic.datasets, tonic_name)
    save_to, provenance = _locate(request, tonic_class, split, train)
    dataset = _offline(tonic_class)(save_to=str(save_to), train=train)
    order = sorted(range(len(dataset.data)), key=lambda i: dataset.data[i])  # os.walk order is the filesystem's
    if not order:
        raise MissingData(f"{request.name}: {save_to / tonic_name / split.extracted} holds no {split.suffix} files; "
                          f"re-extract {split.archive}")

    def read(start: int, stop: int) -> list[np.ndarray]:
        return [dataset[i][0] for i in order[start:stop]]

    return EventSplit(
        labels=np.array([dataset.targets[i] for i in order], np.int64), read=read,
        identity={"tonic": tonic_name, **_files_identity([dataset.data[i] for i in order], save_to / tonic_name)},
        provenance=provenance,
    )


NMNIST_SPLITS = (TonicSplit("train.zip", "Train", ".bin", "Train/ folder (Train/<digit>/<id>.bin)"),
                 TonicSplit("test.zip", "Test", ".bin", "Test/ folder (Test/<digit>/<id>.bin)"))
DVS_GESTURE_SPLITS = (
    TonicSplit("ibmGestureTrain.tar.gz", "ibmGestureTrain", ".npy",
               "ibmGestureTrain/ folder (ibmGestureTrain/user<NN>_<lighting>/<label>.npy)"),
    TonicSplit("ibmGestureTest.tar.gz", "ibmGestureTest", ".npy",
               "ibmGestureTest/ folder (ibmGestureTest/user<NN>_<lighting>/<label>.npy)"))
SHD_SPLITS = (TonicSplit("shd_train.h5.zip", "shd_train.h5", "", "shd_train.h5"),
              TonicSplit("shd_test.h5.zip", "shd_test.h5", "", "shd_test.h5"))


def _open_nmnist(request: RawRequest, camera: EventCamera | None) -> tuple[EventSplit, EventSplit]:
    return (_tonic_file_split(request, "NMNIST", NMNIST_SPLITS[0], train=True),
            _tonic_file_split(request, "NMNIST", NMNIST_SPLITS[1], train=False))


def _open_dvs_gesture(request: RawRequest, camera: EventCamera | None) -> tuple[EventSplit, EventSplit]:
    return (_tonic_file_split(request, "DVSGesture", DVS_GESTURE_SPLITS[0], train=True),
            _tonic_file_split(request, "DVSGesture", DVS_GESTURE_SPLITS[1], train=False))


def _open_shd(request: RawRequest, camera: EventCamera | None) -> tuple[EventSplit, EventSplit]:
    import h5py
    import tonic.datasets

    splits = []
    for split, train in ((SHD_SPLITS[0], True), (SHD_SPLITS[1], False)):
        save_to, provenance = _locate(request, tonic.datasets.SHD, split, train)
        dataset = _offline(tonic.datasets.SHD)(save_to=str(save_to), train=train)
        path = Path(dataset.location_on_system) / dataset.data_filename
        try:
            with h5py.File(path, "r") as file:
                labels = np.asarray(file["labels"][()], np.int64)
                keys = tuple(key.decode() if isinstance(key, bytes) else str(key) for key in file["extra/keys"][()])
        except (OSError, KeyError) as error:
            raise DataError(f"{path} is not a readable SHD file ({type(error).__name__}: {error}); re-place it") \
                from None

        def read(start: int, stop: int, dataset=dataset) -> list[np.ndarray]:
            return [dataset[i][0] for i in range(start, stop)]

        splits.append(EventSplit(labels=labels, read=read, identity={"tonic": "SHD", **_files_identity([str(path)],
                                                                                                      path.parent)},
                                 provenance=provenance, classes=keys if len(keys) == len(SHD_CLASSES) else None))
    return splits[0], splits[1]


# ---------------------------------------------------------------------------------------------
# Simulated: Fashion-MNIST through the event camera


def _open_fashion_mnist_dvs(request: RawRequest, camera: EventCamera | None) -> tuple[EventSplit, EventSplit]:
    """Fashion-MNIST's official splits (read and verified as `prepare fashion-mnist` reads them),
    each image's events simulated on demand (benchmark.data.event_camera)."""
    if camera is None:
        raise ValueError("fashion-mnist-dvs is simulated: pass its EventCamera")
    fashion = get_dataset("fashion-mnist")
    raw = fashion.load_raw(RawRequest("fashion-mnist", request.dataset_dir.parent / "fashion-mnist", request.search,
                                      request.verify, request.checksums, request.allow_download))
    splits = []
    for images, labels in ((raw.train_images, raw.train_labels), (raw.test_images, raw.test_labels)):
        pixels = images[:, 0].numpy()

        def read(start: int, stop: int, pixels=pixels) -> list[np.ndarray]:
            return simulate(pixels[start:stop], camera)

        splits.append(EventSplit(
            labels=labels.numpy().astype(np.int64), read=read,
            identity={"simulator": SIMULATOR_VERSION, "camera": camera.model_dump(), "sha256": raw.sha256},
            provenance={},  # the Fashion-MNIST files' checksums are meta.json's raw_sha256
        ))
    return splits[0], splits[1]


register("nmnist", "N-MNIST: MNIST digits recorded by an ATIS making 3 saccades, 34x34x2, 60k train / 10k test",
         source=EventSource((34, 34, 2), Framing(T=10), _open_nmnist), classes=TEN_DIGITS)
register("dvs-gesture", "IBM DVS128 Gesture (tonic's release): 11 gestures, 128x128x2",
         source=EventSource((128, 128, 2), Framing(T=20, spatial_factor=0.25), _open_dvs_gesture),
         classes=DVS_GESTURE_CLASSES)
register("shd", "Spiking Heidelberg Digits: 20 spoken digits as spikes of 700 cochlear channels",
         source=EventSource((700, 1, 1), Framing(T=100), _open_shd), classes=SHD_CLASSES)
register("fashion-mnist-dvs", "Fashion-MNIST seen by a simulated event camera making N-MNIST's 3 saccades, 34x34x2",
         source=EventSource((34, 34, 2), Framing(T=10), _open_fashion_mnist_dvs, simulation=EventCamera,
                            simulator_version=SIMULATOR_VERSION),
         classes=FASHION_CLASSES)
