"""The fast mode of the layers (models/modes.py) against the reference float32 path: same function, same
parameters, one module tree. The composites it uses are checked against their twins in test_ops_composites.py."""
from __future__ import annotations

import copy
import inspect

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from fgnet_core.models import FGNet, GradualStyleEncoder, PSPEncoder, PyramidInterpreter
from fgnet_core.models import FastSettings, make_fast, make_fast_from_params, make_reference
from fgnet_core.models.modes import FastMode, set_mode
from fgnet_core.models.stylegan2_layers import ModulatedConv2d, StyledConv
from fgnet_core.presets import get_preset

BF16_REL = 3e-2  # max |fast - ref| / max |ref| on heatmaps
FP32_REL = 1e-4
SCORE_MARGIN = 0.02  # AU scores (mean of the clamped heatmap) closer than this to 0 may flip in bf16

# the tiny topology made smaller still (32 px generator, 64 px encoder input, 16 px heatmaps);
# dropout 0 so training steps compare exactly
PRESET = get_preset("tiny", dropout=0.0, generator_size=32, style_dim=16, encoder_input_size=64,
                    generator_channels={4: 16, 8: 16, 16: 12, 32: 8}, encoder_widths=(8, 8, 16, 16),
                    out_channels=8, heatmap_size=16)


def _seeded_net(preset=PRESET, seed=0) -> FGNet:
    """Seeded weights with non-trivial BatchNorm statistics and noise strengths."""
    torch.manual_seed(seed)
    net = FGNet(preset)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
        for layer in [net.generator.conv1, *net.generator.convs]:
            layer.noise.weight.fill_(0.3)
            layer.activate.bias.normal_(0, 0.1)
    return net


def _images(n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 256, 256, generator=g) * 2 - 1


def _rel(a, b):
    return ((a.float() - b.float()).abs().max() / b.float().abs().max()).item()


def _scores(heat):
    return heat.float().clamp(-1, 1).mean(dim=(2, 3))


def _assert_au_decisions_agree(fast, ref, margin=SCORE_MARGIN):
    s_fast, s_ref = _scores(fast), _scores(ref)
    disagree = (s_fast > 0) != (s_ref > 0)
    assert not (disagree & (s_ref.abs() >= margin)).any(), "AU decisions differ away from the threshold"


# ----------------------------------------------------------------------------
# which up-sampling form a layer runs (the forms themselves: test_ops_composites.py)


@pytest.mark.parametrize("upconv,grad,wide_fused", [("auto", False, True), ("auto", True, False),
                                                    ("fused", True, True), ("transpose", False, False)])
def test_auto_upconv_fuses_every_layer_only_without_gradients(upconv, grad, wide_fused):
    wide, narrow = ModulatedConv2d(512, 512, 3, 8, upsample=True), ModulatedConv2d(64, 32, 3, 8, upsample=True)
    for conv in (wide, narrow):
        set_mode(conv, FastSettings(precision="fp32", upconv=upconv))
    with torch.set_grad_enabled(grad):
        assert wide.use_fused_up() is wide_fused
        assert narrow.use_fused_up() is (upconv != "transpose")


# ----------------------------------------------------------------------------
# whole model, small preset


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("upconv", ["fused", "transpose"])
def test_fast_fp32_matches_reference_in_eval(channels_last, upconv):
    net = _seeded_net().eval()
    x = _images()
    with torch.no_grad():
        ref = net(x)
        make_fast(net, precision="fp32", channels_last=channels_last, upconv=upconv)
        out = net(x)
        again = net(x)  # second call: cached derived weights
    assert _rel(out, ref) < FP32_REL
    assert torch.equal(out, again)
    assert out.dtype == torch.float32 and out.shape == ref.shape


def test_fast_bf16_within_bf16_tolerance_and_same_au_decisions():
    net = _seeded_net().eval()
    x = _images(6)
    with torch.no_grad():
        ref = net(x)
        out = make_fast(net, precision="bf16")(x)
    assert _rel(out, ref) < BF16_REL
    _assert_au_decisions_agree(out, ref)


def test_fast_features_are_channels_last_and_match_reference():
    net = _seeded_net().eval()
    x = _images(2)
    with torch.no_grad():
        ref = net.features(x)
        make_fast(net, precision="fp32", channels_last=True)
        fast = net.features(x)
    for r, f in zip(ref, fast):
        assert f.is_contiguous(memory_format=torch.channels_last)
        assert _rel(f, r) < FP32_REL


def _train_step(net, x, target):
    net.train()
    net.zero_grad(set_to_none=True)
    loss = F.mse_loss(net(x)[:, : target.shape[1]].float(), target)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fast_training_step_matches_reference(precision):
    ref_net = _seeded_net()
    fast_net = make_fast(copy.deepcopy(ref_net), precision=precision)
    x = _images(4)
    target = torch.randn(4, 8, 16, 16) * 0.5
    loss_r, grads_r = _train_step(ref_net, x, target)
    loss_f, grads_f = _train_step(fast_net, x, target)
    assert grads_r.keys() == grads_f.keys()
    assert {n for n, _ in ref_net.named_parameters()} - set(grads_r) == {  # only the unused RGB branch
        n for n, _ in ref_net.named_parameters() if "to_rgb" in n}
    tol = FP32_REL if precision == "fp32" else 5e-2
    assert abs(loss_f - loss_r) / loss_r < tol
    if precision == "fp32":
        for name in grads_r:
            diff = (grads_f[name] - grads_r[name]).abs().max()
            assert diff <= 1e-3 * grads_r[name].abs().max() + 1e-12, name  # rows read only by RGB: 0 in both
    else:  # bf16 gradients: the overall direction and size agree
        flat_r = torch.cat([g.flatten() for g in grads_r.values()])
        flat_f = torch.cat([grads_f[n].flatten() for n in grads_r])
        assert F.cosine_similarity(flat_r, flat_f, dim=0) > 0.99
        assert abs(flat_f.norm() / flat_r.norm() - 1) < 0.05
    # BatchNorm running statistics are updated the same way (float32 buffers)
    sr, sf = ref_net.state_dict(), fast_net.state_dict()
    for key in sr:
        if "running_" in key or "num_batches" in key:
            assert sf[key].dtype == sr[key].dtype
            assert torch.allclose(sf[key].float(), sr[key].float(), rtol=1e-3 if precision == "fp32" else 3e-2,
                                  atol=1e-5 if precision == "fp32" else 3e-3), key


def test_state_dict_unchanged_and_reference_restored():
    net = _seeded_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fast = make_fast(net, precision="bf16", channels_last=True)
    assert fast is net and type(net) is FGNet and net.fast_settings.precision == "bf16"
    assert all(m.fast is net.fast for m in net.modules() if hasattr(type(m), "fast"))  # one mode object
    after = net.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) and after[k].dtype == before[k].dtype for k in before)
    plain = FGNet(PRESET)
    plain.load_state_dict(after)  # loads into a reference model as is
    make_reference(net)
    assert type(net) is FGNet and net.fast_settings is None and "_fast_compiled" not in net.__dict__
    assert all(getattr(m, "fast", None) is None for m in net.modules())
    with torch.no_grad():
        assert torch.equal(net.eval()(_images(1)), plain.eval()(_images(1)))


def test_cache_follows_in_place_weight_updates():
    net = make_fast(_seeded_net().eval(), precision="fp32")
    x = _images(2)
    with torch.no_grad():
        first = net(x)
        for p in net.parameters():
            p.mul_(0.9)
        second = net(x)
        net.clear_fast_cache()
        third = net(x)
    assert not torch.allclose(first, second)
    assert torch.equal(second, third)


def test_settings_from_params():
    s = FastSettings.from_params({"precision": "fp32", "compile": True})
    assert s.precision == "fp32" and s.compile and s.channels_last
    with pytest.raises(ValueError, match="unknown fast-path setting"):
        FastSettings.from_params({"precison": "bf16"})
    with pytest.raises(ValueError, match="precision must be one of"):
        FastSettings(precision="fp16")
    net = make_fast_from_params(_seeded_net(), {"enabled": True, "precision": "fp32"})
    assert net.fast_settings.precision == "fp32"
    assert type(make_fast_from_params(net, {"enabled": False})) is FGNet and net.fast_settings is None


def test_autocast_around_the_fast_model_changes_nothing():
    net = make_fast(_seeded_net().eval(), precision="fp32")
    x = _images(2)
    with torch.no_grad():
        plain = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            wrapped = net(x)
    assert torch.equal(plain, wrapped)


def test_compile_wraps_the_body_without_context_managers():
    """`compile=True` compiles exactly the function the one-graph test traces; the autocast context stays
    outside it (a graph break there made every call recompile)."""
    net = make_fast(_seeded_net(), precision="bf16", compile=True)
    assert net.__dict__["_fast_compiled"]._torchdynamo_orig_callable == net._fast_body
    src = inspect.getsource(type(net)._fast_body)
    assert "with " not in src.split('"""')[-1] and "autocast" not in src.split('"""')[-1]


@pytest.mark.slow
def test_fast_forward_and_backward_trace_as_one_graph():
    """torch.compile sees no graph break (aot_eager: tracing only, no code generation on CPU)."""
    torch._dynamo.reset()
    net = make_fast(_seeded_net(), precision="bf16")
    compiled = torch.compile(net._fast_body, backend="aot_eager", fullgraph=True, dynamic=False)
    x = _images(2)
    net.eval()
    with torch.no_grad():
        assert _rel(compiled(x), net(x)) < BF16_REL  # decompositions round bf16 differently
    net.train()
    out = compiled(x)
    out.float().square().mean().backward()
    assert all(p.grad is not None for n, p in net.named_parameters() if "to_rgb" not in n)
    torch._dynamo.reset()


# ----------------------------------------------------------------------------
# seeded pieces at the official widths


def _fast(module, precision, cl=True, upconv="auto") -> FastMode:
    """A standalone module in fast mode, derived weights computed fresh on every call."""
    return set_mode(module, FastSettings(precision=precision, channels_last=cl, upconv=upconv, cache_weights=False))


@pytest.mark.parametrize("in_c,out_c,upsample,size", [
    (512, 512, True, 4),  # 8 px layer
    (512, 256, True, 8),  # 128 px layer: transposed conv under 'auto' when training
    (64, 32, True, 8),  # 1024 px layer: always fused under 'auto'
    (32, 32, False, 16),
])
@pytest.mark.parametrize("upconv", ["auto", "transpose"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_official_width_styled_convs(in_c, out_c, upsample, size, precision, upconv):
    torch.manual_seed(0)
    layer = StyledConv(in_c, out_c, 3, 512, upsample=upsample).eval()
    with torch.no_grad():
        layer.noise.weight.fill_(0.2)
        layer.activate.bias.normal_(0, 0.1)
    res = size * 2 if upsample else size
    noise = torch.randn(1, 1, res, res)
    x, style = torch.randn(2, in_c, size, size), torch.randn(2, 512)
    with torch.no_grad():
        ref = layer(x, style, noise=noise)  # grouped modulated conv, reference ops
        fast = _fast(layer, precision, upconv=upconv)
        out = layer(x.to(fast.dt), style, noise=noise)
    assert _rel(out, ref) < (FP32_REL if precision == "fp32" else 2e-2)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_official_width_encoder(precision):
    """IR-SE-50 at the official widths and depths, with heads sized for a 64 px input."""
    torch.manual_seed(0)
    enc = GradualStyleEncoder(n_styles=18, input_size=64)
    with torch.no_grad():
        for m in enc.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    psp = PSPEncoder(enc, torch.randn(18, 512)).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ref = psp(x)
        fast = _fast(psp, precision)
        out = psp(fast.fmt(x.to(fast.dt)))
    assert out.dtype == torch.float32
    assert _rel(out, ref) < (FP32_REL if precision == "fp32" else 2e-2)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_official_width_interpreter(precision):
    """The official interpreter widths; pyramid 4..256 px read into 16 px heatmaps (official: 4..1024 -> 128)."""
    torch.manual_seed(0)
    chans, res = (512, 512, 512, 512, 512, 256, 128), (4, 8, 16, 32, 64, 128, 256)
    ip = PyramidInterpreter(chans, res, out_channels=32, heatmap_size=16)
    ip.init_weights()
    ip.eval()
    feats = [torch.randn(2, c, r, r) for c, r in zip(chans, res)]
    with torch.no_grad():
        ref = ip(feats)
        fast = _fast(ip, precision)
        out = ip([fast.fmt(f.to(fast.dt)) for f in feats])
    assert _rel(out, ref) < (FP32_REL if precision == "fp32" else 2e-2)


# ----------------------------------------------------------------------------
# bench/speed.py on CPU


def _speed_module():
    import importlib.util

    from fgnet_core.paths import REPO_ROOT

    spec = importlib.util.spec_from_file_location("bench_speed", REPO_ROOT / "bench" / "speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_speed_table_ratios_and_mfu():
    speed = _speed_module()
    base = dict(ok=True, mode="inference", batch=16, requested_batch=16, ms_per_batch=100.0, peak_mib=1024.0)
    results = [dict(base, name="reference fp32", path="reference", images_per_s=100.0),
               dict(base, name="fast bf16", path="fast", images_per_s=400.0, peak_mib=512.0, parity_rel=0.01,
                    au_agree=1.0, au_differ_far=0),
               dict(ok=False, name="fast bf16 + compile", path="fast", mode="train", batch=16, error="timed out")]
    table = speed.format_table(results, {"forward": 500e9, "train": 1500e9}, 1000.0)
    row = next(line for line in table.splitlines() if line.startswith("| fast bf16 |"))
    assert "| 4.00 | 0.50 | 20.0% | 1.00e-02 | 100.0% (0 far) |" in row  # 400 img/s x 500 GFLOP / 1 PFLOP/s
    assert "failed" in table and "timed out" in table


@pytest.mark.slow
def test_speed_script_runs_on_cpu(capsys, tmp_path):
    speed = _speed_module()
    code = speed.main(["--device", "cpu", "--preset", "tiny", "--no-isolate", "--only", "fast fp32",
                       "--budget-s", "600", "--json", str(tmp_path / "speed.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "FLOPs per image" in out and "| fast fp32 | inference |" in out and "| fast fp32 | train |" in out
    import json

    results = json.loads((tmp_path / "speed.json").read_text())["results"]
    inference = next(r for r in results if r["mode"] == "inference")
    assert inference["ok"] and inference["parity_rel"] < FP32_REL and inference["au_differ_far"] == 0


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_no_grad_epilogue_with_fused_shuffle_equals_the_autograd_path(precision):
    """In no-grad eager mode the pixel shuffle runs inside the epilogue; with grad it is a separate copy."""
    net = make_fast(_seeded_net().eval(), precision=precision, upconv="fused", cache_weights=False)
    x = _images(2)
    with torch.no_grad():
        fused = net.features(x)
    plain = [f.detach() for f in net.features(x)]  # grad enabled: separate shuffle, addcmul, activation
    for a, b in zip(fused, plain):
        assert a.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(a, b)


# ----------------------------------------------------------------------------
# bilinear resizes: the mode picks interpolate or matrix products


def test_bilinear_auto_uses_matmul_only_with_gradients(monkeypatch):
    from fgnet_core.ops import resize

    calls = []
    real = resize.resize_matrix
    monkeypatch.setattr(resize, "resize_matrix", lambda *a: calls.append(a) or real(*a))
    mode = FastMode(FastSettings(precision="fp32"))
    x = torch.randn(1, 2, 16, 16)
    with torch.no_grad():
        mode.resize(x, 8)
    assert calls == []
    mode.resize(x.requires_grad_(), 8)
    assert len(calls) == 1
    with pytest.raises(ValueError, match="resize must be one of"):
        FastSettings(resize="nearest")
