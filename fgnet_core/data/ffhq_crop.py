"""The FFHQ recipe applied to an image (NVlabs/ffhq-dataset `recreate_aligned_images`): given the oriented
square from `ffhq_geometry`, an integer anti-aliasing shrink, a crop, a reflect pad whose seam is hidden by blur
and a fade to the median colour, then a quad warp to the output size.

Two implementations share that geometry:
  * `warp_recipe` (a transform size N; the authors used 4096) runs the recipe literally: PIL warp to N x N,
    then a Lanczos resize to the output size. Slow: most of the time goes into the N x N warp and the blur
    of the full-resolution padded crop.
  * `warp_fast` applies the recipe's Lanczos shrink to the crop box alone, runs the pad blur/fade on that
    crop with the blur itself computed at reduced resolution, then does one cv2 affine warp to 3x the
    output size and a Lanczos resize to the output size. The output pixel grid is the same as the recipe's
    for any transform size (see `quad_matrix`).
"""
from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from fgnet_core.data.ffhq_geometry import quad_matrix

PADDING_MODES = ("reflect", "edge", "constant", "none")
_OVERSAMPLE = 3       # fast path: bilinear warp at 3x output size, then Lanczos to output (anti-aliasing)
_BLUR_SIGMA_LOW = 2.0  # fast path: pad blur computed at a resolution where sigma is ~2 px


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


def warp_recipe(rgb: np.ndarray, quad: np.ndarray, qsize: float, output_size: int, transform_size: int,
                padding: str) -> np.ndarray:
    """The literal recipe: shrink, crop, pad, PIL quad warp to transform_size, Lanczos to output_size."""
    height, width = rgb.shape[:2]
    shrink, crop, pad, quad, qsize, size = _recipe_layout(
        quad, qsize, width, height, output_size, padding != "none")
    img = Image.fromarray(rgb)
    if shrink > 1:
        img = img.resize(size, Image.Resampling.LANCZOS)
    if crop[2] - crop[0] < size[0] or crop[3] - crop[1] < size[1]:
        img = img.crop(crop)
    quad = quad - crop[:2]
    if pad is not None:
        arr = np.pad(np.asarray(img, dtype=np.float32), ((pad[1], pad[3]), (pad[0], pad[2]), (0, 0)),
                     mode=_NP_PAD[padding])
        if padding == "reflect":
            arr = _blur_fade_exact(arr, pad, qsize)
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")
        quad = quad + pad[:2]
    t = transform_size
    img = img.transform((t, t), Image.Transform.QUAD, tuple((quad + 0.5).flatten()), Image.Resampling.BILINEAR)
    if output_size < t:
        img = img.resize((output_size, output_size), Image.Resampling.LANCZOS)
    return np.array(img, dtype=np.uint8)


def warp_fast(rgb: np.ndarray, quad: np.ndarray, qsize: float, output_size: int, padding: str) -> np.ndarray:
    """One cv2 affine warp of the shrunk, padded crop box to 3x output_size, then Lanczos to output_size."""
    height, width = rgb.shape[:2]
    out = output_size
    shrink, crop, pad, quad_s, qsize_s, size_s = _recipe_layout(
        quad, qsize, width, height, out, padding != "none")
    # The recipe's integer Lanczos shrink, applied to the crop box alone instead of the whole input.
    crop_w, crop_h = crop[2] - crop[0], crop[3] - crop[1]
    if shrink > 1:
        fx, fy = width / size_s[0], height / size_s[1]  # input pixels per shrunk pixel
        box = (crop[0] * fx, crop[1] * fy, crop[2] * fx, crop[3] * fy)
        region = np.asarray(Image.fromarray(rgb).resize((crop_w, crop_h), Image.Resampling.LANCZOS, box=box))
    else:
        region = rgb[crop[1]:crop[3], crop[0]:crop[2]]
    quad_w = quad_s - crop[:2]
    border_mode = _CV_BORDER[padding]
    if pad is not None and padding == "reflect":
        padded = cv2.copyMakeBorder(region, pad[1], pad[3], pad[0], pad[2], cv2.BORDER_REFLECT_101)
        region = _blur_fade_fast(padded, pad, qsize_s)
        quad_w = quad_w + pad[:2]
    elif pad is None and padding != "none":
        border_mode = cv2.BORDER_REPLICATE  # the recipe would not pad; not sampled in practice
    work = _OVERSAMPLE * out
    matrix = quad_matrix(quad_w, work)
    warped = cv2.warpAffine(region, matrix, (work, work), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=border_mode, borderValue=(0, 0, 0))
    if work != out:
        warped = np.array(Image.fromarray(warped).resize((out, out), Image.Resampling.LANCZOS))
    return warped
