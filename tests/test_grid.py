"""Grids: every combination of the axes is one full run; a finished point is never run again."""

from __future__ import annotations

import pytest
import yaml

from benchmark.cli import main
from benchmark.contract.errors import ConfigError
from benchmark.contract.io import read_json
from benchmark.run.config import load_params
from benchmark.sweeps.grid import grid_points, point_label

GRID = {"method": "rate", "dataset": "digits", "seeds": [0], "axes": {"T": [2, 3], "loss": ["ce_rate", "ce_count"]},
        "fixed": {"beta": 0.8}}


@pytest.fixture
def grid_workspace(workspace):
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["grids"] = {"rate-T": GRID}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    return workspace


def test_a_grid_expands_to_every_combination_with_fixed_values(grid_workspace):
    points = grid_points(load_params(grid_workspace / "params.yaml"), "rate-T")
    assert [point for point, _ in points] == [{"T": 2, "loss": "ce_rate"}, {"T": 2, "loss": "ce_count"},
                                              {"T": 3, "loss": "ce_rate"}, {"T": 3, "loss": "ce_count"}]
    _, spec = points[1]
    assert spec.hyperparameters["beta"] == 0.8 and spec.hyperparameters["loss"] == "ce_count"
    assert spec.run_dir.as_posix() == "runs/grids/rate-T/digits/rate@T=2,loss=ce_count/0"
    assert point_label("rate", {"T": 2}) == "rate@T=2"


def test_an_undefined_grid_is_an_error_listing_the_defined_ones(grid_workspace):
    with pytest.raises(ConfigError, match="grid 'nope' is not defined.*rate-T"):
        grid_points(load_params(grid_workspace / "params.yaml"), "nope")


def test_a_grid_runs_every_point_writes_its_table_and_skips_finished_points(grid_workspace, capsys):
    assert main(["grid", "rate-T", "--no-progress"]) == 0
    out = grid_workspace / "reports" / "grids" / "rate-T"
    records = read_json(out / "records.json")["records"]
    assert sorted((r["T"], r["hyperparameters"]["loss"]) for r in records) == [
        (2, "ce_count"), (2, "ce_rate"), (3, "ce_count"), (3, "ce_rate")]
    table = (out / "table.csv").read_text().splitlines()
    assert table[0].startswith("T,loss,val_accuracy,accuracy") and len(table) == 5
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert main(["grid", "rate-T", "--no-progress"]) == 0
    assert capsys.readouterr().out.count("done before") == 4


def test_main_effects_average_each_value_over_the_other_axes_on_validation():
    from benchmark.results.series import chosen_point, main_effects

    # validation: init ∈ {a, b} × norm ∈ {ws, none}: a = (90 + 80)/2 = 85, b = (70 + 60)/2 = 65; ws 80, none 70;
    # the test accuracies rank them the other way and are never used
    points = [{"point": [init, norm, 8], "val_accuracy": (val, None), "accuracy": (100 - val, None)}
              for init, norm, val in [("a", "ws", 90.0), ("a", "none", 80.0), ("b", "ws", 70.0), ("b", "none", 60.0)]]
    effects = main_effects(["init", "norm", "T"], points)
    assert [[e["axis"], e["value"], e["mean_val_accuracy"], e["vs_best"]] for e in effects] == [
        ["init", "a", 85.0, 0.0], ["init", "b", 65.0, -20.0], ["norm", "ws", 80.0, 0.0], ["norm", "none", 70.0, -10.0]]
    assert [e["points"] for e in effects] == [2, 2, 2, 2]  # T has one value: no effect row
    assert chosen_point(points) == 0  # (a, ws): the best validation accuracy, the worst test accuracy
    assert chosen_point([{**points[1], "val_accuracy": (90.0, None)}, *points]) == 0  # equals: the first


def test_conversion_grids_on_another_architecture_share_one_trained_source(workspace, capsys):
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["architectures"]["tiny"] = {"kind": "mlp", "hidden": [12]}
    params["grids"] = {name: {"method": "convert", "dataset": "digits", "arch": "tiny", "seeds": [0], "axes": {"T": [T]}}
                       for name, T in (("first", 2), ("second", 4))}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["grid", "first", "--no-progress"]) == 0
    source = workspace / "runs" / "grids" / "sources" / "digits" / "ann@arch=tiny" / "0" / "model.pt"
    trained_at = source.stat().st_mtime_ns
    assert main(["grid", "second", "--no-progress"]) == 0
    assert source.stat().st_mtime_ns == trained_at  # the second grid converted the same network
    assert read_json(source.parent / "eval.json")["arch"] == "tiny"  # evaluated once, the conversions' reference
    record = read_json(workspace / "reports" / "grids" / "second" / "records.json")["records"][0]
    assert record["arch"] == "tiny" and record["T"] == 4


def test_a_conversion_point_is_rerun_when_its_source_is_retrained_under_new_settings(workspace, capsys):
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["architectures"]["tiny"] = {"kind": "mlp", "hidden": [12]}
    params["grids"] = {"tiny-T": {"method": "convert", "dataset": "digits", "arch": "tiny", "seeds": [0], "axes": {"T": [2]}}}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["grid", "tiny-T", "--no-progress"]) == 0
    source_dir = workspace / "runs" / "grids" / "sources" / "digits" / "ann@arch=tiny" / "0"
    first_source = read_json(source_dir / "train.json")["fingerprint"]
    capsys.readouterr()
    params["methods"]["ann"] = {**params["methods"].get("ann", {}), "lr": 0.02}  # the source's settings change
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    assert main(["grid", "tiny-T", "--no-progress"]) == 0
    assert "done before" not in capsys.readouterr().out
    retrained = read_json(source_dir / "train.json")["fingerprint"]
    point = read_json(workspace / "runs" / "grids" / "tiny-T" / "digits" / "convert@T=2" / "0" / "train.json")
    assert retrained != first_source and point["history"][0]["source_fingerprint"] == retrained
    (record,) = read_json(workspace / "reports" / "grids" / "tiny-T" / "records.json")["records"]
    source_accuracy = read_json(source_dir / "eval.json")["accuracy"]
    assert record["converted_from"] == {"method": "ann", "arch": "tiny", "accuracy": source_accuracy}
    capsys.readouterr()
    assert main(["grid", "tiny-T", "--no-progress"]) == 0
    assert capsys.readouterr().out.count("done before") == 1


def test_table_cells_keep_small_axis_values_readable():
    from benchmark.render.tables import grid_cell

    assert [grid_cell(v) for v in (88.394, 0.0, 0.0005, float("nan"), "exp")] == ["88.39", "0.00", "0.0005", "—", "exp"]
