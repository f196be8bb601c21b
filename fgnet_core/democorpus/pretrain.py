"""Unlabelled pretraining faces ("our FFHQ"): the demo renderer run with far more variety than the labelled domains.

The tiny StyleGAN2 and the pSp-style encoder are pretrained on these before any AU label is seen, the way
FG-Net's generator is pretrained on FFHQ. Compared with the two labelled domains the corpus has thousands of
identities (never a labelled subject: their random streams are keyed apart), wide head pose, broad random AU
combinations (no labels kept), older faces and more glasses, and six camera styles: the two labelled looks plus
four that neither labelled domain uses. Every face is aligned from the renderer's TRUE landmarks with the FFHQ
geometry the aligner uses (`ffhq_geometry`), drawn only as large as the output needs (no detector runs on it).
Deterministic: the same (index, seed, styles, size) gives the same bytes, whatever the worker count.
"""
from __future__ import annotations

import csv
import io
import time
import zlib
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from fgnet_core.atomic import write_bytes
from fgnet_core.data.ffhq_geometry import apply_affine, ffhq_quad, invert_affine, quad_matrix
from fgnet_core.democorpus.domain import _backdrop_cached
from fgnet_core.democorpus.face import RENDERED_AUS, Identity, Pose, pose_face, sample_identity
from fgnet_core.democorpus.render import render_face

__all__ = [
    "CameraStyle", "CAMERA_STYLES", "DEFAULT_STYLES", "POSE_RANGE", "pretrain_identity",
    "render_pretrain_face", "render_pretrain_corpus", "generate_pretrain_corpus",
]

Range = tuple[float, float]


@dataclass(frozen=True)
class CameraStyle:
    """A camera look as ranges; each face draws its own values inside them."""

    name: str
    backdrops: tuple[str, ...]        # scene behind the head: "studio", "lab", "room", "outdoor"
    exposure: Range                   # overall brightness gain
    contrast: Range                   # gain about mid-grey
    saturation: Range                 # 0 grey .. 1 as drawn .. > 1 vivid
    tint: tuple[Range, Range, Range]  # R, G, B gains (white balance / colour cast)
    key_light: Range = (0.0, 0.0)     # extra directional light across the head (fraction of brightness)
    resolution: Range = (1.0, 1.0)    # sensor resolution as a fraction of the output (< 1: low-res upscaled)
    blur: Range = (0.0, 0.0)          # Gaussian sigma in output pixels
    sharpen: Range = (0.0, 0.0)       # unsharp-mask amount
    noise: Range = (0.0, 0.0)         # sensor noise sigma (0..1 scale)
    jpeg: tuple[int, int] = (0, 0)    # JPEG quality range; (0, 0) = no compression
    mono: bool = False                # near-infrared grey: red-heavy channel mix, colour dropped


# Studio and lab take the labelled domains' looks (`domain`: tints, contrast, backdrops); the others are
# looks neither labelled domain has.
CAMERA_STYLES: dict[str, CameraStyle] = {
    "studio": CameraStyle("studio", ("studio",), (0.92, 1.08), (1.0, 1.0), (1.0, 1.0),
                          ((1.04, 1.08), (0.99, 1.01), (0.86, 0.90)), blur=(0.15, 0.3), noise=(0.003, 0.005),
                          jpeg=(85, 95)),
    "lab": CameraStyle("lab", ("lab",), (0.92, 1.06), (0.7, 0.9), (0.95, 1.0),
                       ((0.90, 0.94), (0.97, 0.99), (1.06, 1.10)), blur=(0.3, 0.5), noise=(0.008, 0.012),
                       jpeg=(70, 90)),
    "webcam": CameraStyle("webcam", ("room",), (0.75, 1.15), (0.75, 0.95), (0.7, 0.95),
                          ((0.85, 1.15), (0.9, 1.1), (0.85, 1.2)), resolution=(0.4, 0.7), blur=(0.2, 0.5),
                          noise=(0.012, 0.03), jpeg=(40, 65)),
    "phone": CameraStyle("phone", ("room", "outdoor"), (0.95, 1.12), (1.15, 1.35), (1.2, 1.5),
                         ((0.97, 1.04), (0.98, 1.02), (0.96, 1.04)), sharpen=(0.3, 0.7), noise=(0.004, 0.008),
                         jpeg=(80, 95)),
    "mono": CameraStyle("mono", ("room", "lab", "studio"), (0.85, 1.2), (0.9, 1.2), (0.0, 0.0),
                        ((1.0, 1.0), (1.0, 1.0), (1.0, 1.0)), blur=(0.2, 0.6), noise=(0.01, 0.03),
                        jpeg=(60, 90), mono=True),
    "outdoor": CameraStyle("outdoor", ("outdoor",), (0.8, 1.3), (1.0, 1.25), (0.9, 1.2),
                           ((0.95, 1.10), (0.97, 1.03), (0.88, 1.08)), key_light=(0.25, 0.5),
                           noise=(0.004, 0.01), jpeg=(75, 95)),
}
DEFAULT_STYLES: tuple[str, ...] = tuple(CAMERA_STYLES)
POSE_RANGE = (30.0, 20.0, 15.0)   # |yaw|, |pitch|, |roll| limits in degrees (labelled domains: 15, 8, 15)
_DOMAIN_KEY = zlib.crc32(b"pretrain")  # the labelled corpus keys [seed, crc32(dataset), crc32(subject), stream]
_OVERSAMPLE = 2                   # the crop is drawn at 2x the output size, then area-resized


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), _DOMAIN_KEY, *map(int, key)])))


def pretrain_identity(identity: int, seed: int) -> Identity:
    """Pretraining person number `identity`: the labelled sampler, widened for age and glasses.

    Its random stream is keyed [seed, crc32("pretrain"), identity], a key no labelled subject uses, so no
    pretraining identity equals a labelled one. The widening is applied here, so the labelled corpus is unchanged.
    """
    rng = _rng(seed, identity)
    idn = sample_identity(rng, "F" if rng.random() < 0.5 else "M")
    age = rng.beta(1.2, 1.6)  # 0 young .. 1 old: greying hair (brows keep their colour: dlib-tested contrast)
    grey = np.clip((age - 0.55) / 0.45, 0, 1) * rng.uniform(0.5, 1.0)
    idn.hair = np.clip(idn.hair * (1 - grey) + np.array([0.72, 0.71, 0.70]) * grey, 0, 1)
    idn.skin = np.clip(idn.skin * (1 - 0.08 * age), 0, 1)
    if idn.glasses is None and rng.random() < 0.15:  # ~34 % glasses in all (labelled: 22 %)
        idn.glasses = {"shape": str(rng.choice(["round", "rect"])),
                       "colour": np.array([(0.05, 0.05, 0.05), (0.35, 0.1, 0.1), (0.6, 0.6, 0.62)][rng.integers(3)]),
                       "thickness": float(rng.uniform(0.012, 0.028)), "size": float(rng.uniform(1.1, 1.4))}
    angle = rng.uniform(0, 2 * np.pi)  # key light from any side, not only from above
    idn.light = np.array([np.cos(angle), np.sin(angle)])
    return idn


def _expression(rng: np.random.Generator) -> np.ndarray:
    """Broad random AU combination: 0-6 AUs at once, strengths 0.2..1.  # [len(RENDERED_AUS)]"""
    out = np.zeros(len(RENDERED_AUS), np.float32)
    k = int(rng.choice(7, p=[0.10, 0.15, 0.20, 0.20, 0.15, 0.12, 0.08]))
    on = rng.choice(len(RENDERED_AUS), size=k, replace=False)
    out[on] = rng.uniform(0.2, 1.0, k)
    return out


def _scene(kind: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Background of one face, float RGB 0..1.  # [h, w, 3]"""
    colour = rng.uniform(0.3, 0.85) * np.clip(1 + rng.normal(0, 0.12, 3), 0.6, 1.4)
    if kind in ("studio", "lab"):  # the labelled domains' own backdrops (cached: copy before drawing on it)
        name = "BP4D" if kind == "studio" else "DISFA"
        return _backdrop_cached(name, tuple(float(c) for c in np.clip(colour, 0, 1)), bool(rng.random() < 0.5),
                                h, w).copy()
    ys = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    if kind == "outdoor":  # sky over a horizon of foliage / buildings, far out of focus
        sky = np.array([0.55, 0.70, 0.92]) * rng.uniform(0.85, 1.15) + rng.normal(0, 0.04, 3)
        ground = np.array([0.30, 0.42, 0.22]) if rng.random() < 0.6 else rng.uniform(0.3, 0.6) * np.ones(3)
        horizon = rng.uniform(0.25, 0.75)
        t = np.clip((ys - horizon) / 0.12 + 0.5, 0, 1)
        img = (1 - t) * (sky - 0.2 * (0.5 - ys)) + t * ground * np.clip(1 + rng.normal(0, 0.1, 3), 0.7, 1.3)
        img = np.ascontiguousarray(np.broadcast_to(img, (h, w, 3)), dtype=np.float32)
        n_blobs = int(rng.integers(2, 7))
    else:  # "room": a wall with a gradient and a few blurred objects (shelves, windows, doors)
        img = np.ascontiguousarray(np.broadcast_to(colour * (1.05 - 0.25 * ys), (h, w, 3)), dtype=np.float32)
        n_blobs = int(rng.integers(1, 5))
    for _ in range(n_blobs):
        x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
        bw, bh = rng.uniform(0.1, 0.5) * w, rng.uniform(0.1, 0.6) * h
        pts = np.array([(x0, y0), (x0 + bw, y0), (x0 + bw, y0 + bh), (x0, y0 + bh)], np.int32)
        cv2.fillPoly(img, [pts], tuple(float(c) for c in rng.uniform(0.1, 0.95, 3)))
    return cv2.GaussianBlur(img, (0, 0), max(1.0, 0.02 * w))


def _finish(style: CameraStyle, rgb: np.ndarray, head: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera look at the output size: float RGB 0..1 [S, S, 3] (consumed) -> uint8 RGB [S, S, 3]."""
    u = lambda r: float(rng.uniform(*r))  # noqa: E731
    if style.key_light[1] > 0:  # harsh sun: one side of the head lit, the other in shadow
        a = rng.uniform(0, 2 * np.pi)
        s = rgb.shape[0]
        ramp = (np.cos(a) * (np.arange(s)[None, :] - s / 2) + np.sin(a) * (np.arange(s)[:, None] - s / 2)) / (s / 2)
        rgb *= (1 + u(style.key_light) * np.clip(ramp, -1, 1) * head)[..., None].astype(np.float32)
    if style.mono:  # near-infrared look: skin bright and flat, lips and colours fade
        grey = rgb @ np.array([0.55, 0.35, 0.10], np.float32)
        rgb = np.repeat(grey[..., None], 3, axis=2)
    rgb *= np.array([u(t) for t in style.tint], np.float32) * np.float32(u(style.exposure))
    sat = u(style.saturation)
    if sat != 1.0:
        luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        rgb = luma[..., None] + np.float32(sat) * (rgb - luma[..., None])
    rgb = (rgb - np.float32(0.5)) * np.float32(u(style.contrast)) + np.float32(0.5)
    res = u(style.resolution)
    if res < 1.0:  # a small sensor: resolve fewer pixels, then upscale (the renderer itself needs ~2x size)
        s = rgb.shape[0]
        small = cv2.resize(rgb, (max(8, round(s * res)),) * 2, interpolation=cv2.INTER_AREA)
        rgb = cv2.resize(small, (s, s), interpolation=cv2.INTER_LINEAR)
    blur = u(style.blur)
    if blur >= 0.1:
        rgb = cv2.GaussianBlur(rgb, (0, 0), blur)
    amount = u(style.sharpen)
    if amount > 0:
        rgb = cv2.addWeighted(rgb, 1 + amount, cv2.GaussianBlur(rgb, (0, 0), 1.0), -amount, 0)
    sigma = u(style.noise)
    if sigma > 0:
        noise = rng.standard_normal(rgb.shape[:2] if style.mono else rgb.shape, dtype=np.float32) * np.float32(sigma)
        rgb += noise[..., None] if style.mono else noise
    out = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
    if style.jpeg[1] > 0:
        quality = int(rng.integers(style.jpeg[0], style.jpeg[1], endpoint=True))
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        out = np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])
    return out


def render_pretrain_face(index: int, seed: int = 0, styles: Sequence[str] = DEFAULT_STYLES, size: int = 64,
                         faces_per_identity: int = 2) -> tuple[np.ndarray, dict]:
    """Face number `index` of the corpus, FFHQ-aligned: (uint8 RGB [size, size, 3], meta).

    meta: identity, style, sex, yaw, pitch, roll, glasses, n_aus_on, and `landmarks` [68, 2], the renderer's
    true points in output pixels. A pure function of its arguments (deterministic, order-free).
    """
    identity = index // faces_per_identity
    idn = pretrain_identity(identity, seed)
    rng = _rng(seed, identity, 1 + index % faces_per_identity, zlib.crc32(",".join(styles).encode()))
    style = CAMERA_STYLES[styles[int(rng.integers(len(styles)))]]
    yaw, pitch, roll = (float(rng.uniform(-1, 1) * lim) for lim in POSE_RANGE)
    strengths = _expression(rng)
    # Unit-scale geometry gives the crop quad; the projection is linear in scale and centre, so one more call
    # places the face so that the quad spans `_OVERSAMPLE * size` pixels inside a canvas just big enough.
    unit = pose_face(idn, strengths, Pose(yaw, pitch, roll, 1.0, 0.0, 0.0))
    quad, side = ffhq_quad(unit.landmarks)
    work = _OVERSAMPLE * size
    scale = work / side
    margin = 2.0
    lo, hi = quad.min(0) * scale - margin, quad.max(0) * scale + margin
    w, h = int(np.ceil(hi[0] - lo[0])), int(np.ceil(hi[1] - lo[1]))
    geom = pose_face(idn, strengths, Pose(yaw, pitch, roll, scale, float(-lo[0]), float(-lo[1])))
    backdrop = _scene(str(rng.choice(style.backdrops)), rng, h, w)
    gaze = rng.normal(0.0, [0.02, 0.01])
    canvas = render_face(idn, geom, strengths, backdrop, gaze)  # [h, w, 3] float RGB
    quad_px = quad * scale - lo
    aligned = cv2.warpAffine(canvas, quad_matrix(quad_px, work), (work, work),
                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    aligned = cv2.resize(aligned, (size, size), interpolation=cv2.INTER_AREA)  # [size, size, 3]
    to_out = invert_affine(quad_matrix(quad_px, size))
    landmarks = apply_affine(to_out, geom.landmarks).astype(np.float32)  # [68, 2]
    head = np.zeros((size, size), np.float32)
    outline = apply_affine(to_out, np.vstack([geom.extras["skull"], geom.landmarks[16::-1]]))
    cv2.fillPoly(head, [np.round(outline * 8).astype(np.int32)], 1.0, cv2.LINE_AA, 3)
    image = _finish(style, aligned, cv2.GaussianBlur(head, (0, 0), size / 32), rng)
    meta = {"index": index, "identity": identity, "style": style.name, "sex": idn.sex,
            "yaw": round(yaw, 2), "pitch": round(pitch, 2), "roll": round(roll, 2),
            "glasses": int(idn.glasses is not None), "n_aus_on": int((strengths > 0).sum()), "landmarks": landmarks}
    return image, meta


def _render_chunk(job: tuple) -> tuple[int, np.ndarray, list[dict]]:
    """Worker: faces [start, stop) -> (start, images [k, S, S, 3], metas)."""
    start, stop, seed, styles, size, faces_per_identity = job
    cv2.setNumThreads(1)
    images = np.zeros((stop - start, size, size, 3), np.uint8)
    metas = []
    for k, index in enumerate(range(start, stop)):
        images[k], meta = render_pretrain_face(index, seed, styles, size, faces_per_identity)
        meta.pop("landmarks")
        metas.append(meta)
    return start, images, metas


INDEX_COLUMNS = ("index", "identity", "style", "sex", "yaw", "pitch", "roll", "glasses", "n_aus_on")


def _sample_grid(faces: np.ndarray, metas: list[dict], styles: Sequence[str], side: int = 8) -> np.ndarray:
    """side x side grid of the first faces of each style, one style after another.  # [side*S, side*S, 3]"""
    per_style = max(1, side * side // len(styles))
    picks = [m["index"] for st in styles for m in [m for m in metas if m["style"] == st][:per_style]]
    picks += [m["index"] for m in metas if m["index"] not in set(picks)][:side * side - len(picks)]
    s = faces.shape[1]
    grid = np.full((side * s, side * s, 3), 255, np.uint8)
    for k, i in enumerate(picks[:side * side]):
        r, c = divmod(k, side)
        grid[r * s:(r + 1) * s, c * s:(c + 1) * s] = faces[i]
    return grid


def render_pretrain_corpus(n: int, seed: int = 0, size: int = 64, styles: Sequence[str] = DEFAULT_STYLES,
                           workers: int = 2, progress: Callable[[int, int], None] | None = None,
                           faces_per_identity: int = 2, chunk_size: int = 64) -> tuple[np.ndarray, list[dict]]:
    """Render `n` aligned pretraining faces in memory -> (uint8 [n, size, size, 3] RGB, one meta dict per face).

    Faces are rendered in fixed chunks and placed by index, so the result does not depend on `workers`.
    `progress(done, n)` is called after each chunk.
    """
    styles = tuple(styles)
    unknown = [s for s in styles if s not in CAMERA_STYLES]
    if unknown or not styles:
        raise ValueError(f"unknown camera styles {unknown}; known: {sorted(CAMERA_STYLES)}")
    jobs = [(a, min(a + chunk_size, n), seed, styles, size, faces_per_identity) for a in range(0, n, chunk_size)]
    faces = np.zeros((n, size, size, 3), np.uint8)  # [N, S, S, 3]
    metas: list[dict] = [{}] * n
    done = 0

    def place(result) -> None:
        nonlocal done
        start, images, chunk_metas = result
        faces[start:start + len(images)] = images
        metas[start:start + len(images)] = chunk_metas
        done += len(images)
        if progress is not None:
            progress(done, n)

    if workers > 1 and len(jobs) > 1:
        with get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            for result in pool.imap_unordered(_render_chunk, jobs):
                place(result)
    else:
        cv2.setNumThreads(1)
        for job in jobs:
            place(_render_chunk(job))
    return faces, metas


def generate_pretrain_corpus(out_dir: str | Path, n: int, seed: int = 0, size: int = 64,
                             styles: Sequence[str] = DEFAULT_STYLES, workers: int = 2,
                             progress: Callable[[int, int], None] | None = None, faces_per_identity: int = 2,
                             chunk_size: int = 64, save_faces: bool = True) -> dict:
    """Render `n` aligned pretraining faces into `out_dir`; return a summary dict.

    Writes faces.npy (uint8 [n, size, size, 3] RGB; unless `save_faces` is False), index.csv (one row per
    face: INDEX_COLUMNS) and samples.png (8 x 8 grid, a few faces of each style), each atomically.
    """
    styles = tuple(styles)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    faces, metas = render_pretrain_corpus(n, seed, size, styles, workers, progress, faces_per_identity, chunk_size)
    seconds = time.perf_counter() - t0
    if save_faces:
        buf = io.BytesIO()
        np.save(buf, faces)
        write_bytes(out / "faces.npy", buf.getvalue())
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=INDEX_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(metas)
    write_bytes(out / "index.csv", text.getvalue().encode())
    ok, png = cv2.imencode(".png", _sample_grid(faces, metas, styles)[..., ::-1])
    write_bytes(out / "samples.png", png.tobytes())
    return {"faces": n, "identities": len({m["identity"] for m in metas}), "seed": seed, "size": size,
            "styles": {s: sum(m["style"] == s for m in metas) for s in styles},
            "seconds": round(seconds, 2), "faces_per_second": round(n / max(seconds, 1e-9), 1),
            "megabytes": round(faces.nbytes / 2 ** 20, 2)}
