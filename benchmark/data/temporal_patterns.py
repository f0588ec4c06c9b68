"""Temporal patterns: a seeded synthetic event dataset whose class is in the spike timing, not the counts.

`temporal-patterns` (`spikecode prepare temporal-patterns`, nothing to place): C = 2P = 10 input channels
(P = 5 pairs), one polarity, a 1-D sensor of C × 1 as SHD's (x = the channel); 10 classes. Every
parameter is a key of params.yaml under `datasets.temporal-patterns.simulation` (class `TemporalPatterns`).

Class codes. Class c has a code b_c ∈ {0, 1}^P: the c-th P-bit word of even weight in increasing binary
order (00000, 00011, 00101, 00110, 01001, 01010, 01100, 01111, 10001, 10010; character p is pair p), so
any two classes differ in at least two pairs.

Pattern. Pair p holds channels 2p and 2p + 1, which fire once each, at the slots 2p and 2p + 1: in that
order when b_c,p = 0, swapped when b_c,p = 1,

    slot_c(2p) = 2p + b_c,p,    slot_c(2p + 1) = 2p + 1 − b_c,p

Sample n of a split (labels balanced: each class n/10 times, in a seeded order), drawn from its own
generator, seeded by (`seed`, split, n), times in µs:

    s      ~ U[0, S)                                   onset               (S: `onset_us`)
    t_i    = s + Δ·slot_c(i) + ε_i,  ε_i ~ N(0, σ²)    channel i's pattern event, i = 0..C−1
                                                                           (Δ: `spacing_us`, σ: `jitter_us`)
    m_i    ~ Poisson(λ) noise events on channel i, at times ~ U[0, D)      (λ: `noise_events`, D: `duration_us`)
    every time becomes ⌊min(max(t, 0), D − 1)⌋

What carries the label. On every channel the count is 1 + Poisson(λ) in every class, and every class
fills each slot Δ·k, k = 0..C−1, once: neither the counts per channel nor the counts per time bin depend
on the class (tests/test_temporal_patterns.py: a count-only classifier stays at chance). Only which
channel of a pair fires first does: events Δ apart, ordered by Δ/σ = 4 standard deviations of jitter.
With the defaults (Δ = 5 ms, σ = 1.25 ms, S = 30 ms, λ = 1, D = 100 ms) and the framing of params.yaml
(T = 10 windows of Δt = 10 ms from the sample's first event, benchmark.data.events), the two events of
a pair (Δ = Δt/2 apart) share a window about half the time at Δt, where their order is lost, and
rarely at Δt/4. T·Δt ≥ D keeps every event inside the windows. Measured with scikit-learn on the 6000
training and 2000 test samples of the defaults (seed 0): logistic regression on the counts per channel
9.4 %; an MLP (128 hidden units, 60 epochs) on the frames 45.2 % at Δt, 79.6 % at Δt/2, 84.7 % at Δt/4.

Output: per sample a tonic structured array (`EVENT_DTYPE`: x = channel, y = 0, t in µs, p = False),
sorted by t, then by channel. Generated offline, deterministic (the same parameters give byte-identical
events on one platform and numpy version): the 8000 samples in about 3 s, their framing by tonic (`prepare`) in
about 10 s more, on a loaded 2-core CPU.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from benchmark.data.event_camera import EVENT_DTYPE
from benchmark.data.events import EventSource, EventSplit, Framing, register
from benchmark.data.registry import RawRequest

GENERATOR_VERSION = 1  # bump when this module produces other events for the same parameters
PAIRS = 5
CHANNELS = 2 * PAIRS
CLASS_CODES = tuple(word for word in (format(n, f"0{PAIRS}b") for n in range(2 ** PAIRS))
                    if word.count("1") % 2 == 0)[:10]
SPLITS = {"train": 0, "test": 1}  # the split's number in the seeds


class TemporalPatterns(BaseModel):
    """Parameters of the generator (`datasets.temporal-patterns.simulation` in params.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(0, description="seeds every draw: labels' order, onsets, jitter, noise")
    train_samples: int = Field(6000, ge=10, description="samples of the official training split")
    test_samples: int = Field(2000, ge=10, description="samples of the official test split")
    spacing_us: float = Field(5000.0, gt=0, description="Δ: time between consecutive slots (µs)")
    jitter_us: float = Field(1250.0, ge=0, description="σ: standard deviation of each pattern event's jitter (µs)")
    onset_us: float = Field(30000.0, ge=0, description="S: the pattern starts at s ~ U[0, S) (µs)")
    noise_events: float = Field(1.0, ge=0, description="λ: mean noise events per channel and sample")
    duration_us: float = Field(100000.0, gt=0, validate_default=True, description="D: every event lies in [0, D) (µs)")

    @field_validator("duration_us")
    @classmethod
    def _pattern_fits(cls, duration: float, info: ValidationInfo) -> float:
        if {"onset_us", "spacing_us"} <= set(info.data):  # both valid: the pattern's latest slot is known
            end = info.data["onset_us"] + info.data["spacing_us"] * (CHANNELS - 1)
            if end >= duration:
                raise ValueError(f"the pattern runs to onset_us + {CHANNELS - 1}·spacing_us = {end:g} µs, past the "
                                 f"duration; lengthen it or shorten the pattern")
        return duration


def pattern_slots(label: int) -> np.ndarray:
    """slot_c(i) of every channel i for class `label`: int64 [C]."""
    slots = np.arange(CHANNELS)
    for pair, bit in enumerate(CLASS_CODES[label]):
        if bit == "1":
            slots[[2 * pair, 2 * pair + 1]] = slots[[2 * pair + 1, 2 * pair]]
    return slots


def split_labels(parameters: TemporalPatterns, split: str) -> np.ndarray:
    """The balanced labels of `split` ("train" or "test"), int64 [N], in a seeded order."""
    size = parameters.train_samples if split == "train" else parameters.test_samples
    rng = np.random.default_rng([parameters.seed, SPLITS[split], 0, 0])
    return rng.permutation(np.arange(size) % len(CLASS_CODES)).astype(np.int64)


def sample_events(parameters: TemporalPatterns, split: str, index: int, label: int) -> np.ndarray:
    """The events of sample `index` of `split`, of class `label` (the module docstring's equations)."""
    rng = np.random.default_rng([parameters.seed, SPLITS[split], 1, index])
    onset = rng.uniform(0, parameters.onset_us)
    pattern = onset + parameters.spacing_us * pattern_slots(label) + rng.normal(0, parameters.jitter_us, CHANNELS)
    noise_counts = rng.poisson(parameters.noise_events, CHANNELS)
    noise = rng.uniform(0, parameters.duration_us, int(noise_counts.sum()))
    times = np.floor(np.clip(np.concatenate([pattern, noise]), 0, parameters.duration_us - 1)).astype(np.int64)
    channels = np.concatenate([np.arange(CHANNELS), np.repeat(np.arange(CHANNELS), noise_counts)])
    order = np.lexsort((channels, times))
    events = np.zeros(len(order), EVENT_DTYPE)
    events["x"], events["t"] = channels[order], times[order]
    return events


def _open(request: RawRequest, parameters: TemporalPatterns | None) -> tuple[EventSplit, EventSplit]:
    """Both splits, each sample's events generated on demand."""
    if parameters is None:
        raise ValueError("temporal-patterns is generated: pass its TemporalPatterns parameters")
    splits = []
    for split in ("train", "test"):
        labels = split_labels(parameters, split)

        def read(start: int, stop: int, split=split, labels=labels) -> list[np.ndarray]:
            return [sample_events(parameters, split, index, int(labels[index])) for index in range(start, stop)]

        splits.append(EventSplit(labels=labels, read=read, provenance={},
                                 identity={"generator": GENERATOR_VERSION, "parameters": parameters.model_dump()}))
    return splits[0], splits[1]


register("temporal-patterns", "Synthetic: 10 classes told apart only by the order of events in 5 channel pairs "
         "(counts carry no label), 10 channels x 1",
         source=EventSource((CHANNELS, 1, 1), Framing(T=10, time_window=10000.0), _open,
                            simulation=TemporalPatterns, simulator_version=GENERATOR_VERSION),
         classes=tuple(f"order {code}" for code in CLASS_CODES))
