"""The DVC pipeline end to end on the smoke profile: `dvc repro` fills reports/, a second run skips
every stage, and changing one method's hyperparameter reruns only that method's stages.

Every stage is a process that imports torch (about 5 s here), so the project runs the smoke pipeline
once and the staleness tests ask `dvc status` and `dvc dag` what a rerun would do instead of rerunning."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmark.contract.io import read_json
from tests.conftest import REPO, smoke_params

BIN = Path(sys.executable).parent
COPIED = ["benchmark", "snn", "methods", "dvc.yaml", ".dvc", ".dvcignore", "pyproject.toml"]


def _run(args, cwd):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git repository holding the pipeline, on the smoke profile, after one `dvc repro`."""
    root = tmp_path_factory.mktemp("project")
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "tmp", "cache"))
        else:
            shutil.copy2(source, root / name)
    params = smoke_params()
    params["grids"], params["resolution"] = {}, {}  # none runs here; DVC re-parses params.yaml per stage
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for folder in ("grids", "severity"):  # the grids' and severity sweeps' reports: none run here
        (root / "reports" / folder).mkdir(parents=True)
    _run(["git", "init", "-q"], root)
    _run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "add", "-A"], root)
    _run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-qm", "pipeline"], root)
    _run([str(BIN / "dvc"), "repro", "--quiet"], root)
    return root


def test_dvc_repro_writes_the_leaderboard_for_every_method(project):
    records = read_json(project / "reports" / "leaderboard.json")["records"]
    assert sorted(r["method"] for r in records) == ["ann", "convert", "rate"]
    assert all(r["robustness"] is not None and r["energy"]["tier2_pj"] is not None for r in records)
    assert (project / "reports" / "digits-smoke" / "leaderboard.md").exists()
    assert (project / "reports" / "site" / "index.html").exists()


def test_dvc_repro_exports_the_runs_nir_can_express_and_names_why_not_for_the_rest(project):
    runs = project / "runs" / "digits"
    for method in ("rate", "convert"):  # subtractive reset: exported approximately, the approximation named
        export = read_json(runs / method / "0" / "deploy.json")["export"]
        assert export["exportable"] == "approximate" and export["approximation_codes"] == ["subtractive-reset"]
        assert (runs / method / "0" / export["file"]).stat().st_size > 0
    ann = read_json(runs / "ann" / "0" / "deploy.json")["export"]
    assert ann["exportable"] is False and ann["reason_codes"] == ["analog-activation"]
    assert not (runs / "ann" / "0" / "model.nir").exists()
    assert (project / "reports" / "site" / "portability.html").exists()


def test_a_second_repro_skips_every_stage(project):
    assert "up to date" in _run([str(BIN / "dvc"), "status"], project)


def _stale_stages(project) -> set[str]:
    return set(json.loads(_run([str(BIN / "dvc"), "status", "--json"], project)))


def _downstream(project, stages: set[str]) -> set[str]:
    """The stages `dvc repro` reruns when `stages` are stale: they and every stage below them."""
    edges = re.findall(r'"([^"]+)" -> "([^"]+)"', _run([str(BIN / "dvc"), "dag", "--dot"], project))
    reached, frontier = set(stages), set(stages)
    while frontier:
        frontier = {below for above, below in edges if above in frontier} - reached
        reached |= frontier
    return reached


def test_changing_one_methods_hyperparameter_reruns_only_that_methods_stages(project):
    params_file = project / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    params["methods"]["rate"]["slope"] = 10.0
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        stale = _stale_stages(project)
    finally:
        params_file.write_text(original)
    assert stale == {"train@digits-rate-0"}
    assert _downstream(project, stale) == {"train@digits-rate-0", "evaluate@digits-rate-0", "robustness@digits-rate-0",
                                           "energy@digits-rate-0", "export@digits-rate-0", "report", "publish"}


def test_changing_a_methods_readout_makes_its_evaluate_stage_stale(project):
    """The evaluate stages depend on the methods package, where `readout` lives: a changed readout is
    re-evaluated even when retraining would give the same weights."""
    module = project / "methods" / "rate.py"
    original = module.read_text()
    module.write_text(original.replace("prediction = output.sum(dim=0).argmax(dim=-1)",
                                       "prediction = output.sum(dim=0).argmax(dim=-1)  # a changed readout"))
    try:
        stale = _stale_stages(project)
    finally:
        module.write_text(original)
    assert {"evaluate@digits-rate-0", "robustness@digits-rate-0"} <= stale
