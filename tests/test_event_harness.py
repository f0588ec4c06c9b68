"""Event frames through the harness: `ann` and `rate` train for one epoch and evaluate on a tiny
Fashion-MNIST-DVS through the spikecode CLI; the frame hooks' defaults (benchmark/contract/method.py) and the
T agreement between framing and method."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from benchmark.cli import main
from benchmark.contract.errors import ConfigError
from benchmark.contract.io import read_json
from benchmark.contract.registry import create_method
from benchmark.contract.semantics import ANALOG_VALUES, EventKind
from benchmark.data.prepared import load_prepared, prepare
from benchmark.data.registry import FrameFormat
from benchmark.run.config import load_params, resolve_run
from benchmark.run.inputs import Frames
from benchmark.run.runtime import build_method
from benchmark.run.train import calibration_batches
from tests.conftest import smoke_params
from tests.test_events import write_tiny_fashion

DATASET = "fashion-mnist-dvs"
T = 4


def workspace(root, *, binary: bool = False, **changes):
    """A project folder with smoke params and a tiny fashion-mnist-dvs (48 train, 12 test) at T = 4."""
    root.mkdir(parents=True)
    framing = {"T": T, "binary": binary}
    overrides = {method: {"T": T} for method in ("rate", "ttfs", "sigma-delta")}  # the frames fix T
    params = smoke_params(**{f"datasets.{DATASET}.framing": framing, f"datasets.{DATASET}.methods": overrides,
                             **changes})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    checksums = write_tiny_fashion(root / "raw", n_train=48, n_test=12)
    prepare(DATASET, root / "datasets", search=[root / "raw"], checksums=checksums, framing=framing,
            simulation=params["datasets"][DATASET]["simulation"])
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """ann, rate, ttfs and sigma-delta (its own per-step loop), one epoch each, trained and evaluated with the CLI."""
    root = workspace(tmp_path_factory.mktemp("events") / "ws")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for method in ("ann", "rate", "ttfs", "sigma-delta"):
            run = ["--dataset", DATASET, "--method", method, "--seed", "0", "--no-progress"]
            assert main(["train", *run]) == 0
            assert main(["evaluate", *run]) == 0
    return root


@pytest.mark.parametrize("method, steps", [("ann", 1), ("rate", T), ("sigma-delta", T)])
def test_ann_rate_and_sigma_delta_train_and_evaluate_on_event_frames(trained, method, steps):
    run = trained / "runs" / DATASET / method / "0"
    history = read_json(run / "train.json")["history"]
    assert len(history) == 1 and history[0]["loss"] > 0
    record = read_json(run / "eval.json")
    assert record["dataset"] == DATASET and record["test_samples"] == 12 and 0 <= record["accuracy"] <= 1
    assert record["T"] == steps and record["frames"] == {"T": T, "binary": False}
    assert record["decision_step"]["mean"] == steps


def test_ttfs_trains_on_event_frames_and_fires_at_most_once_per_neuron(trained):
    record = read_json(trained / "runs" / DATASET / "ttfs" / "0" / "eval.json")
    assert record["T"] == T and record["frames"] == {"T": T, "binary": False} and 0 <= record["accuracy"] <= 1
    layers = read_json(trained / "runs" / DATASET / "ttfs" / "0" / "ops.json")["layers"]
    neurons = [layer for layer in layers if layer["neurons"]]
    assert neurons and all(layer["spikes_per_neuron"] <= 1 for layer in neurons)  # single spike on frames too


def test_the_first_layer_is_charged_by_the_kind_of_events_the_frames_carry(trained):
    """Graded counts reach fc1 (MACs) for both; rate's fc1 -> output is binary spikes (ACs)."""
    layers = {layer["name"]: layer for layer in read_json(trained / "runs" / DATASET / "rate" / "0" / "ops.json")["layers"]}
    assert layers["fc1"]["macs"] > 0 and layers["fc1"]["acs"] == 0
    assert layers["output"]["acs"] >= 0 and layers["output"]["macs"] == 0
    ann = read_json(trained / "runs" / DATASET / "ann" / "0" / "ops.json")
    assert ann["ops"]["acs"] == 0 and ann["ops"]["macs"] > 0


def test_binary_frames_reach_the_first_layer_as_binary_events(tmp_path, monkeypatch):
    monkeypatch.chdir(workspace(tmp_path / "ws", binary=True))
    data = load_prepared(DATASET)
    assert int(data.train_images.max()) == 1 and data.frames == FrameFormat(T=T, binary=True)
    params = load_params()
    rate = build_method(resolve_run(params, DATASET, "rate", 0), data)
    ann = build_method(resolve_run(params, DATASET, "ann", 0), data)
    assert Frames(data.frames).semantics(rate).event_kind is EventKind.BINARY
    assert Frames(data.frames).semantics(ann) == ANALOG_VALUES


def test_a_framing_T_that_differs_from_the_methods_T_is_an_error_naming_both(tmp_path, monkeypatch):
    monkeypatch.chdir(workspace(tmp_path / "ws", **{f"datasets.{DATASET}.methods": {"rate": {"T": 20}}}))
    with pytest.raises(ConfigError) as error:
        build_method(resolve_run(load_params(), DATASET, "rate", 0), load_prepared(DATASET))
    message = str(error.value)
    assert f"datasets.{DATASET}.framing" in message and f"T = {T}" in message and "methods.rate.T = 20" in message


def test_frame_hook_defaults_ann_averages_over_time_others_pass_frames_through():
    from snn.arch import ArchSpec

    arch = ArchSpec(kind="mlp", hidden=[8])
    frames = torch.rand(T, 3, 2, 5, 5) * 4
    ann = create_method("ann", {}, arch, (2, 5, 5), 10)
    assert torch.equal(ann.encode_frames(frames), frames.mean(dim=0, keepdim=True))
    assert ann.network(ann.encode_frames(frames)).shape == (1, 3, 10)
    rate = create_method("rate", {"T": T}, arch, (2, 5, 5), 10)
    assert rate.encode_frames(frames) is frames and rate.network(rate.encode_frames(frames)).shape == (T, 3, 10)
    graded = FrameFormat(T=T, binary=False).semantics
    assert graded.event_kind is EventKind.GRADED and graded.payload_bits == 8
    assert rate.frame_semantics(graded) is graded and ann.frame_semantics(graded) == ANALOG_VALUES


def test_calibration_batches_of_event_data_are_the_frames_mean_over_time(trained, monkeypatch):
    monkeypatch.chdir(trained)
    data = load_prepared(DATASET)
    spec = resolve_run(load_params(), DATASET, "ann", 0)
    batch = next(calibration_batches(data, spec))
    order = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(0))[:len(batch)]
    assert torch.equal(batch, data.train_images[order].float().mean(dim=1))


def test_the_robustness_stage_corrupts_the_events_of_event_data(trained, monkeypatch):
    """Every event corruption at severities 1..5, framed as prepared; the clean accuracy is eval.json's."""
    from benchmark.data.event_corruptions import EVENT_CORRUPTIONS
    from benchmark.metrics.corruption import relative_corruption_error

    monkeypatch.chdir(trained)
    # the stage replays the events from the raw files' default place (the workspace prepared from raw/)
    shutil.copytree(trained / "raw", trained / "datasets" / "fashion-mnist" / "raw", dirs_exist_ok=True)
    records = {}
    for method in ("ann", "rate"):
        assert main(["robustness", "--dataset", DATASET, "--method", method, "--seed", "0", "--no-progress"]) == 0
        run = trained / "runs" / DATASET / method / "0"
        records[method] = record = read_json(run / "robust.json")
        assert set(record["per_corruption"]) == set(EVENT_CORRUPTIONS) and record["samples"] == 12
        assert all(row["severities"] == [1, 2, 3, 4, 5] and row["family"] == "events"
                   for row in record["per_corruption"].values())
        assert record["framing"]["T"] == T and record["framing"]["binary"] is False
        assert record["clean_accuracy"] == pytest.approx(read_json(run / "eval.json")["accuracy"])
    assert relative_corruption_error(records["ann"], records["ann"]) == pytest.approx(1.0)  # as the report pairs them
    assert relative_corruption_error(records["rate"], records["ann"]) > 0
