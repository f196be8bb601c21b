"""Views of the StyleGAN2 feature pyramid: what the interpreter reads, made visible."""
from __future__ import annotations

import numpy as np


def pca_rgb(feature: np.ndarray) -> np.ndarray:
    """[C, H, W] -> [H, W, 3] in [0, 1]: the first three principal components of the channel vectors."""
    c, h, w = feature.shape
    x = feature.reshape(c, h * w).T.astype(np.float64)  # [HW, C]
    x = x - x.mean(axis=0)
    if c >= 3 and h * w > 1:
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        comps = x @ vt[:3].T  # [HW, 3]
    else:
        comps = np.pad(x, ((0, 0), (0, max(0, 3 - c))))[:, :3]
    lo, hi = np.percentile(comps, 1, axis=0), np.percentile(comps, 99, axis=0)
    comps = np.clip((comps - lo) / np.maximum(hi - lo, 1e-8), 0, 1)
    return comps.reshape(h, w, 3)
