"""FGNet: aligned face -> pSp W+ -> mapping again -> StyleGAN2 feature pyramid -> AU heatmaps.

One module tree, two modes: the reference (default; official numerics) and the fast mode
(`make_fast`, `models/modes.py`): same parameters, state-dict keys and checkpoint formats.
"""
from __future__ import annotations

import contextlib
from dataclasses import replace

import torch
from torch import nn
from torch.nn import functional as F

from fgnet_core.data.au_tables import n_aus
from fgnet_core.data.heatmaps import heatmaps_to_aus
from fgnet_core.models.acceleration import compile_body, no_autocast, store_channels_last, store_contiguous
from fgnet_core.models.interpreter import PyramidInterpreter
from fgnet_core.models.modes import FastMode, FastSettings, set_mode
from fgnet_core.models.psp_encoder import GradualStyleEncoder, PSPEncoder, n_styles_for
from fgnet_core.models.stylegan2 import StyleGAN2Generator
from fgnet_core.presets import ModelPreset, get_preset


class FGNet(nn.Module):
    """The full FG-Net model. Attribute names mirror the official checkpoint entries:
    `encoder` (pspencoder + latent_avg), `generator` (g_all), `interpreter`.
    """

    fast: FastMode | None = None  # shared with every layer; None: the reference (see `set_fast`)

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

    # ------------------------------------------------------------------ modes

    @property
    def fast_settings(self) -> FastSettings | None:
        return None if self.fast is None else self.fast.settings

    def set_fast(self, settings: FastSettings | None) -> "FGNet":
        """Switch every layer to the fast mode `settings`, or back to the reference (None), in place.

        With `channels_last`, the nn.Conv2d weights are stored NHWC (same values); do this before building
        the optimizer. `compile=True` compiles the fast forward lazily on first call. cuDNN benchmarking is
        switched on for the process (`cudnn_benchmark=False` leaves it)."""
        was_fast = self.fast is not None
        set_mode(self, settings)
        self.__dict__.pop("_fast_compiled", None)
        if settings is not None and settings.channels_last:
            store_channels_last(self)
        elif was_fast:
            store_contiguous(self)  # the default layout, in which the reference numerics are bit-identical
        if settings is None:
            return self
        if settings.cudnn_benchmark:
            torch.backends.cudnn.benchmark = True
        self.__dict__["_fast_compiled"] = compile_body(self._fast_body, settings.compile, settings.compile_mode)
        return self

    def clear_fast_cache(self) -> None:
        if self.fast is not None:
            self.fast.cache.clear()

    def _apply(self, fn, recurse=True):  # .to()/.cuda()/.half(): cached derived weights are stale
        self.clear_fast_cache()
        return super()._apply(fn, recurse)

    def _explicit_dtypes(self, images: torch.Tensor):
        """Fast mode: its dtypes are explicit, an enclosing autocast must not re-cast them."""
        return contextlib.nullcontext() if self.fast is None else no_autocast(images)

    # ------------------------------------------------------------------ forward

    def latents(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,3,256,256] in [-1,1] -> W+ after the mapping network [B, n_latent, D].

        FG-Net passes every encoder row through the mapping network again (PixelNorm + MLP).
        """
        with self._explicit_dtypes(images):
            return self._latents(images)

    def _latents(self, images: torch.Tensor) -> torch.Tensor:
        size = self.preset.encoder_input_size
        if size and images.shape[-1] != size:
            images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        w_plus = self.encoder(images)  # [B, n_styles, D] (float32 in both modes)
        b, n, d = w_plus.shape
        return self.generator.mapping(w_plus.reshape(b * n, d)).reshape(b, n, d)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The pyramid levels the interpreter reads (maps 1, 3, 5, ... of the synthesis)."""
        with self._explicit_dtypes(images):
            return self._features(images)

    def _features(self, images: torch.Tensor) -> list[torch.Tensor]:
        _, feats = self.generator.synthesis(self._latents(images), return_image=False,
                                            n_features=max(self.feature_layers) + 1)
        return [feats[i] for i in self.feature_layers]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,3,256,256] in [-1,1] -> raw heatmaps [B, out_channels, S, S] (float32)."""
        if self.fast is None:
            return self.interpreter(self._features(images))
        body = self.__dict__.get("_fast_compiled") or self._fast_body
        with no_autocast(images):  # outside the compiled region
            return body(images)

    def _fast_body(self, images: torch.Tensor) -> torch.Tensor:
        """What `compile=True` compiles: no context managers or device queries here (see `compile_body`)."""
        return self.interpreter(self._features(images)).float().contiguous()

    @torch.no_grad()
    def predict(self, images: torch.Tensor, dataset: str = "BP4D") -> torch.Tensor:
        """int [B, n_aus(dataset)]: the dataset's AUs in label-column order."""
        return heatmaps_to_aus(self(images))[:, : n_aus(dataset)]


# ---------------------------------------------------------------------- entry points


def make_fast(net: FGNet, precision: str = "bf16", compile: bool = False, channels_last: bool = True,
              upconv: str = "auto", compile_mode: str | None = None, settings: FastSettings | None = None,
              **extra) -> FGNet:
    """Switch `net` (in place) to the fast mode and return it; parameters and keys are unchanged.
    Keyword arguments are `FastSettings` fields (or pass `settings`, with `extra` replacing fields)."""
    if not isinstance(net, FGNet):
        raise TypeError(f"make_fast expects an FGNet, got {type(net).__name__}")
    if settings is None:
        settings = FastSettings(precision=precision, compile=compile, channels_last=channels_last,
                                upconv=upconv, compile_mode=compile_mode, **extra)
    elif extra:
        settings = replace(settings, **extra)
    return net.set_fast(settings)


def make_fast_from_params(net: FGNet, params: dict | None) -> FGNet:
    """params block `{enabled: bool, precision: bf16|fp32, compile: bool, ...}`: fast mode or the reference."""
    params = dict(params or {})
    if not params.pop("enabled", True):
        return make_reference(net)
    return make_fast(net, settings=FastSettings.from_params(params))


def make_reference(net: FGNet) -> FGNet:
    """Back to the reference forward (grouped/batched per the preset, our CUDA ops, float32)."""
    return net.set_fast(None)
