"""Run a model over a labelled set: predictions, heatmap-mean scores and the ground truth, batched."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fgnet_core.data.heatmaps import heatmap_scores, is_present


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
