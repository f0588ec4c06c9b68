"""CPU allocation caching: keep freed tensor memory in the process, so large folded activations do not
page-fault in afresh at every step (opt-in, process-wide; `cache_cpu_allocations`)."""

from __future__ import annotations

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_CACHE_THRESHOLDS = (1 << 30, (1 << 31) - 1)  # (mmap, trim): blocks up to 1 GiB come from the heap, kept
_GLIBC_STEADY_STATE = (32 << 20, 64 << 20)  # where glibc's dynamic thresholds end up by default


def cache_cpu_allocations(enabled: bool = True) -> bool:
    """Keeps freed CPU tensor memory in the process for reuse; returns whether it could.

    Why: glibc serves every block above its mmap threshold (at most 32 MiB by default; a folded
    `[T·B, ...]` activation is often larger) with a fresh `mmap` and unmaps it when freed, so every
    page of the next step's buffers faults in again, zero-filled by the kernel (on a small VM that
    can be half of a CNN SNN step's time: tests/perf, reports/perf.json). Raising the mmap and trim thresholds (`mallopt`) makes such blocks come
    from the heap and stay there, as PyTorch's CUDA caching allocator does on the GPU; the price is
    that the process keeps its peak memory. Per-step (snnTorch-style) and ANN tensors are small
    enough to be cached by glibc already.

    Process-wide: call it once from an entry point. `enabled=False` restores glibc's default
    steady state (32 MiB / 64 MiB) and hands the memory kept so far back to the system
    (`malloc_trim`). A no-op returning False outside Linux/glibc.
    """
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL("libc.so.6")
    mmap_threshold, trim_threshold = _CACHE_THRESHOLDS if enabled else _GLIBC_STEADY_STATE
    if libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold) != 1:  # older glibc caps it at 32 MiB
        mmap_threshold = _GLIBC_STEADY_STATE[0]
        if libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold) != 1:
            return False
    applied = libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1
    if not enabled:
        libc.malloc_trim(0)
    return applied
