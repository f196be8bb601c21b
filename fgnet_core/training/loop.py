"""The FG-Net training loop as a library: official recipe, resumable, deterministic on CPU.

Per epoch: up to `iterations` batches of a fresh seeded shuffle; MSE between predicted and target
heatmaps over the dataset's AU channels; AdamW; grad-norm clip. After each epoch the model is scored
on the selection set (F1 x 100 averaged over AUs) and the best epoch is kept in `best.pt`.

`last.pt` is written atomically every `checkpoint_every` iterations and at each epoch end with the
model, optimizer, position in the epoch and RNG state, so a killed run resumes where it stopped and
reaches the same weights as an uninterrupted one. A non-finite loss stops the run with a clear
message; `last.pt` then still holds the last good state.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from fgnet_core import checkpoints
from fgnet_core.atomic import write_csv_rows, write_text
from fgnet_core.data.au_tables import DATASET_AUS, canonical_dataset, n_aus
from fgnet_core.evaluation.metrics import dataset_f1
from fgnet_core.evaluation.predict_set import predict_dataset
from fgnet_core.models.fgnet import FGNet
from fgnet_core.training.recipe import TrainRecipe


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainResult:
    best_epoch: int
    best_selection_f1: float
    history: list[dict] = field(default_factory=list)
    best_path: Path | None = None


def _set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def _epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The shuffle of one epoch depends only on (seed, epoch): resumable without saved sampler state."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=gen).tolist()


def _collate(items: list[dict]) -> dict:
    return {
        "image": torch.stack([it["image"] for it in items]),  # [B, 3, 256, 256]
        "labels": torch.stack([it["labels"] for it in items]),  # [B, n_aus]
        "heatmap": torch.stack([it["heatmap"] for it in items]),  # [B, n_aus, S, S]
    }


def trainable_parameters(model: FGNet, freeze_backbone: bool) -> list[torch.nn.Parameter]:
    """Interpreter + generator + encoder (official), or the interpreter alone when the backbone is frozen."""
    for p in model.parameters():
        p.requires_grad_(True)
    if freeze_backbone:
        for p in list(model.encoder.parameters()) + list(model.generator.parameters()):
            p.requires_grad_(False)
        return list(model.interpreter.parameters())
    return list(model.interpreter.parameters()) + list(model.generator.parameters()) + list(model.encoder.parameters())


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over AU channels of the per-channel MSE (only the first n_aus output channels are trained).

    `weights` [B, n_aus] scales each image's per-AU error (`au_balance_weights`); None is the official loss."""
    pred = pred[:, : target.shape[1]].float()
    if weights is None:
        return F.mse_loss(pred, target)
    return (weights * (pred - target).pow(2).mean((2, 3))).mean()


def au_prevalence(train_set) -> np.ndarray:
    """Share of training images with each AU present ([n_aus]), from the set's label array."""
    labels = getattr(train_set, "labels", None)
    if labels is None:
        raise ValueError(f"au_balance needs a training set with a `labels` array; {type(train_set).__name__} has none")
    return (np.asarray(labels) == 1).mean(axis=0)


def au_balance_weights(labels: torch.Tensor, prevalence: np.ndarray, power: float) -> torch.Tensor:
    """Class-balancing weights [B, n_aus]: 0.5/p for an image showing the AU, 0.5/(1-p) for one that does
    not (both classes then weigh the same in expectation, and the mean weight is 1), raised to `power`.

    FG-Net trains with the plain MSE; a run with few steps otherwise never predicts the rare AUs."""
    p = torch.as_tensor(prevalence, dtype=torch.float32).clamp(0.02, 0.98)  # [n_aus]
    return torch.where(labels == 1, 0.5 / p, 0.5 / (1.0 - p)).pow(power)


class OneProcess:
    """Where the loop runs: one process on one device. `distributed.DDPRanks` is the same interface over
    torchrun ranks, so there is one training loop for both."""

    world_size = 1
    is_main = True

    def __init__(self, device: str = "cpu"):
        self.device = device  # where tensors go ('cpu', 'cuda', 'cuda:1')
        self.device_type = device.split(":")[0]  # for autocast

    def prepare(self, model: FGNet, state: dict, seed: int) -> torch.nn.Module:
        """After resume, before the first step: the module the forward runs through."""
        return model

    def shard(self, idx: list[int]) -> tuple[list[int], float]:
        """This process's share of a global batch and its loss weight."""
        return idx, 1.0

    def mean_loss(self, loss: torch.Tensor, n_local: int, n_global: int) -> float:
        """The loss over the global batch (for logs and the divergence check)."""
        return float(loss.item())

    def predict(self, model: FGNet, eval_set, batch_size: int, amp: bool):
        return predict_dataset(model, eval_set, batch_size, device=self.device, amp=amp)

    def barrier(self) -> None:
        pass


def train(model: FGNet, train_set, recipe: TrainRecipe, out_dir: str | Path, dataset: str, *,
          selection_set=None, eval_sets: dict | None = None, device: str = "cpu",
          log: Callable[[str], None] = print, progress: Callable | None = None,
          run_params: dict | None = None, stop_after_iterations: int | None = None,
          ranks: OneProcess | None = None) -> TrainResult:
    """Train `model` in place; writes last.pt, best.pt, history.csv and history.json under `out_dir`.

    selection_set picks the best epoch (the test fold for the faithful protocol, the held-out
    validation subjects for the clean one); eval_sets are scored every epoch for the curves.
    `stop_after_iterations` ends the call early (as an interruption would), for resume tests.
    `ranks` shards the work over processes (`distributed.DDPRanks`); default: this process on `device`.
    Only the main rank writes files and logs.
    """
    ranks = ranks or OneProcess(device)
    main_log = log if ranks.is_main else (lambda _: None)
    dataset = canonical_dataset(dataset)
    out_dir = Path(out_dir)
    if ranks.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if model.preset.heatmap_size != recipe.heatmap_size:
        raise ValueError(f"recipe heatmap_size {recipe.heatmap_size} differs from the model's "
                         f"{model.preset.heatmap_size}")
    if model.interpreter.out_channels < n_aus(dataset):
        raise ValueError(f"the model has {model.interpreter.out_channels} output channels, "
                         f"{dataset} needs {n_aus(dataset)}")
    if recipe.batch_size < ranks.world_size:
        raise ValueError(f"batch_size {recipe.batch_size} is the global batch; "
                         f"it must be >= the {ranks.world_size} ranks")
    signature = {"recipe": recipe.to_dict(), "dataset": dataset, "n_train": len(train_set),
                 "preset": model.preset.to_dict(), **(run_params or {})}
    eval_sets = dict(eval_sets or {})
    if selection_set is not None:
        eval_sets = {"selection": selection_set, **eval_sets}

    _set_seed(recipe.seed)
    model.to(ranks.device)
    params = trainable_parameters(model, recipe.freeze_backbone)
    head = {id(p) for p in model.interpreter.parameters()}
    groups = [{"params": [p for p in params if id(p) in head], "lr": recipe.lr},
              {"params": [p for p in params if id(p) not in head], "lr": recipe.lr * recipe.backbone_lr_scale}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=recipe.lr, weight_decay=recipe.weight_decay)
    state = {"epoch": 0, "iteration": 0, "history": [], "best_f1": -1.0, "best_epoch": -1, "loss_sum": 0.0,
             "loss_count": 0}
    if last_path.exists():
        ckpt = checkpoints.read_checkpoint(last_path, "training checkpoint")
        if isinstance(ckpt, dict) and ckpt.get("signature") == _jsonable(signature):
            checkpoints.load_state_strict(model, ckpt["model"], last_path, "model")
            optimizer.load_state_dict(ckpt["optimizer"])
            state.update(ckpt["state"])
            torch.set_rng_state(ckpt["rng"])
            main_log(f"resuming from {last_path}: epoch {state['epoch'] + 1}, iteration {state['iteration']}")
        else:
            main_log(f"{last_path} belongs to other settings; starting afresh")
    forward = ranks.prepare(model, state, recipe.seed)

    iters_per_epoch = min(recipe.iterations, math.ceil(len(train_set) / recipe.batch_size))
    prevalence = au_prevalence(train_set) if recipe.au_balance else None
    done_iterations = 0

    def save_last() -> None:
        if ranks.is_main:
            checkpoints.save_training_checkpoint(last_path, model, optimizer, epoch=state["epoch"], params=run_params,
                                                 state=state, rng=torch.get_rng_state(), signature=_jsonable(signature))

    while state["epoch"] < recipe.epochs:
        epoch = state["epoch"]
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        order = _epoch_order(len(train_set), recipe.seed, epoch)
        model.train()
        if recipe.freeze_backbone:  # frozen means frozen: no BatchNorm statistics updates either
            model.encoder.eval()
            model.generator.eval()
        started = time.perf_counter()
        steps = range(state["iteration"], iters_per_epoch)
        for it in (progress(steps, desc=f"epoch {epoch + 1}/{recipe.epochs}") if progress and ranks.is_main
                   else steps):
            idx = order[it * recipe.batch_size:(it + 1) * recipe.batch_size]
            if not idx:
                break
            local, weight = ranks.shard(idx)
            batch = _collate([train_set[i] for i in (local or idx[:1])])  # an empty share still runs (weight 0)
            with torch.autocast(device_type=ranks.device_type, dtype=torch.bfloat16, enabled=recipe.amp):
                pred = forward(batch["image"].to(ranks.device))
            weights = (au_balance_weights(batch["labels"], prevalence, recipe.au_balance).to(ranks.device)
                       if recipe.au_balance else None)
            loss = heatmap_loss(pred, batch["heatmap"].to(ranks.device), weights)
            batch_loss = ranks.mean_loss(loss, len(local), len(idx))
            if not math.isfinite(batch_loss):
                raise TrainingDiverged(
                    f"training diverged: loss is {batch_loss} at epoch {epoch + 1}, iteration {it + 1}; "
                    f"the last good state is kept in {last_path if last_path.exists() else '(none yet)'} — "
                    f"lower train.lr or enable gradient clipping")
            optimizer.zero_grad(set_to_none=True)
            (loss * weight if weight != 1.0 else loss).backward()
            if recipe.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip)
            optimizer.step()
            state["loss_sum"] += batch_loss * len(idx)
            state["loss_count"] += len(idx)
            state["iteration"] = it + 1
            done_iterations += 1
            if state["iteration"] % recipe.checkpoint_every == 0 and state["iteration"] < iters_per_epoch:
                save_last()
            if stop_after_iterations is not None and done_iterations >= stop_after_iterations:
                save_last()
                ranks.barrier()
                return TrainResult(state["best_epoch"], state["best_f1"], state["history"], None)

        row = {"epoch": epoch + 1, "loss": state["loss_sum"] / max(state["loss_count"], 1),
               "seconds": round(time.perf_counter() - started, 2)}
        for name, eval_set in eval_sets.items():
            preds = ranks.predict(model, eval_set, recipe.eval_batch_size, recipe.amp)
            f1 = dataset_f1(preds.labels, preds.predictions[:, : n_aus(dataset)], dataset)
            row[f"{name}_f1"] = f1["avg"]
        if row.get("selection_f1", -1.0) > state["best_f1"] or state["best_epoch"] < 0:
            state["best_f1"], state["best_epoch"] = row.get("selection_f1", 0.0), epoch + 1
            if ranks.is_main:
                checkpoints.save_training_checkpoint(best_path, model, None, epoch=epoch + 1, params=run_params,
                                                     selection_f1=state["best_f1"])
        state["history"].append(row)
        main_log("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
        state.update(epoch=epoch + 1, iteration=0, loss_sum=0.0, loss_count=0)
        save_last()
        if ranks.is_main:
            write_history(out_dir, state["history"])

    ranks.barrier()  # best.pt and the history exist for every rank from here on
    return TrainResult(state["best_epoch"], state["best_f1"], state["history"], best_path)


def write_history(out_dir: Path, history: list[dict]) -> None:
    """Per-epoch curves as CSV (for DVC plots) and JSON."""
    if not history:
        return
    write_csv_rows(out_dir / "history.csv", history)
    write_text(out_dir / "history.json", json.dumps(history, indent=2))


def _jsonable(obj):
    """Round-trip through JSON so stored and fresh signatures compare equal (tuples -> lists, int keys -> str)."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


__all__ = ["train", "OneProcess", "TrainResult", "TrainingDiverged", "heatmap_loss", "au_balance_weights",
           "au_prevalence", "trainable_parameters", "write_history", "DATASET_AUS"]
