"""Shared fixtures: a smoke-profile workspace with the bundled digits prepared once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def prepared_digits(tmp_path_factory) -> Path:
    from benchmark.data.prepared import prepare

    root = tmp_path_factory.mktemp("datasets")
    prepare("digits", root)
    return root / "digits"


def smoke_params(**changes) -> dict:
    """The repository's params.yaml switched to the smoke profile on digits, with `changes` applied."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profile"] = "smoke"
    params["grid_files"] = []  # the probes' file lies beside the repository's params.yaml, not the workspace's
    params["claims"] = []  # the repository's claims name its grids and sweeps, which tests replace
    params["run"].update({"datasets": ["digits"], "methods": ["ann", "rate"], "seeds": [0], "grids": [],
                          "conversions": [{"method": "convert", "source": "ann"}],
                          "events": {"datasets": ["nmnist"], "methods": ["ann"]},  # absent: skip markers
                          "resolution": []})
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = params
        for key in path:
            node = node.setdefault(key, {})
        node[last] = value
    return params


def make_workspace(root: Path, prepared_digits: Path, **changes) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(prepared_digits, root / "datasets" / "digits")
    (root / "params.yaml").write_text(yaml.safe_dump(smoke_params(**changes), sort_keys=False))
    return root


@pytest.fixture
def workspace(tmp_path, monkeypatch, prepared_digits) -> Path:
    """A project folder (the current directory) with smoke params.yaml and digits prepared."""
    root = make_workspace(tmp_path / "ws", prepared_digits)
    monkeypatch.chdir(root)
    return root


SLOWEST_MODULES = ("test_pipeline.py", "test_train.py", "test_plugin.py")  # minutes of processes importing torch


def pytest_collection_modifyitems(items):
    """The slowest modules go first, so that `make test`'s two workers (`--dist loadfile`) finish together."""
    items.sort(key=lambda item: item.path.name not in SLOWEST_MODULES)
