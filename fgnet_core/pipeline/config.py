"""The pipeline's folder layout and run names, over the typed config (`fgnet_core.config`).

The one home for the pipeline's folder layout: raw corpora under `data/`, aligned corpora and runs
under `workspace/`, metrics, curves, figures and executed notebooks under `reports/`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fgnet_core.config import (
    BACKBONES, CROSS_DOMAIN_FOLDS, PROTOCOLS, Config, ConfigError, load_config, load_params, parse_config,
)
from fgnet_core.data.au_tables import canonical_dataset
from fgnet_core.paths import REPO_ROOT

RUNS_DIR = Path("workspace") / "runs"  # the training stage's runs, per dataset
ParamsError = ConfigError  # params.yaml or a notebook parameter is wrong; the message names the key

__all__ = ["BACKBONES", "CROSS_DOMAIN_FOLDS", "PROTOCOLS", "Config", "Layout", "ParamsError", "RunSpec",
           "canonical_dataset", "check_notebook_parameters", "layout", "load_config", "load_params",
           "parse_config"]


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
    config: Config

    @property
    def raw_dir(self) -> Path:
        return self.root / self.config.paths.raw[self.config.corpus]

    @property
    def aligned_dir(self) -> Path:
        return self.root / "workspace" / "aligned"

    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS_DIR

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
        return demo_model_path(self.root, self.config.backbone)

    @property
    def pretrain_dir(self) -> Path:
        return self.root / "workspace" / "pretrain"

    def checkpoint(self, key: str) -> Path:
        """The active preset's pretrained backbone file named in params.yaml paths.checkpoints (stylegan, encoder)."""
        files = self.config.paths.checkpoints[self.config.preset]
        if key not in ("stylegan", "encoder"):
            raise KeyError(f"no backbone file {key!r}; expected stylegan or encoder")
        return self.root / getattr(files, key)


def demo_model_path(root: Path, backbone: str = "pretrained") -> Path:
    """`Layout.demo_model` of a checkout whose params.yaml sets `backbone` (BP4D fold 0, clean, seed 0)."""
    spec = RunSpec("BP4D", 0, "clean", 0, 0, backbone)
    return Path(root) / RUNS_DIR / spec.dataset / spec.name / "best.pt"


def layout(config: Config | None = None, root: Path | None = None) -> Layout:
    return Layout(Path(root) if root else REPO_ROOT, config if config is not None else load_config())
