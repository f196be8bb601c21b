"""A StyleGAN2-style residual discriminator, sized to match a small generator.

FG-Net needs no discriminator at run time; the workspace uses this one to pretrain its tiny StyleGAN2 as a
GAN on unlabelled faces (`training.gan`). The layout follows StyleGAN2's: RGB in, residual blocks that halve
the resolution (blur-free average pooling keeps it cheap on a CPU), minibatch standard deviation at 4x4,
one conv, two linear layers, one logit per image.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

_SLOPE = 0.2  # leaky ReLU slope of StyleGAN2


def tiny_discriminator_channels(size: int, width: int = 32) -> dict[int, int]:
    """Width per resolution: half `width` at the input resolution, `width` below it."""
    return {2 ** k: (width // 2 if 2 ** k == size else width) for k in range(2, int(math.log2(size)) + 1)}


class _ResBlock(nn.Module):
    """conv3x3 -> lrelu -> conv3x3 -> lrelu -> 2x average pool, plus a pooled 1x1 skip, scaled by 1/sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, in_ch, 3, padding=1)
        self.conv2 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.leaky_relu(self.conv1(x), _SLOPE)
        y = F.avg_pool2d(F.leaky_relu(self.conv2(y), _SLOPE), 2)
        return (y + self.skip(F.avg_pool2d(x, 2))) * (1 / math.sqrt(2))


class Discriminator(nn.Module):
    """images [B, 3, size, size] in [-1, 1] -> realness logits [B]."""

    def __init__(self, size: int = 64, channels: dict[int, int] | None = None, mbstd_group: int = 4):
        super().__init__()
        self.size = size
        ch = channels or tiny_discriminator_channels(size)
        self.from_rgb = nn.Conv2d(3, ch[size], 1)
        blocks, res = [], size
        while res > 4:
            blocks.append(_ResBlock(ch[res], ch[res // 2]))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        self.mbstd_group = mbstd_group
        self.final_conv = nn.Conv2d(ch[4] + 1, ch[4], 3, padding=1)
        self.final_linear = nn.Linear(ch[4] * 16, ch[4])
        self.out = nn.Linear(ch[4], 1)

    def _minibatch_stddev(self, x: torch.Tensor) -> torch.Tensor:
        """Append the std over a group of images (averaged to one map): lets D see a lack of variety."""
        b, c, h, w = x.shape
        g = min(self.mbstd_group, b)
        while b % g:
            g -= 1
        y = x.view(g, b // g, c, h, w)
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # [B/g]
        y = y.view(1, b // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(b, 1, h, w)
        return torch.cat([x, y], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.from_rgb(images), _SLOPE)
        x = self.blocks(x)  # [B, C, 4, 4]
        x = F.leaky_relu(self.final_conv(self._minibatch_stddev(x)), _SLOPE)
        x = F.leaky_relu(self.final_linear(x.flatten(1)), _SLOPE)
        return self.out(x).squeeze(1)
