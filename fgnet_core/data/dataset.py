"""`AUDataset`: aligned face images, AU labels and heatmap targets from a label file and a data root.

One item is a dict:
    image    float32 [3, 256, 256] in [-1, 1]  (RGB / 127.5 - 1, i.e. ToTensor + Normalize(0.5, 0.5))
    labels   float32 [n_aus]                   (0/1 in the dataset's AU order)
    heatmap  float32 [n_aus, S, S]             (only with `with_heatmaps`; official targets, see heatmaps.py)
    path     str                               (the label file's image_path)
    index    int

Heatmaps are drawn from the landmarks stored beside the aligned image (`aligned_images/X.jpg` ->
`aligned_landmarks/X.npy`); only when that file is missing are landmarks detected on the fly, as the
official loader does. Items are deterministic. The optional augmentation is a mild colour jitter only:
geometric changes would move the face away from the landmark-derived targets.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from fgnet_core.data.au_tables import au_columns, canonical_dataset
from fgnet_core.data.heatmaps import au_heatmaps
from fgnet_core.data.labels import IMAGE_COLUMN, read_label_csv

__all__ = ["IMAGE_SIZE", "AUDataset", "landmark_path", "load_image", "load_landmarks"]

IMAGE_SIZE = 256  # side of the aligned face images


def landmark_path(image_path: str | Path) -> Path:
    """Stored landmarks of an aligned image: the `aligned_images` component becomes `aligned_landmarks`, .npy."""
    path = Path(image_path)
    parts = list(path.parts)
    if "aligned_images" not in parts:
        raise ValueError(f"{path}: not under an 'aligned_images' folder, so it has no stored landmarks")
    k = len(parts) - 1 - parts[::-1].index("aligned_images")  # the last such component
    parts[k] = "aligned_landmarks"
    return Path(*parts).with_suffix(".npy")


def load_image(path: str | Path) -> np.ndarray:
    """RGB uint8 [H, W, 3]; FileNotFoundError / ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: image not found")
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: cannot read image ({exc})") from exc


def load_landmarks(path: str | Path) -> np.ndarray:
    """Stored [68, 2] (x, y) landmarks; ValueError naming the file if unreadable or misshapen."""
    path = Path(path)
    try:
        lmk = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read landmarks ({exc})") from exc
    if lmk.shape != (68, 2):
        raise ValueError(f"{path}: landmarks must have shape (68, 2), found {lmk.shape}")
    return lmk


class AUDataset(Dataset):
    """Label file rows -> image, labels, heatmap target.

    `labels` is a label CSV path or a table already read with `read_label_csv`; `data_root` is the folder the
    `image_path` column is relative to. `heatmap_size`/`sigma` follow the official training defaults.
    """

    def __init__(
        self,
        labels: str | Path | pd.DataFrame,
        data_root: str | Path,
        dataset: str,
        *,
        with_heatmaps: bool = True,
        heatmap_size: int = 128,
        sigma: float = 20.0,
        augment: bool = False,
        jitter: float = 0.1,
        seed: int = 0,
        cache: bool = False,
    ) -> None:
        self.dataset = canonical_dataset(dataset)
        if isinstance(labels, pd.DataFrame):
            missing = [c for c in [IMAGE_COLUMN, *au_columns(self.dataset)] if c not in labels.columns]
            if missing:
                raise ValueError(f"label table lacks column(s) {', '.join(missing)}")
            table = labels
            self.source = "<table>"
        else:
            table = read_label_csv(labels, self.dataset)
            self.source = str(labels)
        self.data_root = Path(data_root)
        self.paths: list[str] = [str(p) for p in table[IMAGE_COLUMN]]
        self.labels = np.ascontiguousarray(table[au_columns(self.dataset)].to_numpy(dtype=np.float32))  # [N, n_aus]
        self.with_heatmaps = with_heatmaps
        self.heatmap_size = int(heatmap_size)
        self.sigma = float(sigma)
        self.augment = augment
        self.jitter = float(jitter)
        self.seed = int(seed)
        self.epoch = 0
        self._detected: dict[int, np.ndarray] = {}  # landmarks found on the fly, per item
        # decoded uint8 image and heatmap per item: a run reads each frame every epoch, and both are deterministic
        self._cache: dict[int, tuple[np.ndarray, np.ndarray | None]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        """Vary the augmentation between epochs while keeping every epoch reproducible."""
        self.epoch = int(epoch)

    def image_file(self, index: int) -> Path:
        return self.data_root / PurePosixPath(self.paths[index])

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items of {self.source}")
        rgb, heatmap = self._decoded(index)
        image = torch.from_numpy(rgb).permute(2, 0, 1).float()  # [3, 256, 256] in [0, 255]
        if self.augment:
            image = self._colour_jitter(image, index)
        item = {
            "image": image / 127.5 - 1.0,
            "labels": torch.from_numpy(self.labels[index].copy()),  # [n_aus]
            "path": self.paths[index],
            "index": index,
        }
        if heatmap is not None:
            item["heatmap"] = torch.from_numpy(heatmap.copy())  # [n_aus, S, S]
        return item

    def _decoded(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(uint8 [256, 256, 3] image, float32 [n_aus, S, S] heatmap or None), from the cache when enabled."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        path = self.image_file(index)
        rgb = load_image(path)  # [H, W, 3] uint8
        if rgb.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(
                f"{path}: aligned images must be {IMAGE_SIZE}x{IMAGE_SIZE}, found {rgb.shape[1]}x{rgb.shape[0]}"
            )
        heatmap = None
        if self.with_heatmaps:
            lmk = self._landmarks(index, path, rgb)
            heatmap = au_heatmaps(lmk, self.labels[index], self.dataset, self.heatmap_size, self.sigma)
            heatmap = heatmap.astype(np.float32)
        decoded = (np.array(rgb), heatmap)  # a writable copy: torch.from_numpy warns on read-only arrays
        if self._cache is not None:
            self._cache[index] = decoded
        return decoded

    def _landmarks(self, index: int, path: Path, rgb: np.ndarray) -> np.ndarray:
        stored = landmark_path(path)
        if stored.is_file():
            return load_landmarks(stored)
        if index not in self._detected:
            from fgnet_core.data.face_detect import detect_landmarks  # dlib only when landmarks were not stored

            lmk = detect_landmarks(rgb)
            if lmk is None:
                raise ValueError(f"{path}: no stored landmarks ({stored}) and no face detected in the image")
            self._detected[index] = np.asarray(lmk)
        return self._detected[index]

    def _colour_jitter(self, image: torch.Tensor, index: int) -> torch.Tensor:
        """Brightness, contrast and saturation scaled by factors in [1 - jitter, 1 + jitter]; [3, H, W] 0-255."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        brightness, contrast, saturation = rng.uniform(1 - self.jitter, 1 + self.jitter, size=3)
        image = image * float(brightness)
        grey = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]).unsqueeze(0)  # [1, H, W]
        image = (image - grey.mean()) * float(contrast) + grey.mean()
        grey = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]).unsqueeze(0)
        image = (image - grey) * float(saturation) + grey
        return image.clamp(0.0, 255.0)
