"""Pretraining a StyleGAN2 as a GAN on unlabelled faces: StyleGAN2's own recipe at small scale.

FG-Net's claim rests on a generator pretrained on many diverse faces. The workspace cannot download the FFHQ
model, so for the `tiny` preset it trains one: non-saturating logistic loss, lazy R1 on real images, style
mixing, an exponential-moving-average (EMA) copy of the generator that is the one kept, and Adam with
StyleGAN2's betas (0, 0.99) (lazy-regularisation-corrected for the discriminator). The mapping network's
slower learning comes from its equalized-lr multiplier (0.01, as in the official files). Path-length
regularisation is left out: it mostly smooths interpolations, which FG-Net does not use.

Every random draw of step k comes from a generator seeded by (seed, k), so a run killed and resumed from
`last.pt` reaches the same weights as one that never stopped.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from fgnet_core import checkpoints
from fgnet_core.atomic import write_csv_rows
from fgnet_core.data.image_tensors import image_grid, save_png, to_model_range, to_uint8
from fgnet_core.models.discriminator import Discriminator
from fgnet_core.models.stylegan2 import StyleGAN2Generator

GAN_FORMAT = "fgnet-workspace/gan-training-v1"


@dataclass(frozen=True)
class GANRecipe:
    steps: int = 4000  # discriminator + generator steps
    batch_size: int = 32
    lr: float = 2e-3  # Adam, both networks
    beta2: float = 0.99
    r1_gamma: float = 0.2  # R1 weight (small images need little)
    r1_every: int = 16  # lazy R1: every k-th discriminator step, weighted by k
    style_mixing: float = 0.9  # probability of two latents per image, crossing over at a random layer
    ema_half_life_kimg: float = 5.0  # EMA half-life in thousands of images
    flip: bool = True  # random horizontal flips of the real faces
    checkpoint_every: int = 250  # steps between resumable checkpoints
    sample_every: int = 1000  # steps between sample grids
    log_every: int = 50  # steps between loss rows
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "r1_every", "checkpoint_every", "sample_every", "log_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"GAN recipe: {name} must be an integer >= 1, got {getattr(self, name)!r}")
        for name in ("lr", "ema_half_life_kimg"):
            if not getattr(self, name) > 0:
                raise ValueError(f"GAN recipe: {name} must be > 0, got {getattr(self, name)!r}")
        if not 0 <= self.beta2 < 1 or not 0 <= self.style_mixing <= 1 or not self.r1_gamma >= 0:
            raise ValueError("GAN recipe: beta2 in [0, 1), style_mixing in [0, 1], r1_gamma >= 0")


@dataclass
class GANResult:
    steps_done: int
    generator_path: Path | None
    losses: list[dict]


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """All randomness of one step: a function of (seed, step, stream) only."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 7 + stream)


def mixed_latents(G: StyleGAN2Generator, batch: int, mixing: float, gen: torch.Generator) -> torch.Tensor:
    """W+ [B, n_latent, D] from z ~ N(0, I); with probability `mixing` an image takes a second latent from a
    random layer on (style mixing keeps neighbouring layers from relying on each other)."""
    z = torch.randn(2, batch, G.style_dim, generator=gen)  # [2, B, D]
    w = G.mapping(z.reshape(2 * batch, -1)).reshape(2, batch, 1, -1)  # [2, B, 1, D]
    n = G.n_latent
    cut = torch.randint(1, n, (batch,), generator=gen)
    cut = torch.where(torch.rand(batch, generator=gen) < mixing, cut, torch.full_like(cut, n))
    first = (torch.arange(n)[None, :] < cut[:, None])[..., None]  # [B, n, 1]
    return torch.where(first, w[0], w[1])  # [B, n, D]


def generate(G: StyleGAN2Generator, w_plus: torch.Tensor, randomize_noise: bool = True) -> torch.Tensor:
    image, _ = G.synthesis(w_plus, randomize_noise=randomize_noise)
    return image  # [B, 3, size, size]


def real_batch(faces: torch.Tensor, batch: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """A random batch of uint8 faces [N, 3, S, S] -> [-1, 1] floats, half of them mirrored."""
    idx = torch.randint(0, faces.shape[0], (batch,), generator=gen)
    x = to_model_range(faces[idx])
    if flip:
        mirror = torch.rand(batch, generator=gen) < 0.5
        x = torch.where(mirror[:, None, None, None], x.flip(3), x)
    return x


def discriminator_loss(D: Discriminator, real: torch.Tensor, fake: torch.Tensor, r1_weight: float) -> dict:
    """Logistic loss softplus(D(fake)) + softplus(-D(real)), plus `r1_weight` * |grad D(real)|^2 when > 0."""
    real = real.detach().requires_grad_(r1_weight > 0)
    real_logits, fake_logits = D(real), D(fake.detach())
    loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    out = {"d_loss": loss, "real_score": real_logits.mean().detach(), "fake_score": fake_logits.mean().detach()}
    if r1_weight > 0:
        (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        r1 = grad.pow(2).sum(dim=(1, 2, 3)).mean()
        out["r1"] = r1.detach()
        loss = loss + r1_weight * 0.5 * r1
    out["total"] = loss
    return out


def generator_loss(D: Discriminator, fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating logistic loss softplus(-D(G(z)))."""
    return F.softplus(-D(fake)).mean()


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p, 1.0 - beta)


@torch.no_grad()
def mean_w(G: StyleGAN2Generator, n: int = 4096, seed: int = 0) -> torch.Tensor:
    """The average mapped latent [D] (rosinality's and pSp's `latent_avg`)."""
    z = torch.randn(n, G.style_dim, generator=torch.Generator().manual_seed(seed))
    return G.mapping(z).mean(0)


@torch.no_grad()
def sample_grid(G: StyleGAN2Generator, reals: torch.Tensor | None, path: Path, n: int = 32, seed: int = 123) -> Path:
    """Top row: real faces; below: the generator's images of `n` fixed latents, with FG-Net's stored noise."""
    z = torch.randn(n, G.style_dim, generator=torch.Generator().manual_seed(seed))
    fakes = to_uint8(generate(G, G.mapping(z)[:, None].repeat(1, G.n_latent, 1), randomize_noise=False))
    cols = 8
    rows = ([to_uint8(to_model_range(reals[:cols]))] if reals is not None else []) + \
        [fakes[i:i + cols] for i in range(0, n, cols)]
    return save_png(image_grid(rows), path, scale=2)


def train_gan(G: StyleGAN2Generator, D: Discriminator, faces: torch.Tensor, recipe: GANRecipe,
              out_dir: str | Path, *, log: Callable[[str], None] = print, progress: Callable | None = None,
              stop_after_steps: int | None = None, signature: dict | None = None) -> GANResult:
    """Train G and D on uint8 faces [N, 3, S, S]; keep the EMA generator.

    Writes under `out_dir`: `last.pt` (resumable state, every `checkpoint_every` steps), `losses.csv`,
    `samples/step_NNNNNN.png`, and at the end `stylegan2.pt` in the official rosinality format
    ({'g_ema', 'latent_avg'}), which `checkpoints.load_stylegan2` reads like the FFHQ file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if faces.dtype != torch.uint8 or faces.ndim != 4 or faces.shape[1] != 3 or faces.shape[-1] != G.size:
        raise ValueError(f"faces must be uint8 [N, 3, {G.size}, {G.size}], got {faces.dtype} {list(faces.shape)}")
    last_path, final_path = out_dir / "last.pt", out_dir / "stylegan2.pt"
    signature = checkpoints_signature(recipe, G, D, faces, signature)
    torch.manual_seed(recipe.seed)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    c = recipe.r1_every / (recipe.r1_every + 1)  # lazy regularisation: Adam sees fewer, larger D steps
    opt_g = torch.optim.Adam(G.parameters(), lr=recipe.lr, betas=(0.0, recipe.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=recipe.lr * c, betas=(0.0, recipe.beta2 ** c))
    step, losses = 0, []
    if last_path.exists():
        ckpt = checkpoints.read_checkpoint(last_path, "GAN training checkpoint")
        if isinstance(ckpt, dict) and ckpt.get("format") == GAN_FORMAT and ckpt.get("signature") == signature \
                and ckpt["step"] < recipe.steps:  # a finished run is redone: its stage reruns only on a change
            G.load_state_dict(ckpt["G"])
            D.load_state_dict(ckpt["D"])
            G_ema.load_state_dict(ckpt["G_ema"])
            opt_g.load_state_dict(ckpt["opt_g"])
            opt_d.load_state_dict(ckpt["opt_d"])
            step, losses = int(ckpt["step"]), list(ckpt["losses"])
            log(f"resuming from {last_path}: step {step} of {recipe.steps}")
        else:
            log(f"{last_path} is a finished run or belongs to other settings; starting afresh")
    if step == 0:  # a fresh run leaves nothing of an earlier one behind
        for stale in [final_path, out_dir / "losses.csv", *(out_dir / "samples").glob("*.png")]:
            stale.unlink(missing_ok=True)
    beta = 0.5 ** (recipe.batch_size / (recipe.ema_half_life_kimg * 1000.0))

    def save_last() -> None:
        checkpoints.atomic_save({"format": GAN_FORMAT, "signature": signature, "step": step, "losses": losses,
                                 "G": G.state_dict(), "D": D.state_dict(), "G_ema": G_ema.state_dict(),
                                 "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict()}, last_path)

    window: dict[str, list[float]] = {}
    started, done_now = time.perf_counter(), 0
    steps = range(step, recipe.steps)
    for k in (progress(steps, desc="GAN") if progress else steps):
        gen = step_generator(recipe.seed, k)
        # the generator's noise inputs draw from the global generator: seed it per step
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=step_generator(recipe.seed, k, 1))))
        G.train()
        # discriminator step (with lazy R1 every r1_every steps)
        with torch.no_grad():
            fake = generate(G, mixed_latents(G, recipe.batch_size, recipe.style_mixing, gen))
        real = real_batch(faces, recipe.batch_size, recipe.flip, gen)
        r1_weight = recipe.r1_gamma * recipe.r1_every if k % recipe.r1_every == 0 and recipe.r1_gamma else 0.0
        d_out = discriminator_loss(D, real, fake, r1_weight)
        opt_d.zero_grad(set_to_none=True)
        d_out["total"].backward()
        opt_d.step()
        # generator step
        D.requires_grad_(False)
        g_loss = generator_loss(D, generate(G, mixed_latents(G, recipe.batch_size, recipe.style_mixing, gen)))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
        ema_update(G_ema, G, beta)
        g_value, d_value = g_loss.item(), d_out["d_loss"].item()
        if not (math.isfinite(g_value) and math.isfinite(d_value)):
            raise FloatingPointError(f"GAN training diverged at step {k + 1}: d_loss {d_value}, g_loss {g_value}; "
                                     f"the last good state is in {last_path}")
        for name, value in [("d_loss", d_value), ("g_loss", g_value), ("real_score", d_out["real_score"]),
                            ("fake_score", d_out["fake_score"])] + ([("r1", d_out["r1"])] if "r1" in d_out else []):
            window.setdefault(name, []).append(float(value))
        step, done_now = k + 1, done_now + 1
        if step % recipe.log_every == 0 or step == recipe.steps:
            row = {"step": step, "kimg": round(step * recipe.batch_size / 1000, 3),
                   **{name: round(float(np.mean(v)), 5) for name, v in window.items()},
                   "seconds_per_step": round((time.perf_counter() - started) / done_now, 4)}
            losses.append(row)
            window = {}
            log("  ".join(f"{key} {val}" for key, val in row.items()))
        if step % recipe.sample_every == 0 or step == recipe.steps:
            sample_grid(G_ema, faces, out_dir / "samples" / f"step_{step:06d}.png")
        if step % recipe.checkpoint_every == 0 or step == recipe.steps:
            save_last()
            write_csv_rows(out_dir / "losses.csv", losses)
        if stop_after_steps is not None and done_now >= stop_after_steps:
            save_last()
            return GANResult(step, None, losses)

    write_csv_rows(out_dir / "losses.csv", losses)
    G_ema.eval()
    checkpoints.save_stylegan2(G_ema, final_path, latent_avg=mean_w(G_ema, seed=recipe.seed))
    return GANResult(step, final_path, losses)


def checkpoints_signature(recipe: GANRecipe, G: StyleGAN2Generator, D: Discriminator, faces: torch.Tensor,
                          extra: dict | None) -> dict:
    """What must match for `last.pt` to be resumed: the recipe (but its length: a run can be extended or cut
    short), both layouts and the corpus."""
    digest = float(faces[:: max(1, len(faces) // 64)].double().mean())
    settings = {k: v for k, v in asdict(recipe).items() if k != "steps"}
    return {"recipe": settings, "generator": {k: list(v.shape) for k, v in G.state_dict().items()},
            "discriminator": {k: list(v.shape) for k, v in D.state_dict().items()},
            "faces": [int(x) for x in faces.shape], "faces_digest": round(digest, 6), **(extra or {})}
