"""Replaying prepared samples' events: read (or simulate) them again, each checked against the digest
recorded when it was prepared, for stages that work on events rather than frames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from benchmark.contract.errors import ConfigError, DataError
from benchmark.data.event_camera import events_digest
from benchmark.data.prepared import META_FILE, PREPARED_FILE, load_prepared
from benchmark.data.registry import KNOWN_CHECKSUMS, RawRequest, get_dataset


def replay_events(name: str, split: str, indices: Sequence[int], root: Path = Path("datasets"),
                  search: Sequence[Path] | None = None) -> list[np.ndarray]:
    """The events of prepared samples `indices` of `split` ("train", "val" or "test"), read again from
    the raw files (or simulated again), each checked against the SHA-256 recorded for it when it
    was prepared: a `DataError` names the first sample whose events differ. For stages that work on
    events rather than frames (event corruptions). `search`: as `prepare`'s."""
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split must be 'train', 'val' or 'test', got {split!r}")
    info = get_dataset(name)
    if info.events is None:
        raise ConfigError(f"{name} is an image dataset; it has no events to replay")
    load_prepared(name, root)  # checks prepared.pt against the checksum meta.json records
    meta = json.loads((Path(root) / name / META_FILE).read_text())
    payload = torch.load(Path(root) / name / PREPARED_FILE, weights_only=True, mmap=True)
    simulation = None
    if info.events.simulated:
        recorded = dict(meta["simulation"])
        if recorded.pop("simulator_version") != info.events.simulator_version:
            raise DataError(f"{name} was simulated by simulator version {meta['simulation']['simulator_version']}, "
                            f"this is version {info.events.simulator_version}: run `spikecode prepare {name}` again")
        simulation = info.events.simulation(**recorded)
    request = RawRequest(name, Path(root) / name, None if search is None else tuple(Path(p) for p in search),
                         False, KNOWN_CHECKSUMS.get(name, {}), False)  # verified when prepared; the digests check now
    train, test = info.events.open(request, simulation)
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
