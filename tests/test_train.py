"""The training loop: reproducibility, checkpoint and resume, divergence, distributed training."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from benchmark.cli import main
from benchmark.contract.errors import TrainingDiverged
from benchmark.contract.io import read_json
from benchmark.run.config import load_params, resolve_run
from benchmark.run.train import FAULT_ENV, train
from tests.conftest import make_workspace

RUN = ["--dataset", "digits", "--seed", "0", "--no-progress"]


def _train_and_evaluate(method: str) -> tuple[dict, dict]:
    assert main(["train", "--method", method, *RUN]) == 0
    assert main(["evaluate", "--method", method, *RUN]) == 0
    run = f"runs/digits/{method}/0"
    return read_json(f"{run}/train.json"), read_json(f"{run}/eval.json")


def _weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=False)["state_dict"]


@pytest.mark.parametrize("method", ["ann", "rate"])
def test_the_same_seed_gives_the_same_metrics(method, tmp_path, prepared_digits, monkeypatch):
    results = []
    for name in ("first", "second"):
        monkeypatch.chdir(make_workspace(tmp_path / name, prepared_digits, **{"profiles.smoke.epochs": 2}))
        train_json, eval_json = _train_and_evaluate(method)
        results.append(([(h["loss"], h["val_accuracy"]) for h in train_json["history"]],
                        eval_json["accuracy"], eval_json["decision_step"]))
    assert results[0] == results[1]


def test_a_killed_run_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one(tmp_path, prepared_digits, monkeypatch):
    changes = {"profiles.smoke.epochs": 3, "methods.rate.T": 4}
    command = [sys.executable, "-m", "benchmark.cli", "train", "--method", "rate", *RUN]
    # Bitwise equality across processes needs reproducible BLAS (MKL's sums otherwise depend on how many
    # threads it takes when the machine is busy and on the buffers' alignment): the CLI pins it
    # (benchmark.run.numerics), as it does for every run.
    env = dict(os.environ)

    killed = make_workspace(tmp_path / "killed", prepared_digits, **changes)
    crash = subprocess.run(command, cwd=killed, env={**env, FAULT_ENV: "1"}, capture_output=True, text=True)
    assert crash.returncode == -9, crash.stderr
    run = killed / "runs/digits/rate/0"
    assert (run / "checkpoint.pt").exists() and not (run / "model.pt").exists()
    resumed = subprocess.run(command, cwd=killed, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming rate" in resumed.stdout and "after epoch 1" in resumed.stdout
    assert not (run / "checkpoint.pt").exists()  # removed once the model is written

    whole = make_workspace(tmp_path / "whole", prepared_digits, **changes)
    subprocess.run(command, cwd=whole, env=env, check=True, capture_output=True)
    reference = whole / "runs/digits/rate/0"
    history = lambda path: [(h["loss"], h["val_accuracy"]) for h in read_json(path / "train.json")["history"]]
    assert history(run) == history(reference)
    for key, value in _weights(reference / "model.pt").items():
        assert torch.equal(_weights(run / "model.pt")[key], value), key


def test_a_checkpoint_written_under_other_settings_is_not_resumed(workspace, capsys):
    params = load_params(workspace / "params.yaml")
    spec = resolve_run(params, "digits", "ann", 0)
    spec.run_dir.mkdir(parents=True)
    torch.save({"fingerprint": "stale", "epoch": 0}, spec.run_dir / "checkpoint.pt")
    summary = train(spec, progress=False)
    assert summary["epochs"] == 1 and "starting ann afresh" in capsys.readouterr().out


def test_a_nan_loss_stops_the_run_naming_the_method_and_the_learning_rate(workspace, monkeypatch):
    from methods.ann import Ann

    monkeypatch.setattr(Ann, "loss", lambda self, output, labels: output.sum() * float("nan"))
    spec = resolve_run(load_params(workspace / "params.yaml"), "digits", "ann", 0)
    with pytest.raises(TrainingDiverged, match=r"ann on digits.*loss became nan.*methods\.ann\.lr"):
        train(spec, progress=False)
    assert not (spec.run_dir / "model.pt").exists()


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None, reason="torchrun not installed")
@pytest.mark.parametrize("method", ["ann", "sigma-delta"])  # the harness's loop (DDP), and a method's own train_step
def test_two_process_distributed_training_matches_one_process(method, tmp_path, prepared_digits):
    changes = {"profiles.smoke.epochs": 2}
    single = make_workspace(tmp_path / "single", prepared_digits, **changes)
    subprocess.run([sys.executable, "-m", "benchmark.cli", "train", "--method", method, *RUN], cwd=single,
                   check=True, capture_output=True)
    ddp = make_workspace(tmp_path / "ddp", prepared_digits, **changes)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    result = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "benchmark.cli", "train",
                             "--method", method, *RUN], cwd=ddp, capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_json(ddp / f"runs/digits/{method}/0/train.json")["world_size"] == 2
    reference = _weights(single / f"runs/digits/{method}/0/model.pt")
    distributed = _weights(ddp / f"runs/digits/{method}/0/model.pt")
    for key, value in reference.items():
        assert torch.allclose(distributed[key], value, atol=1e-5), key


def test_a_run_beside_a_busy_process_gives_bit_identical_weights(tmp_path, prepared_digits):
    """The same commit, params and seed give the same weights bit for bit, whatever else the machine is
    doing: the CLI pins the profile's threads and the numeric libraries (benchmark.run.numerics)."""
    changes = {"profiles.smoke.threads": 2, "profiles.smoke.epochs": 2}
    command = [sys.executable, "-m", "benchmark.cli", "train", "--method", "rate", *RUN]
    quiet = make_workspace(tmp_path / "quiet", prepared_digits, **changes)
    subprocess.run(command, cwd=quiet, check=True, capture_output=True)
    busy = make_workspace(tmp_path / "busy", prepared_digits, **changes)
    burner = subprocess.Popen([sys.executable, "-c", "import torch\ntorch.set_num_threads(2)\nx = torch.rand(512, 512)\n"
                                                     "while True:\n    x = (x @ x).tanh()"])
    try:
        subprocess.run(command, cwd=busy, check=True, capture_output=True)
    finally:
        burner.kill()
        burner.wait()
    provenance = read_json(busy / "runs/digits/rate/0/train.json")["provenance"]
    assert provenance["numerics"] == {"threads": 2, "deterministic": True, "mkl_cbwr": "AUTO", "mkl_dynamic": "FALSE"}
    reference = _weights(quiet / "runs/digits/rate/0/model.pt")
    for key, value in _weights(busy / "runs/digits/rate/0/model.pt").items():
        assert torch.equal(value, reference[key]), key


def test_git_dirty_counts_source_changes_not_the_pipelines_outputs(tmp_path, monkeypatch):
    from benchmark.contract.provenance import git_state

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for folder, name in (("benchmark", "stage.py"), ("reports", "board.md")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text("first\n")
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "start"], check=True)
    (tmp_path / "reports" / "board.md").write_text("regenerated by dvc repro\n")
    assert git_state()[1] is False
    (tmp_path / "benchmark" / "stage.py").write_text("edited\n")
    assert git_state()[1] is True
