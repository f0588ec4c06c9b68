"""benchmark.data.events: tiny files in each official event-data layout (N-MNIST .bin, DVS Gesture .npy,
SHD .h5, and their archives) prepare into the frames their events give, counted independently
here; the framing keys are validated; missing or corrupt files fail saying why and how to fix it;
frames are cached under a key of every parameter."""

from __future__ import annotations

import hashlib
import json
import tarfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import tonic  # imported at collection: its import takes seconds
import torch

from benchmark.contract.errors import ConfigError, DataError, MissingData
from benchmark.data import event_sources, replay as events_module
from benchmark.data.event_camera import EVENT_DTYPE, EventCamera, events_digest, simulate
from benchmark.data.events import Framer, Framing
from benchmark.data.prepared import load_prepared, prepare
from benchmark.data.registry import KNOWN_CHECKSUMS, available_datasets
from benchmark.run.config import load_params

REPO = Path(__file__).resolve().parents[1]
RNG_SEED = 7


# --- writers of the official formats, independent of the code under test --------------------


def random_events(rng: np.random.Generator, n: int, width: int, height: int, duration_us: int) -> dict[str, np.ndarray]:
    return {"x": rng.integers(0, width, n), "y": rng.integers(0, height, n),
            "t": np.sort(rng.integers(0, duration_us, n)), "p": rng.integers(0, 2, n)}


def nmnist_bytes(ev: dict[str, np.ndarray]) -> bytes:
    """N-MNIST: 5 bytes (40 bits) per event: x, y, then polarity (bit 7) and a 23-bit timestamp in µs."""
    raw = np.zeros((len(ev["t"]), 5), np.uint8)
    raw[:, 0], raw[:, 1] = ev["x"], ev["y"]
    raw[:, 2] = (ev["p"] << 7) | ((ev["t"] >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (ev["t"] >> 8) & 0xFF, ev["t"] & 0xFF
    return raw.tobytes()


def write_nmnist(location: Path, counts=(("Train", 6), ("Test", 3))) -> dict[str, list]:
    """datasets/nmnist/NMNIST/{Train,Test}/<digit>/<id>.bin; returns split -> [(label, events)] in path order."""
    rng = np.random.default_rng(RNG_SEED)
    written = {}
    for folder, n in counts:
        samples = []
        for index in range(n):
            label = index % 3
            ev = random_events(rng, 300, 34, 34, 300_000)
            path = location / folder / str(label) / f"{index:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(nmnist_bytes(ev))
            samples.append((str(path), label, ev))
        written[folder] = [(label, ev) for _, label, ev in sorted(samples, key=lambda s: s[0])]
    return written


def write_dvs_gesture(location: Path) -> dict[str, list]:
    """DVSGesture/ibmGesture{Train,Test}/user<NN>_<lighting>/<label>.npy, rows (x, y, p, t in ms)."""
    rng = np.random.default_rng(RNG_SEED)
    written = {}
    for folder, users in (("ibmGestureTrain", ("user01_fluorescent", "user02_led")), ("ibmGestureTest", ("user24_led",))):
        samples = []
        for user in users:
            for label in (0, 3, 10):
                ev = random_events(rng, 400, 128, 128, 6000)  # ms
                path = location / folder / user / f"{label}.npy"
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, np.stack([ev["x"], ev["y"], ev["p"], ev["t"]], axis=1).astype(np.int64))
                samples.append((str(path), label, {**ev, "t": ev["t"] * 1000}))
        written[folder] = [(label, ev) for _, label, ev in sorted(samples, key=lambda s: s[0])]
    return written


def write_shd(location: Path) -> dict[str, list]:
    """SHD/shd_{train,test}.h5: spikes/times (s) and spikes/units per sample, labels, extra/keys."""
    rng = np.random.default_rng(RNG_SEED)
    location.mkdir(parents=True, exist_ok=True)
    written = {}
    keys = [f"key{i}".encode() for i in range(20)]
    for split, n in (("train", 5), ("test", 2)):
        sizes = rng.integers(200, 300, n)
        times = [np.sort(rng.uniform(0, 0.9, size)).astype(np.float32) for size in sizes]
        units = [rng.integers(0, 700, size).astype(np.uint16) for size in sizes]
        labels = rng.integers(0, 20, n).astype(np.uint8)
        with h5py.File(location / f"shd_{split}.h5", "w") as file:
            for name, rows, dtype in (("spikes/times", times, np.float32), ("spikes/units", units, np.uint16)):
                ragged = np.empty(n, dtype=object)
                for index, row in enumerate(rows):
                    ragged[index] = row
                file.create_dataset(name, data=ragged, dtype=h5py.vlen_dtype(dtype))
            file.create_dataset("labels", data=labels)
            file.create_dataset("extra/keys", data=np.array(keys))
            file.create_dataset("extra/speaker", data=np.zeros(n, np.uint8))
        written[split] = [(int(label), {"x": u.astype(np.int64), "y": np.zeros(len(u), np.int64),
                                        "t": (t.astype(np.float64) * 1e6).astype(np.int64), "p": np.zeros(len(u), np.int64)})
                          for t, u, label in zip(times, units, labels)]
    return written


# --- the frames each sample must give, counted here without tonic --------------------------------


def counted(ev: dict[str, np.ndarray], shape: tuple[int, int, int, int], *, time_window: float | None = None,
            factor: float = 1.0, ceiling: int = 255) -> np.ndarray:
    """Counts per (bin, polarity, y, x): bins of ⌊span / T⌋ µs from the first event (by bin count),
    or of `time_window` µs; events past the T-th bin dropped; x, y scaled by ⌊·factor⌋."""
    T = shape[0]
    t = ev["t"].astype(np.int64)
    width = time_window if time_window is not None else (t[-1] - t[0]) // T
    bins = np.floor((t - t[0]) / width).astype(np.int64)
    keep = bins < T
    frames = np.zeros(shape, np.int64)
    x = np.floor(ev["x"] * factor).astype(np.int64)
    y = np.floor(ev["y"] * factor).astype(np.int64)
    np.add.at(frames, (bins[keep], ev["p"][keep], y[keep], x[keep]), 1)
    return np.minimum(frames, ceiling).astype(np.uint8)


def expect_frames(prepared_frames: torch.Tensor, samples: list, shape, **options) -> None:
    assert prepared_frames.shape == (len(samples), *shape) and prepared_frames.dtype == torch.uint8
    for got, (_, ev) in zip(prepared_frames, samples):
        assert np.array_equal(got.numpy(), counted(ev, shape, **options))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --- N-MNIST ---------------------------------------------------------------------------------------


def test_nmnist_extracted_folders_prepare_into_the_counted_frames(tmp_path):
    written = write_nmnist(tmp_path / "nmnist" / "NMNIST")
    prepare("nmnist", tmp_path, val_fraction=0.0, framing={"T": 5})
    data = load_prepared("nmnist", tmp_path)
    assert data.frames.T == 5 and not data.frames.binary and data.input_shape == (2, 34, 34)
    expect_frames(data.train_images, written["Train"], (5, 2, 34, 34))
    expect_frames(data.test_images, written["Test"], (5, 2, 34, 34))
    assert data.train_labels.tolist() == [label for label, _ in written["Train"]]
    assert data.test_labels.tolist() == [label for label, _ in written["Test"]]
    meta = json.loads((tmp_path / "nmnist" / "meta.json").read_text())
    assert "without a checksum" in meta["raw_provenance"]["train.zip"]  # no archive: recorded as unverified
    assert meta["events"]["per_sample_mean"] == 300 and meta["framing"]["T"] == 5


def test_nmnist_archives_are_verified_and_extracted_then_read(tmp_path):
    staging = tmp_path / "staging"
    written = write_nmnist(staging)
    location = tmp_path / "datasets" / "nmnist" / "NMNIST"
    location.mkdir(parents=True)
    for archive, folder in (("train.zip", "Train"), ("test.zip", "Test")):
        with zipfile.ZipFile(location / archive, "w") as opened:
            for path in sorted((staging / folder).rglob("*.bin")):
                opened.write(path, path.relative_to(staging).as_posix())
    checksums = {name: ("md5", md5(location / name)) for name in ("train.zip", "test.zip")}
    prepare("nmnist", tmp_path / "datasets", val_fraction=0.0, framing={"T": 3}, checksums=checksums)
    assert (location / "Train" / "0" / "00000.bin").is_file()  # extracted next to the archive
    assert not list(location.glob(".extract-*"))  # and nothing left half-done
    data = load_prepared("nmnist", tmp_path / "datasets")
    expect_frames(data.train_images, written["Train"], (3, 2, 34, 34))
    meta = json.loads((tmp_path / "datasets" / "nmnist" / "meta.json").read_text())
    assert meta["raw_provenance"]["train.zip"] == f"md5 {checksums['train.zip'][1]} (verified)"


def test_a_corrupt_archive_is_a_data_error_naming_it_and_both_md5s(tmp_path):
    location = tmp_path / "nmnist" / "NMNIST"
    location.mkdir(parents=True)
    (location / "train.zip").write_bytes(b"not the official archive")
    with pytest.raises(DataError, match="train.zip") as error:
        prepare("nmnist", tmp_path)  # the known MD5 tonic ships
    assert KNOWN_CHECKSUMS["nmnist"]["train.zip"][1] in str(error.value)
    assert hashlib.md5(b"not the official archive").hexdigest() in str(error.value)
    assert "Re-download" in str(error.value)


def test_missing_files_are_missing_data_naming_the_file_the_folder_and_the_fix(tmp_path):
    with pytest.raises(MissingData) as error:
        prepare("nmnist", tmp_path)
    message = str(error.value)
    assert "train.zip" in message and "Train/ folder" in message
    assert str(tmp_path / "nmnist" / "NMNIST") in message
    assert "spikecode prepare nmnist --download" in message and "allow_download=False" in message


def test_known_archive_checksums_are_the_md5s_tonic_ships():
    datasets = tonic.datasets
    assert KNOWN_CHECKSUMS["nmnist"] == {"train.zip": ("md5", datasets.NMNIST.train_md5),
                                         "test.zip": ("md5", datasets.NMNIST.test_md5)}
    assert KNOWN_CHECKSUMS["dvs-gesture"] == {"ibmGestureTrain.tar.gz": ("md5", datasets.DVSGesture.train_md5),
                                              "ibmGestureTest.tar.gz": ("md5", datasets.DVSGesture.test_md5)}
    assert KNOWN_CHECKSUMS["shd"] == {"shd_train.h5.zip": ("md5", datasets.SHD.train_md5),
                                      "shd_test.h5.zip": ("md5", datasets.SHD.test_md5)}
    assert EVENT_DTYPE == tonic.io.events_struct


# --- DVS Gesture and SHD -----------------------------------------------------------------------------


def test_dvs_gesture_tar_archive_prepares_with_time_windows_and_downsampling(tmp_path):
    staging = tmp_path / "staging"
    written = write_dvs_gesture(staging)
    location = tmp_path / "dvs-gesture" / "DVSGesture"
    location.mkdir(parents=True)
    with tarfile.open(location / "ibmGestureTrain.tar.gz", "w:gz") as opened:
        opened.add(staging / "ibmGestureTrain", arcname="ibmGestureTrain")
    (location / "ibmGestureTest").parent.mkdir(exist_ok=True)
    (staging / "ibmGestureTest").rename(location / "ibmGestureTest")  # this split: extracted only
    checksums = {"ibmGestureTrain.tar.gz": ("md5", md5(location / "ibmGestureTrain.tar.gz"))}
    framing = {"T": 4, "time_window": 1_000_000.0, "spatial_factor": 0.25}
    prepare("dvs-gesture", tmp_path, val_fraction=0.0, framing=framing, checksums=checksums)
    data = load_prepared("dvs-gesture", tmp_path)
    assert data.input_shape == (2, 32, 32) and data.num_classes == 11
    expect_frames(data.train_images, written["ibmGestureTrain"], (4, 2, 32, 32), time_window=1e6, factor=0.25)
    expect_frames(data.test_images, written["ibmGestureTest"], (4, 2, 32, 32), time_window=1e6, factor=0.25)
    assert data.train_labels.tolist() == [label for label, _ in written["ibmGestureTrain"]]


def test_shd_h5_files_prepare_into_one_row_frames_with_the_files_class_names(tmp_path):
    written = write_shd(tmp_path / "shd" / "SHD")
    prepare("shd", tmp_path, val_fraction=0.0, framing={"T": 6})
    data = load_prepared("shd", tmp_path)
    assert data.input_shape == (1, 1, 700) and data.classes == [f"key{i}" for i in range(20)]
    expect_frames(data.train_images, written["train"], (6, 1, 1, 700))
    expect_frames(data.test_images, written["test"], (6, 1, 1, 700))
    assert data.test_labels.tolist() == [label for label, _ in written["test"]]


# --- framing ---------------------------------------------------------------------------------------


def test_binary_frames_clip_to_one_and_counts_saturate_at_255():
    ev = np.zeros(300, EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = 3, 4, np.arange(300), True  # 300 events on one pixel
    counts = Framer(Framing(T=1), (34, 34, 2))(ev)
    assert counts.shape == (1, 2, 34, 34) and counts[0, 1, 4, 3] == 255 and counts.sum() == 255
    binary = Framer(Framing(T=1, binary=True), (34, 34, 2))(ev)
    assert binary[0, 1, 4, 3] == 1 and binary.sum() == 1


def test_time_windows_start_at_the_first_event_and_drop_what_comes_after_T_windows():
    ev = np.zeros(5, EVENT_DTYPE)
    ev["t"] = [1000, 1999, 2000, 3500, 9000]  # windows of 1000 µs from 1000: bins 0, 0, 1, 2, dropped
    frames = Framer(Framing(T=3, time_window=1000.0), (34, 34, 2))(ev)
    assert frames[:, 0, 0, 0].tolist() == [2, 1, 1]


def test_bins_are_tonics_the_last_event_falls_past_the_last_bin():
    """tonic's n_time_bins: bins of ⌊(t_last − t_first) / T⌋ µs from t_first, end excluded."""
    ev = np.zeros(4, EVENT_DTYPE)
    ev["t"] = [0, 49, 50, 100]  # T = 2: bins [0, 50), [50, 100); t = 100 is dropped
    assert Framer(Framing(T=2), (34, 34, 2))(ev)[:, 0, 0, 0].tolist() == [2, 1]


def test_no_events_give_empty_frames_of_the_right_shape():
    empty = np.zeros(0, EVENT_DTYPE)
    assert Framer(Framing(T=4, spatial_factor=0.5), (34, 34, 2))(empty).shape == (4, 2, 17, 17)
    assert not Framer(Framing(T=4), (700, 1, 1))(np.zeros(0, EVENT_DTYPE)).any()


def test_denoise_keeps_only_events_with_a_recent_neighbour():
    """tonic's Denoise keeps an event when a 4-neighbour fired less than `denoise` µs before it."""
    ev = np.zeros(3, EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"] = [5, 6, 30], [5, 5, 30], [5000, 5100, 5200]  # (6, 5) follows (5, 5); (30, 30) alone
    plain = Framer(Framing(T=1, time_window=1000.0), (34, 34, 2))(ev)
    denoised = Framer(Framing(T=1, time_window=1000.0, denoise=1000.0), (34, 34, 2))(ev)
    assert plain.sum() == 3 and denoised.sum() == 1 and denoised[0, 0, 5, 6] == 1


@pytest.mark.parametrize("framing, key, says", [
    ({"T": 4, "bins": 3}, "datasets.nmnist.framing.bins", "unknown key"),
    ({"time_window": 100.0}, "datasets.nmnist.framing.T", "required"),
    ({"T": 0}, "datasets.nmnist.framing.T", "greater than or equal to 1"),
    ({"T": 4, "spatial_factor": 2}, "datasets.nmnist.framing.spatial_factor", "less than or equal to 1"),
], ids=["unknown", "missing-T", "T=0", "upsampling"])
def test_invalid_framing_keys_are_config_errors_naming_the_key(tmp_path, framing, key, says):
    with pytest.raises(ConfigError, match=key) as error:
        prepare("nmnist", tmp_path, framing=framing)
    assert says in str(error.value)


def test_keys_that_do_not_apply_to_the_dataset_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="datasets.shd.framing.denoise"):
        prepare("shd", tmp_path, framing={"T": 4, "denoise": 1000.0})
    with pytest.raises(ConfigError, match="datasets.mnist.framing"):
        prepare("mnist", tmp_path, framing={"T": 4})
    with pytest.raises(ConfigError, match="datasets.nmnist.simulation"):
        prepare("nmnist", tmp_path, framing={"T": 4}, simulation={"seed": 1})
    with pytest.raises(ConfigError, match="datasets.fashion-mnist-dvs.simulation.thresold"):
        prepare("fashion-mnist-dvs", tmp_path, simulation={"thresold": 0.2})


def test_params_yaml_event_entries_validate_and_unknown_keys_are_named(tmp_path):
    params = load_params(REPO / "params.yaml")
    assert params.datasets["nmnist"].framing == Framing(T=10)
    assert params.datasets["fashion-mnist-dvs"].simulation == EventCamera()
    import yaml

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["datasets"]["nmnist"]["framing"]["bins"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"datasets\.nmnist\.framing\.bins: unknown key"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize("dataset, simulation, says", [
    ("fashion-mnist-dvs", {"thresold": 0.2}, r"datasets\.fashion-mnist-dvs\.simulation\.thresold: unknown key"),
    ("temporal-patterns", {"threshold": 0.2}, r"datasets\.temporal-patterns\.simulation\.threshold: unknown key"),
    ("nmnist", {"seed": 1}, r"datasets\.nmnist\.simulation: nmnist is a recording"),
    ("mnist", {"seed": 1}, r"datasets\.mnist\.simulation: mnist is not a registered event dataset"),
], ids=["camera", "generator", "recording", "image"])
def test_params_yaml_simulations_are_validated_by_their_own_simulators_model(tmp_path, dataset, simulation, says):
    import yaml

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["datasets"].setdefault(dataset, {})["simulation"] = simulation
    raw["grid_files"] = []  # they lie beside the repository's params.yaml
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=says):
        load_params(tmp_path / "params.yaml")


def test_the_registry_lists_the_event_datasets_with_their_frame_shapes():
    datasets = available_datasets()
    assert datasets["nmnist"].input_shape == (2, 34, 34) and datasets["shd"].input_shape == (1, 1, 700)
    assert datasets["dvs-gesture"].num_classes == 11 and datasets["fashion-mnist-dvs"].num_classes == 10
    assert all(datasets[name].events is not None for name in ("nmnist", "dvs-gesture", "shd", "fashion-mnist-dvs"))
    assert datasets["mnist"].events is None


# --- cache -------------------------------------------------------------------------------------------


def test_frames_come_from_the_cache_the_second_time_and_a_new_framing_gets_a_new_folder(tmp_path, monkeypatch):
    write_nmnist(tmp_path / "nmnist" / "NMNIST")
    first = prepare("nmnist", tmp_path, framing={"T": 2}).read_bytes()
    cache = tmp_path / "nmnist" / "cache"
    assert (cache / ".gitignore").read_text().strip().endswith("*")
    [folder] = (cache / "train").iterdir()
    assert folder.name.startswith("T2-") and json.loads((folder / "key.json").read_text())["framing"]["T"] == 2

    def unreadable(*args, **kwargs):
        raise AssertionError("read a raw file although its frames are cached")

    monkeypatch.setattr(tonic.datasets.nmnist, "read_mnist_file", unreadable)
    assert prepare("nmnist", tmp_path, framing={"T": 2}).read_bytes() == first
    with pytest.raises(AssertionError, match="cached"):
        prepare("nmnist", tmp_path, framing={"T": 2, "binary": True})
    assert len(list((cache / "train").iterdir())) == 2


# --- fashion-mnist-dvs ---------------------------------------------------------------------------------


def write_tiny_fashion(folder: Path, n_train: int = 12, n_test: int = 4, seed: int = RNG_SEED) -> dict[str, tuple[str, str]]:
    """Fashion-MNIST IDX files of blob images; returns their content checksums."""
    import gzip
    import struct

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    checksums = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 6:22, 8:20] = rng.integers(0, 256, size=(n, 16, 12), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            content = struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape) + array.tobytes()
            (folder / f"{prefix}-{kind}-ubyte.gz").write_bytes(gzip.compress(content))
            checksums[f"{prefix}-{kind}-ubyte"] = ("sha256", hashlib.sha256(content).hexdigest())
    return checksums


def test_fashion_mnist_dvs_frames_are_the_simulated_events_counted_and_checksummed(tmp_path):
    checksums = write_tiny_fashion(tmp_path / "raw")
    camera = {"threshold": 0.6, "seed": 3}
    prepare("fashion-mnist-dvs", tmp_path, search=[tmp_path / "raw"], checksums=checksums, val_fraction=0.0,
            framing={"T": 4}, simulation=camera)
    data = load_prepared("fashion-mnist-dvs", tmp_path)
    fashion = available_datasets()["fashion-mnist"]
    from benchmark.data.registry import RawRequest

    raw = fashion.load_raw(RawRequest("fashion-mnist", tmp_path, (tmp_path / "raw",), True, checksums, False))
    events = simulate(raw.train_images[:, 0].numpy(), EventCamera(**camera))
    samples = [(None, {name: e[name].astype(np.int64) for name in ("x", "y", "t", "p")}) for e in events]
    expect_frames(data.train_images, samples, (4, 2, 34, 34))
    meta = json.loads((tmp_path / "fashion-mnist-dvs" / "meta.json").read_text())
    assert meta["events"]["sha256"]["train"] == hashlib.sha256(b"".join(events_digest(e) for e in events)).hexdigest()
    assert meta["simulation"]["threshold"] == 0.6 and meta["events"]["per_sample_mean"] > 100
    assert meta["raw_sha256"] == {name: digest for name, (_, digest) in checksums.items()}
    payload = torch.load(tmp_path / "fashion-mnist-dvs" / "prepared.pt", weights_only=True)
    assert bytes(payload["event_sha256"]["train"][5].tolist()) == events_digest(events[5])

    prepared = tmp_path / "fashion-mnist-dvs" / "prepared.pt"
    content = bytearray(prepared.read_bytes())
    content[len(content) // 2] ^= 0xFF
    prepared.write_bytes(bytes(content))
    with pytest.raises(DataError, match="changed after it was prepared"):
        load_prepared("fashion-mnist-dvs", tmp_path)


def test_replayed_events_are_verified_against_the_digests_recorded_when_prepared(tmp_path):
    checksums = write_tiny_fashion(tmp_path / "raw")
    prepare("fashion-mnist-dvs", tmp_path, search=[tmp_path / "raw"], checksums=checksums, val_fraction=0.25,
            framing={"T": 2})
    payload = torch.load(tmp_path / "fashion-mnist-dvs" / "prepared.pt", weights_only=True)
    replayed = events_module.replay_events("fashion-mnist-dvs", "val", [0, 2], tmp_path, search=[tmp_path / "raw"])
    from benchmark.data.registry import RawRequest

    raw = available_datasets()["fashion-mnist"].load_raw(
        RawRequest("fashion-mnist", tmp_path, (tmp_path / "raw",), True, checksums, False))
    for events, source in zip(replayed, payload["val_source"][[0, 2]].tolist()):
        assert np.array_equal(events, simulate(raw.train_images[source:source + 1, 0].numpy(), EventCamera())[0])
    assert len(events_module.replay_events("fashion-mnist-dvs", "test", [3], tmp_path, search=[tmp_path / "raw"])) == 1

    write_tiny_fashion(tmp_path / "raw", seed=RNG_SEED + 1)  # other images in place of the prepared ones
    with pytest.raises(DataError, match="test sample 0 .* differ"):
        events_module.replay_events("fashion-mnist-dvs", "test", [0], tmp_path, search=[tmp_path / "raw"])


def test_a_changed_recording_is_caught_when_its_events_are_replayed(tmp_path):
    written = write_nmnist(tmp_path / "nmnist" / "NMNIST")
    prepare("nmnist", tmp_path, val_fraction=0.0, framing={"T": 2})
    [events] = events_module.replay_events("nmnist", "test", [1], tmp_path)
    assert events["t"].tolist() == written["Test"][1][1]["t"].tolist()
    sample = sorted((tmp_path / "nmnist" / "NMNIST" / "Test").rglob("*.bin"))[1]
    sample.write_bytes(sample.read_bytes()[:-5])  # one event fewer
    with pytest.raises(DataError, match="nmnist: the events of test sample 1"):
        events_module.replay_events("nmnist", "test", [1], tmp_path)


def test_fashion_mnist_dvs_needs_fashion_mnist_and_says_where_to_put_it(tmp_path):
    with pytest.raises(MissingData, match="train-images-idx3-ubyte"):
        prepare("fashion-mnist-dvs", tmp_path, search=[tmp_path / "nowhere"])


def test_the_module_docstring_lists_every_registered_event_dataset():
    for name in ("nmnist", "dvs-gesture", "shd", "fashion-mnist-dvs"):
        assert name in event_sources.__doc__
