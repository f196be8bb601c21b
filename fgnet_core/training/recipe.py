"""The training recipe: every knob of one FG-Net training run; its defaults are the official FG-Net recipe.

params.yaml `train` picks and adjusts a recipe per model preset (fgnet_core/config/train.py resolves and
checks it); the official recipe is written here only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TrainRecipe:
    lr: float = 5e-5  # AdamW learning rate
    weight_decay: float = 5e-4  # AdamW weight decay, over interpreter + generator + encoder
    batch_size: int = 16
    epochs: int = 15
    iterations: int = 500  # per epoch (capped by the batches one pass over the data gives)
    heatmap_size: int = 128  # target heatmap side; must equal the model's
    sigma: float = 20.0  # Gaussian sigma in heatmap pixels
    grad_clip: float = 0.1  # max gradient norm
    dropout: float = 0.1  # interpreter dropout
    freeze_backbone: bool = False  # train the interpreter only (encoder and generator frozen)
    backbone_lr_scale: float = 1.0  # encoder and generator learn at lr x this (1: one lr for all, as FG-Net)
    amp: bool = False  # bf16 autocast
    augment: bool = False  # mild colour jitter on training images
    au_balance: float = 0.0  # power of the per-AU class-balancing loss weights; 0: plain MSE (official)
    eval_batch_size: int = 32
    checkpoint_every: int = 100  # iterations between resumable checkpoints (and at every epoch end)
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

