"""FG-Net's Pyramid CNN Interpreter: StyleGAN2 feature pyramid -> one heatmap per output channel.

Structure and parameter names follow the official `pyramid_interpreter` (keys `layerK.N.*`), so the
`interpreter` entry of an FG-Net `model.pth` loads unchanged. Each block is
[Upsample x2 (bilinear, align_corners=True)] -> Conv -> ReLU -> Dropout -> BatchNorm, and the next
pyramid level is added after BatchNorm. Levels larger than the heatmap are first resized to it with
bilinear align_corners=True (the official `Interpolate` helper inverts its flag, so this is what runs).

In fast mode (`self.fast`, see `models/modes.py`) the resizes follow the mode's resize setting and an
eval-mode BatchNorm becomes one `addcmul` fused with the pyramid addition.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from fgnet_core.models.modes import FastMode


class InterpreterBlock(nn.Sequential):
    """[Upsample x2 (bilinear)] -> Conv -> ReLU -> Dropout -> BatchNorm [-> output Conv]: one pyramid step.

    A Sequential, so its keys are the official `N.*`. `forward(x, add)` adds the next pyramid level after
    the BatchNorm (in fast mode inside the BatchNorm's epilogue)."""

    fast: FastMode | None = None  # None: the reference

    def __init__(self, c_in: int, c_out: int, kernel: int, dropout: float, upsample: bool,
                 out_channels: int | None = None):
        layers: list[nn.Module] = []
        if upsample:
            layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True))
        layers += [nn.Conv2d(c_in, c_out, kernel_size=kernel, padding=kernel // 2), nn.ReLU(),
                   nn.Dropout(p=dropout), nn.BatchNorm2d(c_out)]
        if out_channels is not None:  # the head: the output conv on the last level
            layers.append(nn.Conv2d(c_out, out_channels, kernel_size=5, padding=2))
        super().__init__(*layers)
        self.upsample = upsample
        self.head = out_channels is not None

    def forward(self, x: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
        fast = self.fast
        if fast is None:
            x = super().forward(x)
            return x if add is None else x + add
        first = 1 if self.upsample else 0
        conv, drop, bn = self[first], self[first + 2], self[first + 3]
        if self.upsample:
            up = self[0]
            x = fast.resize(x, 2 * x.shape[-1]) if x.shape[-1] == x.shape[-2] else up(x)  # [B, C, 2H, 2W]
        x = F.relu(fast.conv(conv, x), inplace=True)  # a conv output; ReLU differentiates from its result
        if drop.training and drop.p > 0:
            x = F.dropout(x, drop.p, training=True)
        if bn.training:
            x = bn(x)
        else:
            a, b = fast.bn_affine(bn)  # [1, C, 1, 1] each
            if add is not None and not self.head:  # fuse the pyramid addition
                x = torch.addcmul(add + b, x, a)
                add = None
            else:
                x = torch.addcmul(b, x, a)
        if self.head:
            x = fast.conv(self[first + 4], x)
        return x if add is None else x + add


class PyramidInterpreter(nn.Module):
    """features[i] [B, C_i, R_i, R_i] (R doubling from 4) -> heatmaps [B, out_channels, S, S].

    Official: C = [512]*5 + [256, 128, 64, 32], R = 4..1024, S = 128, 32 output channels.
    """

    fast: FastMode | None = None  # None: the reference

    def __init__(self, feature_channels: Sequence[int] = (512, 512, 512, 512, 512, 256, 128, 64, 32),
                 feature_resolutions: Sequence[int] = (4, 8, 16, 32, 64, 128, 256, 512, 1024),
                 out_channels: int = 32, heatmap_size: int = 128, dropout: float = 0.1):
        super().__init__()
        if len(feature_channels) != len(feature_resolutions) or len(feature_channels) < 2:
            raise ValueError("need one channel count per pyramid level, and at least two levels")
        self.feature_channels = list(feature_channels)
        self.feature_resolutions = list(feature_resolutions)
        self.heatmap_size = heatmap_size
        self.out_channels = out_channels
        n = len(feature_channels)
        res = feature_resolutions[0]
        for i in range(n):
            if i == n - 1:  # head: conv block on the last level, then the output conv
                c = feature_channels[-1]
                block = InterpreterBlock(c, c, 5, dropout, upsample=False, out_channels=out_channels)
            else:
                target = min(feature_resolutions[i + 1], heatmap_size)
                upsample = res < target
                res = res * 2 if upsample else res
                kernel = 3 if i == 0 else 5
                block = InterpreterBlock(feature_channels[i], feature_channels[i + 1], kernel, dropout, upsample)
            self.add_module(f"layer{i}", block)
        if res != heatmap_size:
            raise ValueError(f"pyramid reaches {res} px, not the heatmap size {heatmap_size}")

    @property
    def blocks(self) -> list[InterpreterBlock]:
        return [getattr(self, f"layer{i}") for i in range(len(self.feature_channels))]

    def init_weights(self, gain: float = 0.02) -> None:
        """The official initialisation: N(0, gain) conv weights, zero biases, BN weight N(1, gain)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, gain)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, gain)
                nn.init.zeros_(m.bias)

    def resize_level(self, feature: torch.Tensor) -> torch.Tensor:
        if feature.shape[-1] > self.heatmap_size:
            if self.fast is not None:
                return self.fast.resize(feature, self.heatmap_size)
            return F.interpolate(feature, size=self.heatmap_size, mode="bilinear", align_corners=True)
        return feature

    def forward(self, features: Sequence[torch.Tensor], return_levels: bool = False):
        """Returns heatmaps [B, out_channels, S, S]; with `return_levels`, also each block's summed state."""
        if len(features) != len(self.feature_channels):
            raise ValueError(f"expected {len(self.feature_channels)} pyramid levels, got {len(features)}")
        blocks = self.blocks
        hs = features[0]
        levels = []
        for i in range(1, len(features)):
            if self.fast is None:
                hs = blocks[i - 1](hs) + self.resize_level(features[i])
            else:  # the addition inside the block's BatchNorm epilogue
                hs = blocks[i - 1](hs, add=self.resize_level(features[i]))
            levels.append(hs)
        out = blocks[-1](hs)
        return (out, levels) if return_levels else out
