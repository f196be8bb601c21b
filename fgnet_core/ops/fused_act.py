"""Fused bias + leaky ReLU + gain, the activation of every StyleGAN2 layer.

``out = leaky_relu(x + bias, negative_slope) * scale`` with ``bias`` broadcast
over dim 1 of ``x`` (rank >= 2: [B, C] from linear layers, [B, C, H, W] from
convolutions). The CUDA path does it in one pass; its backward reuses the
saved output (its sign tells which branch each element took), so the
pre-activation never has to be stored.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F

from . import _cuda_build

__all__ = ["fused_bias_leaky_relu", "fused_leaky_relu", "fused_bias_leaky_relu_ref", "FusedLeakyReLU"]


def _check_inputs(x: torch.Tensor, bias: Optional[torch.Tensor]) -> None:
    if x.ndim < 2:
        raise ValueError(f"fused_bias_leaky_relu expects x with rank >= 2 ([B, C, ...]), got {tuple(x.shape)}")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != x.shape[1]):
        raise ValueError(f"bias must have shape [{x.shape[1]}], got {tuple(bias.shape)}")


def fused_bias_leaky_relu_ref(x: torch.Tensor, bias: Optional[torch.Tensor] = None,
                              negative_slope: float = 0.2, scale: float = 2 ** 0.5) -> torch.Tensor:
    """Pure PyTorch reference; differentiable to any order."""
    _check_inputs(x, bias)
    if bias is not None:
        x = x + bias.to(x.dtype).view(1, -1, *([1] * (x.ndim - 2)))  # [B, C, 1, ...]
    return F.leaky_relu(x, negative_slope) * scale


# ----------------------------------------------------------------------------
# CUDA implementation


class _ActGradCuda(torch.autograd.Function):
    """grad_x = grad_y * scale * (1 if branch positive else slope).

    Linear in grad_y with a mask that is piecewise constant in y, so its own
    backward is the same masked product (and zero w.r.t. y).
    """

    @staticmethod
    def forward(ctx, grad_y, y, negative_slope, scale):
        ops = _cuda_build.get_ops(required=True)
        grad_x = ops.fused_bias_lrelu_grad(grad_y.contiguous(), y, negative_slope, scale)
        ctx.save_for_backward(y)
        ctx.params = (negative_slope, scale)
        return grad_x

    @staticmethod
    def backward(ctx, grad_grad_x):
        (y,) = ctx.saved_tensors
        grad_grad_y = _ActGradCuda.apply(grad_grad_x, y, *ctx.params)
        return grad_grad_y, None, None, None


class _FusedBiasLeakyReLUCuda(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bias, negative_slope, scale):  # x: [B, C, ...], bias: [C] or None
        ops = _cuda_build.get_ops(required=True)
        b = bias.to(x.dtype).contiguous() if bias is not None else None
        y = ops.fused_bias_lrelu(x.contiguous(), b, negative_slope, scale)
        ctx.save_for_backward(y)
        ctx.params = (negative_slope, scale)
        ctx.bias_dtype = bias.dtype if bias is not None else None
        return y

    @staticmethod
    def backward(ctx, grad_y):
        (y,) = ctx.saved_tensors
        grad_x = _ActGradCuda.apply(grad_y, y, *ctx.params)
        grad_bias = None
        if ctx.bias_dtype is not None and ctx.needs_input_grad[1]:
            dims = [0] + list(range(2, grad_x.ndim))
            grad_bias = grad_x.sum(dim=dims).to(ctx.bias_dtype)  # [C]
        return grad_x, grad_bias, None, None


# ----------------------------------------------------------------------------
# Public API


def fused_bias_leaky_relu(x: torch.Tensor, bias: Optional[torch.Tensor] = None,
                          negative_slope: float = 0.2, scale: float = 2 ** 0.5,
                          impl: str = "auto") -> torch.Tensor:
    """``leaky_relu(x + bias[None, :, None, ...], negative_slope) * scale``.

    Args:
        x: [B, C, ...] tensor (rank >= 2).
        bias: [C] or None.
        negative_slope: slope for negative inputs (the CUDA kernel needs >= 0,
            because its backward reads the branch off the output's sign).
        scale: output gain; StyleGAN2 uses sqrt(2) to keep the variance.
        impl: 'auto', 'ref' or 'cuda' (see :mod:`fgnet_core.ops`).
    """
    _check_inputs(x, bias)
    if impl not in _cuda_build.IMPLS:
        raise ValueError(f"fused_bias_leaky_relu: impl must be one of {_cuda_build.IMPLS}, got {impl!r}")
    negative_slope, scale = float(negative_slope), float(scale)
    if negative_slope < 0:
        if impl == "cuda":
            raise ValueError("fused_bias_leaky_relu(impl='cuda') needs negative_slope >= 0")
        return fused_bias_leaky_relu_ref(x, bias, negative_slope, scale)
    if _cuda_build.use_cuda(x, impl, "fused_bias_leaky_relu"):
        if bias is not None and bias.device != x.device:
            raise ValueError(f"bias is on {bias.device} but x is on {x.device}")
        return _FusedBiasLeakyReLUCuda.apply(x, bias, negative_slope, scale)
    return fused_bias_leaky_relu_ref(x, bias, negative_slope, scale)


fused_leaky_relu = fused_bias_leaky_relu  # the name used by rosinality's stylegan2-pytorch


class FusedLeakyReLU(nn.Module):
    """Learned per-channel bias followed by the scaled leaky ReLU.

    The parameter is called ``bias`` ([channel], zeros) so official StyleGAN2
    checkpoints load as ``...activate.bias``.
    """

    def __init__(self, channel: int, bias: bool = True, negative_slope: float = 0.2,
                 scale: float = 2 ** 0.5, impl: str = "auto"):
        super().__init__()
        if bias:
            self.bias = nn.Parameter(torch.zeros(channel))
        else:
            self.register_parameter("bias", None)
        self.negative_slope = negative_slope
        self.scale = scale
        self.impl = impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, ...]
        return fused_bias_leaky_relu(x, self.bias, self.negative_slope, self.scale, impl=self.impl)

    def extra_repr(self) -> str:
        return f"channel={None if self.bias is None else self.bias.shape[0]}, " \
               f"negative_slope={self.negative_slope}, scale={self.scale:.4f}"
