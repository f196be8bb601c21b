"""StyleGAN2 generator whose state dict loads the official `stylegan2-ffhq-config-f.pt` (`g_ema`) as is."""
from __future__ import annotations

import math

import torch
from torch import nn

from fgnet_core.models.stylegan2_layers import (
    BLUR_KERNEL, ConstantInput, EqualLinear, ModulatedConv2d, PixelNorm, StyledConv, ToRGB,
)


def official_channels(size: int, channel_multiplier: int = 2) -> dict[int, int]:
    """Feature width per resolution of the official config (config-f: channel_multiplier=2)."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * channel_multiplier,
            128: 128 * channel_multiplier, 256: 64 * channel_multiplier,
            512: 32 * channel_multiplier, 1024: 16 * channel_multiplier}
    return {res: ch for res, ch in base.items() if res <= size}


class StyleGAN2Generator(nn.Module):
    """Mapping network (`style`) + synthesis network with fixed noise buffers (`noises.noise_i`).

    `synthesis` returns the image and the list of feature maps in the official FG-Net order:
    the constant input, conv1, then every StyledConv output (18 maps at 1024 px).
    """

    def __init__(self, size: int = 1024, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 lr_mlp: float = 0.01, channels: dict[int, int] | None = None, taps=BLUR_KERNEL):
        super().__init__()
        self.log_size = int(math.log2(size))
        if 2**self.log_size != size or size < 8:
            raise ValueError(f"generator size must be a power of two >= 8, got {size}")
        self.size, self.style_dim = size, style_dim
        self.channels = dict(channels) if channels else official_channels(size, channel_multiplier)
        missing = [2**i for i in range(2, self.log_size + 1) if 2**i not in self.channels]
        if missing:
            raise ValueError(f"channel widths missing for resolutions {missing}")

        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True) for _ in range(n_mlp)])

        ch = self.channels
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim, taps=taps)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False)

        self.num_layers = (self.log_size - 2) * 2 + 1
        self.n_latent = self.log_size * 2 - 2
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer_idx in range(self.num_layers):
            res = 2 ** ((layer_idx + 5) // 2)
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, res, res))
        in_channel = ch[4]
        for i in range(3, self.log_size + 1):
            out_channel = ch[2**i]
            self.convs.append(StyledConv(in_channel, out_channel, 3, style_dim, upsample=True, taps=taps))
            self.convs.append(StyledConv(out_channel, out_channel, 3, style_dim, taps=taps))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel

    @property
    def feature_channels(self) -> list[int]:
        """Widths of the maps `synthesis` returns, in order."""
        ch = self.channels
        return [ch[4], ch[4]] + [ch[2**i] for i in range(3, self.log_size + 1) for _ in range(2)]

    @property
    def feature_resolutions(self) -> list[int]:
        return [4, 4] + [2**i for i in range(3, self.log_size + 1) for _ in range(2)]

    def set_modconv_mode(self, mode: str) -> "StyleGAN2Generator":
        """'grouped' (reference numerics) or 'batched' (faster; same function up to rounding)."""
        if mode not in ModulatedConv2d.MODES:
            raise ValueError(f"unknown modulated conv mode {mode!r}; expected one of {ModulatedConv2d.MODES}")
        for module in self.modules():
            if isinstance(module, ModulatedConv2d):
                module.mode = mode
        return self

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, style_dim] -> w [B, style_dim] (PixelNorm + MLP)."""
        return self.style(z)

    def fixed_noise(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def synthesis(self, w_plus: torch.Tensor, noise: list[torch.Tensor | None] | None = None,
                  randomize_noise: bool = False, return_image: bool = True, n_features: int | None = None):
        """w_plus [B, n_latent, style_dim] -> (image [B,3,size,size] or None, features list).

        Without `noise`, the stored noise buffers are used (FG-Net runs with randomize_noise=False).
        `return_image=False` skips the RGB branch, which FG-Net computes and discards; `n_features`
        (without the image) stops after the first n maps, which is all a reader of map n - 1 needs.
        """
        if w_plus.ndim != 3 or w_plus.shape[1] < self.n_latent or w_plus.shape[2] != self.style_dim:
            raise ValueError(f"w_plus must be [B, {self.n_latent}, {self.style_dim}], got {list(w_plus.shape)}")
        if n_features is not None and return_image:
            raise ValueError("n_features stops the synthesis early: only with return_image=False")
        if noise is None:
            noise = [None] * self.num_layers if randomize_noise else self.fixed_noise()
        stop = self.num_layers + 1 if n_features is None else n_features
        out = self.input(w_plus.shape[0])  # [B, 512, 4, 4]
        features = [out]
        if stop <= 1:
            return None, features
        out = self.conv1(out, w_plus[:, 0], noise=noise[0])
        features.append(out)
        skip = self.to_rgb1(out, w_plus[:, 1]) if return_image else None
        for j, conv in enumerate(self.convs):  # conv j makes map j + 2 from W+ row j + 1 (pairs: up, same)
            if len(features) >= stop:
                break
            out = conv(out, w_plus[:, j + 1], noise=noise[j + 1])
            features.append(out)
            if return_image and j % 2 == 1:
                skip = self.to_rgbs[j // 2](out, w_plus[:, j + 2], skip)
        return skip, features

    def forward(self, z: torch.Tensor, **kwargs):
        """z [B, style_dim] -> image, features, with the same w at every layer."""
        w = self.mapping(z)
        return self.synthesis(w.unsqueeze(1).repeat(1, self.n_latent, 1), **kwargs)
