"""Provenance carried by every result: commit, package versions, device, numeric settings, seed, data
checksum.

`git_dirty` says whether the source that makes results (the packages, params.yaml, dvc.yaml,
pyproject.toml, grids/, scripts/) differs from the commit: the pipeline's own outputs (reports/,
dvc.lock) do not count, so a `dvc repro` of a clean checkout records clean results."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
import subprocess
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch

SOURCE_PATHS = ("benchmark", "snn", "methods", "params.yaml", "dvc.yaml", "pyproject.toml", "grids", "scripts")
PACKAGES = ("spikecode-bench", "torch", "torchvision", "snntorch", "tonic", "numpy", "dvc", "dvclive")


def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the working tree; ("unknown", False) outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *SOURCE_PATHS],
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, bool(status.strip())


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def device_name(device: torch.device) -> str:
    """The kind of machine a result was computed on: the GPU's name, or the CPU's model and threads
    (`spikecode verify` expects bit-identical results on the same kind)."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.machine()} {cpu_model()}, {torch.get_num_threads()} threads".replace("  ", " ")


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo; platform.processor() elsewhere, often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


def numerics() -> dict[str, Any]:
    """The numeric settings of this process (benchmark.run.numerics pins them): threads, deterministic
    kernels, MKL's reproducibility and dynamic-thread settings."""
    return {"threads": torch.get_num_threads(), "deterministic": torch.are_deterministic_algorithms_enabled(),
            **{name.lower(): os.environ.get(name) for name in ("MKL_CBWR", "MKL_DYNAMIC")}}


def params_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def provenance(device: torch.device, dataset_sha256: str, settings: dict[str, Any]) -> dict[str, Any]:
    commit, dirty = git_state()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": package_versions(),
        "device": device_name(device),
        "numerics": numerics(),
        "dataset_sha256": dataset_sha256,
        "params_hash": params_hash(settings),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
