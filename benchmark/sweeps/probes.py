"""Per-layer probes of a grid point (params.yaml `grids.<name>.probes`), written to `<run>/probes.json`.

Every probe runs on one fixed batch: the first B samples of the validation split (B: the run's
training batch size), the same for every point and seed. Stages:

    init       the network training starts from: built from the run's seed and given its data-driven
               initialisation exactly as `benchmark.run.train` does before its first epoch (trained
               families only)
    trained    the trained network (model.pt), or for a conversion the converted one

Probe `layers`, for each stage, from one forward pass of the batch (in training mode for a trained
family: the pass its loss is computed in, BatchNorm on batch statistics; in eval mode for a
conversion):

    firing rate of spiking layer l   ρ_l = (1/(B·N_l))·Σ_{t,b,i} 1[S_l[t, b, i] ≠ 0]
                                     spikes per neuron per sample over the whole window (N_l the
                                     layer's neurons; the op counter's `spikes_per_neuron`)
    gradient norm of synaptic layer l   g_l = ‖∂L/∂W_l‖_F, L the method's training loss on the batch
                                     (its `loss`, averaged over the batch as in training), W_l the
                                     weight parameter the optimizer updates (under weight
                                     standardization the raw W, not Ŵ); none for a conversion or a
                                     method with its own `train_step`

Probe `reconstruction` (conversion family, trained stage), for each hidden layer l:

    e_l = ‖r_l − a_l‖_F / ‖a_l‖_F    over the batch, a_l the source ANN's activation of layer l,
                                     r_l = the method's decoding of the SNN layer's events
                                     (`CodingMethod.decode_hidden`): rate conversion λ_l·N_l/T (N_l
                                     the spike count over T steps, λ_l the layer's scale), CSS
                                     λ_l·Σ_{k<T} s[t0_l + k]·β^(−k)/S_T
  The scales exist only in a converted method, so the probe converts the source again (deterministic:
  the same calibration batches) and checks the result against model.pt.

probes.json: {"schema", "fingerprint" (the run's, so a retrained point's probes are redone), "probes",
"samples", "stages": {stage: {"loss", "firing_rate", "grad_norm", "reconstruction_error"}}}, each
quantity a list of {"layer": name, "value": number or null (undefined)} in network order.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from benchmark.contract.errors import ConfigError, SpikeCodeError
from benchmark.contract.io import read_json, write_json
from benchmark.contract.method import CodingMethod
from benchmark.contract.registry import get_method
from benchmark.contract.semantics import OpSemantics, semantics_of
from benchmark.data.prepared import Prepared, load_prepared
from benchmark.metrics.ops import OpCounter
from benchmark.run.config import RunSpec
from benchmark.run.inputs import input_format
from benchmark.run.runtime import Processes, build_method, load_model, model_file, seed_for
from benchmark.run.train import calibration_batches, initialize_weights

PROBES_FILE = "probes.json"
SCHEMA = 1
PROBE_STREAM = 5000  # seed_for stream of the probes' encoder and global draws (dropout)


def probes_current(spec: RunSpec, probes: list[str]) -> bool:
    """True when `spec`'s probes.json holds `probes` of the network trained under its current settings."""
    path = spec.run_dir / PROBES_FILE
    if not path.exists():
        return False
    document = read_json(path)
    return document.get("fingerprint") == spec.fingerprint() and document.get("probes") == list(probes)


def check_probes(method: str, probes: list[str]) -> None:
    """A `ConfigError` for probes that `method` cannot take (before a grid runs any point)."""
    if "reconstruction" in probes and get_method(method).family != "conversion":
        raise ConfigError(f"probe `reconstruction` compares a converted network with its source ANN; {method!r} "
                          f"is of family {get_method(method).family!r}: remove it from the grid's probes")


def write_probes(spec: RunSpec, source: RunSpec | None, probes: list[str]) -> dict[str, Any]:
    """Runs `probes` on the point `spec` (trained, or converted from `source`) and writes probes.json."""
    family = get_method(spec.method).family
    data = load_prepared(spec.dataset)
    device = Processes.from_env().device
    if family != "conversion":
        stages = {"init": probe_stage(initial_method(spec, data, device), spec, data, device),
                  "trained": probe_stage(load_model(spec, data), spec, data, device)}
    else:
        source_ann = load_model(source, data)
        converted = reconverted(spec, source_ann, data)
        trained = probe_stage(converted, spec, data, device) if "layers" in probes else {}
        if "reconstruction" in probes:
            converted.network.to(device)
            source_ann.network.to(device)
            trained["reconstruction_error"] = reconstruction_errors(converted, source_ann,
                                                                    _encoded(converted, spec, data, device),
                                                                    _encoded(source_ann, spec, data, device))
        stages = {"trained": trained}
    document = {"schema": SCHEMA, "fingerprint": spec.fingerprint(), "probes": list(probes),
                "samples": len(probe_batch(spec, data)[1]), "stages": stages}
    write_json(spec.run_dir / PROBES_FILE, document)
    return document


def probe_batch(spec: RunSpec, data: Prepared) -> tuple[Tensor, Tensor]:
    """The fixed batch: the first B validation samples (uint8) and labels, B the run's training batch size."""
    size = spec.hyperparameters.get("batch_size") or spec.profile.batch_size
    return data.val_images[:size], data.val_labels[:size]


def initial_method(spec: RunSpec, data: Prepared, device: torch.device) -> CodingMethod:
    """The method as training starts from it: `build_method` (weights from the run's seed), then
    `initialize_weights` (its data-driven initialisation), the two steps `train` takes."""
    method = build_method(spec, data)
    method.network.to(device)
    initialize_weights(method, data, input_format(data), spec, device)
    return method


def reconverted(spec: RunSpec, source: CodingMethod, data: Prepared) -> CodingMethod:
    """The conversion of `source` as `benchmark.run.train.convert` made it, with its scales; an error
    unless its weights equal model.pt's (the probe must see the network that was evaluated)."""
    method = build_method(spec, data)
    with torch.no_grad():
        method.convert(source, calibration_batches(data, spec))
    saved = torch.load(model_file(spec.run_dir), map_location="cpu", weights_only=False)["state_dict"]
    mine = method.network.state_dict()
    if saved.keys() != mine.keys() or not all(torch.equal(mine[key], saved[key]) for key in saved):
        raise SpikeCodeError(f"{spec.run_dir}: converting the source again did not give model.pt's network; "
                             "delete the run folder and run the grid again")
    return method


def _encoded(method: CodingMethod, spec: RunSpec, data: Prepared, device: torch.device) -> Tensor:
    """The probe batch as `method`'s network input, its encoder seeded from the run's probe stream."""
    fmt, (samples, _) = input_format(data), probe_batch(spec, data)
    generator = torch.Generator().manual_seed(seed_for(spec.seed, 0, stream=PROBE_STREAM))
    return fmt.encode(method, fmt.to_inputs(samples).to(device), generator)


def probe_stage(method: CodingMethod, spec: RunSpec, data: Prepared, device: torch.device) -> dict[str, Any]:
    """Probe `layers` of one stage of the run (`layer_probe` on the probe batch)."""
    method.network.to(device)
    torch.manual_seed(seed_for(spec.seed, 0, stream=PROBE_STREAM + 1))  # dropout draws, if any
    return layer_probe(method, _encoded(method, spec, data, device), probe_batch(spec, data)[1].to(device),
                       input_format(data).semantics(method))


def layer_probe(method: CodingMethod, encoded: Tensor, labels: Tensor, input_semantics: OpSemantics) -> dict[str, Any]:
    """Probe `layers` (module docstring) on `encoded` `[T, B, ...]` and `labels` `[B]`: {"loss",
    "firing_rate" per spiking layer, "grad_norm" per synaptic layer}; no loss and no gradient norms for
    a conversion or a method with its own `train_step` (null and [])."""
    network = method.network
    has_loss = method.family != "conversion" and method.train_step is None
    network.train(has_loss)
    network.zero_grad(set_to_none=True)
    counter = OpCounter(network, input_semantics)
    with counter, torch.set_grad_enabled(has_loss):
        output = network(encoded)
    rows = {row["name"]: row for row in counter.compute(len(labels)).layers}
    spiking = [site.name for site in counter.sites if site.semantics is not None and site.semantics.event_kind.is_spike]
    stage = {"loss": None, "grad_norm": [],
             "firing_rate": [{"layer": name, "value": rows[name]["spikes_per_neuron"]} for name in spiking]}
    if has_loss:
        loss = method.loss(output, labels)
        loss.backward()
        stage["loss"] = _number(float(loss.detach()))
        stage["grad_norm"] = [{"layer": site.name, "value": _gradient_norm(site.layer)}
                              for site in counter.sites if site.semantics is None]
        network.zero_grad(set_to_none=True)
    return stage


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _gradient_norm(layer: nn.Module) -> float | None:
    """‖∂L/∂W‖_F of the layer's weight parameter; 0 where no gradient reached it (W did not shape L)."""
    gradient = layer.weight.grad
    return 0.0 if gradient is None else _number(float(gradient.norm()))


@torch.no_grad()
def reconstruction_errors(method: CodingMethod, source: CodingMethod, snn_input: Tensor,
                          ann_input: Tensor) -> list[dict[str, Any]]:
    """e_l = ‖r_l − a_l‖/‖a_l‖ of every hidden layer (module docstring), in network order, the converted
    `method` run on `snn_input` `[T, B, ...]`, its `source` on `ann_input` `[1, B, ...]`, both in eval mode.
    The hidden layers are the source's activations; the neuron layer that replaces each has its name."""
    names = [name for name, child in source.network.named_children() if semantics_of(child) is not None]
    activations = _outputs(source.network.eval(), names, ann_input)
    events = _outputs(method.network.eval(), names, snn_input)
    errors = []
    for name in names:
        reference = activations[name][0]  # the ANN runs one step: [1, B, ...]
        decoded = method.decode_hidden(name, events[name])
        errors.append({"layer": name, "value": _number(float((decoded - reference).norm() / reference.norm()))})
    return errors


def _outputs(network: nn.Module, names: list[str], encoded: Tensor) -> dict[str, Tensor]:
    """The outputs `[T, B, ...]` of `network`'s children `names` when it runs on `encoded`."""
    found: dict[str, Tensor] = {}
    handles = [getattr(network, name).register_forward_hook(
        lambda module, inputs, output, name=name: found.__setitem__(name, output)) for name in names]
    try:
        network(encoded)
    finally:
        for handle in handles:
            handle.remove()
    return found
