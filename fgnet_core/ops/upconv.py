"""The up-sampling modulated conv's composite: stride-2 transposed conv followed by the 4x4 FIR blur.

StyleGAN2 up-samples with `conv_transpose2d(stride=2)` and then `upfirdn2d(blur)`. Both steps are
linear, so they compose into ONE ordinary 3x3 convolution with 4x the output channels (the four
polyphase components of the composed 6x6 kernel) followed by a pixel shuffle: exact up to rounding,
no transposed conv, no separate blur pass. This file holds that composite and its pure-PyTorch
reference twin (`upconv2d_ref`, the two official steps):

- `fused_upsample_weight`: the composed polyphase weight (differentiable: its backward is products);
- `conv_phases` + `phase_shuffle`: the fused conv and the shuffle to [B, out, 2H, 2W];
- `shuffle_affine_lrelu`: the shuffle done inside the layer's epilogue (one pass, no grad);
- `depthwise_blur`: the blur alone as a depthwise conv, for the unfused (transposed-conv) form.

Everything is plain PyTorch, so the same code runs on CPU, which is how the parity tests check it.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from .upfirdn2d import upfirdn2d

__all__ = ["fused_upsample_weight", "conv_phases", "phase_shuffle", "upconv2d", "upconv2d_ref",
           "shuffle_affine_lrelu", "shuffle_affine_lrelu_ref", "blur_weight", "depthwise_blur"]


def fused_upsample_weight(weight: torch.Tensor, fir: torch.Tensor, pad: tuple[int, int]):
    """Transposed conv (stride 2) followed by upfirdn2d(fir, pad) as one ordinary convolution.

    weight: [out, in, k, k] as used by `conv_transpose2d(x, weight.transpose(0, 1), stride=2)`;
    fir: [T, T] the blur kernel (true convolution, as upfirdn2d applies it); pad: the blur's (p0, p1).
    Returns (G [4 * out, in, L, L], (pad_left, pad_right)) such that
    `phase_shuffle(conv2d(F.pad(x, pads), G), out)` equals the reference, where the output channel
    order of G is (phase_y, phase_x, out). Returns None when the shapes do not give a 2x output.

    Derivation (one axis): z[j] = sum_{2i + t = j} x[i] w[t]; y[o] = sum_u z[o + u - p0] fir'[u] with
    fir' the flipped taps. So y[o] = sum_i x[i] c[o - 2i] with c[d] = sum_{t - u = d - p0} w[t] fir'[u]
    (a correlation of w with fir'), and output phase a of y[2p + a] = sum_m x[p - m] c[2m + a] is an
    ordinary correlation of x with the taps c[2m + a].
    """
    out_c, in_c, k, _ = weight.shape
    taps = fir.shape[0]
    p0, p1 = pad
    # reference output length for input length H: 2H + k - 1 + p0 + p1 - taps; only 2H is handled here
    if k - 1 + p0 + p1 - taps != 0:
        return None
    firf = fir.flip([0, 1]).to(weight)
    # c[dmin + j] = sum_u w[j - (taps - 1) + u] fir'[u]: correlation of w zero-padded by taps - 1
    c = F.conv2d(F.pad(weight.reshape(out_c * in_c, 1, k, k), [taps - 1] * 4), firf[None, None])
    c = c.reshape(out_c, in_c, k + taps - 1, k + taps - 1)  # index j = d - dmin
    dmin, dmax = p0 - taps + 1, p0 + k - 1
    m_lo = min(math.ceil((dmin - a) / 2) for a in (0, 1))
    m_hi = max(math.floor((dmax - a) / 2) for a in (0, 1))
    length = m_hi - m_lo + 1
    # phase a, tap v (correlation over x, x index p + v - m_hi) reads c[2 (m_hi - v) + a] (zero outside):
    # a one-hot selection applied as a product, whose backward is again a product (advanced indexing
    # would need an accumulating scatter: 8.7 ms per training step on an H100 for the official model)
    n = k + taps - 1
    sel = [[[1.0 if j == 2 * (m_hi - v) + a - dmin else 0.0 for j in range(n)] for v in range(length)]
           for a in (0, 1)]
    sel = torch.tensor(sel, dtype=c.dtype, device=c.device)  # [2 (phase), L, n]
    g = torch.einsum("avj,oijk,bwk->aboivw", sel, c, sel)  # [2(ay), 2(ax), out, in, L, L]
    g = g.reshape(4 * out_c, in_c, length, length)
    return g, (m_hi, -m_lo)


def conv_phases(x: torch.Tensor, g: torch.Tensor, pads: tuple[int, int]) -> torch.Tensor:
    """x [B, in, H, W] -> polyphase output [B, 4 * out, H, W] of the composed weight G."""
    if pads[0] == pads[1]:
        return F.conv2d(x, g, padding=pads[0])
    return F.conv2d(F.pad(x, [pads[0], pads[1], pads[0], pads[1]]), g)


def phase_shuffle(y: torch.Tensor, out_c: int) -> torch.Tensor:
    """[B, 4*out, H, W] with channels (phase_y, phase_x, out) -> [B, out, 2H, 2W] (y[2h+ay, 2w+ax])."""
    b, _, h, w = y.shape
    if y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous():
        t = y.permute(0, 2, 3, 1).reshape(b, h, w, 2, 2, out_c)  # a view of the NHWC memory
        t = t.permute(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, out_c)  # one copy, out-channel runs kept
        return t.permute(0, 3, 1, 2)  # NCHW view, channels_last memory
    t = y.reshape(b, 2, 2, out_c, h, w).permute(0, 3, 4, 1, 5, 2)
    return t.reshape(b, out_c, 2 * h, 2 * w)


def upconv2d(x: torch.Tensor, weight: torch.Tensor, fir: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
    """x [B, in, H, W], weight [out, in, k, k] -> [B, out, 2H, 2W]: the fused form of `upconv2d_ref`
    (falls back to it for shapes that do not double)."""
    fused = fused_upsample_weight(weight, fir, pad)
    if fused is None:
        return upconv2d_ref(x, weight, fir, pad)
    g, pads = fused
    return phase_shuffle(conv_phases(x, g, pads), weight.shape[0])


def upconv2d_ref(x: torch.Tensor, weight: torch.Tensor, fir: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
    """The official two steps: transposed conv (stride 2), then the FIR blur."""
    return upfirdn2d(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2), fir, pad=pad)


def shuffle_affine_lrelu(y: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, c: int,
                         slope: float) -> torch.Tensor:
    """leaky_relu(phase_shuffle(y) * scale + shift) in one pass plus one in place (no grad: in-place out=).

    y: polyphase NHWC output [B, 4C, H, W] (channels_last); shift [1, C, 2H, 2W]; scale [B, C, 1, 1].
    The addcmul reads the polyphase layout [B, H, W, 2, 2, C] and writes the shuffled NHWC map
    [B, H, 2, W, 2, C], so the shuffle costs no separate copy."""
    b, _, h, w = y.shape
    y6 = y.permute(0, 2, 3, 1).view(b, h, w, 2, 2, c)
    z = torch.empty((b, h, 2, w, 2, c), dtype=y.dtype, device=y.device)
    shift6 = shift.permute(0, 2, 3, 1).reshape(1, h, 2, w, 2, c).permute(0, 1, 3, 2, 4, 5)
    torch.addcmul(shift6, y6, scale.reshape(-1, 1, 1, 1, 1, c), out=z.permute(0, 1, 3, 2, 4, 5))
    F.leaky_relu_(z, slope)
    return z.view(b, 2 * h, 2 * w, c).permute(0, 3, 1, 2)  # [B, C, 2H, 2W], channels_last


def shuffle_affine_lrelu_ref(y: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, c: int,
                             slope: float) -> torch.Tensor:
    """Reference twin of `shuffle_affine_lrelu`: shuffle, then addcmul, then the activation."""
    return F.leaky_relu(torch.addcmul(shift, phase_shuffle(y, c), scale), slope)


def blur_weight(fir: torch.Tensor, channels: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The FIR kernel as depthwise conv weights [C, 1, T, T] (flipped: upfirdn2d is a true convolution)."""
    return fir.flip([0, 1]).to(dtype or fir.dtype)[None, None].expand(channels, 1, -1, -1)


def depthwise_blur(y: torch.Tensor, weight: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
    """upfirdn2d(y, fir, pad=pad) (no up/down) as a depthwise conv; weight from `blur_weight`."""
    c = y.shape[1]
    p0, p1 = pad
    if p0 == p1:
        return F.conv2d(y, weight, padding=p0, groups=c)
    if min(p0, p1) < 0:  # a negative pad crops
        h, w = y.shape[-2:]
        y = y[..., max(-p0, 0): h - max(-p1, 0), max(-p0, 0): w - max(-p1, 0)]
    return F.conv2d(F.pad(y, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)]), weight, groups=c)
