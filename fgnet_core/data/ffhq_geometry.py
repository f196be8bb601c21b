"""The FFHQ crop geometry (NVlabs/ffhq-dataset's recipe) as pure functions of 68 landmarks.

Kept apart from detection and image I/O: the aligner uses it on dlib's landmarks, the pretraining corpus
on the renderer's true landmarks, so both produce faces framed exactly alike.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["ffhq_quad", "quad_matrix", "invert_affine", "apply_affine"]


def ffhq_quad(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Oriented crop square of the FFHQ recipe from 68 landmarks -> (quad [4, 2] NW,SW,SE,NE, side)."""
    lm = np.asarray(landmarks, dtype=np.float64)  # [68, 2]
    eye_l, eye_r = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
    eye_mid = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    eye_to_mouth = (lm[48] + lm[54]) / 2 - eye_mid
    # Horizontal half-axis: the eye line blended with the perpendicular of the eye->mouth line.
    axis_x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    axis_x = axis_x / np.hypot(*axis_x) * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    axis_y = np.flipud(axis_x) * [-1, 1]
    centre = eye_mid + eye_to_mouth * 0.1
    quad = np.stack([centre - axis_x - axis_y, centre - axis_x + axis_y,
                     centre + axis_x + axis_y, centre + axis_x - axis_y])
    return quad, float(np.hypot(*axis_x) * 2)


def quad_matrix(quad: np.ndarray, size: int) -> np.ndarray:
    """[2, 3] affine map from output pixel (x, y) of a size x size square to input (x, y).

    Output pixel centres sit at (i + 0.5) / size along the quad edges, which is what a quad warp to
    any transform size followed by a resize to `size` samples; so the map does not depend on it.
    """
    nw, sw, ne = quad[0], quad[1], quad[3]
    lin = np.stack([(ne - nw) / size, (sw - nw) / size], axis=1)  # [2, 2] columns: d/dx_out, d/dy_out
    return np.concatenate([lin, (nw + lin @ [0.5, 0.5])[:, None]], axis=1)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a [2, 3] affine map."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a [2, 3] affine map to [N, 2] points."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]
