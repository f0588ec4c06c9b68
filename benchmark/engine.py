"""The spiking engine: time-first multi-step neurons, surrogate gradients and folded synaptic layers.

Shapes: every tensor that carries time is `[T, B, ...]`. Synaptic layers (Linear, Conv2d, pooling)
run once on the whole sequence by folding time into the batch (`[T*B, ...]`, see `Folded`); only
neuron dynamics loop over time.

Leaky integrate-and-fire, one step (β = 1 gives integrate-and-fire):

    H[t] = β·V[t-1] + I[t]                 membrane before firing (one `torch.add(I, V, alpha=β)`)
    S[t] = Θ(H[t] − θ)                     spike; Θ is Heaviside, its gradient a surrogate
    V[t] = H[t] − θ·S[t]                   reset "subtract" (soft)
    V[t] = H[t]·(1 − S[t])                 reset "zero" (hard)
    V[-1] = initial_membrane·θ

Surrogates (x = H − θ, α = slope):
    sigmoid       dS/dx = α·σ(αx)·(1 − σ(αx))
    fast_sigmoid  dS/dx = 1 / (1 + α|x|)²
    atan          dS/dx = α / (2·(1 + (π/2·α·x)²))

Implementations of the same equations, and the engine's speed-ups:

- the reference, `lif_loop` (`lif` with implementation "reference"): `lif_step` (the pure step)
  called once per time step; autograd records every operation of every step.
- the fused path, `lif_sequence` (`lif` with implementation "fused", what `LIF` runs): one
  `torch.autograd.Function` over the whole sequence. Forward writes H[t] and S[t] straight into
  preallocated `[T, B, ...]` buffers (three kernels per step, no temporaries) and saves only H.
  Backward recomputes the surrogate from H for all steps at once, in place, then runs one
  reverse-time recurrence (one kernel per step). With
  g = dL/dS (the incoming gradient), SG[t] = Θ'(H[t] − θ) and dL/dV[t] = β·dL/dH[t+1]:

      dL/dH[t] = g[t]·SG[t] + dL/dV[t]·(∂V/∂H + ∂V/∂S·SG[t])
      soft:  dL/dH[t] = A[t] + C[t]·dL/dH[t+1],  A = g·SG,  C = β·(1 − θ·SG)
      hard:  dL/dH[t] = A[t] + C[t]·dL/dH[t+1],  A = g·SG,  C = β·(1 − S − H·SG)
      dL/dI[t] = dL/dH[t],  dL/dH[T] = 0

  Its forward equals the reference bit for bit (the same float operations in the same order);
  its gradients equal the reference's up to float rounding (tests/test_engine_fast.py).
- `Folded` runs average pooling as `_AvgPool2d`, which keeps only its input's shape for backward
  (PyTorch's keeps the whole input: the spikes of the layer before); windows that tile the input
  (2×2, stride 2) run as strided adds, bit for bit PyTorch's values, 1.5-2× faster on the CPU.
- `prefer_channels_last(network, device)` (opt-in): NHWC convolutions and pooling on the CPU.
- on the CPU the per-step kernels run on one thread (`set_step_threads`): on a shared CPU every
  multi-threaded kernel can wait a scheduler slice for a descheduled thread.
- on the CPU, `cache_cpu_allocations()` (process-wide, opt-in) keeps freed tensor memory for reuse:
  large folded activations otherwise come back as fresh, page-faulting memory every step.
- optionally compiled (`set_compile(True)` or `SPIKECODE_COMPILE=1`): the same forward and backward
  as pure functions handed to `torch.compile`, which fuses each into one kernel. Off by default: it
  needs a C++ compiler (CPU) or Triton (CUDA) and tens of seconds of compilation per shape family;
  a compile failure warns and runs the eager fused path.
"""

from __future__ import annotations

import math
import os
import warnings
from contextlib import contextmanager
from numbers import Real
from typing import Callable, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.autograd.function import once_differentiable

from benchmark.semantics import EventKind, OpSemantics

SurrogateName = Literal["sigmoid", "fast_sigmoid", "atan"]
ResetName = Literal["subtract", "zero"]
ImplementationName = Literal["fused", "reference"]
SURROGATES: tuple[str, ...] = ("sigmoid", "fast_sigmoid", "atan")
RESETS: tuple[str, ...] = ("subtract", "zero")
IMPLEMENTATIONS: tuple[str, ...] = ("fused", "reference")


def _check_surrogate(name: str) -> None:
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; choose one of {', '.join(SURROGATES)}")


def _check_settings(reset: str, surrogate: str, implementation: str) -> None:
    if reset not in RESETS:
        raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
    _check_surrogate(surrogate)
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {', '.join(IMPLEMENTATIONS)}, got {implementation!r}")


def _surrogate_grad(x: Tensor, name: str, slope: float) -> Tensor:
    if name == "sigmoid":
        s = torch.sigmoid(slope * x)
        return slope * s * (1 - s)
    if name == "fast_sigmoid":
        return 1.0 / (1.0 + slope * x.abs()) ** 2
    if name == "atan":
        return slope / (2 * (1 + (math.pi / 2 * slope * x) ** 2))
    _check_surrogate(name)
    raise AssertionError("unreachable")


def _surrogate_grad_(x: Tensor, name: str, slope: float) -> Tensor:
    """`_surrogate_grad` computed in place on `x` (the fused backward's buffer); returns `x`."""
    if name == "sigmoid":  # α·(s − s²), s = σ(αx)
        x.mul_(slope).sigmoid_()
        return x.addcmul_(x, x, value=-1.0).mul_(slope)
    one = torch.ones((), dtype=x.dtype)  # 1 + k·x as one pass: torch.add(1, x, alpha=k)
    if name == "fast_sigmoid":  # (1 + α|x|)⁻²
        return torch.add(one, x.abs_(), alpha=slope, out=x).pow_(-2)
    if name == "atan":  # (α/2) / (1 + (π/2·α·x)²)
        return torch.add(one, x.square_(), alpha=(math.pi / 2 * slope) ** 2, out=x).reciprocal_().mul_(slope / 2)
    _check_surrogate(name)
    raise AssertionError("unreachable")


class _Heaviside(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, name: str, slope: float) -> Tensor:
        ctx.save_for_backward(x)
        ctx.name, ctx.slope = name, slope
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * _surrogate_grad(x, ctx.name, ctx.slope), None, None


def spike(x: Tensor, surrogate: SurrogateName = "sigmoid", slope: float = 4.0) -> Tensor:
    """Θ(x) forward; the named surrogate's derivative backward."""
    return _Heaviside.apply(x, surrogate, slope)


def lif_step(
    current: Tensor,
    membrane: Tensor,
    *,
    beta: float,
    threshold: float,
    reset: ResetName,
    surrogate: SurrogateName,
    slope: float,
) -> tuple[Tensor, Tensor]:
    """One LIF step: (I[t], V[t-1]) -> (S[t], V[t]), the equations of the module docstring.

    H = β·V + I is one fused operation, `torch.add(I, V, alpha=β)` (one rounding where the CPU
    does a fused multiply-add), so that the fused multi-step path can repeat it bit for bit.
    """
    if isinstance(beta, Tensor):
        h = beta * membrane + current
    else:
        h = torch.add(current, membrane, alpha=beta)
    s = spike(h - threshold, surrogate, slope)
    if reset == "subtract":
        v = h - threshold * s
    else:
        v = h * (1 - s)
    return s, v


# --- the fused path ---------------------------------------------------------------------------

_step_threads: int | None = 1


def set_step_threads(threads: int | None) -> None:
    """CPU threads for the fused path's per-step kernels (the forward loop, the backward
    recurrence); `None` leaves them on PyTorch's intra-op threads. Default 1.

    Why: each step runs a few kernels over one step's neurons; on more than one thread each is an
    OpenMP fork/join, and on a CPU shared with other jobs a join waits a whole scheduler slice
    (milliseconds) for a descheduled thread. On the project's shared 2-core VM one thread made the
    CNN SNN step 1.5× faster; on an idle machine it gives up at most the second core's share of
    memory bandwidth for these small kernels. The whole-sequence kernels of the backward and the
    synaptic layers keep all threads.
    """
    global _step_threads
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"step threads must be a positive int or None, got {threads!r}")
    _step_threads = threads


@contextmanager
def per_step_threads(tensor: Tensor):
    """Runs the enclosed small kernels on `set_step_threads`'s threads (CPU tensors only): the
    fused LIF's per-step loops, and the op counter's hooks (benchmark/ops.py)."""
    threads, previous = _step_threads, torch.get_num_threads()
    if threads is None or tensor.device.type != "cpu" or previous <= threads:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _lif_forward(current: Tensor, beta: float, threshold: float, reset: str, initial_membrane: float,
                 keep_membrane: bool) -> tuple[Tensor, Tensor | None]:
    """(S, H): the forward equations on preallocated buffers; H is `None` unless `keep_membrane`.

    Three passes over a step's neurons. Each is the reference's own operation (`torch.add(I, V,
    alpha=β)`; Θ(H − θ) as H ≥ θ, the same test for finite floats; H − θ·S; H − H·S for H·(1 − S),
    exact since S ∈ {0, 1}), so the values match `lif_loop` bit for bit.
    """
    steps = current.shape[0]
    spikes = torch.empty_like(current)  # empty_like keeps the layout (e.g. channels-last)
    membrane_seq = torch.empty_like(current) if keep_membrane else None
    h_step = None if keep_membrane else torch.empty_like(current[0])
    v = torch.empty_like(current[0])
    v0 = initial_membrane * threshold
    with per_step_threads(current):
        for t in range(steps):
            h = membrane_seq[t] if membrane_seq is not None else h_step
            if t == 0 and v0 == 0.0:
                h.copy_(current[0])  # I[0] + β·0 = I[0]
            else:
                if t == 0:
                    v.fill_(v0)
                torch.add(current[t], v, alpha=beta, out=h)
            s = spikes[t]
            torch.ge(h, threshold, out=s)
            if t + 1 == steps:
                break
            if reset == "subtract":
                torch.sub(h, s, alpha=threshold, out=v)  # H − θ·S
            else:
                torch.addcmul(h, h, s, value=-1.0, out=v)  # H − H·S = H·(1 − S)
    return spikes, membrane_seq


def _lif_backward(grad_spikes: Tensor, membrane_seq: Tensor, beta: float, threshold: float, reset: str,
                  surrogate: str, slope: float) -> Tensor:
    """dL/dI from dL/dS and the saved H: the reverse-time recurrence of the module docstring,
    with β moved into the recurrence (dL/dH[t] = A[t] + β·C'[t]·dL/dH[t+1], C = β·C')."""
    coefficient = torch.sub(membrane_seq, threshold)  # x = H − θ, becomes SG, then C', in place
    _surrogate_grad_(coefficient, surrogate, slope)
    grad_current = torch.mul(grad_spikes, coefficient)  # A = g·SG; becomes dL/dI in place
    if reset == "subtract":  # C' = 1 − θ·SG
        one = torch.ones((), dtype=coefficient.dtype)
        torch.add(one, coefficient, alpha=-threshold, out=coefficient)
    else:  # C' = 1 − S − H·SG = [H < θ] − H·SG
        torch.addcmul(torch.lt(membrane_seq, threshold), membrane_seq, coefficient, value=-1.0, out=coefficient)
    with per_step_threads(grad_current):
        for t in range(grad_current.shape[0] - 2, -1, -1):
            grad_current[t].addcmul_(coefficient[t], grad_current[t + 1], value=beta)
    return grad_current


# Pure versions of the two halves, for torch.compile (it fuses each into one kernel).


def _lif_forward_pure(current: Tensor, beta: float, threshold: float, reset: str,
                      initial_membrane: float) -> tuple[Tensor, Tensor]:
    v = torch.full_like(current[0], initial_membrane * threshold)
    spikes, membranes = [], []
    for t in range(current.shape[0]):
        h = torch.add(current[t], v, alpha=beta)
        s = (h >= threshold).to(h.dtype)
        v = h - threshold * s if reset == "subtract" else h * (1 - s)
        spikes.append(s)
        membranes.append(h)
    return torch.stack(spikes), torch.stack(membranes)


def _lif_backward_pure(grad_spikes: Tensor, membrane_seq: Tensor, beta: float, threshold: float, reset: str,
                       surrogate: str, slope: float) -> Tensor:
    sg = _surrogate_grad(membrane_seq - threshold, surrogate, slope)
    a = grad_spikes * sg
    if reset == "subtract":
        c = beta * (1 - threshold * sg)
    else:
        c = beta * ((membrane_seq < threshold).to(sg.dtype) - membrane_seq * sg)
    grads = [a[-1]]
    for t in range(a.shape[0] - 2, -1, -1):
        grads.append(a[t] + c[t] * grads[-1])
    return torch.stack(grads[::-1])


_compile_enabled: bool | None = None  # None: read SPIKECODE_COMPILE at first use
_compiled: dict[str, Callable] = {}
_compile_failed: set[str] = set()


def set_compile(enabled: bool) -> None:
    """Turns the `torch.compile`d fused path on or off for every `LIF` (default: off, or the
    environment variable SPIKECODE_COMPILE=1)."""
    global _compile_enabled
    _compile_enabled = bool(enabled)


def compile_enabled() -> bool:
    global _compile_enabled
    if _compile_enabled is None:
        value = os.environ.get("SPIKECODE_COMPILE", "0").strip().lower()
        if value not in ("0", "1", "", "false", "true", "off", "on"):
            raise ValueError(f"SPIKECODE_COMPILE must be 0 or 1, got {value!r}")
        _compile_enabled = value in ("1", "true", "on")
    return _compile_enabled


def _maybe_compiled(name: str, function: Callable) -> Callable:
    """`function` compiled once per process, or `None` when compilation is off or has failed."""
    if not compile_enabled() or name in _compile_failed:
        return None
    if name not in _compiled:
        _compiled[name] = torch.compile(function, dynamic=None, fullgraph=True)
    return _compiled[name]


def _run_compiled(name: str, function: Callable, *args):
    """Runs the compiled `function`; on a compile error warns once and returns `None` (eager path)."""
    compiled = _maybe_compiled(name, function)
    if compiled is None:
        return None
    try:
        return compiled(*args)
    except Exception as error:  # noqa: BLE001 - any backend failure: the eager path is equivalent
        _compile_failed.add(name)
        warnings.warn(f"torch.compile of the LIF {name} failed ({type(error).__name__}: {error}); "
                      "running the eager fused path (set_compile(False) silences this)", RuntimeWarning,
                      stacklevel=3)
        return None


# --- CPU allocation caching -------------------------------------------------------------------

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_CACHE_THRESHOLDS = (1 << 30, (1 << 31) - 1)  # (mmap, trim): blocks up to 1 GiB come from the heap, kept
_GLIBC_STEADY_STATE = (32 << 20, 64 << 20)  # where glibc's dynamic thresholds end up by default


def cache_cpu_allocations(enabled: bool = True) -> bool:
    """Keeps freed CPU tensor memory in the process for reuse; returns whether it could.

    Why: glibc serves every block above its mmap threshold (at most 32 MiB by default; a folded
    `[T·B, ...]` activation is often larger) with a fresh `mmap` and unmaps it when freed, so every
    page of the next step's buffers faults in again, zero-filled by the kernel. On the 2-core VM
    of this project that is ~15 µs per 4 KiB page: a CNN SNN step at T = 8, B = 64 took 1e5 page
    faults, half its time. Raising the mmap and trim thresholds (`mallopt`) makes such blocks come
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


class _LIFSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, current: Tensor, beta: float, threshold: float, reset: str, surrogate: str,
                slope: float, initial_membrane: float) -> Tensor:
        keep = ctx.needs_input_grad[0]
        result = _run_compiled("forward", _lif_forward_pure, current, beta, threshold, reset,
                               initial_membrane) if keep else None
        if result is None:
            result = _lif_forward(current, beta, threshold, reset, initial_membrane, keep)
        spikes, membrane_seq = result
        if keep:
            ctx.save_for_backward(membrane_seq)
        ctx.settings = (beta, threshold, reset, surrogate, slope)
        return spikes

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_spikes: Tensor):
        (membrane_seq,) = ctx.saved_tensors
        grad = _run_compiled("backward", _lif_backward_pure, grad_spikes, membrane_seq, *ctx.settings)
        if grad is None:
            grad = _lif_backward(grad_spikes, membrane_seq, *ctx.settings)
        return grad, None, None, None, None, None, None


def lif(
    current: Tensor,
    *,
    beta: float,
    threshold: float,
    reset: ResetName,
    surrogate: SurrogateName,
    slope: float,
    initial_membrane: float = 0.0,
    implementation: ImplementationName = "fused",
) -> Tensor:
    """The multi-step LIF of the module docstring, V[-1] = initial_membrane·θ.
    Shapes: `[T, B, ...] -> [T, B, ...]`.

    `implementation`: "fused" (`_LIFSequence`: the same values and gradients as the reference, a
    fraction of its time and memory) or "reference" (`lif_step` once per step; autograd records
    every operation). A β, θ, slope or initial membrane that is not a plain number (a tensor)
    runs the reference.
    """
    _check_settings(reset, surrogate, implementation)
    plain = all(isinstance(value, Real) for value in (beta, threshold, slope, initial_membrane))
    if implementation == "fused" and plain:
        return _LIFSequence.apply(current, float(beta), float(threshold), reset, surrogate, float(slope),
                                  float(initial_membrane))
    membrane = torch.full_like(current[0], initial_membrane * threshold)
    spikes = []
    for current_t in current:
        s, membrane = lif_step(current_t, membrane, beta=beta, threshold=threshold, reset=reset,
                               surrogate=surrogate, slope=slope)
        spikes.append(s)
    return torch.stack(spikes)


def lif_loop(current: Tensor, **settings) -> Tensor:
    """The reference multi-step LIF: `lif` with implementation "reference" (settings: `lif`'s)."""
    return lif(current, implementation="reference", **settings)


def lif_sequence(current: Tensor, **settings) -> Tensor:
    """The fused multi-step LIF: `lif` with implementation "fused" (settings: `lif`'s)."""
    return lif(current, implementation="fused", **settings)


class LIF(nn.Module):
    """Multi-step leaky integrate-and-fire neuron layer; `beta=1` is integrate-and-fire.

    Shapes: input current `[T, B, ...]` -> spikes `[T, B, ...]`. The membrane starts at
    `initial_membrane·θ` every call, so the layer holds no state between calls.
    `implementation`: "fused" (`lif_sequence`, the default) or "reference" (`lif_loop`); both follow
    the equations of the module docstring. A threshold or β that is not a plain number (a tensor)
    runs the reference.
    """

    def __init__(
        self,
        beta: float = 1.0,
        threshold: float = 1.0,
        reset: ResetName = "subtract",
        surrogate: SurrogateName = "sigmoid",
        slope: float = 4.0,
        initial_membrane: float = 0.0,
        implementation: ImplementationName = "fused",
    ):
        super().__init__()
        if not 0.0 < beta <= 1.0:
            raise ValueError(f"beta must be in (0, 1], got {beta}")
        _check_settings(reset, surrogate, implementation)
        self.beta, self.threshold, self.reset = beta, threshold, reset
        self.surrogate, self.slope = surrogate, slope
        self.initial_membrane = initial_membrane
        self.implementation = implementation
        leak_macs = 0 if beta == 1.0 else 1
        self.op_semantics = OpSemantics(EventKind.BINARY, update_acs=1, update_macs=leak_macs)

    def forward(self, current: Tensor) -> Tensor:
        return lif(current, beta=self.beta, threshold=self.threshold, reset=self.reset, surrogate=self.surrogate,
                   slope=self.slope, initial_membrane=self.initial_membrane, implementation=self.implementation)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}, reset={self.reset}, surrogate={self.surrogate}({self.slope})"


def _tiles(x: Tensor, pool: nn.AvgPool2d) -> tuple[int, int] | None:
    """(kh, kw) when `pool`'s windows tile `x [N, C, H, W]` exactly and the tiled path applies:
    stride = kernel, no padding, H and W multiples of it, no divisor override, at least two
    elements a window, and `x` NCHW-contiguous float32/float64 on the CPU. Else None."""
    kh, kw = _pair(pool.kernel_size)
    stride = _pair(pool.stride if pool.stride is not None else pool.kernel_size)
    if (x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or not x.is_contiguous()
            or stride != [kh, kw] or _pair(pool.padding) != [0, 0] or pool.divisor_override is not None
            or kh * kw < 2 or x.shape[-2] % kh or x.shape[-1] % kw):
        return None
    return kh, kw


def _tiled_avg_pool(x: Tensor, kh: int, kw: int) -> Tensor:
    """`F.avg_pool2d` over windows that tile `x` (see `_tiles`), bit for bit: PyTorch's NCHW CPU
    kernel sums each window row by row from 0, then divides by kh·kw; here each window position
    (i, j) is one strided slice of all windows, added in the same order (0 + x₀₀ = x₀₀), so every
    float operation is the same. 1.5-2× faster than that kernel, which is not vectorised."""
    n, c, h, w = x.shape
    windows = x.view(n, c, h // kh, kh, w // kw, kw)  # [N, C, H/kh, i, W/kw, j]
    offsets = [(i, j) for i in range(kh) for j in range(kw)]
    out = torch.add(windows[:, :, :, 0, :, 0], windows[:, :, :, offsets[1][0], :, offsets[1][1]])
    for i, j in offsets[2:]:
        out.add_(windows[:, :, :, i, :, j])
    return out.div_(kh * kw)


def _tiled_avg_pool_backward(grad_out: Tensor, shape: torch.Size, kh: int, kw: int) -> Tensor:
    """dL/dx of `_tiled_avg_pool`: every input element lies in one window, so it receives
    dL/dy / (kh·kw) of its window, as `avg_pool2d_backward` computes it (0 + dL/dy / (kh·kw))."""
    n, c, h, w = shape
    grad = grad_out.new_empty(n, c, h // kh, kh, w // kw, kw)
    share = (grad_out / (kh * kw)).unsqueeze(-1)  # [N, C, H/kh, W/kw, 1]
    for j in range(kw):
        grad[:, :, :, 0, :, j:j + 1] = share
    for i in range(1, kh):
        grad[:, :, :, i] = grad[:, :, :, 0]
    return grad.view(shape)


def _avg_pool(x: Tensor, pool: nn.AvgPool2d) -> Tensor:
    """`pool(x)` for `x [N, C, H, W]`, tiled where `_tiles` allows, else PyTorch's."""
    tiles = _tiles(x, pool)
    if tiles is not None:
        return _tiled_avg_pool(x, *tiles)
    return F.avg_pool2d(x, pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode,
                        pool.count_include_pad, pool.divisor_override)


class _AvgPool2d(torch.autograd.Function):
    """Average pooling that keeps only its input's shape for backward, not the input itself.

    PyTorch's own saves the whole input (here the spikes of the layer before, `[T·B, C, H, W]`),
    though average pooling's gradient does not depend on it: dL/dx spreads dL/dy evenly over each
    window. Same values and gradients as `F.avg_pool2d` (tests/test_engine_fast.py); a third less
    BPTT memory for the small CNN. Windows that tile the input (the usual 2×2, stride 2) run
    `_tiled_avg_pool` and its backward.
    """

    @staticmethod
    def forward(ctx, x: Tensor, pool: nn.AvgPool2d) -> Tensor:
        ctx.input_meta = (x.shape, x.stride(), x.dtype, x.device)
        ctx.pool = pool
        ctx.tiles = _tiles(x, pool)
        return _avg_pool(x, pool)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        shape, stride, dtype, device = ctx.input_meta
        if ctx.tiles is not None:
            return _tiled_avg_pool_backward(grad_out, shape, *ctx.tiles), None
        pool = ctx.pool
        like_input = torch.empty_strided(shape, stride, dtype=dtype, device=device)  # read for its shape only
        kernel = _pair(pool.kernel_size)
        grad = torch.ops.aten.avg_pool2d_backward(
            grad_out, like_input, kernel, _pair(pool.stride if pool.stride is not None else kernel),
            _pair(pool.padding), pool.ceil_mode, pool.count_include_pad, pool.divisor_override)
        return grad, None


def _pair(value) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


class Folded(nn.Module):
    """Runs a per-sample layer once over a whole sequence: `[T, B, ...] -> [T*B, ...] -> [T, B, ...]`.

    An `nn.AvgPool2d` runs as `_AvgPool2d`, which does not keep its input for backward.
    """

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        steps, batch = x.shape[:2]
        folded = x.flatten(0, 1)
        if type(self.layer) is nn.AvgPool2d and folded.dim() == 4:
            if torch.is_grad_enabled() and folded.requires_grad:
                out = _AvgPool2d.apply(folded, self.layer)
            else:
                out = _avg_pool(folded, self.layer)
        else:
            out = self.layer(folded)
        return out.unflatten(0, (steps, batch))


class ReLU(nn.ReLU):
    """The ANN's activation, declared as a producer of analog events (every op it feeds is a MAC)."""

    op_semantics = OpSemantics(EventKind.ANALOG, payload_bits=32, stateful=False)


def prefer_channels_last(network: nn.Module, device: torch.device | str) -> nn.Module:
    """Stores the convolution weights channels-last (NHWC) where that pays, on the CPU, for a
    network with a `Conv2d`; elsewhere it returns `network` untouched. Returns `network`.

    With NHWC weights oneDNN computes NHWC outputs, and the layers after it keep that layout
    (`Folded`, `LIF`, pooling), so pooling (3× faster in NHWC on the CPU) and convolutions run
    channels-last up to the flatten. Measured on the 2-core CPU (tests/perf): training steps of the
    small CNN 1.2-1.3× faster, SNN and ANN alike. Values agree with NCHW up to float rounding.
    Opt-in: a layout change is visible to code that `.view`s activations.
    """
    if torch.device(device).type == "cpu" and any(isinstance(m, nn.Conv2d) for m in network.modules()):
        network.to(memory_format=torch.channels_last)
    return network


def neuron_layers(network: nn.Module) -> list[nn.Module]:
    """The modules of `network` that declare op semantics, in registration order."""
    return [m for m in network.modules() if getattr(m, "op_semantics", None) is not None]
