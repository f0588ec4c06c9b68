"""Reproducible numerics: a run's thread count and numeric libraries pinned, so the same commit, params
and seed give bit-identical results on the same kind of machine, whatever else the machine is doing.

`pin(threads)` must run before the first numeric operation of the process (the CLI calls it first):

    OMP_NUM_THREADS, MKL_NUM_THREADS = threads   the threads every kernel uses (profiles.<p>.threads)
    MKL_DYNAMIC = FALSE                          MKL may not drop threads when the machine is busy
                                                 (which would change its summation order)
    MKL_CBWR = AUTO                              MKL's conditional numerical reproducibility on the code
                                                 path the CPU supports: the same results on the same kind
                                                 of CPU for a fixed thread count (COMPATIBLE would hold
                                                 across every x86 CPU, but its SSE2 kernels ran the MLP's
                                                 GEMMs 1.8x slower on this project's 2-core AMD EPYC; on
                                                 non-Intel CPUs MKL supports only AUTO and COMPATIBLE)
    torch.set_num_threads(threads); torch.use_deterministic_algorithms(True, warn_only=True)

The provenance of every result records these settings (benchmark.contract.provenance.numerics).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

PINNED = {"MKL_DYNAMIC": "FALSE", "MKL_CBWR": "AUTO"}


def profile_threads(params_path: Path, profile: str | None = None) -> int | None:
    """`profiles.<profile>.threads` of params.yaml (the active profile by default), read before torch is
    imported; None when the file or the key is absent (load_params reports malformed files)."""
    try:
        raw = yaml.safe_load(Path(params_path).read_text()) or {}
        name = profile or raw["profile"]
        threads = raw["profiles"][name].get("threads")
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return None
    return threads if isinstance(threads, int) and threads >= 1 else None


def pin(threads: int) -> None:
    """Pins the environment and torch to `threads` threads and reproducible kernels (module docstring)."""
    os.environ.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), **PINNED})
    import torch  # after the environment: OpenMP and MKL read it when they start

    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
