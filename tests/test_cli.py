"""`spikecode`: every subcommand works alone, prints useful help, and reports errors clearly."""

from __future__ import annotations

import pytest

from benchmark.cli import main
from benchmark.contract.io import read_json

RUN = ["--dataset", "digits", "--seed", "0", "--no-progress"]


@pytest.mark.parametrize("command", ["list", "prepare", "train", "evaluate", "robustness", "energy", "grid", "report", "publish"])
def test_every_subcommand_prints_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: spikecode" in capsys.readouterr().out


def test_list_prints_every_method_and_dataset_on_one_line(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in ("ann", "rate", "digits", "fashion-mnist", "mnist", "cifar10"):
        assert sum(line.split()[0] == name for line in lines if line.startswith("  ")) == 1, name


def test_the_stages_run_alone_one_after_another(workspace, capsys):
    for stage in ("train", "evaluate", "robustness", "energy"):
        assert main([stage, "--method", "ann", *RUN]) == 0, stage
    assert main(["report"]) == 0
    record = read_json(workspace / "reports" / "leaderboard.json")["records"][0]
    assert record["method"] == "ann" and record["dataset"] == "digits" and record["profile"] == "smoke"
    assert record["robustness"]["baseline"] == "digits/ann/0" and record["robustness"]["relative_error"] == pytest.approx(1.0)
    assert record["energy"]["tier1_pj"] > 0 and record["energy"]["cost_model"] == "fp32-45nm"
    assert record["provenance"]["dataset_sha256"] == read_json(workspace / "datasets/digits/meta.json")["prepared_sha256"]


def test_an_unknown_method_is_an_error_listing_the_registered_ones(workspace, capsys):
    assert main(["train", "--dataset", "digits", "--method", "ttfz", "--seed", "0"]) == 2
    error = capsys.readouterr().err
    assert "unknown method 'ttfz'; registered methods: " in error and "ttfs" in error


def test_an_unknown_dataset_is_an_error_listing_the_known_ones(workspace, capsys):
    assert main(["prepare", "imagenet"]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err


def test_evaluating_before_training_says_which_command_to_run(workspace, capsys):
    assert main(["evaluate", "--method", "ann", *RUN]) == 2
    assert "spikecode train --dataset digits --method ann --seed 0" in capsys.readouterr().err


def test_a_missing_dataset_is_an_error_naming_the_fix_without_skip_missing(workspace, capsys):
    assert main(["prepare", "cifar10"]) == 2
    assert "cifar-10-python.tar.gz" in capsys.readouterr().err


def test_with_skip_missing_an_absent_dataset_flows_through_every_stage_as_skipped(workspace, capsys):
    assert main(["prepare", "cifar10", "--skip-missing"]) == 0
    run = ["--dataset", "cifar10", "--method", "ann", "--seed", "0", "--skip-missing", "--no-progress"]
    for stage in ("train", "evaluate", "robustness", "energy"):
        assert main([stage, *run]) == 0, stage
    assert "skipping cifar10/ann/0" in capsys.readouterr().err
    for name in ("train.json", "eval.json", "ops.json", "robust.json", "energy.json"):
        assert "cifar-10" in read_json(workspace / f"runs/cifar10/ann/0/{name}")["skipped"]
    assert main(["train", "--method", "ann", *RUN]) == 0
    for stage in ("evaluate", "energy"):
        assert main([stage, "--method", "ann", *RUN]) == 0
    assert main(["report"]) == 0
    records = read_json(workspace / "reports" / "leaderboard.json")["records"]
    assert [r["dataset"] for r in records] == ["digits"]
