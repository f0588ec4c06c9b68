"""The synthetic `temporal-patterns` dataset (benchmark/data/temporal_patterns.py): its equations by hand,
seeded and checksummed like the other event datasets, the label out of reach of spike counts but not of
spike timing, and the harness preparing, training on, replaying and corrupting it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from benchmark.cli import main
from benchmark.contract.errors import ConfigError
from benchmark.contract.io import read_json
from benchmark.data.prepared import load_prepared, prepare
from benchmark.data.replay import replay_events
from benchmark.data.temporal_patterns import (CHANNELS, CLASS_CODES, TemporalPatterns, pattern_slots, sample_events,
                                              split_labels)
from benchmark.run.config import load_params
from tests.conftest import smoke_params

DATASET = "temporal-patterns"
FRAMING = {"T": 10, "time_window": 10000.0}


def prepared(root, **simulation):
    """Prepares the dataset under `root` (no validation split): (train frames, labels, test frames, labels)."""
    prepare(DATASET, root, val_fraction=0.0, framing=FRAMING, simulation=simulation)
    data = load_prepared(DATASET, root)
    return (data.train_images.numpy().astype(float), data.train_labels.numpy(),
            data.test_images.numpy().astype(float), data.test_labels.numpy())


# --- the equations ------------------------------------------------------------------------------------


def test_the_class_codes_are_the_ten_first_even_weight_words_and_swap_their_pairs():
    assert CLASS_CODES == ("00000", "00011", "00101", "00110", "01001", "01010", "01100", "01111", "10001", "10010")
    assert all(sum(a != b for a, b in zip(x, y)) >= 2 for x in CLASS_CODES for y in CLASS_CODES if x != y)
    assert pattern_slots(0).tolist() == list(range(10))
    # class 1, code 00011: pairs 3 (channels 6, 7) and 4 (channels 8, 9) fire in reversed order
    assert pattern_slots(1).tolist() == [0, 1, 2, 3, 4, 5, 7, 6, 9, 8]
    # every class fills each slot once: the same times, other channels
    assert all(sorted(pattern_slots(c).tolist()) == list(range(CHANNELS)) for c in range(10))


def test_without_jitter_and_noise_a_sample_is_its_class_pattern_spacing_apart():
    parameters = TemporalPatterns(jitter_us=0.0, noise_events=0.0)
    for label in (0, 7):
        events = sample_events(parameters, "train", 3, label)
        assert len(events) == CHANNELS and (events["y"] == 0).all() and not events["p"].any()
        # ordered by time, the channels are the pattern's: channel i at onset + 5000·slot(i) (µs, floored)
        assert events["x"].tolist() == np.argsort(pattern_slots(label)).tolist()
        steps = np.diff(events["t"])
        assert ((steps >= 4999) & (steps <= 5001)).all()
        onset = np.random.default_rng([0, 0, 1, 3]).uniform(0, 30000.0)  # the sample's own generator, first draw
        assert events["t"][0] == int(np.floor(onset))


def test_labels_are_balanced_and_every_channel_fires_once_plus_its_noise():
    parameters = TemporalPatterns(train_samples=200, test_samples=50, jitter_us=0.0, noise_events=2.0)
    labels = split_labels(parameters, "train")
    assert np.bincount(labels).tolist() == [20] * 10
    counts = np.stack([np.bincount(sample_events(parameters, "train", i, int(labels[i]))["x"], minlength=CHANNELS)
                       for i in range(200)])
    assert counts.min() >= 1 and 2.0 - 0.3 < counts.mean() - 1 < 2.0 + 0.3  # 1 + Poisson(λ = 2)


def test_a_pattern_longer_than_the_duration_is_a_config_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"datasets\.temporal-patterns\.simulation\.duration_us"):
        prepare(DATASET, tmp_path, simulation={"onset_us": 60000.0})
    with pytest.raises(ConfigError, match=r"datasets\.temporal-patterns\.simulation\.pairs: unknown key"):
        prepare(DATASET, tmp_path, simulation={"pairs": 4})


# --- seeded and checksummed ----------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_events_and_checksums_another_seed_others(tmp_path):
    def digests(root, seed):
        prepare(DATASET, root, framing=FRAMING, simulation={"seed": seed, "train_samples": 40, "test_samples": 20})
        meta = json.loads((root / DATASET / "meta.json").read_text())
        return meta["prepared_sha256"], meta["events"]["sha256"]

    first, again, other = (digests(tmp_path / name, seed) for name, seed in (("a", 0), ("b", 0), ("c", 1)))
    assert first == again
    assert first[0] != other[0] and first[1]["train"] != other[1]["train"] and first[1]["test"] != other[1]["test"]
    parameters = TemporalPatterns(train_samples=40, test_samples=20)
    assert np.array_equal(sample_events(parameters, "test", 5, 3), sample_events(parameters, "test", 5, 3))
    assert not np.array_equal(sample_events(parameters, "test", 5, 3),
                              sample_events(parameters.model_copy(update={"seed": 1}), "test", 5, 3))


def test_the_frames_keep_every_event(tmp_path):
    """T·Δt = D: the windows from the first event hold every event of the sample."""
    train, _, _, _ = prepared(tmp_path, train_samples=60, test_samples=10)
    parameters = TemporalPatterns(train_samples=60, test_samples=10)
    labels = split_labels(parameters, "train")
    counts = [len(sample_events(parameters, "train", i, int(labels[i]))) for i in range(60)]
    assert train.sum(axis=(1, 2, 3, 4)).tolist() == counts


# --- the label is in the timing ------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 100 epochs suffice
def test_counts_alone_stay_at_chance_and_the_timing_does_far_better(tmp_path):
    """Logistic regression on the counts per channel (or per time window) is at chance, 10 %, within
    3.5 pp (3.7 standard errors on 1000 test samples; measured 9.8 % and 11.0 %); an MLP on the frames at
    Δt reads the timing (39.2 % measured; 45.2 % with 6000 samples, the module docstring)."""
    train, train_labels, test, test_labels = prepared(tmp_path, train_samples=3000, test_samples=1000)

    def accuracy(model, features):  # features: frames [N, T, 1, 1, C] -> [N, F]
        return model.fit(features(train), train_labels).score(features(test), test_labels)

    per_channel = accuracy(LogisticRegression(max_iter=1000), lambda frames: frames.sum(axis=1).reshape(len(frames), -1))
    per_window = accuracy(LogisticRegression(max_iter=1000), lambda frames: frames.sum(axis=(2, 3, 4)))
    assert abs(per_channel - 0.1) <= 0.035 and abs(per_window - 0.1) <= 0.035, (per_channel, per_window)
    timing = accuracy(MLPClassifier((64,), max_iter=100, random_state=0),
                      lambda frames: frames.reshape(len(frames), -1))
    assert timing >= 0.3, timing


# --- the harness -----------------------------------------------------------------------------------------


def test_the_harness_prepares_trains_replays_and_corrupts_it(tmp_path, monkeypatch):
    params = smoke_params(**{f"datasets.{DATASET}.simulation": {"train_samples": 60, "test_samples": 20},
                             "profiles.smoke.robustness_samples": 10})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    assert load_params().datasets[DATASET].simulation == TemporalPatterns(train_samples=60, test_samples=20)
    assert main(["prepare", DATASET]) == 0
    data = load_prepared(DATASET)
    assert data.train_images.shape == (54, 10, 1, 1, CHANNELS) and data.input_shape == (1, 1, CHANNELS)
    # a validation sample's events, generated again, are the official training sample's it came from
    sources = torch.load(f"datasets/{DATASET}/prepared.pt", weights_only=True)["val_source"]
    parameters = TemporalPatterns(train_samples=60, test_samples=20)
    labels = split_labels(parameters, "train")
    for index, events in zip((0, 3), replay_events(DATASET, "val", [0, 3])):
        source = int(sources[index])
        assert np.array_equal(events, sample_events(parameters, "train", source, int(labels[source])))
    for method in ("ann", "sigma-delta"):
        run = ["--dataset", DATASET, "--method", method, "--seed", "0", "--no-progress"]
        assert main(["train", *run]) == 0 and main(["evaluate", *run]) == 0
        record = read_json(f"runs/{DATASET}/{method}/0/eval.json")
        assert record["frames"] == {"T": 10, "binary": False} and 0 <= record["accuracy"] <= 1
    assert read_json(f"runs/{DATASET}/sigma-delta/0/eval.json")["T"] == 10
    assert main(["robustness", "--dataset", DATASET, "--method", "ann", "--seed", "0", "--no-progress"]) == 0
    robust = read_json(f"runs/{DATASET}/ann/0/robust.json")
    assert robust["samples"] == 10 and robust["framing"]["time_window"] == 10000.0
