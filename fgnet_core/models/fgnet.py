"""FGNet: aligned face -> pSp W+ -> mapping again -> StyleGAN2 feature pyramid -> AU heatmaps."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from fgnet_core.data.au_tables import n_aus
from fgnet_core.models.interpreter import PyramidInterpreter
from fgnet_core.models.psp_encoder import GradualStyleEncoder, PSPEncoder, n_styles_for
from fgnet_core.models.stylegan2 import StyleGAN2Generator
from fgnet_core.presets import ModelPreset, get_preset


def heatmaps_to_presence(heatmaps: torch.Tensor) -> torch.Tensor:
    """[B, C, S, S] raw heatmaps -> int [B, C]: present when the clamped map's mean is > 0."""
    return (heatmaps.clamp(-1.0, 1.0).mean(dim=(2, 3)) > 0).int()


class FGNet(nn.Module):
    """The full FG-Net model. Attribute names mirror the official checkpoint entries:
    `encoder` (pspencoder + latent_avg), `generator` (g_all), `interpreter`.
    """

    def __init__(self, preset: ModelPreset | str = "official", **overrides):
        super().__init__()
        self.preset = get_preset(preset, **overrides) if isinstance(preset, str) else preset
        p = self.preset
        n_styles = n_styles_for(p.generator_size)
        self.encoder = PSPEncoder(GradualStyleEncoder(
            n_styles=n_styles, input_nc=p.input_nc, style_dim=p.style_dim, units=p.encoder_units,
            widths=p.encoder_widths, input_size=p.encoder_input_size or p.input_size, se=p.encoder_se))
        self.generator = StyleGAN2Generator(
            size=p.generator_size, style_dim=p.style_dim, n_mlp=p.n_mlp,
            channel_multiplier=p.channel_multiplier, lr_mlp=p.lr_mlp, channels=p.generator_channels)
        self.generator.set_modconv_mode(p.modconv)
        all_channels = self.generator.feature_channels
        all_res = self.generator.feature_resolutions
        self.feature_layers = list(p.feature_layers) or list(range(1, len(all_channels), 2))
        self.interpreter = PyramidInterpreter(
            feature_channels=[all_channels[i] for i in self.feature_layers],
            feature_resolutions=[all_res[i] for i in self.feature_layers],
            out_channels=p.out_channels, heatmap_size=p.heatmap_size, dropout=p.dropout)

    def latents(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,3,256,256] in [-1,1] -> W+ after the mapping network [B, n_latent, D].

        FG-Net passes every encoder row through the mapping network again (PixelNorm + MLP).
        """
        size = self.preset.encoder_input_size
        if size and images.shape[-1] != size:
            images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        w_plus = self.encoder(images)  # [B, n_styles, D]
        b, n, d = w_plus.shape
        return self.generator.mapping(w_plus.reshape(b * n, d)).reshape(b, n, d)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The pyramid levels the interpreter reads (maps 1, 3, 5, ... of the synthesis)."""
        _, feats = self.generator.synthesis(self.latents(images), return_image=False)
        return [feats[i] for i in self.feature_layers]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,3,256,256] in [-1,1] -> raw heatmaps [B, out_channels, S, S]."""
        return self.interpreter(self.features(images))

    @torch.no_grad()
    def predict(self, images: torch.Tensor, dataset: str = "BP4D") -> torch.Tensor:
        """int [B, n_aus(dataset)]: the dataset's AUs in label-column order."""
        return heatmaps_to_presence(self(images))[:, : n_aus(dataset)]
