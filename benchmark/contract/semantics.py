"""Op semantics: what a layer's events are and what its neuron updates cost.

A spiking layer declares its semantics; the op counter charges the synaptic layer that receives
its events by that declaration, never by inspecting values (DESIGN.md, "The method contract").

    event kind   on the wire                          one nonzero event × fan-out costs
    binary       0 / 1 spikes                         ACs  (the weight is added)
    ternary      −1 / 0 / +1 signed spikes            ACs  (the weight is added or subtracted)
    graded       a spike carrying a payload of n bits MACs (the payload multiplies the weight)
    analog       real-valued activations              MACs

An input that is the same at every time step (`constant`, e.g. `HELD_ANALOG`) is charged once per
sample, whatever its kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class EventKind(str, Enum):
    BINARY = "binary"
    TERNARY = "ternary"
    GRADED = "graded"
    ANALOG = "analog"

    @property
    def is_accumulate(self) -> bool:
        """True when a receiving synapse only adds (or subtracts) its weight: an AC, not a MAC."""
        return self in (EventKind.BINARY, EventKind.TERNARY)

    @property
    def is_spike(self) -> bool:
        """True for events that count as spikes in `spikes_per_sample`."""
        return self is not EventKind.ANALOG


@dataclass(frozen=True)
class OpSemantics:
    """Declared by every module that produces events (neurons, encoders).

    event_kind:     kind of the events this module emits.
    payload_bits:   bits carried per event (1 for binary, 2 for ternary, n for graded, 32 analog).
    update_acs:     additions per neuron state update (e.g. IF: 1, the input is added).
    update_macs:    multiplications per neuron state update (e.g. LIF: 1, the leak β·U).
    stateful:       False for a stateless activation (ReLU): it performs no state update.
    constant:       True when the events are the same at every time step (an analog image held as
                    the input of every step): the receiving layer's products are charged once per
                    sample, and each later step re-injects the held current at the receiving
                    neuron's declared update cost (METHODS.md §8). Declared, never inferred.
    """

    event_kind: EventKind
    payload_bits: int = 1
    update_acs: int = 0
    update_macs: int = 0
    stateful: bool = True
    constant: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.event_kind, EventKind):
            raise TypeError(f"event_kind must be an EventKind, got {self.event_kind!r}")
        if self.payload_bits < 1:
            raise ValueError(f"payload_bits must be >= 1, got {self.payload_bits}")


BINARY_SPIKES = OpSemantics(EventKind.BINARY, payload_bits=1)
ANALOG_VALUES = OpSemantics(EventKind.ANALOG, payload_bits=32, stateful=False)
HELD_ANALOG = OpSemantics(EventKind.ANALOG, payload_bits=32, stateful=False, constant=True)  # the same at every step


def semantics_of(module) -> OpSemantics | None:
    """The declared semantics of `module`, or None when it declares none."""
    return getattr(module, "op_semantics", None)
