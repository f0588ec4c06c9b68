"""The schema of params.yaml `claims:`: each seed paper's claim and the comparison over the records that
tests it (benchmark.results.claims computes the verdicts), validated when params.yaml is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from benchmark.contract.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ClaimMetric = Literal["accuracy", "corruption_accuracy", "decision_step", "steps_to_baseline", "spikes", "bits",
                      "energy_tier1", "energy_tier2", "resolution_shift", "training_memory_growth"]


class ClaimSelection(_Strict):
    """The records one side of a claim's test reads: a board's row, a grid's point, a resolution sweep's
    method, a severity sweep's row, or a method's benchmark in reports/perf.json."""
    method: str
    dataset: str | None = Field(None, description="the claim's dataset when omitted")
    profile: str | None = Field(None, description="params.yaml's active profile when omitted")
    variant: str | None = Field(None, description="a board row's variant ('' the default row); any when omitted")
    T: int | None = None
    grid: str | None = Field(None, description="read this grid's records instead of the board's")
    point: dict[str, Any] = Field(default_factory=dict, description="the grid point: hyperparameter values")
    resolution: str | list[str] | None = Field(None, description="a resolution sweep (metric resolution_shift); "
                                               "with `at`, the sweeps whose seeds are the side's seeds")
    at: int | None = Field(None, description="with `resolution`: the models trained and run at Δt/at (the sweeps' "
                           "`retrained`), as records of accuracy and spikes")
    severity: str | None = Field(None, description="read this Gaussian-noise severity sweep's records (its σ "
                                 "levels are the corrupted sets: benchmark.sweeps.severity) instead of the board's")
    choose: Literal["validation"] | None = Field(None, description="validation: of the grid points `point` "
                                                 "matches, the one with the best mean validation accuracy")


class ClaimTest(_Strict):
    """d = metric(a) − metric(b) (or metric(a) alone) held against `threshold` in the metric's unit
    (pp, steps, spikes, bits, pJ, bytes per step): `greater` d > threshold, `less` d < threshold,
    `within` |d| < threshold (benchmark.results.claims)."""
    metric: ClaimMetric
    a: ClaimSelection
    b: ClaimSelection | None = None
    direction: Literal["greater", "less", "within"]
    threshold: float = 0.0


class Claim(_Strict):
    """One claim of a seed paper and how it is tested; exactly one of `test` and `not_tested` (what is
    missing: a dataset to place, a GPU, an experiment not yet defined)."""
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    paper: str
    claim: str
    dataset: str = "fashion-mnist"
    test: ClaimTest | None = None
    not_tested: str | None = None
    reference: str | None = Field(None, description="the paper's own figure, shown as a labelled reference")
    note: str = ""

    @model_validator(mode="after")
    def _tested_or_why_not(self) -> Claim:
        if (self.test is None) == (self.not_tested is None):
            raise ValueError(f"claim {self.id}: give exactly one of `test` (how the records test the claim) and "
                             "`not_tested` (what is missing to test it)")
        return self


def check_claims(path: Path, claims: list[Claim], methods: dict[str, Any], grids: dict[str, Any],
                 resolution: dict[str, Any], severity: dict[str, Any]) -> None:
    """Every claim's selections name a defined method, grid, resolution and severity sweep; ids are unique."""
    seen: set[str] = set()
    for claim in claims:
        if claim.id in seen:
            raise ConfigError(f"{path}: claim id {claim.id!r} is used twice; give each claim its own id")
        seen.add(claim.id)
        sides = [side for side in (claim.test.a, claim.test.b) if side is not None] if claim.test else []
        for side in sides:
            problem = (f"method {side.method!r} is not defined under `methods`" if side.method not in methods
                       else f"grid {side.grid!r} is not defined" if side.grid and side.grid not in grids
                       else _resolution_problem(claim.test.metric, side, resolution)
                       or (f"severity sweep {side.severity!r} is not defined"
                           if side.severity and side.severity not in severity else None))
            if problem:
                raise ConfigError(f"{path}: claims.{claim.id}: {problem}; fix the name or the claim's test")


def _resolution_problem(metric: str, side: ClaimSelection, resolution: dict[str, Any]) -> str | None:
    """What is wrong with a side's `resolution` / `at`, None when nothing is: resolution_shift reads one sweep,
    `at` reads a factor that every sweep named retrains."""
    names = [side.resolution] if isinstance(side.resolution, str) else side.resolution or []
    undefined = [name for name in names if name not in resolution]
    if undefined:
        return f"resolution sweep {', '.join(map(repr, undefined))} is not defined"
    if side.at is None:
        return ("`at` (a factor k: the models trained and run at Δt/k) is needed to read sweeps with metric "
                f"{metric}; without it, `resolution` names one sweep for resolution_shift"
                if names and (len(names) > 1 or metric != "resolution_shift") else None)
    if not names or metric == "resolution_shift":
        return ("`at` reads a resolution sweep's models trained at Δt/at: give `resolution` and a metric of "
                "records (accuracy, spikes), not resolution_shift")
    lacking = [name for name in names if side.at not in resolution[name].factors]
    return (f"at: {side.at} is not among the factors of resolution sweep {', '.join(lacking)}"
            if lacking else None)
