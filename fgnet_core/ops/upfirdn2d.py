"""upfirdn2d: upsample, pad, FIR-filter and downsample a batch of 2D images.

Semantics follow the StyleGAN2 op used by FG-Net's generator:

1. upsample by inserting ``up - 1`` zeros after every input sample,
2. pad with zeros (a negative pad crops),
3. convolve with ``kernel`` (a true convolution, i.e. correlation with the
   kernel flipped along both axes),
4. keep every ``down``-th sample, starting with the first.

Output size per axis: ``(in * up + pad0 + pad1 - k) // down + 1``.

Two implementations sit behind :func:`upfirdn2d`: a vectorised PyTorch
reference (any device, any float dtype, arbitrary-order gradients) and our
CUDA kernel (float32/float16/bfloat16/float64, built on first CUDA use).
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch
from torch.nn import functional as F

from . import _cuda_build

IntPair = Union[int, Sequence[int]]

__all__ = ["upfirdn2d", "upfirdn2d_ref", "parse_params", "output_size"]


# ----------------------------------------------------------------------------
# Argument handling


def _pair(value: IntPair, name: str) -> Tuple[int, int]:
    """Accept ``n`` or ``(n_x, n_y)``; StyleGAN2 code passes both forms."""
    if isinstance(value, int):
        pair = (value, value)
    else:
        pair = tuple(int(v) for v in value)
        if len(pair) != 2:
            raise ValueError(f"{name} must be an int or an (x, y) pair, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} factors must be >= 1, got {value!r}")
    return pair  # type: ignore[return-value]


def parse_params(up: IntPair, down: IntPair, pad: Sequence[int]):
    """Normalise to ``(up_x, up_y), (down_x, down_y), (px0, px1, py0, py1)``."""
    up_xy = _pair(up, "up")
    down_xy = _pair(down, "down")
    pad = tuple(int(p) for p in pad)
    if len(pad) == 2:
        pad = (pad[0], pad[1], pad[0], pad[1])
    if len(pad) != 4:
        raise ValueError(f"pad must have 2 or 4 entries, got {pad!r}")
    return up_xy, down_xy, pad


def output_size(in_h: int, in_w: int, kh: int, kw: int, up_xy, down_xy, pad) -> Tuple[int, int]:
    """Output (H, W); raises if the padded, upsampled image is smaller than the kernel."""
    px0, px1, py0, py1 = pad
    num_h = in_h * up_xy[1] + py0 + py1 - kh
    num_w = in_w * up_xy[0] + px0 + px1 - kw
    if num_h < 0 or num_w < 0:
        raise ValueError(
            f"upfirdn2d: padded input ({in_h}x{in_w}, up={up_xy}, pad={pad}) "
            f"is smaller than the {kh}x{kw} kernel"
        )
    return num_h // down_xy[1] + 1, num_w // down_xy[0] + 1


def _check_inputs(x: torch.Tensor, kernel: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"upfirdn2d expects x of shape [N, C, H, W], got {getattr(x, 'shape', x)}")
    if not isinstance(kernel, torch.Tensor) or kernel.ndim != 2:
        raise ValueError(f"upfirdn2d expects a 2D kernel [kh, kw], got {getattr(kernel, 'shape', kernel)}")
    if not x.is_floating_point():
        raise TypeError(f"upfirdn2d expects a floating point input, got {x.dtype}")


# ----------------------------------------------------------------------------
# Reference implementation


def _crop_or_pad(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Zero-pad (positive) or crop (negative) the last two dims of ``x``."""
    if min(x0, x1, y0, y1) < 0:
        h, w = x.shape[-2:]
        x = x[..., max(-y0, 0): h - max(-y1, 0), max(-x0, 0): w - max(-x1, 0)]
    if max(x0, x1, y0, y1) > 0:
        x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    return x


def upfirdn2d_ref(x: torch.Tensor, kernel: torch.Tensor, up: IntPair = 1, down: IntPair = 1,
                  pad: Sequence[int] = (0, 0)) -> torch.Tensor:
    """Pure PyTorch upfirdn2d built from depthwise (transposed) convolutions.

    Upsampling uses ``conv_transpose2d`` with ``stride=up`` so the inserted zeros
    are never multiplied; downsampling uses ``stride=down``. Everything is
    differentiable to any order.
    """
    _check_inputs(x, kernel)
    (up_x, up_y), (down_x, down_y), (px0, px1, py0, py1) = parse_params(up, down, pad)
    n, c, in_h, in_w = x.shape
    kh, kw = kernel.shape
    out_h, out_w = output_size(in_h, in_w, kh, kw, (up_x, up_y), (down_x, down_y), (px0, px1, py0, py1))

    k = kernel.to(device=x.device, dtype=x.dtype)
    if up_x == 1 and up_y == 1:
        # Valid true convolution == correlation with the flipped kernel.
        weight = k.flip([0, 1])[None, None].expand(c, 1, kh, kw)  # [C, 1, kh, kw]
        y = _crop_or_pad(x, px0, px1, py0, py1)  # [N, C, H + py0 + py1, W + px0 + px1]
        y = F.conv2d(y, weight, stride=(down_y, down_x), groups=c)
        return y[:, :, :out_h, :out_w]

    # conv_transpose2d(x, k, stride=up) is the *full* true convolution of the
    # zero-upsampled signal u with k:  z[i] = sum_m u[m] k[i - m].  The padded,
    # valid convolution we want is y[o] = z[o + k - 1 - pad0] (zero outside z).
    weight = k[None, None].expand(c, 1, kh, kw)  # [C, 1, kh, kw]
    z = F.conv_transpose2d(x, weight, stride=(up_y, up_x), groups=c)  # [N, C, (H-1)*up+kh, ...]
    zh, zw = z.shape[-2:]
    full_h = in_h * up_y + py0 + py1 - kh + 1  # length before downsampling
    full_w = in_w * up_x + px0 + px1 - kw + 1
    top = py0 - (kh - 1)
    left = px0 - (kw - 1)
    y = _crop_or_pad(z, left, full_w - zw - left, top, full_h - zh - top)
    if down_x > 1 or down_y > 1:
        y = y[:, :, ::down_y, ::down_x]
    return y


# ----------------------------------------------------------------------------
# CUDA implementation


def _grad_params(in_h: int, in_w: int, out_h: int, out_w: int, kh: int, kw: int, up_xy, down_xy, pad):
    """Parameters of the upfirdn2d that computes the input gradient.

    Transposing each stage: downsample^T inserts ``down - 1`` zeros, conv^T is
    a full convolution with the flipped kernel (pad ``k - 1`` both sides),
    pad^T crops ``pad`` and upsample^T keeps every ``up``-th sample. The zero
    insertion yields ``out * down`` samples while the forward conv produced
    ``in * up + pad0 + pad1 - k + 1``; the right pad absorbs the difference.
    """
    px0, px1, py0, py1 = pad
    gx0 = kw - 1 - px0
    gy0 = kh - 1 - py0
    gx1 = in_w * up_xy[0] - out_w * down_xy[0] + px0
    gy1 = in_h * up_xy[1] - out_h * down_xy[1] + py0
    return down_xy, up_xy, (gx0, gx1, gy0, gy1)


class _UpFirDn2dCuda(torch.autograd.Function):
    """Autograd wrapper; the backward is another call of this Function so
    gradients of any order stay on the CUDA kernel."""

    @staticmethod
    def forward(ctx, x, kernel, up_xy, down_xy, pad):  # x: [N, C, H, W], kernel: [kh, kw]
        ops = _cuda_build.get_ops(required=True)
        y = ops.upfirdn2d(x.contiguous(), kernel, up_xy[0], up_xy[1], down_xy[0], down_xy[1], *pad)
        ctx.save_for_backward(kernel)
        ctx.cfg = (x.shape[2], x.shape[3], y.shape[2], y.shape[3], up_xy, down_xy, pad)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (kernel,) = ctx.saved_tensors
        in_h, in_w, out_h, out_w, up_xy, down_xy, pad = ctx.cfg
        grad_x = None
        if ctx.needs_input_grad[0]:
            kh, kw = kernel.shape
            g_up, g_down, g_pad = _grad_params(in_h, in_w, out_h, out_w, kh, kw, up_xy, down_xy, pad)
            grad_x = _UpFirDn2dCuda.apply(grad_y, kernel.flip([0, 1]).contiguous(), g_up, g_down, g_pad)
        return grad_x, None, None, None, None


def _upfirdn2d_cuda(x, kernel, up_xy, down_xy, pad):
    acc_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    k = kernel.detach().to(device=x.device, dtype=acc_dtype).contiguous()
    return _UpFirDn2dCuda.apply(x, k, up_xy, down_xy, pad)


# ----------------------------------------------------------------------------
# Public entry point


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: IntPair = 1, down: IntPair = 1,
              pad: Sequence[int] = (0, 0), impl: str = "auto") -> torch.Tensor:
    """Upsample, pad, FIR-filter and downsample ``x`` [N, C, H, W].

    Args:
        x: input batch [N, C, H, W].
        kernel: FIR kernel [kh, kw] (a constant; no gradient is computed for it).
        up: upsampling factor, int or (x, y).
        down: downsampling factor, int or (x, y).
        pad: (p0, p1) for both axes or (px0, px1, py0, py1); negative crops.
        impl: 'auto' (CUDA kernel for CUDA tensors when it builds), 'ref' or 'cuda'.

    Returns:
        [N, C, out_h, out_w] with ``out = (in * up + p0 + p1 - k) // down + 1``.
    """
    _check_inputs(x, kernel)
    up_xy, down_xy, pad4 = parse_params(up, down, pad)
    output_size(x.shape[2], x.shape[3], kernel.shape[0], kernel.shape[1], up_xy, down_xy, pad4)
    if _cuda_build.use_cuda(x, impl, "upfirdn2d"):
        return _upfirdn2d_cuda(x, kernel, up_xy, down_xy, pad4)
    return upfirdn2d_ref(x, kernel, up_xy, down_xy, pad4)
