"""Acceleration machinery of the fast mode: what speeds a forward up without changing what it computes.

- `WeightCache`: derived weights (bf16 casts, composed up-sampling kernels, concatenated head weights)
  of no-grad eager forwards, refreshed when a source parameter changes (its version counter);
- `store_channels_last` / `store_contiguous`: conv weights stored NHWC (same values), so cuDNN runs its
  tensor-core kernels without layout transposes, and back;
- `compile_body`: the `torch.compile` wrapper (the module itself is not wrapped, so state-dict keys
  keep their names);
- `no_autocast`: the fast mode's dtypes are explicit; an enclosing autocast must not re-cast them;
- `CudaGraphRunner`: the whole eval forward replayed as one CUDA graph for a fixed input shape.

Nothing here knows the model's layers; `models/modes.py` says how they run.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import replace

import torch
from torch import nn

__all__ = ["WeightCache", "store_channels_last", "store_contiguous", "compile_body", "no_autocast",
           "CudaGraphRunner"]


class WeightCache:
    """Values derived from parameters, keyed by the caller, valid while the sources are unchanged."""

    def __init__(self):
        self._entries: dict = {}

    def get(self, key, sources: Iterable[torch.Tensor], make: Callable):
        version = tuple((p._version, p.data_ptr()) for p in sources)  # in-place updates bump _version
        hit = self._entries.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = make()
        self._entries[key] = (version, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _strict_channels_last(t: torch.Tensor) -> torch.Tensor:
    """NHWC with the exact NHWC strides, also for 1x1 kernels (where `.contiguous(channels_last)` keeps the
    NCHW strides): the gradients cuDNN/ATen return then have the parameter's strides (DDP's reducer and
    AccumulateGrad expect that)."""
    n, c, h, w = t.shape
    out = torch.empty_strided(t.shape, (c * h * w, 1, w * c, c), dtype=t.dtype, device=t.device)
    return out.copy_(t)


def store_channels_last(module: nn.Module) -> None:
    """Store every nn.Conv2d weight NHWC (same values; do this before building the optimizer)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data = _strict_channels_last(m.weight.data)


def store_contiguous(module: nn.Module) -> None:
    """Back to the default layout, so the reference numerics are bit-identical."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data = m.weight.data.contiguous()


def compile_body(fn: Callable, enabled: bool, mode: str | None = None) -> Callable | None:
    """`torch.compile(fn)` (compiled lazily on first call) or None. `fn` must hold no context managers or
    device queries: a graph break inside the compiled function (torch 2.11 cannot trace
    `is_autocast_available`) made Dynamo recompile the resumed frame on every call (~8 s per call)."""
    return torch.compile(fn, mode=mode, dynamic=False) if enabled else None


def no_autocast(x: torch.Tensor):
    """Autocast off (an enclosing autocast region must not re-cast the float32 islands)."""
    if torch.amp.is_autocast_available(x.device.type):
        return torch.autocast(device_type=x.device.type, enabled=False)
    return contextlib.nullcontext()  # e.g. the meta device (FLOP counting)


class CudaGraphRunner:
    """Eval forward of a model captured as one CUDA graph for a fixed input shape (no launch overhead).

    `runner(images)` copies the images into the static input, replays, and returns the static output
    (overwritten by the next call: clone it to keep it). With `frozen_weights=True` (default) a fast
    model's cached bf16/derived weights are captured, so the graph skips the weight casts; build a new
    runner after changing the weights. With False the graph recomputes them from the parameters on
    every replay and follows in-place weight updates.
    """

    def __init__(self, net: nn.Module, example: torch.Tensor, warmup: int = 2, frozen_weights: bool = True):
        if example.device.type != "cuda":
            raise RuntimeError("CudaGraphRunner needs a CUDA input")
        fast = getattr(net, "fast", None)  # the model's FastMode (shared by its layers), None for the reference
        settings = fast.settings if fast is not None else None
        if fast is not None:  # only while warming up and capturing: replays run no Python
            fast.settings = replace(settings, cache_weights=frozen_weights)
            fast.cache.clear()
        self.net = net.eval()
        self.static_in = example.clone()
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.no_grad(), torch.cuda.stream(stream):
                for _ in range(warmup):  # also fills the weight cache outside the graph
                    self.net(self.static_in)
            torch.cuda.current_stream().wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.no_grad(), torch.cuda.graph(self.graph):
                self.static_out = self.net(self.static_in)
        finally:
            if fast is not None:  # the model's own settings again for its eager calls
                fast.settings = settings

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.static_in.copy_(images)
        self.graph.replay()
        return self.static_out
