"""Soft drawing on a float RGB image, blended only inside each shape's bounding box.

Whole-canvas masks cost ~0.6 s per frame; blending inside bounding boxes keeps a demo frame near 0.02-0.05 s.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["Canvas"]


class Canvas:
    """A float32 RGB image [H, W, 3] in 0..1 with ROI-local soft drawing operations."""

    def __init__(self, img: np.ndarray):
        self.img = img
        self.h, self.w = img.shape[:2]

    def _box(self, pts: np.ndarray, pad: float) -> tuple[int, int, int, int] | None:
        lo = np.floor(pts.min(0) - pad).astype(int)
        hi = np.ceil(pts.max(0) + pad).astype(int) + 1
        x0, y0 = max(lo[0], 0), max(lo[1], 0)
        x1, y1 = min(hi[0], self.w), min(hi[1], self.h)
        return (x0, y0, x1, y1) if x1 > x0 + 1 and y1 > y0 + 1 else None

    @staticmethod
    def _soften(m: np.ndarray, sigma: float) -> np.ndarray:
        if sigma < 0.3:
            return m
        if sigma <= 6:
            return cv2.GaussianBlur(m, (0, 0), sigma)
        f = sigma / 3.0  # large blurs: blur a reduced copy, then scale back up
        small = cv2.resize(m, (max(2, int(m.shape[1] / f)), max(2, int(m.shape[0] / f))), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), 3.0)
        return cv2.resize(small, (m.shape[1], m.shape[0]), interpolation=cv2.INTER_LINEAR)

    def mask(self, polys, blur: float = 0.7, lines: float = 0.0, closed: bool = True):
        """Soft mask of filled polygons (or polylines of width `lines` px) inside their box: (mask, box)."""
        polys = [np.asarray(p, np.float64) for p in polys]
        box = self._box(np.vstack(polys), 3 * blur + lines + 2)
        if box is None:
            return None, None
        x0, y0, x1, y1 = box
        m = np.zeros((y1 - y0, x1 - x0), np.uint8)
        pts = [np.round((p - (x0, y0)) * 8).astype(np.int32) for p in polys]
        if lines > 0:
            cv2.polylines(m, pts, closed, 255, max(1, int(round(lines))), cv2.LINE_AA, 3)
        else:
            cv2.fillPoly(m, pts, 255, cv2.LINE_AA, 3)
        m = m.astype(np.float32) * (1.0 / 255.0)
        if lines > 0 and lines < 1:  # thinner than a pixel: fade instead
            m *= lines
        return self._soften(m, blur), box

    def blend(self, m, box, colour, alpha: float = 1.0) -> None:
        if m is None or alpha <= 0:
            return
        x0, y0, x1, y1 = box
        roi = self.img[y0:y1, x0:x1]
        roi += (m[..., None] * alpha) * (np.asarray(colour, np.float32) - roi)

    def shade(self, m, box, amount: float) -> None:
        """Darken (amount > 0) multiplicatively or lighten (amount < 0) towards white."""
        if m is None or amount == 0:
            return
        x0, y0, x1, y1 = box
        roi = self.img[y0:y1, x0:x1]
        if amount > 0:
            roi *= 1.0 - amount * m[..., None]
        else:
            roi += (-amount * m[..., None]) * (1.0 - roi)

    def fill_flat(self, polys, colour) -> None:
        """Opaque hard-edged fill straight into the image (large, landmark-free shapes; the camera blur softens it)."""
        pts = [np.round(np.asarray(p) * 8).astype(np.int32) for p in polys]
        cv2.fillPoly(self.img, pts, tuple(float(c) for c in colour), cv2.LINE_8, 3)

    def fill(self, polys, colour, alpha=1.0, blur=0.7) -> None:
        self.blend(*self.mask(polys, blur), colour, alpha)

    def darken(self, polys, amount, blur=0.7, lines=0.0, closed=True) -> None:
        self.shade(*self.mask(polys, blur, lines, closed), amount)

    def ellipse(self, centre, axes, angle, amount, blur) -> None:
        """Soft shaded ellipse; axes in pixels, angle in degrees."""
        pts = cv2.ellipse2Poly((0, 0), (max(1, int(axes[0] * 8)), max(1, int(axes[1] * 8))), int(angle), 0, 360, 15)
        self.darken([pts / 8.0 + np.asarray(centre)], amount, blur)
