"""Event datasets: recordings read with tonic, a simulated one, and their frames.

Registered datasets (`spikecode prepare NAME`; `spikecode list`):

    nmnist             N-MNIST (Orchard et al., Front. Neurosci. 2015): ATIS 34×34, 2 polarities,
                       10 digits, 60k train / 10k test
    dvs-gesture        IBM DVS128 Gesture (Amir et al., CVPR 2017) as tonic's preprocessed release:
                       128×128, 2 polarities, 11 gestures
    shd                Spiking Heidelberg Digits (Cramer et al., IEEE TNNLS 2020): 700 cochlear
                       channels, 20 spoken digits (English and German)
    fashion-mnist-dvs  Fashion-MNIST watched by a simulated event camera making N-MNIST's three
                       saccades (benchmark.event_camera), 34×34, 2 polarities, 60k / 10k

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

Frames (`datasets.<name>.framing` in params.yaml, class `Framing`). Each sample's events (x, y, t in
µs, p) go through tonic's transforms, then become uint8 frames `[T, C, H, W]` (C: polarities; a
1-D sensor such as SHD's gives H = 1, W = channels):

    [Denoise(filter_time = denoise)]        keeps an event only when one of its 4 neighbour pixels
                                            fired less than `denoise` µs before it
    [Downsample(spatial_factor)]            x, y ← ⌊x·f⌋, ⌊y·f⌋; sensor ⌊(W − 1)·f⌋ + 1 wide
    ToFrame                                 events counted per (bin, polarity, y, x):
      by bin count (no time_window)           n_time_bins = T: T bins of ⌊(t_last − t_first) / T⌋ µs
                                              from t_first, each [start, end) (tonic's rule, kept:
                                              the events at t_last, and those in the < T µs the
                                              rounding leaves, fall past the last bin and are dropped)
      by time window (time_window = w µs)     T windows [t_first + i·w, t_first + (i + 1)·w):
                                              later events are dropped, a shorter sample's last
                                              frames stay empty
    counts → uint8                          min(count, 255) (graded events, an 8-bit payload), or
                                            min(count, 1) with `binary: true` (binary events)

The T of the frames is the number of time steps a method receives (`CodingMethod.encode_frames`).

Caching. Framed samples are cached in blocks with `tonic.DiskCachedDataset` under
`datasets/<name>/cache/<split>/T<T>-<key>/`, where the key hashes the framing, the sensor, the source
(raw files' names, sizes and times, or the simulation's parameters and its images' checksums), the
block size, this module's format and tonic's version: changing any of them uses a fresh folder, and
an interrupted `prepare` resumes from the blocks already written. The cache folder git-ignores
itself. `prepared.pt` then holds the frames of every split like an image dataset's images
(`benchmark.data.Prepared`), with the SHA-256 of each sample's events (`events_digest`) and
meta.json the SHA-256 over each official split's samples, in order. `replay_events` reads (or
simulates) prepared samples' events again and checks each against its recorded SHA-256, for stages
that work on events rather than frames.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm import tqdm

from benchmark.data import (
    FASHION_CLASSES,
    TEN_DIGITS,
    FrameFormat,
    RawData,
    RawRequest,
    get_dataset,
    register_event_dataset,
)
from benchmark.errors import ConfigError, DataError, MissingData
from benchmark.event_camera import EventCamera, events_digest, simulate

CACHE_FORMAT = 1  # bump when the cached blocks' content or layout changes
SIMULATOR_VERSION = 1  # bump when benchmark.event_camera produces other events for the same parameters
BLOCK_BYTES = 64 * 2**20  # frames per cached block: at most this many bytes, at most MAX_BLOCK samples
MAX_BLOCK = 1000

DVS_GESTURE_CLASSES = ("Hand clapping", "Right hand wave", "Left hand wave", "Right arm cw", "Right arm ccw",
                       "Left arm cw", "Left arm ccw", "Arm roll", "Air drums", "Air guitar", "Other gestures")
# SHD's label order (0-9 English, 10-19 German digits); the names its files hold (extra/keys) replace these.
SHD_CLASSES = tuple(f"english {word}" for word in ("zero", "one", "two", "three", "four", "five", "six", "seven",
                                                    "eight", "nine")) + \
    tuple(f"german {word}" for word in ("null", "eins", "zwei", "drei", "vier", "fuenf", "sechs", "sieben", "acht",
                                        "neun"))


# ---------------------------------------------------------------------------------------------
# Framing


class Framing(BaseModel):
    """How a sample's events become frames (`datasets.<name>.framing` in params.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    T: int = Field(ge=1, description="frames per sample: the time steps a method receives")
    time_window: float | None = Field(None, gt=0, description="µs per frame (T windows from the first event); "
                                                               "omitted: the sample's span cut into T bins")
    denoise: float | None = Field(None, gt=0, description="tonic Denoise filter_time (µs); omitted: no denoising")
    spatial_factor: float = Field(1.0, gt=0, le=1, description="tonic Downsample factor of x and y")
    binary: bool = Field(False, description="frames of 0/1 (binary events) instead of counts up to 255")


@dataclass(frozen=True)
class Framer:
    """A sample's events -> uint8 frames `[T, C, H, W]`, with tonic's transforms (module docstring)."""

    framing: Framing
    sensor_size: tuple[int, int, int]  # tonic's (x, y, polarities) of the recording

    @property
    def frame_sensor(self) -> tuple[int, int, int]:
        """tonic's (x, y, polarities) after Downsample."""
        width, height, polarities = self.sensor_size
        f = self.framing.spatial_factor
        return (math.floor((width - 1) * f) + 1, math.floor((height - 1) * f) + 1, polarities)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        width, height, polarities = self.frame_sensor
        return (self.framing.T, polarities, height, width)

    def counts(self, events: np.ndarray) -> np.ndarray:
        """Event counts per frame, int `[T, C, H, W]`, before saturation."""
        import tonic.transforms as transforms  # slow to import; only event data needs it

        framing = self.framing
        if framing.denoise is not None and len(events):
            events = transforms.Denoise(filter_time=framing.denoise)(events)
        if framing.spatial_factor != 1:
            events = transforms.Downsample(spatial_factor=framing.spatial_factor)(events)
        if not len(events):
            return np.zeros(self.output_shape, np.int64)
        if self.sensor_size[2] == 1:
            events = events.copy()  # ToFrame sets p = 0 in place for a one-polarity sensor
        if framing.time_window is None:
            to_frame = transforms.ToFrame(sensor_size=self.frame_sensor, n_time_bins=framing.T)
        else:
            start = float(events["t"][0])
            # end half a window past the T-th: exactly T windows, whatever the rounding of T·w
            to_frame = transforms.ToFrame(sensor_size=self.frame_sensor, time_window=framing.time_window,
                                          start_time=start, end_time=start + (framing.T + 0.5) * framing.time_window)
        frames = to_frame(events)
        if len(frames) != framing.T:
            raise DataError(f"tonic's ToFrame made {len(frames)} frames instead of T = {framing.T}")
        return frames.reshape(self.output_shape)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        return np.minimum(self.counts(events), 1 if self.framing.binary else 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Sources: what a split's events are and where they come from


@dataclass
class EventSplit:
    """One official split of an event dataset: its labels and a reader of its samples' events."""

    labels: np.ndarray  # int64 [N]
    read: Callable[[int, int], list[np.ndarray]]  # (start, stop) -> events of samples start..stop-1
    identity: dict[str, Any]  # what the events depend on, for the cache key
    provenance: dict[str, str]  # raw file -> how it was checked, for meta.json
    classes: tuple[str, ...] | None = None  # class names read from the files, when they name them

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class EventSource:
    """How an event dataset is read: its sensor, default framing and a reader of its splits."""

    sensor_size: tuple[int, int, int]  # tonic's (x, y, polarities)
    default_framing: Framing
    open: Callable[[RawRequest, "EventCamera | None"], tuple[EventSplit, EventSplit]]  # (train, test)
    simulated: bool = False


def register(name: str, description: str, *, source: EventSource, classes: Sequence[str]) -> None:
    width, height, polarities = source.sensor_size
    register_event_dataset(name, description, input_shape=(polarities, height, width), classes=classes,
                           source=source)


# ---------------------------------------------------------------------------------------------
# Loading: framed splits for benchmark.data.prepare


def load_events(name: str, source: EventSource, request: RawRequest, framing: Any, simulation: Any,
                classes: Sequence[str]) -> RawData:
    """The framed official splits of event dataset `name`, as `RawData` whose images are uint8
    frames `[N, T, C, H, W]`. `framing` and `simulation` are params.yaml mappings (or models)."""
    framing = _validated(Framing, framing, f"datasets.{name}.framing") if framing is not None \
        else source.default_framing
    if source.simulated:
        camera = _validated(EventCamera, simulation if simulation is not None else {}, f"datasets.{name}.simulation")
    elif simulation is not None:
        raise ConfigError(f"datasets.{name}.simulation: {name} is a recording, not a simulation; remove the key")
    else:
        camera = None
    if framing.denoise is not None and source.sensor_size[1] == 1:
        raise ConfigError(f"datasets.{name}.framing.denoise: tonic's Denoise needs a 2-D sensor, and {name}'s is "
                          f"{source.sensor_size[0]}×1; remove the key")
    framer = Framer(framing, source.sensor_size)
    train, test = source.open(request, camera)
    framed = {split: _frame_split(request, split, events, framer) for split, events in
              (("train", train), ("test", test))}
    (train_frames, train_labels, train_stats), (test_frames, test_labels, test_stats) = framed.values()
    T, channels, height, width = framer.output_shape
    counts = np.concatenate([train_stats.pop("event_counts"), test_stats.pop("event_counts")])
    meta = {
        "framing": framing.model_dump(),
        "sensor_size": list(source.sensor_size),
        "frame_bytes_per_sample": int(np.prod(framer.output_shape)),
        "events": {
            "sha256": {"train": train_stats.pop("sha256"), "test": test_stats.pop("sha256")},
            "per_sample_mean": float(counts.mean()) if len(counts) else 0.0,
            "per_sample_median": float(np.median(counts)) if len(counts) else 0.0,
            "saturated_values": train_stats.pop("saturated") + test_stats.pop("saturated"),
        },
    }
    if train.provenance or test.provenance:
        meta["raw_provenance"] = {**train.provenance, **test.provenance}
    if camera is not None:
        meta["simulation"] = {**camera.model_dump(), "simulator_version": SIMULATOR_VERSION}
    return RawData(
        train_images=train_frames, train_labels=train_labels, test_images=test_frames, test_labels=test_labels,
        sha256={key: value for split in (train, test) for key, value in split.identity.get("sha256", {}).items()},
        frames=FrameFormat(T=T, binary=framing.binary),
        input_shape=(channels, height, width),
        classes=train.classes or tuple(classes),
        meta=meta,
        event_digests={"train": train_stats.pop("digests"), "test": test_stats.pop("digests")},
    )


class _FrameBlocks:
    """The items `tonic.DiskCachedDataset` caches: block b of a split ->
    (frames uint8 [n, T, C, H, W], (labels int64 [n], event SHA-256s uint8 [n, 32], event counts
    int64 [n], saturated values int64 [n]))."""

    def __init__(self, split: EventSplit, framer: Framer, block: int):
        self.split, self.framer, self.block = split, framer, block

    def __len__(self) -> int:
        return math.ceil(len(self.split) / self.block)

    def bounds(self, index: int) -> tuple[int, int]:
        return index * self.block, min((index + 1) * self.block, len(self.split))

    def __getitem__(self, index: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        start, stop = self.bounds(index)
        events = self.split.read(start, stop)
        counts = [self.framer.counts(sample) for sample in events]
        ceiling = 1 if self.framer.framing.binary else 255
        frames = np.stack([np.minimum(c, ceiling).astype(np.uint8) for c in counts]) if counts else \
            np.zeros((0, *self.framer.output_shape), np.uint8)
        digests = np.array([np.frombuffer(events_digest(sample), np.uint8) for sample in events], np.uint8)
        return frames, (self.split.labels[start:stop].astype(np.int64), digests.reshape(-1, 32),
                        np.array([len(sample) for sample in events], np.int64),
                        np.array([int((c > 255).sum()) for c in counts], np.int64))


def _frame_split(request: RawRequest, split_name: str, split: EventSplit,
                 framer: Framer) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(frames uint8 [N, T, C, H, W], labels int64 [N], stats) of a split, through the block cache."""
    from tonic import DiskCachedDataset, __version__ as tonic_version

    bytes_per_sample = int(np.prod(framer.output_shape))
    block = max(1, min(MAX_BLOCK, BLOCK_BYTES // bytes_per_sample))
    blocks = _FrameBlocks(split, framer, block)
    key_fields = {"format": CACHE_FORMAT, "tonic": tonic_version, "framing": framer.framing.model_dump(),
                  "sensor_size": list(framer.sensor_size), "block": block, "source": split.identity}
    key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:16]
    cache_root = request.dataset_dir / "cache"
    cache_dir = cache_root / split_name / f"T{framer.framing.T}-{key}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    (cache_root / ".gitignore").write_text("# written by spikecode prepare: the frame cache stays out of git\n*\n")
    (cache_dir / "key.json").write_text(json.dumps(key_fields, indent=2, sort_keys=True) + "\n")
    cached = DiskCachedDataset(blocks, cache_path=str(cache_dir))

    frames = torch.empty((len(split), *framer.output_shape), dtype=torch.uint8)
    labels = torch.empty(len(split), dtype=torch.int64)
    digests = torch.empty((len(split), 32), dtype=torch.uint8)
    event_counts = np.empty(len(split), np.int64)
    saturated = 0
    for index in tqdm(range(len(blocks)), desc=f"{request.name} {split_name}: framing events", unit="block",
                      leave=False):
        start, stop = blocks.bounds(index)
        data, targets = cached[index]
        block_labels, block_digests, block_counts, block_saturated = (np.asarray(part) for part in targets)
        if np.shape(data) != (stop - start, *framer.output_shape) or np.asarray(data).dtype != np.uint8:
            raise DataError(f"{cache_dir}: cached block {index} holds {np.asarray(data).dtype} "
                            f"{list(np.shape(data))}, expected uint8 {[stop - start, *framer.output_shape]}; "
                            f"delete {cache_dir} and prepare again")
        frames[start:stop] = torch.from_numpy(np.asarray(data))
        labels[start:stop] = torch.from_numpy(block_labels.astype(np.int64))
        digests[start:stop] = torch.from_numpy(block_digests.reshape(-1, 32).astype(np.uint8))
        event_counts[start:stop] = block_counts
        saturated += int(block_saturated.sum())
    return frames, labels, {"sha256": hashlib.sha256(digests.numpy().tobytes()).hexdigest(), "digests": digests,
                            "event_counts": event_counts, "saturated": saturated}


def replay_events(name: str, split: str, indices: Sequence[int], root: Path = Path("datasets"),
                  search: Sequence[Path] | None = None) -> list[np.ndarray]:
    """The events of prepared samples `indices` of `split` ("train", "val" or "test"), read again from
    the raw files (or simulated again), each checked against the SHA-256 recorded for it when it
    was prepared: a `DataError` names the first sample whose events differ. For stages that work on
    events rather than frames (event corruptions). `search`: as `prepare`'s."""
    from benchmark.data import KNOWN_CHECKSUMS, META_FILE, PREPARED_FILE, load_prepared

    if split not in ("train", "val", "test"):
        raise ConfigError(f"split must be 'train', 'val' or 'test', got {split!r}")
    info = get_dataset(name)
    if info.events is None:
        raise ConfigError(f"{name} is an image dataset; it has no events to replay")
    load_prepared(name, root)  # checks prepared.pt against the checksum meta.json records
    meta = json.loads((Path(root) / name / META_FILE).read_text())
    payload = torch.load(Path(root) / name / PREPARED_FILE, weights_only=True, mmap=True)
    camera = None
    if info.events.simulated:
        simulation = dict(meta["simulation"])
        if simulation.pop("simulator_version") != SIMULATOR_VERSION:
            raise DataError(f"{name} was simulated by simulator version {meta['simulation']['simulator_version']}, "
                            f"this is version {SIMULATOR_VERSION}: run `spikecode prepare {name}` again")
        camera = EventCamera(**simulation)
    request = RawRequest(name, Path(root) / name, None if search is None else tuple(Path(p) for p in search),
                         False, KNOWN_CHECKSUMS.get(name, {}), False)  # verified when prepared; the digests check now
    train, test = info.events.open(request, camera)
    official = test if split == "test" else train
    sources = payload[f"{split}_source"] if split != "test" else torch.arange(len(official))
    recorded = payload["event_sha256"][split]
    replayed = []
    for index in indices:
        source = int(sources[index])
        events = official.read(source, source + 1)[0]
        if events_digest(events) != bytes(recorded[index].tolist()):
            raise DataError(f"{name}: the events of {split} sample {index} (official {'test' if split == 'test' else 'train'} "
                            f"sample {source}) differ from those it was prepared from: the raw files or the "
                            f"simulator changed; run `spikecode prepare {name}` again")
        replayed.append(events)
    return replayed


def _validated(model: type[BaseModel], raw: Any, where: str) -> Any:
    if isinstance(raw, model):
        return raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {raw!r}")
    try:
        return model(**raw)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            key = ".".join(str(part) for part in item["loc"])
            if item["type"] == "extra_forbidden":
                problems.append(f"{where}.{key}: unknown key (allowed: {', '.join(model.model_fields)})")
            elif item["type"] == "missing":
                problems.append(f"{where}.{key}: required key is missing")
            else:
                problems.append(f"{where}.{key}: {item['msg']} (got {item.get('input')!r})")
        raise ConfigError("invalid dataset parameters in params.yaml:\n  " + "\n  ".join(problems)) from None


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
    each image's events simulated on demand (benchmark.event_camera)."""
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
         source=EventSource((34, 34, 2), Framing(T=10), _open_fashion_mnist_dvs, simulated=True),
         classes=FASHION_CLASSES)
