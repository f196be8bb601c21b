"""Pretraining stage of the tiny pSp encoder: invert the frozen EMA generator of `pretrain_generator`.

A module of its own so that the generator stage (half an hour of CPU) does not depend on the encoder's code.
"""
from __future__ import annotations

import time

import torch

from fgnet_core import checkpoints
from fgnet_core.atomic import write_json
from fgnet_core.models.fgnet import FGNet
from fgnet_core.pipeline.config import Config, Layout
from fgnet_core.pipeline.pretrain import corpus_faces, publish_files
from fgnet_core.training.inversion import InversionRecipe, train_inversion


def pretrain_encoder(config: Config, lay: Layout, log=print, progress=None) -> dict:
    """Train the tiny pSp encoder to invert the frozen EMA generator; -> workspace/pretrain/encoder."""
    recipe = InversionRecipe(**config.pretrain.encoder.recipe_kwargs())
    faces = corpus_faces(config)
    torch.manual_seed(recipe.seed)
    net = FGNet("tiny")
    stylegan = lay.pretrain_dir / "generator" / "stylegan2.pt"
    checkpoints.load_state_strict(net.generator, checkpoints.load_stylegan2(stylegan).state_dict(), stylegan, "g_ema")
    log(f"encoder pretraining on {len(faces) - recipe.holdout} faces ({recipe.holdout} held out): {recipe.steps} steps")
    started = time.perf_counter()
    result = train_inversion(net, faces, recipe, lay.pretrain_dir / "encoder", log=log, progress=progress)
    summary = {"faces": len(faces), "steps": result.steps_done, "holdout_mse": round(result.holdout_mse, 5),
               "final_loss": result.losses[-1]["loss"],
               "minutes_this_run": round((time.perf_counter() - started) / 60, 1)}
    write_json(lay.metrics_dir / "pretrain_encoder.json", summary)
    out = lay.pretrain_dir / "encoder"
    publish_files({out / "losses.csv": lay.reports_dir / "pretrain" / "encoder_losses.csv",
                   out / "reconstructions.png": lay.reports_dir / "pretrain" / "encoder_inversions.png"})
    return summary
