"""Models: StyleGAN2 generator, pSp encoder, pyramid interpreter and the full FGNet."""
from fgnet_core.models.fgnet import FGNet, heatmaps_to_presence
from fgnet_core.models.interpreter import PyramidInterpreter
from fgnet_core.models.psp_encoder import GradualStyleEncoder, PSPEncoder, n_styles_for
from fgnet_core.models.stylegan2 import StyleGAN2Generator, official_channels

__all__ = ["FGNet", "heatmaps_to_presence", "PyramidInterpreter", "GradualStyleEncoder", "PSPEncoder",
           "n_styles_for", "StyleGAN2Generator", "official_channels"]
