"""`params.yaml`, the single source of configuration, validated once at the boundary, and the run it resolves.

Layout (every key is checked; an unknown or ill-typed key is a ConfigError naming it):

    profile: quick                     which entry of `profiles` the run uses
    run: {datasets, methods, seeds}    what `dvc repro` runs (the DVC matrix); `events` {datasets,
                                       methods}: the event datasets' own matrix; `baseline`: the
                                       method every other is held against (relative corruption
                                       error, matched accuracy)
    profiles.<name>                    schedule and architectures of a profile, per-method overrides
    architectures.<name>               named networks (snn.arch.ArchSpec)
    datasets.<name>                    split settings; event datasets: `framing`, and `simulation` for a
                                       simulated one (benchmark.data.events); `methods`: per-method
                                       overrides on this dataset (e.g. T = framing.T)
    methods.<name>                     hyperparameters, validated by the method's own Config
    grids.<name>                       sweeps and ablations (benchmark.sweeps.grid); `grid_files`
                                       lists more YAML files of grids (probes, notes: not run by
                                       `dvc repro`)
    resolution.<name>                  temporal-resolution sweeps (benchmark.sweeps.resolution)
    severity.<name>                    Gaussian-noise severity sweeps over the board's trained runs
                                       (benchmark.sweeps.severity)
    energy                             the tier-1 cost model
    references                         paper figures, shown only as labelled reference rows
    claims                             the seed papers' claims and the test of each over the records
                                       (benchmark.results.claims computes the verdicts)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benchmark.contract.errors import ConfigError
from benchmark.data.events import Framing, simulation_parameters
from benchmark.data.registry import available_datasets
from benchmark.run.claims_spec import Claim, check_claims
from benchmark.run.paths import DATASETS_DIR, DEFAULT_PARAMS, RUNS_DIR  # noqa: F401  (re-exported)
from snn.arch import ArchSpec

ProbeName = Literal["layers", "reconstruction"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Conversion(_Strict):
    method: str
    source: str


class EventMatrix(_Strict):
    datasets: list[str] = Field(default_factory=list, description="empty: no event data")
    methods: list[str] = Field(default_factory=list, description="trained methods that run on event frames")


class RunMatrix(_Strict):
    baseline: str = Field(description="the method every other is held against: the reference of the relative "
                                      "corruption error and of matched accuracy (METHODS.md §1)")
    datasets: list[str]
    methods: list[str] = Field(description="methods trained by the harness (families ann and direct)")
    conversions: list[Conversion] = Field(default_factory=list, description="conversion methods and their sources")
    seeds: list[int] = Field(min_length=1)
    events: EventMatrix = Field(default_factory=EventMatrix, description="event datasets and the methods run on them")
    grids: list[str] = Field(default_factory=list, description="grids (sweeps, ablations) that `dvc repro` runs")
    resolution: list[str] = Field(default_factory=list, description="resolution sweeps that `dvc repro` runs")


class Profile(_Strict):
    description: str = ""
    epochs: int = Field(ge=1, description="every trained method's epochs (the same budget for all)")
    batch_size: int = Field(ge=1)
    threads: int = Field(ge=1, description="CPU threads of every run (fixed: the numerics depend on it; "
                                           "benchmark.run.numerics)")
    budget_exceptions: dict[str, str] = Field(default_factory=dict, description="method -> the reason it trains "
                                              "with other epochs or batch size than the profile's (shown in the report)")
    eval_batch_size: int = Field(1000, ge=1)
    train_subset: int | None = Field(None, ge=1, description="first N training samples (smoke tests)")
    test_subset: int | None = Field(None, ge=1)
    calibration_batches: int = Field(10, ge=1, description="training batches a conversion calibrates on")
    throughput_samples: int = Field(2000, ge=1)
    robustness_samples: int | None = Field(None, ge=1, description="first N test samples the corruption stage uses")
    corruption_seed: int = Field(0, description="one seed for every method, so all see the same corrupted images")
    arch: dict[str, str] = Field(description="dataset name (or 'default') -> architecture name")
    methods: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-method overrides")


class DatasetParams(_Strict):
    val_fraction: float = Field(0.1, ge=0, lt=1)
    split_seed: int = 0
    framing: Framing | None = Field(None, description="event datasets: how events become frames (benchmark.data.events)")
    simulation: Any = Field(None, description="simulated event datasets: the simulator's parameters, validated by "
                                              "the model its source names (the event camera's, "
                                              "benchmark.data.event_camera, for fashion-mnist-dvs)")
    methods: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-method overrides on this "
                                               "dataset, over the profile's (an event dataset's frames fix T)")


class EnergyParams(_Strict):
    cost_model: str | dict[str, Any] = "fp32-45nm"


class Grid(_Strict):
    """A sweep or ablation: every combination of `axes` values, over `fixed` hyperparameters. An axis
    `arch` sweeps architecture names (instead of the `arch` key)."""

    description: str = ""
    method: str
    dataset: str
    arch: str | None = Field(None, description="architecture name; the profile's when omitted")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    axes: dict[str, list[Any]] = Field(min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict)
    probes: list[ProbeName] = Field(default_factory=list, description="per-layer probes of every point and seed "
                                    "(benchmark.sweeps.probes): layers (firing rate, gradient norm), "
                                    "reconstruction (conversion methods)")

    @model_validator(mode="after")
    def _arch_once(self) -> "Grid":
        if "arch" in self.fixed or ("arch" in self.axes and self.arch is not None):
            raise ValueError("name the architecture once: the `arch` key, or an `arch` axis to sweep it "
                             "(never under `fixed`)")
        return self


class ResolutionSweep(_Strict):
    """Temporal-resolution invariance on an event dataset (benchmark.sweeps.resolution)."""

    description: str = ""
    dataset: str
    methods: list[str] = Field(min_length=1)
    factors: list[int] = Field([1, 2, 4], min_length=2, description="k: the model runs at Δt/k; must include 1")
    train_samples: int = Field(ge=1, description="first N samples of the prepared training split")
    val_samples: int = Field(1000, ge=1)
    test_samples: int = Field(ge=1)
    epochs: int = Field(ge=1)
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict, description="method -> hyperparameters at Δt, "
                                                 "over its params.yaml entry")
    seed: int = 0
    reference_seeds: list[int] = Field(default_factory=list, description="more seeds trained at Δt only: the "
                                       "spread that retraining alone causes")
    tolerance_pp: float = Field(1.0, gt=0, description="the invariance criterion, percentage points")

    @field_validator("factors")
    @classmethod
    def _includes_one(cls, factors: list[int]) -> list[int]:
        if 1 not in factors or any(k < 1 for k in factors) or len(set(factors)) != len(factors):
            raise ValueError(f"factors must be distinct integers >= 1 and include 1 (Δt itself), got {factors}")
        return sorted(factors)


class SeveritySweep(_Strict):
    """Every board run of a dataset under Gaussian noise of growing σ (benchmark.sweeps.severity)."""

    description: str = ""
    dataset: str
    sigmas: list[float] = Field(min_length=2, description="σ of x + N(0, σ²) on images in [0, 1] (then clipped)")
    test_samples: int | None = Field(None, ge=1, description="the first N test samples; the whole test set when "
                                     "omitted")
    methods: list[str] | None = Field(None, description="the board's methods to sweep; all of them when omitted")

    @field_validator("sigmas")
    @classmethod
    def _increasing(cls, sigmas: list[float]) -> list[float]:
        if any(sigma <= 0 for sigma in sigmas) or sorted(set(sigmas)) != sigmas:
            raise ValueError(f"sigmas must be positive, distinct and increasing, got {sigmas}")
        return sigmas


class Params(_Strict):
    profile: str
    run: RunMatrix
    profiles: dict[str, Profile]
    architectures: dict[str, ArchSpec]
    datasets: dict[str, DatasetParams]
    methods: dict[str, dict[str, Any]]
    grids: dict[str, Grid] = Field(default_factory=dict)
    grid_files: list[str] = Field(default_factory=list, description="YAML files of more grids, {name: grid}")
    resolution: dict[str, ResolutionSweep] = Field(default_factory=dict)
    severity: dict[str, SeveritySweep] = Field(default_factory=dict)
    energy: EnergyParams = EnergyParams()
    references: list[dict[str, Any]] = Field(default_factory=list)
    claims: list[Claim] = Field(default_factory=list)

    def active_profile(self, name: str | None = None) -> tuple[str, Profile]:
        name = name or self.profile
        if name not in self.profiles:
            raise ConfigError(f"profile {name!r} is not defined; params.yaml defines: {', '.join(self.profiles)}")
        return name, self.profiles[name]


def load_params(path: Path = DEFAULT_PARAMS) -> Params:
    if not path.exists():
        raise ConfigError(f"{path} not found; run from the repository root or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    try:
        params = Params(**(raw or {}))
    except ValidationError as error:
        raise ConfigError(f"{path}:\n  " + "\n  ".join(_describe(item) for item in error.errors())) from None
    params.active_profile()  # the selected profile must exist
    _check_budgets(path, params)
    if params.run.baseline not in params.methods:
        raise ConfigError(f"{path}: run.baseline is {params.run.baseline!r}, which `methods` does not define "
                          f"(defined: {', '.join(params.methods)}); name the method every other is held against")
    for dataset, entry in params.datasets.items():
        unknown = [name for name in entry.methods if name not in params.methods]
        if unknown:
            raise ConfigError(f"{path}: datasets.{dataset}.methods overrides {', '.join(unknown)}, which `methods` does "
                              f"not define (defined: {', '.join(params.methods)}); fix the name or add the method")
    params = params.model_copy(update={"grids": {**params.grids, **_grid_files(path, params)},
                                       "datasets": _simulations(path, params)})
    check_claims(path, params.claims, params.methods, params.grids, params.resolution, params.severity)
    return params


def _simulations(path: Path, params: Params) -> dict[str, DatasetParams]:
    """`datasets:` with each `simulation` validated by the parameter model of its dataset's simulator."""
    datasets = dict(params.datasets)
    registered = available_datasets()
    for name, entry in params.datasets.items():
        if entry.simulation is None:
            continue
        source = registered[name].events if name in registered else None
        if source is None:
            raise ConfigError(f"{path}: datasets.{name}.simulation: {name} is not a registered event dataset, so "
                              f"nothing simulates it; remove the key")
        datasets[name] = entry.model_copy(update={"simulation": simulation_parameters(name, source, entry.simulation)})
    return datasets


def _check_budgets(path: Path, params: Params) -> None:
    """Same budget: within a profile every trained method of the run matrix trains the profile's epochs
    with its batch size, unless the profile's `budget_exceptions` names the method with a reason."""
    trained = dict.fromkeys([*params.run.methods, *params.run.events.methods])
    datasets = [*params.run.datasets, *params.run.events.datasets]
    for profile_name, profile in params.profiles.items():
        for method in (m for m in trained if m in params.methods and m not in profile.budget_exceptions):
            for dataset in datasets:
                overrides = params.datasets[dataset].methods.get(method, {}) if dataset in params.datasets else {}
                settings = {**(params.methods[method] or {}), **profile.methods.get(method, {}), **overrides}
                for key, budget in (("epochs", profile.epochs), ("batch_size", profile.batch_size)):
                    if settings.get(key) not in (None, budget):
                        raise ConfigError(
                            f"{path}: method {method!r} trains with {key} = {settings[key]} in profile {profile_name!r} "
                            f"(on {dataset}), the profile's is {budget}: every trained method gets the same budget. "
                            f"Remove the override, or declare the exception with its reason under "
                            f"profiles.{profile_name}.budget_exceptions.{method}")


def _grid_files(path: Path, params: Params) -> dict[str, Grid]:
    """The grids of `params.grid_files` (paths relative to params.yaml's folder), validated like
    params.yaml's own; a name defined twice is an error naming both places."""
    grids: dict[str, Grid] = {}
    for name in params.grid_files:
        file = path.parent / name
        if not file.is_file():
            raise ConfigError(f"{path}: grid_files names {name}, which does not exist; fix the path or remove it")
        try:
            raw = yaml.safe_load(file.read_text()) or {}
            found = {grid: Grid(**value) for grid, value in raw.items()}
        except yaml.YAMLError as error:
            raise ConfigError(f"{file} is not valid YAML: {error}") from None
        except ValidationError as error:
            raise ConfigError(f"{file}:\n  " + "\n  ".join(_describe(item) for item in error.errors())) from None
        except (TypeError, AttributeError):
            raise ConfigError(f"{file}: expected a mapping of grid names to grids (as under `grids:` in "
                              "params.yaml)") from None
        clash = sorted(set(found) & (set(grids) | set(params.grids)))
        if clash:
            raise ConfigError(f"grid {clash[0]!r} is defined twice (in {file} and params.yaml or another grid file); "
                              "rename one")
        grids.update(found)
    unknown = [grid for grid in params.run.grids if grid not in params.grids]
    if unknown:
        raise ConfigError(f"{path}: run.grids names {', '.join(unknown)}, not defined under `grids:` in params.yaml "
                          "(grids of grid_files are run with `spikecode grid NAME`, not by `dvc repro`)")
    return grids


def _describe(item: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in item["loc"])
    if item["type"] == "extra_forbidden":
        return f"{key}: unknown key; remove it or check its spelling"
    if item["type"] == "missing":
        return f"{key}: required key is missing"
    return f"{key}: {item['msg']} (got {item.get('input')!r})"


@dataclass(frozen=True)
class RunSpec:
    """Everything one run needs, resolved from params.yaml for (dataset, method, seed)."""

    dataset: str
    method: str
    seed: int
    profile_name: str
    profile: Profile
    arch_name: str
    arch: ArchSpec
    hyperparameters: dict[str, Any]
    dataset_params: DatasetParams
    label: str = ""  # a grid point's folder name, "<method>@<variant>"; the method's name when empty
    root: Path = RUNS_DIR  # runs/ for the leaderboard, runs/grids/<grid> for a grid's points

    @property
    def run_dir(self) -> Path:
        return self.root / self.dataset / (self.label or self.method) / str(self.seed)

    def fingerprint(self) -> str:
        """Hash of every setting that shapes the run; a checkpoint resumes only under the same one."""
        blob = json.dumps(
            {
                "dataset": self.dataset,
                "method": self.method,
                "seed": self.seed,
                "profile": self.profile.model_dump(exclude={"methods", "description"}),
                "arch": self.arch.model_dump(),
                "hyperparameters": self.hyperparameters,
                # as before event datasets and per-dataset overrides (those are in `hyperparameters`)
                "split": self.dataset_params.model_dump(exclude_none=True, exclude={"methods"}),
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def resolve_run(
    params: Params,
    dataset: str,
    method: str,
    seed: int,
    profile: str | None = None,
    *,
    arch: str | None = None,
    overrides: dict[str, Any] | None = None,
    label: str = "",
    root: Path = RUNS_DIR,
) -> RunSpec:
    """The run of `method` on `dataset` with `seed`: hyperparameters are `methods.<method>`, then the
    profile's overrides, then the dataset's (`datasets.<dataset>.methods`), then `overrides` (a grid
    point's), each over the last."""
    profile_name, prof = params.active_profile(profile)
    arch_name = arch or prof.arch.get(dataset, prof.arch.get("default"))
    if arch_name is None:
        raise ConfigError(f"profiles.{profile_name}.arch names no architecture for {dataset!r} and has no 'default'")
    if arch_name not in params.architectures:
        raise ConfigError(
            f"architecture {arch_name!r} (profiles.{profile_name}.arch or a grid's arch) is not defined under "
            f"`architectures` (defined: {', '.join(params.architectures)})"
        )
    if method not in params.methods:
        raise ConfigError(f"methods.{method}: no entry in params.yaml; add one (an empty mapping {{}} takes the defaults)")
    dataset_params = params.datasets.get(dataset, DatasetParams())
    hyperparameters = {**(params.methods[method] or {}), **prof.methods.get(method, {}),
                       **dataset_params.methods.get(method, {}), **(overrides or {})}
    return RunSpec(
        dataset=dataset,
        method=method,
        seed=seed,
        profile_name=profile_name,
        profile=prof,
        arch_name=arch_name,
        arch=params.architectures[arch_name],
        hyperparameters=hyperparameters,
        dataset_params=dataset_params,
        label=label,
        root=root,
    )
