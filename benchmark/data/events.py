"""Event datasets' frames: how a sample's events become frames, and the cached framing of a split.

The registered event datasets, their raw files and where each is read from: `benchmark.data.event_sources`;
the generated `temporal-patterns`: `benchmark.data.temporal_patterns`.

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
(`benchmark.data.prepared.Prepared`), with the SHA-256 of each sample's events (`events_digest`) and
meta.json the SHA-256 over each official split's samples, in order. `benchmark.data.replay` reads (or
simulates) prepared samples' events again and checks each against its recorded SHA-256, for stages
that work on events rather than frames.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm import tqdm

from benchmark.contract.errors import ConfigError, DataError
from benchmark.data.event_camera import events_digest
from benchmark.data.registry import FrameFormat, RawData, RawRequest, register_event_dataset

CACHE_FORMAT = 1  # bump when the cached blocks' content or layout changes
BLOCK_BYTES = 64 * 2**20  # frames per cached block: at most this many bytes, at most MAX_BLOCK samples
MAX_BLOCK = 1000


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
    """How an event dataset is read: its sensor, default framing and a reader of its splits; a simulated
    one also names the model of its parameters (`datasets.<name>.simulation`) and its simulator's version
    (recorded in meta.json; replaying under another version is refused)."""

    sensor_size: tuple[int, int, int]  # tonic's (x, y, polarities)
    default_framing: Framing
    open: Callable[[RawRequest, BaseModel | None], tuple[EventSplit, EventSplit]]  # (train, test)
    simulation: type[BaseModel] | None = None  # None: a recording
    simulator_version: int = 0  # bump when the simulator makes other events from the same parameters

    @property
    def simulated(self) -> bool:
        return self.simulation is not None


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
    simulation = simulation_parameters(name, source, simulation)
    if framing.denoise is not None and source.sensor_size[1] == 1:
        raise ConfigError(f"datasets.{name}.framing.denoise: tonic's Denoise needs a 2-D sensor, and {name}'s is "
                          f"{source.sensor_size[0]}×1; remove the key")
    framer = Framer(framing, source.sensor_size)
    train, test = source.open(request, simulation)
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
    if simulation is not None:
        meta["simulation"] = {**simulation.model_dump(), "simulator_version": source.simulator_version}
    return RawData(
        train_images=train_frames, train_labels=train_labels, test_images=test_frames, test_labels=test_labels,
        sha256={key: value for split in (train, test) for key, value in split.identity.get("sha256", {}).items()},
        frames=FrameFormat(T=T, binary=framing.binary),
        input_shape=(channels, height, width),
        classes=train.classes or tuple(classes),
        meta=meta,
        event_digests={"train": train_stats.pop("digests"), "test": test_stats.pop("digests")},
    )


def simulation_parameters(name: str, source: EventSource, simulation: Any) -> BaseModel | None:
    """A simulated dataset's parameters (`datasets.<name>.simulation`, a mapping or the model; omitted: the
    defaults) validated by its source's model; None for a recording, where the key is an error."""
    if source.simulation is None:
        if simulation is not None:
            raise ConfigError(f"datasets.{name}.simulation: {name} is a recording, not a simulation; remove the key")
        return None
    return _validated(source.simulation, simulation if simulation is not None else {}, f"datasets.{name}.simulation")


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
