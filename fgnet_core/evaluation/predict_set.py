"""Run a model over faces in batches: aligned uint8 faces -> heatmaps and scores (`score_faces`: `fgnet predict`,
the explorers), or a labelled set -> predictions, scores and the ground truth (`predict_dataset`: evaluation)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fgnet_core.data.heatmaps import heatmap_scores, is_present
from fgnet_core.data.image_tensors import to_model_range


@dataclass
class SetPredictions:
    labels: np.ndarray  # int [N, n_aus] ground truth
    predictions: np.ndarray  # int [N, C] presence for every output channel
    scores: np.ndarray  # float [N, C] mean of the clamped heatmap (presence = score > 0)
    paths: list[str]


@torch.no_grad()
def predict_dataset(model: torch.nn.Module, dataset: Dataset, batch_size: int = 32, device: str | None = None,
                    amp: bool = False, progress=None) -> SetPredictions:
    """Evaluate `model` in eval mode on every item of `dataset` (an AUDataset without heatmaps is enough)."""
    device = device or next(model.parameters()).device.type
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    labels, scores, paths = [], [], []
    iterator = progress(loader) if progress else loader
    try:
        for batch in iterator:
            images = batch["image"].to(device)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=amp):
                heat = model(images)  # [B, C, S, S]
            scores.append(heatmap_scores(heat.float()).cpu().numpy())
            labels.append(batch["labels"].numpy().astype(int))
            paths.extend(batch["path"])
    finally:
        model.train(was_training)
    score = np.concatenate(scores) if scores else np.zeros((0, 0), np.float32)
    return SetPredictions(np.concatenate(labels) if labels else np.zeros((0, 0), int),
                          is_present(score).astype(int), score, paths)


@torch.no_grad()
def score_faces(net: torch.nn.Module, images, n_aus: int, batch_size: int = 8,
                device: str | torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Aligned faces [256, 256, 3] uint8 (a list or an [N, 256, 256, 3] array) through `net` in batches
    -> (heatmaps [N, n_aus, S, S], scores [N, n_aus]) as float32 NumPy arrays; `device`: the net's own by default.

    Heatmaps are gathered on the CPU and scored there, all at once; `net` is used as it is (eval mode is the
    caller's choice).
    """
    device = device if device is not None else next(net.parameters()).device
    heats = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.stack(images[start:start + batch_size])).to(device)  # [B, 256, 256, 3]
        x = to_model_range(batch)  # [B, 3, 256, 256]
        heats.append(net(x)[:, :n_aus].float().cpu())
    heat = torch.cat(heats) if heats else torch.zeros(0, n_aus, 1, 1)
    return heat.numpy(), heatmap_scores(heat).numpy()
