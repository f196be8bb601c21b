"""The layers' execution modes: the reference (default) and the fast mode, chosen by one settings object.

Every FGNet layer reads `self.fast`: None runs the reference forward (official numerics, float32, our
CUDA ops); a `FastMode` (one object shared by all layers of a model, built from `FastSettings`) runs
the same function with the same parameters, computed with faster kernels, in the layer's own forward:

- precision: 'bf16' runs convolutions and element-wise work in bfloat16 and keeps float32 where it
  matters: the mapping network, the style (modulation) linears, demodulation factors, the encoder's
  W+ output heads, squeeze-excitation gates, BatchNorm statistics (cuDNN and the CPU kernel accumulate
  in float32; running statistics stay float32 buffers) and the returned heatmaps (the loss is float32).
  'fp32' runs everything in float32 (on CUDA, convolutions use TF32 if cuDNN allows it, as in the
  reference).
- modulated convolutions scale the activations (x * s, shared-weight conv, * demod) instead of
  building per-sample weights for a grouped convolution;
- the up-sampling modulated conv (stride-2 transposed conv followed by the 4x4 FIR blur) can run as
  ONE ordinary 3x3 convolution with 4x the output channels and a pixel shuffle (`ops/upconv.py`):
  `upconv='fused'`; `'transpose'` keeps transposed conv + depthwise blur; `'auto'` fuses every layer
  without gradients, and with gradients those with at most `fused_up_max_out` output channels (the
  large, memory-bound resolutions), as measured fastest for each;
- demodulation, noise, bias, leaky ReLU and its gain are one `addcmul` + one in-place activation
  (one fused kernel under `torch.compile`); in no-grad eager mode the pixel shuffle of a fused
  up-sampling conv happens inside that `addcmul`; the constant input is expanded, not repeated; the
  RGB branch and the feature maps the interpreter does not read are never built;
- channels_last (NHWC) activations end to end;
- the encoder's style heads of one pyramid level run as one network (one wide conv, grouped convs,
  one batched matmul in float32);
- eval-mode BatchNorm of the interpreter becomes one `addcmul` fused with the pyramid addition;
- with gradients, the interpreter's bilinear resizes are two matrix products (`resize='auto'`,
  `ops/resize.py`);
- in no-grad eager mode, derived weights are cached (`acceleration.WeightCache`).

Everything is plain PyTorch, so the same code runs on CPU, which is how the parity tests check it.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.batchnorm import _BatchNorm  # BatchNorm2d, SyncBatchNorm and subclasses

from fgnet_core.models.acceleration import WeightCache
from fgnet_core.ops.resize import bilinear_matmul

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
UPCONV_MODES = ("auto", "fused", "transpose")
RESIZE_MODES = ("auto", "interpolate", "matmul")
LRELU_GAIN = math.sqrt(2.0)


@dataclass(frozen=True)
class FastSettings:
    """How the fast mode runs. Parameter names follow params.yaml (`precision`, `compile`)."""

    precision: str = "bf16"  # 'bf16' | 'fp32'
    compile: bool = False  # torch.compile the fast forward
    compile_mode: str | None = None  # None (default), 'reduce-overhead', 'max-autotune-no-cudagraphs', ...
    channels_last: bool = True
    upconv: str = "auto"  # 'auto' | 'fused' | 'transpose'
    fused_up_max_out: int = 128  # 'auto', with gradients: fuse up-sampling convs with at most this many outputs
    resize: str = "auto"  # interpreter bilinear resizes: 'auto' | 'interpolate' | 'matmul'
    cache_weights: bool = True  # cache derived weights in no-grad eager mode
    cudnn_benchmark: bool = True  # let cuDNN time its kernels per shape (process-wide switch)

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.upconv not in UPCONV_MODES:
            raise ValueError(f"upconv must be one of {', '.join(UPCONV_MODES)}, got {self.upconv!r}")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {self.resize!r}")

    @property
    def dtype(self) -> torch.dtype:
        return PRECISIONS[self.precision]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_params(cls, params: dict | None) -> "FastSettings":
        """From a params block such as `{precision: bf16, compile: true}`; unknown keys are an error."""
        params = dict(params or {})
        params.pop("enabled", None)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown fast-path setting(s): {', '.join(unknown)}")
        return cls(**params)


class FastMode:
    """What a layer in fast mode reads: the settings, the shared derived-weight cache, and how the stock
    torch layers inside our modules (Conv2d, BatchNorm2d, bilinear resizes) run in this mode."""

    def __init__(self, settings: FastSettings):
        self.settings = settings
        self.cache = WeightCache()

    @property
    def dt(self) -> torch.dtype:
        return self.settings.dtype

    @property
    def cl(self) -> bool:
        return self.settings.channels_last

    def eager_no_grad(self) -> bool:
        """No autograd and no compiler: in-place tricks and cached weights are safe."""
        return not torch.is_grad_enabled() and not torch.compiler.is_compiling()

    def fmt(self, x: torch.Tensor) -> torch.Tensor:
        """The activation layout of this mode."""
        if self.cl and x.ndim == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def derived(self, key, sources, make: Callable):
        """`make()`, cached under `key` while `sources` are unchanged (no-grad eager forwards only)."""
        if not (self.settings.cache_weights and self.eager_no_grad()):
            return make()
        return self.cache.get(key, sources, make)

    def w(self, p: nn.Parameter) -> torch.Tensor:
        """A conv weight (a Parameter, not a view: the cache is keyed by identity) in the compute dtype and layout."""
        return self.derived(("w", id(p)), (p,), lambda: self.fmt(p.to(self.dt)))

    def b(self, p: torch.Tensor | None) -> torch.Tensor | None:
        return None if p is None else self.derived(("b", id(p)), (p,), lambda: p.to(self.dt))

    def conv(self, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise NotImplementedError("fast mode: only zero-padded convolutions with integer padding")
        if conv.kernel_size == (1, 1) and tuple(conv.padding) == (0, 0) and tuple(conv.stride) != (1, 1):
            # a strided 1x1 conv reads every s-th pixel: pick them first (exact, no wasted work; also avoids
            # a crash of the CPU channels_last backward of strided 1x1 convs with one thread)
            sy, sx = conv.stride
            return F.conv2d(x[:, :, ::sy, ::sx], self.w(conv.weight), self.b(conv.bias), 1, 0, conv.dilation,
                            conv.groups)
        return F.conv2d(x, self.w(conv.weight), self.b(conv.bias), conv.stride, conv.padding, conv.dilation,
                        conv.groups)

    def batch_norm(self, bn: _BatchNorm, x: torch.Tensor) -> torch.Tensor:
        if bn.training:
            return bn(x)  # batch statistics in float32 inside the kernel; running stats updated as the module does
        a, b = self.bn_affine(bn)
        return torch.addcmul(b, x, a)

    def bn_affine(self, bn: _BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval BatchNorm as x * a + b ([1, C, 1, 1] each), computed in float32 and cast."""
        def make():
            a = torch.rsqrt(bn.running_var.float() + bn.eps)
            if bn.weight is not None:
                a = a * bn.weight.float()
            b = -bn.running_mean.float() * a
            if bn.bias is not None:
                b = b + bn.bias.float()
            shape = (1, -1, 1, 1)
            return a.to(self.dt).view(shape), b.to(self.dt).view(shape)
        sources = [t for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var) if t is not None]
        return self.derived(("bn", id(bn)), sources, make)

    def resize(self, x: torch.Tensor, size: int) -> torch.Tensor:
        """Bilinear resize (align_corners=True) to [B, C, size, size]: with gradients ('auto') as two matrix
        products, whose backward is again products; without, the gather (reads only the sampled rows)."""
        mode = self.settings.resize
        if mode == "interpolate" or (mode == "auto" and not torch.is_grad_enabled()):
            return F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return bilinear_matmul(x, size)


def set_mode(module: nn.Module, settings: FastSettings | None) -> FastMode | None:
    """Point every layer of `module` that has modes (a class attribute `fast`) at one new FastMode built
    from `settings`, or back to the reference (None). Parameters and buffers are untouched."""
    mode = None if settings is None else FastMode(settings)
    for m in module.modules():
        if hasattr(type(m), "fast"):
            if mode is None:
                m.__dict__.pop("fast", None)  # the class default: None, the reference
            else:
                m.fast = mode
    return mode
