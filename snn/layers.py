"""Synaptic layers over whole sequences: `Folded` runs a per-sample layer once on `[T, B, ...]`, with a
lean average pooling, the ANN's declared ReLU, and channels-last convolutions.

- `Folded` folds time into the batch (`[T*B, ...]`), so a synaptic layer (Linear, Conv2d, pooling)
  runs once per sequence; only neuron dynamics loop over time (`snn.engine`).
- `Folded` runs average pooling as `_AvgPool2d`, which keeps only its input's shape for backward
  (PyTorch's keeps the whole input: the spikes of the layer before); windows that tile the input
  (2×2, stride 2) run as strided adds, bit for bit PyTorch's values and faster on the CPU
  (tests/perf, reports/perf.json).
- `prefer_channels_last(network, device)` (opt-in): NHWC convolutions and pooling on the CPU.

Shapes: `[T, B, ...] -> [T, B, ...]`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.autograd.function import once_differentiable

from benchmark.contract.semantics import EventKind, OpSemantics

def _tiles(x: Tensor, pool: nn.AvgPool2d) -> tuple[int, int] | None:
    """(kh, kw) when `pool`'s windows tile `x [N, C, H, W]` exactly and the tiled path applies:
    stride = kernel, no padding, H and W multiples of it, no divisor override, at least two
    elements a window, and `x` NCHW-contiguous float32/float64 on the CPU. Else None."""
    kh, kw = _pair(pool.kernel_size)
    stride = _pair(pool.stride if pool.stride is not None else pool.kernel_size)
    if (x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or not x.is_contiguous()
            or stride != [kh, kw] or _pair(pool.padding) != [0, 0] or pool.divisor_override is not None
            or kh * kw < 2 or x.shape[-2] % kh or x.shape[-1] % kw):
        return None
    return kh, kw


def _tiled_avg_pool(x: Tensor, kh: int, kw: int) -> Tensor:
    """`F.avg_pool2d` over windows that tile `x` (see `_tiles`), bit for bit: PyTorch's NCHW CPU
    kernel sums each window row by row from 0, then divides by kh·kw; here each window position
    (i, j) is one strided slice of all windows, added in the same order (0 + x₀₀ = x₀₀), so every
    float operation is the same, and vectorised where that kernel is not."""
    n, c, h, w = x.shape
    windows = x.view(n, c, h // kh, kh, w // kw, kw)  # [N, C, H/kh, i, W/kw, j]
    offsets = [(i, j) for i in range(kh) for j in range(kw)]
    out = torch.add(windows[:, :, :, 0, :, 0], windows[:, :, :, offsets[1][0], :, offsets[1][1]])
    for i, j in offsets[2:]:
        out.add_(windows[:, :, :, i, :, j])
    return out.div_(kh * kw)


def _tiled_avg_pool_backward(grad_out: Tensor, shape: torch.Size, kh: int, kw: int) -> Tensor:
    """dL/dx of `_tiled_avg_pool`: every input element lies in one window, so it receives
    dL/dy / (kh·kw) of its window, as `avg_pool2d_backward` computes it (0 + dL/dy / (kh·kw))."""
    n, c, h, w = shape
    grad = grad_out.new_empty(n, c, h // kh, kh, w // kw, kw)
    share = (grad_out / (kh * kw)).unsqueeze(-1)  # [N, C, H/kh, W/kw, 1]
    for j in range(kw):
        grad[:, :, :, 0, :, j:j + 1] = share
    for i in range(1, kh):
        grad[:, :, :, i] = grad[:, :, :, 0]
    return grad.view(shape)


def _avg_pool(x: Tensor, pool: nn.AvgPool2d) -> Tensor:
    """`pool(x)` for `x [N, C, H, W]`, tiled where `_tiles` allows, else PyTorch's."""
    tiles = _tiles(x, pool)
    if tiles is not None:
        return _tiled_avg_pool(x, *tiles)
    return F.avg_pool2d(x, pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode,
                        pool.count_include_pad, pool.divisor_override)


class _AvgPool2d(torch.autograd.Function):
    """Average pooling that keeps only its input's shape for backward, not the input itself.

    PyTorch's own saves the whole input (here the spikes of the layer before, `[T·B, C, H, W]`),
    though average pooling's gradient does not depend on it: dL/dx spreads dL/dy evenly over each
    window. Same values and gradients as `F.avg_pool2d` (tests/test_engine_fast.py), less BPTT memory
    (tests/perf/test_memory.py). Windows that tile the input (the usual 2×2, stride 2) run
    `_tiled_avg_pool` and its backward.
    """

    @staticmethod
    def forward(ctx, x: Tensor, pool: nn.AvgPool2d) -> Tensor:
        ctx.input_meta = (x.shape, x.stride(), x.dtype, x.device)
        ctx.pool = pool
        ctx.tiles = _tiles(x, pool)
        return _avg_pool(x, pool)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        shape, stride, dtype, device = ctx.input_meta
        if ctx.tiles is not None:
            return _tiled_avg_pool_backward(grad_out, shape, *ctx.tiles), None
        pool = ctx.pool
        like_input = torch.empty_strided(shape, stride, dtype=dtype, device=device)  # read for its shape only
        kernel = _pair(pool.kernel_size)
        grad = torch.ops.aten.avg_pool2d_backward(
            grad_out, like_input, kernel, _pair(pool.stride if pool.stride is not None else kernel),
            _pair(pool.padding), pool.ceil_mode, pool.count_include_pad, pool.divisor_override)
        return grad, None


def _pair(value) -> list[int]:
    return [value, value] if isinstance(value, int) else list(value)


class Folded(nn.Module):
    """Runs a per-sample layer once over a whole sequence: `[T, B, ...] -> [T*B, ...] -> [T, B, ...]`.

    An `nn.AvgPool2d` runs as `_AvgPool2d`, which does not keep its input for backward.
    """

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: Tensor) -> Tensor:
        steps, batch = x.shape[:2]
        folded = x.flatten(0, 1)
        if type(self.layer) is nn.AvgPool2d and folded.dim() == 4:
            if torch.is_grad_enabled() and folded.requires_grad:
                out = _AvgPool2d.apply(folded, self.layer)
            else:
                out = _avg_pool(folded, self.layer)
        else:
            out = self.layer(folded)
        return out.unflatten(0, (steps, batch))


class ReLU(nn.ReLU):
    """The ANN's activation, declared as a producer of analog events (every op it feeds is a MAC)."""

    op_semantics = OpSemantics(EventKind.ANALOG, payload_bits=32, stateful=False)


def prefer_channels_last(network: nn.Module, device: torch.device | str) -> nn.Module:
    """Stores the convolution weights channels-last (NHWC) where that pays, on the CPU, for a
    network with a `Conv2d`; elsewhere it returns `network` untouched. Returns `network`.

    With NHWC weights oneDNN computes NHWC outputs, and the layers after it keep that layout
    (`Folded`, `LIF`, pooling), so pooling and convolutions run channels-last up to the flatten
    (its speed-up is measured by tests/perf). Values agree with NCHW up to float rounding.
    Opt-in: a layout change is visible to code that `.view`s activations.
    """
    if torch.device(device).type == "cpu" and any(isinstance(m, nn.Conv2d) for m in network.modules()):
        network.to(memory_format=torch.channels_last)
    return network


def neuron_layers(network: nn.Module) -> list[nn.Module]:
    """The modules of `network` that declare op semantics, in registration order."""
    return [m for m in network.modules() if getattr(m, "op_semantics", None) is not None]
