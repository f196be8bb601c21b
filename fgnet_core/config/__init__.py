"""The typed config: params.yaml read once, checked (keys, types and values), as frozen dataclasses.

    config = load_config()          # Config: config.train / config.recipe / config.runtime.threads ...
    config.recipe                   # the active preset's TrainRecipe, overrides and seed applied
    config.derive(seed=3)           # a copy with values the pipeline sets itself

Below `pipeline` in the layering: it imports presets, data tables and the training recipe, nothing above.
"""
from fgnet_core.config.checks import ConfigError
from fgnet_core.config.load import load_config, load_params, parse_config, read_params
from fgnet_core.config.schema import BACKBONES, CROSS_DOMAIN_FOLDS, PROTOCOLS, Config
from fgnet_core.config.train import RECIPE_CHECKS, resolve_recipe

__all__ = ["BACKBONES", "CROSS_DOMAIN_FOLDS", "PROTOCOLS", "RECIPE_CHECKS", "Config", "ConfigError",
           "load_config", "load_params", "parse_config", "read_params", "resolve_recipe"]
