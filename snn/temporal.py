"""Single-spike temporal coding parts: the single-spike IF neuron, temporal decoders, the first-spike
(early-exit) decision and latency input coding.

Single-spike IF neuron (Che et al., arXiv 2410.23619; METHODS.md §3), one step, t = 0..T-1:

    H[t] = V[t-1] + I[t]                          membrane before firing (no leak)
    S[t] = Θ(H[t] − θ)·(1 − M[t-1])               spike; M is the "has fired" mask
    M[t] = M[t-1] + S[t]                          so Σ_t S[t] ≤ 1: every neuron fires at most once
    V[t] = H[t]                                   no reset: the mask, not a reset, silences it
    V[-1] = 0, M[-1] = 0

Θ is Heaviside forward and a surrogate derivative backward (`snn.engine.spike`; sigmoid,
α = `slope`). The mask is not detached: ∂S[t]/∂M[t-1] = −Θ(H[t] − θ), so a spike that came at τ
is charged for the later spike it pre-empted (the gradient of firing at τ rather than at τ + 1).
Layers are run one after another on whole sequences, which is the same computation as
step-by-step propagation: the spikes of layer l at step t reach layer l+1 at step t, so the
latency does not grow with depth.

Temporal decoding of an output spike train S_c[t] (`[T, B, classes]`):

    O_c = Σ_t w_t·S_c[t],   w strictly decreasing in t (but for the count baseline)
    linear   w_t = (T − t)/T                        (paper default; w_0 = 1, w_{T-1} = 1/T)
    exp      w_t = T^(−t/(T−1))                     (our reading of "exponential": the same end
                                                     points as linear, w_0 = 1, w_{T-1} = 1/T)
    learned  w_t = Σ_{τ ≥ t} (softplus(a_τ) + ε)    a trainable; positive increments keep w
                                                     strictly decreasing; starts equal to linear
    count    w_t = 1                                (not a temporal decoder: the spike count, the
                                                     baseline of the claim that decoding time lowers
                                                     the decision step; grid ttfs-decoder)

Output layer (`SingleSpikeOutput`): the same neuron, but it emits its membrane H_c[t] = Σ_{τ≤t} I_c[τ]
and the method fires it with `fire_once` (the same S[t] and the same gradient as `SingleSpikeIF`),
so that the readout sees by how much each class crossed θ as well as when.

First-spike readout (early exit): the class whose output neuron fires first wins; the decision
step is the number of steps consumed, first output spike at t → t + 1. Ties among the earliest
classes (and the case where no class fires, decision step T) are broken by a score:

    membrane   H_c[t*] at the earliest step t* (T − 1 when nothing fired): the class that crossed θ
               by most, i.e. the first to cross in continuous time when I is constant within a step
    decoder    O (the paper's wording; with one spike per class the tied O are equal, so the lowest
               class index wins)

Latency input coding of an intensity x ∈ [0, 1], per sample (never normalised over the batch):

    t(x) = round((1 − x)·(T − 1))   rounded half up;  S[t] = 1[t = t(x)]

so x = 1 fires at t = 0 and x = 0 at t = T − 1 (every input fires exactly once).

Shapes: time-first, `[T, B, ...]` for every sequence; per-step tensors are `[B, ...]`.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.contract.semantics import EventKind, OpSemantics
from snn.engine import SurrogateName, spike

DecoderName = Literal["linear", "exp", "learned", "count"]
DECODERS: tuple[str, ...] = get_args(DecoderName)
LEARNED_MIN_INCREMENT = 1e-4  # ε of the learned decoder: the smallest gap w_t − w_{t+1}


# --- the single-spike neuron ------------------------------------------------------------------


class SingleSpikeState(NamedTuple):
    """State of a single-spike IF layer after step t: membrane V[t] and fired mask M[t], `[B, ...]`."""

    membrane: Tensor
    fired: Tensor


def single_spike_step(
    current: Tensor,
    state: SingleSpikeState,
    *,
    threshold: float,
    surrogate: SurrogateName = "sigmoid",
    slope: float = 4.0,
) -> tuple[Tensor, SingleSpikeState]:
    """One step: (I[t], (V[t-1], M[t-1])) -> (S[t], (V[t], M[t])), the equations of the module docstring."""
    if state.membrane.shape != current.shape or state.fired.shape != current.shape:
        raise ValueError(
            f"single-spike state of shape {tuple(state.membrane.shape)}/{tuple(state.fired.shape)} does not "
            f"match the input current {tuple(current.shape)}; start a new sequence with initial_state(current)"
        )
    h = state.membrane + current  # H[t] = V[t-1] + I[t]
    s, m = fire_step(h, state.fired, threshold=threshold, surrogate=surrogate, slope=slope)
    return s, SingleSpikeState(membrane=h, fired=m)  # V[t] = H[t]


def fire_step(
    membrane: Tensor, fired: Tensor, *, threshold: float, surrogate: SurrogateName = "sigmoid", slope: float = 4.0
) -> tuple[Tensor, Tensor]:
    """The firing half of a step: (H[t], M[t-1]) -> (S[t], M[t]), `[B, ...]` each."""
    s = spike(membrane - threshold, surrogate, slope) * (1 - fired)  # S[t] = Θ(H[t] − θ)·(1 − M[t-1])
    return s, fired + s  # M[t] = M[t-1] + S[t]


def initial_state(current_t: Tensor) -> SingleSpikeState:
    """V[-1] = 0, M[-1] = 0 for a step input of the shape of `current_t` (`[B, ...]`)."""
    return SingleSpikeState(torch.zeros_like(current_t), torch.zeros_like(current_t))


def single_spike_sequence(
    current: Tensor,
    state: SingleSpikeState | None = None,
    *,
    threshold: float,
    surrogate: SurrogateName = "sigmoid",
    slope: float = 4.0,
) -> tuple[Tensor, SingleSpikeState]:
    """Steps `single_spike_step` over a whole sequence.

    Shapes: current `[T, B, ...]` -> (spikes `[T, B, ...]`, final state with `[B, ...]` tensors).
    `state` defaults to the rest state; the final state holds V[T-1] (e.g. for a membrane readout).
    """
    state = initial_state(current[0]) if state is None else state
    spikes = []
    for current_t in current:
        s, state = single_spike_step(current_t, state, threshold=threshold, surrogate=surrogate, slope=slope)
        spikes.append(s)
    return torch.stack(spikes), state


def fire_once(
    membrane: Tensor, *, threshold: float, surrogate: SurrogateName = "sigmoid", slope: float = 4.0
) -> Tensor:
    """The spikes of a single-spike IF layer from its membrane sequence H (no reset: V[t] = H[t]):
    S[t] = Θ(H[t] − θ)·(1 − M[t-1]), M[t] = M[t-1] + S[t]. Shapes: `[T, B, ...]` -> `[T, B, ...]`."""
    fired = torch.zeros_like(membrane[0])
    spikes = []
    for h in membrane:
        s, fired = fire_step(h, fired, threshold=threshold, surrogate=surrogate, slope=slope)
        spikes.append(s)
    return torch.stack(spikes)


class SingleSpikeIF(nn.Module):
    """Multi-step single-spike IF layer: currents `[T, B, ...]` -> spikes `[T, B, ...]`, Σ_t S ≤ 1.

    A thin module over `single_spike_step`: it owns only its settings; the state starts at rest on
    every call and lives in the call, never in the module.
    """

    def __init__(self, threshold: float = 1.0, surrogate: SurrogateName = "sigmoid", slope: float = 4.0):
        super().__init__()
        if threshold <= 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        self.threshold, self.surrogate, self.slope = threshold, surrogate, slope
        # binary spikes; one addition (V + I) per neuron and step
        self.op_semantics = OpSemantics(EventKind.BINARY, payload_bits=1, update_acs=1)

    def forward(self, current: Tensor) -> Tensor:
        spikes, _ = single_spike_sequence(current, threshold=self.threshold, surrogate=self.surrogate,
                                          slope=self.slope)
        return spikes

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, surrogate={self.surrogate}({self.slope})"


class SingleSpikeOutput(SingleSpikeIF):
    """Output layer of the single-spike methods: the same neuron and settings, but it emits its
    membrane, currents `[T, B, C]` -> H `[T, B, C]`, H[t] = H[t-1] + I[t]. `spikes(H)` fires it
    (`fire_once`): one spike per class at most.

    Its spikes reach no synapse, so they cost no synaptic op; the op counter charges its neuron
    updates (one addition per class and step) and counts its spikes with `events`.
    """

    def forward(self, current: Tensor) -> Tensor:
        return current.cumsum(0)

    def spikes(self, membrane: Tensor) -> Tensor:
        return fire_once(membrane, threshold=self.threshold, surrogate=self.surrogate, slope=self.slope)

    def events(self, membrane: Tensor) -> Tensor:
        """What the layer emits on the wire, for the op counter: its spikes (`[T, B, C]`)."""
        return first_crossings(membrane, self.threshold)


def first_crossings(membrane: Tensor, threshold: float) -> Tensor:
    """Forward value of `fire_once` without autograd: 1 at the first t with H[t] ≥ θ.
    Shapes: `[T, B, ...]` -> `[T, B, ...]` (dtype of `membrane`)."""
    above = membrane >= threshold
    before = above.cumsum(0) - above.to(torch.long)  # crossings strictly before t
    return (above & (before == 0)).to(membrane.dtype)


# --- temporal output decoders -----------------------------------------------------------------


def decoder_weights(kind: Literal["linear", "exp", "count"], T: int) -> Tensor:
    """The fixed decoding weights w_t, t = 0..T-1 (module docstring), as a float tensor `[T]`."""
    t = torch.arange(T, dtype=torch.float32)
    if kind == "linear":
        return (T - t) / T
    if kind == "exp":
        return torch.ones(1) if T == 1 else torch.pow(float(T), -t / (T - 1))
    if kind == "count":
        return torch.ones(T)
    raise ValueError(f"unknown fixed decoder {kind!r}; choose 'linear', 'exp' or 'count' ('learned' is a "
                     "TemporalDecoder)")


class TemporalDecoder(nn.Module):
    """O_c = Σ_t w_t·S_c[t] with strictly decreasing w, or w = 1 for the count baseline (module docstring).

    Shapes: spikes `[T, B, C]` -> `forward`: O `[B, C]`; `cumulative`: o_t = Σ_{τ≤t} w_τ·S[τ],
    `[T, B, C]` (the score available at step t, for per-step losses).
    """

    def __init__(self, kind: DecoderName, T: int):
        super().__init__()
        if kind not in DECODERS:
            raise ValueError(f"unknown decoder {kind!r}; choose one of {', '.join(DECODERS)}")
        if T < 1:
            raise ValueError(f"T must be >= 1, got {T}")
        self.kind, self.T = kind, T
        if kind == "learned":
            # a_τ such that softplus(a_τ) + ε = 1/T: w starts as the linear decoder
            start = math.log(math.expm1(1.0 / T - LEARNED_MIN_INCREMENT))
            self.increments = nn.Parameter(torch.full((T,), start))
        else:
            self.register_buffer("fixed", decoder_weights(kind, T), persistent=False)

    def weights(self) -> Tensor:
        """w_t, `[T]`."""
        if self.kind != "learned":
            return self.fixed
        steps = F.softplus(self.increments) + LEARNED_MIN_INCREMENT
        return steps.flip(0).cumsum(0).flip(0)  # w_t = Σ_{τ ≥ t} step_τ

    def forward(self, spikes: Tensor) -> Tensor:
        self._check(spikes)
        return torch.einsum("t,tbc->bc", self.weights().to(spikes.dtype), spikes)

    def cumulative(self, spikes: Tensor) -> Tensor:
        self._check(spikes)
        weighted = self.weights().to(spikes.dtype).view(-1, *([1] * (spikes.dim() - 1))) * spikes
        return weighted.cumsum(0)

    def _check(self, spikes: Tensor) -> None:
        if spikes.shape[0] != self.T:
            raise ValueError(f"the decoder was built for T={self.T} steps, got a sequence of {spikes.shape[0]}")

    def extra_repr(self) -> str:
        return f"kind={self.kind}, T={self.T}"


# --- first-spike readout ----------------------------------------------------------------------


def first_spike_times(spikes: Tensor) -> Tensor:
    """Step of the first nonzero of every unit, T where there is none. `[T, B, ...]` -> `[B, ...]` int64."""
    steps = spikes.shape[0]
    fired = spikes != 0
    first = fired.to(torch.uint8).argmax(dim=0)  # the first maximum: the first spike, or 0 when none
    return torch.where(fired.any(dim=0), first, torch.full_like(first, steps))


class FirstSpikeDecision(NamedTuple):
    """The early-exit decision of every sample: class `[B]` and decision step `[B]` (1..T)."""

    prediction: Tensor
    decision_step: Tensor


def first_spike_readout(spikes: Tensor, score: Tensor) -> FirstSpikeDecision:
    """Early exit: the earliest-firing class wins, ties (and no spike at all) broken by `score`.

    Shapes: spikes `[T, B, C]`, score `[B, C]` -> (prediction `[B]`, decision_step `[B]`).
    decision step = t + 1 for a first output spike at step t; T when no class fires.
    """
    if spikes.dim() != 3 or score.shape != spikes.shape[1:]:
        raise ValueError(f"expected spikes [T, B, C] and score [B, C], got {tuple(spikes.shape)} and {tuple(score.shape)}")
    steps = spikes.shape[0]
    times = first_spike_times(spikes)  # [B, C]
    earliest = times.min(dim=1).values  # [B]; T when no class fired
    candidates = times == earliest.unsqueeze(1)  # all classes when none fired
    masked = score.detach().masked_fill(~candidates, float("-inf"))
    prediction = masked.argmax(dim=1)  # the first maximum: the lowest class index among equal scores
    decision_step = (earliest + 1).clamp(max=steps)
    return FirstSpikeDecision(prediction, decision_step)


def membrane_at_first_spike(spikes: Tensor, membrane: Tensor) -> Tensor:
    """Tie-break score: H_c[t*] with t* the earliest output spike of the sample (T − 1 when none).
    Shapes: spikes, membrane `[T, B, C]` -> `[B, C]`."""
    steps = spikes.shape[0]
    earliest = first_spike_times(spikes).min(dim=1).values.clamp(max=steps - 1)  # [B]
    index = earliest.view(1, -1, 1).expand(1, *membrane.shape[1:])
    return membrane.detach().gather(0, index).squeeze(0)


# --- latency input coding ---------------------------------------------------------------------


def latency_times(x: Tensor, T: int) -> Tensor:
    """t(x) = round((1 − x)·(T − 1)), rounded half up, for intensities in [0, 1]; elementwise (int64)."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"latency coding needs intensities in [0, 1], got [{float(x.min())}, {float(x.max())}]")
    return torch.floor((1 - x) * (T - 1) + 0.5).long()


def spikes_at(times: Tensor, T: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """One spike per element at its step: `[...]` int times -> `[T, ...]` with S[t] = 1[t = time];
    a time outside 0..T-1 (e.g. T for "never") gives no spike."""
    steps = torch.arange(T, device=times.device).view(-1, *([1] * times.dim()))
    return (steps == times.unsqueeze(0)).to(dtype)


def latency_encode(images: Tensor, T: int) -> Tensor:
    """Latency input coding: `[B, ...]` in [0, 1] -> `[T, B, ...]`, one spike per pixel at t(x).

    Each sample is coded on its own: no statistic of the batch enters (unlike snnTorch's
    `spikegen.latency(normalize=True)`)."""
    return spikes_at(latency_times(images, T), T, images.dtype)
