"""Models: StyleGAN2 generator, pSp encoder, pyramid interpreter and the full FGNet, each layer with a
reference and a fast mode (`modes.py`), the fast mode's machinery in `acceleration.py`."""
from fgnet_core.models.acceleration import CudaGraphRunner
from fgnet_core.models.fgnet import FGNet, make_fast, make_fast_from_params, make_reference
from fgnet_core.models.interpreter import PyramidInterpreter
from fgnet_core.models.modes import PRECISIONS, FastSettings
from fgnet_core.models.psp_encoder import GradualStyleEncoder, PSPEncoder, n_styles_for
from fgnet_core.models.stylegan2 import StyleGAN2Generator, official_channels

__all__ = ["FGNet", "PyramidInterpreter", "GradualStyleEncoder", "PSPEncoder",
           "n_styles_for", "StyleGAN2Generator", "official_channels", "FastSettings", "PRECISIONS", "make_fast",
           "make_fast_from_params", "make_reference", "CudaGraphRunner"]
