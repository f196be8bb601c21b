"""One training run of the pipeline (dataset x fold x protocol, optionally on a subset) and its metrics."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fgnet_core import checkpoints
from fgnet_core.data.au_tables import canonical_dataset, dataset_aus, n_aus
from fgnet_core.data.dataset import AUDataset
from fgnet_core.data.folds import subject_of
from fgnet_core.data.labels import IMAGE_COLUMN, label_csv_path, read_label_csv
from fgnet_core.data.subsets import subset_split
from fgnet_core.evaluation.metrics import dataset_f1
from fgnet_core.evaluation.predict_set import predict_dataset
from fgnet_core.models import make_fast_from_params
from fgnet_core.models.fgnet import FGNet
from fgnet_core.pipeline.config import PROTOCOLS, Config, Layout
from fgnet_core.training.loop import train

SPLITS_OF = {"faithful": ("train", "test"), "clean": ("train_sub", "val")}  # (train on, select on)


@dataclass
class RunOutput:
    name: str
    metrics: dict
    run_dir: Path


def build_model(config: Config, lay: Layout) -> FGNet:
    """The preset's model, seeded. With `backbone: pretrained` the StyleGAN2 and the pSp encoder start from
    the preset's pretrained files (official: the FFHQ ones; tiny: the pretraining stages' own), read by the
    same official-format loaders; with `scratch` from random weights."""
    recipe = config.recipe
    torch.manual_seed(recipe.seed)
    net = FGNet(config.preset, heatmap_size=recipe.heatmap_size, dropout=recipe.dropout)
    if config.backbone == "pretrained":
        generator = checkpoints.load_stylegan2(lay.checkpoint("stylegan"))
        checkpoints.load_state_strict(net.generator, generator.state_dict(), lay.checkpoint("stylegan"), "g_ema")
        encoder = checkpoints.load_psp_encoder(lay.checkpoint("encoder"))
        checkpoints.load_state_strict(net.encoder, encoder.state_dict(), lay.checkpoint("encoder"), "encoder")
    net.interpreter.init_weights()
    if config.fast.enabled:
        net = make_fast_from_params(net, config.fast.settings())
    return net


def labelled_set(lay: Layout, config: Config, dataset: str, fold: int, split: str, heatmaps: bool,
                 table: pd.DataFrame | None = None) -> AUDataset:
    recipe = config.recipe
    source = table if table is not None else label_csv_path(lay.aligned_dir, dataset, fold, split)
    return AUDataset(source, lay.aligned_dir, dataset, with_heatmaps=heatmaps, heatmap_size=recipe.heatmap_size,
                     sigma=recipe.sigma, augment=heatmaps and recipe.augment, seed=recipe.seed, cache=True)


def flat_f1(scores: dict, prefix: str = "f1") -> dict:
    """{'AU01': x, 'avg': y} -> {'f1_AU01': x, 'f1_avg': y}: flat keys for `dvc metrics show`."""
    return {f"{prefix}_{k}": round(float(v), 4) for k, v in scores.items()}


@dataclass
class RunPlan:
    """What one run trains on, selects its epoch on and is scored on."""
    name: str
    dataset: str
    train_set: AUDataset
    selection_set: AUDataset
    select_split: str
    test_set: AUDataset
    eval_sets: dict
    run_params: dict


def subset_table(lay: Layout, dataset: str, fold: int, size: int, select_split: str) -> pd.DataFrame:
    """The `train_<size>` rows prepare wrote (official lists or seeded samples: `data.subsets`); selecting on
    held-out subjects drops their rows, so no frame is both trained and selected on."""
    path = label_csv_path(lay.aligned_dir, dataset, fold, subset_split(size))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no data-efficiency subset of size {size}; the prepare stage writes the "
                                "sizes of params.yaml efficiency.sizes for the corpus")
    table = read_label_csv(path, dataset, allow_empty=True)
    if select_split != "test":
        held_out = read_label_csv(label_csv_path(lay.aligned_dir, dataset, fold, select_split), dataset,
                                  allow_empty=True)
        table = table[~table[IMAGE_COLUMN].map(subject_of).isin(set(held_out[IMAGE_COLUMN].map(subject_of)))]
    if table.empty:
        raise ValueError(f"{path}: no training frames left for the size-{size} run")
    return table.reset_index(drop=True)


def plan_run(config: Config, lay: Layout, dataset: str, fold: int, protocol: str, size: int | None = None) -> RunPlan:
    """The one place that turns (dataset, fold, protocol, subset size) into data sets and output paths,
    shared by the single-process run below and the torchrun entry point (`pipeline.distributed_run`)."""
    dataset = canonical_dataset(dataset)
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    train_split, select_split = SPLITS_OF[protocol]
    name = f"{dataset}_{int(fold)}_{protocol}" + (f"_n{size}" if size else "")
    table = None
    if size:
        table = subset_table(lay, dataset, fold, size, select_split)
    train_set = labelled_set(lay, config, dataset, fold, train_split, True, table)
    selection = labelled_set(lay, config, dataset, fold, select_split, False)
    test_set = selection if select_split == "test" else labelled_set(lay, config, dataset, fold, "test", False)
    eval_sets = {}  # the test set is scored once, at the selected epoch: per-epoch test scores cost a fifth of a run
    return RunPlan(name, dataset, train_set, selection, select_split, test_set, eval_sets,
                   {"dataset": dataset, "fold": fold, "protocol": protocol, "size": size or 0})


def train_run(config: Config, lay: Layout, dataset: str, fold: int, protocol: str, *, run_dir: Path,
              size: int | None = None, log=print, progress=None, device: str = "cpu") -> RunOutput:
    """Train one model under `run_dir` (see `Layout.run_dir_of`) and score its selected epoch on the fold's
    test subjects."""
    plan = plan_run(config, lay, dataset, fold, protocol, size)
    run_dir = Path(run_dir)
    recipe = config.recipe
    log(f"{plan.name}: {len(plan.train_set)} training frames, selecting on {plan.select_split} "
        f"({len(plan.selection_set)} frames), preset {config.preset}, {recipe.epochs} epochs x "
        f"<= {recipe.iterations} iterations")
    model = build_model(config, lay)
    result = train(model, plan.train_set, recipe, run_dir, plan.dataset,
                   selection_set=plan.selection_set, eval_sets=plan.eval_sets, device=device, log=log,
                   progress=progress, run_params=plan.run_params)
    best, _ = checkpoints.load_training_checkpoint(result.best_path)
    preds = predict_dataset(best.to(device), plan.test_set, recipe.eval_batch_size, device=device, amp=recipe.amp)
    return score_run(plan.name, run_dir, preds, plan.dataset, fold, protocol, result,
                     len(plan.train_set))


def score_run(name: str, run_dir: Path, preds, dataset: str, fold: int, protocol: str, result,
              train_frames: int, **extra) -> RunOutput:
    """Test-set F1 of the selected epoch (+ the trivial all-present baseline) and per-image scores on disk."""
    k = n_aus(dataset)
    test_scores = dataset_f1(preds.labels, preds.predictions[:, :k], dataset)
    all_present = dataset_f1(preds.labels, np.ones_like(preds.labels), dataset)  # the trivial baseline
    frame = pd.DataFrame({"image_path": preds.paths})
    for i, au in enumerate(dataset_aus(dataset)):
        frame[f"{au.label}_true"] = preds.labels[:, i]
        frame[f"{au.label}_score"] = preds.scores[:, i].round(5)
    frame.to_csv(run_dir / "test_predictions.csv", index=False)
    metrics = {"dataset": dataset, "fold": int(fold), "protocol": protocol, "train_frames": train_frames,
               "test_frames": len(preds.paths), "best_epoch": result.best_epoch,
               "selection_f1": round(result.best_selection_f1, 4), **flat_f1(test_scores),
               **flat_f1(all_present, "allpos_f1"), **extra}
    return RunOutput(name, metrics, run_dir)
