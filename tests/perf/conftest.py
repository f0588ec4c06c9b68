"""Fixtures of the performance suite (tests/perf/workloads.py describes the races).

`pytest tests/perf --benchmark-enable` runs the full profile and asserts the targets of issue 9;
the normal test command (`--benchmark-disable`, pyproject's default) runs every benchmark once on
tiny inputs and checks only that it produces finite numbers (ratios of one tiny round are noise).
Every perf test runs with `snn.memory.cache_cpu_allocations()` on (process-wide, so all the
contestants of a race alike); the quick profile runs on one CPU thread.

Environment (pytest options cannot be added from a conftest below the root, so these are variables):

    SPIKECODE_PERF_PROFILE   quick | full    default: full when benchmarks are enabled, else quick
    SPIKECODE_PERF_DEVICE    auto | cpu | cuda[:n]   default auto (CUDA when present)
    SPIKECODE_PERF_COMPILE   1 to also race the torch.compile'd engine (about a minute of compiling)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
import torch

from snn import memory
from tests.perf.workloads import FULL, PROFILES, QUICK, Profile, all_finite, select_device


@dataclass
class Perf:
    profile: Profile
    device: torch.device
    benchmark: object
    compile: bool
    info: dict = field(default_factory=dict)

    @property
    def assert_targets(self) -> bool:
        """Targets are asserted only on a full, enabled run: a single tiny round says nothing."""
        return self.profile is FULL and not self.benchmark.disabled

    def record(self, kind: str, **info) -> dict:
        """Stores `info` in the benchmark's extra_info (pytest-benchmark's JSON) and checks it is finite."""
        info = {"kind": kind, "profile": self.profile.name, "device": str(self.device), **self.info, **info,
                "load_average_1min": os.getloadavg()[0]}  # other jobs on the machine while it ran
        self.benchmark.extra_info.update(info)
        assert all_finite(info), f"non-finite measurement: {info}"
        return info


def _profile(benchmark) -> Profile:
    name = os.environ.get("SPIKECODE_PERF_PROFILE", "").strip().lower()
    if not name:
        return QUICK if benchmark.disabled else FULL
    if name not in PROFILES:
        raise pytest.UsageError(f"SPIKECODE_PERF_PROFILE must be one of {', '.join(PROFILES)}, got {name!r}")
    return PROFILES[name]


@pytest.fixture(autouse=True)
def cpu_allocation_cache():
    """Every perf test runs with `memory.cache_cpu_allocations()` on, as the harness trains (it is
    process-wide, so every contestant of a race gets it alike); glibc's default afterwards."""
    applied = memory.cache_cpu_allocations(True)
    yield applied
    memory.cache_cpu_allocations(False)


@pytest.fixture
def perf(benchmark, cpu_allocation_cache):
    """The run's profile, device and recorder. The quick profile runs on one CPU thread: it only
    proves that every benchmark runs, and on a shared CPU two threads make each of its many tiny
    kernels wait for a descheduled thread (seconds per test instead of a fraction)."""
    device = select_device(os.environ.get("SPIKECODE_PERF_DEVICE", "auto").strip() or "auto")
    compile_flag = os.environ.get("SPIKECODE_PERF_COMPILE", "0").strip() == "1"
    perf = Perf(_profile(benchmark), device, benchmark, compile_flag)
    perf.info["cpu_allocation_cache"] = cpu_allocation_cache
    threads = torch.get_num_threads()
    if perf.profile is QUICK:
        torch.set_num_threads(1)
    perf.info["threads"] = torch.get_num_threads()
    try:
        yield perf
    finally:
        torch.set_num_threads(threads)
