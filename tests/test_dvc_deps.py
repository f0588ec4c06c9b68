"""dvc.yaml's stages depend on packages, and those deps cover every first-party module a stage's code
imports: a change anywhere in a stage's code makes `dvc status` list the stage (no stale results)."""

from __future__ import annotations

import ast

import pytest
import yaml

from tests.test_layout import MODULES, REPO, closure

# The code a `spikecode <command>` runs, beyond the CLI's own module-level imports.
ENTRIES = {
    "prepare": ["benchmark.data.prepared", "benchmark.run.config"],
    "train": ["benchmark.run.train"],
    "evaluate": ["benchmark.run.evaluate"],
    "robustness": ["benchmark.run.robustness"],
    "energy": ["benchmark.metrics.energy", "benchmark.run.config"],
    "export": ["benchmark.deploy.stage"],
    "grid": ["benchmark.sweeps.grid"],
    "resolution": ["benchmark.sweeps.resolution"],
    "report": ["benchmark.render.report", "benchmark.results.merge", "benchmark.run.config"],
    "publish": ["benchmark.render.site"],
}
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def cli_imports() -> list[str]:
    """The first-party modules benchmark/cli.py imports at its top (every command runs them)."""
    tree = ast.parse((REPO / "benchmark" / "cli.py").read_text())
    return [node.module for node in tree.body if isinstance(node, ast.ImportFrom) and node.module in MODULES]


def code_deps(stage: dict) -> list[str]:
    """A stage's deps that are code (not data: datasets/, runs/, reports/)."""
    return [dep for dep in stage["deps"] if not dep.startswith(("datasets", "runs", "reports"))]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_module_a_stage_imports_is_covered_by_its_deps(name):
    stage = STAGES[name]
    command = stage["cmd"].split()[1]
    assert command in ENTRIES, f"stage {name}: `spikecode {command}` has no entry modules in this test"
    deps = code_deps(stage)
    uncovered = []
    for module in sorted(closure([*ENTRIES[command], *cli_imports()])):
        path = MODULES[module].relative_to(REPO).as_posix()
        if not any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps):
            uncovered.append(path)
    assert not uncovered, f"stage {name} imports {uncovered}, which its deps {deps} do not cover"


def test_deps_name_packages_not_hand_kept_file_lists():
    for name, stage in STAGES.items():
        files = [dep for dep in code_deps(stage) if dep.endswith(".py")]
        assert not files, f"stage {name} depends on the files {files}; depend on their package instead"
