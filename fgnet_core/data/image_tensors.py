"""Between uint8 pictures and the model's [-1, 1] tensors, and image grids for figures.

StyleGAN2, pSp and FG-Net all take RGB scaled as x / 127.5 - 1 (ToTensor + Normalize(0.5, 0.5)).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fgnet_core.atomic import atomic_path


def to_model_range(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 [B, H, W, 3] (HWC) or [B, 3, H, W] -> float32 [B, 3, H, W] in [-1, 1]."""
    x = torch.as_tensor(images)
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    return x.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3] (clipped, rounded)."""
    x = (images.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def image_grid(rows: list[np.ndarray], pad: int = 2, background: int = 255) -> np.ndarray:
    """Rows of uint8 [n, H, W, 3] images (rows may differ in length) -> one uint8 [H', W', 3] picture."""
    h, w = rows[0].shape[1:3]
    cols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + pad) + pad, cols * (w + pad) + pad, 3), background, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y:y + h, x:x + w] = img
    return grid


def save_png(picture: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """Write uint8 [H, W, 3] as PNG (nearest-neighbour enlarged by `scale`), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(picture)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path
