"""benchmark.run.robustness on event data: a tiny N-MNIST's replayed events corrupted at five severities
and framed again as prepare framed them; every method sees byte-identical corrupted frames, dropping
events thins the frames and noise fills them; an image dataset still takes the image path."""

from __future__ import annotations

import pytest
import torch

from benchmark.cli import main
from benchmark.contract.errors import ConfigError, DataError
from benchmark.contract.io import read_json
from benchmark.contract.registry import create_method
from benchmark.data.corruptions import CORRUPTIONS
from benchmark.data.event_corruptions import EVENT_CORRUPTIONS
from benchmark.data.events import Framer, Framing
from benchmark.data.prepared import frames_to_float, load_prepared, prepare
from benchmark.data.replay import replay_events
from benchmark.run.robustness import corrupted_frames, evaluate_event_robustness, prepared_framer
from snn.arch import ArchSpec
from tests.test_events import write_nmnist

T = 2
N = 6
SEED = 3


@pytest.fixture(scope="module")
def test_set(tmp_path_factory):
    """(events, prepared frames uint8 [N, T, 2, 34, 34], labels, framer) of a tiny N-MNIST's test split."""
    root = tmp_path_factory.mktemp("datasets")
    write_nmnist(root / "nmnist" / "NMNIST", counts=(("Train", 2), ("Test", N)))
    prepare("nmnist", root, val_fraction=0.0, framing={"T": T})
    data = load_prepared("nmnist", root)
    return replay_events("nmnist", "test", range(N), root), data.test_images, data.test_labels, \
        prepared_framer("nmnist", root)


def make_method(name: str):
    torch.manual_seed(0)
    return create_method(name, {} if name == "ann" else {"T": T}, ArchSpec(kind="mlp", hidden=[16]), (2, 34, 34), 10)


def evaluate(method, test_set, **kwargs):
    events, frames, labels, framer = test_set
    options = {"framer": framer, "device": "cpu", "batch_size": 4, "seed": SEED, "progress": False, **kwargs}
    return evaluate_event_robustness(method, events, frames, labels, **options)


def accuracy_on(method, frames: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        prediction = method.readout(method.network(method.encode_frames(frames_to_float(frames)))).prediction
    return float((prediction == labels).double().mean())


def test_the_framer_is_the_framing_meta_json_records_not_the_datasets_default(test_set):
    assert test_set[3] == Framer(Framing(T=T), (34, 34, 2))  # N-MNIST's default framing has T = 10


def test_record_has_every_event_corruption_at_severities_1_to_5_and_the_clean_accuracy(test_set):
    method = make_method("ann")
    record = evaluate(method, test_set)
    assert set(record["per_corruption"]) == set(EVENT_CORRUPTIONS)
    for row in record["per_corruption"].values():
        assert row["family"] == "events" and row["source"] == "generated"
        assert row["severities"] == [1, 2, 3, 4, 5]  # severity 0 (the clean frames) is not a corruption level
        assert len(row["accuracy"]) == 5 and all(0 <= a <= 1 for a in row["accuracy"])
        assert row["decision_step_mean"] == [1.0] * 5  # the ANN decides at its only step
    means = [sum(row["accuracy"]) / 5 for row in record["per_corruption"].values()]
    assert record["mean_accuracy"] == pytest.approx(sum(means) / len(means)) and record["seed"] == SEED
    _, frames, labels, _ = test_set
    assert record["clean_accuracy"] == pytest.approx(accuracy_on(method, frames, labels))


def test_accuracy_is_that_of_the_method_on_the_corrupted_frames(test_set):
    events, _, labels, framer = test_set
    method = make_method("ann")
    record = evaluate(method, test_set)
    for name in EVENT_CORRUPTIONS:
        for severity in (1, 5):
            frames = corrupted_frames(events, framer, name, severity, SEED, range(N))
            expected = accuracy_on(method, frames, labels)
            assert record["per_corruption"][name]["accuracy"][severity - 1] == pytest.approx(expected)


def test_two_methods_receive_byte_identical_corrupted_frames(test_set):
    received = {}
    for name in ("ann", "rate"):
        method = make_method(name)
        encode_frames, received[name] = method.encode_frames, []

        def recording(frames, generator=None, encode_frames=encode_frames, log=received[name]):
            log.append(frames.clone())
            return encode_frames(frames, generator)

        method.encode_frames = recording
        evaluate(method, test_set, batch_size=N)
    assert len(received["ann"]) == len(received["rate"]) == 1 + 3 * 5  # clean, then 3 corruptions × 5 severities
    for ann_frames, rate_frames in zip(received["ann"], received["rate"]):
        assert torch.equal(ann_frames, rate_frames)
    assert not torch.equal(received["ann"][0], received["ann"][1])  # the corruptions do change the frames


def test_frames_depend_on_seed_and_sample_index_only_not_on_the_batch(test_set):
    events, _, _, framer = test_set
    frames = corrupted_frames(events, framer, "time_jitter", 3, SEED, range(N))
    assert torch.equal(corrupted_frames(events[2:5], framer, "time_jitter", 3, SEED, range(2, 5)), frames[2:5])
    assert not torch.equal(corrupted_frames(events, framer, "time_jitter", 3, SEED + 1, range(N)), frames)


def test_dropping_events_thins_the_frames_and_noise_fills_them_more_with_each_severity(test_set):
    events, clean, _, framer = test_set
    clean_events = int(clean.sum())  # counts per bin: the sum is the number of framed events

    def framed_events(name: str) -> list[int]:
        return [int(corrupted_frames(events, framer, name, s, SEED, range(N)).sum()) for s in range(1, 6)]

    dropped, noisy = framed_events("drop_events"), framed_events("noise_events")
    assert clean_events > dropped[0] > dropped[1] > dropped[2] > dropped[3] > dropped[4] > 0
    assert clean_events < noisy[0] < noisy[1] < noisy[2] < noisy[3] < noisy[4]
    # noise_events adds round(fraction · events) per sample: at 0.8 about 1.8× the clean events
    assert noisy[4] == pytest.approx(1.8 * clean_events, rel=0.05)


def test_the_batch_size_does_not_change_the_record(test_set):
    method = make_method("rate")
    assert evaluate(method, test_set, batch_size=N, corruptions=["drop_events"]) == \
        evaluate(method, test_set, batch_size=1, corruptions=["drop_events"])


def test_an_unknown_event_corruption_fails_naming_the_allowed_ones(test_set):
    with pytest.raises(ConfigError, match="unknown event corruption.*'gaussian_noise'.*noise_events"):
        evaluate(make_method("ann"), test_set, corruptions=["drop_events", "gaussian_noise"])


def test_frames_the_framer_does_not_reproduce_are_a_data_error(test_set):
    events, frames, labels, framer = test_set
    other = Framer(Framing(T=T, time_window=1000.0), framer.sensor_size)  # same shape, other frames
    with pytest.raises(DataError, match="test sample 0: its events framed with .* differ from its prepared frames"):
        evaluate(make_method("ann"), (events, frames, labels, other))


def test_an_image_dataset_still_takes_the_image_path(workspace):
    run = ["--dataset", "digits", "--method", "ann", "--seed", "0", "--no-progress"]
    assert main(["train", *run]) == 0
    assert main(["robustness", *run]) == 0
    record = read_json(workspace / "runs" / "digits" / "ann" / "0" / "robust.json")
    assert set(record["per_corruption"]) == set(CORRUPTIONS) and record["official_sets"] == []
    assert "framing" not in record and record["samples"] == 100
