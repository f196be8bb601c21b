"""A toy AU dataset for training-loop tests: half-image brightness decides two AUs; +-1 target maps."""
from __future__ import annotations

import torch


class ToySet(torch.utils.data.Dataset):
    """Images whose left/right half brightness decides two AUs; targets +-1 maps like the real ones."""

    def __init__(self, n: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.labels = (torch.rand(n, 8, generator=g) > 0.5).float()
        self.images = torch.rand(n, 3, 256, 256, generator=g) * 0.2 - 0.1
        self.images[:, :, :, :128] += self.labels[:, 0, None, None, None] * 0.8
        self.images[:, :, :, 128:] += self.labels[:, 1, None, None, None] * 0.8

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        heat = (self.labels[i] * 2 - 1)[:, None, None].expand(8, 16, 16).clone()
        return {"image": self.images[i], "labels": self.labels[i], "heatmap": heat, "path": f"x/{i}.jpg", "index": i}
