"""Training-time data augmentation: random translation and horizontal flip, per sample.

The two keys are part of a method's training recipe (`MethodConfig.augment_shift`,
`augment_hflip`), like its weight decay, so every method trains with the same augmentation when
params.yaml gives it the same keys. Applied to the stored uint8 training batch, before a method's
encoder; validation and test data are never augmented.

    translate   x'[h, w] = x[h − dy, w − dx]   (zero outside the image), dy, dx ~ U{−shift..shift}
    hflip       x'[h, w] = x[h, W − 1 − w]      with probability 1/2

Both act on the last two dimensions, so a batch of images `[B, C, H, W]` and a batch of event
frames `[B, T_f, C, H, W]` are augmented alike: every frame of a sample is moved the same way.
The draws come from the generator the harness seeds per (seed, epoch), so a resumed run replays them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def translate(samples: Tensor, dy: Tensor, dx: Tensor) -> Tensor:
    """Moves sample b down by dy[b] and right by dx[b] pixels (negative: up, left), filling with 0.

    samples `[B, ..., H, W]`; dy, dx `[B]` integer offsets."""
    batch, height, width = samples.shape[0], samples.shape[-2], samples.shape[-1]
    margin = int(max(dy.abs().max(), dx.abs().max(), 0)) if batch else 0
    flat = samples.reshape(batch, -1, height, width)
    padded = F.pad(flat, (margin, margin, margin, margin))
    rows = (margin - dy)[:, None] + torch.arange(height, device=samples.device)  # [B, H]
    cols = (margin - dx)[:, None] + torch.arange(width, device=samples.device)   # [B, W]
    index_b = torch.arange(batch, device=samples.device)[:, None, None, None]
    index_m = torch.arange(flat.shape[1], device=samples.device)[None, :, None, None]
    moved = padded[index_b, index_m, rows[:, None, :, None], cols[:, None, None, :]]
    return moved.reshape(samples.shape)


def augment(samples: Tensor, shift: int, hflip: bool, generator: torch.Generator) -> Tensor:
    """A random translation of up to ±`shift` pixels per axis, then a horizontal flip with
    probability 1/2 when `hflip`; the identity (and no draw) when both are off."""
    batch = samples.shape[0]
    if shift > 0:
        dy, dx = torch.randint(-shift, shift + 1, (2, batch), generator=generator).to(samples.device)
        samples = translate(samples, dy, dx)
    if hflip:
        flip = (torch.rand(batch, generator=generator) < 0.5).to(samples.device)
        samples = torch.where(flip.view(-1, *[1] * (samples.dim() - 1)), samples.flip(-1), samples)
    return samples
