"""Geometry of the demo corpus faces: an iBUG-68 mean template, identity and expression deformation, head pose.

Coordinates are "face units": the template's jaw width (landmark 0 to 16) is 1, x to the right, y down, z towards
the camera, origin at the centre of the landmark box. Every AU moves only landmarks near its heatmap anchors
(`au_tables.ACTION_UNITS[n].anchors`), so the renderer's shape change stays where the model is asked to look.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "TEMPLATE_68", "MIRROR_68", "RENDERED_AUS", "Identity", "Pose", "FaceGeometry",
    "sample_identity", "identity_points", "expression_offsets", "pose_face",
]

# iBUG-68 mean template in a unit landmark box (x 0..1 across the jaw, y 0 at the brow tops to 1 at the chin),
# with a rough depth z (face units, + towards the camera). Lips closed for the neutral face.
_RAW_68 = np.array([
    # jaw 0-16
    (0.000, 0.175, -0.42), (0.004, 0.312, -0.40), (0.020, 0.458, -0.36), (0.052, 0.584, -0.30),
    (0.103, 0.703, -0.23), (0.174, 0.811, -0.15), (0.265, 0.903, -0.08), (0.374, 0.973, -0.03),
    (0.500, 1.000, 0.00),
    (0.626, 0.973, -0.03), (0.735, 0.903, -0.08), (0.826, 0.811, -0.15), (0.897, 0.703, -0.23),
    (0.948, 0.584, -0.30), (0.980, 0.458, -0.36), (0.996, 0.312, -0.40), (1.000, 0.175, -0.42),
    # brows 17-21 (image left), 22-26 (image right)
    (0.080, 0.092, -0.16), (0.148, 0.045, -0.08), (0.226, 0.030, -0.03), (0.305, 0.040, 0.00), (0.382, 0.070, 0.02),
    (0.618, 0.070, 0.02), (0.695, 0.040, 0.00), (0.774, 0.030, -0.03), (0.852, 0.045, -0.08), (0.920, 0.092, -0.16),
    # nose bridge 27-30, nostrils 31-35
    (0.500, 0.200, 0.02), (0.500, 0.302, 0.06), (0.500, 0.405, 0.10), (0.500, 0.510, 0.16),
    (0.415, 0.568, 0.04), (0.455, 0.585, 0.07), (0.500, 0.596, 0.09), (0.545, 0.585, 0.07), (0.585, 0.568, 0.04),
    # eyes 36-41 (image left: outer corner, upper lid x2, inner corner, lower lid x2), 42-47 (image right)
    (0.160, 0.205, -0.10), (0.213, 0.172, -0.05), (0.285, 0.170, -0.04), (0.345, 0.208, -0.04),
    (0.285, 0.228, -0.04), (0.213, 0.228, -0.05),
    (0.655, 0.208, -0.04), (0.715, 0.170, -0.04), (0.787, 0.172, -0.05), (0.840, 0.205, -0.10),
    (0.787, 0.228, -0.05), (0.715, 0.228, -0.04),
    # outer lips 48-59
    (0.335, 0.773, -0.02), (0.385, 0.742, 0.03), (0.440, 0.724, 0.06), (0.500, 0.731, 0.07), (0.560, 0.724, 0.06),
    (0.615, 0.742, 0.03), (0.665, 0.773, -0.02), (0.612, 0.808, 0.03), (0.558, 0.826, 0.05), (0.500, 0.832, 0.06),
    (0.442, 0.826, 0.05), (0.388, 0.808, 0.03),
    # inner lips 60-67 (closed: 61/67, 62/66, 63/65 coincide)
    (0.352, 0.774, 0.00), (0.440, 0.777, 0.05), (0.500, 0.779, 0.06), (0.560, 0.777, 0.05), (0.648, 0.774, 0.00),
    (0.560, 0.777, 0.05), (0.500, 0.779, 0.06), (0.440, 0.777, 0.05),
], dtype=np.float64)
TEMPLATE_68 = _RAW_68 - np.array([0.5, 0.5, 0.0])  # [68, 3] centred

# Left-right partner of each landmark.
MIRROR_68 = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65]
)


def _half_curve(right_half: list[tuple[float, float]]) -> np.ndarray:
    """Mirror a right-to-centre point list (box coords) into a full right-to-left curve."""
    pts = np.array(right_half, dtype=np.float64)
    left = pts[:-1][::-1].copy() if abs(pts[-1, 0] - 0.5) < 1e-9 else pts[::-1].copy()
    left[:, 0] = 1.0 - left[:, 0]
    return np.vstack([pts, left])


def _with_depth(xy: np.ndarray, side: float, top: float) -> np.ndarray:
    """Give box-coordinate outline points a depth falling from `top` at the centre line to `side`."""
    z = top + (side - top) * np.clip(np.abs(xy[:, 0] - 0.5) / 0.5, 0, 1.2) ** 2
    return np.column_stack([xy[:, 0] - 0.5, xy[:, 1] - 0.5, z])


# Head outlines beyond the 68 points (box coords), each [k, 3] after centring.
_FOREHEAD = _half_curve([(1.0, 0.08), (0.985, -0.04), (0.945, -0.15), (0.875, -0.245), (0.78, -0.315),
                         (0.645, -0.36), (0.5, -0.375)])
_SKULL = _half_curve([(1.075, 0.45), (1.09, 0.22), (1.085, 0.0), (1.055, -0.18), (0.985, -0.345),
                      (0.87, -0.475), (0.70, -0.565), (0.5, -0.595)])
_EAR_RIGHT = np.array([(0.99, 0.15), (1.04, 0.11), (1.08, 0.15), (1.088, 0.27), (1.065, 0.39),
                       (1.025, 0.46), (0.985, 0.44)])
_BEARD_TOP = _half_curve([(0.93, 0.50), (0.80, 0.61), (0.66, 0.69), (0.5, 0.665)])
_LONG_HAIR_RIGHT = np.array([(1.08, 0.10), (1.16, 0.45), (1.20, 0.95), (1.16, 1.30), (0.95, 1.30),
                             (0.97, 0.75), (1.00, 0.35)])
EXTRA_NAMES = ("forehead", "skull", "ear_l", "ear_r", "beard_top", "hair_l", "hair_r", "hairline")
# Body outlines (box coords, no head rotation): neck and shoulders / clothing.
_NECK = np.array([(0.22, 0.75), (0.21, 1.10), (0.16, 1.38), (0.84, 1.38), (0.79, 1.10), (0.78, 0.75)])
_BODY = np.array([(-0.95, 2.2), (-0.85, 1.55), (-0.45, 1.33), (0.18, 1.24), (0.82, 1.24), (1.45, 1.33),
                  (1.85, 1.55), (1.95, 2.2)])

HAIR_STYLES = ("short", "buzz", "fringe", "long", "bun")

# AUs the renderer draws (shape here, shading in the renderer); others in the raw label files stay label-only.
RENDERED_AUS: tuple[int, ...] = (1, 2, 4, 6, 7, 9, 10, 12, 14, 15, 17, 23, 24, 25, 26)


def _au_basis() -> np.ndarray:
    """Landmark displacement per unit strength of each rendered AU, face units.  # [len(RENDERED_AUS), 68, 2]

    Entries are given for the image-left landmark (dx < 0 is outward) and mirrored; centre-line points once.
    """
    moves: dict[int, list[tuple[int, float, float]]] = {
        1: [(21, 0.003, -0.048), (20, 0.0, -0.032), (19, 0.0, -0.013)],
        2: [(17, 0.0, -0.048), (18, 0.0, -0.040), (19, 0.0, -0.024), (20, 0.0, -0.009)],
        4: [(21, 0.022, 0.036), (20, 0.012, 0.032), (19, 0.006, 0.025), (18, 0.0, 0.016), (17, 0.0, 0.008),
            (37, 0.0, 0.004), (38, 0.0, 0.004)],
        6: [(40, 0.0, -0.013), (41, 0.0, -0.013), (36, 0.0, -0.006), (37, 0.0, 0.002)],
        7: [(40, 0.0, -0.024), (41, 0.0, -0.024), (37, 0.0, 0.009), (38, 0.0, 0.009), (36, 0.0, -0.002)],
        9: [(21, 0.005, 0.012), (40, 0.0, -0.005), (39, 0.0, -0.003), (31, 0.0, -0.010), (32, 0.0, -0.010),
            (33, 0.0, -0.007)],
        10: [(50, 0.0, -0.034), (49, -0.003, -0.024), (51, 0.0, -0.031), (61, 0.0, -0.034), (62, 0.0, -0.033),
             (48, 0.0, -0.006), (60, 0.0, -0.008)],
        12: [(48, -0.030, -0.036), (60, -0.028, -0.035), (49, -0.012, -0.015), (59, -0.014, -0.013),
             (61, -0.010, -0.009), (67, -0.010, -0.007), (50, -0.004, -0.004), (58, -0.004, -0.005)],
        14: [(48, 0.012, -0.004), (60, 0.010, -0.004), (49, 0.004, 0.0), (59, 0.004, 0.0)],
        15: [(48, -0.004, 0.032), (60, -0.004, 0.030), (59, 0.0, 0.013), (49, 0.0, 0.008), (67, 0.0, 0.006),
             (61, 0.0, 0.005)],
        17: [(57, 0.0, -0.026), (58, 0.0, -0.023), (59, 0.0, -0.012), (66, 0.0, -0.012), (67, 0.0, -0.010),
             (8, 0.0, -0.012), (7, 0.0, -0.010), (6, 0.0, -0.004)],
        23: [(50, 0.0, 0.010), (51, 0.0, 0.011), (49, 0.0, 0.006), (58, 0.0, -0.012), (57, 0.0, -0.013),
             (59, 0.0, -0.006), (48, 0.010, 0.0), (60, 0.008, 0.0)],
        24: [(50, 0.0, 0.012), (51, 0.0, 0.013), (49, 0.0, 0.008), (58, 0.0, -0.015), (57, 0.0, -0.016),
             (59, 0.0, -0.008), (48, 0.004, 0.0)],
        25: [(61, 0.0, -0.006), (62, 0.0, -0.006), (67, 0.0, 0.024), (66, 0.0, 0.024), (59, 0.0, 0.014),
             (58, 0.0, 0.018), (57, 0.0, 0.018)],
        26: [(67, 0.0, 0.045), (66, 0.0, 0.046), (58, 0.0, 0.048), (57, 0.0, 0.048), (59, 0.0, 0.032),
             (48, 0.0, 0.010), (60, 0.0, 0.010), (61, 0.0, -0.004), (62, 0.0, -0.004),
             (8, 0.0, 0.070), (7, 0.0, 0.062), (6, 0.0, 0.042), (5, 0.0, 0.020), (4, 0.0, 0.006)],
    }
    basis = np.zeros((len(RENDERED_AUS), 68, 2))
    for k, au in enumerate(RENDERED_AUS):
        for idx, dx, dy in moves[au]:
            basis[k, idx] = (dx, dy)
            mirror = MIRROR_68[idx]
            if mirror != idx:
                basis[k, mirror] = (-dx, dy)
    return basis


AU_BASIS = _au_basis()  # [15, 68, 2]


@dataclass
class Identity:
    """One synthetic person: shape offsets, colours and style choices (all fixed across their frames)."""

    sex: str                                  # "F" / "M"
    shape: np.ndarray                         # [68 + extras, 3] face-unit points, neutral
    extra_slices: dict[str, slice]            # name -> rows of `shape` after the 68 landmarks
    skin: np.ndarray                          # [3] RGB 0..1
    lips: np.ndarray                          # [3]
    iris: np.ndarray                          # [3]
    hair: np.ndarray                          # [3]
    brow: np.ndarray                          # [3]
    clothes: np.ndarray                       # [3]
    background: np.ndarray                    # [3]
    hair_style: str
    brow_thickness: float                     # face units
    glasses: dict | None = None               # {"shape", "colour", "thickness", "size"}
    beard: float = 0.0                        # beard-shadow strength 0..1
    texture: np.ndarray = field(default_factory=lambda: np.zeros((16, 16), np.float32))  # [16, 16] skin blotches
    light: np.ndarray = field(default_factory=lambda: np.array([0.3, -0.5]))  # key light direction (x, y) in image


@dataclass
class Pose:
    """Head pose in degrees, scale in pixels per face unit, centre in pixels (of the landmark box centre)."""

    yaw: float
    pitch: float
    roll: float
    scale: float
    cx: float
    cy: float


@dataclass
class FaceGeometry:
    """A posed face in image pixels: what the renderer draws and the ground truth the corpus stores."""

    landmarks: np.ndarray            # [68, 2]
    extras: dict[str, np.ndarray]    # outline name -> [k, 2]
    neck: np.ndarray                 # [6, 2]
    body: np.ndarray                 # [8, 2]
    axes: np.ndarray                 # [2, 2] columns: image vector of one face unit right / down
    depth: np.ndarray                # [68] rotated z (for occlusion-aware drawing order)


def _skin_tone(rng: np.random.Generator) -> np.ndarray:
    """Wide skin-tone range: a light-to-deep ramp with hue jitter.  # [3]"""
    t = rng.beta(1.1, 1.1)
    light, deep = np.array([0.96, 0.80, 0.70]), np.array([0.36, 0.23, 0.16])
    tone = light + (deep - light) * t
    tone *= 1.0 + rng.normal(0, 0.03, 3) + np.array([0.02, 0.0, -0.02]) * rng.normal()
    return np.clip(tone, 0.05, 1.0)


def _hair_colour(rng: np.random.Generator) -> np.ndarray:
    palette = np.array([
        (0.06, 0.05, 0.05), (0.16, 0.11, 0.08), (0.30, 0.20, 0.12), (0.45, 0.28, 0.15),
        (0.62, 0.48, 0.30), (0.78, 0.66, 0.45), (0.55, 0.55, 0.55), (0.42, 0.16, 0.08),
    ])
    weights = np.array([0.28, 0.24, 0.16, 0.08, 0.07, 0.06, 0.06, 0.05])
    return np.clip(palette[rng.choice(len(palette), p=weights)] * rng.uniform(0.9, 1.1, 3), 0, 1)


def _luma(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114]))


def sample_identity(rng: np.random.Generator, sex: str) -> Identity:
    """Draw a person: face shape, colours, hair, glasses, beard shadow, lighting direction."""
    skin = _skin_tone(rng)
    hair = _hair_colour(rng)
    # Brows darker than hair and at least 0.25 luma below the skin, or dlib loses them on low-contrast frames.
    brow = hair * rng.uniform(0.6, 0.85)
    gap = _luma(skin) - _luma(brow)
    if gap < 0.25:
        brow = brow * max(0.05, (_luma(skin) - 0.25) / max(_luma(brow), 1e-3))
    lips = np.clip(skin * np.array([0.92, 0.62, 0.62]) * rng.uniform(0.85, 1.0) + np.array([0.06, 0, 0]), 0, 1)
    if sex == "F" and rng.random() < 0.4:  # lipstick
        lips = np.clip(np.array([0.62, 0.16, 0.22]) * rng.uniform(0.7, 1.1, 3), 0, 1)
    iris_palette = np.array([(0.25, 0.15, 0.08), (0.12, 0.08, 0.05), (0.30, 0.42, 0.55), (0.32, 0.40, 0.25)])
    iris = iris_palette[rng.choice(4, p=[0.45, 0.3, 0.15, 0.1])]
    style_p = [0.22, 0.03, 0.25, 0.35, 0.15] if sex == "F" else [0.55, 0.25, 0.12, 0.06, 0.02]
    hair_style = str(rng.choice(HAIR_STYLES, p=style_p))
    glasses = None
    if rng.random() < 0.22:
        glasses = {
            "shape": str(rng.choice(["round", "rect"])),
            "colour": np.array([(0.05, 0.05, 0.05), (0.25, 0.15, 0.08), (0.6, 0.6, 0.62)][rng.integers(3)]),
            "thickness": float(rng.uniform(0.010, 0.020)),
            "size": float(rng.uniform(1.15, 1.35)),
        }
    beard = float(rng.uniform(0.25, 0.6)) if sex == "M" and rng.random() < 0.3 else 0.0
    clothes = rng.uniform(0.1, 0.8, 3)
    background = rng.uniform(0.35, 0.85) * np.clip(1 + rng.normal(0, 0.08, 3), 0.7, 1.3)
    shape, slices = identity_points(rng, sex, hair_style)
    texture = rng.normal(0, 1, (16, 16)).astype(np.float32)
    light = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.9, -0.2)])
    return Identity(
        sex=sex, shape=shape, extra_slices=slices, skin=skin, lips=lips, iris=iris, hair=hair,
        brow=np.clip(brow, 0, 1), clothes=clothes, background=np.clip(background, 0, 1), hair_style=hair_style,
        brow_thickness=float(rng.uniform(0.022, 0.036) * (1.15 if sex == "M" else 1.0)), glasses=glasses,
        beard=beard, texture=texture, light=light / np.linalg.norm(light),
    )


def _hairline(rng: np.random.Generator, style: str) -> np.ndarray:
    """Lower edge of the front hair, right temple to left temple (box coords).  # [9, 2]"""
    top = {"fringe": rng.uniform(-0.17, -0.12), "buzz": rng.uniform(-0.33, -0.27)}.get(
        style, rng.uniform(-0.27, -0.19))
    temple = rng.uniform(0.02, 0.12)
    xs = np.array([1.0, 0.96, 0.88, 0.74, 0.5, 0.26, 0.12, 0.04, 0.0])
    u = np.abs(xs - 0.5) / 0.5                               # 0 centre .. 1 sides
    ys = top + (temple - top) * u ** 2.5
    if style == "fringe":
        ys = ys + rng.uniform(-0.02, 0.02) * np.sin(np.arange(9) * 1.9)
    return np.column_stack([xs, ys])


def identity_points(rng: np.random.Generator, sex: str, hair_style: str) -> tuple[np.ndarray, dict[str, slice]]:
    """Neutral face-unit points of one person: 68 landmarks plus outlines.  # [68 + E, 3]"""
    p = TEMPLATE_68.copy()
    y = p[:, 1]
    # Local proportions (centred coordinates; eyes near y = -0.3, mouth near y = 0.28).
    eyes = {0: np.arange(36, 42), 1: np.arange(42, 48)}
    eye_scale = rng.normal(1.0, 0.07)
    spacing = rng.normal(0.0, 0.012)
    tilt = rng.normal(0.0, 0.010)
    for side, idx in eyes.items():
        c = p[idx, :2].mean(0)
        p[idx, :2] = c + (p[idx, :2] - c) * eye_scale
        sign = -1 if side == 0 else 1
        p[idx, 0] += sign * spacing
        p[idx, 1] -= tilt * (np.abs(p[idx, 0]) - np.abs(c[0])) / 0.1
    brows = np.arange(17, 27)
    p[brows, 1] += rng.normal(0, 0.012)
    p[[18, 19, 24, 25], 1] -= rng.normal(0.0, 0.008)
    p[brows, 0] *= rng.normal(1.0, 0.03)
    nose = np.arange(30, 36)
    p[nose, 1] += rng.normal(0, 0.018)
    p[29, 1] += 0.5 * (p[30, 1] - TEMPLATE_68[30, 1])
    p[31:36, 0] *= rng.normal(1.0, 0.08)
    mouth = np.arange(48, 68)
    p[mouth, 0] *= rng.normal(1.0, 0.05)
    p[mouth, 1] += rng.normal(0, 0.012)
    line = p[[60, 64], 1].mean()
    up, low = np.array([49, 50, 51, 52, 53]), np.array([55, 56, 57, 58, 59])
    p[up, 1] = line + (p[up, 1] - line) * rng.normal(1.0, 0.15)
    p[low, 1] = line + (p[low, 1] - line) * rng.normal(1.0, 0.15)
    # Jaw: width of the lower face and chin length.
    jaw = np.arange(0, 17)
    w = np.clip((y[jaw] + 0.2) / 0.7, 0, 1)
    p[jaw, 0] *= 1 + (rng.normal(1.0, 0.05) - 1) * w
    p[4:13, 1] += rng.normal(0, 0.02) * np.clip((p[4:13, 1] - 0.2) / 0.3, 0, 1)
    p += np.column_stack([rng.normal(0, 0.003, (68, 2)), np.zeros(68)])
    for upper, lower in ((61, 67), (62, 66), (63, 65)):  # neutral lips stay closed
        p[[upper, lower], 1] = p[[upper, lower], 1].mean()
    # Whole-face proportions.
    p[:, 0] *= rng.normal(1.0, 0.035)
    p[:, 1] *= rng.normal(1.0, 0.035)

    hl = _hairline(rng, hair_style)
    hair_l = _LONG_HAIR_RIGHT.copy()
    hair_l[:, 0] = 1.0 - hair_l[:, 0]
    outlines = {
        "forehead": _with_depth(_FOREHEAD, -0.42, -0.08),
        "skull": _with_depth(_SKULL, -0.45, -0.12),
        "ear_l": _with_depth(np.column_stack([1.0 - _EAR_RIGHT[:, 0], _EAR_RIGHT[:, 1]]), -0.55, -0.55),
        "ear_r": _with_depth(_EAR_RIGHT, -0.55, -0.55),
        "beard_top": _with_depth(_BEARD_TOP, -0.3, 0.05),
        "hair_l": _with_depth(hair_l, -0.6, -0.6),
        "hair_r": _with_depth(_LONG_HAIR_RIGHT, -0.6, -0.6),
        "hairline": _with_depth(hl, -0.42, -0.06),
    }
    sx = p[16, 0] - p[0, 0]  # keep outlines attached to the scaled jaw width
    rows, slices, start = [], {}, 68
    for name in EXTRA_NAMES:
        pts = outlines[name].copy()
        pts[:, 0] *= sx
        rows.append(pts)
        slices[name] = slice(start, start + len(pts))
        start += len(pts)
    return np.vstack([p] + rows), slices


# Expressions are drawn larger than life: the CPU demo model reads a 64 px copy of the aligned face, where the
# natural displacements above (0.01-0.05 face units) would move landmarks by well under a pixel.
EXPRESSION_GAIN = 1.8


def expression_offsets(strengths: np.ndarray) -> np.ndarray:
    """Landmark displacement for AU strengths aligned with RENDERED_AUS (0..1).  # [68, 2]"""
    return EXPRESSION_GAIN * np.tensordot(np.asarray(strengths, dtype=np.float64), AU_BASIS, axes=1)


def _constrain(lm: np.ndarray) -> None:
    """Keep lips and lids physically ordered after adding displacements (in place, face units)."""
    for upper, lower in ((61, 67), (62, 66), (63, 65)):
        if lm[lower, 1] < lm[upper, 1]:
            lm[[upper, lower], 1] = lm[[upper, lower], 1].mean()
    for outer, inner in ((50, 61), (51, 62), (52, 63)):
        lm[outer, 1] = min(lm[outer, 1], lm[inner, 1] - 0.008)
    for outer, inner in ((58, 67), (57, 66), (56, 65)):
        lm[outer, 1] = max(lm[outer, 1], lm[inner, 1] + 0.010)
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        lm[lower, 1] = max(lm[lower, 1], lm[upper, 1] + 0.006)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    a, b, c = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ rx @ ry


_PIVOT = np.array([0.0, 0.0, -0.35])  # rotate about a point inside the head, not on the face surface


def pose_face(identity: Identity, strengths: np.ndarray, pose: Pose) -> FaceGeometry:
    """Apply expression and head pose; project orthographically to pixels."""
    pts = identity.shape.copy()                              # [68 + E, 3]
    pts[:68, :2] += expression_offsets(strengths)
    _constrain(pts[:68])
    # The chin outline of the beard/jaw follows the jaw landmarks (already moved); the rest is rigid.
    rot = _rotation(pose.yaw, pose.pitch, pose.roll)
    rotated = (pts - _PIVOT) @ rot.T + _PIVOT                # [68 + E, 3]
    centre = np.array([pose.cx, pose.cy])
    xy = rotated[:, :2] * pose.scale + centre                # [68 + E, 2]
    extras = {name: xy[s] for name, s in identity.extra_slices.items()}
    # Body: scale and translate with the head, a fraction of its roll, no yaw/pitch.
    body_rot = _rotation(0.0, 0.0, 0.3 * pose.roll)[:2, :2]
    neck_box = (_NECK - 0.5) @ body_rot.T * pose.scale + centre
    body_box = (_BODY - 0.5) @ body_rot.T * pose.scale + centre
    axes = rot[:2, :2] * pose.scale                          # [2, 2] columns = image of face x / y unit
    return FaceGeometry(landmarks=xy[:68].copy(), extras=extras, neck=neck_box, body=body_box,
                        axes=axes, depth=rotated[:68, 2].copy())
