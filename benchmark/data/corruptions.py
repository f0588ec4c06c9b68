"""Common corruptions at five severities (METHODS.md §9), seeded per sample, and the official sets.

Image corruptions follow the CIFAR-10-C definitions and parameters (Hendrycks & Dietterich,
"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations", ICLR 2019) and the
affine ones MNIST-C's (Mu & Gilmer, "MNIST-C: A Robustness Benchmark for Computer Vision", 2019).
For an image x in [0, 1] and the severity's parameter c (table `CORRUPTIONS`, severities 1..5;
severity 0 is the identity), every result is clipped to [0, 1]:

    gaussian_noise   x + N(0, c²)                                  c = σ
    shot_noise       Poisson(x·c) / c                              c = photons per unit intensity
    impulse_noise    a fraction c of the values is replaced, half by 1 (salt), half by 0 (pepper),
                     each value drawn independently (skimage `random_noise(mode="s&p")`)
    speckle_noise    x + x·N(0, c²)
    gaussian_blur    Gaussian filter of σ = c, separable, truncated at ⌈4σ⌉ px, reflect padding
    contrast         (x − m)·c + m,   m = the mean of each channel of each image
    brightness       RGB: V ← clip(V + c) in HSV with H, S kept, i.e. x·clip(V + c)/V (black → c);
                     any other channel count (grayscale): x + c
    pixelate         area-downsample to ⌊H·c⌋ × ⌊W·c⌋, nearest-upsample back (PIL BOX in CIFAR-10-C)
    rotate           rotation by ±c rad about the image centre
    shear            skimage `AffineTransform(shear=±c)` about the centre: x_in = x − sin(c)·y,
                     y_in = cos(c)·y (centred pixel coordinates), as MNIST-C
    translate        shift by (±c, ±c) px, each sign drawn per sample, as MNIST-C
    (affine: bilinear sampling, zeros outside the image, as skimage `warp(order=1)`)

Reproducibility: each sample's randomness (noise, impulse positions, affine direction) comes from its
own `torch.Generator`, seeded from (seed, corruption id, severity, global sample index) through a
hash, so a sample's corruption depends on none of batch size, batch composition or order. The noise
is drawn on the CPU in float64 and every corruption computes on the CPU in float64 with fixed
summation orders (no conv/matmul kernels that pick an algorithm by batch size), so the corrupted
test set is byte-identical on every run, and on every machine with the same torch version.

Event data: benchmark.data.event_corruptions.

Official sets: `load_mnist_c` and `load_cifar10_c` read the released files; the pipeline uses them
instead of the generated corruptions when they are placed.

Shapes: images `[B, C, H, W]` float in [0, 1] -> `[B, C, H, W]` float32 in [0, 1].
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.contract.errors import ConfigError, DataError, MissingData

Family = Literal["noise", "blur", "digital", "affine"]
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Corruption:
    """One corruption: its family, a fixed id (part of every sample's seed: never renumber one),
    its parameter at severities 1..5 and what the parameter means."""

    name: str
    family: Family
    id: int
    parameters: tuple[float, float, float, float, float]
    parameter: str
    source: str

    def parameter_at(self, severity: int) -> float:
        return self.parameters[severity - 1]


_CIFAR_C = "CIFAR-10-C (Hendrycks & Dietterich, ICLR 2019)"
_MNIST_C = "MNIST-C (Mu & Gilmer, 2019)"

CORRUPTIONS: dict[str, Corruption] = {
    c.name: c
    for c in (
        Corruption("gaussian_noise", "noise", 1, (0.04, 0.06, 0.08, 0.09, 0.10), "sigma", _CIFAR_C),
        Corruption("shot_noise", "noise", 2, (500, 250, 100, 75, 50), "photons per unit intensity", _CIFAR_C),
        Corruption("impulse_noise", "noise", 3, (0.01, 0.02, 0.03, 0.05, 0.07), "fraction replaced", _CIFAR_C),
        Corruption("speckle_noise", "noise", 4, (0.06, 0.10, 0.12, 0.16, 0.20), "sigma", _CIFAR_C),
        Corruption("gaussian_blur", "blur", 5, (0.4, 0.6, 0.7, 0.8, 1.0), "sigma (px)", _CIFAR_C),
        Corruption("contrast", "digital", 6, (0.75, 0.5, 0.4, 0.3, 0.15), "contrast factor", _CIFAR_C),
        Corruption("brightness", "digital", 7, (0.05, 0.1, 0.15, 0.2, 0.3), "added value", _CIFAR_C),
        Corruption("pixelate", "digital", 8, (0.95, 0.9, 0.85, 0.75, 0.65), "resize factor", _CIFAR_C),
        Corruption("rotate", "affine", 9, (0.2, 0.4, 0.6, 0.8, 1.0), "angle (rad)", _MNIST_C),
        Corruption("shear", "affine", 10, (0.2, 0.4, 0.6, 0.8, 1.0), "shear angle (rad)", _MNIST_C),
        Corruption("translate", "affine", 11, (1, 2, 3, 4, 5), "shift per axis (px)", _MNIST_C),
    )
}

# Families of the corruptions in the official releases, for records made from them.
OFFICIAL_FAMILIES: dict[str, str] = {
    **{name: "noise" for name in ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")},
    **{name: "blur" for name in ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur")},
    **{name: "weather" for name in ("snow", "frost", "fog", "spatter")},
    **{name: "digital" for name in ("brightness", "contrast", "elastic_transform", "pixelate",
                                    "jpeg_compression", "saturate", "stripe", "canny_edges", "inverse")},
    **{name: "affine" for name in ("rotate", "shear", "scale", "translate")},
    **{name: "lines" for name in ("dotted_line", "zigzag", "line")},
    "identity": "none",
}


def get_corruption(name: str) -> Corruption:
    if name not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {name!r}; allowed: {', '.join(CORRUPTIONS)}")
    return CORRUPTIONS[name]


def check_severity(severity: object) -> int:
    if isinstance(severity, bool) or not isinstance(severity, int) or not 0 <= severity <= 5:
        raise ConfigError(f"corruption severity must be an integer in 0..5 (0 = clean), got {severity!r}")
    return severity


def sample_seed(seed: int, corruption_id: int, severity: int, index: int) -> int:
    """The seed of one sample's generator: a hash of (seed, corruption id, severity, sample index),
    so neighbouring samples, severities and corruptions get unrelated streams."""
    packed = struct.pack("<qqqq", seed, corruption_id, severity, index)
    return int.from_bytes(hashlib.blake2b(packed, digest_size=8, person=b"spikecode-c").digest(), "little") >> 1


# --- the corruptions: x float64 [B, C, H, W] on the CPU, c the parameter, gens one per sample ---


def _gaussian_noise(x: Tensor, c: float, gens: list[torch.Generator]) -> Tensor:
    return x + c * _per_sample(x, gens, lambda shape, g: torch.randn(shape, generator=g, dtype=torch.float64))


def _shot_noise(x: Tensor, c: float, gens: list[torch.Generator]) -> Tensor:
    return torch.stack([torch.poisson(xi * c, generator=g) for xi, g in zip(x, gens)]) / c


def _impulse_noise(x: Tensor, c: float, gens: list[torch.Generator]) -> Tensor:
    out = x.clone()
    for xi, g in zip(out, gens):
        flipped = torch.rand(xi.shape, generator=g, dtype=torch.float64) < c
        salted = torch.rand(xi.shape, generator=g, dtype=torch.float64) < 0.5
        xi[flipped & salted] = 1.0
        xi[flipped & ~salted] = 0.0
    return out


def _speckle_noise(x: Tensor, c: float, gens: list[torch.Generator]) -> Tensor:
    return x + x * c * _per_sample(x, gens, lambda shape, g: torch.randn(shape, generator=g, dtype=torch.float64))


def _gaussian_blur(x: Tensor, c: float, gens: list[torch.Generator]) -> Tensor:
    height, width = x.shape[-2:]
    radius = min(math.ceil(4 * c), height - 1, width - 1)  # truncate = 4σ as scipy; reflect needs < size
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-offsets**2 / (2 * c**2))
    kernel = kernel / kernel.sum()
    # a separable convolution written as weighted shifted sums: same result whatever the batch size
    padded = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    rows = sum(float(w) * padded[..., :, k:k + width] for k, w in enumerate(kernel))
    padded = F.pad(rows, (0, 0, radius, radius), mode="reflect")
    return sum(float(w) * padded[..., k:k + height, :] for k, w in enumerate(kernel))


def _contrast(x: Tensor, c: float, gens: list[torch.Generator]) -> Tensor:
    means = x.mean(dim=(2, 3), keepdim=True)  # per channel, as CIFAR-10-C's mean over axes (0, 1)
    return (x - means) * c + means


def _brightness(x: Tensor, c: float, gens: list[torch.Generator]) -> Tensor:
    if x.shape[1] != 3:
        return x + c
    value = x.amax(dim=1, keepdim=True)  # HSV value; with H and S fixed, RGB scales with V
    scaled = x * (value + c).clamp(0, 1) / value.clamp_min(1e-300)
    return torch.where(value > 0, scaled, torch.full_like(x, min(c, 1.0)))


def _pixelate(x: Tensor, c: float, gens: list[torch.Generator]) -> Tensor:
    height, width = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, int(height * c)), max(1, int(width * c))), mode="area")
    return F.interpolate(small, size=(height, width), mode="nearest-exact")


def _rotate(x: Tensor, c: float, gens: list[torch.Generator]) -> Tensor:
    angles = [c * _sign(g) for g in gens]
    return _warp(x, [((math.cos(a), -math.sin(a)), (math.sin(a), math.cos(a)), (0.0, 0.0)) for a in angles])


def _shear(x: Tensor, c: float, gens: list[torch.Generator]) -> Tensor:
    shears = [c * _sign(g) for g in gens]
    return _warp(x, [((1.0, -math.sin(s)), (0.0, math.cos(s)), (0.0, 0.0)) for s in shears])


def _translate(x: Tensor, c: float, gens: list[torch.Generator]) -> Tensor:
    shifts = [(c * _sign(g), c * _sign(g)) for g in gens]
    return _warp(x, [((1.0, 0.0), (0.0, 1.0), shift) for shift in shifts])


_APPLY: dict[str, Callable[[Tensor, float, list[torch.Generator]], Tensor]] = {
    "gaussian_noise": _gaussian_noise,
    "shot_noise": _shot_noise,
    "impulse_noise": _impulse_noise,
    "speckle_noise": _speckle_noise,
    "gaussian_blur": _gaussian_blur,
    "contrast": _contrast,
    "brightness": _brightness,
    "pixelate": _pixelate,
    "rotate": _rotate,
    "shear": _shear,
    "translate": _translate,
}
assert set(_APPLY) == set(CORRUPTIONS)


def corrupt(images: Tensor, name: str, severity: int, seed: int, sample_indices: Sequence[int] | Tensor) -> Tensor:
    """`images` corrupted by `name` at `severity` (0 = identity, 1..5 = the table's parameters).

    `sample_indices` are the samples' global indices in the test set (one per image): with `seed`
    they fix each sample's randomness, so a sample is corrupted the same way in any batch.
    Computes on the CPU in float64; returns float32 on the images' device, clipped to [0, 1].

    Shapes: `[B, C, H, W]` float in [0, 1] -> `[B, C, H, W]`.
    """
    corruption = get_corruption(name)
    check_severity(severity)
    _check_images(images)
    indices = _check_indices(sample_indices, len(images))
    if severity == 0:
        return images.clone()
    gens = [torch.Generator().manual_seed(sample_seed(seed, corruption.id, severity, i)) for i in indices]
    x = images.detach().to("cpu", torch.float64)
    out = _APPLY[name](x, float(corruption.parameter_at(severity)), gens)
    return out.clamp(0, 1).to(device=images.device, dtype=torch.float32)


def parameter(name: str, severity: int) -> float:
    """The parameter of corruption `name` at `severity` (1..5)."""
    corruption = get_corruption(name)
    if check_severity(severity) == 0:
        raise ConfigError(f"severity 0 is the clean image and has no {name} parameter; use 1..5")
    return corruption.parameter_at(severity)


Draw = Callable[[torch.Size, torch.Generator], Tensor]


def _per_sample(x: Tensor, gens: list[torch.Generator], draw: Draw) -> Tensor:
    return torch.stack([draw(x.shape[1:], g) for g in gens])


def _sign(g: torch.Generator) -> float:
    return 1.0 if float(torch.rand((), generator=g, dtype=torch.float64)) < 0.5 else -1.0


Matrix = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]


def _warp(x: Tensor, maps: list[Matrix]) -> Tensor:
    """Bilinear warp by per-sample inverse maps in centred pixel coordinates (skimage `warp`
    convention: output pixel (x, y) samples the input at (a·x + b·y + tx, c·x + d·y + ty)).
    The sampling grid is built elementwise, not with affine_grid's batched matmul, so it is
    independent of the batch."""
    height, width = x.shape[-2:]
    cx, cy = (width - 1) / 2, (height - 1) / 2
    px = torch.arange(width, dtype=torch.float64).view(1, width) - cx
    py = torch.arange(height, dtype=torch.float64).view(height, 1) - cy
    grids = []
    for (a, b), (c, d), (tx, ty) in maps:
        sx = a * px + b * py + tx
        sy = c * px + d * py + ty
        # normalised coordinates of align_corners=False: u = (2·x_pixel + 1)/W − 1 = 2·x_centred/W
        grids.append(torch.stack((2 * sx / width, 2 * sy / height), dim=-1))
    grid = torch.stack(grids)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _check_images(images: Tensor) -> None:
    if not isinstance(images, Tensor) or images.dim() != 4 or not images.is_floating_point():
        got = f"{tuple(images.shape)} {images.dtype}" if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"corrupt expects float images [B, C, H, W] in [0, 1], got {got}; "
                         "convert uint8 pixels with benchmark.data.to_unit_float")
    if images.numel() and (float(images.min()) < 0 or float(images.max()) > 1):
        raise ValueError(f"corrupt expects images in [0, 1], got values in "
                         f"[{float(images.min()):g}, {float(images.max()):g}]")


def _check_indices(sample_indices: Sequence[int] | Tensor, batch: int) -> list[int]:
    indices = sample_indices.tolist() if isinstance(sample_indices, Tensor) else list(sample_indices)
    if len(indices) != batch:
        raise ValueError(f"corrupt needs one sample index per image: {batch} images, {len(indices)} indices")
    if any(not isinstance(i, (int, np.integer)) or isinstance(i, bool) or i < 0 for i in indices):
        raise ValueError("sample indices must be non-negative integers (the samples' global test-set indices)")
    return [int(i) for i in indices]


# --- official corrupted sets --------------------------------------------------------------------

MNIST_C_URL = "https://zenodo.org/record/3239543 (mnist_c.zip)"
CIFAR10_C_URL = "https://zenodo.org/record/2535967 (CIFAR-10-C.tar)"


def load_mnist_c(root: Path | str, name: str) -> tuple[Tensor, Tensor]:
    """An MNIST-C corruption (one severity): `<root>/mnist_c/<name>/test_images.npy` and
    `test_labels.npy` (`<root>/<name>/` is also accepted when root is the mnist_c folder itself).

    Returns images uint8 `[N, 1, 28, 28]` and labels int64 `[N]`.
    """
    _check_name(name)
    root = Path(root)
    places = [root / "mnist_c" / name, root / name]
    folder = next((p for p in places if (p / "test_images.npy").is_file()), None)
    if folder is None:
        searched = "\n".join(f"  - {p / 'test_images.npy'}" for p in places)
        raise MissingData(f"MNIST-C corruption {name!r} not found. Searched:\n{searched}\n"
                          f"Fix: download MNIST-C from {MNIST_C_URL} and unzip it so that "
                          f"{places[0] / 'test_images.npy'} exists.")
    images = _load_npy(folder / "test_images.npy")
    labels = _load_labels(folder / "test_labels.npy")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise DataError(f"{folder / 'test_images.npy'}: expected images [N, 28, 28(, 1)], got {images.shape}")
    images = _as_uint8(images, folder / "test_images.npy")
    if len(labels) != len(images):
        raise DataError(f"{folder}: {len(images)} images but {len(labels)} labels in test_labels.npy")
    return torch.from_numpy(images).unsqueeze(1).contiguous(), labels


def load_cifar10_c(root: Path | str, name: str) -> tuple[Tensor, Tensor]:
    """A CIFAR-10-C corruption: `<root>/CIFAR-10-C/<name>.npy` of shape [5·N, 32, 32, 3] uint8, the
    severities 1..5 stacked in blocks of N (N = 10000), and `labels.npy` ([5·N], the N test labels
    once per severity). `<root>/<name>.npy` is also accepted when root is the CIFAR-10-C folder.

    Returns images uint8 `[5, N, 3, 32, 32]` (index 0 = severity 1) and labels int64 `[N]`.
    """
    _check_name(name)
    root = Path(root)
    places = [root / "CIFAR-10-C", root]
    folder = next((p for p in places if (p / f"{name}.npy").is_file()), None)
    if folder is None:
        searched = "\n".join(f"  - {p / f'{name}.npy'}" for p in places)
        raise MissingData(f"CIFAR-10-C corruption {name!r} not found. Searched:\n{searched}\n"
                          f"Fix: download CIFAR-10-C from {CIFAR10_C_URL} and extract it so that "
                          f"{places[0] / f'{name}.npy'} exists.")
    path = folder / f"{name}.npy"
    labels_path = folder / "labels.npy"
    if not labels_path.is_file():
        raise MissingData(f"CIFAR-10-C labels not found: {labels_path}. Fix: extract labels.npy from "
                          f"{CIFAR10_C_URL} next to {path.name}.")
    images = _load_npy(path)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) % 5:
        raise DataError(f"{path}: expected [5·N, H, W, 3] (five severities stacked), got {images.shape}")
    images = _as_uint8(images, path)
    n = len(images) // 5
    labels = _load_labels(labels_path)
    if len(labels) == 5 * n:
        blocks = labels.view(5, n)
        if not bool((blocks == blocks[0]).all()):
            raise DataError(f"{labels_path}: the five severity blocks of labels differ; the file is corrupt")
        labels = blocks[0].clone()
    elif len(labels) != n:
        raise DataError(f"{labels_path}: expected {5 * n} (or {n}) labels for {path.name}, got {len(labels)}")
    stacked = torch.from_numpy(images).view(5, n, *images.shape[1:]).permute(0, 1, 4, 2, 3).contiguous()
    return stacked, labels


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"corruption name must be a plain file name such as 'shot_noise', got {name!r}")


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable .npy file ({error}); re-download or re-extract it") from None


def _load_labels(path: Path) -> Tensor:
    if not path.is_file():
        raise MissingData(f"labels file not found: {path}. Fix: re-extract the corrupted set so it is present.")
    labels = _load_npy(path)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{path}: expected integer labels [N], got {labels.dtype} {labels.shape}")
    return torch.from_numpy(labels.astype(np.int64))


def _as_uint8(images: np.ndarray, path: Path) -> np.ndarray:
    """uint8 as is; float pixels 0..255 (as some MNIST-C copies store them) rounded to uint8."""
    if images.dtype == np.uint8:
        return np.ascontiguousarray(images)
    if np.issubdtype(images.dtype, np.floating) and images.size and images.min() >= 0 and images.max() <= 255:
        return np.rint(images).astype(np.uint8)
    raise DataError(f"{path}: expected uint8 pixels 0..255, got {images.dtype}")
