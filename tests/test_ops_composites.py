"""The fast modes' composites (ops/upconv.py, ops/resize.py) against their pure-PyTorch reference twins."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from fgnet_core.models.stylegan2_layers import ModulatedConv2d, make_fir_kernel
from fgnet_core.ops import upfirdn2d
from fgnet_core.ops.resize import bilinear_matmul, bilinear_ref
from fgnet_core.ops.upconv import (
    blur_weight, depthwise_blur, fused_upsample_weight, phase_shuffle, shuffle_affine_lrelu, shuffle_affine_lrelu_ref,
    upconv2d, upconv2d_ref,
)

# ----------------------------------------------------------------------------
# fused up-sampling conv: exact re-arrangements of transposed conv + blur


@pytest.mark.parametrize("in_c,out_c,size", [(5, 4, 1), (3, 6, 4), (8, 2, 7)])
def test_fused_upsample_conv_equals_transposed_conv_then_blur(in_c, out_c, size):
    torch.manual_seed(0)
    conv = ModulatedConv2d(in_c, out_c, 3, 8, upsample=True).double()
    x = torch.randn(2, in_c, size, size, dtype=torch.float64)
    w = conv.weight[0] * conv.scale
    expected = conv.blur(F.conv_transpose2d(x, w.transpose(0, 1), stride=2))  # the reference's two steps
    g, (p0, p1) = fused_upsample_weight(w, conv.blur.kernel.double(), conv.blur.pad)
    assert g.shape == (4 * out_c, in_c, 3, 3) and (p0, p1) == (1, 1)
    for layout in (torch.contiguous_format, torch.channels_last):
        y = F.conv2d(F.pad(x, [p0, p1, p0, p1]).contiguous(memory_format=layout), g.contiguous(memory_format=layout))
        out = phase_shuffle(y, out_c)
        assert out.shape == expected.shape == (2, out_c, 2 * size, 2 * size)
        assert torch.allclose(out, expected, atol=1e-12)


def test_fused_upsample_weight_gradient_equals_the_two_step_gradient():
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 4, 3, 8, upsample=True).double()
    x = torch.randn(2, 6, 5, 5, dtype=torch.float64)
    grad_out = torch.randn(2, 4, 10, 10, dtype=torch.float64)
    w = (conv.weight[0] * conv.scale).detach().requires_grad_(True)
    (want,) = torch.autograd.grad(conv.blur(F.conv_transpose2d(x, w.transpose(0, 1), stride=2)), w, grad_out)
    g, (p0, p1) = fused_upsample_weight(w, conv.blur.kernel.double(), conv.blur.pad)
    (got,) = torch.autograd.grad(phase_shuffle(F.conv2d(F.pad(x, [p0, p1, p0, p1]), g), 4), w, grad_out)
    assert torch.allclose(got, want, atol=1e-11)


def test_fused_upsample_declines_shapes_that_do_not_double():
    assert fused_upsample_weight(torch.randn(2, 2, 3, 3), torch.ones(4, 4) / 16, (2, 1)) is None


def _up_blur():
    """The blur of StyleGAN2's up-sampling conv: kernel (x4 gain) and pad, as ModulatedConv2d builds them."""
    conv = ModulatedConv2d(2, 2, 3, 8, upsample=True)
    return conv.blur.kernel.double(), conv.blur.pad


@pytest.mark.parametrize("in_c,out_c,size", [(3, 5, 1), (4, 4, 6), (2, 3, 9)])
def test_upconv2d_matches_its_reference_twin_with_gradients(in_c, out_c, size):
    torch.manual_seed(0)
    fir, pad = _up_blur()
    x = torch.randn(2, in_c, size, size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(out_c, in_c, 3, 3, dtype=torch.float64, requires_grad=True)
    want, got = upconv2d_ref(x, w, fir, pad), upconv2d(x, w, fir, pad)
    assert got.shape == want.shape == (2, out_c, 2 * size, 2 * size)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(want)
    grads_want = torch.autograd.grad(want, (x, w), g)
    grads_got = torch.autograd.grad(got, (x, w), g)
    for a, b in zip(grads_got, grads_want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_upconv2d_falls_back_to_the_reference_for_shapes_that_do_not_double():
    torch.manual_seed(0)
    x, w = torch.randn(1, 2, 5, 5, dtype=torch.float64), torch.randn(3, 2, 3, 3, dtype=torch.float64)
    fir = make_fir_kernel().double()
    torch.testing.assert_close(upconv2d(x, w, fir, (2, 1)), upconv2d_ref(x, w, fir, (2, 1)), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_shuffle_affine_lrelu_matches_its_reference_twin(dtype):
    torch.manual_seed(0)
    b, c, h, w = 2, 3, 4, 5
    y = torch.randn(b, 4 * c, h, w).to(dtype).contiguous(memory_format=torch.channels_last)
    shift = torch.randn(1, c, 2 * h, 2 * w).to(dtype).contiguous(memory_format=torch.channels_last)
    scale = torch.rand(b, c, 1, 1).to(dtype)
    want = shuffle_affine_lrelu_ref(y, shift, scale, c, 0.2)
    with torch.no_grad():
        got = shuffle_affine_lrelu(y, shift, scale, c, 0.2)
    assert got.shape == want.shape == (b, c, 2 * h, 2 * w)
    assert got.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(got, want)  # the same element-wise operations, only the memory walk differs


@pytest.mark.parametrize("pad", [(2, 1), (1, 1), (-1, 2)])
def test_depthwise_blur_matches_upfirdn2d(pad):
    torch.manual_seed(0)
    fir = make_fir_kernel(gain=4.0).double()
    y = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    got = depthwise_blur(y, blur_weight(fir, 3), pad)
    torch.testing.assert_close(got, upfirdn2d(y, fir, pad=pad, impl="ref"), rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------
# bilinear resizes as matrix products


@pytest.mark.parametrize("src,dst", [(1024, 128), (256, 128), (64, 128), (4, 8), (5, 3)])
def test_bilinear_matmul_matches_interpolate(src, dst):
    torch.manual_seed(0)
    x = torch.randn(2, 3, src, src, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    want = F.interpolate(x, size=dst, mode="bilinear", align_corners=True)
    got = bilinear_matmul(x, dst)
    assert got.shape == want.shape == (2, 3, dst, dst)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(want)
    (gx_want,) = torch.autograd.grad(want, x, g)
    (gx_got,) = torch.autograd.grad(got, x, g)
    torch.testing.assert_close(gx_got, gx_want, rtol=1e-10, atol=1e-10)


def test_bilinear_matmul_matches_its_twin_on_non_square_nchw_input():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 12, 7, dtype=torch.float64)
    torch.testing.assert_close(bilinear_matmul(x, 5), bilinear_ref(x, 5), rtol=1e-12, atol=1e-12)
