"""Pretraining stages of the tiny backbone: unlabelled corpus -> StyleGAN2 (GAN); the encoder: `pretrain_encoder`.

The corpus is a deterministic function of `pretrain.corpus` and the renderer's code, so the stages that
train on it render it in memory (about a minute) instead of storing 70 MB of pixels; the corpus stage keeps
what a reader wants to see: its index (identity, style, pose per face) and a sample grid.

FG-Net's backbone is a StyleGAN2 trained on FFHQ and a pSp encoder trained to invert it. The workspace
cannot download those, so for the `tiny` preset it makes its own, in miniature and in the same official
file formats: `stylegan2.pt` ({'g_ema', 'latent_avg'}) and `encoder.pt` ({'state_dict', 'opts',
'latent_avg'}), which the training stages then load exactly as the official preset loads the FFHQ files.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from fgnet_core.atomic import write_json
from fgnet_core.democorpus.pretrain import generate_pretrain_corpus, render_pretrain_corpus
from fgnet_core.models.discriminator import Discriminator
from fgnet_core.models.stylegan2 import StyleGAN2Generator
from fgnet_core.pipeline.config import Config, Layout
from fgnet_core.presets import get_preset
from fgnet_core.training.gan import GANRecipe, train_gan


def pretrain_corpus(config: Config, lay: Layout, progress=None) -> dict:
    """The corpus stage: workspace/pretrain/corpus/{index.csv, samples.png} and its summary."""
    spec = config.pretrain.corpus
    summary = generate_pretrain_corpus(lay.pretrain_dir / "corpus", n=spec.faces, seed=spec.seed,
                                       size=get_preset("tiny").generator_size, styles=spec.styles,
                                       workers=config.prepare.workers, progress=progress, save_faces=False)
    write_json(lay.metrics_dir / "pretrain_corpus.json", summary)
    return summary


def corpus_faces(config: Config) -> torch.Tensor:
    """The pretraining faces, rendered in memory: uint8 [N, 3, S, S]."""
    spec = config.pretrain.corpus
    faces, _ = render_pretrain_corpus(spec.faces, seed=spec.seed, size=get_preset("tiny").generator_size,
                                      styles=spec.styles, workers=config.prepare.workers)
    return torch.from_numpy(faces).permute(0, 3, 1, 2).contiguous()


def publish_files(copies: dict[Path, Path]) -> None:
    """Copy small results out of a cached output folder to where git and `dvc plots` read them."""
    for src, dst in copies.items():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


def tiny_generator() -> StyleGAN2Generator:
    """The tiny preset's StyleGAN2, as FGNet builds it (same widths, mapping, modulated-conv mode)."""
    p = get_preset("tiny")
    g = StyleGAN2Generator(size=p.generator_size, style_dim=p.style_dim, n_mlp=p.n_mlp,
                           channel_multiplier=p.channel_multiplier, lr_mlp=p.lr_mlp, channels=p.generator_channels)
    return g.set_modconv_mode(p.modconv)


def pretrain_generator(config: Config, lay: Layout, log=print, progress=None) -> dict:
    """Train the tiny StyleGAN2 as a GAN on the pretraining corpus; -> workspace/pretrain/generator."""
    recipe = GANRecipe(**config.pretrain.generator.recipe_kwargs())
    faces = corpus_faces(config)
    torch.manual_seed(recipe.seed)
    G, D = tiny_generator(), Discriminator(get_preset("tiny").generator_size)
    out = lay.pretrain_dir / "generator"
    log(f"GAN pretraining on {len(faces)} faces: {recipe.steps} steps x {recipe.batch_size} "
        f"({recipe.steps * recipe.batch_size / 1000:.0f} kimg)")
    started = time.perf_counter()
    result = train_gan(G, D, faces, recipe, out, log=log, progress=progress)
    summary = {"faces": len(faces), "steps": result.steps_done,
               "kimg": round(result.steps_done * recipe.batch_size / 1000, 1),
               "minutes_this_run": round((time.perf_counter() - started) / 60, 1),
               **{f"final_{k}": v for k, v in result.losses[-1].items() if k != "step"}}
    write_json(lay.metrics_dir / "pretrain_generator.json", summary)
    publish_files({out / "losses.csv": lay.reports_dir / "pretrain" / "generator_losses.csv",
                   sorted((out / "samples").glob("*.png"))[-1]: lay.reports_dir / "pretrain" / "generator_samples.png"})
    return summary
