"""Official checkpoint formats through the public loaders; bad files give one clear error and run nothing."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from fgnet_core import checkpoints
from fgnet_core.checkpoints import CheckpointError
from fgnet_core.models import FGNet, GradualStyleEncoder, PSPEncoder, StyleGAN2Generator
from fgnet_core.presets import ModelPreset
from tests.conftest import seeded_state

SMALL = ModelPreset(name="small", generator_size=64, style_dim=32, n_mlp=2,
                    generator_channels={4: 16, 8: 16, 16: 12, 32: 8, 64: 8}, encoder_units=(1, 1, 2, 1),
                    encoder_widths=(8, 12, 16, 24), input_size=64, out_channels=6, heatmap_size=32)


def _small_net(seed=0) -> FGNet:
    torch.manual_seed(seed)
    net = FGNet(SMALL)
    with torch.no_grad():
        for name, buf in net.named_buffers():
            if name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
            elif name.endswith("running_mean"):
                buf.normal_()
        net.encoder.latent_avg.normal_()
    return net.eval()


@pytest.fixture()
def official_files(tmp_path):
    """A small model saved in the three official formats."""
    net = _small_net()
    sg = checkpoints.save_stylegan2(net.generator, tmp_path / "stylegan2.pt")
    psp = checkpoints.save_psp_encoder(net.encoder, tmp_path / "encoder.pt", decoder=net.generator)
    fg = checkpoints.save_fgnet_model(net, tmp_path / "bp4d_0" / "model.pth")
    return net, sg, psp, fg


def test_stylegan2_round_trip_infers_layout(official_files):
    net, sg, _, _ = official_files
    g = checkpoints.load_stylegan2(sg)
    assert not g.training and g.size == 64 and g.channels == SMALL.generator_channels
    w = torch.randn(2, g.n_latent, 32)
    with torch.no_grad():
        img_a, feats_a = g.synthesis(w)
        img_b, feats_b = net.generator.synthesis(w)
    assert torch.equal(img_a, img_b) and all(torch.equal(a, b) for a, b in zip(feats_a, feats_b))


def test_psp_round_trip_adds_latent_avg(official_files):
    net, _, psp, _ = official_files
    enc = checkpoints.load_psp_encoder(psp)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(enc(x), net.encoder(x))
        assert torch.allclose(enc(x) - enc.encoder(x), net.encoder.latent_avg.expand(2, -1, -1))
    raw = torch.load(psp, weights_only=True)
    assert any(k.startswith("decoder.") for k in raw["state_dict"]) and raw["opts"]["output_size"] == 64


def test_fgnet_round_trip_keeps_latent_avg_from_psp_file(official_files, tmp_path):
    net, sg, psp, fg = official_files
    loaded = checkpoints.load_fgnet(fg, stylegan=sg, encoder=psp, heatmap_size=32)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    assert not loaded.training
    # model.pth overrides the encoder weights but pSp's latent_avg stays
    other = _small_net(seed=5)
    fg2 = checkpoints.save_fgnet_model(other, tmp_path / "other.pth")
    loaded2 = checkpoints.load_fgnet(fg2, encoder=psp, heatmap_size=32)
    assert torch.equal(loaded2.encoder.latent_avg, net.encoder.latent_avg)
    assert torch.equal(loaded2.interpreter.layer0[1].weight, other.interpreter.layer0[1].weight)
    with pytest.raises(CheckpointError, match="pSp encoder file too"):
        checkpoints.load_fgnet(fg)


def _edit(path: Path, out: Path, fn) -> Path:
    obj = torch.load(path, weights_only=True)
    fn(obj)
    torch.save(obj, out)
    return out


def test_missing_unexpected_and_wrong_shape_keys_are_named(official_files, tmp_path):
    _, sg, psp, fg = official_files
    p = _edit(sg, tmp_path / "a.pt", lambda o: o["g_ema"].pop("convs.3.noise.weight"))
    with pytest.raises(CheckpointError, match=r"a\.pt \[g_ema\]: missing key 'convs\.3\.noise\.weight'"):
        checkpoints.load_stylegan2(p)
    p = _edit(sg, tmp_path / "b.pt", lambda o: o["g_ema"].__setitem__("extra.weight", torch.zeros(1)))
    with pytest.raises(CheckpointError, match="unexpected key 'extra.weight'"):
        checkpoints.load_stylegan2(p)
    p = _edit(fg, tmp_path / "c.pth", lambda o: o["interpreter"].__setitem__("layer0.1.bias", torch.zeros(3)))
    with pytest.raises(CheckpointError, match=r"\[interpreter\]: key 'layer0.1.bias' has shape \[3\], expected \[16\]"):
        checkpoints.load_fgnet(p, encoder=psp, heatmap_size=32)


def test_wrong_kind_of_file_is_named(official_files):
    _, sg, psp, fg = official_files
    with pytest.raises(CheckpointError, match="pSp encoder checkpoint"):
        checkpoints.load_stylegan2(psp)
    with pytest.raises(CheckpointError, match="not a pSp encoder checkpoint.*StyleGAN2 checkpoint"):
        checkpoints.load_psp_encoder(sg)
    with pytest.raises(CheckpointError, match="not an FG-Net model.pth"):
        checkpoints.load_fgnet(sg, encoder=psp)
    with pytest.raises(CheckpointError, match="not an fgnet-workspace training checkpoint.*FG-Net model"):
        checkpoints.load_training_checkpoint(fg)


def test_truncated_empty_missing_and_non_checkpoint_files(official_files, tmp_path):
    _, sg, _, _ = official_files
    data = Path(sg).read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    for name, pattern in [("trunc.pt", "truncated or corrupt"), ("empty.pt", "empty"),
                          ("text.pt", "truncated, corrupt or another kind"), ("nope.pt", "not found")]:
        with pytest.raises(CheckpointError, match=pattern) as info:
            checkpoints.load_stylegan2(tmp_path / name)
        assert name in str(info.value)


class _Payload:
    """Unpickling this would create a marker file: a stand-in for code execution."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "PWNED"
    bad = tmp_path / "evil.pt"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2)}, "x": _Payload(str(marker))}, bad)
    with pytest.raises(CheckpointError, match="refused.*could run code"):
        checkpoints.load_stylegan2(bad)
    assert not marker.exists()
    raw = tmp_path / "evil_raw.pt"  # a plain pickle stream, not a torch zip
    raw.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(CheckpointError):
        checkpoints.load_fgnet(raw, encoder=raw)
    assert not marker.exists()


def test_training_checkpoint_round_trip_is_atomic(tmp_path):
    net = _small_net()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net.train()
    loss = net(torch.randn(2, 3, 64, 64)).square().mean()
    loss.backward()
    opt.step()
    path = checkpoints.save_training_checkpoint(tmp_path / "run" / "last.pt", net, opt, epoch=3,
                                                params={"lr": 1e-3, "aus": [1, 2]}, best_f1=55.5)
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left
    model, ckpt = checkpoints.load_training_checkpoint(path)
    assert ckpt["epoch"] == 3 and ckpt["params"]["aus"] == [1, 2] and ckpt["best_f1"] == 55.5
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), net.state_dict().values()))
    opt2 = torch.optim.AdamW(model.parameters(), lr=1e-3)
    checkpoints.load_training_checkpoint(path, model, opt2)
    assert opt2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_atomic_save_leaves_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "ckpt.pt"
    checkpoints.atomic_save({"a": torch.ones(1)}, target)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        checkpoints.atomic_save({"a": torch.zeros(1)}, target)
    assert torch.load(target, weights_only=True)["a"].item() == 1.0
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]


@pytest.mark.slow
def test_official_size_files_from_manifests_load_through_public_loaders(manifests, tmp_path):
    """Seeded files with exactly the official keys and shapes (1024 px, IR-SE-50, 32-channel head)."""
    sg_m = manifests["stylegan2_ffhq_config_f"]["entries"]
    psp_m = manifests["psp_ffhq_encode"]["entries"]
    fg_m = manifests["fgnet_au_model"]["entries"]
    g_ema = seeded_state(sg_m["g_ema"], seed=1)
    torch.save({"g_ema": g_ema, "latent_avg": torch.randn(512)}, tmp_path / "stylegan2-ffhq-config-f.pt")
    g = checkpoints.load_stylegan2(tmp_path / "stylegan2-ffhq-config-f.pt")
    assert g.size == 1024 and g.n_latent == 18
    del g, g_ema
    enc_state = seeded_state({k: v for k, v in psp_m["state_dict"].items() if k.startswith("encoder.")}, seed=2)
    opts = {"input_nc": 3, "encoder_type": "GradualStyleEncoder"}  # an old file without output_size -> 1024
    torch.save({"state_dict": enc_state, "opts": opts, "latent_avg": torch.randn(18, 512)}, tmp_path / "encoder.pt")
    del enc_state
    entries = ("interpreter", "g_all", "pspencoder")
    model = {entry: seeded_state(fg_m[entry], seed=3 + i) for i, entry in enumerate(entries)}
    torch.save(model, tmp_path / "model.pth")
    del model
    net = checkpoints.load_fgnet(tmp_path / "model.pth", stylegan=tmp_path / "stylegan2-ffhq-config-f.pt",
                                 encoder=tmp_path / "encoder.pt")
    assert net.preset.generator_size == 1024 and net.interpreter.out_channels == 32
    assert net.encoder.encoder.style_count == 18


def test_loader_rejects_encoder_generator_mismatch(official_files, tmp_path):
    net, _, _, fg = official_files
    torch.manual_seed(0)
    enc = PSPEncoder(GradualStyleEncoder(n_styles=18, style_dim=32, units=(1, 1, 2, 1), widths=(8, 12, 16, 24),
                                         input_size=64))
    psp = checkpoints.save_psp_encoder(enc, tmp_path / "enc1024.pt", output_size=1024)
    with pytest.raises(CheckpointError, match="18 W\\+ rows"):
        checkpoints.load_fgnet(fg, encoder=psp, heatmap_size=32)
    assert isinstance(net.generator, StyleGAN2Generator)
