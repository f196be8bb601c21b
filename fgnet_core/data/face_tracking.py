"""Face alignment at video frame rate: detect every N frames, follow the landmarks in between.

dlib's detector costs ~100 ms on a 640x480 frame (upsampled once, as the training data was aligned);
its 68-point predictor costs ~1 ms given a face box. Between full detections the detector runs only on a
small crop around the previous face, scaled so the face is ~96 px wide (~3 ms), and the predictor places
the landmarks in the box it finds. The tracker detects on the whole frame again every `detect_every`
frames, when the crop holds no face (it left, or was covered), and when the landmarks jump: their centre
moves more than `max_shift` of the face size or their size changes by more than `max_scale` between two
frames (a cut). Frames must come in order; call `reset()` between videos.
"""
from __future__ import annotations

import numpy as np

from fgnet_core.data.align import AlignedFace, FaceAligner
from fgnet_core.data.face_detect import NoFaceError, detect_face, dlib_models, landmarks_in_box
from fgnet_core.data.image_load import as_rgb_array

LOCAL_SIDE = 96  # px: the face's width in the crop the detector checks between full detections


def _centre_and_size(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    return (lo + hi) / 2.0, float(max(hi - lo))


class FaceTracker:
    """`align(rgb)` for consecutive video frames, detecting only now and then (see the module docstring)."""

    def __init__(self, aligner: FaceAligner, detect_every: int = 10, max_shift: float = 0.15,
                 max_scale: float = 0.15):
        if detect_every < 1:
            raise ValueError("detect_every must be at least 1")
        self.aligner = aligner
        self.detect_every = int(detect_every)
        self.max_shift = max_shift
        self.max_scale = max_scale
        self.detections = 0  # how many frames ran the detector (for measurements)
        self.frames = 0
        self.reset()

    def reset(self) -> None:
        self.box = None        # (left, top, right, bottom) float, in the frame
        self.landmarks = None  # [68, 2] of the previous frame
        self.since_detection = 0

    def _detect(self, rgb: np.ndarray):
        a = self.aligner
        self.detections += 1
        found = detect_face(rgb, a.predictor_path, a.upsample, a.detect_max_side, a.coarse_first)
        self.since_detection = 0
        if found is None:
            self.reset()
            return None
        box, landmarks = found
        self.box, self.landmarks = tuple(float(v) for v in box), landmarks
        return box, landmarks

    def _local_box(self, rgb: np.ndarray):
        """The detector on a small crop around the previous box (the face ~LOCAL_SIDE px wide): ~3 ms.

        -> the largest face box found there, in frame coordinates, or None (lost, or covered).
        """
        import cv2

        detector, _ = dlib_models(self.aligner.predictor_path)
        left, top, right, bottom = self.box
        w, h = right - left, bottom - top
        x0, y0 = max(0, int(left - 0.5 * w)), max(0, int(top - 0.5 * h))
        x1, y1 = min(rgb.shape[1], int(right + 0.5 * w)), min(rgb.shape[0], int(bottom + 0.5 * h))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        scale = LOCAL_SIDE / max(w, 1.0)
        crop = cv2.resize(rgb[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rects, scores, _ = detector.run(crop, 0, 0.0)
        if len(rects) == 0:
            return None
        best = max(range(len(rects)), key=lambda i: (rects[i].width() * rects[i].height(), scores[i]))
        r = rects[best]
        return tuple(int(round(v)) for v in (x0 + r.left() / scale, y0 + r.top() / scale,
                                             x0 + r.right() / scale, y0 + r.bottom() / scale))

    def _follow(self, rgb: np.ndarray):
        """Landmarks of the face found near the previous one, or None when it is lost or jumped."""
        box = self._local_box(rgb)
        if box is None:
            return None
        landmarks = landmarks_in_box(rgb, box, self.aligner.predictor_path)
        (c0, s0), (c1, s1) = _centre_and_size(self.landmarks), _centre_and_size(landmarks)
        if s0 <= 0 or np.hypot(*(c1 - c0)) > self.max_shift * s0 or abs(s1 / s0 - 1.0) > self.max_scale:
            return None
        self.box, self.landmarks = tuple(float(v) for v in box), landmarks
        self.since_detection += 1
        return box, landmarks

    def align(self, image, second_pass: bool = False) -> AlignedFace:
        """The tracked face of this frame aligned like `FaceAligner.align`; NoFaceError when there is none."""
        rgb = as_rgb_array(image)
        self.frames += 1
        found = None
        if self.box is not None and self.since_detection + 1 < self.detect_every:
            found = self._follow(rgb)
        if found is None:
            found = self._detect(rgb)
        if found is None:
            raise NoFaceError("no face detected")
        box, landmarks = found
        return self.aligner.align_landmarks(rgb, box, landmarks, second_pass)
