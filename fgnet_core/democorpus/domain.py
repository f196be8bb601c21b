"""The two camera domains of the demo corpus and the per-frame render entry point.

"BP4D-like" studio: portrait frames with the aspect of BP4D's 1040x1392 scaled down, large face, warm tint,
light blur, JPEG 85-95. "DISFA-like" lab camera: the aspect of DISFA's 1024x768, a smaller face, drawn at half
resolution then upscaled, cool tint, lower contrast, more blur and noise, MJPG video compression.
The domain gap is the point: cross-domain evaluation should see one.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from fgnet_core.democorpus.face import Identity, Pose, pose_face
from fgnet_core.democorpus.render import render_face

__all__ = ["Domain", "DOMAINS", "render_frame"]


@dataclass(frozen=True)
class Domain:
    name: str
    out_hw: tuple[int, int]           # written frame size (H, W)
    render_scale: float               # drawing resolution relative to the written frame
    face_px: tuple[float, float]      # jaw width (landmark 0 to 16) range in written pixels
    centre_jitter: float              # face centre jitter, fraction of the frame
    jpeg_quality: tuple[int, int]     # still frames (BP4D) quality range; DISFA: in-camera JPEG, then video
    video_quality: int = 0            # MJPG writer quality (DISFA)


DOMAINS: dict[str, Domain] = {
    "BP4D": Domain("BP4D", (464, 348), 1.0, (150.0, 185.0), 0.04, (85, 95)),
    "DISFA": Domain("DISFA", (384, 512), 0.5, (140.0, 175.0), 0.05, (40, 40), video_quality=30),
}


@lru_cache(maxsize=4)
def _backdrop_cached(name: str, colour: tuple, door: bool, h: int, w: int) -> np.ndarray:
    ys = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    if name == "BP4D":
        shade = (1.0 - 0.22 * (xs ** 2 + ys ** 2)) * (1.02 - 0.06 * ys)
        return np.ascontiguousarray(shade[..., None] * np.asarray(colour, np.float32), dtype=np.float32)
    base = 0.45 * np.asarray(colour, np.float32) + 0.55 * np.array([0.56, 0.58, 0.60], np.float32)
    shade = (1.0 - 0.12 * xs) * (1.0 - 0.10 * ys)
    img = shade[..., None] * base
    edge, width = int(w * (0.78 + 0.1 * door)), max(2, w // 40)
    img[:, edge:edge + width] *= 0.55
    img[:, edge + width:] *= 0.85
    return np.ascontiguousarray(img, dtype=np.float32)


def _backdrop(domain: Domain, idn: Identity, hw: tuple[int, int]) -> np.ndarray:
    """Session background: studio backdrop with vignette, or a lab wall with a door-frame edge.  # [H, W, 3]"""
    colour = tuple(float(c) for c in idn.background)
    return _backdrop_cached(domain.name, colour, bool(idn.texture[0, 0] > 0), hw[0], hw[1]).copy()


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed bank of unit Gaussian noise; frames take random windows of it (cheaper than fresh noise)."""
    return np.random.default_rng(12345).standard_normal((640, 640, 3), dtype=np.float32)


def _noise(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    bank = _noise_bank()
    y = int(rng.integers(0, bank.shape[0] - shape[0] + 1))
    x = int(rng.integers(0, bank.shape[1] - shape[1] + 1))
    return bank[y:y + shape[0], x:x + shape[1]]


def _finish(domain: Domain, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera look of the domain, float RGB at render size -> uint8 BGR at the written size."""
    if domain.name == "BP4D":
        rgb *= np.array([1.06, 1.0, 0.88], np.float32) * np.float32(255.0)
        rgb = cv2.GaussianBlur(rgb, (0, 0), float(rng.uniform(0.5, 0.9)))
        rgb += _noise(rgb.shape, rng) * np.float32(0.004 * 255)
    else:
        contrast = np.float32(rng.uniform(0.7, 0.9))
        rgb -= np.float32(0.5)
        rgb *= np.array([0.92, 0.98, 1.08], np.float32) * (contrast * np.float32(255.0))
        rgb += np.array([0.92, 0.98, 1.08], np.float32) * np.float32(0.5 * 255)
        rgb += _noise(rgb.shape, rng) * np.float32(0.012 * 255)
        rgb = cv2.resize(rgb, (domain.out_hw[1], domain.out_hw[0]), interpolation=cv2.INTER_LINEAR)
        rgb = cv2.GaussianBlur(rgb, (0, 0), float(rng.uniform(0.9, 1.6)))
    rgb += np.float32(0.5)
    np.clip(rgb, 0, 255, out=rgb)
    bgr = cv2.cvtColor(rgb.astype(np.uint8), cv2.COLOR_RGB2BGR)
    if domain.name == "DISFA":  # the camera's own compression, before the video container's
        bgr = cv2.imdecode(cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, domain.jpeg_quality[0]])[1],
                           cv2.IMREAD_COLOR)
    return bgr


def render_frame(domain: Domain, idn: Identity, strengths: np.ndarray, pose: Pose, rng: np.random.Generator,
                 exposure: float = 1.0, finish: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Render one frame. `pose` is in written-frame pixels.

    Returns (image, landmarks): uint8 BGR [H, W, 3] at domain.out_hw (or, with finish=False, the float RGB
    drawing before any camera effect, at render size) and the true 68 points [68, 2] in written-frame pixels.
    """
    k = domain.render_scale
    h, w = (int(round(domain.out_hw[0] * k)), int(round(domain.out_hw[1] * k)))
    # Written pixel X and drawn pixel x (pixel centres) relate by X = (x + 0.5) / k - 0.5.
    draw_pose = Pose(pose.yaw, pose.pitch, pose.roll, pose.scale * k,
                     (pose.cx + 0.5) * k - 0.5, (pose.cy + 0.5) * k - 0.5)
    geom = pose_face(idn, strengths, draw_pose)
    gaze = rng.normal(0.0, [0.008, 0.004])
    img = render_face(idn, geom, strengths, _backdrop(domain, idn, (h, w)), gaze, exposure)
    landmarks = ((geom.landmarks + 0.5) / k - 0.5).astype(np.float32)
    if not finish:
        return img, landmarks
    return _finish(domain, img, rng), landmarks
