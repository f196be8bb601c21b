"""pSp `GradualStyleEncoder` (IR-SE-50 backbone + feature-pyramid style heads), official key names.

Loads the `encoder.*` part of pSp's `psp_ffhq_encode` checkpoint (prefix stripped) and FG-Net's
`pspencoder` entry unchanged. Widths and depths are parameters so small presets share the topology.
In fast mode (`self.fast`, see `models/modes.py`) the units run in the compute dtype and layout with
float32 gates, and the style heads of one pyramid level run as one network.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fgnet_core.models.modes import FastMode
from fgnet_core.models.stylegan2_layers import EqualLinear

IR_SE_50_UNITS = (3, 4, 14, 3)
IR_SE_50_WIDTHS = (64, 128, 256, 512)


class SqueezeExcite(nn.Module):
    """Channel attention: x * sigmoid(fc2(relu(fc1(avgpool(x)))))."""

    fast: FastMode | None = None  # None: the reference

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, max(1, channels // reduction), kernel_size=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(max(1, channels // reduction), channels, kernel_size=1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fast is not None:  # the gate in float32 (a [B, C] vector: free), applied in the compute dtype
            pooled = torch.mean(x, dim=(2, 3), keepdim=True, dtype=torch.float32)  # [B, C, 1, 1]
            g = F.relu(F.conv2d(pooled, self.fc1.weight.float()))
            g = torch.sigmoid(F.conv2d(g, self.fc2.weight.float()))
            return x * g.to(x.dtype)
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class BottleneckIRSE(nn.Module):
    """Improved-residual unit with squeeze-excitation (ArcFace IR-SE)."""

    fast: FastMode | None = None  # None: the reference

    def __init__(self, in_channel: int, depth: int, stride: int, se: bool = True):
        super().__init__()
        self.stride, self.pool_shortcut = stride, in_channel == depth
        if in_channel == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channel, depth, (1, 1), stride, bias=False), nn.BatchNorm2d(depth))
        layers = [nn.BatchNorm2d(in_channel),
                  nn.Conv2d(in_channel, depth, (3, 3), (1, 1), 1, bias=False),
                  nn.PReLU(depth),
                  nn.Conv2d(depth, depth, (3, 3), stride, 1, bias=False),
                  nn.BatchNorm2d(depth)]
        if se:
            layers.append(SqueezeExcite(depth, 16))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fast = self.fast
        if fast is None:
            return self.res_layer(x) + self.shortcut_layer(x)
        if self.pool_shortcut:  # MaxPool2d(1, s) is a strided pick
            shortcut = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        else:
            conv, bn = self.shortcut_layer
            shortcut = fast.batch_norm(bn, fast.conv(conv, x))
        bn1, conv1, prelu, conv2, bn2 = self.res_layer[:5]
        r = fast.conv(conv1, fast.batch_norm(bn1, x))
        r = fast.batch_norm(bn2, fast.conv(conv2, F.prelu(r, fast.b(prelu.weight))))
        if len(self.res_layer) > 5:
            r = self.res_layer[5](r)  # squeeze-excitation
        return r + shortcut


class GradualStyleBlock(nn.Module):
    """Strided convs down to 1x1, then an equalized linear: one W+ row."""

    def __init__(self, in_c: int, out_c: int, spatial: int):
        super().__init__()
        self.out_c = out_c
        num_pools = int(np.log2(spatial))
        modules: list[nn.Module] = [nn.Conv2d(in_c, out_c, 3, stride=2, padding=1), nn.LeakyReLU()]
        for _ in range(num_pools - 1):
            modules += [nn.Conv2d(out_c, out_c, 3, stride=2, padding=1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*modules)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).reshape(-1, self.out_c))


def n_styles_for(output_size: int) -> int:
    """W+ rows of a generator of this resolution (18 at 1024), as pSp computes it."""
    return int(math.log2(output_size)) * 2 - 2


class GradualStyleEncoder(nn.Module):
    """Image [B, input_nc, H, W] in [-1, 1] -> W+ offsets [B, n_styles, style_dim] (before latent_avg).

    The coarse / middle / fine heads read the 1/16, 1/8 and 1/4 scale pyramid levels (16, 32 and
    64 px for a 256 input).
    """

    fast: FastMode | None = None  # None: the reference

    def __init__(self, n_styles: int = 18, input_nc: int = 3, style_dim: int = 512,
                 units=IR_SE_50_UNITS, widths=IR_SE_50_WIDTHS, input_size: int = 256, se: bool = True):
        super().__init__()
        if len(units) != 4 or len(widths) != 4:
            raise ValueError("the IR-SE backbone has four stages: give four unit counts and four widths")
        self.input_layer = nn.Sequential(nn.Conv2d(input_nc, widths[0], (3, 3), 1, 1, bias=False),
                                         nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0]))
        modules, in_channel = [], widths[0]
        self.tap_indices = []  # last unit of stages 2, 3, 4 -> c1, c2, c3
        for stage, (count, depth) in enumerate(zip(units, widths)):
            for unit in range(count):
                modules.append(BottleneckIRSE(in_channel, depth, 2 if unit == 0 else 1, se=se))
                in_channel = depth
            if stage >= 1:
                self.tap_indices.append(len(modules) - 1)
        self.body = nn.Sequential(*modules)

        self.style_count = n_styles
        self.coarse_ind, self.middle_ind = 3, 7
        spatial = {0: input_size // 16, 1: input_size // 8, 2: input_size // 4}
        self.styles = nn.ModuleList()
        for i in range(n_styles):
            level = 0 if i < self.coarse_ind else (1 if i < self.middle_ind else 2)
            self.styles.append(GradualStyleBlock(widths[3], style_dim, spatial[level]))
        self.latlayer1 = nn.Conv2d(widths[2], widths[3], kernel_size=1)
        self.latlayer2 = nn.Conv2d(widths[1], widths[3], kernel_size=1)

    @staticmethod
    def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fast = self.fast
        if fast is None:
            x = self.input_layer(x)
        else:  # the compute dtype and layout from here on; W+ rows come back float32
            conv, bn, prelu = self.input_layer
            x = fast.conv(conv, fast.fmt(x.to(fast.dt)))
            x = F.prelu(fast.batch_norm(bn, x), fast.b(prelu.weight))
        taps = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in self.tap_indices:
                taps.append(x)
        c1, c2, c3 = taps  # [B,128,64,64], [B,256,32,32], [B,512,16,16] at 256 px
        if fast is not None:
            coarse = self._level_heads(range(self.coarse_ind), c3)
            p2 = self._upsample_add(c3, fast.conv(self.latlayer1, c2))
            middle = self._level_heads(range(self.coarse_ind, self.middle_ind), p2)
            p1 = self._upsample_add(p2, fast.conv(self.latlayer2, c1))
            fine = self._level_heads(range(self.middle_ind, self.style_count), p1)
            return torch.cat([coarse, middle, fine], dim=1)  # [B, n_styles, D] float32
        latents = [self.styles[j](c3) for j in range(self.coarse_ind)]
        p2 = self._upsample_add(c3, self.latlayer1(c2))
        latents += [self.styles[j](p2) for j in range(self.coarse_ind, self.middle_ind)]
        p1 = self._upsample_add(p2, self.latlayer2(c1))
        latents += [self.styles[j](p1) for j in range(self.middle_ind, self.style_count)]
        return torch.stack(latents, dim=1)  # [B, n_styles, style_dim]

    def _level_heads(self, indices: range, feat: torch.Tensor) -> torch.Tensor:
        """Fast mode: the heads reading one level as one network (one launch per depth instead of one per
        head): the first strided convs of all heads as one wide conv, the following ones as one grouped
        conv (groups = heads), the final linears as one batched matmul in float32. -> [B, len(indices), D]."""
        fast = self.fast
        heads = [self.styles[j] for j in indices]
        n, d = len(heads), heads[0].out_c
        depth = len(heads[0].convs)
        if any(len(h.convs) != depth or h.out_c != d for h in heads):
            raise NotImplementedError("fast mode: style heads of one level must have the same shape")
        y = feat
        for pos in range(0, depth, 2):  # convs[pos] a Conv2d, convs[pos + 1] its LeakyReLU
            convs = [h.convs[pos] for h in heads]
            w = fast.derived(("heads_w", id(self), indices[0], pos), [c.weight for c in convs],
                             lambda: fast.fmt(torch.cat([c.weight for c in convs]).to(fast.dt)))
            b = fast.derived(("heads_b", id(self), indices[0], pos), [c.bias for c in convs],
                             lambda: torch.cat([c.bias for c in convs]).to(fast.dt))
            y = F.conv2d(y, w, b, convs[0].stride, convs[0].padding, groups=1 if pos == 0 else n)
            y = F.leaky_relu(y, heads[0].convs[pos + 1].negative_slope, inplace=True)
        y = y.float().reshape(-1, n, d)  # [B, n, D], spatial 1x1
        lins = [h.linear for h in heads]
        w = torch.stack([lin.weight * lin.scale for lin in lins])  # [n, D_out, D_in]
        b = torch.stack([lin.bias * lin.lr_mul for lin in lins])  # [n, D_out]
        return torch.einsum("bni,noi->bno", y, w) + b


class PSPEncoder(nn.Module):
    """GradualStyleEncoder plus pSp's `latent_avg`: images -> W+ [B, n_styles, style_dim].

    `latent_avg` is a buffer so it travels with `.to()` but is not trained (FG-Net adds it with a
    forward hook and keeps it when model.pth overrides the encoder weights).
    """

    def __init__(self, encoder: GradualStyleEncoder, latent_avg: torch.Tensor | None = None):
        super().__init__()
        self.encoder = encoder
        style_dim = encoder.styles[0].out_c
        if latent_avg is None:
            latent_avg = torch.zeros(encoder.style_count, style_dim)
        self.register_buffer("latent_avg", latent_avg.reshape(-1, style_dim).clone().float())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        offsets = self.encoder(images)  # [B, n_styles, D]
        return offsets + self.latent_avg.to(offsets.dtype).unsqueeze(0).expand_as(offsets)
