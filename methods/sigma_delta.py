"""SpikingGamma — sigma-delta spike coding with gamma memory, trained without surrogate gradients,
arXiv 2602.01978 (METHODS.md §7: our reading of the abstract).

Every neuron is a ReLU unit whose output is sent as sigma-delta events; sender and receivers keep
the same reconstruction of it, and each receiver looks at that reconstruction through a cascade of
leaky "gamma" buckets with trainable bucket weights. Steps t = 0..T-1 (`T`), all states 0 at t = −1,
the params.yaml key of each symbol in backticks:

Sender j (a hidden neuron; the input pixels are senders too, with y_j(t) = x_j, the image):
    y_j(t)  = ReLU(x_j(t))
    p_j(t)  = α_0·ŷ⁰_j(t−1)                                 the prediction both sides share
    s_j(t)  = 1[y_j(t) − p_j(t) > ϑ]                        ϑ: `threshold`
    e_j(t)  = s_j(t)·H,  H = 2ϑ                             `height` = fixed (METHODS.md §7)
    e_j(t)  = s_j(t)·H·floor((y_j(t) − p_j(t))/H + 1/2)     `height` = adaptive (a multiple of H; default)
    ŷ⁰_j(t) = p_j(t) + e_j(t)                               the receivers compute the same from e_j
  After an event |ŷ⁰ − y| ≤ ϑ = H/2 (adaptive: at once; fixed: once settled, for a constant y). A
  fixed height climbs by at most H a step, so a value y takes about y/H steps to reach: at small T
  it cannot carry an image's intensities, hence the adaptive default.
Gamma memory per presynaptic neuron i, k = 1..K−1 (K = len(`tau`)):
    ŷᵏ_i(t) = α_k·ŷᵏ_i(t−1) + (1 − α_k)·ŷᵏ⁻¹_i(t−1),   α_k = exp(−Δt/τ_k)  (Δt: `dt`, τ_k: `tau[k]`)
Receiver j (a hidden neuron, or an output class c with O_c(t) = x_c(t)):
    x_j(t)  = Σ_i Σ_k w_ij·v_jᵏ·ŷᵏ_i(t) + b_j               w the Linear/Conv weight, v (`v`, [K, ...],
                                                            per neuron or channel) and b trainable;
                                                            v starts at v⁰ = 1, vᵏ = 0 (k ≥ 1)
Loss and readout:
    loss    = 1/(T − t_0) · Σ_{t ≥ t_0} CE(O(t), y)         t_0: `loss_from`
    ŷ       = argmax_c O_c(T − 1);  decision step = T

Backward, with no surrogate function: the code is taken as lossless, ∂ŷ⁰_j(t)/∂y_j(t) = 1 (the
events and the threshold test carry no gradient; the ReLU keeps its own derivative). Through the
gamma memory (`gradient`):
    truncated (default) past bucket states are constants (detached between steps), so at step t
              ∂x_j/∂w_ij = Σ_k v_jᵏ·ŷᵏ_i(t),  ∂x_j/∂v_jᵏ = Σ_i w_ij·ŷᵏ_i(t),  ∂x_j/∂y_i(t) = w_ij·v_j⁰
    full      backpropagation through the whole sequence: ∂ŷᵏ_i(t)/∂ŷᵏ⁻¹_i(t−1) = 1 − α_k and
              ∂ŷᵏ_i(t)/∂ŷᵏ_i(t−1) = α_k (k ≥ 1) are kept, so x_j(t) also reaches y_i(τ), τ < t, through
              the buckets k ≥ 1 (ŷ⁰ stands for y(t) alone); the event form's BPTT gradient

Training (`training`): `train_step` (the harness's optional per-batch hook, benchmark/contract/method.py;
it receives the encoded input events e_in(t): the image's sigma-delta events, or an event dataset's
frame counts) runs t = 0..T-1 one step of the whole network at a time, in the trace form below; with the
truncated gradient it frees each step's graph after its backward (memory constant in T). The loss steps
are t = t_0..T−1, every one of them:
    online   (params.yaml default) at every loss step: backward of CE(O(t), y), then an optimizer
             step, T − t_0 updates per batch; later steps run on the updated weights
    offline  the gradients of CE(O(t), y)/(T − t_0) accumulate over the loss steps, then one
             optimizer step per batch (the gradient of `loss`, past states held constant)
With `gradient: full` (offline only: online updates change the weights between the steps a gradient
through the past would span) the graph is kept over the sequence and `loss` is backpropagated once per
batch, memory linear in T; the same gradient as a loop without the hook (`loss` on the network's
output, full backward), which runs BPTT through the event form.

Two forms of the same forward (values equal up to float rounding; tests/test_sigma_delta.py):
- trace form (`trace_step`, training): each layer gets Z_k = W·ŷᵏ_in(t), the presynaptic buckets
  mapped by the synaptic layer, K maps per step, exactly the equations above.
- event form (the network, evaluation and op counting): W is linear and every presynaptic neuron
  has the same α_k, so P_jᵏ(t) = Σ_i w_ij·ŷᵏ_i(t) obeys the same cascade driven by the events:
      P_j⁰(t) = α_0·P_j⁰(t−1) + I_j(t),  I_j(t) = Σ_i w_ij·e_i(t)      (`event_step`)
      P_jᵏ(t) = α_k·P_jᵏ(t−1) + (1 − α_k)·P_jᵏ⁻¹(t−1),   x_j(t) = Σ_k v_jᵏ·P_jᵏ(t) + b_j
  The network is [Folded(Linear/Conv without bias) → GammaSigmaDelta] per hidden layer, then
  Folded(Linear) → GammaReadout: a synaptic layer sees the events and the buckets sit in the
  receiving neuron. Pooling (average) is linear too; batch norm and max pooling are not, and are
  refused.

Op semantics (what the op counter charges):
- events are graded (EventKind.GRADED, 32-bit payload: the height travels as a float, as the
  adaptive height needs), so each nonzero event costs one MAC per fan-out. With a fixed height an
  implementation could fold H into W and pay ACs; we do not claim that cheaper count.
- per neuron and step, hidden: 3K MACs (α_0·P⁰, two per bucket k ≥ 1, K for v, α_0·ŷ⁰) and 3 ACs
  (+b, y − p, p + e); output: 3K − 1 MACs, 1 AC. The input encoder's own updates are not charged
  (no method's encoder is); its events are, at the first synaptic layer.

Our readings where the paper is not available to us: positive events only (the reconstruction
comes down by its decay α_0); one bucket cascade per presynaptic neuron shared by its receivers;
v per receiving neuron (per channel for convolutions); a bias b_j; the adaptive height; t_0.
Changing Δt keeps the continuous-time model (α_k = exp(−Δt/τ_k)); scale T by the inverse
(`at_time_step`). How far the accuracy moves with Δt is measured in reports/resolution/.

Shapes: time-first, `[T, B, ...]`; buckets `[K, B, ...]`; per-step tensors `[B, ...]`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import Tensor, nn
from torch.nn import functional as F

from benchmark.contract.errors import ConfigError
from benchmark.contract.method import CodingMethod, MethodConfig, Readout
from benchmark.contract.registry import register_method
from benchmark.contract.semantics import EventKind, OpSemantics
from snn.arch import ArchSpec
from snn.conversion import skeleton
from snn.layers import Folded

HeightName = Literal["fixed", "adaptive"]
GRADED_EVENTS = OpSemantics(EventKind.GRADED, payload_bits=32)


class SigmaDeltaConfig(MethodConfig):
    T: int = Field(4, ge=1)
    threshold: float = Field(0.05, gt=0, description="ϑ; events have height H = 2ϑ (or multiples of it)")
    height: HeightName = Field("adaptive", description="fixed: e = H; adaptive: e = H·round((y − p)/H)")
    tau: list[float] = Field([100.0, 2.0], min_length=1, description="τ_0..τ_{K−1} in units of dt; K = len(tau)")
    dt: float = Field(1.0, gt=0, description="Δt: α_k = exp(−Δt/τ_k)")
    training: Literal["online", "offline"] = "online"
    gradient: Literal["truncated", "full"] = Field("truncated", description="through the gamma memory: truncated "
                                                   "(past buckets constant) or full (BPTT; offline only)")
    loss_from: int = Field(0, ge=0, description="t_0: first step whose CE(O(t), y) is a loss step")
    lr: float = 3e-4

    @field_validator("tau")
    @classmethod
    def _positive(cls, tau: list[float]) -> list[float]:
        if any(not value > 0 for value in tau):
            raise ValueError(f"every τ_k must be > 0 (time constants in units of dt), got {tau}")
        return tau


def decay_factors(dt: float, tau: list[float]) -> list[float]:
    """α_k = exp(−Δt/τ_k)."""
    return [math.exp(-dt / value) for value in tau]


# --- the pure steps ---------------------------------------------------------------------------


def reconstruct(events: Tensor, previous: Tensor, alpha0: Tensor) -> Tensor:
    """ŷ⁰(t) = α_0·ŷ⁰(t−1) + e(t): what the sender keeps and every receiver computes from e."""
    return alpha0 * previous + events


def sigma_delta_step(y: Tensor, reconstruction: Tensor, *, alpha0: Tensor, threshold: float,
                     height: HeightName) -> tuple[Tensor, Tensor]:
    """One sender step: (y(t), ŷ⁰(t−1)) -> (e(t), ŷ⁰(t)). No gradient flows through e."""
    with torch.no_grad():
        error = y - alpha0 * reconstruction  # y − p
        fire = (error > threshold).to(y.dtype)
        unit = 2 * threshold  # H
        events = fire * (torch.floor(error / unit + 0.5) * unit if height == "adaptive" else unit)
        return events, reconstruct(events, reconstruction, alpha0)


def gamma_step(first: Tensor, buckets: Tensor, alphas: Tensor) -> Tensor:
    """New buckets `[K, B, ...]` from ŷ⁰(t) = `first` and ŷᵏ(t−1) = `buckets`:
    ŷᵏ(t) = α_k·ŷᵏ(t−1) + (1 − α_k)·ŷᵏ⁻¹(t−1) for k ≥ 1."""
    if buckets.shape[0] == 1:
        return first.unsqueeze(0)
    alpha = alphas[1:].view(-1, *([1] * first.ndim))
    return torch.cat([first.unsqueeze(0), alpha * buckets[1:] + (1 - alpha) * buckets[:-1]])


def gamma_memory_step(events: Tensor, buckets: Tensor, alphas: Tensor) -> Tensor:
    """A receiver's buckets after the events e(t): ŷ⁰ = α_0·ŷ⁰(t−1) + e(t), then the cascade.
    Fed I(t) = W·e(t) instead of e(t), it is the event form's P(t)."""
    return gamma_step(reconstruct(events, buckets[0], alphas[0]), buckets, alphas)


def receive(buckets: Tensor, v: Tensor, b: Tensor) -> Tensor:
    """x = Σ_k v_k·Z_k + b. Shapes: buckets `[K, B, ...]`, v `[K, ...]`, b `[...]` -> `[B, ...]`."""
    return (v.unsqueeze(1) * buckets).sum(0) + b


def lossless(value: Tensor, differentiable: Tensor) -> Tensor:
    """`value` forward (exactly), the gradient of `differentiable` backward: ∂ŷ/∂y = 1."""
    return value.detach() + (differentiable - differentiable.detach())


def trace_step(weighted: Tensor, traces: Tensor, *, v: Tensor, b: Tensor, alphas: Tensor, threshold: float,
               height: HeightName) -> tuple[Tensor, Tensor]:
    """One hidden layer, trace form: (Z_k = W·ŷᵏ_in(t) `[K, B, ...]`, own ŷᵏ(t−1)) -> (e(t), own ŷᵏ(t)).
    Bucket 0 carries the lossless gradient to y(t); buckets k ≥ 1 depend on `traces` only."""
    y = F.relu(receive(weighted, v, b))
    events, reconstruction = sigma_delta_step(y, traces[0], alpha0=alphas[0], threshold=threshold, height=height)
    return events, gamma_step(lossless(reconstruction, y), traces, alphas)


def event_step(current: Tensor, state: tuple[Tensor, Tensor, Tensor], *, v: Tensor, b: Tensor, alphas: Tensor,
               threshold: float, height: HeightName) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """One hidden layer, event form: (I(t) = W·e_in(t), (P(t−1), ŷ⁰(t−1), y(t−1))) -> (e(t), state).

    Backward, e(t) stands for y(t) − α_0·y(t−1), so Σ_τ α_0^(t−τ)·e(τ) = ŷ⁰(t) stands for y(t):
    through time it telescopes to the lossless code's ∂ŷ⁰(t)/∂y(τ) = 1[τ = t]."""
    buckets, reconstruction, y_previous = state
    buckets = gamma_memory_step(current, buckets, alphas)
    y = F.relu(receive(buckets, v, b))
    events, reconstruction = sigma_delta_step(y, reconstruction, alpha0=alphas[0], threshold=threshold, height=height)
    if torch.is_grad_enabled():
        events = lossless(events, y - alphas[0] * y_previous)
    return events, (buckets, reconstruction, y)


# --- the modules --------------------------------------------------------------------------------


class _Receiver(nn.Module):
    """Owns what every receiver has: bucket weights v `[K, *shape]` (v⁰ = 1, vᵏ = 0), bias b `[*shape]`,
    the α_k (floats; `alphas_like` makes them a tensor of the data's dtype and device).
    `shape`: `(N,)` after a Linear, `(C, 1, 1)` after a Conv2d."""

    def __init__(self, shape: tuple[int, ...], alphas: list[float]):
        super().__init__()
        v = torch.zeros(len(alphas), *shape)
        v[0] = 1.0
        self.v = nn.Parameter(v)
        self.b = nn.Parameter(torch.zeros(shape))
        self.alpha_values = tuple(alphas)

    @property
    def K(self) -> int:
        return self.v.shape[0]

    def alphas_like(self, x: Tensor) -> Tensor:
        return x.new_tensor(self.alpha_values)

    def _start(self, current: Tensor) -> Tensor:
        return current.new_zeros(self.K, *current.shape[1:])


class GammaSigmaDelta(_Receiver):
    """A hidden layer of SpikingGamma neurons: buckets of its input, ReLU, sigma-delta sender.

    Event form (`forward`, the network): input currents I = W·e_in `[T, B, ...]` -> events e `[T, B, ...]`.
    Trace form (`step`, training): Z = W·ŷ_in `[K, B, ...]` and own buckets -> (e `[B, ...]`, own buckets).
    States start at 0 on every call; nothing is kept between calls.
    """

    def __init__(self, shape: tuple[int, ...], alphas: list[float], threshold: float, height: HeightName):
        super().__init__(shape, alphas)
        self.threshold, self.height = threshold, height
        self.op_semantics = OpSemantics(EventKind.GRADED, payload_bits=GRADED_EVENTS.payload_bits,
                                        update_acs=3, update_macs=3 * self.K)

    def forward(self, current: Tensor) -> Tensor:
        zeros = current[0].new_zeros(current.shape[1:])
        state, alphas = (self._start(current), zeros, zeros), self.alphas_like(current)
        events = []
        for current_t in current:
            e, state = event_step(current_t, state, v=self.v, b=self.b, alphas=alphas,
                                  threshold=self.threshold, height=self.height)
            events.append(e)
        return torch.stack(events)

    def step(self, weighted: Tensor, traces: Tensor | None) -> tuple[Tensor, Tensor]:
        if traces is None:
            traces = weighted.new_zeros(weighted.shape)
        elif traces.shape != weighted.shape:
            raise ValueError(f"{type(self).__name__}: state of shape {list(traces.shape)} for an input of "
                             f"shape {list(weighted.shape)}; start a new sequence with traces=None")
        return trace_step(weighted, traces, v=self.v, b=self.b, alphas=self.alphas_like(weighted),
                          threshold=self.threshold, height=self.height)

    def extra_repr(self) -> str:
        return f"K={self.K}, threshold={self.threshold}, height={self.height}"


class GammaReadout(_Receiver):
    """The output layer: buckets and bucket weights, no ReLU, no sender; O(t) = x(t) (analog).

    Event form (`forward`): I `[T, B, classes]` -> O `[T, B, classes]`. Trace form (`step`):
    Z `[K, B, classes]` -> O(t) `[B, classes]`."""

    def __init__(self, shape: tuple[int, ...], alphas: list[float]):
        super().__init__(shape, alphas)
        self.op_semantics = OpSemantics(EventKind.ANALOG, payload_bits=32, update_acs=1, update_macs=3 * self.K - 1)

    def forward(self, current: Tensor) -> Tensor:
        buckets, alphas = self._start(current), self.alphas_like(current)
        outputs = []
        for current_t in current:
            buckets = gamma_memory_step(current_t, buckets, alphas)
            outputs.append(receive(buckets, self.v, self.b))
        return torch.stack(outputs)

    def step(self, weighted: Tensor) -> Tensor:
        return receive(weighted, self.v, self.b)


def network_step(network: nn.Sequential, inputs: Tensor, traces: list[Tensor | None]) -> tuple[Tensor, list[Tensor]]:
    """One step t of the whole network in the trace form: the input's buckets ŷᵏ_in(t) `[K, B, ...]`
    and every hidden layer's ŷᵏ(t−1) (None at t = 0) -> (O(t) `[B, classes]`, every layer's ŷᵏ(t)).
    Synaptic and pooling layers map every bucket (they are linear); neurons step."""
    z, states, new = inputs, iter(traces), []
    for module in network.children():
        if isinstance(module, GammaSigmaDelta):
            _, z = module.step(z, next(states))
            new.append(z)
        elif isinstance(module, GammaReadout):
            return module.step(z), new
        else:
            z = module.layer(z.flatten(0, 1)).unflatten(0, z.shape[:2])
    raise ValueError("the network has no GammaReadout at its end")


class _Placeholder(nn.Module):
    """Stands where a neuron goes until its size is known."""


@register_method("sigma-delta")
class SigmaDelta(CodingMethod):
    family = "direct"
    citation = ("SpikingGamma: sigma-delta spike coding with gamma memory, trained without surrogate gradients, "
                "arXiv 2602.01978")
    Config = SigmaDeltaConfig
    input_semantics = GRADED_EVENTS

    def __init__(self, config: SigmaDeltaConfig, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int):
        if config.loss_from >= config.T:
            raise ConfigError(f"methods.sigma-delta.loss_from must be < T (some step must carry a loss), got "
                              f"loss_from={config.loss_from}, T={config.T}")
        if config.gradient == "full" and config.training != "offline":
            raise ConfigError("methods.sigma-delta.gradient: full backpropagates through the whole sequence, which "
                              "online training (an update at every step) cannot; set training: offline, or "
                              f"gradient: truncated (got training={config.training})")
        if arch.batch_norm or (arch.pool == "max" and "M" in arch.conv):
            raise ConfigError("sigma-delta keeps its buckets after the synaptic layer, which must therefore be linear: "
                              "use an architecture with batch_norm: false and pool: avg")
        super().__init__(config, arch, input_shape, num_classes)

    @classmethod
    def at_time_step(cls, hyperparameters: dict, factor: int) -> dict:
        """At Δt/factor: T·factor steps of dt/factor, so every α_k = exp(−Δt/τ_k) keeps τ_k in time.
        Online training updates at every step, so its learning rate is per step too: lr/factor keeps
        the learning per unit of time."""
        config = cls.Config(**hyperparameters)
        lr = config.lr / factor if config.training == "online" else config.lr
        return {**hyperparameters, "T": config.T * factor, "dt": config.dt / factor,
                "loss_from": config.loss_from * factor, "lr": lr}

    @property
    def alphas(self) -> list[float]:
        return decay_factors(self.config.dt, self.config.tau)

    def build(self, arch: ArchSpec, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        config = self.config
        network = skeleton(arch, input_shape, num_classes, make_neuron=lambda name: _Placeholder(),
                           output_neuron=_Placeholder(), bias=False)
        children = list(network.named_children())
        shape: tuple[int, ...] = ()
        for index, (name, module) in enumerate(children):
            layer = module.layer if isinstance(module, Folded) else module
            if isinstance(layer, nn.Linear):
                shape = (layer.out_features,)
            elif isinstance(layer, nn.Conv2d):
                shape = (layer.out_channels, 1, 1)
            elif isinstance(module, _Placeholder):
                last = index == len(children) - 1
                neuron = (GammaReadout(shape, self.alphas) if last else
                          GammaSigmaDelta(shape, self.alphas, config.threshold, config.height))
                setattr(network, name, neuron)
        return network

    def encode(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The input senders' sigma-delta events e_in(t) (y(t) = x for every t): `[B, C, H, W]` ->
        `[T, B, C, H, W]`. Deterministic: `generator` is unused."""
        alpha0, reconstruction, events = images.new_tensor(self.alphas[0]), torch.zeros_like(images), []
        for _ in range(self.config.T):
            step, reconstruction = sigma_delta_step(images, reconstruction, alpha0=alpha0,
                                                    threshold=self.config.threshold, height=self.config.height)
            events.append(step)
        return torch.stack(events)

    def loss(self, output: Tensor, labels: Tensor) -> Tensor:
        steps = output[self.config.loss_from:]
        return F.cross_entropy(steps.flatten(0, 1), labels.repeat(steps.shape[0]))

    def readout(self, output: Tensor) -> Readout:
        prediction = output[-1].argmax(dim=-1)
        return Readout(prediction, torch.full_like(prediction, self.config.T))

    def train_step(self, encoded: Tensor, labels: Tensor,
                   optimizer: torch.optim.Optimizer) -> tuple[Tensor, Tensor]:
        """One batch of per-step training (the module docstring) on the input events e_in(t) `[T, B, ...]`
        (`encode`'s, or an event dataset's frames): -> (mean loss over the loss steps, detached;
        predictions `[B]` from O(T − 1))."""
        config, network = self.config, self.network
        traces: list[Tensor | None] = [None] * sum(isinstance(m, GammaSigmaDelta) for m in network.modules())
        loss_steps = config.T - config.loss_from
        online, full = config.training == "online", config.gradient == "full"
        alphas = encoded.new_tensor(self.alphas)
        inputs, total = encoded.new_zeros(len(self.alphas), *encoded.shape[1:]), encoded.new_zeros(())
        sequence_loss = encoded.new_zeros(())  # full: `loss`, backpropagated once through every step
        optimizer.zero_grad(set_to_none=True)
        for t, events in enumerate(encoded):
            inputs = gamma_memory_step(events, inputs, alphas)
            counts = t >= config.loss_from
            with torch.set_grad_enabled(counts or full):  # full: later losses reach back into every step
                output, traces = network_step(network, inputs, traces)
                if counts:
                    loss = F.cross_entropy(output, labels)
                    if full:
                        sequence_loss = sequence_loss + loss / loss_steps
                    else:
                        (loss if online else loss / loss_steps).backward()
                    total += loss.detach()
                    if online:
                        optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
            if not full:
                traces = [trace.detach() for trace in traces]  # past bucket states are constants
        if full:
            sequence_loss.backward()
        if not online:
            optimizer.step()
        return total / loss_steps, self.readout(output.detach().unsqueeze(0)).prediction
