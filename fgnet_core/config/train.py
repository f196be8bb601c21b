"""params.yaml `train`: the recipe of each model preset, and the overrides every preset takes.

The official FG-Net recipe is `TrainRecipe`'s defaults (fgnet_core/training/recipe.py), its one home:
`train.recipes.official` may be omitted or list changes only; any other preset's recipe fills the fields it
leaves out from the official one. Non-null top-level `train.<field>` entries override the active preset's
recipe (`dvc exp run -S train.epochs=1`), and the top-level `seed` seeds it unless `train.seed` is set.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from fgnet_core.config.checks import Check, ConfigError, boolean, integer, number
from fgnet_core.training.recipe import TrainRecipe

# What each recipe field accepts (one entry per TrainRecipe field; a test keeps the two in step).
RECIPE_CHECKS: dict[str, Check] = {
    "lr": number(above=0),
    "weight_decay": number(minimum=0),
    "batch_size": integer(minimum=1),
    "epochs": integer(minimum=1),
    "iterations": integer(minimum=1),
    "heatmap_size": integer(minimum=8),
    "sigma": number(above=0),
    "grad_clip": number(minimum=0),  # 0: no clipping
    "dropout": number(minimum=0, below=1),
    "freeze_backbone": boolean(),
    "backbone_lr_scale": number(minimum=0, maximum=1),
    "amp": boolean(),
    "augment": boolean(),
    "au_balance": number(minimum=0),
    "eval_batch_size": integer(minimum=1),
    "checkpoint_every": integer(minimum=1),
    "seed": integer(minimum=0),
}
OFFICIAL = "official"


def recipe_values(value, key: str) -> dict:
    """One recipe mapping (or its overrides) -> checked {field: value}; None entries are dropped."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping of recipe fields, got {value!r}")
    out = {}
    for name, v in value.items():
        if name not in RECIPE_CHECKS:
            raise ConfigError(f"unknown field {key}.{name}: {v!r}; a recipe takes {', '.join(RECIPE_CHECKS)}")
        if v is not None:
            out[name] = RECIPE_CHECKS[name](f"{key}.{name}", v)
    return out


def named_recipes(value, key: str, what: str) -> dict[str, dict]:
    """A mapping of name (preset, attempt) -> recipe fields, each checked; None: no entries."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping of {what} -> recipe fields, got {value!r}")
    return {str(name): recipe_values(r, f"{key}.{name}") for name, r in value.items()}


@dataclass(frozen=True)
class Train:
    """The `train` block, checked: each preset's recipe fields and the top-level overrides."""

    recipes: dict[str, dict]  # preset -> the fields its recipe sets (missing: the official recipe's)
    overrides: dict  # non-null top-level `train.<field>` entries

    @classmethod
    def parse(cls, value, key: str = "train") -> "Train":
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a mapping (recipe overrides and `recipes`), got {value!r}")
        parsed = named_recipes(value.get("recipes"), f"{key}.recipes", "preset")
        overrides = recipe_values({k: v for k, v in value.items() if k != "recipes"}, key)
        return cls(parsed, overrides)

    def resolve(self, preset: str, seed: int | None = None) -> TrainRecipe:
        """The recipe a run of `preset` trains with."""
        if preset not in self.recipes and preset != OFFICIAL:
            raise ConfigError(f"params.yaml train.recipes has no recipe for preset {preset!r} "
                              f"(has: {', '.join(self.recipes)})")
        values = {**self.recipes.get(preset, {}), **self.overrides}
        if seed is not None and "seed" not in self.overrides:
            values["seed"] = seed
        return dataclasses.replace(TrainRecipe(), **values)


def resolve_recipe(train_params: Mapping, preset: str, seed: int | None = None) -> TrainRecipe:
    """A params.yaml-style `train` mapping + preset name -> the recipe to run (checked on the way)."""
    return Train.parse(train_params).resolve(preset, seed)
