"""`spikecode verify`: a record re-run from its provenance matches on the same kind of machine, a changed
weight or a metric beyond tolerance is a mismatch, and a changed setting is an error before anything runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.cli import main
from benchmark.contract.io import read_json, write_json
from tests.conftest import make_workspace

RUN = ["--dataset", "digits", "--seed", "0", "--no-progress"]
GRID = {"method": "ann", "dataset": "digits", "axes": {"lr": [0.002]}}
GRID_POINT = "runs/grids/ann-lr/digits/ann@lr=0.002/0"


@pytest.fixture(scope="module")
def finished(tmp_path_factory, prepared_digits) -> Path:
    """A workspace where ann, its conversion and a one-point grid of ann ran every stage verify re-runs,
    and the report was built."""
    root = make_workspace(tmp_path_factory.mktemp("finished") / "ws", prepared_digits, **{"grids.ann-lr": GRID})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        for method in ("ann", "convert"):
            for stage in ("train", "evaluate", "energy"):
                assert main([stage, "--method", method, *RUN]) == 0, (stage, method)
        assert main(["grid", "ann-lr", "--no-progress"]) == 0
        assert main(["report"]) == 0
    return root


@pytest.fixture
def project(finished, tmp_path, monkeypatch) -> Path:
    """A copy of `finished` as the current directory, so a test may change its files."""
    root = tmp_path / "ws"
    shutil.copytree(finished, root)
    monkeypatch.chdir(root)
    return root


def verify(*arguments: str) -> int:
    """`spikecode verify`'s exit status: 0 matches, 1 a mismatch, 2 an error."""
    return main(["verify", *arguments, "--no-progress"])


def files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_run_re_run_on_the_same_kind_of_machine_matches_bit_for_bit_and_leaves_runs_untouched(project, capsys):
    before = files(project / "runs")
    assert verify("runs/digits/ann/0") == 0
    out = capsys.readouterr().out
    assert "the same kind of machine: every value must be equal" in out
    assert "identical, bit for bit" in out and "MISMATCH" not in out and out.rstrip().endswith("verdict: matches")
    assert files(project / "runs") == before


def test_one_changed_weight_is_a_mismatch_naming_its_tensor(project, capsys):
    path = project / "runs/digits/ann/0/model.pt"
    saved = torch.load(path, map_location="cpu", weights_only=False)
    name = next(iter(saved["state_dict"]))
    saved["state_dict"][name].view(-1)[0] += 1e-3
    torch.save(saved, path)
    assert verify("runs/digits/ann/0") == 1
    out = capsys.readouterr().out
    assert f"1 of {len(saved['state_dict'])} tensors differ; first {name}: max |difference| 0.001" in out
    assert out.rstrip().endswith("verdict: MISMATCH")


def change_ann_lr(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["methods"]["ann"]["lr"] = 0.01
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_a_changed_hyperparameter_is_an_error_naming_it_before_anything_runs(project, capsys):
    change_ann_lr(project)
    assert verify("runs/digits/ann/0") == 2
    captured = capsys.readouterr()
    assert "params.yaml changed since this record was made: ann's lr is 0.01, recorded 0.001" in captured.err
    assert "re-running" not in captured.out


def test_a_changed_setting_of_a_conversions_source_is_an_error_naming_the_source(project, capsys):
    change_ann_lr(project)
    assert verify("runs/digits/convert/0") == 2
    assert "params.yaml changed the settings of ann since this run was trained" in capsys.readouterr().err


def test_a_record_id_of_the_leaderboard_verifies_with_its_run_folders_weights(project, capsys):
    assert verify("digits.smoke.ann.default.T1.s0") == 0
    out = capsys.readouterr().out
    assert "identical, bit for bit" in out and out.rstrip().endswith("verdict: matches")


def test_a_conversion_re_runs_its_source_and_matches(project, tmp_path, capsys):
    assert verify("runs/digits/convert/0", "--keep", str(tmp_path / "rerun")) == 0
    assert out_ends_matching(capsys)
    assert (tmp_path / "rerun/sources/digits/ann/0/model.pt").exists()  # the source was trained again


def test_a_grid_point_verifies_from_its_folder(project, capsys):
    assert verify(GRID_POINT) == 0
    assert out_ends_matching(capsys)


def test_on_another_kind_of_machine_the_metrics_are_held_to_the_stated_tolerance(project, capsys):
    path = project / "runs/digits/ann/0/eval.json"
    record = read_json(path)
    record["provenance"]["device"] = "cuda: another GPU"
    for shift, status in ((0.005, 0), (0.02, 1)):  # 0.5 pp, 2 pp: the tolerance is 1 pp
        write_json(path, {**record, "accuracy": record["accuracy"] + shift})
        assert verify("runs/digits/ann/0") == status
        out = capsys.readouterr().out
        assert "another kind of machine (device differ): within tolerance" in out and "±1 pp" in out
        assert "(not judged on another kind of machine)" in out


def test_a_target_that_is_neither_a_run_folder_nor_a_record_id_is_an_error(project, capsys):
    assert verify("digits.smoke.ann") == 2
    assert "is neither a run folder nor a record id of reports/leaderboard.json" in capsys.readouterr().err


def out_ends_matching(capsys) -> bool:
    return capsys.readouterr().out.rstrip().endswith("verdict: matches")
