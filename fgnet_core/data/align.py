"""FFHQ-style face alignment: dlib detection + 68 landmarks -> oriented crop -> 256x256 -> dlib again.

FG-Net feeds StyleGAN2 (trained on FFHQ) with faces aligned exactly like FFHQ. The aligner strings the steps
together, each in its own module:
  * `image_load`: any still image (or an array) -> [H, W, 3] uint8 RGB, or an `ImageLoadError` saying why;
  * `face_detect`: dlib's largest face and its 68 landmarks;
  * `ffhq_geometry`: the FFHQ recipe's oriented crop square from the landmarks;
  * `ffhq_crop`: the recipe applied to the image, literally (`transform_size=N`; the authors used 4096) or
    in one fast warp (`transform_size=None`, the default) onto the same output pixel grid.
The aligned landmarks are from dlib run again on the aligned face, like the official FG-Net loader.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fgnet_core.data.face_detect import NoFaceError, detect_face, dlib_models
from fgnet_core.data.ffhq_crop import PADDING_MODES, warp_fast, warp_recipe
from fgnet_core.data.ffhq_geometry import apply_affine, ffhq_quad, invert_affine, quad_matrix
from fgnet_core.data.image_load import as_rgb_array


@dataclass
class AlignedFace:
    image: np.ndarray             # [S, S, 3] uint8 RGB, S = output_size
    landmarks: np.ndarray         # [68, 2] float32 (x, y), dlib run again on `image`
    source_landmarks: np.ndarray  # [68, 2] float32 (x, y) in the input frame
    box: tuple[int, int, int, int]  # dlib face box (left, top, right, bottom) in the input frame
    quad: np.ndarray              # [4, 2] float64 crop corners in the input frame (NW, SW, SE, NE)
    matrix: np.ndarray            # [2, 3] affine map input (x, y) -> output (x, y), pixel centres


class FaceAligner:
    """Detect, align FFHQ-style to output_size x output_size, and re-detect landmarks on the result.

    transform_size: None = fast single-warp path (default); an int = the literal recipe warping to
    that size first (4096 reproduces the FG-Net authors' preprocessing).
    padding: 'reflect' (recipe: reflect + blur + fade), 'edge', 'constant' (black), or 'none'.
    detect_max_side: None = detect on the full frame (as the authors); an int trades a little
    detection recall on small faces for speed on large frames (see `detect_face`). coarse_first: detect
    without upsampling first, upsampling only when that finds no face (see `detect_face`).
    """

    def __init__(self, predictor_path=None, output_size: int = 256, transform_size: int | None = None,
                 padding: str = "reflect", upsample: int = 1, detect_max_side: int | None = None,
                 coarse_first: bool = False):
        if padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
        if transform_size is not None and transform_size < output_size:
            raise ValueError(f"transform_size ({transform_size}) must be >= output_size ({output_size})")
        self.predictor_path = predictor_path
        self.output_size = int(output_size)
        self.transform_size = None if transform_size is None else int(transform_size)
        self.padding = padding
        self.upsample = int(upsample)
        self.detect_max_side = detect_max_side
        self.coarse_first = coarse_first
        dlib_models(predictor_path)  # load now: fail early, and keep per-image timing honest

    def align(self, image, second_pass: bool = True) -> AlignedFace:
        """Align the largest face of an RGB uint8 [H, W, 3] array (or an image path).

        second_pass=False skips dlib on the aligned face (a second detection, ~20 ms): `landmarks` are then
        the input landmarks mapped into the aligned frame, enough to draw, not what training data holds.
        """
        rgb = as_rgb_array(image)
        found = detect_face(rgb, self.predictor_path, self.upsample, self.detect_max_side, self.coarse_first)
        if found is None:
            where = f"{image}: " if isinstance(image, (str, Path)) else ""
            raise NoFaceError(f"{where}no face detected")
        box, source_landmarks = found
        return self.align_landmarks(rgb, box, source_landmarks, second_pass,
                                    where=f"{image}: " if isinstance(image, (str, Path)) else "")

    def align_landmarks(self, rgb: np.ndarray, box, source_landmarks: np.ndarray, second_pass: bool = True,
                        where: str = "") -> AlignedFace:
        """Align given the face box and [68, 2] landmarks in `rgb` (from a detection or a tracker)."""
        aligned, quad = self.warp(rgb, source_landmarks)
        to_output = invert_affine(quad_matrix(quad, self.output_size))  # input (x, y) -> output (x, y)
        if second_pass:
            again = detect_face(aligned, self.predictor_path, self.upsample)
            if again is None:
                raise NoFaceError(f"{where}no face detected in the aligned image")
            landmarks = again[1]
        else:
            landmarks = apply_affine(to_output, source_landmarks).astype(np.float32)
        return AlignedFace(image=aligned, landmarks=landmarks, source_landmarks=source_landmarks,
                           box=tuple(int(v) for v in box), quad=quad, matrix=to_output)

    def warp(self, rgb: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Crop + align given [68, 2] landmarks -> ([S, S, 3] uint8, quad [4, 2])."""
        quad, qsize = ffhq_quad(landmarks)
        if self.transform_size is None:
            return warp_fast(rgb, quad, qsize, self.output_size, self.padding), quad
        return warp_recipe(rgb, quad, qsize, self.output_size, self.transform_size, self.padding), quad
