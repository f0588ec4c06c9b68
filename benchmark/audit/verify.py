"""`spikecode verify`: re-runs a recorded result from its provenance (params, seed, commit) and reports
whether its metrics are reproduced.

A target is a run folder (`runs/<dataset>/<method>/<seed>`, or a grid point's
`runs/grids/<grid>/<dataset>/<method>@<point>/<seed>`) or a record id of reports/leaderboard.json
(`fashion-mnist.quick.ann.default.T1.s0`; benchmark.results.summary.record_ids).

Before anything runs, the record's provenance must still describe this checkout, else an error says
what to do:
- params.yaml gives the run the settings it was made with: the recorded `params_hash` (hyperparameters,
  architecture, profile name) and, when the run's own train.json is here, its fingerprint (the
  profile's schedule and subsets, the split; benchmark.run.config.RunSpec.fingerprint);
- the prepared dataset has the recorded sha256;
- HEAD is the recorded commit (`allow_other_commit` compares anyway, and the report says so).

The re-run trains, evaluates and prices the run into a scratch folder (never runs/), under the thread
count of the record's profile (benchmark.run.numerics). A conversion method re-runs its source too
(trains it, then converts it) rather than converting the source model found in runs/: that model is
itself a result, and only the whole chain re-run from params, seed and commit shows the record is
reproducible.

Compared, recorded against re-run:
- the model's weights, tensor by tensor and bit for bit, when the record's model.pt is here (its run
  folder, or for a record id the run folder whose eval.json is that record);
- METRICS: accuracy, val_accuracy, the mean decision step, spikes and bits per sample, ACs and MACs
  per sample, the tier-1 and tier-2 energies, and the name of the energy's cost model.

The rule: on the same kind of machine (the provenance's `device`, that is the GPU or the CPU model and
thread count, its `numerics` and the torch version all equal) every value must be equal, the weights
bit for bit: the harness pins its numerics so that the same commit, params and seed give identical
results there. Elsewhere the rounding differs (another BLAS code path, summation order, a GPU's
kernels) and training amplifies it, so the re-run is a neighbouring network, not the same one: the
weights are reported but not judged, accuracies must lie within `Tolerance.accuracy_pp` percentage
points of the record and the other numbers within `Tolerance.relative` of it.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import torch

from benchmark.contract.errors import ConfigError, DataError, SpikeCodeError
from benchmark.contract.io import read_json
from benchmark.contract.provenance import git_state, params_hash
from benchmark.contract.registry import get_method, parse_config
from benchmark.data.prepared import Prepared, load_prepared
from benchmark.metrics.energy import run_energy
from benchmark.results.records import EVAL_SCHEMA, PROVENANCE_KEYS, SCHEMA, ReportError
from benchmark.run.config import Params, RunSpec, resolve_run
from benchmark.run.evaluate import evaluate
from benchmark.run.numerics import pin
from benchmark.run.paths import REPORTS_DIR, RUNS_DIR
from benchmark.run.runtime import model_file
from benchmark.run.train import source_of, train

LEADERBOARD = REPORTS_DIR / "leaderboard.json"

# What is compared: a name, and where the value lies in a record (benchmark.results.records).
ACCURACIES = {"accuracy": ("accuracy",), "val_accuracy": ("val_accuracy",)}
MEASURES = {"decision_step": ("decision_step", "mean"), "spikes_per_sample": ("spikes_per_sample",),
            "bits_per_sample": ("bits_per_sample",), "ops.acs": ("ops", "acs"), "ops.macs": ("ops", "macs"),
            "energy.tier1_pj": ("energy", "tier1_pj"), "energy.tier2_pj": ("energy", "tier2_pj")}
LABELS = {"energy.cost_model": ("energy", "cost_model")}  # equal on any machine: a setting, not a measurement
METRICS = {**ACCURACIES, **MEASURES, **LABELS}


@dataclass(frozen=True)
class Tolerance:
    """How far a re-run on another kind of machine may land from the record. A network retrained under
    other rounding is a neighbour of the recorded one and classifies a few borderline test samples
    differently; 1 pp is what this benchmark already takes for "the same accuracy" (the resolution
    sweep's `tolerance_pp`). Spikes, ops and energies follow the firing, which such a neighbour moves
    a little: they may differ by 2 % of the recorded value."""

    accuracy_pp: float = 1.0
    relative: float = 0.02


@dataclass(frozen=True)
class Comparison:
    name: str
    recorded: Any
    rerun: Any
    rule: str
    matches: bool


@dataclass(frozen=True)
class WeightsCheck:
    identical: bool
    detail: str


@dataclass(frozen=True)
class VerifyResult:
    target: str
    run: str  # <dataset>/<run folder>/<seed> and profile, for the report's first line
    recorded_on: str
    rerun_on: str
    machine_differences: tuple[str, ...]  # what differs between the two machines' kinds; empty: the same kind
    notes: tuple[str, ...]
    weights: WeightsCheck | None  # None: the record's model.pt is not here
    metrics: tuple[Comparison, ...]

    @property
    def matches(self) -> bool:
        # weights are judged on the same kind of machine only (module docstring)
        weights_ok = self.weights is None or self.weights.identical or bool(self.machine_differences)
        return weights_ok and all(row.matches for row in self.metrics)

    def report(self) -> str:
        rule = ("the same kind of machine: every value must be equal" if not self.machine_differences else
                f"another kind of machine ({', '.join(self.machine_differences)} differ): within tolerance")
        lines = [f"verify {self.target}: {self.run}", f"  recorded on  {self.recorded_on}",
                 f"  re-run on    {self.rerun_on}", f"               {rule}"]
        lines += [f"  note: {note}" for note in self.notes]
        lines.append(f"  weights      {self._weights_line()}")
        lines.append(f"  {'metric':<20} {'recorded':>22} {'re-run':>22}  {'rule':<8} result")
        lines += [f"  {row.name:<20} {_shown(row.recorded):>22} {_shown(row.rerun):>22}  {row.rule:<8} "
                  f"{'match' if row.matches else 'MISMATCH'}" for row in self.metrics]
        lines.append(f"  verdict: {'matches' if self.matches else 'MISMATCH'}")
        return "\n".join(lines)

    def _weights_line(self) -> str:
        if self.weights is None:
            return "not compared: the record's model.pt is not here"
        judged = "" if not self.machine_differences else " (not judged on another kind of machine)"
        return self.weights.detail + judged


def verify(target: str, params: Params, tolerance: Tolerance = Tolerance(), *, allow_other_commit: bool = False,
           keep: Path | None = None, progress: bool = True) -> VerifyResult:
    """Re-runs `target` (a run folder or a record id) from its provenance and compares it (module docstring).
    `keep`: the folder the re-run is written to and left in (default: a temporary folder, deleted)."""
    record, run_dir, spec = recorded_run(target, params)
    check_settings(record, run_dir, spec, params)
    notes = check_commit(record["provenance"], allow_other_commit)
    data = checked_dataset(record, spec)
    run = f"{spec.dataset}/{spec.label or spec.method}/{spec.seed}, profile {spec.profile_name}"
    with scratch(keep) as root:
        print(f"verify {target}: re-running {run} under {root}", flush=True)
        rerun_dir = rerun(params, spec, data, root, progress)
        rerun_record = read_run_record(rerun_dir)
        weights = weights_check(run_dir, rerun_dir)
    recorded_kind, rerun_kind = machine_kind(record["provenance"]), machine_kind(rerun_record["provenance"])
    differences = tuple(key for key in recorded_kind if recorded_kind[key] != rerun_kind[key])
    return VerifyResult(
        target=target, run=run,
        recorded_on=_described(record["provenance"]), rerun_on=_described(rerun_record["provenance"]),
        machine_differences=differences, notes=tuple(notes), weights=weights,
        metrics=tuple(compare_metrics(record, rerun_record, exact=not differences, tolerance=tolerance)))


# --- the record and its run ---------------------------------------------------------------------------


def recorded_run(target: str, params: Params) -> tuple[dict, Path | None, RunSpec]:
    """(the record, the run folder holding its files or None, the run as params.yaml now specifies it)."""
    folder = Path(target)
    if folder.is_dir():
        record = read_run_record(folder)
        return record, folder, _folder_spec(params, record, folder)
    record = leaderboard_record(target)
    folder = RUNS_DIR / record["dataset"] / record["method"] / str(record["seed"])
    own = folder / "eval.json"  # the run folder holds this record's files only if its eval.json is the record's
    is_own = own.exists() and read_json(own).get("provenance") == record["provenance"]
    spec = resolve_run(params, record["dataset"], record["method"], record["seed"], record["profile"])
    return record, folder if is_own else None, spec


def _folder_spec(params: Params, record: dict, folder: Path) -> RunSpec:
    """A leaderboard run's spec, or a grid point's (its folder is `<method>@<point>` under runs/grids/<grid>)."""
    folder = folder.resolve()  # its parents name the grid and the point, whatever path was given
    if "@" not in folder.parent.name:
        return resolve_run(params, record["dataset"], record["method"], record["seed"], record["profile"])
    from benchmark.sweeps.grid import grid_points  # imported here: it brings the plotting, which only grids need

    grid = folder.parents[2].name
    for _, spec in grid_points(params, grid, record["profile"]):
        if (spec.label, spec.seed) == (folder.parent.name, record["seed"]):
            return spec
    raise ConfigError(f"{folder} is not a point of grid {grid!r} in params.yaml: the grid changed since the run was "
                      "made; check out the commit that made it and verify there")


def read_run_record(run_dir: Path) -> dict:
    """The part of a run folder's record that verify compares: eval.json with ops.json's counts and energy.json."""
    for name, command in (("eval.json", "evaluate"), ("ops.json", "evaluate"), ("energy.json", "energy")):
        if not (run_dir / name).exists():
            raise ReportError(f"{run_dir} has no {name}: not a finished run; run `spikecode {command}` for it first")
    evaluation = read_json(run_dir / "eval.json")
    if "skipped" in evaluation:
        raise DataError(f"{run_dir} was skipped ({evaluation['skipped']}): there is no result to verify")
    if evaluation.get("schema") != EVAL_SCHEMA:
        raise ReportError(f"{run_dir / 'eval.json'} has schema {evaluation.get('schema')!r}, this version reads "
                          f"{EVAL_SCHEMA}: it was made by an older version; verify it at its commit")
    ops = read_json(run_dir / "ops.json")
    return {**evaluation, "spikes_per_sample": ops["spikes_per_sample"], "bits_per_sample": ops["bits_per_sample"],
            "ops": ops["ops"], "energy": read_json(run_dir / "energy.json")}


def leaderboard_record(record_id: str) -> dict:
    if not LEADERBOARD.exists():
        raise SpikeCodeError(f"{record_id!r} is not a run folder, and there is no {LEADERBOARD} to find it in as a "
                             "record id; give a run folder (runs/<dataset>/<method>/<seed>) or run `spikecode report`")
    board = read_json(LEADERBOARD)
    if board.get("schema") != SCHEMA:
        raise ReportError(f"{LEADERBOARD} has schema {board.get('schema')!r}, this version reads {SCHEMA}; rebuild it "
                          "with `spikecode report`, or verify its records at the commit that made them")
    ids = board["summary"]["record_ids"]
    if record_id not in ids:
        raise SpikeCodeError(f"{record_id!r} is neither a run folder nor a record id of {LEADERBOARD} (its ids look "
                             f"like {ids[0] if ids else 'dataset.profile.method.variant.T.seed'})")
    return board["records"][ids.index(record_id)]


# --- checks before the re-run ---------------------------------------------------------------------------


def check_settings(record: dict, run_dir: Path | None, spec: RunSpec, params: Params) -> None:
    """A ConfigError unless params.yaml still gives the run the settings it was recorded with."""
    missing = [key for key in PROVENANCE_KEYS if key not in record["provenance"]]
    if missing:
        raise ReportError(f"the record's provenance lacks {missing}: it does not say how to re-run it")
    commit = record["provenance"]["git_commit"]
    config = parse_config(get_method(spec.method), spec.hyperparameters, f"methods.{spec.method}").model_dump()
    # the settings benchmark.run.evaluate hashes into the record's provenance
    current = params_hash({"hyperparameters": config, "arch": spec.arch.model_dump(), "profile": spec.profile_name})
    if current != record["provenance"]["params_hash"]:
        raise ConfigError(f"params.yaml changed since this record was made: {_changed(record, config, spec)}. "
                          f"Check out its commit {commit} (or restore those settings) and verify again")
    if run_dir is not None and (run_dir / "train.json").exists():
        _check_fingerprints(read_json(run_dir / "train.json"), spec, source_of(params, spec), commit)


def _check_fingerprints(trained: dict, spec: RunSpec, source: RunSpec | None, commit: str) -> None:
    """A ConfigError unless the run, and the source a conversion converted, have the fingerprints they were
    trained under (the settings params_hash leaves out: the profile's schedule, the split)."""
    source_fingerprint = (trained.get("history") or [{}])[0].get("source_fingerprint")
    recorded = ((spec, trained.get("fingerprint")), (source, source_fingerprint))
    stale = [run.label or run.method for run, fingerprint in recorded
             if run is not None and fingerprint != run.fingerprint()]
    if stale:
        raise ConfigError(f"params.yaml changed the settings of {' and '.join(stale)} since this run was trained: "
                          f"profiles.{spec.profile_name} (epochs, batch sizes, subsets, threads), the hyperparameters "
                          f"or datasets.{spec.dataset}'s split. Check out its commit {commit} (or restore those "
                          "settings) and verify again")


def _changed(record: dict, config: dict, spec: RunSpec) -> str:
    """The hyperparameters of `spec` that differ from the record's, else the other hashed settings."""
    config = json.loads(json.dumps(config, default=str))  # as the record stores it: tuples become lists
    recorded = record["hyperparameters"]
    keys = sorted(key for key in {*config, *recorded} if config.get(key) != recorded.get(key))
    if keys:
        return ", ".join(f"{spec.method}'s {key} is {config.get(key)!r}, recorded {recorded.get(key)!r}"
                         for key in keys)
    return (f"the architecture ({spec.arch_name} now, recorded {record.get('arch')}) or the profile's name "
            f"({spec.profile_name}) differs")


def check_commit(provenance: dict, allow_other_commit: bool) -> list[str]:
    """Notes for the report on the code that made the record and the code that re-runs it; an error when
    they are different commits, unless allowed."""
    commit, dirty = git_state()
    recorded = provenance["git_commit"]
    notes = []
    if recorded != commit:
        if not allow_other_commit:
            raise SpikeCodeError(f"this record was made at commit {recorded}, HEAD is {commit}: the code changed, and "
                                 f"the results may differ. Check out {recorded} and verify there, or pass "
                                 "--allow-other-commit to compare anyway")
        notes.append(f"re-run at commit {commit}, recorded at {recorded}: a difference may come from the code")
    if recorded == "unknown":
        notes.append("the record names no commit (it was made outside a git checkout)")
    if provenance["git_dirty"]:
        notes.append(f"the record was made from uncommitted changes to {recorded}: its commit does not pin the code")
    if dirty:
        notes.append("this checkout has uncommitted changes to the source")
    return notes


def checked_dataset(record: dict, spec: RunSpec) -> Prepared:
    data = load_prepared(spec.dataset)
    recorded = record["provenance"]["dataset_sha256"]
    if data.sha256 != recorded:
        raise DataError(f"datasets/{spec.dataset}/prepared.pt has sha256 {data.sha256}, the record was made from "
                        f"{recorded}: prepare {spec.dataset} as its commit does (`spikecode prepare {spec.dataset}` "
                        "there), or verify on the machine that holds its data")
    return data


# --- the re-run ------------------------------------------------------------------------------------------


@contextmanager
def scratch(keep: Path | None) -> Iterator[Path]:
    """`keep` (created), or a temporary folder deleted afterwards; never inside runs/."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="spikecode-verify-") as folder:
            yield Path(folder)
        return
    runs = RUNS_DIR.resolve()
    if keep.resolve() == runs or runs in keep.resolve().parents:
        raise SpikeCodeError(f"--keep {keep} lies in runs/, where the re-run would overwrite results; choose "
                             "another folder")
    keep.mkdir(parents=True, exist_ok=True)
    yield keep


def rerun(params: Params, spec: RunSpec, data: Prepared, root: Path, progress: bool) -> Path:
    """Trains `spec` (a conversion: trains its source, then converts it), evaluates and prices it under
    `root`, pinned to its profile's threads; returns the re-run's folder."""
    pin(spec.profile.threads)  # the record's profile's, which may not be params.yaml's active one the CLI pinned
    spec = replace(spec, root=root)
    source = source_of(params, spec)
    if source is not None:
        source = replace(source, root=root / "sources")
        train(source, progress, data=data)
    train(spec, progress, source=source, data=data)
    evaluate(spec, progress)
    run_energy(spec.run_dir, params.energy.cost_model)
    return spec.run_dir


# --- comparison --------------------------------------------------------------------------------------------


def machine_kind(provenance: dict) -> dict[str, Any]:
    """What decides bit-identical results (benchmark.run.numerics): the device (the GPU, or the CPU model
    and threads), the numeric settings and torch."""
    return {"device": provenance["device"], "numerics": provenance["numerics"],
            "torch": provenance["versions"].get("torch")}


def _described(provenance: dict) -> str:
    kind = machine_kind(provenance)
    numerics = ", ".join(f"{key} {value}" for key, value in kind["numerics"].items())
    return f"{kind['device']}; torch {kind['torch']}; {numerics}; commit {provenance['git_commit']}"


def compare_metrics(recorded: dict, rerun: dict, exact: bool, tolerance: Tolerance) -> list[Comparison]:
    rows = []
    for name, path in METRICS.items():
        old, new = _at(recorded, path), _at(rerun, path)
        if exact or name in LABELS:
            rows.append(Comparison(name, old, new, "equal", old == new))
        elif name in ACCURACIES:
            rows.append(Comparison(name, old, new, f"±{tolerance.accuracy_pp:g} pp",
                                   abs(old - new) * 100 <= tolerance.accuracy_pp))
        else:
            rows.append(Comparison(name, old, new, f"±{tolerance.relative:.0%}",
                                   abs(old - new) <= tolerance.relative * max(abs(old), abs(new))))
    return rows


def _at(record: dict, path: tuple[str, ...]) -> Any:
    for key in path:
        record = record[key]
    return record


def weights_check(run_dir: Path | None, rerun_dir: Path) -> WeightsCheck | None:
    """The record's weights against the re-run's; None when the record's model.pt is not here."""
    if run_dir is None or not model_file(run_dir).exists():
        return None
    return compare_weights(model_file(run_dir), model_file(rerun_dir))


def compare_weights(recorded: Path, rerun: Path) -> WeightsCheck:
    """The two model files' weights (their state dicts), tensor by tensor, bit for bit."""
    old, new = (torch.load(path, map_location="cpu", weights_only=False)["state_dict"] for path in (recorded, rerun))
    if list(old) != list(new):
        return WeightsCheck(False, f"different tensors: recorded {list(old)}, re-run {list(new)}")
    differing = [name for name in old if not _same_bits(old[name], new[name])]
    if not differing:
        return WeightsCheck(True, f"identical, bit for bit ({len(old)} tensors)")
    first, second = old[differing[0]], new[differing[0]]
    gap = (f"max |difference| {(first.double() - second.double()).abs().max().item():.3g}"
           if first.shape == second.shape else f"shape {list(first.shape)}, re-run {list(second.shape)}")
    return WeightsCheck(False, f"{len(differing)} of {len(old)} tensors differ; first {differing[0]}: {gap}")


def _same_bits(first: torch.Tensor, second: torch.Tensor) -> bool:
    def as_bytes(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.detach().reshape(-1).contiguous().view(torch.uint8)

    same_layout = first.dtype == second.dtype and first.shape == second.shape
    return same_layout and torch.equal(as_bytes(first), as_bytes(second))


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)
