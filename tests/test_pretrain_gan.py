"""Generative pretraining of the tiny backbone: the GAN recipe (losses, R1, EMA, style mixing, resume, the
official-format output), the discriminator, and the pSp inversion. Everything at toy size on the CPU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fgnet_core import checkpoints
from fgnet_core.data.image_tensors import to_model_range
from fgnet_core.models.discriminator import Discriminator
from fgnet_core.models.fgnet import FGNet
from fgnet_core.pipeline.pretrain import tiny_generator
from fgnet_core.training.gan import (
    GANRecipe, discriminator_loss, ema_update, generator_loss, mean_w, mixed_latents, train_gan,
)
from fgnet_core.training.inversion import InversionRecipe, reconstruct, reconstruction_loss, train_inversion

QUIET = lambda *_: None  # noqa: E731


def _faces(n: int, size: int = 64, seed: int = 0) -> torch.Tensor:
    """uint8 [n, 3, size, size]: a bright disc on a dark, slightly noisy background (an easy 'real' look)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2).float()
    img = 30 + 190 * disc[None, None] + 10 * torch.rand(n, 3, size, size, generator=g)
    return img.clamp(0, 255).to(torch.uint8)


def _gan(seed: int = 0):
    torch.manual_seed(seed)
    G = tiny_generator()
    return G, Discriminator(G.size)


def _recipe(**kw) -> GANRecipe:
    base = dict(steps=4, batch_size=4, r1_every=2, log_every=1, sample_every=1000, checkpoint_every=1000, seed=0)
    return GANRecipe(**{**base, **kw})


# ------------------------------------------------------------------------------------------- discriminator

@pytest.mark.parametrize("batch", [1, 3, 4, 5, 6, 8])
def test_discriminator_gives_one_logit_per_image(batch):
    torch.manual_seed(0)
    D = Discriminator(64)
    out = D(torch.randn(batch, 3, 64, 64))
    assert out.shape == (batch,) and torch.isfinite(out).all()


def test_minibatch_stddev_groups_a_batch_not_divisible_by_the_group():
    """6 images, group 4 -> groups of 3 strided across the batch: images {0, 2, 4} and {1, 3, 5}."""
    D = Discriminator(64, mbstd_group=4)
    x = torch.randn(6, 5, 4, 4, dtype=torch.float64)
    out = D._minibatch_stddev(x)
    assert out.shape == (6, 6, 4, 4)
    torch.testing.assert_close(out[:, :5], x)
    for members in ([0, 2, 4], [1, 3, 5]):
        expected = (x[members].var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        for i in members:
            torch.testing.assert_close(out[i, 5], torch.full((4, 4), expected.item(), dtype=torch.float64))
    assert not torch.allclose(out[0, 5], out[1, 5])
    single = D._minibatch_stddev(x[:5])  # prime: one image per group, no spread
    torch.testing.assert_close(single[:, 5], torch.full((5, 4, 4), 1e-4, dtype=torch.float64))


# ---------------------------------------------------------------------------------------------- GAN pieces

def test_r1_penalty_is_positive_and_scales_with_its_weight():
    G, D = _gan()
    real = to_model_range(_faces(4))
    fake = torch.randn(4, 3, 64, 64)
    plain = discriminator_loss(D, real, fake, 0.0)
    assert "r1" not in plain and torch.equal(plain["total"], plain["d_loss"])
    one, two = discriminator_loss(D, real, fake, 0.3), discriminator_loss(D, real, fake, 0.6)
    assert one["r1"] > 0
    torch.testing.assert_close(one["d_loss"], plain["d_loss"])
    torch.testing.assert_close(one["total"] - one["d_loss"], 0.3 * 0.5 * one["r1"])
    torch.testing.assert_close(two["total"] - two["d_loss"], 2 * (one["total"] - one["d_loss"]))
    one["total"].backward()  # differentiable through the gradient penalty (create_graph)
    assert all(p.grad is not None for p in D.parameters())


def test_ema_update_moves_toward_the_model_by_one_minus_beta():
    torch.manual_seed(0)
    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in ema.parameters()]
    ema_update(ema, model, beta=0.9)
    for b, p_ema, p in zip(before, ema.parameters(), model.parameters()):
        torch.testing.assert_close(p_ema, b + 0.1 * (p - b))
    ema_update(ema, model, beta=0.0)
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        torch.testing.assert_close(p_ema, p)


def test_style_mixing_crosses_over_per_image():
    G, _ = _gan()
    n, batch = G.n_latent, 16
    w = mixed_latents(G, batch, 1.0, torch.Generator().manual_seed(0))
    assert w.shape == (batch, n, G.style_dim)
    cuts = []
    for i in range(batch):
        same_as_first = [torch.equal(w[i, k], w[i, 0]) for k in range(n)]
        cut = same_as_first.index(False)  # every image mixes: a second latent from layer `cut` on
        assert 1 <= cut < n and not any(same_as_first[cut:])
        assert all(torch.equal(w[i, k], w[i, n - 1]) for k in range(cut, n))
        cuts.append(cut)
    assert len(set(cuts)) > 1  # the crossover layer is drawn per image
    assert not torch.equal(w[0, 0], w[1, 0])
    unmixed = mixed_latents(G, batch, 0.0, torch.Generator().manual_seed(0))
    assert all(torch.equal(unmixed[i, k], unmixed[i, 0]) for i in range(batch) for k in range(n))
    torch.testing.assert_close(unmixed[:, 0], w[:, 0])  # same draws: the first latent is unchanged


def test_discriminator_learns_to_separate_real_from_generated(tmp_path):
    """A few steps on an easy real look: the discriminator's logistic loss drops from log(4)."""
    G, D = _gan()
    result = train_gan(G, D, _faces(32), _recipe(steps=12, r1_gamma=0.0, style_mixing=0.0), tmp_path, log=QUIET)
    d = [row["d_loss"] for row in result.losses]
    assert len(d) == 12 and d[0] == pytest.approx(2 * np.log(2), abs=0.05)
    assert np.mean(d[-3:]) < d[0] - 0.2
    assert result.losses[-1]["real_score"] > result.losses[-1]["fake_score"]


def test_generator_loss_drops_against_a_frozen_discriminator():
    """D first learns to tell the disc faces from G's images of fixed latents; frozen, it then guides G."""
    G, D = _gan()
    w = mixed_latents(G, 8, 0.0, torch.Generator().manual_seed(1)).detach()
    real = to_model_range(_faces(8))
    with torch.no_grad():
        fake, _ = G.synthesis(w, randomize_noise=False)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.0, 0.99))
    for _ in range(10):
        out = discriminator_loss(D, real, fake, 0.0)
        opt_d.zero_grad()
        out["total"].backward()
        opt_d.step()
    assert out["d_loss"] < 0.1
    D.requires_grad_(False)
    frozen = {k: v.clone() for k, v in D.state_dict().items()}
    opt = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.0, 0.99))
    losses = []
    for _ in range(6):
        image, _ = G.synthesis(w, randomize_noise=False)
        loss = generator_loss(D, image)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(torch.equal(v, frozen[k]) for k, v in D.state_dict().items())


# ----------------------------------------------------------------------------------------- GAN runs on disk

def test_gan_resume_reaches_the_weights_of_an_uninterrupted_run(tmp_path):
    faces, recipe = _faces(16), _recipe(steps=4)
    full = train_gan(*_gan(), faces, recipe, tmp_path / "full", log=QUIET)
    part = train_gan(*_gan(), faces, recipe, tmp_path / "part", log=QUIET, stop_after_steps=2)
    assert part.steps_done == 2 and part.generator_path is None and not (tmp_path / "part" / "stylegan2.pt").exists()
    lines = []
    resumed = train_gan(*_gan(seed=5), faces, recipe, tmp_path / "part", log=lines.append)  # other init: state wins
    assert any("resuming" in line and "step 2 of 4" in line for line in lines)
    assert resumed.steps_done == 4
    a = torch.load(full.generator_path, weights_only=True)
    b = torch.load(resumed.generator_path, weights_only=True)
    assert a["g_ema"].keys() == b["g_ema"].keys()
    for key in a["g_ema"]:
        assert torch.equal(a["g_ema"][key], b["g_ema"][key]), key
    assert torch.equal(a["latent_avg"], b["latent_avg"])
    assert [r["d_loss"] for r in full.losses] == [r["d_loss"] for r in resumed.losses]


def test_gan_output_is_the_ema_generator_in_the_official_format(tmp_path):
    G, D = _gan()
    recipe = _recipe(steps=3, ema_half_life_kimg=0.01)
    result = train_gan(G, D, _faces(16), recipe, tmp_path, log=QUIET)
    assert result.generator_path == tmp_path / "stylegan2.pt"
    raw = torch.load(result.generator_path, weights_only=True)
    assert set(raw) == {"g_ema", "latent_avg"}
    loaded = checkpoints.load_stylegan2(result.generator_path)
    ema = checkpoints.read_checkpoint(tmp_path / "last.pt")["G_ema"]
    state = loaded.state_dict()
    assert state.keys() == ema.keys()
    for key in state:
        assert torch.equal(state[key], ema[key]), key
    assert any(not torch.equal(ema[k], v) for k, v in G.state_dict().items())  # the EMA copy, not the model
    torch.testing.assert_close(raw["latent_avg"], mean_w(loaded, seed=recipe.seed))
    assert (tmp_path / "losses.csv").read_text().count("\n") == 4
    assert (tmp_path / "samples" / "step_000003.png").exists()


def test_a_finished_gan_run_is_redone_not_resumed(tmp_path):
    faces, recipe = _faces(16), _recipe(steps=2)
    first = train_gan(*_gan(), faces, recipe, tmp_path, log=QUIET)
    before = torch.load(first.generator_path, weights_only=True)["g_ema"]
    stale = tmp_path / "samples" / "step_999999.png"
    stale.write_bytes(b"old")
    lines = []
    again = train_gan(*_gan(), faces, recipe, tmp_path, log=lines.append)
    assert any("finished run" in line and "starting afresh" in line for line in lines)
    assert not any("resuming" in line for line in lines)
    assert again.steps_done == 2 and len(again.losses) == 2 and not stale.exists()
    after = torch.load(again.generator_path, weights_only=True)["g_ema"]
    assert all(torch.equal(before[k], after[k]) for k in before)  # redone from the start: same result
    lines.clear()
    train_gan(*_gan(), faces, _recipe(steps=3), tmp_path, log=lines.append, stop_after_steps=1)
    lines.clear()
    other = train_gan(*_gan(), faces, _recipe(steps=3, lr=1e-3), tmp_path, log=lines.append)  # other settings
    assert any("starting afresh" in line for line in lines) and other.steps_done == 3


def test_gan_rejects_faces_of_the_wrong_kind(tmp_path):
    G, D = _gan()
    with pytest.raises(ValueError, match="uint8"):
        train_gan(G, D, _faces(4).float(), _recipe(), tmp_path, log=QUIET)
    with pytest.raises(ValueError, match="uint8"):
        train_gan(G, D, _faces(4, size=32), _recipe(), tmp_path, log=QUIET)


# ---------------------------------------------------------------------------------------------- inversion

def _inv_recipe(**kw) -> InversionRecipe:
    base = dict(steps=6, batch_size=4, holdout=4, log_every=1, checkpoint_every=1000, lr=1e-3, seed=0)
    return InversionRecipe(**{**base, **kw})


def _net(seed: int = 0) -> FGNet:
    torch.manual_seed(seed)
    return FGNet("tiny")


def test_inversion_steps_reduce_the_reconstruction_loss(tmp_path):
    net, faces, recipe = _net(), _faces(12), _inv_recipe(steps=6)
    x = to_model_range(faces[:8])  # the training faces (the last 4 are held out)

    def loss() -> float:
        net.eval()
        with torch.no_grad():
            return float(reconstruction_loss(reconstruct(net, x), x, recipe))

    generator = {k: v.clone() for k, v in net.generator.state_dict().items()}
    start = loss()
    result = train_inversion(net, faces, recipe, tmp_path, log=QUIET)
    assert loss() < 0.8 * start
    assert result.holdout_mse is not None and np.isfinite(result.holdout_mse)
    assert all(torch.equal(generator[k], v) for k, v in net.generator.state_dict().items())  # frozen


def test_encoder_file_loads_as_a_psp_encoder_with_the_generators_mean_w(tmp_path):
    net = _net()
    recipe = _inv_recipe(steps=2)
    result = train_inversion(net, _faces(12), recipe, tmp_path, log=QUIET)
    assert result.encoder_path == tmp_path / "encoder.pt" and (tmp_path / "reconstructions.png").exists()
    loaded = checkpoints.load_psp_encoder(result.encoder_path)
    n_styles = net.encoder.encoder.style_count
    expected_avg = mean_w(net.generator, seed=recipe.seed)
    torch.testing.assert_close(loaded.latent_avg.reshape(-1, expected_avg.numel()),
                               expected_avg.expand(n_styles, -1))
    ours = net.encoder.encoder.state_dict()
    for key, value in loaded.encoder.state_dict().items():
        assert torch.equal(value, ours[key]), key
    raw = torch.load(result.encoder_path, weights_only=False)
    assert set(raw) == {"state_dict", "opts", "latent_avg"} and raw["opts"]["output_size"] == net.generator.size
    assert any(k.startswith("decoder.") for k in raw["state_dict"])
    x = to_model_range(_faces(2))
    with torch.no_grad():  # the loaded encoder gives FG-Net the same W+ as the trained one
        torch.testing.assert_close(loaded(x), net.encoder.eval()(x))


def test_inversion_resume_reaches_the_weights_of_an_uninterrupted_run(tmp_path):
    faces, recipe = _faces(12), _inv_recipe(steps=4)
    full = train_inversion(_net(), faces, recipe, tmp_path / "full", log=QUIET)
    part = train_inversion(_net(), faces, recipe, tmp_path / "part", log=QUIET, stop_after_steps=2)
    assert part.steps_done == 2 and part.encoder_path is None
    lines = []
    resumed = train_inversion(_net(seed=0), faces, recipe, tmp_path / "part", log=lines.append)
    assert any("resuming" in line for line in lines)
    a = torch.load(full.encoder_path, weights_only=False)["state_dict"]
    b = torch.load(resumed.encoder_path, weights_only=False)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in full.losses] == [r["loss"] for r in resumed.losses]


def test_tiny_generator_file_means_the_same_network_through_the_official_loader(tmp_path):
    """The tiny preset's mapping uses the official lr_mlp, so a rosinality-format file of our generator loads
    through `load_stylegan2` (which assumes the official hyper-parameters) as the very same network."""
    from fgnet_core.presets import get_preset

    assert get_preset("tiny").lr_mlp == get_preset("official").lr_mlp == 0.01
    torch.manual_seed(3)
    net = FGNet("tiny").eval()
    loaded = checkpoints.load_stylegan2(checkpoints.save_stylegan2(net.generator, tmp_path / "g.pt"))
    z = torch.randn(4, net.generator.style_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(loaded.mapping(z), net.generator.mapping(z))
        w = net.generator.mapping(z)[:, None].repeat(1, net.generator.n_latent, 1)
        torch.testing.assert_close(loaded.synthesis(w, randomize_noise=False)[0],
                                   net.generator.synthesis(w, randomize_noise=False)[0])
