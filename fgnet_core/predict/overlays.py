"""Heatmap overlay images for `fgnet predict --overlays`: drawn with OpenCV so that video frames stay cheap.

A grid image holds the aligned face with its 68 landmarks, then one tile per AU: the face under its
colour-mapped heatmap (coolwarm, -1 blue .. +1 red, the same map as the explorer notebooks) with the AU
label, the heatmap mean and a green/grey mark for present/absent; a colour bar closes the grid.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from fgnet_core.data.heatmaps import is_present

TILE = 128          # px per tile side
LABEL_H = 22        # px of text under each tile
COLUMNS = 5
BAR_H = 26          # px of the colour bar strip
PRESENT = (40, 170, 60)   # RGB
ABSENT = (150, 150, 150)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@lru_cache(maxsize=4)
def colour_lut(name: str = "coolwarm") -> np.ndarray:
    """[256, 3] uint8 RGB lookup table of a matplotlib colour map (index 0 = -1, 255 = +1)."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)


def colourise(heatmap: np.ndarray, size: int, cmap: str = "coolwarm") -> tuple[np.ndarray, np.ndarray]:
    """Heatmap [S, S] (raw, clamped to [-1, 1]) -> (RGB [size, size, 3] uint8, |value| [size, size] float)."""
    heat = cv2.resize(np.clip(heatmap.astype(np.float32), -1.0, 1.0), (size, size), interpolation=cv2.INTER_LINEAR)
    index = np.clip(np.rint((heat + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return colour_lut(cmap)[index], np.abs(heat)


def overlay(face: np.ndarray, heatmap: np.ndarray, size: int = TILE) -> np.ndarray:
    """Face [H, W, 3] uint8 under a heatmap [S, S]: strong values opaque, values near 0 let the face show."""
    base = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    colour, strength = colourise(heatmap, size)
    alpha = (0.25 + 0.6 * strength)[:, :, None]  # [size, size, 1]
    return np.clip(base * (1 - alpha) + colour.astype(np.float32) * alpha, 0, 255).astype(np.uint8)


def draw_landmarks(face: np.ndarray, landmarks: np.ndarray | None, size: int = TILE) -> np.ndarray:
    """Face resized to size x size with the 68 landmarks (given in the face's own pixel frame) as dots."""
    tile = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA).copy()
    if landmarks is not None:
        scale = size / face.shape[1]
        for x, y in np.asarray(landmarks, dtype=np.float64) * scale:
            cv2.circle(tile, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1, lineType=cv2.LINE_AA)
    return tile


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.42, colour=(20, 20, 20)) -> None:
    cv2.putText(img, text, org, FONT, scale, colour, 1, lineType=cv2.LINE_AA)


def colour_bar(width: int) -> np.ndarray:
    """A [BAR_H, width, 3] legend: the colour map from -1 to +1 with its ends and middle labelled."""
    strip = np.full((BAR_H, width, 3), 255, np.uint8)
    x0, x1 = 40, max(60, width - 40)
    ramp = colour_lut()[np.linspace(0, 255, x1 - x0).astype(int)]  # [W, 3]
    strip[4:14, x0:x1] = ramp[None]
    for value, x in ((-1, x0), (0, (x0 + x1) // 2), (1, x1)):
        _text(strip, f"{value:+d}" if value else "0", (x - 8, 25), 0.35)
    _text(strip, "heatmap", (2, 13), 0.32)
    return strip


def grid_shape(n_labels: int, columns: int = COLUMNS, title: bool = False) -> tuple[int, int]:
    """(height, width) of `heatmap_grid` for n_labels AUs."""
    rows = -(-(n_labels + 1) // columns)
    return (LABEL_H if title else 0) + rows * (TILE + LABEL_H) + BAR_H, columns * TILE


def heatmap_grid(face: np.ndarray, landmarks: np.ndarray | None, heatmaps: np.ndarray, labels: list[str],
                 scores: np.ndarray, columns: int = COLUMNS, title: str = "") -> np.ndarray:
    """Aligned face [256, 256, 3] + heatmaps [n_aus, S, S] -> one RGB uint8 grid image (see module doc)."""
    cell_h = TILE + LABEL_H
    top = LABEL_H if title else 0
    grid = np.full((*grid_shape(len(labels), columns, bool(title)), 3), 255, np.uint8)
    if title:
        _text(grid, title, (4, 16), 0.45)
    tiles = [(draw_landmarks(face, landmarks), "aligned face", None)]
    tiles += [(overlay(face, heatmaps[i]), f"{labels[i]} {scores[i]:+.2f}", bool(is_present(scores[i])))
              for i in range(len(labels))]
    for k, (tile, text, present) in enumerate(tiles):
        r, c = divmod(k, columns)
        y, x = top + r * cell_h, c * TILE
        grid[y:y + TILE, x:x + TILE] = tile
        if present is not None:
            cv2.rectangle(grid, (x + 3, y + TILE + 6), (x + 13, y + TILE + 16), PRESENT if present else ABSENT, -1)
        _text(grid, text, (x + (17 if present is not None else 4), y + TILE + 16))
    grid[-BAR_H:] = colour_bar(grid.shape[1])
    return grid


def annotate_frame(frame: np.ndarray, box=None, labels=(), presence=(), scores=(), status: str = "ok") -> np.ndarray:
    """The input frame with the face box and the present AUs written beside it (or the frame's status)."""
    out = frame.copy()
    thick = max(1, round(max(frame.shape[:2]) / 400))
    scale = max(0.4, max(frame.shape[:2]) / 1000)
    if box is None:
        _text(out, status.replace("_", " "), (8, int(30 * scale) + 4), scale, (230, 40, 40))
        return out
    x0, y0, x1, y1 = (int(v) for v in box)
    cv2.rectangle(out, (x0, y0), (x1, y1), PRESENT, thick, lineType=cv2.LINE_AA)
    active = [f"{lab} {s:+.2f}" for lab, p, s in zip(labels, presence, scores) if p]
    y = max(int(22 * scale), y0 - 6 - int(22 * scale) * (len(active) - 1))
    for line in active or ["no AU"]:
        _text(out, line, (x0, y), scale, PRESENT)
        y += int(22 * scale)
    return out


def side_by_side(left: np.ndarray, right: np.ndarray | None, height: int, right_width: int) -> np.ndarray:
    """The annotated frame scaled to `height` beside a grid (or a blank panel), even-sized for video codecs."""
    h, w = left.shape[:2]
    lw = max(2, int(round(w * height / h)))
    panel = np.full((height, lw + right_width, 3), 255, np.uint8)
    panel[:, :lw] = cv2.resize(left, (lw, height), interpolation=cv2.INTER_AREA)
    if right is not None:
        rh, rw = min(height, right.shape[0]), min(right_width, right.shape[1])
        panel[:rh, lw:lw + rw] = right[:rh, :rw]
    return panel[: height - height % 2, : panel.shape[1] - panel.shape[1] % 2]


class VideoOverlay:
    """Annotated MP4 of one video: every decoded frame (faces or not), same size throughout ('mp4v')."""

    def __init__(self, path: Path, fps: float, grid_shape: tuple[int, int]):
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 25.0
        self.height, self.grid_width = grid_shape
        self.writer = None
        self.size = None

    def add(self, annotated: np.ndarray, grid: np.ndarray | None) -> None:
        panel = side_by_side(annotated, grid, self.height, self.grid_width)
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.size = (panel.shape[1], panel.shape[0])
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, self.size)
            if not self.writer.isOpened():
                raise OSError(f"{self.path}: OpenCV could not open an 'mp4v' video writer")
        if (panel.shape[1], panel.shape[0]) != self.size:
            panel = cv2.resize(panel, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
