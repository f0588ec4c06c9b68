"""The seeded split of a dataset's samples into kept and held out (validation, or the digits' test set)."""

from __future__ import annotations

import torch


def split_indices(n: int, n_held: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded permutation of range(n) cut into (kept, held out); each part in ascending order,
    so both keep the official order of the samples."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_held:].sort().values, order[:n_held].sort().values
