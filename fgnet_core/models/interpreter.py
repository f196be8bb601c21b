"""FG-Net's Pyramid CNN Interpreter: StyleGAN2 feature pyramid -> one heatmap per output channel.

Structure and parameter names follow the official `pyramid_interpreter` (keys `layerK.N.*`), so the
`interpreter` entry of an FG-Net `model.pth` loads unchanged. Each block is
[Upsample x2 (bilinear, align_corners=True)] -> Conv -> ReLU -> Dropout -> BatchNorm, and the next
pyramid level is added after BatchNorm. Levels larger than the heatmap are first resized to it with
bilinear align_corners=True (the official `Interpolate` helper inverts its flag, so this is what runs).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class PyramidInterpreter(nn.Module):
    """features[i] [B, C_i, R_i, R_i] (R doubling from 4) -> heatmaps [B, out_channels, S, S].

    Official: C = [512]*5 + [256, 128, 64, 32], R = 4..1024, S = 128, 32 output channels.
    """

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
                block = self._block(c, c, 5, dropout, upsample=False)
                block.append(nn.Conv2d(c, out_channels, kernel_size=5, padding=2))
            else:
                target = min(feature_resolutions[i + 1], heatmap_size)
                upsample = res < target
                res = res * 2 if upsample else res
                kernel = 3 if i == 0 else 5
                block = self._block(feature_channels[i], feature_channels[i + 1], kernel, dropout, upsample)
            self.add_module(f"layer{i}", block)
        if res != heatmap_size:
            raise ValueError(f"pyramid reaches {res} px, not the heatmap size {heatmap_size}")

    @staticmethod
    def _block(c_in: int, c_out: int, kernel: int, dropout: float, upsample: bool) -> nn.Sequential:
        layers: list[nn.Module] = []
        if upsample:
            layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True))
        layers += [nn.Conv2d(c_in, c_out, kernel_size=kernel, padding=kernel // 2), nn.ReLU(),
                   nn.Dropout(p=dropout), nn.BatchNorm2d(c_out)]
        return nn.Sequential(*layers)

    @property
    def blocks(self) -> list[nn.Sequential]:
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
            hs = blocks[i - 1](hs) + self.resize_level(features[i])
            levels.append(hs)
        out = blocks[-1](hs)
        return (out, levels) if return_levels else out
