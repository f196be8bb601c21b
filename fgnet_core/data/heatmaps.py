"""AU heatmap targets and their read-out, with the official FG-Net semantics.

FG-Net trains its interpreter to regress, per AU, a map holding two Gaussian blobs at landmark-defined
locations: positive blobs when the AU is present, negative blobs when absent. At test time an AU is
predicted present when its (clamped) map has a positive spatial mean. To reuse the released checkpoints and
reproduce the paper, the targets here match the official training code value for value, quirks included:

* landmarks live in the 256x256 aligned frame and are divided by 256 / size: by 2 for 128x128 maps and
  by 4 for 64x64 maps exactly as the official code does (it rescales for those two sizes only and leaves
  other sizes unscaled, which is right only at 256; we scale every size, e.g. by 8 for the 32 px maps of
  the CPU preset);
* each Gaussian exp(-((x-cx)^2 + (y-cy)^2) / (2 sigma^2)) is evaluated on the integer pixel grid
  (x = column, y = row), values below 0.01 are set to 0 (then values above 1 to 1);
* the blobs are added when the label equals 1 and subtracted for any other value, the two blobs of one AU
  are summed without clipping, and only the finished stack is clipped to [-1, 1];
* a second centre whose x coordinate is exactly -1 is skipped (the official "no second blob" marker);
* centres keep the landmark array's dtype (float32 landmarks give float32 centres), as NumPy does there.
"""
from __future__ import annotations

import sys

import numpy as np

from fgnet_core.data.au_tables import Anchor, dataset_aus

__all__ = ["THRESHOLD", "landmark_divisor", "au_centres", "au_heatmaps", "heatmap_scores", "is_present", "heatmaps_to_aus"]

THRESHOLD = 0.01  # Gaussian values below this are zeroed


def landmark_divisor(size: int) -> float:
    """Factor dividing 256-frame landmarks for a `size` heatmap: 2 at 128, 4 at 64 (official), 256/size else."""
    size = int(size)
    if size < 1:
        raise ValueError(f"heatmap size must be positive, got {size}")
    return 256 // size if 256 % size == 0 else 256 / size


def _anchor_point(lmk: np.ndarray, anchor: Anchor, iod) -> tuple:
    """(x, y) of one anchor in lmk's dtype: mean of its landmarks, moved down `iod_down` IODs."""
    idx = anchor.landmarks
    if len(idx) == 1:
        point = lmk[idx[0]]
    elif idx == tuple(range(idx[0], idx[-1] + 1)):
        point = np.mean(lmk[idx[0]:idx[-1] + 1], axis=0)  # slice, as the official code reduces a slice
    else:
        point = np.mean(lmk[list(idx)], axis=0)
    x, y = point[0], point[1]
    if anchor.iod_down:
        y = y + anchor.iod_down * iod
    return x, y


def au_centres(landmarks, dataset: str, size: int = 128) -> np.ndarray:
    """Gaussian centres of every AU channel: [n_aus, 2 blobs, (x, y)] in the `size` heatmap frame."""
    lmk = _landmarks(landmarks)
    divisor = landmark_divisor(size)
    if divisor != 1:
        lmk = lmk / divisor  # [68, 2]
    iod = np.linalg.norm(lmk[42] - lmk[39])
    points = [[_anchor_point(lmk, a, iod) for a in au.anchors] for au in dataset_aus(dataset)]
    return np.array(points)  # [n_aus, 2, 2]


def au_heatmaps(landmarks, labels, dataset: str, size: int = 128, sigma: float = 20.0) -> np.ndarray:
    """Training target: [n_aus, size, size] float64 in [-1, 1] from 68 (x, y) landmarks of the 256 frame."""
    centres = au_centres(landmarks, dataset, size)  # [n_aus, 2, 2]
    n_aus = centres.shape[0]
    labels = np.asarray(_numpy(labels)).reshape(-1)
    if labels.shape[0] != n_aus:
        raise ValueError(f"expected {n_aus} labels for {dataset}, got {labels.shape[0]}")

    cx = centres[:, :, 0].reshape(n_aus, 2, 1, 1)
    cy = centres[:, :, 1].reshape(n_aus, 2, 1, 1)
    cols = np.arange(size).reshape(1, 1, 1, size)  # integer grid, as np.fromfunction(..., dtype=int)
    rows = np.arange(size).reshape(1, 1, size, 1)
    blobs = np.exp(((cols - cx) ** 2 + (rows - cy) ** 2) / -(2.0 * sigma * sigma))  # [n_aus, 2, S, S]
    blobs[blobs < THRESHOLD] = 0
    blobs[blobs > 1] = 1
    blobs[:, 1][cx[:, 1, 0, 0] == -1] = 0  # official marker for "no second centre"

    sign = np.where(labels == 1, 1.0, -1.0).reshape(n_aus, 1, 1)
    heatmap = sign * blobs[:, 0] + sign * blobs[:, 1]  # [n_aus, S, S]
    return np.clip(heatmap, -1.0, 1.0)


# The AU decision rule, in one place: an AU's score is its heatmap clamped to [-1, 1] and averaged over the
# map; the AU is present when the score is > 0.

def heatmap_scores(heatmaps):
    """AU scores [..., H, W] -> [...]: each heatmap clamped to [-1, 1], then its spatial mean (same type)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(heatmaps, torch.Tensor):
        return heatmaps.clamp(-1.0, 1.0).mean(dim=(-2, -1))
    return np.clip(np.asarray(heatmaps), -1.0, 1.0).mean(axis=(-2, -1))


def is_present(scores):
    """The decision on AU scores: True where the score is > 0 (a boolean array or tensor)."""
    return scores > 0


def heatmaps_to_aus(heatmaps):
    """AU occurrence from heatmaps: clamp to [-1, 1], spatial mean > 0 -> 1 else 0.

    Accepts [n_aus, H, W] or [B, n_aus, H, W], as a NumPy array (-> int64 array) or a torch tensor
    (-> int64 tensor on the same device); the result has the leading shape of the input.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(heatmaps, torch.Tensor):
        _check_rank(heatmaps.dim())
        return is_present(heatmap_scores(heatmaps)).to(torch.int64)
    array = np.asarray(heatmaps)
    _check_rank(array.ndim)
    return is_present(heatmap_scores(array)).astype(np.int64)


def _check_rank(ndim: int) -> None:
    if ndim not in (3, 4):
        raise ValueError(f"heatmaps must be [n_aus, H, W] or [B, n_aus, H, W], got {ndim} dimensions")


def _numpy(value):
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value


def _landmarks(landmarks) -> np.ndarray:
    lmk = np.asarray(_numpy(landmarks))
    if lmk.shape != (68, 2):
        raise ValueError(f"landmarks must be [68, 2] (x, y), got shape {lmk.shape}")
    return lmk
