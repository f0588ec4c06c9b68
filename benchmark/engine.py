"""The spiking engine: time-first multi-step neurons, surrogate gradients and folded synaptic layers.

Shapes: every tensor that carries time is `[T, B, ...]`. Synaptic layers (Linear, Conv2d, pooling)
run once on the whole sequence by folding time into the batch (`[T*B, ...]`, see `Folded`); only
neuron dynamics loop over time.

Leaky integrate-and-fire, one step (β = 1 gives integrate-and-fire):

    H[t] = β·V[t-1] + I[t]                 membrane before firing
    S[t] = Θ(H[t] − θ)                     spike; Θ is Heaviside, its gradient a surrogate
    V[t] = H[t] − θ·S[t]                   reset "subtract" (soft)
    V[t] = H[t]·(1 − S[t])                 reset "zero" (hard)
    V[-1] = initial_membrane·θ

Surrogates (x = H − θ, α = slope):
    sigmoid       dS/dx = α·σ(αx)·(1 − σ(αx))
    fast_sigmoid  dS/dx = 1 / (1 + α|x|)²
    atan          dS/dx = α / (2·(1 + (π/2·α·x)²))

Two implementations of the same equations:

- the reference, `lif_loop`: `lif_step` (the pure step) called once per time step; autograd records
  every operation of every step.
- the fused path, `lif_sequence` (what `LIF` runs): one `torch.autograd.Function` over the whole
  sequence. Forward writes H[t] and S[t] into preallocated `[T, B, ...]` buffers with out-of-place-free
  kernels (4 passes over a step's neurons, 3 when β = 1) and saves only H. Backward recomputes the
  surrogate from H for all steps at once, then runs one reverse-time recurrence. With g = dL/dS
  (the incoming gradient), SG[t] = Θ'(H[t] − θ) and dL/dV[t] = β·dL/dH[t+1]:

      dL/dH[t] = g[t]·SG[t] + dL/dV[t]·(∂V/∂H + ∂V/∂S·SG[t])
      soft:  dL/dH[t] = A[t] + C[t]·dL/dH[t+1],  A = g·SG,  C = β·(1 − θ·SG)
      hard:  dL/dH[t] = A[t] + C[t]·dL/dH[t+1],  A = g·SG,  C = β·(1 − S − H·SG)
      dL/dI[t] = dL/dH[t],  dL/dH[T] = 0

  Its forward equals the reference bit for bit (the same float operations in the same order);
  its gradients equal the reference's up to float rounding (tests/test_engine_fast.py).
- optionally compiled (`set_compile(True)` or `SPIKECODE_COMPILE=1`): the same forward and backward
  as pure functions handed to `torch.compile`, which fuses each into one kernel. Off by default: it
  needs a C++ compiler (CPU) or Triton (CUDA) and tens of seconds of compilation per shape family;
  a compile failure warns and runs the eager fused path.
"""

from __future__ import annotations

import math
import os
import warnings
from numbers import Real
from typing import Callable, Literal

import torch
from torch import Tensor, nn
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
    if name == "fast_sigmoid":  # 1 / (1 + α|x|)²
        return x.abs_().mul_(slope).add_(1.0).square_().reciprocal_()
    if name == "atan":  # α / (2·(1 + (π/2·α·x)²))
        return x.mul_(math.pi / 2 * slope).square_().add_(1.0).mul_(2.0).reciprocal_().mul_(slope)
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
    """One LIF step: (I[t], V[t-1]) -> (S[t], V[t]), the equations of the module docstring."""
    h = beta * membrane + current
    s = spike(h - threshold, surrogate, slope)
    if reset == "subtract":
        v = h - threshold * s
    else:
        v = h * (1 - s)
    return s, v


def lif_loop(
    current: Tensor,
    *,
    beta: float,
    threshold: float,
    reset: ResetName,
    surrogate: SurrogateName,
    slope: float,
    initial_membrane: float = 0.0,
) -> Tensor:
    """The reference multi-step LIF: `lif_step` once per step. Shapes: `[T, B, ...] -> [T, B, ...]`."""
    membrane = torch.full_like(current[0], initial_membrane * threshold)
    spikes = []
    for current_t in current:
        s, membrane = lif_step(current_t, membrane, beta=beta, threshold=threshold, reset=reset,
                               surrogate=surrogate, slope=slope)
        spikes.append(s)
    return torch.stack(spikes)


# --- the fused path ---------------------------------------------------------------------------


def _lif_forward(current: Tensor, beta: float, threshold: float, reset: str, initial_membrane: float,
                 keep_membrane: bool) -> tuple[Tensor, Tensor | None]:
    """(S, H): the forward equations on preallocated buffers; H is `None` unless `keep_membrane`.

    Each operation is the reference's own (β·V, then + I; Θ(H − θ) as H ≥ θ, which is the same
    test for finite floats; H − θ·S; H − H·S for H·(1 − S), exact since S ∈ {0, 1}), so the values
    match `lif_loop` bit for bit.
    """
    steps = current.shape[0]
    spikes = torch.empty_like(current)  # empty_like keeps the layout (e.g. channels-last)
    membrane_seq = torch.empty_like(current) if keep_membrane else None
    h_step = None if keep_membrane else torch.empty_like(current[0])
    v = torch.empty_like(current[0])
    v0 = initial_membrane * threshold
    for t in range(steps):
        h = membrane_seq[t] if membrane_seq is not None else h_step
        if t == 0 and v0 == 0.0:
            h.copy_(current[0])  # β·0 + I[0] = I[0]
        else:
            if t == 0:
                v.fill_(v0)
            if beta == 1.0:
                torch.add(v, current[t], out=h)  # 1·V = V exactly
            else:
                torch.mul(v, beta, out=h)
                h.add_(current[t])
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
    """dL/dI from dL/dS and the saved H: the reverse-time recurrence of the module docstring."""
    coefficient = torch.sub(membrane_seq, threshold)  # x = H − θ, becomes SG, then C, in place
    _surrogate_grad_(coefficient, surrogate, slope)
    grad_current = torch.mul(grad_spikes, coefficient)  # A = g·SG; becomes dL/dI in place
    if reset == "subtract":  # C = β·(1 − θ·SG) = β − βθ·SG
        coefficient.mul_(-beta * threshold).add_(beta)
    else:  # C = β·(1 − S − H·SG) = β·([H < θ] − H·SG)
        coefficient.mul_(membrane_seq).neg_().add_(torch.lt(membrane_seq, threshold))
        if beta != 1.0:
            coefficient.mul_(beta)
    for t in range(grad_current.shape[0] - 2, -1, -1):
        grad_current[t].addcmul_(coefficient[t], grad_current[t + 1])
    return grad_current


# Pure versions of the two halves, for torch.compile (it fuses each into one kernel).


def _lif_forward_pure(current: Tensor, beta: float, threshold: float, reset: str,
                      initial_membrane: float) -> tuple[Tensor, Tensor]:
    v = torch.full_like(current[0], initial_membrane * threshold)
    spikes, membranes = [], []
    for t in range(current.shape[0]):
        h = beta * v + current[t]
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


def lif_sequence(
    current: Tensor,
    *,
    beta: float,
    threshold: float,
    reset: ResetName,
    surrogate: SurrogateName,
    slope: float,
    initial_membrane: float = 0.0,
) -> Tensor:
    """The fused multi-step LIF: same values and gradients as `lif_loop`, a fraction of its time
    and memory (the module docstring). Shapes: `[T, B, ...] -> [T, B, ...]`."""
    _check_surrogate(surrogate)
    if reset not in RESETS:
        raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
    return _LIFSequence.apply(current, float(beta), float(threshold), reset, surrogate, float(slope),
                              float(initial_membrane))


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
        if reset not in RESETS:
            raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
        _check_surrogate(surrogate)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {', '.join(IMPLEMENTATIONS)}, got {implementation!r}")
        self.beta, self.threshold, self.reset = beta, threshold, reset
        self.surrogate, self.slope = surrogate, slope
        self.initial_membrane = initial_membrane
        self.implementation = implementation
        leak_macs = 0 if beta == 1.0 else 1
        self.op_semantics = OpSemantics(EventKind.BINARY, update_acs=1, update_macs=leak_macs)

    def forward(self, current: Tensor) -> Tensor:
        settings = dict(beta=self.beta, threshold=self.threshold, reset=self.reset, surrogate=self.surrogate,
                        slope=self.slope, initial_membrane=self.initial_membrane)
        plain = all(isinstance(settings[key], Real) for key in ("beta", "threshold", "slope", "initial_membrane"))
        if self.implementation == "fused" and plain:
            return lif_sequence(current, **settings)
        return lif_loop(current, **settings)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}, reset={self.reset}, surrogate={self.surrogate}({self.slope})"


class Folded(nn.Module):
    """Runs a per-sample layer once over a whole sequence: `[T, B, ...] -> [T*B, ...] -> [T, B, ...]`."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        steps, batch = x.shape[:2]
        return self.layer(x.flatten(0, 1)).unflatten(0, (steps, batch))


class ReLU(nn.ReLU):
    """The ANN's activation, declared as a producer of analog events (every op it feeds is a MAC)."""

    op_semantics = OpSemantics(EventKind.ANALOG, payload_bits=32, stateful=False)


def neuron_layers(network: nn.Module) -> list[nn.Module]:
    """The modules of `network` that declare op semantics, in registration order."""
    return [m for m in network.modules() if getattr(m, "op_semantics", None) is not None]
