"""Per-sample results carried by a record, compactly, so every paired test runs from the records alone
(a merged leaderboard, a fresh clone) without evaluating again.

A record's `samples` (from the run's predictions.npz and robust_predictions.npz, written by the
evaluate and robustness stages):

    n                 test samples
    correct           N bits: prediction == label, sample by sample (the clean test set)
    decision_step     N uint8: the step at which each prediction was available
    by_step_correct   T·N bits, row-major [T, N]: correct after step t = 1..T (the anytime readout)
    robust_n          samples of each corrupted set
    robust_correct    {"<corruption>@<severity>": robust_n bits}

Bits are numpy's `packbits` (big-endian within a byte), every array base64 in the JSON.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.contract.io import pack_bits, unpack_bits
from benchmark.run.paths import PREDICTIONS_FILE, ROBUST_PREDICTIONS_FILE



def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(Path(path).read_bytes())) as archive:
        return {name: archive[name] for name in archive.files}


def from_run(run_dir: Path) -> dict[str, Any] | None:
    """The `samples` of the run in `run_dir`, None when it has no predictions.npz."""
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.exists():
        return None
    predictions = load_npz(path)
    label = predictions["label"]
    samples = {"n": int(len(label)), "correct": pack_bits(predictions["prediction"] == label),
               "decision_step": base64.b64encode(predictions["decision_step"].astype(np.uint8).tobytes()).decode(),
               "by_step_correct": pack_bits(predictions["by_step"] == label[None, :]),
               "steps": int(predictions["by_step"].shape[0])}
    robust = Path(run_dir) / ROBUST_PREDICTIONS_FILE
    if robust.exists():
        sets = load_npz(robust)
        names = [str(name) for name in sets["names"]]
        samples["robust_n"] = int(sets["correct"].shape[1])
        samples["robust_correct"] = {name: pack_bits(row) for name, row in zip(names, sets["correct"])}
    return samples


def correct(samples: dict[str, Any]) -> np.ndarray:
    """`[N]` bool: the clean test set's correctness."""
    return unpack_bits(samples["correct"], samples["n"])


def correct_by_step(samples: dict[str, Any]) -> np.ndarray:
    """`[T, N]` bool: correct after step t = 1..T."""
    return unpack_bits(samples["by_step_correct"], samples["steps"] * samples["n"]).reshape(samples["steps"], samples["n"])


def robust_correct(samples: dict[str, Any]) -> np.ndarray | None:
    """`[sets × robust_n]` bool: every corrupted set's correctness, sets in name order; None without."""
    if "robust_correct" not in samples:
        return None
    return np.concatenate([unpack_bits(samples["robust_correct"][name], samples["robust_n"])
                           for name in sorted(samples["robust_correct"])])
