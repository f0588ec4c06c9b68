"""Gaussian-noise severity sweeps: every trained run of a board under x + N(0, σ²) of growing σ, on the
whole test set and at every seed (the robustness claim of the latency framework, METHODS.md §9).

For sweep NAME of params.yaml `severity:` (dataset D, noise levels σ_1 < … < σ_L) and each run r of D's
board (every method of `run.methods` and `run.conversions`, or the sweep's `methods`, at every seed of
`run.seeds`), on the first `test_samples` test images x_i in [0, 1] (all of them when omitted):

    x̃_i(σ) = clip(x_i + σ·z_i, 0, 1),   z_i ~ N(0, I) drawn once per sample from its own generator,
             seeded by (the profile's corruption_seed, i): the same z_i at every σ and for every run
             (common random numbers: two curves differ by the model and σ, never by the draw)

    A_r(σ)   top-1 accuracy of r on x̃(σ),  A_r(0) on the clean images
    mean     (1/L) Σ_σ A_r(σ): the mean corruption accuracy the claims table tests

The board's robustness stage uses CIFAR-10-C's levels (σ ≤ 0.10), which barely move Fashion-MNIST
accuracy, on its first `robustness_samples` test images; a sweep names its own σ and uses the whole
test set. Each run's per-sample correctness at every σ is kept in the records' `samples` layout
(benchmark.results.samples: `robust_correct` {"gaussian_noise@<level>": bits}), so the rows are ranked
with the paired bootstrap over seeds and samples (benchmark.results.comparisons, Holm-corrected) and the
claims table reads them (a claim side's `severity: NAME`).

`spikecode severity NAME` keeps one file per run, runs/severity/NAME/<dataset>/<method>/<seed>.json (an
interrupted sweep resumes; a run is evaluated again only when its model file or the sweep changed), and
writes reports/severity/NAME/results.json, drawn there as table.md and accuracy_vs_sigma.png
(benchmark.render.severity).
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from benchmark.contract.errors import ConfigError, SpikeCodeError
from benchmark.contract.io import pack_bits, read_json, write_json
from benchmark.contract.provenance import provenance
from benchmark.data.corruptions import sample_seed
from benchmark.data.prepared import to_unit_float
from benchmark.render.severity import write_severity_report
from benchmark.results import samples as per_sample
from benchmark.results.aggregate import mean_std_ci, row_label
from benchmark.results.comparisons import compare
from benchmark.results.summary import json_safe
from benchmark.run.config import RUNS_DIR, Params, RunSpec, SeveritySweep, resolve_run
from benchmark.run.inputs import input_format
from benchmark.run.paths import REPORTS_DIR
from benchmark.run.robustness import CorruptedSet, Corruptions, evaluate_corrupted
from benchmark.run.runtime import load_for_evaluation, model_file

CORRUPTION = "gaussian_noise"
# sample_seed's corruption-id slot of the noise draws: apart from the corruptions' ids (1..999) and the
# robustness stage's encoder streams (1000, 2000), so no draw repeats another stage's.
NOISE_STREAM = 3000
RESULTS_FILE = "results.json"


def board_runs(params: Params, sweep: SeveritySweep) -> list[tuple[str, int]]:
    """(method, seed) of every board run the sweep evaluates, in board order."""
    if sweep.dataset not in params.run.datasets:
        raise ConfigError(f"severity sweep on {sweep.dataset!r}: it evaluates a board's trained runs, and "
                          f"run.datasets ({', '.join(params.run.datasets)}) has no such board; name one of them")
    board = [*params.run.methods, *(conversion.method for conversion in params.run.conversions)]
    methods = sweep.methods or board
    unknown = [method for method in methods if method not in board]
    if unknown:
        raise ConfigError(f"severity sweep methods {', '.join(unknown)} are not on the {sweep.dataset} board "
                          f"(run.methods and run.conversions: {', '.join(board)})")
    return [(method, seed) for method in methods for seed in params.run.seeds]


def noise_draws(count: int, shape: tuple[int, ...], seed: int) -> Tensor:
    """z_i ~ N(0, I) of `shape`, float64, one generator per sample i = 0..count-1 (module docstring)."""
    return torch.stack([torch.randn(shape, dtype=torch.float64,
                                    generator=torch.Generator().manual_seed(sample_seed(seed, NOISE_STREAM, 0, i)))
                        for i in range(count)])


def noisy_images(images_uint8: Tensor, noise: Tensor, sigma: float):
    """The inputs of samples start..stop-1 at noise level σ: clip(x + σ·z, 0, 1), float32."""
    def inputs(start: int, stop: int) -> Tensor:
        x = to_unit_float(images_uint8[start:stop].cpu()).double()
        return (x + sigma * noise[start:stop]).clamp(0, 1).float()
    return inputs


def run_severity(params: Params, name: str, profile: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Runs sweep `name` over the board's trained runs and writes reports/severity/NAME/results.json
    (module docstring); returns its content."""
    if name not in params.severity:
        raise ConfigError(f"severity sweep {name!r} is not defined under `severity:` in params.yaml "
                          f"(defined: {', '.join(params.severity) or 'none'})")
    sweep = params.severity[name]
    runs = board_runs(params, sweep)
    specs = [resolve_run(params, sweep.dataset, method, seed, profile) for method, seed in runs]
    keys = [_key(spec, sweep) for spec in specs]  # every run's model must exist before any is evaluated
    noise: Tensor | None = None
    records = []
    for spec, key in tqdm(zip(specs, keys), total=len(specs), desc=f"severity {name}", unit="run",
                          disable=not progress):
        cache = RUNS_DIR / "severity" / name / spec.dataset / spec.method / f"{spec.seed}.json"
        cached = read_json(cache) if cache.exists() else {}
        if cached.get("key") == key:
            records.append(cached)
            continue
        method, data, device, samples, labels = load_for_evaluation(spec)
        if data.frames is not None:
            raise ConfigError(f"severity sweep {name}: {sweep.dataset} is an event dataset; Gaussian pixel noise "
                              "is defined on images (the event corruptions are the robustness stage's)")
        count = min(sweep.test_samples or len(labels), len(labels))
        if noise is None:
            noise = noise_draws(count, tuple(samples.shape[1:]), spec.profile.corruption_seed)
        record = {**_sweep_run(spec, sweep, method, data, device, samples[:count], labels[:count], noise, progress),
                  "key": key}
        write_json(cache, record)
        records.append(record)
    results = json_safe(summarize(name, sweep, records))
    folder = REPORTS_DIR / "severity" / name
    write_json(folder / RESULTS_FILE, results)
    write_severity_report(folder, results)
    return results


def _key(spec: RunSpec, sweep: SeveritySweep) -> str:
    """What a run's cached result depends on: its model file and the sweep's levels and samples."""
    path = model_file(spec.run_dir)
    if not path.exists():
        raise SpikeCodeError(f"{path} not found: the severity sweep evaluates the board's trained runs; run "
                             f"`dvc repro` (or `spikecode train --dataset {spec.dataset} --method {spec.method} "
                             f"--seed {spec.seed}`) first")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{digest[:16]}:{sweep.sigmas}:{sweep.test_samples}:{spec.profile.corruption_seed}"


def _sweep_run(spec: RunSpec, sweep: SeveritySweep, method, data, device, samples: Tensor, labels: Tensor,
               noise: Tensor, progress: bool) -> dict[str, Any]:
    """One run's record: accuracy and decision step at σ = 0 and every level, and per-sample correctness."""
    fmt = input_format(data)
    sets = [CorruptedSet(CORRUPTION, level, noisy_images(samples, noise, sigma), labels, NOISE_STREAM)
            for level, sigma in enumerate(sweep.sigmas, start=1)]
    results = evaluate_corrupted(method, fmt, lambda start, stop: fmt.to_inputs(samples[start:stop].cpu()), labels,
                                 Corruptions({CORRUPTION: ("noise", "generated")}, sets), device=device,
                                 batch_size=spec.profile.eval_batch_size, seed=spec.profile.corruption_seed,
                                 progress=progress)
    entry = results.record["per_corruption"][CORRUPTION]
    settings = {"hyperparameters": method.config.model_dump(), "arch": spec.arch.model_dump(),
                "profile": spec.profile_name}
    return {"dataset": spec.dataset, "profile": spec.profile_name, "method": spec.method,
            "variant": method.variant(), "T": method.T, "seed": spec.seed, "run": str(spec.run_dir),
            "sigmas": list(sweep.sigmas), "clean_accuracy": results.record["clean_accuracy"],
            "accuracy": entry["accuracy"], "decision_step_mean": entry["decision_step_mean"],
            "mean_accuracy": results.record["mean_accuracy"],
            "samples": {"robust_n": len(labels),
                        "robust_correct": {key: pack_bits(flags) for key, flags in results.correct.items()}},
            "provenance": provenance(device, data.sha256, settings)}


def summarize(name: str, sweep: SeveritySweep, records: list[dict]) -> dict[str, Any]:
    """The sweep's rows — one per (method, variant, T), each statistic (mean, std, 95 % half-width) over
    seeds in percent — ranked with ties on the mean over σ by the paired bootstrap (Holm)."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        groups.setdefault((record["method"], record["variant"], record["T"]), []).append(record)
    rows = [_row(members) for members in groups.values()]
    compared = compare(rows, per_sample.robust_correct)
    for row, rank, top in zip(rows, compared["ranks"], compared["top"]):
        row.update(rank=rank, top=top)
        del row["records"]
    return {"name": name, "sweep": sweep.model_dump(), "corruption": CORRUPTION, "noise_stream": NOISE_STREAM,
            "rows": rows, "pairs": compared["pairs"], "records": records}


def _row(members: list[dict]) -> dict[str, Any]:
    first = members[0]
    levels = len(first["accuracy"])
    return {"label": row_label(first["method"], first["variant"]), "method": first["method"],
            "variant": first["variant"], "T": first["T"], "seeds": sorted(r["seed"] for r in members),
            "clean": mean_std_ci(100 * r["clean_accuracy"] for r in members),
            "accuracy": [mean_std_ci(100 * r["accuracy"][level] for r in members) for level in range(levels)],
            "mean": mean_std_ci(100 * r["mean_accuracy"] for r in members), "records": members}
