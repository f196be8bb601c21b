"""StyleGAN2 custom ops: upfirdn2d and the fused bias + leaky ReLU, and the fast modes' composites.

Each op has a pure PyTorch reference and our CUDA kernel behind one function
with an ``impl`` argument:

- ``'ref'``: the reference (any device, any float dtype, gradients of any order);
- ``'cuda'``: the CUDA kernel; RuntimeError for CPU tensors or a failed build;
- ``'auto'`` (default): the CUDA kernel for CUDA tensors when it builds, else the
  reference (one warning per process if the build fails). CPU tensors never
  trigger a build.

The composites of the fast layer modes (``upconv``: the fused up-sampling conv; ``resize``: bilinear
resizes as matrix products) are plain PyTorch, each beside its reference twin (``*_ref``).

Importing this package compiles nothing: the extension is built on the first
CUDA call and cached on disk (see ``_cuda_build``).
"""
from ._cuda_build import build_error, cuda_available_for_ops
from .fused_act import FusedLeakyReLU, fused_bias_leaky_relu, fused_bias_leaky_relu_ref, fused_leaky_relu
from .resize import bilinear_matmul, bilinear_ref
from .upconv import upconv2d, upconv2d_ref
from .upfirdn2d import upfirdn2d, upfirdn2d_ref

__all__ = [
    "upfirdn2d",
    "upfirdn2d_ref",
    "fused_bias_leaky_relu",
    "fused_bias_leaky_relu_ref",
    "fused_leaky_relu",
    "FusedLeakyReLU",
    "upconv2d",
    "upconv2d_ref",
    "bilinear_matmul",
    "bilinear_ref",
    "cuda_available_for_ops",
    "build_error",
]
