"""Spiking neurons: the leaky integrate-and-fire step, surrogate gradients, and the fused multi-step LIF.

Shapes: every tensor that carries time is `[T, B, ...]`; only neuron dynamics loop over time
(synaptic layers run once on the whole sequence: `snn.layers.Folded`).

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

Implementations of the same equations:

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
- on the CPU the per-step kernels run on one thread (`set_step_threads`): on a shared CPU every
  multi-threaded kernel can wait a scheduler slice for a descheduled thread.
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
from torch.autograd.function import once_differentiable

from benchmark.contract.semantics import EventKind, OpSemantics

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
    (milliseconds) for a descheduled thread (measured by tests/perf; reports/perf.json). On an idle
    machine it gives up at most the second core's share of memory bandwidth for these small kernels. The whole-sequence kernels of the backward and the
    synaptic layers keep all threads.
    """
    global _step_threads
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"step threads must be a positive int or None, got {threads!r}")
    _step_threads = threads


@contextmanager
def per_step_threads(tensor: Tensor):
    """Runs the enclosed small kernels on `set_step_threads`'s threads (CPU tensors only): the
    fused LIF's per-step loops, and the op counter's hooks (benchmark/metrics/ops.py)."""
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
