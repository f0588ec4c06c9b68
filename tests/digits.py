"""The bundled 8×8 scikit-learn digits as a tiny training set, and a few epochs of Adam on it: the
"a short training run learns" tests of the methods share them."""

from __future__ import annotations

import torch
from torch import Tensor


def digits(count: int = 512) -> tuple[Tensor, Tensor]:
    """The first `count` digits: images `[count, 1, 8, 8]` in [0, 1] and labels `[count]`."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = torch.tensor(data.images[:count], dtype=torch.float32).unsqueeze(1) / 16.0
    return images, torch.tensor(data.target[:count])


def full_loss(method, images: Tensor, labels: Tensor) -> float:
    """The method's loss on the whole set, in eval mode (BatchNorm on running statistics)."""
    method.network.eval()
    with torch.no_grad():
        loss = method.loss(method.forward(images), labels).item()
    method.network.train()
    return loss


def train_briefly(method, images: Tensor, labels: Tensor, epochs: int = 4, batch: int = 64, lr: float = 3e-3) -> None:
    """`epochs` passes of Adam over the set in order, `batch` samples a step."""
    optimizer = torch.optim.Adam(method.network.parameters(), lr=lr)
    for _ in range(epochs):
        for start in range(0, len(labels), batch):
            loss = method.loss(method.forward(images[start:start + batch]), labels[start:start + batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
