"""FFHQ-style face alignment: dlib detection + 68 landmarks -> oriented crop -> 256x256 -> dlib again.

FG-Net feeds StyleGAN2 (trained on FFHQ) with faces aligned exactly like FFHQ, so the crop geometry
follows the FFHQ recipe (NVlabs/ffhq-dataset `recreate_aligned_images`): an oriented square derived
from the eye centres and mouth corners, an integer anti-aliasing shrink, a crop, a reflect pad whose
seam is hidden by blur and a fade to the median colour, then a quad warp.

Two implementations share that geometry:
  * `transform_size=N` (the authors used 4096) runs the recipe literally: PIL warp to N x N, then a
    Lanczos resize to the output size. Slow: most of the time goes into the N x N warp and the blur
    of the full-resolution padded crop.
  * `transform_size=None` (default) applies the recipe's Lanczos shrink to the crop box alone, runs
    the pad blur/fade on that crop with the blur itself computed at reduced resolution, then does one
    cv2 affine warp to 3x the output size and a Lanczos resize to the output size. The output pixel
    grid is the same as the recipe's for any transform size (see `quad_matrix`).
The aligned landmarks are from dlib run again on the aligned face, like the official FG-Net loader.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fgnet_core.data.ffhq_geometry import apply_affine, ffhq_quad, invert_affine, quad_matrix  # noqa: F401 (re-exported)
from fgnet_core.paths import dlib_landmark_model

PADDING_MODES = ("reflect", "edge", "constant", "none")
DEFAULT_MAX_PIXELS = 50_000_000   # refuse larger images before decoding (decompression bombs)
DEFAULT_MIN_SIDE = 32             # smaller images cannot hold a face dlib can find
_OVERSAMPLE = 3       # fast path: bilinear warp at 3x output size, then Lanczos to output (anti-aliasing)
_BLUR_SIGMA_LOW = 2.0  # fast path: pad blur computed at a resolution where sigma is ~2 px


class AlignmentError(Exception):
    """An image could not be aligned (unreadable input, no face, ...)."""


class ImageLoadError(AlignmentError):
    """The input file is not a usable image."""


class NoFaceError(AlignmentError):
    """dlib found no face in the input image or in the aligned image."""


@dataclass
class AlignedFace:
    image: np.ndarray             # [S, S, 3] uint8 RGB, S = output_size
    landmarks: np.ndarray         # [68, 2] float32 (x, y), dlib run again on `image`
    source_landmarks: np.ndarray  # [68, 2] float32 (x, y) in the input frame
    box: tuple[int, int, int, int]  # dlib face box (left, top, right, bottom) in the input frame
    quad: np.ndarray              # [4, 2] float64 crop corners in the input frame (NW, SW, SE, NE)
    matrix: np.ndarray            # [2, 3] affine map input (x, y) -> output (x, y), pixel centres


# ----------------------------------------------------------------------------------------------
# Image loading


def load_image_rgb(path, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = DEFAULT_MIN_SIDE) -> np.ndarray:
    """Decode any common still image to [H, W, 3] uint8 RGB, or raise ImageLoadError saying why.

    The size is checked from the header before any pixel is decoded. EXIF orientation is applied,
    alpha is composited on white, CMYK / palette / grayscale are converted, 16-bit is scaled to 8-bit.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageLoadError(f"{path}: empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise ImageLoadError(f"{path}: image too large ({exc})") from None
        except UnidentifiedImageError:
            raise ImageLoadError(f"{path}: not an image (unrecognised format)") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageLoadError(f"{path}: unreadable image header ({exc})") from None
        with img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageLoadError(
                    f"{path}: image too large ({width}x{height} = {width * height / 1e6:.1f} MP, "
                    f"limit {max_pixels / 1e6:.1f} MP)")
            if min(width, height) < min_side:
                raise ImageLoadError(f"{path}: image too small ({width}x{height}, need >= {min_side} px a side)")
            try:
                img.load()
            except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, zlib.error, ...
                raise ImageLoadError(f"{path}: truncated or corrupt image ({exc})") from None
            try:
                img = ImageOps.exif_transpose(img)
            except Exception:  # a broken EXIF block should not lose the picture
                pass
            try:
                return _to_rgb8(img)
            except Exception as exc:
                raise ImageLoadError(f"{path}: unsupported image mode {img.mode!r} ({exc})") from None


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Normalise a decoded PIL image of any mode to [H, W, 3] uint8 RGB."""
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img, mode = Image.alpha_composite(white, rgba).convert("RGB"), "RGB"
    if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float grayscale
        gray = np.asarray(img).astype(np.float64)  # [H, W]
        top = float(gray.max()) if gray.size else 0.0
        if mode.startswith("I;16") or 255 < top <= 65535:
            gray = gray / 257.0
        elif mode == "F" and top <= 1.0:
            gray = gray * 255.0
        elif top > 65535:
            gray = gray * (255.0 / top)
        gray = np.clip(np.rint(gray), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def _as_rgb_array(image) -> np.ndarray:
    """Accept a path or an array; return [H, W, 3] uint8 C-contiguous RGB."""
    if isinstance(image, (str, Path)):
        return load_image_rgb(image)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise AlignmentError(f"expected an RGB image [H, W, 3], got shape {arr.shape}")
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        raise AlignmentError(f"expected a uint8 image, got {arr.dtype}")
    return np.ascontiguousarray(arr)


# ----------------------------------------------------------------------------------------------
# dlib detection (models cached per process: loading the predictor takes ~1-2 s)

_MODELS: dict[str, tuple] = {}


def _dlib_models(predictor_path=None):
    import dlib

    if predictor_path is None:
        predictor_path = dlib_landmark_model()
    key = str(predictor_path)
    if key not in _MODELS:
        if not Path(key).is_file():
            raise FileNotFoundError(f"{key}: dlib landmark model not found")
        _MODELS[key] = (dlib.get_frontal_face_detector(), dlib.shape_predictor(key))
    return _MODELS[key]


def _detect(image_rgb: np.ndarray, predictor_path=None, upsample: int = 1, max_side: int | None = None,
            coarse_first: bool = False):
    """Largest face (ties: higher detector score) -> (box, [68, 2] float32), or None.

    max_side: run the detector (the slow part on large frames) on a copy shrunk to this longer side;
    the landmarks are still predicted on the full-resolution image. coarse_first: try without upsampling
    first (~4x faster; it finds every face above ~80 px, and the largest face is what is kept) and
    upsample only when that finds nothing.
    """
    import dlib

    detector, predictor = _dlib_models(predictor_path)
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

    _, predictor = _dlib_models(predictor_path)
    shape = predictor(image_rgb, dlib.rectangle(*(int(round(v)) for v in box)))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def detect_landmarks(image_rgb, predictor_path=None, upsample: int = 1,
                     max_side: int | None = None) -> np.ndarray | None:
    """The dlib step alone: [68, 2] float32 (x, y) of the largest face, or None when there is none."""
    found = _detect(_as_rgb_array(image_rgb), predictor_path, upsample, max_side)
    return None if found is None else found[1]


# ----------------------------------------------------------------------------------------------
# FFHQ crop, pad and warp (geometry in ffhq_geometry)


def _recipe_layout(quad: np.ndarray, qsize: float, width: int, height: int, output_size: int, pad_on: bool):
    """The recipe's shrink / crop / pad decisions, in the shrunk frame.

    -> shrink (int >= 1), crop (x0, y0, x1, y1) in the shrunk image, pad (left, top, right, bottom)
       around the crop or None, quad and qsize in the shrunk frame, shrunk (width, height).
    """
    shrink = int(np.floor(qsize / output_size * 0.5))
    shrink = shrink if shrink > 1 else 1
    if shrink > 1:
        width, height = int(np.rint(width / shrink)), int(np.rint(height / shrink))
        quad, qsize = quad / shrink, qsize / shrink
    border = max(int(np.rint(qsize * 0.1)), 3)
    lo, hi = np.floor(quad.min(axis=0)).astype(int), np.ceil(quad.max(axis=0)).astype(int)
    crop = (max(lo[0] - border, 0), max(lo[1] - border, 0), min(hi[0] + border, width), min(hi[1] + border, height))
    q = quad - crop[:2]
    cw, ch = crop[2] - crop[0], crop[3] - crop[1]
    lo, hi = np.floor(q.min(axis=0)).astype(int), np.ceil(q.max(axis=0)).astype(int)
    pad = (max(border - lo[0], 0), max(border - lo[1], 0), max(hi[0] - cw + border, 0), max(hi[1] - ch + border, 0))
    if pad_on and max(pad) > border - 4:
        pad = tuple(int(v) for v in np.maximum(pad, int(np.rint(qsize * 0.3))))
    else:
        pad = None
    return shrink, crop, pad, quad, qsize, (width, height)


def _pad_mask(xs: np.ndarray, ys: np.ndarray, h: int, w: int, pad) -> np.ndarray:
    """Recipe's pad mask at columns xs and rows ys of a padded [h, w] image -> [len(ys), len(xs)] float32.

    1 at the outer edge of the pad, 0 at the original image edge, negative inside the image.
    """
    xs = np.asarray(xs, dtype=np.float32)[None, :]  # [1, W]
    ys = np.asarray(ys, dtype=np.float32)[:, None]  # [H, 1]
    mask_x = 1.0 - np.minimum(xs / pad[0], (w - 1 - xs) / pad[2])
    mask_y = 1.0 - np.minimum(ys / pad[1], (h - 1 - ys) / pad[3])
    return np.maximum(mask_x, mask_y)


def _blur_fade_exact(img: np.ndarray, pad, qsize: float) -> np.ndarray:
    """Hide a reflect pad as the recipe does: blur near and beyond the seam, fade the pad to the median.

    img is the padded float32 [H, W, 3]; pad = (left, top, right, bottom) widths.
    """
    from scipy.ndimage import gaussian_filter

    h, w = img.shape[:2]
    mask = _pad_mask(np.arange(w), np.arange(h), h, w, pad)[:, :, None]  # [H, W, 1]
    sigma = qsize * 0.02
    img += (gaussian_filter(img, [sigma, sigma, 0]) - img) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    img += (np.median(img, axis=(0, 1)) - img) * np.clip(mask, 0.0, 1.0)
    return img


def _blur_fade_fast(img: np.ndarray, pad, qsize: float) -> np.ndarray:
    """The recipe's blend on uint8 [H, W, 3], with everything smooth computed at reduced resolution.

    Where the blur weight is 1 (the pad and a band inside the seam) the recipe's result is
    blur * (1 - fade) + median * fade, a smooth image; elsewhere the fade weight is 0. So
    out = img * (1 - w_blur) + low * w_blur with `low` and both weights computed small and upsampled.
    """
    h, w = img.shape[:2]
    sigma = qsize * 0.02
    step = max(1, int(sigma / _BLUR_SIGMA_LOW))
    sw, sh = max(1, w // step), max(1, h // step)
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)  # [sh, sw, 3]
    s = sigma * sw / w
    blurred = cv2.GaussianBlur(small, (0, 0), sigmaX=s, sigmaY=s, borderType=cv2.BORDER_REFLECT)
    # Mask at the small pixel centres, in full-resolution coordinates.
    xs = (np.arange(sw) + 0.5) * (w / sw) - 0.5
    ys = (np.arange(sh) + 0.5) * (h / sh) - 0.5
    mask = _pad_mask(xs, ys, h, w, pad)[:, :, None]  # [sh, sw, 1]
    w_blur = np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    w_fade = np.clip(mask, 0.0, 1.0)
    median = np.median(small + (blurred - small) * w_blur, axis=(0, 1))  # [3]
    low = blurred + (median - blurred) * w_fade
    low = cv2.resize(np.clip(np.rint(low), 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
    w_blur = cv2.resize(w_blur[:, :, 0], (w, h), interpolation=cv2.INTER_LINEAR)  # [H, W]
    return cv2.blendLinear(img, low, 1.0 - w_blur, w_blur)


_NP_PAD = {"reflect": "reflect", "edge": "edge", "constant": "constant"}
_CV_BORDER = {"reflect": cv2.BORDER_REFLECT_101, "edge": cv2.BORDER_REPLICATE,
              "constant": cv2.BORDER_CONSTANT, "none": cv2.BORDER_CONSTANT}


# ----------------------------------------------------------------------------------------------
# The aligner


class FaceAligner:
    """Detect, align FFHQ-style to output_size x output_size, and re-detect landmarks on the result.

    transform_size: None = fast single-warp path (default); an int = the literal recipe warping to
    that size first (4096 reproduces the FG-Net authors' preprocessing).
    padding: 'reflect' (recipe: reflect + blur + fade), 'edge', 'constant' (black), or 'none'.
    detect_max_side: None = detect on the full frame (as the authors); an int trades a little
    detection recall on small faces for speed on large frames (see `_detect`). coarse_first: detect
    without upsampling first, upsampling only when that finds no face (see `_detect`).
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
        _dlib_models(predictor_path)  # load now: fail early, and keep per-image timing honest

    def align(self, image, second_pass: bool = True) -> AlignedFace:
        """Align the largest face of an RGB uint8 [H, W, 3] array (or an image path).

        second_pass=False skips dlib on the aligned face (a second detection, ~20 ms): `landmarks` are then
        the input landmarks mapped into the aligned frame, enough to draw, not what training data holds.
        """
        rgb = _as_rgb_array(image)
        found = _detect(rgb, self.predictor_path, self.upsample, self.detect_max_side, self.coarse_first)
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
            again = _detect(aligned, self.predictor_path, self.upsample)
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
            return self._warp_fast(rgb, quad, qsize), quad
        return self._warp_recipe(rgb, quad, qsize), quad

    # -- literal recipe ------------------------------------------------------------------------
    def _warp_recipe(self, rgb: np.ndarray, quad: np.ndarray, qsize: float) -> np.ndarray:
        height, width = rgb.shape[:2]
        shrink, crop, pad, quad, qsize, size = _recipe_layout(
            quad, qsize, width, height, self.output_size, self.padding != "none")
        img = Image.fromarray(rgb)
        if shrink > 1:
            img = img.resize(size, Image.Resampling.LANCZOS)
        if crop[2] - crop[0] < size[0] or crop[3] - crop[1] < size[1]:
            img = img.crop(crop)
        quad = quad - crop[:2]
        if pad is not None:
            arr = np.pad(np.asarray(img, dtype=np.float32), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)),
                         mode=_NP_PAD[self.padding])
            if self.padding == "reflect":
                arr = _blur_fade_exact(arr, pad, qsize)
            img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")
            quad = quad + pad[:2]
        t = self.transform_size
        img = img.transform((t, t), Image.Transform.QUAD, tuple((quad + 0.5).flatten()), Image.Resampling.BILINEAR)
        if self.output_size < t:
            img = img.resize((self.output_size, self.output_size), Image.Resampling.LANCZOS)
        return np.array(img, dtype=np.uint8)

    # -- fast single warp ----------------------------------------------------------------------
    def _warp_fast(self, rgb: np.ndarray, quad: np.ndarray, qsize: float) -> np.ndarray:
        height, width = rgb.shape[:2]
        out = self.output_size
        shrink, crop, pad, quad_s, qsize_s, size_s = _recipe_layout(
            quad, qsize, width, height, out, self.padding != "none")
        # The recipe's integer Lanczos shrink, applied to the crop box alone instead of the whole input.
        crop_w, crop_h = crop[2] - crop[0], crop[3] - crop[1]
        if shrink > 1:
            fx, fy = width / size_s[0], height / size_s[1]  # input pixels per shrunk pixel
            box = (crop[0] * fx, crop[1] * fy, crop[2] * fx, crop[3] * fy)
            region = np.asarray(Image.fromarray(rgb).resize((crop_w, crop_h), Image.Resampling.LANCZOS, box=box))
        else:
            region = rgb[crop[1]:crop[3], crop[0]:crop[2]]
        quad_w = quad_s - crop[:2]
        border_mode = _CV_BORDER[self.padding]
        if pad is not None and self.padding == "reflect":
            padded = cv2.copyMakeBorder(region, pad[1], pad[3], pad[0], pad[2], cv2.BORDER_REFLECT_101)
            region = _blur_fade_fast(padded, pad, qsize_s)
            quad_w = quad_w + pad[:2]
        elif pad is None and self.padding != "none":
            border_mode = cv2.BORDER_REPLICATE  # the recipe would not pad; not sampled in practice
        work = _OVERSAMPLE * out
        matrix = quad_matrix(quad_w, work)
        warped = cv2.warpAffine(region, matrix, (work, work), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=border_mode, borderValue=(0, 0, 0))
        if work != out:
            warped = np.array(Image.fromarray(warped).resize((out, out), Image.Resampling.LANCZOS))
        return warped
