"""A third-party method installed from its own package registers through the entry-point group and
runs through the whole pipeline without any change to the harness."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from benchmark.contract.io import read_json
from tests.conftest import REPO, make_workspace

PLUGIN = REPO / "tests" / "plugin_pkg"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """The plugin package pip-installed into a folder of its own (the test environment stays clean)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(PLUGIN)], check=True, capture_output=True)
    return target


def _spikecode(args, cwd, site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_the_plugin_is_listed_through_its_entry_point(plugin_site, tmp_path):
    result = _spikecode(["list"], tmp_path, plugin_site)
    assert result.returncode == 0, result.stderr
    assert "toy-burst" in result.stdout and "SpikeCode Bench test plugin" in result.stdout


def test_the_plugin_runs_through_train_evaluate_energy_and_report(plugin_site, tmp_path, prepared_digits):
    workspace = make_workspace(tmp_path / "ws", prepared_digits)
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["methods"]["toy-burst"] = {"T": 4, "threshold": 0.5}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    run = ["--dataset", "digits", "--method", "toy-burst", "--seed", "0", "--no-progress"]
    for stage in ("train", "evaluate", "energy"):
        result = _spikecode([stage, *run], workspace, plugin_site)
        assert result.returncode == 0, f"{stage}: {result.stderr}"
    result = _spikecode(["report"], workspace, plugin_site)
    assert result.returncode == 0, result.stderr
    records = read_json(workspace / "reports" / "leaderboard.json")["records"]
    (record,) = [r for r in records if r["method"] == "toy-burst"]
    assert record["T"] == 4 and 0 <= record["accuracy"] <= 1
    assert record["ops"]["acs"] > 0 and record["ops"]["macs"] == 0  # binary bursts: accumulate only


def test_an_unknown_hyperparameter_of_the_plugin_names_the_key(plugin_site, tmp_path, prepared_digits):
    workspace = make_workspace(tmp_path / "ws", prepared_digits)
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["methods"]["toy-burst"] = {"treshold": 0.5}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    result = _spikecode(["train", "--dataset", "digits", "--method", "toy-burst", "--seed", "0"], workspace, plugin_site)
    assert result.returncode == 2
    assert "methods.toy-burst.treshold: unknown key" in result.stderr


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory):
    """A folder holding an installed distribution whose entry point names a module that does not exist."""
    site = tmp_path_factory.mktemp("broken-site")
    info = site / "spikecode_broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: spikecode-broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[spikecode.methods]\nbroken-burst = spikecode_missing_module:Burst\n")
    return site


def test_a_plugin_that_fails_to_import_is_listed_as_broken_and_stops_no_other_method(broken_site, tmp_path):
    result = _spikecode(["list"], tmp_path, broken_site)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "broken-burst" in line)
    assert "BROKEN" in line and "ModuleNotFoundError" in line and "spikecode_missing_module" in line
    assert all(f"  {name} " in result.stdout for name in ("ann", "rate", "ttfs"))  # the others still load


def test_asking_for_a_broken_plugin_names_its_error_and_an_unknown_name_lists_the_known(broken_site, workspace):
    run = ["--dataset", "digits", "--seed", "0"]
    broken = _spikecode(["train", "--method", "broken-burst", *run], workspace, broken_site)
    assert broken.returncode == 2 and "spikecode_missing_module" in broken.stderr and "fix or uninstall" in broken.stderr
    unknown = _spikecode(["train", "--method", "no-such", *run], workspace, broken_site)
    assert unknown.returncode == 2 and "unknown method 'no-such'" in unknown.stderr and "ttfs" in unknown.stderr


@pytest.mark.parametrize("old, new", [("benchmark.method", "benchmark.contract.method"),
                                      ("benchmark.registry", "benchmark.contract.registry"),
                                      ("benchmark.semantics", "benchmark.contract.semantics"),
                                      ("benchmark.arch", "snn.arch"), ("benchmark.engine", "snn.engine")])
def test_the_old_public_names_still_work_and_warn(old, new):
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated: import {new} instead"):
        module = importlib.import_module(old)
    names = {"benchmark.method": "CodingMethod", "benchmark.registry": "register_method",
             "benchmark.semantics": "OpSemantics", "benchmark.arch": "build_network", "benchmark.engine": "LIF"}
    assert getattr(module, names[old]) is getattr(importlib.import_module(new), names[old])
