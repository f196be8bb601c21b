"""Tests for fgnet_core.ops: upfirdn2d and the fused bias + leaky ReLU.

The reference path is checked against a literal, loop-based float64 definition;
the CUDA autograd plumbing is exercised on CPU through a stand-in extension
module; kernel parity runs only where a CUDA device exists.
"""
from __future__ import annotations

import importlib
import itertools
import sys
import types
import warnings

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from fgnet_core import ops
from fgnet_core.ops import _cuda_build
from fgnet_core.ops import FusedLeakyReLU, fused_bias_leaky_relu, fused_leaky_relu, upfirdn2d

# The package re-exports functions named like their modules, so fetch the modules explicitly.
upfirdn2d_mod = importlib.import_module("fgnet_core.ops.upfirdn2d")
fused_act_mod = importlib.import_module("fgnet_core.ops.fused_act")

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True, scope="module")
def _single_cpu_thread():
    """The tensors here are tiny; intra-op threads only add contention (gradcheck slows 50x)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------
# Brute-force definition


def brute_upfirdn2d(x, kernel, up_x, up_y, down_x, down_y, px0, px1, py0, py1):
    """The op spelled out step by step in float64 numpy, one output pixel at a time."""
    x = np.asarray(x, dtype=np.float64)  # [N, C, H, W]
    k = np.asarray(kernel, dtype=np.float64)  # [kh, kw]
    n, c, h, w = x.shape
    kh, kw = k.shape
    # 1. upsample: up - 1 zeros after every sample.
    u = np.zeros((n, c, h * up_y, w * up_x))
    u[:, :, ::up_y, ::up_x] = x
    # 2. pad with zeros, negative pads crop.
    u = np.pad(u, ((0, 0), (0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    u = u[:, :, max(-py0, 0): u.shape[2] - max(-py1, 0), max(-px0, 0): u.shape[3] - max(-px1, 0)]
    # 3. valid true convolution: c[i, j] = sum_ab u[i + kh-1 - a, j + kw-1 - b] * k[a, b].
    ch, cw = u.shape[2] - kh + 1, u.shape[3] - kw + 1
    conv = np.zeros((n, c, ch, cw))
    for i in range(ch):
        for j in range(cw):
            acc = np.zeros((n, c))
            for a in range(kh):
                for b in range(kw):
                    acc += u[:, :, i + kh - 1 - a, j + kw - 1 - b] * k[a, b]
            conv[:, :, i, j] = acc
    # 4. downsample.
    return conv[:, :, ::down_y, ::down_x]


def _rand_kernel(kh, kw, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(kh, kw, generator=g, dtype=torch.float64) + 0.1  # asymmetric, non-separable


def _setkernel(factor=1, taps=(1, 3, 3, 1)):
    """StyleGAN2's make_kernel(k) * factor**2."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum() * factor ** 2


# (H, W, kh, kw, up, down, pad) with up/down as int or (x, y) and pad of 2 or 4 entries.
UPFIRDN_CASES = [
    (5, 6, 3, 2, 1, 1, (0, 0)),
    (5, 6, 3, 2, 1, 1, (2, 1)),
    (6, 5, 4, 4, 2, 1, (2, 1)),
    (4, 7, 4, 3, 2, 1, (1, 2, 0, 3)),
    (7, 6, 4, 4, 1, 2, (1, 1)),
    (8, 9, 3, 5, 1, 2, (2, 2)),
    (6, 6, 4, 4, 3, 2, (1, 2)),
    (7, 5, 5, 3, 2, 3, (3, 1, 2, 0)),
    (6, 7, 3, 3, 1, 1, (-1, 2)),
    (8, 8, 4, 4, 2, 2, (-2, -1, 1, 0)),
    (9, 7, 2, 4, 1, 1, (0, -1, -2, 1)),
    (5, 6, 4, 3, (2, 1), (1, 2), (2, 1, 0, 1)),
    (6, 5, 3, 4, (1, 3), (2, 1), (1, 1, 2, 2)),
    (1, 1, 1, 1, 1, 1, (0, 0)),
    (3, 4, 1, 1, 2, 1, (0, 0)),
]


def _as_brute_args(up, down, pad):
    (ux, uy), (dx, dy), p = upfirdn2d_mod.parse_params(up, down, pad)
    return (ux, uy, dx, dy, *p)


@pytest.mark.parametrize("case_id", range(len(UPFIRDN_CASES)))
def test_upfirdn2d_ref_matches_brute_force(case_id):
    h, w, kh, kw, up, down, pad = UPFIRDN_CASES[case_id]
    g = torch.Generator().manual_seed(case_id)
    x = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)
    k = _rand_kernel(kh, kw, seed=100 + case_id)
    expected = brute_upfirdn2d(x.numpy(), k.numpy(), *_as_brute_args(up, down, pad))
    out = upfirdn2d(x, k, up=up, down=down, pad=pad, impl="ref")
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)
    # 'auto' on CPU is the reference.
    assert torch.equal(upfirdn2d(x, k, up=up, down=down, pad=pad), out)


def test_upfirdn2d_is_a_true_convolution():
    """A single impulse reproduces the kernel itself, not its mirror image."""
    k = torch.arange(1.0, 7.0, dtype=torch.float64).view(2, 3)
    x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    x[0, 0, 2, 2] = 1.0
    out = upfirdn2d(x, k, pad=(1, 1, 1, 1), impl="ref")  # [1, 1, 6, 5]: k lands at rows 2..3, cols 1..3
    assert out.shape == (1, 1, 6, 5)
    assert torch.equal(out[0, 0, 2:4, 1:4], k)
    assert out.sum().item() == k.sum().item()


def test_upfirdn2d_float32_and_output_size():
    x = torch.randn(2, 4, 9, 7)
    k = _setkernel()
    for up, down, pad in [(2, 1, (2, 1)), (1, 2, (1, 1)), (3, 2, (0, 4)), (1, 1, (-1, -1))]:
        out = upfirdn2d(x, k, up=up, down=down, pad=pad)
        exp_h = (9 * up + pad[0] + pad[1] - 4) // down + 1
        exp_w = (7 * up + pad[0] + pad[1] - 4) // down + 1
        assert out.shape == (2, 4, exp_h, exp_w) and out.dtype == torch.float32
        ref = brute_upfirdn2d(x.numpy(), k.numpy(), up, up, down, down, pad[0], pad[1], pad[0], pad[1])
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)


def test_upfirdn2d_bad_arguments():
    x = torch.randn(1, 1, 4, 4)
    bad = [(x, torch.ones(3), {}), (x[0], torch.ones(3, 3), {}), (x, torch.ones(3, 3), {"pad": (-2, -2)}),
           (x, torch.ones(3, 3), {"up": 0}), (x, torch.ones(3, 3), {"pad": (1, 1, 1)}),
           (x, torch.ones(3, 3), {"impl": "triton"})]
    for inp, k, kwargs in bad:  # 1D kernel, 3D input, output < 1 px, up 0, 3 pads, unknown impl
        with pytest.raises(ValueError):
            upfirdn2d(inp, k, **kwargs)


# ----------------------------------------------------------------------------
# StyleGAN2 layer configurations


def test_stylegan2_upsample_layer():
    """Upsample(kernel=[1,3,3,1], factor=2): pad ((p+1)//2 + 1, p//2) with p = 2."""
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    k = _setkernel(factor=2).double()
    out = upfirdn2d(x, k, up=2, pad=(2, 1))
    assert out.shape == (2, 3, 16, 16)
    np.testing.assert_allclose(out.numpy(), brute_upfirdn2d(x.numpy(), k.numpy(), 2, 2, 1, 1, 2, 1, 2, 1),
                               rtol=1e-10, atol=1e-10)
    # Each output phase sums the kernel to 1, so a constant image stays constant away from the border.
    const = upfirdn2d(torch.ones(1, 1, 8, 8, dtype=torch.float64), k, up=2, pad=(2, 1))
    torch.testing.assert_close(const[..., 2:-2, 2:-2], torch.ones(1, 1, 12, 12, dtype=torch.float64))


def test_stylegan2_blur_after_transposed_conv():
    """ModulatedConv2d(upsample=True): stride-2 transposed 3x3 conv gives 2H+1, Blur pad (1, 1) brings 2H."""
    h = 8
    x = torch.randn(2, 4, h, h, dtype=torch.float64)
    weight = torch.randn(4, 5, 3, 3, dtype=torch.float64)
    t = F.conv_transpose2d(x, weight, stride=2)
    assert t.shape[-1] == 2 * h + 1
    k = _setkernel(factor=2).double()
    out = upfirdn2d(t, k, pad=(1, 1))
    assert out.shape == (2, 5, 2 * h, 2 * h)
    np.testing.assert_allclose(out.numpy(), brute_upfirdn2d(t.numpy(), k.numpy(), 1, 1, 1, 1, 1, 1, 1, 1),
                               rtol=1e-10, atol=1e-10)


def test_stylegan2_downsample_paths():
    x = torch.randn(1, 2, 16, 16, dtype=torch.float64)
    k = _setkernel().double()
    # Downsample module (p = 2, pad (1, 1)) and the blur before a stride-2 conv (p = 4, pad (2, 2)).
    assert upfirdn2d(x, k, down=2, pad=(1, 1)).shape == (1, 2, 8, 8)
    blurred = upfirdn2d(x, k, pad=(2, 2))
    assert F.conv2d(blurred, torch.randn(3, 2, 3, 3, dtype=torch.float64), stride=2).shape == (1, 3, 8, 8)
    np.testing.assert_allclose(upfirdn2d(x, k, down=2, pad=(1, 1)).numpy(),
                               brute_upfirdn2d(x.numpy(), k.numpy(), 1, 1, 2, 2, 1, 1, 1, 1), rtol=1e-10)


# ----------------------------------------------------------------------------
# Gradients


@pytest.mark.parametrize("up,down,pad", [(1, 1, (1, 2)), (2, 1, (2, 1)), (1, 2, (1, 1)),
                                         ((2, 1), (1, 3), (1, -1, 2, 0)), (3, 2, (-1, 2))])
def test_upfirdn2d_ref_gradcheck(up, down, pad):
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    k = _rand_kernel(3, 4, seed=7)
    assert torch.autograd.gradcheck(lambda t: upfirdn2d(t, k, up, down, pad, impl="ref"), (x,))
    assert torch.autograd.gradgradcheck(lambda t: upfirdn2d(t, k, up, down, pad, impl="ref"), (x,))


@pytest.mark.parametrize("case_id", range(len(UPFIRDN_CASES)))
def test_upfirdn2d_backward_formula(case_id):
    """The CUDA backward's upfirdn2d(flipped kernel, swapped up/down, derived pads) is the exact adjoint."""
    h, w, kh, kw, up, down, pad = UPFIRDN_CASES[case_id]
    up_xy, down_xy, pad4 = upfirdn2d_mod.parse_params(up, down, pad)
    x = torch.randn(2, 3, h, w, dtype=torch.float64, requires_grad=True)
    k = _rand_kernel(kh, kw, seed=case_id)
    y = upfirdn2d_mod.upfirdn2d_ref(x, k, up_xy, down_xy, pad4)
    g = torch.randn_like(y)
    (expected,) = torch.autograd.grad(y, x, g)
    g_up, g_down, g_pad = upfirdn2d_mod._grad_params(h, w, y.shape[2], y.shape[3], kh, kw, up_xy, down_xy, pad4)
    got = upfirdn2d_mod.upfirdn2d_ref(g, k.flip([0, 1]), g_up, g_down, g_pad)
    assert got.shape == x.shape
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------
# The CUDA autograd Functions, driven on CPU by a stand-in for the extension


def _fake_extension():
    """Python versions of the three extension entry points, same signatures."""

    def upfirdn2d_op(x, kernel, up_x, up_y, down_x, down_y, px0, px1, py0, py1):
        return upfirdn2d_mod.upfirdn2d_ref(x, kernel, (up_x, up_y), (down_x, down_y), (px0, px1, py0, py1))

    def lrelu(x, bias, slope, scale):
        v = x if bias is None else x + bias.view(1, -1, *([1] * (x.ndim - 2)))
        return torch.where(v > 0, v, v * slope) * scale

    def lrelu_grad(grad_y, y, slope, scale):
        positive = (y > 0) if scale >= 0 else (y < 0)
        return grad_y * scale * torch.where(positive, 1.0, slope).to(grad_y.dtype)

    return types.SimpleNamespace(upfirdn2d=upfirdn2d_op, fused_bias_lrelu=lrelu, fused_bias_lrelu_grad=lrelu_grad)


@pytest.fixture
def fake_ext(monkeypatch):
    fake = _fake_extension()
    monkeypatch.setattr(_cuda_build, "get_ops", lambda required=False, verbose=False: fake)
    return fake


@pytest.mark.parametrize("up,down,pad", [(2, 1, (2, 1)), (1, 2, (1, 1)), ((1, 2), (3, 1), (2, -1, 0, 1))])
def test_cuda_function_autograd_plumbing(fake_ext, up, down, pad):
    up_xy, down_xy, pad4 = upfirdn2d_mod.parse_params(up, down, pad)
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    k = _rand_kernel(4, 3, seed=3)
    fn = lambda t: upfirdn2d_mod._upfirdn2d_cuda(t, k, up_xy, down_xy, pad4)  # noqa: E731
    torch.testing.assert_close(fn(x), upfirdn2d(x, k, up, down, pad, impl="ref"))
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("slope,scale", [(0.2, 2 ** 0.5), (0.0, 1.0), (0.5, -1.5)])
def test_cuda_fused_act_autograd_plumbing(fake_ext, slope, scale):
    x = (torch.randn(3, 4, 5, dtype=torch.float64) + 0.05).requires_grad_(True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    fn = lambda t, bb: fused_act_mod._FusedBiasLeakyReLUCuda.apply(t, bb, slope, scale)  # noqa: E731
    torch.testing.assert_close(fn(x, b), fused_bias_leaky_relu(x, b, slope, scale, impl="ref"))
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))
    y = fused_act_mod._FusedBiasLeakyReLUCuda.apply(x, None, slope, scale)
    torch.testing.assert_close(y, fused_bias_leaky_relu(x, None, slope, scale, impl="ref"))


# ----------------------------------------------------------------------------
# Fused bias + leaky ReLU


@pytest.mark.parametrize("shape", [(4, 6), (2, 6, 5), (2, 6, 3, 4)])
def test_fused_act_matches_formula(shape):
    x = torch.randn(*shape)
    b = torch.randn(shape[1])
    expected = F.leaky_relu(x + b.view(1, -1, *([1] * (len(shape) - 2))), 0.2) * 2 ** 0.5
    torch.testing.assert_close(fused_bias_leaky_relu(x, b), expected)
    torch.testing.assert_close(fused_leaky_relu(x, b, impl="ref"), expected)


def test_fused_act_custom_slope_scale_and_no_bias():
    x = torch.randn(3, 5, 4, 4)
    out = fused_bias_leaky_relu(x, None, negative_slope=0.1, scale=3.0)
    torch.testing.assert_close(out, torch.where(x > 0, x, 0.1 * x) * 3.0)
    torch.testing.assert_close(fused_bias_leaky_relu(x, None, 0.0, 1.0), F.relu(x))
    # A negative slope is legal for the reference path.
    torch.testing.assert_close(fused_bias_leaky_relu(x, None, -0.5, 2.0), torch.where(x > 0, x, -0.5 * x) * 2.0)


def test_fused_act_bad_arguments_and_dtype():
    assert fused_bias_leaky_relu(torch.randn(2, 3, dtype=torch.float64), torch.zeros(3)).dtype == torch.float64
    for x, b, impl in [(torch.randn(5), None, "auto"), (torch.randn(2, 3), torch.zeros(4), "auto"),
                       (torch.randn(2, 3), None, "fast"), (torch.randn(2, 3), None, "triton")]:
        with pytest.raises(ValueError):
            fused_bias_leaky_relu(x, b, impl=impl)
    with pytest.raises(ValueError):
        fused_bias_leaky_relu(torch.randn(2, 3), None, -0.1, impl="bogus")


def test_fused_act_gradcheck_and_double_backward():
    x = (torch.randn(2, 3, 4, 4, dtype=torch.float64) + 0.05).requires_grad_(True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    fn = lambda t, bb: fused_bias_leaky_relu(t, bb, 0.2, 2 ** 0.5, impl="ref")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))
    # d/dx of sum(y) is scale or slope*scale; bias grad sums it over all but dim 1.
    (gx, gb) = torch.autograd.grad(fn(x, b).sum(), (x, b))
    pos = (x + b.view(1, -1, 1, 1)) > 0
    torch.testing.assert_close(gx, torch.where(pos, 2 ** 0.5, 0.2 * 2 ** 0.5).double())
    torch.testing.assert_close(gb, gx.sum(dim=(0, 2, 3)))


def test_fused_leaky_relu_module():
    m = FusedLeakyReLU(6)
    assert list(dict(m.named_parameters())) == ["bias"]
    assert m.bias.shape == (6,) and torch.count_nonzero(m.bias) == 0
    assert list(m.state_dict()) == ["bias"]
    x = torch.randn(2, 6, 3, 3)
    torch.testing.assert_close(m(x), F.leaky_relu(x, 0.2) * 2 ** 0.5)
    m.bias.data.fill_(0.5)
    torch.testing.assert_close(m(x), F.leaky_relu(x + 0.5, 0.2) * 2 ** 0.5)
    m.load_state_dict({"bias": torch.arange(6.0)})
    assert m.bias[5].item() == 5.0
    m2 = FusedLeakyReLU(4, bias=False, negative_slope=0.1, scale=1.0)
    assert m2.bias is None and len(list(m2.parameters())) == 0
    x2 = torch.randn(3, 4)
    torch.testing.assert_close(m2(x2), F.leaky_relu(x2, 0.1))


# ----------------------------------------------------------------------------
# impl dispatch and lazy build


def test_impl_cuda_on_cpu_tensor_raises():
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(RuntimeError, match="CUDA tensor"):
        upfirdn2d(x, torch.ones(2, 2), impl="cuda")
    with pytest.raises(RuntimeError, match="CUDA tensor"):
        fused_bias_leaky_relu(x, None, impl="cuda")


def test_auto_on_cpu_never_builds_or_warns(monkeypatch):
    _cuda_build._reset_for_tests()
    monkeypatch.setattr(_cuda_build, "_build", lambda verbose=False: pytest.fail("build attempted"))
    x = torch.randn(2, 3, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(upfirdn2d(x, _setkernel(2), up=2, pad=(2, 1)),
                                   upfirdn2d(x, _setkernel(2), up=2, pad=(2, 1), impl="ref"))
        torch.testing.assert_close(fused_bias_leaky_relu(x, torch.ones(3)),
                                   fused_bias_leaky_relu(x, torch.ones(3), impl="ref"))
        FusedLeakyReLU(3)(x)
    assert _cuda_build.build_error() is None and _cuda_build._module is None


def test_auto_build_failure_warns_once_and_cuda_raises(monkeypatch):
    _cuda_build._reset_for_tests()
    calls = []

    def failing_build(verbose=False):
        calls.append(1)
        raise OSError("nvcc exploded")

    monkeypatch.setattr(_cuda_build, "_build", failing_build)
    fake_cuda_tensor = types.SimpleNamespace(is_cuda=True)
    with pytest.warns(RuntimeWarning, match="nvcc exploded"):
        assert _cuda_build.use_cuda(fake_cuda_tensor, "auto", "op") is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _cuda_build.use_cuda(fake_cuda_tensor, "auto", "op") is False
    with pytest.raises(RuntimeError, match="building the CUDA extension failed"):
        _cuda_build.use_cuda(fake_cuda_tensor, "cuda", "op")
    assert len(calls) == 1  # one attempt per process
    _cuda_build._reset_for_tests()


def test_import_triggers_no_build(monkeypatch):
    """Re-importing the package with cpp_extension.load booby-trapped compiles nothing."""
    from torch.utils import cpp_extension

    monkeypatch.setattr(cpp_extension, "load", lambda *a, **k: pytest.fail("compiled at import"))
    for name in [m for m in sys.modules if m == "fgnet_core.ops" or m.startswith("fgnet_core.ops.")]:
        monkeypatch.delitem(sys.modules, name)
    fresh = importlib.import_module("fgnet_core.ops")
    assert fresh is not ops
    x = torch.randn(1, 2, 4, 4)
    fresh.upfirdn2d(x, torch.ones(2, 2), pad=(1, 0))
    fresh.fused_bias_leaky_relu(x, torch.zeros(2))
    assert fresh._cuda_build._module is None and fresh._cuda_build.build_error() is None


def test_source_digest_is_stable_and_sources_ship():
    files = _cuda_build.source_files()
    assert {p.suffix for p in files} >= {".cu", ".cpp", ".h"}
    assert _cuda_build.source_digest(files) == _cuda_build.source_digest(files)
    assert len(_cuda_build.source_digest(files)) == 16


# ----------------------------------------------------------------------------
# CUDA parity (only with a GPU)


# (up, down, pad, kernel shape); kernel taps per axis cover the unrolled (1-4) and generic kernels.
CUDA_UPFIRDN_CASES = [(2, 1, (2, 1), (4, 4)), (1, 1, (1, 1), (4, 4)), (1, 2, (1, 1), (4, 3)),
                      (2, 1, (1, 0), (2, 2)), ((2, 1), (1, 2), (1, -1, 2, 0), (3, 4)),
                      (3, 2, (-1, 2), (4, 3)), (1, 1, (3, 3), (7, 7))]


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 2e-2), (torch.bfloat16, 1e-1)])
@pytest.mark.parametrize("case", CUDA_UPFIRDN_CASES)
def test_upfirdn2d_cuda_matches_ref(dtype, tol, case):
    up, down, pad, (kh, kw) = case
    x = torch.randn(3, 5, 17, 12, device="cuda").to(dtype).requires_grad_(True)
    k = _rand_kernel(kh, kw, seed=1).float().cuda()
    y_ref = upfirdn2d(x.float(), k, up, down, pad, impl="ref")
    y = upfirdn2d(x, k, up, down, pad, impl="cuda")
    assert y.dtype == dtype and y.shape == y_ref.shape
    torch.testing.assert_close(y.float(), y_ref, rtol=tol, atol=tol * k.sum().item())
    g = torch.randn_like(y_ref)
    (gx_ref,) = torch.autograd.grad(y_ref, x, g)
    (gx,) = torch.autograd.grad(y, x, g.to(dtype))
    torch.testing.assert_close(gx.float(), gx_ref.float(), rtol=tol, atol=tol * k.sum().item())


@pytest.mark.cuda
@needs_cuda
def test_cuda_gradcheck_float64():
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, device="cuda", requires_grad=True)
    k = _rand_kernel(3, 4, seed=2).cuda()
    assert torch.autograd.gradcheck(lambda t: upfirdn2d(t, k, 2, 1, (2, 1), impl="cuda"), (x,))
    assert torch.autograd.gradgradcheck(lambda t: upfirdn2d(t, k, 1, 2, (1, 2), impl="cuda"), (x,))
    xa = (torch.randn(2, 3, 4, dtype=torch.float64, device="cuda") + 0.05).requires_grad_(True)
    b = torch.randn(3, dtype=torch.float64, device="cuda", requires_grad=True)
    fn = lambda t, bb: fused_bias_leaky_relu(t, bb, impl="cuda")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (xa, b))
    assert torch.autograd.gradgradcheck(fn, (xa, b))


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float16, 1e-2), (torch.bfloat16, 5e-2)])
@pytest.mark.parametrize("shape", [(8, 16), (2, 16, 9, 7)])
def test_fused_act_cuda_matches_ref(dtype, tol, shape):
    x = torch.randn(*shape, device="cuda").to(dtype).requires_grad_(True)
    b = torch.randn(shape[1], device="cuda", requires_grad=True)
    for slope, scale in itertools.product([0.2, 0.0], [2 ** 0.5, -1.0]):
        y_ref = fused_bias_leaky_relu(x, b, slope, scale, impl="ref")
        y = fused_bias_leaky_relu(x, b, slope, scale, impl="cuda")
        torch.testing.assert_close(y.float(), y_ref.float(), rtol=tol, atol=tol)
        g = torch.randn_like(y)
        gx_ref, gb_ref = torch.autograd.grad(y_ref, (x, b), g)
        gx, gb = torch.autograd.grad(y, (x, b), g)
        torch.testing.assert_close(gx.float(), gx_ref.float(), rtol=tol, atol=tol)
        torch.testing.assert_close(gb, gb_ref, rtol=tol * 10, atol=tol * 10)
