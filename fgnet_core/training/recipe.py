"""Training recipes: the official FG-Net recipe and the CPU demo recipe, resolved from params.yaml.

params.yaml keeps both recipes under `train.recipes`; the active model preset picks one, and any
non-null top-level `train.<field>` overrides it (so `dvc exp run -S train.epochs=1` works for both).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace


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
    checkpoint_every: int = 50  # iterations between resumable checkpoints (and at every epoch end)
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


OFFICIAL_RECIPE = TrainRecipe()


def resolve_recipe(train_params: dict, preset: str, seed: int | None = None) -> TrainRecipe:
    """params.yaml `train` block + preset name -> the recipe to run.

    `train.recipes[preset]` gives the base values (missing fields: the official recipe); non-null
    top-level `train.<field>` entries override them.
    """
    names = {f.name for f in fields(TrainRecipe)}
    recipes = train_params.get("recipes", {})
    if preset not in recipes:
        raise ValueError(f"params.yaml train.recipes has no recipe for preset {preset!r} (has: {', '.join(recipes)})")
    base = recipes[preset] or {}
    unknown = sorted(set(base) - names)
    if unknown:
        raise ValueError(f"params.yaml train.recipes.{preset}: unknown field(s) {', '.join(unknown)}")
    overrides = {k: v for k, v in train_params.items() if k != "recipes" and v is not None}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"params.yaml train: unknown field(s) {', '.join(unknown)}")
    values = {**base, **overrides}
    if seed is not None and "seed" not in overrides:
        values["seed"] = seed
    recipe = replace(OFFICIAL_RECIPE, **values)
    _check(recipe)
    return recipe


def _check(r: TrainRecipe) -> None:
    problems = []
    if r.lr <= 0:
        problems.append("lr must be > 0")
    if r.batch_size < 1 or r.epochs < 1 or r.iterations < 1:
        problems.append("batch_size, epochs and iterations must be >= 1")
    if not 0 <= r.backbone_lr_scale <= 1:
        problems.append("backbone_lr_scale must be in [0, 1]")
    if r.au_balance < 0:
        problems.append("au_balance must be >= 0")
    if r.sigma <= 0:
        problems.append("sigma must be > 0")
    if r.heatmap_size < 8:
        problems.append("heatmap_size must be >= 8")
    if problems:
        raise ValueError("invalid training recipe: " + "; ".join(problems))
