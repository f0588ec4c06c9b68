"""The deploy stage of one trained run: NIR export, round trip through other libraries, fixed-point
evaluation -> `<run>/deploy.json` (and `<run>/model.nir` when NIR can express the network, exactly or
with stated approximations).

A sibling of the evaluation stage (benchmark/run/evaluate.py): the same trained model, the same test
samples, encoded by the same seeded generator (so the float accuracy here is eval.json's), run on the
CPU (the other libraries step CPU tensors). A method with a `fold_for_inference` hook is folded first
(weights computed at run time become plain weights; outputs unchanged).

deploy.json (every number measured here, none copied from elsewhere):

    schema, dataset, profile, method, seed, T, test_samples
    portable     a table cell: "no: <refusal codes>", or "exact (<measured>)" or "approximate (<what>;
                  <measured>)", <what> the approximations' summaries (nir_export.APPROXIMATED) and
                  <measured> "agreement: NIR semantics in the harness 84.4 %, snntorch 84.4 %, norse
                  42.9 % without act_output": each prediction agreement with the harness's own network,
                  that of its network with the graph's semantics first (approximate graphs), then each
                  library that ran the graph (the nodes it built no module for named), and "no library
                  ran it" when none did
    export       {exportable: true (exact) | "approximate" (model.nir written with approximations) | false
                  (refused), file ("model.nir" or null), dt_s, input_flattened, nodes: [{node, nir, layer}],
                  reasons: [{layer, module, code, detail}] (refusals), reason_codes: sorted distinct codes,
                  approximations: [{layer, module, code, detail}] (detail: the harness's equation and NIR's;
                  listed also when refused), approximation_codes: sorted distinct codes, threshold_test,
                  nir_version}
    roundtrip    null when not exportable, else {samples, harness_accuracy, harness_nir_semantics (an
                  approximate graph: {accuracy, prediction_agreement} of the harness's network with every
                  approximation applied; else null), libraries: {name: {version,
                  notes, status: "ok", accuracy, prediction_agreement, exact, first_divergence
                  ({layer, node, step} or null), layers: [{layer, node, nir, compared, exact,
                  spike_count_correlation, mismatched, spikes_per_sample, library_spikes_per_sample
                  (spiking nodes) | max_abs_diff (other nodes)}]} | {version, notes, status: "failed",
                  stage, error}}}
    fixed_point  {membrane_bits, conventions, calibration_samples,
                  fp32: {accuracy, tier1_pj, cost_model, acs, macs, spikes_per_sample},
                  int8 / int4: {weight_bits, accuracy, agreement_with_fp32, tier1_pj, cost_model
                  ("int8-45nm"), tier1_pj_fp32_model, acs, macs, spikes_per_sample,
                  layers: [{layer, weight_scale} | {layer, membrane, membrane_step, range, saturated}]}}
    provenance   as every record's
"""

from __future__ import annotations

from typing import Any, Iterable

import nir
import torch
from torch import Tensor

from benchmark.contract.io import write_json
from benchmark.contract.provenance import provenance
from benchmark.deploy.fixed_point import (MEMBRANE_BITS, fixed_point_method, run_counted, saturation)
from benchmark.deploy.nir_export import APPROXIMATED, DT, THRESHOLD_TEST, Export, export_network, nir_semantics
from benchmark.deploy.roundtrip import LIBRARIES, roundtrip
from benchmark.metrics.energy import tier1_energy
from benchmark.run.config import RunSpec
from benchmark.run.inputs import input_format
from benchmark.run.runtime import batches, load_for_evaluation, seed_for

SCHEMA = 2  # 2: approximate exports (export.exportable "approximate", approximations, portable)
WEIGHT_BITS = (8, 4)
FLOAT_COST_MODEL, FIXED_COST_MODEL = "fp32-45nm", "int8-45nm"
FIXED_POINT_CONVENTIONS = (
    "weights: per-layer symmetric, s = max|W|/(2^(k-1)-1), round half away from zero, every plain Linear/Conv2d; "
    "biases as trained, added to the membrane. membranes: 16-bit two's complement per neuron layer, step "
    "2^(ceil(log2 m)-15) with m the largest |membrane| (or |input current| for input-only layers) on the "
    "calibration batch and at least the threshold; saturating. exact: every membrane value of the layer is on "
    "its grid (snn.engine.LIF, snntorch.Leaky, single-spike IF, Integrator); input-only: the layer's input "
    "current is on the grid, its internal state is float. leak beta rounded to 15 fraction bits. energy: tier 1, "
    "fp32-45nm for the float network, int8-45nm for both fixed-point ones (no int4 table: an upper bound for int4), "
    "each on its own op counts.")


def _encoded(method, samples: Tensor, fmt, batch_size: int, seed: int) -> Iterable[Tensor]:
    """The test samples encoded batch by batch, drawing from a generator seeded as evaluate's."""
    generator = torch.Generator().manual_seed(seed)
    return (fmt.encode(method, x, generator) for x in batches(samples, batch_size, fmt))


def _priced(counts, cost_model: str) -> dict[str, Any]:
    return {"tier1_pj": tier1_energy(counts, cost_model)["tier1_pj"], "cost_model": cost_model,
            "acs": counts.totals["acs"], "macs": counts.totals["macs"], "spikes_per_sample": counts.spikes_per_sample}


def fixed_point_section(method, samples: Tensor, labels: Tensor, fmt, batch_size: int, seed: int,
                        calibration: Tensor) -> dict[str, Any]:
    """fp32 and every k of WEIGHT_BITS: accuracy, agreement with fp32, tier-1 energy, per-layer formats."""
    semantics = fmt.semantics(method)
    float_predictions, counts = run_counted(method, _encoded(method, samples, fmt, batch_size, seed), semantics)
    section: dict[str, Any] = {
        "membrane_bits": MEMBRANE_BITS, "conventions": FIXED_POINT_CONVENTIONS,
        "calibration_samples": int(calibration.shape[1]),
        "fp32": {"accuracy": float((float_predictions == labels).double().mean()), **_priced(counts, FLOAT_COST_MODEL)},
    }
    for bits in WEIGHT_BITS:
        fixed, layers = fixed_point_method(method, bits, calibration)
        predictions, fixed_counts = run_counted(fixed, _encoded(fixed, samples, fmt, batch_size, seed), semantics)
        clamped = saturation(fixed)
        for row in layers:
            if "membrane" in row:
                row["saturated"] = clamped.get(row["layer"], 0.0)
        section[f"int{bits}"] = {
            "weight_bits": bits,
            "accuracy": float((predictions == labels).double().mean()),
            "agreement_with_fp32": float((predictions == float_predictions).double().mean()),
            **_priced(fixed_counts, FIXED_COST_MODEL),
            "tier1_pj_fp32_model": tier1_energy(fixed_counts, FLOAT_COST_MODEL)["tier1_pj"],
            "layers": layers,
        }
    return section


def run_deploy(spec: RunSpec, progress: bool = True) -> dict[str, Any]:
    """The deploy stage of `spec` (module docstring); returns the deploy.json record. `progress` is
    accepted for the CLI's uniformity (the stage prints nothing)."""
    method, data, device, samples, labels = load_for_evaluation(spec)
    fold = getattr(method, "fold_for_inference", None)
    if callable(fold):
        fold()
    method.network.to("cpu").eval()
    fmt = input_format(data)
    batch_size = spec.profile.eval_batch_size
    seed = seed_for(spec.seed, 0, stream=3000)
    with torch.no_grad():
        probe = fmt.encode(method, fmt.to_inputs(samples[:2]), torch.Generator().manual_seed(0))
        export = export_network(method.network, probe)
    nir_path = spec.run_dir / "model.nir"
    nir_path.unlink(missing_ok=True)  # a graph from an earlier, exportable version of the run must not remain
    roundtrip_record = None
    if export.exportable:
        nir.write(nir_path, export.graph)
        graph = nir.read(nir_path)  # the round trip starts from the file, as another tool would
        stated = None if export.exact else nir_semantics(method.network, export)
        roundtrip_record = roundtrip(method, graph, export.nodes, _encoded(method, samples, fmt, batch_size, seed),
                                     labels, LIBRARIES, stated)
    calibration_inputs = fmt.to_inputs(data.train_images[:spec.profile.batch_size])
    with torch.no_grad():
        calibration = fmt.encode(method, calibration_inputs, torch.Generator().manual_seed(seed_for(spec.seed, 0, 3001)))
    record = {
        "schema": SCHEMA,
        "dataset": spec.dataset,
        "profile": spec.profile_name,
        "method": spec.method,
        "seed": spec.seed,
        "T": method.T,
        "test_samples": len(labels),
        "portable": portable(export, roundtrip_record),
        "export": {
            "exportable": export.exact or ("approximate" if export.exportable else False),
            "file": nir_path.name if export.exportable else None,
            "dt_s": DT,
            "input_flattened": bool(export.graph.metadata["input_flattened"]) if export.exportable else None,
            "nodes": export.nodes,
            "reasons": [reason.to_dict() for reason in export.reasons],
            "reason_codes": sorted({reason.code for reason in export.reasons}),
            "approximations": [reason.to_dict() for reason in export.approximations],
            "approximation_codes": sorted({reason.code for reason in export.approximations}),
            "threshold_test": THRESHOLD_TEST,
            "nir_version": _version("nir"),
        },
        "roundtrip": roundtrip_record,
        "fixed_point": fixed_point_section(method, samples, labels, fmt, batch_size, seed, calibration),
        "provenance": provenance(torch.device("cpu"), data.sha256,
                                 {"hyperparameters": method.config.model_dump(), "arch": spec.arch.model_dump(),
                                  "profile": spec.profile_name}),
    }
    write_json(spec.run_dir / "deploy.json", record)
    return record


def portable(export: Export, roundtrip_record: dict | None) -> str:
    """deploy.json's `portable` (module docstring): the export's kind, what it approximates, and the
    measured prediction agreement with the harness's own network."""
    if not export.exportable:
        return "no: " + ", ".join(sorted({reason.code for reason in export.reasons}))
    measured = []
    stated = roundtrip_record["harness_nir_semantics"]
    if stated is not None:
        measured.append(f"NIR semantics in the harness {100 * stated['prediction_agreement']:.1f} %")
    ran = {name: entry for name, entry in roundtrip_record["libraries"].items() if entry["status"] == "ok"}
    for name, entry in ran.items():
        dropped = [row["node"] for row in entry["layers"] if not row["compared"]]  # its output skips these
        measured.append(f"{name} {100 * entry['prediction_agreement']:.1f} %"
                        + (f" without {', '.join(dropped)}" if dropped else ""))
    parts = []
    if not export.exact:
        codes = dict.fromkeys(reason.code for reason in export.approximations)  # in order, once each
        parts.append(", ".join(APPROXIMATED[code].summary for code in codes))
    if measured:
        parts.append("agreement: " + ", ".join(measured))
    if not ran:
        parts.append("no library ran it")
    return f"{'exact' if export.exact else 'approximate'} ({'; '.join(parts)})"


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"
