"""dlib face detection and its 68 landmarks: the largest face of an RGB image, or landmarks in a given box.

The dlib models are cached per process (loading the landmark predictor takes ~1-2 s).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fgnet_core.data.image_load import AlignmentError, as_rgb_array
from fgnet_core.paths import dlib_landmark_model


class NoFaceError(AlignmentError):
    """dlib found no face in the input image or in the aligned image."""


_MODELS: dict[str, tuple] = {}


def dlib_models(predictor_path=None):
    import dlib

    if predictor_path is None:
        predictor_path = dlib_landmark_model()
    key = str(predictor_path)
    if key not in _MODELS:
        if not Path(key).is_file():
            raise FileNotFoundError(f"{key}: dlib landmark model not found")
        _MODELS[key] = (dlib.get_frontal_face_detector(), dlib.shape_predictor(key))
    return _MODELS[key]


def detect_face(image_rgb: np.ndarray, predictor_path=None, upsample: int = 1, max_side: int | None = None,
                coarse_first: bool = False):
    """Largest face (ties: higher detector score) -> (box, [68, 2] float32), or None.

    max_side: run the detector (the slow part on large frames) on a copy shrunk to this longer side;
    the landmarks are still predicted on the full-resolution image. coarse_first: try without upsampling
    first (~4x faster; it finds every face above ~80 px, and the largest face is what is kept) and
    upsample only when that finds nothing.
    """
    import dlib

    detector, predictor = dlib_models(predictor_path)
    h, w = image_rgb.shape[:2]
    scale = 1.0
    small = image_rgb
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        small = cv2.resize(image_rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    rects = ()
    if coarse_first and upsample > 0:
        rects, scores, _ = detector.run(small, 0, 0.0)
    if len(rects) == 0:
        rects, scores, _ = detector.run(small, upsample, 0.0)
    if len(rects) == 0:
        return None
    best = max(range(len(rects)), key=lambda i: (rects[i].width() * rects[i].height(), scores[i]))
    rect = rects[best]
    if scale != 1.0:
        rect = dlib.rectangle(*(int(round(v / scale)) for v in (rect.left(), rect.top(), rect.right(), rect.bottom())))
    shape = predictor(image_rgb, rect)
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)  # [68, 2]
    return (rect.left(), rect.top(), rect.right(), rect.bottom()), points


def landmarks_in_box(image_rgb: np.ndarray, box, predictor_path=None) -> np.ndarray:
    """dlib's 68 landmarks [68, 2] float32 for a given face box (left, top, right, bottom): no detection."""
    import dlib

    _, predictor = dlib_models(predictor_path)
    shape = predictor(image_rgb, dlib.rectangle(*(int(round(v)) for v in box)))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def detect_landmarks(image_rgb, predictor_path=None, upsample: int = 1,
                     max_side: int | None = None) -> np.ndarray | None:
    """The dlib step alone: [68, 2] float32 (x, y) of the largest face, or None when there is none."""
    found = detect_face(as_rgb_array(image_rgb), predictor_path, upsample, max_side)
    return None if found is None else found[1]
