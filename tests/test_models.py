"""Model structure and semantics: official key names, feature order, modulation, FG-Net composition."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from fgnet_core.models import FGNet, GradualStyleEncoder, PSPEncoder, PyramidInterpreter, StyleGAN2Generator
from fgnet_core.data.heatmaps import heatmaps_to_aus
from fgnet_core.models.stylegan2_layers import ModulatedConv2d
from fgnet_core.presets import PRESETS, get_preset

SMALL_CHANNELS = {4: 16, 8: 16, 16: 12, 32: 8, 64: 8}


def small_generator(**kw) -> StyleGAN2Generator:
    torch.manual_seed(0)
    return StyleGAN2Generator(size=64, style_dim=32, n_mlp=2, channels=SMALL_CHANNELS, **kw)


def _shapes(module) -> dict:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def _manifest_shapes(entries: dict) -> dict:
    return {k: v[0] for k, v in entries.items()}


def test_official_state_dicts_match_manifests_key_for_key(manifests):
    with torch.device("meta"):
        net = FGNet("official")
    g_ema = manifests["stylegan2_ffhq_config_f"]["entries"]["g_ema"]
    fg = manifests["fgnet_au_model"]["entries"]
    psp = manifests["psp_ffhq_encode"]["entries"]["state_dict"]
    # same keys in the same order, same shapes
    assert list(_shapes(net.generator).items()) == list(_manifest_shapes(g_ema).items())
    assert list(_shapes(net.generator).items()) == list(_manifest_shapes(fg["g_all"]).items())
    assert list(_shapes(net.interpreter).items()) == list(_manifest_shapes(fg["interpreter"]).items())
    assert list(_shapes(net.encoder.encoder).items()) == list(_manifest_shapes(fg["pspencoder"]).items())
    enc = {k[len("encoder."):]: v[0] for k, v in psp.items() if k.startswith("encoder.")}
    assert _shapes(net.encoder.encoder) == enc
    assert list(net.encoder.latent_avg.shape) == manifests["psp_ffhq_encode"]["entries"]["latent_avg"][0]


def test_official_generator_returns_18_feature_maps_in_official_order():
    with torch.device("meta"):
        g = StyleGAN2Generator(size=1024)
        image, feats = g.synthesis(torch.zeros(1, 18, 512))
    assert g.n_latent == 18 and g.num_layers == 17
    assert [f.shape[-1] for f in feats] == [4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 512,
                                            1024, 1024]
    assert [f.shape[1] for f in feats] == [512] * 10 + [256, 256, 128, 128, 64, 64, 32, 32]
    assert tuple(image.shape) == (1, 3, 1024, 1024)


def test_synthesis_uses_fixed_noise_buffers_and_can_skip_rgb():
    g = small_generator().eval()
    w = torch.randn(2, g.n_latent, 32)
    with torch.no_grad():
        for conv in g.convs:  # make noise matter
            conv.noise.weight.fill_(0.7)
        img1, f1 = g.synthesis(w)
        img2, f2 = g.synthesis(w)
        none_img, f3 = g.synthesis(w, return_image=False)
        _, f4 = g.synthesis(w, randomize_noise=True)
    assert torch.equal(img1, img2) and all(torch.equal(a, b) for a, b in zip(f1, f2))
    assert none_img is None and all(torch.equal(a, b) for a, b in zip(f1, f3))
    assert not torch.allclose(f1[-1], f4[-1])
    assert img1.shape == (2, 3, 64, 64)
    # the const input is the first map, then conv1 at 4x4
    assert torch.equal(f1[0][0], g.input.input[0])


def test_mapping_is_pixelnorm_then_mlp():
    g = small_generator()
    z = torch.randn(3, 32)
    assert torch.allclose(g.mapping(z), g.mapping(z * 5.0), atol=1e-5)  # PixelNorm removes scale
    assert g.mapping(z).shape == (3, 32)


def _direct_modconv(conv: ModulatedConv2d, x, style):
    """Per-sample float64 definition: modulate, demodulate, convolve (transposed + blur for upsample)."""
    outs = []
    for b in range(x.shape[0]):
        s = conv.modulation(style[b : b + 1])[0]  # [in]
        w = conv.scale * conv.weight[0] * s.view(1, -1, 1, 1)  # [out, in, k, k]
        if conv.demodulate:
            w = w / torch.sqrt((w**2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        xb = x[b : b + 1]
        if conv.upsample:
            outs.append(conv.blur(F.conv_transpose2d(xb, w.transpose(0, 1), stride=2)))
        else:
            outs.append(F.conv2d(xb, w, padding=conv.padding))
    return torch.cat(outs)


@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_definition_in_both_modes(upsample, demodulate):
    torch.manual_seed(1)
    conv = ModulatedConv2d(6, 5, 3, 8, demodulate=demodulate, upsample=upsample).double()
    x, style = torch.randn(3, 6, 7, 7).double(), torch.randn(3, 8).double()
    expected = _direct_modconv(conv, x, style)
    assert torch.allclose(conv(x, style), expected, atol=1e-10)
    conv.mode = "batched"
    assert torch.allclose(conv(x, style), expected, atol=1e-10)
    assert conv(x, style).shape[-1] == (14 if upsample else 7)


def test_encoder_adds_latent_avg_and_has_pyramid_heads():
    torch.manual_seed(0)
    enc = GradualStyleEncoder(n_styles=10, style_dim=16, units=(1, 1, 1, 1), widths=(8, 8, 12, 16),
                              input_size=64).eval()
    avg = torch.randn(10, 16)
    psp = PSPEncoder(enc, avg).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(psp(x) - enc(x), avg.expand(2, 10, 16), atol=1e-6)
    assert enc.tap_indices == [1, 2, 3]
    assert len(enc.styles[0].convs) == 2 * 2 and len(enc.styles[9].convs) == 2 * 4  # log2(4), log2(16) pools


def test_official_encoder_taps_match_ir_se_50():
    with torch.device("meta"):
        enc = GradualStyleEncoder(n_styles=18)
    assert enc.tap_indices == [6, 20, 23]  # c1, c2, c3 of the official forward
    assert len(enc.body) == 24


def test_interpreter_resizes_large_levels_with_align_corners_true():
    interp = PyramidInterpreter()
    x = torch.randn(1, 2, 256, 256)
    ours = interp.resize_level(x)
    assert torch.equal(ours, F.interpolate(x, size=128, mode="bilinear", align_corners=True))
    assert not torch.allclose(ours, F.interpolate(x, size=128, mode="bilinear", align_corners=False))
    small = torch.randn(1, 2, 64, 64)
    assert interp.resize_level(small) is small


def test_interpreter_block_structure_is_official():
    interp = PyramidInterpreter()
    kinds = [[type(m).__name__ for m in b] for b in interp.blocks]
    assert kinds[0] == ["Upsample", "Conv2d", "ReLU", "Dropout", "BatchNorm2d"]
    assert kinds[4] == ["Upsample", "Conv2d", "ReLU", "Dropout", "BatchNorm2d"]
    assert kinds[5] == ["Conv2d", "ReLU", "Dropout", "BatchNorm2d"]
    assert kinds[8] == ["Conv2d", "ReLU", "Dropout", "BatchNorm2d", "Conv2d"]
    assert interp.layer0[1].kernel_size == (3, 3) and interp.layer1[1].kernel_size == (5, 5)
    assert interp.layer0[0].align_corners is True


def test_interpreter_adds_each_level_after_batchnorm():
    torch.manual_seed(0)
    interp = PyramidInterpreter((8, 8, 4), (4, 8, 16), out_channels=3, heatmap_size=16).eval()
    feats = [torch.randn(1, 8, 4, 4), torch.randn(1, 8, 8, 8), torch.randn(1, 4, 16, 16)]
    out, levels = interp(feats, return_levels=True)
    assert torch.allclose(levels[0], interp.layer0(feats[0]) + feats[1])
    assert torch.allclose(levels[1], interp.layer1(levels[0]) + feats[2])
    assert torch.allclose(out, interp.layer2(levels[1]))
    assert out.shape == (1, 3, 16, 16)


def test_fgnet_applies_mapping_again_to_every_w_plus_row():
    torch.manual_seed(0)
    net = FGNet("tiny").eval()
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        s = net.preset.encoder_input_size
        resized = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        w = net.encoder(resized)
        expected = torch.stack([net.generator.mapping(w[:, i]) for i in range(w.shape[1])], dim=1)
        assert torch.allclose(net.latents(x), expected, atol=1e-6)
        heat = net(x)
    p = PRESETS["tiny"]
    assert heat.shape == (2, p.out_channels, p.heatmap_size, p.heatmap_size)


def test_predict_is_clamped_mean_above_zero():
    heat = torch.zeros(1, 3, 4, 4)
    heat[0, 0] = 5.0  # clamps to 1 -> present
    heat[0, 1, 0, 0] = -40.0  # a single huge negative: clamped to -1, mean -1/16 -> absent
    heat[0, 1, 1:, :] = 0.1  # 12 pixels at 0.1 -> without the clamp the mean would be negative too
    heat[0, 2] = -0.1
    assert heatmaps_to_aus(heat).tolist() == [[1, 1, 0]]


def test_predict_slices_dataset_channels():
    net = FGNet("tiny", out_channels=32).eval()
    x = torch.zeros(1, 3, 256, 256)
    assert net.predict(x, "BP4D").shape == (1, 12)
    assert net.predict(x, "disfa").shape == (1, 8)
    with pytest.raises(ValueError, match="unknown dataset"):
        net.predict(x, "CK+")


def test_presets_by_name():
    assert get_preset("official").generator_size == 1024
    assert get_preset("tiny", out_channels=8).out_channels == 8
    with pytest.raises(ValueError, match="unknown model preset"):
        get_preset("huge")
    p = get_preset("tiny")
    assert type(p).from_dict(p.to_dict()) == p
