"""Provenance carried by every result: commit, package versions, device, seed, data checksum."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch

PACKAGES = ("spikecode-bench", "torch", "torchvision", "snntorch", "tonic", "numpy", "dvc", "dvclive")


def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the working tree; ("unknown", False) outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
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
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.machine()} {platform.processor() or ''}, {torch.get_num_threads()} threads".replace("  ", " ")


def params_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def provenance(device: torch.device, dataset_sha256: str, settings: dict[str, Any]) -> dict[str, Any]:
    commit, dirty = git_state()
    return {
        "git_commit": commit,
        "git_dirty": dirty,
        "versions": package_versions(),
        "device": device_name(device),
        "dataset_sha256": dataset_sha256,
        "params_hash": params_hash(settings),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
