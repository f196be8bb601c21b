"""Image loading and validation for alignment: any common still image (or an array) -> [H, W, 3] uint8 RGB.

Files are checked before they are decoded (missing, empty, too large for memory, too small to hold a face) and
every failure is an `ImageLoadError` saying why, so a batch run records one line per bad input and goes on.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 50_000_000   # refuse larger images before decoding (decompression bombs)
DEFAULT_MIN_SIDE = 32             # smaller images cannot hold a face dlib can find


class AlignmentError(Exception):
    """An image could not be aligned (unreadable input, no face, ...)."""


class ImageLoadError(AlignmentError):
    """The input file is not a usable image."""


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


def as_rgb_array(image) -> np.ndarray:
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
