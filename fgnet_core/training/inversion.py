"""Pretraining a pSp-style encoder to invert a frozen generator: faces -> W+ -> the same faces.

FG-Net reads a face through pSp: encoder offsets + `latent_avg` give one code per synthesis layer, which
FG-Net passes through the mapping network once more before synthesis. The encoder here is trained through
exactly that path (`FGNet.latents`), so the pyramid FG-Net later reads is the pyramid of the inverted face.
Losses are pixel losses only (L2 + L1 at full and half resolution): pSp's LPIPS and identity losses need
downloaded networks. `latent_avg` is the generator's mean mapped latent, as pSp stores it.
"""
from __future__ import annotations

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
from fgnet_core.models.fgnet import FGNet
from fgnet_core.training.gan import mean_w

INVERSION_FORMAT = "fgnet-workspace/inversion-training-v1"


@dataclass(frozen=True)
class InversionRecipe:
    steps: int = 1500
    batch_size: int = 32
    lr: float = 1e-3  # Adam (pSp uses Ranger at 1e-4 on FFHQ; a tiny encoder from scratch wants more)
    l1_weight: float = 0.5  # L1 next to L2: sharper reconstructions
    half_res_weight: float = 0.5  # the same losses at half resolution: weight on overall layout
    flip: bool = True
    holdout: int = 64  # last faces of the corpus: never trained on, shown in the figure and scored
    checkpoint_every: int = 250
    log_every: int = 50
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"inversion recipe: {name} must be an integer >= 1, got {getattr(self, name)!r}")
        if not self.lr > 0 or self.l1_weight < 0 or self.half_res_weight < 0 or self.holdout < 0:
            raise ValueError("inversion recipe: lr > 0; l1_weight, half_res_weight, holdout >= 0")


@dataclass
class InversionResult:
    steps_done: int
    encoder_path: Path | None
    losses: list[dict]
    holdout_mse: float | None = None


def reconstruct(net: FGNet, images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] faces [B, 3, S, S] -> the generator's image of their W+ [B, 3, G, G] (stored noise, as FG-Net)."""
    image, _ = net.generator.synthesis(net.latents(images), randomize_noise=False)
    return image


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, recipe: InversionRecipe) -> torch.Tensor:
    if recon.shape[-1] != target.shape[-1]:
        target = F.interpolate(target, size=recon.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
    loss = F.mse_loss(recon, target) + recipe.l1_weight * F.l1_loss(recon, target)
    if recipe.half_res_weight:
        r2, t2 = F.avg_pool2d(recon, 2), F.avg_pool2d(target, 2)
        loss = loss + recipe.half_res_weight * (F.mse_loss(r2, t2) + recipe.l1_weight * F.l1_loss(r2, t2))
    return loss


def train_inversion(net: FGNet, faces: torch.Tensor, recipe: InversionRecipe, out_dir: str | Path, *,
                    log: Callable[[str], None] = print, progress: Callable | None = None,
                    stop_after_steps: int | None = None, signature: dict | None = None) -> InversionResult:
    """Train `net.encoder` to invert the frozen `net.generator` on uint8 faces [N, 3, S, S].

    Writes `last.pt` (resumable), `losses.csv`, `reconstructions.png` (held-out faces over their
    inversions) and `encoder.pt` in the official pSp format ({'state_dict': encoder.* + decoder.*, 'opts',
    'latent_avg'}), which `checkpoints.load_psp_encoder` reads like pSp's FFHQ encoder.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if faces.dtype != torch.uint8 or faces.ndim != 4 or faces.shape[1] != 3:
        raise ValueError(f"faces must be uint8 [N, 3, S, S], got {faces.dtype} {list(faces.shape)}")
    if len(faces) <= recipe.holdout + recipe.batch_size:
        raise ValueError(f"{len(faces)} faces are too few for a holdout of {recipe.holdout} and batches of "
                         f"{recipe.batch_size}")
    train_faces, held_out = faces[: len(faces) - recipe.holdout], faces[len(faces) - recipe.holdout:]
    last_path, final_path = out_dir / "last.pt", out_dir / "encoder.pt"
    signature = {"recipe": asdict(recipe), "faces": [int(x) for x in faces.shape],
                 "faces_digest": round(float(faces[:: max(1, len(faces) // 64)].double().mean()), 6),
                 **(signature or {})}
    torch.manual_seed(recipe.seed)
    net.generator.eval().requires_grad_(False)
    net.interpreter.requires_grad_(False)
    net.encoder.latent_avg.copy_(mean_w(net.generator, seed=recipe.seed).expand_as(net.encoder.latent_avg))
    params = list(net.encoder.parameters())
    optimizer = torch.optim.Adam(params, lr=recipe.lr)
    step, losses = 0, []
    if last_path.exists():
        ckpt = checkpoints.read_checkpoint(last_path, "inversion training checkpoint")
        if isinstance(ckpt, dict) and ckpt.get("format") == INVERSION_FORMAT and ckpt.get("signature") == signature \
                and ckpt["step"] < recipe.steps:  # a finished run is redone: its stage reruns only on a change
            net.encoder.load_state_dict(ckpt["encoder"])
            optimizer.load_state_dict(ckpt["optimizer"])
            step, losses = int(ckpt["step"]), list(ckpt["losses"])
            log(f"resuming from {last_path}: step {step} of {recipe.steps}")
        else:
            log(f"{last_path} is a finished run or belongs to other settings; starting afresh")
    if step == 0:  # a fresh run leaves nothing of an earlier one behind
        for stale in (final_path, out_dir / "losses.csv", out_dir / "reconstructions.png"):
            stale.unlink(missing_ok=True)

    def save_last() -> None:
        checkpoints.atomic_save({"format": INVERSION_FORMAT, "signature": signature, "step": step,
                                 "losses": losses, "encoder": net.encoder.state_dict(),
                                 "optimizer": optimizer.state_dict()}, last_path)

    window, started, done_now = [], time.perf_counter(), 0
    steps = range(step, recipe.steps)
    for k in (progress(steps, desc="inversion") if progress else steps):
        gen = torch.Generator().manual_seed((recipe.seed * 1_000_003 + k) * 7)
        idx = torch.randint(0, len(train_faces), (recipe.batch_size,), generator=gen)
        x = to_model_range(train_faces[idx])
        if recipe.flip:
            mirror = torch.rand(recipe.batch_size, generator=gen) < 0.5
            x = torch.where(mirror[:, None, None, None], x.flip(3), x)
        net.encoder.train()
        loss = reconstruction_loss(reconstruct(net, x), x, recipe)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"inversion training diverged at step {k + 1} (loss {value}); "
                                     f"the last good state is in {last_path}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window.append(value)
        step, done_now = k + 1, done_now + 1
        if step % recipe.log_every == 0 or step == recipe.steps:
            row = {"step": step, "loss": round(float(np.mean(window)), 5),
                   "seconds_per_step": round((time.perf_counter() - started) / done_now, 4)}
            losses.append(row)
            window = []
            log(f"step {row['step']}  loss {row['loss']}  seconds_per_step {row['seconds_per_step']}")
        if step % recipe.checkpoint_every == 0 or step == recipe.steps:
            save_last()
            write_csv_rows(out_dir / "losses.csv", losses)
        if stop_after_steps is not None and done_now >= stop_after_steps:
            save_last()
            return InversionResult(step, None, losses)

    write_csv_rows(out_dir / "losses.csv", losses)
    net.encoder.eval()
    holdout_mse = None
    if len(held_out):
        with torch.no_grad():
            x = to_model_range(held_out)
            recon = reconstruct(net, x)
            holdout_mse = float(F.mse_loss(recon, F.interpolate(x, size=recon.shape[-2:], mode="bilinear",
                                                                 antialias=True, align_corners=False)))
        reconstruction_figure(net, held_out[:16], out_dir / "reconstructions.png")
    checkpoints.save_psp_encoder(net.encoder, final_path, decoder=net.generator, output_size=net.generator.size)
    return InversionResult(step, final_path, losses, holdout_mse)


@torch.no_grad()
def reconstruction_figure(net: FGNet, faces: torch.Tensor, path: Path, cols: int = 8) -> Path:
    """Rows of faces (uint8 [N, 3, S, S]) each above its inversion."""
    net.eval()
    x = to_model_range(faces)
    recon = to_uint8(reconstruct(net, x))
    shown = to_uint8(F.interpolate(x, size=recon.shape[1:3], mode="bilinear", antialias=True, align_corners=False))
    rows = []
    for i in range(0, len(faces), cols):
        rows += [shown[i:i + cols], recon[i:i + cols]]
    return save_png(image_grid(rows), path, scale=2)


__all__ = ["InversionRecipe", "InversionResult", "train_inversion", "reconstruct", "reconstruction_loss",
           "reconstruction_figure"]
