"""benchmark.data: tiny files in the official formats round-trip through prepare/load_prepared,
splits are seeded, and missing, corrupt or unknown data fails with a message that says why."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.contract.errors import ConfigError, DataError, RegistryError
from benchmark.data import images as data, registry
from benchmark.data.prepared import load_prepared, prepare, to_unit_float
from benchmark.data.registry import DatasetInfo, available_datasets, get_dataset, register_dataset

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
N_TRAIN, N_TEST = 50, 7
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


# --- writers of the official formats, independent of the code under test --------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX: magic 0x00000800 | ndim (2051 for images, 2049 for labels), big-endian sizes, data."""
    return struct.pack(f">I{array.ndim}I", 0x0800 | array.ndim, *array.shape) + array.astype(np.uint8).tobytes()


def tiny_arrays(n: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random images whose first pixel is the sample's index, so each prepared image names its source."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    images.reshape(n, -1)[:, 0] = np.arange(n)
    return images, rng.integers(0, 10, size=n, dtype=np.uint8)


def write_tiny_idx(folder: Path, *, gz: bool) -> dict[str, np.ndarray]:
    train_images, train_labels = tiny_arrays(N_TRAIN, (28, 28), seed=1)
    test_images, test_labels = tiny_arrays(N_TEST, (28, 28), seed=2)
    arrays = dict(zip(IDX_NAMES, (train_images, train_labels, test_images, test_labels)))
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        content = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (folder / name).write_bytes(content)
    return arrays


def idx_content_checksums(arrays: dict[str, np.ndarray]) -> dict[str, tuple[str, str]]:
    return {name: ("sha256", hashlib.sha256(idx_bytes(array)).hexdigest()) for name, array in arrays.items()}


def write_tiny_cifar(folder: Path) -> dict[str, np.ndarray]:
    """cifar-10-batches-py/: five train pickles, test_batch and batches.meta, 4 images per batch."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for index, name in enumerate([*data.CIFAR_TRAIN, "test_batch"]):
        images, labels = tiny_arrays(4, (3 * 32 * 32,), seed=10 + index)
        arrays[name] = images
        batch = {b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": images,
                 b"filenames": [b"x.png"] * 4}
        (folder / name).write_bytes(pickle.dumps(batch))
        arrays[f"{name}/labels"] = labels
    meta = {b"label_names": [name.encode() for name in registry.CIFAR10_CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
    return arrays


def file_checksums(folder: Path, algorithm: str) -> dict[str, tuple[str, str]]:
    return {path.name: (algorithm, hashlib.new(algorithm, path.read_bytes()).hexdigest())
            for path in folder.iterdir()}


def flip_byte(path: Path, offset: int) -> None:
    content = bytearray(path.read_bytes())
    content[offset] ^= 0xFF
    path.write_bytes(bytes(content))


def source_index(images: torch.Tensor) -> list[int]:
    return images.reshape(len(images), -1)[:, 0].tolist()


# --- registry ---------------------------------------------------------------------------------


def test_available_datasets_lists_the_built_ins_sorted():
    datasets = available_datasets()
    assert list(datasets) == ["cifar10", "digits", "dvs-gesture", "fashion-mnist", "fashion-mnist-dvs", "mnist",
                              "nmnist", "shd", "temporal-patterns"]  # the event datasets: tests/test_events.py
    assert all(isinstance(info, DatasetInfo) for info in datasets.values())
    assert datasets["cifar10"].input_shape == (3, 32, 32) and datasets["cifar10"].num_classes == 10
    assert datasets["fashion-mnist"].classes[0] == "T-shirt/top"


@pytest.mark.parametrize("call", [get_dataset, prepare, load_prepared])
def test_unknown_dataset_name_raises_registry_error_listing_known_names(call, tmp_path):
    args = ("imagenet",) if call is get_dataset else ("imagenet", tmp_path)
    with pytest.raises(RegistryError, match="imagenet") as error:
        call(*args)
    assert "cifar10, digits, dvs-gesture, fashion-mnist, fashion-mnist-dvs, mnist, nmnist, shd" in str(error.value)


def test_registering_a_dataset_name_twice_is_a_registry_error():
    with pytest.raises(RegistryError, match="digits"):
        register_dataset("digits", "again", input_shape=(1, 8, 8), classes=["0"])(lambda request: None)


# --- IDX (MNIST, Fashion-MNIST) -----------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "uncompressed"])
def test_prepare_then_load_round_trips_idx_images_and_labels_exactly(tmp_path, gz):
    arrays = write_tiny_idx(tmp_path / "raw", gz=gz)
    prepare("mnist", tmp_path / "datasets", search=[tmp_path / "raw"], checksums=idx_content_checksums(arrays))
    prepared = load_prepared("mnist", tmp_path / "datasets")

    train_images, train_labels, test_images, test_labels = arrays.values()
    for images, labels in ((prepared.train_images, prepared.train_labels),
                           (prepared.val_images, prepared.val_labels)):
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        index = source_index(images)
        assert torch.equal(images, torch.from_numpy(train_images[index]).unsqueeze(1))
        assert torch.equal(labels, torch.from_numpy(train_labels[index]).long())
    assert torch.equal(prepared.test_images, torch.from_numpy(test_images).unsqueeze(1))
    assert torch.equal(prepared.test_labels, torch.from_numpy(test_labels).long())
    assert prepared.input_shape == (1, 28, 28) and prepared.num_classes == 10
    assert prepared.classes == [str(digit) for digit in range(10)]


def test_train_and_val_are_disjoint_and_cover_the_official_train_set(tmp_path):
    write_tiny_idx(tmp_path / "raw", gz=True)
    prepare("mnist", tmp_path, search=[tmp_path / "raw"], verify=False, val_fraction=0.2)
    prepared = load_prepared("mnist", tmp_path)
    train, val = source_index(prepared.train_images), source_index(prepared.val_images)
    assert len(val) == round(0.2 * N_TRAIN)
    assert not set(train) & set(val)
    assert sorted(train + val) == list(range(N_TRAIN))


def val_indices(tmp_path: Path, seed: int, run: str) -> list[int]:
    prepare("mnist", tmp_path / run, search=[tmp_path / "raw"], verify=False, split_seed=seed)
    return source_index(load_prepared("mnist", tmp_path / run).val_images)


def test_split_is_the_same_for_a_seed_and_differs_for_another(tmp_path):
    write_tiny_idx(tmp_path / "raw", gz=True)
    first = val_indices(tmp_path, seed=0, run="a")
    assert val_indices(tmp_path, seed=0, run="b") == first
    assert val_indices(tmp_path, seed=1, run="c") != first


def test_preparing_twice_writes_byte_identical_prepared_files(tmp_path):
    write_tiny_idx(tmp_path / "raw", gz=True)
    first = prepare("mnist", tmp_path / "a", search=[tmp_path / "raw"], verify=False).read_bytes()
    assert prepare("mnist", tmp_path / "b", search=[tmp_path / "raw"], verify=False).read_bytes() == first


def test_meta_json_records_splits_seed_and_checksums(tmp_path):
    arrays = write_tiny_idx(tmp_path / "raw", gz=True)
    path = prepare("mnist", tmp_path, search=[tmp_path / "raw"], verify=False, val_fraction=0.1, split_seed=3)
    meta = json.loads((tmp_path / "mnist" / "meta.json").read_text())
    assert meta["splits"] == {"train": 45, "val": 5, "test": N_TEST}
    assert (meta["split_seed"], meta["val_fraction"], meta["num_classes"]) == (3, 0.1, 10)
    assert meta["input_shape"] == [1, 28, 28] and meta["name"] == "mnist"
    # IDX checksums are of the decompressed content, the same whether .gz or not.
    assert meta["raw_sha256"] == {name: digest for name, (_, digest) in idx_content_checksums(arrays).items()}
    assert meta["prepared_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_prepared("mnist", tmp_path).sha256 == meta["prepared_sha256"]


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "uncompressed"])
def test_a_flipped_byte_in_a_raw_file_is_a_data_error_naming_the_file(tmp_path, gz):
    arrays = write_tiny_idx(tmp_path / "raw", gz=gz)
    checksums = idx_content_checksums(arrays)
    prepare("mnist", tmp_path, search=[tmp_path / "raw"], checksums=checksums)  # intact: passes
    name = "train-labels-idx1-ubyte" + (".gz" if gz else "")
    flip_byte(tmp_path / "raw" / name, offset=20)
    with pytest.raises(DataError, match=name.replace(".", r"\.")) as error:
        prepare("mnist", tmp_path, search=[tmp_path / "raw"], checksums=checksums)
    if not gz:  # a flipped .gz byte already breaks the gzip CRC, before any checksum
        assert checksums["train-labels-idx1-ubyte"][1] in str(error.value)
        assert "Re-download" in str(error.value)


def test_default_checksums_reject_files_that_are_not_the_official_ones(tmp_path):
    write_tiny_idx(tmp_path / "raw", gz=True)
    with pytest.raises(DataError, match="not the official file") as error:
        prepare("mnist", tmp_path, search=[tmp_path / "raw"])
    assert registry.KNOWN_CHECKSUMS["mnist"]["train-images-idx3-ubyte"][1] in str(error.value)


def test_missing_raw_file_is_a_data_error_listing_the_places_searched(tmp_path):
    write_tiny_idx(tmp_path / "partial", gz=True)
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    places = [tmp_path / "partial", tmp_path / "absent"]
    with pytest.raises(DataError) as error:
        prepare("mnist", tmp_path, search=places)
    message = str(error.value)
    assert "raw file t10k-labels-idx1-ubyte[.gz] not found" in message
    assert f"{places[0]}: missing t10k-labels-idx1-ubyte" in message
    assert f"{places[1]}: does not exist" in message
    assert "allow_download" in message


def test_missing_fashion_mnist_error_gives_the_three_fixes(tmp_path):
    with pytest.raises(DataError) as error:
        prepare("fashion-mnist", tmp_path, search=[tmp_path / "nothing"])
    message = str(error.value)
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert f"{tmp_path / 'fashion-mnist' / 'raw'}/" in message
    assert "network access" in message


def test_default_search_covers_the_raw_folder_then_the_debian_package_path(tmp_path, monkeypatch):
    monkeypatch.setattr(Path, "is_file", lambda self: False)  # nothing is found anywhere
    with pytest.raises(DataError) as error:
        prepare("fashion-mnist", tmp_path)
    message = str(error.value)
    raw, system = message.index(str(tmp_path / "fashion-mnist" / "raw")), message.index(str(FASHION_SYSTEM_DIR))
    assert raw < system


@pytest.mark.skipif(not FASHION_SYSTEM_DIR.is_dir(), reason=f"{FASHION_SYSTEM_DIR} absent (dataset-fashion-mnist)")
def test_user_placed_raw_files_take_precedence_over_the_debian_package(tmp_path):
    write_tiny_idx(tmp_path / "fashion-mnist" / "raw", gz=False)
    prepare("fashion-mnist", tmp_path, verify=False)
    assert len(load_prepared("fashion-mnist", tmp_path).test_labels) == N_TEST


def test_failed_download_is_reported_with_the_places_searched(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(DataError) as error:
        prepare("mnist", tmp_path, allow_download=True)
    message = str(error.value)
    assert "failed: RuntimeError: Error downloading train-images-idx3-ubyte.gz: no network" in message
    assert f"{tmp_path / 'mnist' / 'raw'}: does not exist" in message


def test_downloaded_files_land_in_the_raw_folder_and_are_prepared(tmp_path, monkeypatch):
    import torchvision.datasets

    def fake_download(self):  # what torchvision leaves: each .gz and its extracted file
        write_tiny_idx(Path(self.raw_folder), gz=True)
        write_tiny_idx(Path(self.raw_folder), gz=False)

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    prepare("mnist", tmp_path, allow_download=True, verify=False)
    assert sorted(path.name for path in (tmp_path / "mnist" / "raw").iterdir()) == sorted(
        f"{name}.gz" for name in IDX_NAMES)
    assert len(load_prepared("mnist", tmp_path).test_labels) == N_TEST


def test_a_truncated_idx_file_is_a_data_error(tmp_path):
    write_tiny_idx(tmp_path / "raw", gz=False)
    path = tmp_path / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        prepare("mnist", tmp_path, search=[tmp_path / "raw"], verify=False)


# --- CIFAR-10 -------------------------------------------------------------------------------


def assert_cifar_round_trip(prepared, arrays) -> None:
    train = np.concatenate([arrays[name] for name in data.CIFAR_TRAIN])
    train_labels = np.concatenate([arrays[f"{name}/labels"] for name in data.CIFAR_TRAIN])
    all_train = torch.cat([prepared.train_images, prepared.val_images])
    assert len(all_train) == 5 * 4
    all_labels = torch.cat([prepared.train_labels, prepared.val_labels])
    rows = {tuple(image.flatten().tolist()): int(label) for image, label in zip(all_train, all_labels)}
    expected = {tuple(row.tolist()): int(label) for row, label in zip(train, train_labels)}
    assert rows == expected  # rows are [R(1024), G(1024), B(1024)] = [3, 32, 32] in C order
    assert torch.equal(prepared.test_images, torch.from_numpy(arrays["test_batch"]).reshape(4, 3, 32, 32))
    assert prepared.test_labels.tolist() == arrays["test_batch/labels"].tolist()
    assert prepared.classes == list(registry.CIFAR10_CLASSES)


def test_cifar10_pickles_round_trip_exactly(tmp_path):
    arrays = write_tiny_cifar(tmp_path / "cifar10" / "cifar-10-batches-py")
    prepare("cifar10", tmp_path, checksums=file_checksums(tmp_path / "cifar10" / "cifar-10-batches-py", "md5"))
    assert_cifar_round_trip(load_prepared("cifar10", tmp_path), arrays)


def test_cifar10_archive_in_raw_is_verified_and_extracted(tmp_path):
    arrays = write_tiny_cifar(tmp_path / "build" / "cifar-10-batches-py")
    raw = tmp_path / "cifar10" / "raw"
    raw.mkdir(parents=True)
    with tarfile.open(raw / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "build" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    checksums = {**file_checksums(tmp_path / "build" / "cifar-10-batches-py", "md5"),
                 **file_checksums(raw, "sha256")}
    prepare("cifar10", tmp_path, checksums=checksums)
    assert (raw / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert_cifar_round_trip(load_prepared("cifar10", tmp_path), arrays)


def test_a_flipped_byte_in_a_cifar_pickle_is_a_data_error_naming_the_file(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    write_tiny_cifar(folder)
    checksums = file_checksums(folder, "md5")
    flip_byte(folder / "data_batch_3", offset=500)
    with pytest.raises(DataError, match="data_batch_3") as error:
        prepare("cifar10", tmp_path, checksums=checksums)
    assert f"md5 is {hashlib.md5((folder / 'data_batch_3').read_bytes()).hexdigest()}" in str(error.value)


def test_missing_cifar10_lists_both_places_searched(tmp_path):
    with pytest.raises(DataError) as error:
        prepare("cifar10", tmp_path)
    message = str(error.value)
    assert f"{tmp_path / 'cifar10'}: neither cifar-10-batches-py/ nor cifar-10-python.tar.gz" in message
    assert f"{tmp_path / 'cifar10' / 'raw'}: neither" in message


# --- digits, loading, helpers ----------------------------------------------------------------------


def test_digits_prepares_to_uint8_8x8_with_a_fixed_test_set(tmp_path):
    from sklearn.datasets import load_digits

    prepare("digits", tmp_path / "a", split_seed=0)
    prepare("digits", tmp_path / "b", split_seed=1)
    a, b = load_prepared("digits", tmp_path / "a"), load_prepared("digits", tmp_path / "b")
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10 and a.classes == [str(d) for d in range(10)]
    assert a.train_images.shape[1:] == (1, 8, 8) and a.train_images.dtype == torch.uint8
    assert len(a.train_labels) + len(a.val_labels) + len(a.test_labels) == 1797
    assert len(a.test_labels) == round(0.2 * 1797)
    assert torch.equal(a.test_images, b.test_images)  # the test set does not move with split_seed
    assert not torch.equal(a.val_images, b.val_images)
    every_image = torch.cat([a.train_images, a.val_images, a.test_images]).reshape(1797, 64)
    bunch = load_digits()
    expected = np.rint(bunch.data * 255 / 16).astype(np.uint8)
    assert sorted(map(bytes, every_image.numpy())) == sorted(map(bytes, expected))


def test_load_prepared_without_prepare_says_to_run_spikecode_prepare(tmp_path):
    with pytest.raises(DataError, match="run `spikecode prepare mnist`"):
        load_prepared("mnist", tmp_path)


def test_load_prepared_rejects_a_prepared_file_changed_after_preparing(tmp_path):
    write_tiny_idx(tmp_path / "raw", gz=True)
    path = prepare("mnist", tmp_path, search=[tmp_path / "raw"], verify=False)
    buffer = io.BytesIO()
    torch.save({**torch.load(path, weights_only=True), "test_labels": torch.zeros(N_TEST, dtype=torch.long)}, buffer)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="changed after it was prepared"):
        load_prepared("mnist", tmp_path)


def test_prepare_leaves_no_temporary_files(tmp_path):
    write_tiny_idx(tmp_path / "raw", gz=True)
    prepare("mnist", tmp_path, search=[tmp_path / "raw"], verify=False)
    assert sorted(path.name for path in (tmp_path / "mnist").iterdir()) == ["meta.json", "prepared.pt"]


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_val_fraction_outside_0_to_1_is_a_config_error(tmp_path, fraction):
    with pytest.raises(ConfigError, match="val_fraction"):
        prepare("digits", tmp_path, val_fraction=fraction)


def test_to_unit_float_maps_uint8_to_float32_between_0_and_1():
    out = to_unit_float(torch.tensor([0, 51, 255], dtype=torch.uint8))
    assert out.dtype == torch.float32 and out.tolist() == pytest.approx([0.0, 0.2, 1.0])
    with pytest.raises(TypeError, match="uint8"):
        to_unit_float(torch.zeros(3))


# --- the real Fashion-MNIST ------------------------------------------------------------------


@pytest.mark.skipif(not FASHION_SYSTEM_DIR.is_dir(),
                    reason=f"{FASHION_SYSTEM_DIR} absent: install it with `sudo apt-get install dataset-fashion-mnist`")
def test_real_fashion_mnist_passes_the_known_checksums(tmp_path):
    prepare("fashion-mnist", tmp_path)  # verify=True: the known SHA-256s of the decompressed files
    meta = json.loads((tmp_path / "fashion-mnist" / "meta.json").read_text())
    assert meta["splits"] == {"train": 54000, "val": 6000, "test": 10000}
    known = {name: digest for name, (_, digest) in registry.KNOWN_CHECKSUMS["fashion-mnist"].items()}
    assert meta["raw_sha256"] == known
