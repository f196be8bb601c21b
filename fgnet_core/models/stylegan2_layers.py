"""StyleGAN2 building blocks with the parameter names of the official (rosinality-format) checkpoints.

Equalized learning rate: weights are stored at unit scale and multiplied by 1/sqrt(fan_in) at run
time, so the stored tensors match the official files exactly.

Layers with modes read `self.fast` (`models/modes.py`): None is the reference forward; a FastMode runs
the fast branch inline, with the same parameters.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from fgnet_core.models.modes import LRELU_GAIN, FastMode
from fgnet_core.ops import FusedLeakyReLU, fused_bias_leaky_relu, upfirdn2d
from fgnet_core.ops.upconv import (
    blur_weight, conv_phases, depthwise_blur, fused_upsample_weight, phase_shuffle, shuffle_affine_lrelu,
)

BLUR_KERNEL = (1, 3, 3, 1)


class PixelNorm(nn.Module):
    """Normalise each latent vector to unit RMS (the first step of the mapping network)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


def make_fir_kernel(taps=BLUR_KERNEL, gain: float = 1.0) -> torch.Tensor:
    """Separable FIR taps -> normalised 2D kernel times `gain`."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None] if k.ndim == 1 else k
    return k / k.sum() * gain


class Upsample(nn.Module):
    """2x FIR up-sampling (used on the RGB skip path)."""

    def __init__(self, taps=BLUR_KERNEL, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_fir_kernel(taps, factor**2))
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class Blur(nn.Module):
    """FIR low-pass applied after a strided transposed convolution."""

    def __init__(self, pad: tuple[int, int], taps=BLUR_KERNEL, upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_fir_kernel(taps, upsample_factor**2))
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate; optional fused bias + leaky ReLU."""

    fast: FastMode | None = None  # None: the reference

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.fast is not None:
            # float32 whatever the compute dtype (styles and W+ rows: cheap and sensitive); the activation as
            # plain PyTorch, which a compiler can fuse
            out = F.linear(x.float(), self.weight * self.scale, bias if not self.activation else None)
            if self.activation:
                if bias is not None:
                    out = out + bias
                out = F.leaky_relu(out, 0.2) * LRELU_GAIN
            return out
        if self.activation:
            return fused_bias_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias=bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, activation={self.activation}"


class ModulatedConv2d(nn.Module):
    """Style-modulated (and optionally demodulated) convolution.

    `mode="grouped"` (the reference) folds the styles into per-sample weights and runs one grouped
    conv, reproducing the official numerics. `mode="batched"` scales the activations instead
    (x * s, shared-weight conv, * demod): the same function, rounding aside, and much faster for
    batches on CPU and GPU. In fast mode (`self.fast`) the batched form runs in the compute dtype and
    layout, and an up-sampling conv can run fused (`ops/upconv.py`); see `fast_conv`.
    """

    MODES = ("grouped", "batched")
    fast: FastMode | None = None  # None: the reference (`mode`)

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, taps=BLUR_KERNEL, mode: str = "grouped"):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.upsample, self.demodulate = upsample, demodulate
        self.mode = mode
        if upsample:
            factor = 2
            p = (len(taps) - factor) - (kernel_size - 1)
            self.blur = Blur(((p + 1) // 2 + factor - 1, p // 2 + 1), taps, upsample_factor=factor)
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)

    def modulated_weight(self, style: torch.Tensor) -> torch.Tensor:
        """[B, style_dim] -> per-sample weights [B, out, in, k, k]."""
        batch = style.shape[0]
        s = self.modulation(style).view(batch, 1, self.in_channel, 1, 1)
        weight = self.scale * self.weight * s
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)  # [B, out]
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        return weight

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if self.fast is not None:
            y, demod, _ = self.fast_conv(x, self.modulation(style))  # [B, out, H', W'], [B, out]
            return y if demod is None else y * demod.to(y.dtype)[:, :, None, None]
        if self.mode == "batched":
            return self._forward_batched(x, style)
        if self.mode != "grouped":
            raise ValueError(f"unknown modulated conv mode {self.mode!r}; expected one of {self.MODES}")
        batch, in_channel, height, width = x.shape  # [B, in, H, W]
        k = self.kernel_size
        weight = self.modulated_weight(style)
        x = x.reshape(1, batch * in_channel, height, width)
        if self.upsample:
            # transposed conv wants [in, out/groups, k, k] per group
            weight = weight.transpose(1, 2).reshape(batch * in_channel, self.out_channel, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=batch)
            out = out.view(batch, self.out_channel, out.shape[2], out.shape[3])
            return self.blur(out)
        weight = weight.reshape(batch * self.out_channel, in_channel, k, k)
        out = F.conv2d(x, weight, padding=self.padding, groups=batch)
        return out.view(batch, self.out_channel, out.shape[2], out.shape[3])

    def _forward_batched(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        s = self.modulation(style)  # [B, in]
        weight = (self.scale * self.weight[0]).to(x.dtype)  # [out, in, k, k]
        x = x * s.to(x.dtype).view(batch, self.in_channel, 1, 1)
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), padding=0, stride=2)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            demod = self.demod_factors(s)  # [B, out]
            out = out * demod.to(out.dtype).view(batch, self.out_channel, 1, 1)
        return self.blur(out) if self.upsample else out

    def demod_factors(self, s: torch.Tensor) -> torch.Tensor | None:
        """1 / ||w * s|| per sample and output channel ([B, out], float32 for float32 styles), or None.
        Sum over (in, k, k) of (w * s)^2 = (s^2) @ (sum over k, k of w^2)^T: no per-sample weights."""
        if not self.demodulate:
            return None
        w_sq = (self.scale * self.weight[0]).pow(2).sum([2, 3])  # [out, in]
        return torch.rsqrt(s.pow(2) @ w_sq.t() + 1e-8)

    def use_fused_up(self) -> bool:
        """Fast mode: run this up-sampling conv as one fused conv + pixel shuffle (`settings.upconv`)?"""
        taps, (p0, p1) = self.blur.kernel.shape[0], self.blur.pad
        if self.kernel_size - 1 + p0 + p1 - taps != 0:  # the composed kernel would not give a 2x output
            return False
        settings = self.fast.settings
        if settings.upconv != "auto":
            return settings.upconv == "fused"
        # measured on an H100 (bf16, batch 16): fusing every layer is faster for inference (342 vs 293
        # images/s eager, 519 vs 442 compiled), fusing only the wide-map layers for training (75 vs 71)
        return not torch.is_grad_enabled() or self.out_channel <= settings.fused_up_max_out

    def fast_conv(self, x: torch.Tensor, s: torch.Tensor, keep_phases: bool = False):
        """Fast mode: x [B, in, H, W] modulated by s [B, in] (float32), conv with the shared weight, no
        demodulation. Returns (y, demod [B, out] float32 or None, phases).

        With `keep_phases` a fused up-sampling conv returns its [B, 4*out, H, W] polyphase output unshuffled
        (phases=True) for the caller to shuffle inside its epilogue."""
        fast = self.fast
        wf = self.weight[0]  # [out, in, k, k], float32, unit scale
        x = fast.fmt(x * s.to(x.dtype)[:, :, None, None])
        if self.upsample and self.use_fused_up():
            def make_fused():
                g, pads = fused_upsample_weight(wf * self.scale, self.blur.kernel, self.blur.pad)
                return fast.fmt(g.to(fast.dt)), pads  # [4 * out, in, 3, 3]

            g, pads = fast.derived(("up", id(self)), (self.weight,), make_fused)
            y = conv_phases(x, g, pads)  # [B, 4 * out, H, W]
            if keep_phases:
                return y, self.demod_factors(s), True
            y = phase_shuffle(y, self.out_channel)  # [B, out, 2H, 2W]
        elif self.upsample:  # transposed conv, then the blur as a depthwise conv
            wt = fast.derived(("wt", id(self)), (self.weight,),
                              lambda: fast.fmt((wf * self.scale).transpose(0, 1).to(fast.dt)))
            y = F.conv_transpose2d(x, wt, stride=2)
            c = y.shape[1]
            k = fast.derived(("blur", id(self), c), (self.blur.kernel,),
                             lambda: fast.fmt(blur_weight(self.blur.kernel, c, fast.dt)))
            y = depthwise_blur(y, k, self.blur.pad)
        else:
            w = fast.derived(("mw", id(self)), (self.weight,), lambda: fast.fmt((wf * self.scale).to(fast.dt)))
            y = F.conv2d(x, w, padding=self.padding)
        return y, self.demod_factors(s), False

    def extra_repr(self) -> str:
        return (f"{self.in_channel}, {self.out_channel}, {self.kernel_size}, "
                f"upsample={self.upsample}, demodulate={self.demodulate}, mode={self.mode}")


class NoiseInjection(nn.Module):
    """Adds per-pixel noise scaled by a learned scalar."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight * noise


class ConstantInput(nn.Module):
    """The learned 4x4 constant the synthesis network starts from."""

    fast: FastMode | None = None  # None: the reference

    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        if self.fast is not None:  # a view, not a copy: the first conv reads it
            return self.input.to(self.fast.dt).expand(batch, -1, -1, -1)  # [B, C, 4, 4]
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    """Modulated conv -> noise -> bias + leaky ReLU; its output is one FG-Net feature map."""

    fast: FastMode | None = None  # None: the reference

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, taps=BLUR_KERNEL, demodulate: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim,
                                    demodulate=demodulate, upsample=upsample, taps=taps)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        fast = self.fast
        if fast is None:
            return self.activate(self.noise(self.conv(x, style), noise=noise))
        # fast: modconv -> * demod -> + noise * w -> + bias -> leaky ReLU * sqrt(2) as one addcmul + one
        # activation; in no-grad eager channels_last the pixel shuffle of a fused up-sampling conv happens
        # inside that epilogue
        s = self.conv.modulation(style)  # [B, in], float32
        keep_phases = noise is not None and fast.cl and fast.eager_no_grad()
        y, demod, phases = self.conv.fast_conv(x, s, keep_phases=keep_phases)
        c, slope = self.conv.out_channel, self.activate.negative_slope

        def make_shift(n):  # leaky_relu(z) * g == leaky_relu(z * g) for g > 0: the gain folds into the affine part
            return fast.fmt(((self.noise.weight * n + self.activate.bias.view(1, c, 1, 1)) * LRELU_GAIN).to(y.dtype))

        if noise is None:  # fresh noise per call (sampling): never cached
            noise = torch.randn(y.shape[0], 1, *y.shape[2:], device=y.device)
            shift = make_shift(noise)  # [B, C, H, W]
        else:
            shift = fast.derived(("shift", id(self)), (self.noise.weight, self.activate.bias, noise),
                                 lambda: make_shift(noise))  # [1, C, H, W]
        if demod is None:
            scale = torch.full((1, c, 1, 1), LRELU_GAIN, device=y.device)
        else:
            scale = (demod * LRELU_GAIN)[:, :, None, None]  # [B, C, 1, 1]
        if phases and y.is_contiguous(memory_format=torch.channels_last):
            return shuffle_affine_lrelu(y, shift, scale.to(y.dtype), c, slope)
        if phases:
            y = phase_shuffle(y, c)
        z = torch.addcmul(shift, y, scale.to(y.dtype))
        # in place also under autograd: leaky ReLU (slope > 0) differentiates from its output, addcmul does
        # not keep its own output, so one activation-sized tensor per layer is saved
        return F.leaky_relu(z, slope, inplace=True)


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB plus the up-sampled skip from the previous resolution."""

    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True, taps=BLUR_KERNEL):
        super().__init__()
        if upsample:
            self.upsample = Upsample(taps)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out
