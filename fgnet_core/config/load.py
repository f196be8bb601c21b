"""Reading params.yaml: the file once, into a checked `Config` (or, for tools that edit it, a checked dict)."""
from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import yaml

from fgnet_core.config.checks import ConfigError
from fgnet_core.config.schema import Config
from fgnet_core.paths import REPO_ROOT

PARAMS_FILE = "params.yaml"


def read_params(path: str | Path | None = None) -> dict:
    """params.yaml as YAML gives it (default: the repository's); only file and syntax errors are raised here."""
    path = Path(path) if path else REPO_ROOT / PARAMS_FILE
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: parameters file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping of parameters")
    return params


def parse_config(params: Mapping, source: str | Path = PARAMS_FILE) -> Config:
    """A params.yaml mapping -> the checked config; errors are one line: `<source>: <key> ...`."""
    try:
        config = Config.parse(params)
        _check_across(config)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


def load_config(path: str | Path | None = None) -> Config:
    """Read and check params.yaml (default: the repository's)."""
    path = Path(path) if path else REPO_ROOT / PARAMS_FILE
    return parse_config(read_params(path), path)


def load_params(path: str | Path | None = None) -> dict:
    """params.yaml as a plain dict, checked like `load_config`: for tools that edit it and parse it again."""
    path = Path(path) if path else REPO_ROOT / PARAMS_FILE
    params = read_params(path)
    parse_config(copy.deepcopy(params), path)
    return params


def _check_across(c: Config) -> None:
    """What one field cannot check alone: the per-corpus and per-preset entries the active settings need."""
    corpus, preset = c.corpus, c.preset
    if corpus not in c.paths.raw:
        raise ConfigError(f"corpus {corpus!r} has no entry in paths.raw (has: {', '.join(c.paths.raw)})")
    if preset not in c.paths.checkpoints:
        raise ConfigError(f"paths.checkpoints has no entry for preset {preset!r}")
    for key, mapping in (("prepare.detect_upsample", c.prepare.detect_upsample),
                         ("efficiency.sizes", c.efficiency.sizes), ("efficiency.subsets", c.efficiency.subsets)):
        if corpus not in mapping:
            raise ConfigError(f"{key} has no entry for corpus {corpus!r} (has: {', '.join(mapping)})")
    if isinstance(c.evaluation.cross_domain_folds, dict) and corpus not in c.evaluation.cross_domain_folds:
        raise ConfigError(f"evaluation.cross_domain_folds has no entry for corpus {corpus!r}")
    c.recipe  # noqa: B018  the active preset has a recipe
