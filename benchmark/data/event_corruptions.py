"""Event-stream corruptions at five levels (METHODS.md §9): tonic 1.7's `UniformNoise`, `DropEvent` and
`TimeJitter` on tonic structured arrays (fields x, y, t, p), seeded per sample as the image corruptions are."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.contract.errors import ConfigError
from benchmark.data.corruptions import check_severity, sample_seed


@dataclass(frozen=True)
class EventCorruption:
    """An event-stream corruption made of a tonic 1.7 transform, with its level at severities 1..5."""

    name: str
    id: int
    parameters: tuple[float, float, float, float, float]
    parameter: str
    transform: str


EVENT_CORRUPTIONS: dict[str, EventCorruption] = {
    c.name: c
    for c in (
        # n = round(fraction · number of events of the sample): the same signal-to-noise ratio on
        # every sensor and recording length
        EventCorruption("noise_events", 101, (0.05, 0.1, 0.2, 0.4, 0.8),
                        "added noise events, as a fraction of the sample's events", "tonic.transforms.UniformNoise"),
        EventCorruption("drop_events", 102, (0.1, 0.2, 0.3, 0.5, 0.7),
                        "probability of dropping an event", "tonic.transforms.DropEvent"),
        # in the units of the t field: microseconds for the tonic datasets (N-MNIST, DVS Gesture)
        EventCorruption("time_jitter", 103, (500, 1000, 2000, 5000, 10000),
                        "standard deviation of the Gaussian time shift (t units, us)", "tonic.transforms.TimeJitter"),
    )
}

EVENT_FIELDS = ("x", "y", "t", "p")


def corrupt_events(events: np.ndarray, sensor_size: tuple[int, int, int], name: str, severity: int, seed: int,
                   sample_index: int = 0) -> np.ndarray:
    """One sample's events corrupted by `name` at `severity` (0 = a copy, 1..5 = `EVENT_CORRUPTIONS`).

    tonic draws from numpy's global RNG: it is seeded here from (seed, corruption id, severity,
    sample_index) and restored afterwards, so the result is reproducible and the caller's global
    numpy state is untouched (not thread-safe: do not corrupt events from several threads at once).
    Time jitter drops events pushed before t = 0 and re-sorts by time (tonic's clip_negative and
    sort_timestamps), so the output stays a valid, time-ordered stream.

    Shapes: structured array `[N]` with fields x, y, t, p -> `[N']`.
    """
    import tonic.transforms  # slow to import; only event data needs it

    if name not in EVENT_CORRUPTIONS:
        raise ConfigError(f"unknown event corruption {name!r}; allowed: {', '.join(EVENT_CORRUPTIONS)}")
    check_severity(severity)
    if not isinstance(events, np.ndarray) or events.dtype.names is None or \
            not set(EVENT_FIELDS) <= set(events.dtype.names):
        got = getattr(events, "dtype", type(events).__name__)
        raise ValueError(f"corrupt_events expects a structured array with fields {EVENT_FIELDS}, got {got}")
    if severity == 0:
        return events.copy()
    corruption = EVENT_CORRUPTIONS[name]
    level = corruption.parameters[severity - 1]
    if name == "noise_events":
        transform = tonic.transforms.UniformNoise(sensor_size=tuple(sensor_size), n=int(round(level * len(events))))
    elif name == "drop_events":
        transform = tonic.transforms.DropEvent(p=level)
    else:
        transform = tonic.transforms.TimeJitter(std=level, clip_negative=True, sort_timestamps=True)
    saved = np.random.get_state()
    try:
        np.random.seed(sample_seed(seed, corruption.id, severity, sample_index) % 2**32)
        if events.dtype["p"] != np.bool_:
            return transform(events.copy())
        # tonic's UniformNoise draws p from uniform(0, 2): cast to bool, nearly every noise event
        # would be ON; as 0/1 integers half are ON and half OFF, as on an integer-polarity sensor
        as_int = events.astype([(f, np.int8 if f == "p" else events.dtype[f]) for f in events.dtype.names])
        return transform(as_int).astype(events.dtype)
    finally:
        np.random.set_state(saved)
