"""params.yaml: loading, validation and the derived paths every pipeline stage shares.

The one home for the pipeline's folder layout: raw corpora under `data/`, aligned corpora and runs
under `workspace/`, metrics, curves, figures and executed notebooks under `reports/`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from fgnet_core.data.au_tables import canonical_dataset
from fgnet_core.paths import REPO_ROOT
from fgnet_core.presets import PRESETS
from fgnet_core.training.recipe import TrainRecipe, resolve_recipe

CROSS_DOMAIN_FOLDS = ("first", "all")  # the fold-0 models on the other corpus's fold-0 test set (official) / every fold
PROTOCOLS = ("faithful", "clean")  # select the epoch on the test fold (official) / on held-out subjects
BACKBONES = ("pretrained", "scratch")  # the preset's pretrained StyleGAN2 + pSp files / random weights
TOP_LEVEL = {"corpus", "preset", "backbone", "seed", "seeds", "datasets", "folds", "protocols", "paths", "pretrain",
             "prepare", "train", "evaluation", "efficiency", "compare", "fast", "runtime"}


class ParamsError(ValueError):
    """params.yaml or a notebook parameter is wrong; the message names the key."""


def load_params(path: str | Path | None = None) -> dict:
    """Read and validate params.yaml (default: the repository's)."""
    path = Path(path) if path else REPO_ROOT / "params.yaml"
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: parameters file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: expected a mapping of parameters")
    unknown = sorted(set(params) - TOP_LEVEL)
    if unknown:
        raise ParamsError(f"{path}: unknown top-level key(s) {', '.join(unknown)}; known: {', '.join(sorted(TOP_LEVEL))}")
    if params.get("corpus") not in params.get("paths", {}).get("raw", {}):
        raise ParamsError(f"{path}: corpus {params.get('corpus')!r} has no entry in paths.raw")
    upsample = params.get("prepare", {}).get("detect_upsample", {}).get(params.get("corpus"))
    if upsample not in (0, 1, 2):
        raise ParamsError(f"{path}: prepare.detect_upsample.{params.get('corpus')} must be 0, 1 or 2, got {upsample!r}")
    cross_domain_folds(params, path)
    if params.get("preset") not in PRESETS:
        raise ParamsError(f"{path}: preset {params.get('preset')!r} is not one of {', '.join(PRESETS)}")
    if params.get("backbone") not in BACKBONES:
        raise ParamsError(f"{path}: backbone {params.get('backbone')!r} is not one of {', '.join(BACKBONES)}")
    if params.get("preset") not in params.get("paths", {}).get("checkpoints", {}):
        raise ParamsError(f"{path}: paths.checkpoints has no entry for preset {params.get('preset')!r}")
    seeds = params.get("seeds")
    if not isinstance(seeds, list) or not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0
                                                       for s in seeds) or len(set(seeds)) != len(seeds):
        raise ParamsError(f"{path}: seeds must be a non-empty list of distinct integers >= 0, got {seeds!r}")
    for proto in params.get("protocols", []):
        if proto not in PROTOCOLS:
            raise ParamsError(f"{path}: protocol {proto!r} is not one of {', '.join(PROTOCOLS)}")
    for ds in params.get("datasets", []):
        canonical_dataset(ds)
    return params


def cross_domain_folds(params: dict, path: str | Path = "params.yaml") -> str:
    """`evaluation.cross_domain_folds` for the active corpus: 'first' (the official fold-0 pairing) or 'all'.

    The setting is one value or one per corpus setting (like `prepare.detect_upsample`)."""
    value = params.get("evaluation", {}).get("cross_domain_folds")
    key = "evaluation.cross_domain_folds"
    if isinstance(value, dict):
        key, value = f"{key}.{params.get('corpus')}", value.get(params.get("corpus"))
    if value not in CROSS_DOMAIN_FOLDS:
        raise ParamsError(f"{path}: {key} must be one of {', '.join(CROSS_DOMAIN_FOLDS)}, got {value!r}")
    return value


def check_notebook_parameters(given: dict, defaults: dict) -> None:
    """papermill only warns about unknown names; a typo must stop the run instead."""
    unknown = sorted(k for k in given if k not in defaults)
    if unknown:
        raise ParamsError(f"unknown notebook parameter(s) {', '.join(unknown)}; expected {', '.join(sorted(defaults))}")


@dataclass(frozen=True)
class RunSpec:
    """One training run: what it trains on, its seed, its backbone, and the tag of the stage it belongs to."""

    dataset: str
    fold: int
    protocol: str
    seed: int
    size: int = 0  # 0: the full training split; N: the `train_N` subset
    backbone: str = "pretrained"

    @property
    def name(self) -> str:
        size = f"_n{self.size}" if self.size else ""
        return f"{self.dataset}_{self.fold}_{self.protocol}{size}_s{self.seed}_{self.backbone}"


@dataclass(frozen=True)
class Layout:
    """Where each stage reads and writes, relative to the repository root."""

    root: Path
    params: dict

    @property
    def raw_dir(self) -> Path:
        return self.root / self.params["paths"]["raw"][self.params["corpus"]]

    @property
    def aligned_dir(self) -> Path:
        return self.root / "workspace" / "aligned"

    @property
    def runs_dir(self) -> Path:
        return self.root / "workspace" / "runs"

    def efficiency_dir(self, dataset: str) -> Path:
        return self.root / "workspace" / "efficiency" / canonical_dataset(dataset)

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def metrics_dir(self) -> Path:
        return self.reports_dir / "metrics"

    @property
    def figures_dir(self) -> Path:
        return self.reports_dir / "figures"

    @property
    def curves_dir(self) -> Path:
        return self.reports_dir / "curves"

    def run_dir_of(self, spec: RunSpec) -> Path:
        """Where the training stages keep a run: workspace/runs/<DATASET>/<run> (subsets: workspace/efficiency)."""
        return (self.efficiency_dir(spec.dataset) if spec.size else self.runs_dir / spec.dataset) / spec.name

    @property
    def demo_model(self) -> Path:
        """The model `fgnet predict --model demo` and the explorers use: BP4D fold 0, clean, seed 0, as configured."""
        spec = RunSpec("BP4D", 0, "clean", 0, 0, self.params.get("backbone", "pretrained"))
        return self.run_dir_of(spec) / "best.pt"

    @property
    def pretrain_dir(self) -> Path:
        return self.root / "workspace" / "pretrain"

    def checkpoint(self, key: str) -> Path:
        """The active preset's pretrained backbone file named in params.yaml paths.checkpoints (stylegan, encoder)."""
        return self.root / self.params["paths"]["checkpoints"][self.params["preset"]][key]


def layout(params: dict | None = None, root: Path | None = None) -> Layout:
    return Layout(Path(root) if root else REPO_ROOT, params if params is not None else load_params())


def recipe_for(params: dict) -> TrainRecipe:
    return resolve_recipe(params["train"], params["preset"], seed=params.get("seed"))
