"""Drawing of the demo corpus faces: soft polygons, shading and AU cues on a `Canvas` (see `canvas.py`).

What dlib needs to detect the face: a darker rim around the face oval, dark brow and eye bands, nose shading.
AU cues are drawn next to the landmarks that anchor each AU's heatmap (see au_tables.ACTION_UNITS).
"""
from __future__ import annotations

import cv2
import numpy as np

from fgnet_core.democorpus.canvas import Canvas
from fgnet_core.democorpus.face import MIRROR_68, RENDERED_AUS, FaceGeometry, Identity

__all__ = ["render_face"]

_CREASE_GAIN = 2.0  # wrinkle darkness scale: AU creases must survive blur, JPEG and a 64 px copy


def _curve(pts: np.ndarray, n: int = 12) -> np.ndarray:
    """Smooth quadratic-Bezier-like resampling through control points.  # [n, 2]"""
    pts = np.asarray(pts, np.float64)
    if len(pts) == 2:
        t = np.linspace(0, 1, n)[:, None]
        return pts[0] * (1 - t) + pts[1] * t
    t = np.linspace(0, 1, n)[:, None]
    if len(pts) == 3:
        return (1 - t) ** 2 * pts[0] + 2 * (1 - t) * t * pts[1] + t ** 2 * pts[2]
    d = np.r_[0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    u = np.linspace(0, d[-1], n)
    return np.column_stack([np.interp(u, d, pts[:, 0]), np.interp(u, d, pts[:, 1])])


class _Face:
    """Helpers bound to one posed face: points in face units relative to landmarks, mirrored pairs."""

    def __init__(self, geom: FaceGeometry):
        self.lm = geom.landmarks
        self.ax = geom.axes
        self.extras = geom.extras
        self.roll = float(np.degrees(np.arctan2(geom.axes[1, 0], geom.axes[0, 0])))  # in-plane angle for ellipses
        self.s = float(np.sqrt(abs(np.linalg.det(geom.axes))))  # pixels per face unit

    def p(self, idx, dx=0.0, dy=0.0) -> np.ndarray:
        """Landmark (or mean of landmarks) plus an offset in face units, in pixels.  # [2]"""
        base = self.lm[list(idx)].mean(0) if isinstance(idx, (list, tuple)) else self.lm[idx]
        return base + self.ax @ np.array([dx, dy])

    def both(self, idx: int, offsets) -> list[np.ndarray]:
        """The same construction on each side: offsets [(dx, dy), ...] relative to idx and its mirror."""
        left = np.array([self.p(idx, dx, dy) for dx, dy in offsets])
        right = np.array([self.p(int(MIRROR_68[idx]), -dx, dy) for dx, dy in offsets])
        return [left, right]

    def iod(self) -> float:
        return float(np.linalg.norm(self.lm[42] - self.lm[39]))


def _ring(centre, ax, rx, ry, rect: bool) -> np.ndarray:
    """Glasses rim outline around `centre` (face-unit radii rx, ry).  # [k, 2]"""
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    if rect:  # superellipse: a rounded rectangle
        c, s = np.sign(c) * np.abs(c) ** 0.45, np.sign(s) * np.abs(s) ** 0.45
    return centre + np.column_stack([rx * c, ry * s]) @ ax.T


def _draw_head(cv: Canvas, f: _Face, idn: Identity, g: FaceGeometry, skin: np.ndarray) -> None:
    s, ex = f.s, g.extras
    hair = idn.hair
    # Body, neck, hair behind the head.
    cv.fill_flat([g.body], idn.clothes)
    cv.fill_flat([g.neck], skin * 0.86)
    cv.ellipse(f.p(8, 0, 0.0), (0.26 * s, 0.09 * s), f.roll, 0.35, 0.05 * s)
    if idn.hair_style == "long":
        cv.fill_flat([ex["hair_l"], ex["hair_r"]], hair * 0.8)
    if idn.hair_style == "bun":
        top = ex["skull"][len(ex["skull"]) // 2]
        cv.fill_flat([cv2.ellipse2Poly(tuple(int(v) for v in top), (int(0.2 * s), int(0.15 * s)), 0, 0, 360, 15)],
                     hair * 0.9)
    if idn.hair_style != "buzz":
        cv.fill_flat([ex["skull"]], hair * 0.85)
    for ear in ("ear_l", "ear_r"):
        cv.fill([ex[ear]], skin * 0.93, 1.0, 0.8)
        c = ex[ear].mean(0)
        cv.ellipse(c, (0.02 * s, 0.07 * s), f.roll, 0.22, 0.02 * s)
    # Face oval: skin fill, then a darker rim (the strongest cue for dlib's detector) and skin blotches.
    oval = np.vstack([g.landmarks[:17], ex["forehead"]])
    m, box = cv.mask([oval], 0.8)
    cv.blend(m, box, skin)
    if m is not None:
        inner = cv._soften(m, 0.09 * s)
        rim = np.clip(2.0 * (1.0 - inner), 0, 1) * m
        x0, y0, x1, y1 = box
        # Identity blotches: texture coordinates follow the face (dst pixel -> texture cell).
        k = idn.texture.shape[0] / 1.5
        inv = np.linalg.inv(f.ax) * k
        origin = np.array([x0, y0]) - g.landmarks[:17].mean(0)
        warp = np.column_stack([inv, inv @ origin + 0.75 * k]).astype(np.float32)
        tex = cv2.warpAffine(idn.texture, warp, (x1 - x0, y1 - y0),
                             flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
        roi = cv.img[y0:y1, x0:x1]
        roi *= (1.0 - 0.38 * rim + 0.03 * tex * m)[..., None]


def _draw_structure(cv: Canvas, f: _Face, idn: Identity) -> None:
    """Static shading: eye sockets, nose, cheeks, under-lip, beard shadow."""
    s, lm = f.s, f.lm
    for brow, eye in ((range(17, 22), (39, 40, 41, 36)), (range(22, 27), (45, 46, 47, 42))):
        top = np.array([f.p(i, 0, 0.03) for i in brow])
        low = np.array([f.p(i, 0, 0.02) for i in eye])
        cv.darken([np.vstack([top, low])], 0.16, blur=0.03 * s)
    for side in (-1, 1):
        n_top, n_bot, eye_in, wing = (f.p(27, side * 0.03, 0.01), f.p(30, side * 0.035, 0.0),
                                      f.p(39 if side < 0 else 42, side * -0.015, 0.02), f.p(31 if side < 0 else 35))
        cv.darken([np.array([n_top, eye_in, wing, n_bot])], 0.10, blur=0.025 * s)
    cv.darken([np.array([f.p(27, 0, 0.03), f.p(30, 0, -0.02)])], -0.14, blur=0.012 * s, lines=0.025 * s, closed=False)
    cv.ellipse(f.p(30, 0, -0.005), (0.022 * s, 0.018 * s), f.roll, -0.15, 0.012 * s)
    for left, wing in ((True, 31), (False, 35)):
        sx = -1 if left else 1
        alar = _curve([f.p(wing, -sx * 0.005, -0.05), f.p(wing, sx * 0.03, -0.015), f.p(wing, sx * 0.01, 0.018),
                       f.p(32 if left else 34, 0, 0.006)], 10)
        cv.darken([alar], 0.32, blur=0.007 * s, lines=0.012 * s, closed=False)
        cv.ellipse(f.p([wing, 32 if left else 34], -sx * 0.004, -0.004), (0.021 * s, 0.010 * s),
                   f.roll + sx * 12, 0.6, 0.005 * s)
    cv.ellipse(f.p(33, 0, 0.022), (0.07 * s, 0.014 * s), f.roll, 0.13, 0.012 * s)
    for ph in (-1, 1):
        cv.darken([np.array([f.p(33, ph * 0.012, 0.02), f.p(51, ph * 0.02, -0.004)])], 0.07, blur=0.006 * s,
                  lines=0.01 * s, closed=False)
    for jaw in (2, 14):
        cv.ellipse(f.p(jaw, 0.09 if jaw == 2 else -0.09, 0.07), (0.07 * s, 0.11 * s), f.roll, 0.08, 0.05 * s)
    cv.ellipse(f.p(57, 0, 0.035), (0.07 * s, 0.016 * s), f.roll, 0.12, 0.012 * s)
    cv.ellipse(f.p(8, 0, -0.07), (0.05 * s, 0.03 * s), f.roll, -0.06, 0.02 * s)
    if idn.beard > 0:
        region = np.vstack([lm[2:15], f.extras["beard_top"]])
        cv.fill([region], idn.hair * 0.45, 0.45 * idn.beard, 0.02 * s)


def _draw_au_cues(cv: Canvas, f: _Face, a: dict[int, float]) -> None:
    """Wrinkles, furrows and bulges of each AU, next to that AU's heatmap anchors."""
    s = f.s
    iod = f.iod() / s  # inter-ocular distance (au_tables' definition) in face units
    w = max(1.25, 0.011 * s)  # at half-resolution drawing (DISFA-like) a crease must still survive the blur

    def crease(pts, amount, width=w, light=0.45):
        """A skin fold: a dark line with a faint highlight just below it."""
        if amount <= 0.01:
            return
        amount = min(0.85, _CREASE_GAIN * amount)
        cv.darken([pts], amount, blur=0.005 * s, lines=width, closed=False)
        if light:
            cv.darken([pts + f.ax @ np.array([0.0, 0.012])], -amount * light * 0.8, blur=0.012 * s,
                      lines=1.3 * width, closed=False)

    if a.get(1, 0) > 0:  # inner brow raise: central forehead wrinkles
        for k in range(3):
            half = 0.09 - 0.015 * k
            y = -0.06 - 0.04 * k
            mid = [21, 22]
            crease(_curve([f.p(mid, -half, y + 0.012), f.p(mid, 0, y - 0.008), f.p(mid, half, y + 0.012)]),
                   0.30 * a[1])
    if a.get(2, 0) > 0:  # outer brow raise: lateral forehead wrinkles
        for k in range(2):
            for pts in f.both(18, [(-0.06, -0.055 - 0.03 * k), (0.0, -0.07 - 0.03 * k), (0.06, -0.06 - 0.03 * k)]):
                crease(_curve(pts), 0.28 * a[2])
    if a.get(4, 0) > 0:  # brow lowerer: glabella furrows, darker brow shadow
        for pts in f.both(21, [(0.030, -0.015), (0.037, 0.030), (0.045, 0.065)]):
            crease(_curve(pts), 0.38 * a[4], light=0.3)
        crease(_curve([f.p(27, -0.03, -0.005), f.p(27, 0, 0.004), f.p(27, 0.03, -0.005)]), 0.15 * a[4])
        for c in (f.p(19, 0, 0.045), f.p(24, 0, 0.045)):
            cv.ellipse(c, (0.08 * s, 0.028 * s), f.roll, 0.12 * a[4], 0.015 * s)
    if a.get(6, 0) > 0:  # cheek raiser: cheek bulge, infraorbital furrow, crow's feet
        for eye, idx in ((list(range(36, 42)), 41), (list(range(42, 48)), 46)):
            c = f.p(eye, 0, iod)
            cv.ellipse(c, (0.075 * s, 0.045 * s), f.roll, -0.10 * a[6], 0.035 * s)
            cv.ellipse(f.p(eye, 0, iod + 0.07), (0.10 * s, 0.028 * s), f.roll, 0.16 * a[6], 0.018 * s)
            lid = _curve([f.p(eye[0] if idx == 41 else eye[3], 0, 0.025), f.p(eye, 0, 0.07),
                          f.p(eye[3] if idx == 41 else eye[0], 0, 0.025)])
            crease(lid, 0.30 * a[6])
        for pts in f.both(36, [(-0.012, 0.0), (-0.05, -0.018)]):
            crease(pts, 0.32 * a[6], light=0)
        for dy in (0.008, 0.022):
            for pts in f.both(36, [(-0.012, dy), (-0.052, dy * 1.6)]):
                crease(pts, 0.32 * a[6], light=0)
    if a.get(7, 0) > 0:  # lid tightener: lower-lid bulge under tense lids
        for lower in ((36, 41, 40, 39), (45, 46, 47, 42)):
            pts = np.array([f.p(i, 0, 0.014) for i in lower])
            crease(_curve(pts, 10), 0.38 * a[7], light=0.6)
        for upper in ((37, 38), (44, 43)):
            cv.ellipse(f.p(list(upper), f.roll, -0.012), (0.05 * s, 0.012 * s), f.roll, 0.12 * a[7], 0.008 * s)
    if a.get(9, 0) > 0:  # nose wrinkler: wrinkles across the nose root and bunny lines
        for k in range(2):
            y = 0.004 + 0.032 * k
            crease(_curve([f.p(27, -0.036, y + 0.008), f.p(27, 0, y - 0.004), f.p(27, 0.036, y + 0.008)]),
                   0.36 * a[9], width=0.8 * w)
        for pts in f.both(39, [(0.035, 0.015), (0.07, 0.045)]):
            crease(pts, 0.32 * a[9])
    fold = max(0.8 * a.get(10, 0), a.get(12, 0))
    if fold > 0:  # nasolabial folds (upper lip raiser, lip corner puller)
        for pts in f.both(31, [(-0.015, -0.012), (-0.06, 0.07), (-0.07 - 0.03 * a.get(12, 0), 0.20)]):
            crease(_curve(pts), 0.30 * fold, width=1.2 * w)
    if a.get(10, 0) > 0:
        cv.ellipse(f.p(51, 0, -0.03), (0.07 * s, 0.018 * s), f.roll, 0.10 * a[10], 0.012 * s)
    if a.get(12, 0) > 0:  # smile creases at the corners, cheek highlight
        for pts in f.both(48, [(-0.012, -0.028), (-0.028, -0.004), (-0.016, 0.022)]):
            crease(_curve(pts), 0.25 * a[12], light=0.2)
        for c in (f.p(48, -0.07, -0.07), f.p(54, 0.07, -0.07)):
            cv.ellipse(c, (0.05 * s, 0.04 * s), f.roll, -0.08 * a[12], 0.02 * s)
    if a.get(14, 0) > 0:  # dimpler: dimples beside the corners
        for pts in f.both(48, [(-0.03, -0.02), (-0.042, 0.0), (-0.032, 0.02)]):
            crease(_curve(pts), 0.40 * a[14], light=0.3)
        for c in (f.p(48, 0.004, 0), f.p(54, -0.004, 0)):
            cv.ellipse(c, (0.01 * s, 0.01 * s), f.roll, 0.35 * a[14], 0.005 * s)
    if a.get(15, 0) > 0:  # lip corner depressor: marionette lines
        for pts in f.both(48, [(-0.004, 0.01), (-0.02, 0.045), (-0.028, 0.08)]):
            crease(_curve(pts), 0.32 * a[15], light=0.3)
    if a.get(17, 0) > 0:  # chin raiser: chin boss texture and a deep mentolabial furrow
        chin = f.p([56, 58], 0, 0.5 * iod)  # the AU17 anchor
        cv.ellipse(chin + f.ax @ np.array([0.0, -0.01]), (0.06 * s, 0.035 * s), f.roll, -0.14 * a[17], 0.015 * s)
        for d in ((-0.03, 0.0), (0.0, 0.012), (0.028, -0.004), (-0.012, 0.028), (0.016, 0.03)):
            cv.ellipse(chin + f.ax @ np.array(d), (0.011 * s, 0.009 * s), f.roll, 0.22 * a[17], 0.006 * s)
        cv.ellipse(f.p(57, 0, -0.02), (0.04 * s, 0.012 * s), f.roll, -0.18 * a[17], 0.008 * s)
        crease(_curve([f.p(58, -0.02, 0.035), f.p(57, 0, 0.05), f.p(56, 0.02, 0.035)]), 0.40 * a[17], width=1.2 * w)
    if a.get(24, 0) > 0:  # lip pressor: skin bulges above and below the pressed lips
        crease(_curve([f.p(49, -0.01, -0.03), f.p(51, 0, -0.04), f.p(53, 0.01, -0.03)]), 0.25 * a[24])
        crease(_curve([f.p(59, -0.01, 0.028), f.p(57, 0, 0.036), f.p(55, 0.01, 0.028)]), 0.28 * a[24])
    if a.get(23, 0) > 0:  # lip tightener: a tight ring at the vermilion border
        ring = np.array([f.p(i, 0, -0.006 if i <= 54 else 0.006) for i in range(48, 60)])
        cv.darken([ring], 0.25 * a[23], blur=0.004 * s, lines=0.9 * w)


def _draw_mouth(cv: Canvas, f: _Face, idn: Identity, skin: np.ndarray, a: dict[int, float]) -> None:
    s, lm = f.s, f.lm
    blanch = min(1.0, 0.35 * a.get(23, 0) + 0.4 * a.get(24, 0))
    lips = idn.lips * (1 - blanch) + skin * 0.95 * blanch
    cv.fill([lm[48:60]], lips, 0.9, 0.6)
    cv.fill([lm[[48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60]]], lips * 0.88, 0.6, 0.6)
    gap = np.linalg.norm(f.lm[[67, 66, 65]] - f.lm[[61, 62, 63]], axis=1).max() / s
    if gap > 0.006:
        inner = lm[60:68]
        m, box = cv.mask([inner], 0.5)
        cv.blend(m, box, (0.14, 0.05, 0.05), 0.95)
        if m is not None:  # upper teeth: a band under the upper lip, clipped to the opening
            depth = min(gap, 0.028)
            upper = np.vstack([lm[60:65], lm[64:59:-1] + f.ax @ np.array([0.0, depth])])
            teeth = np.zeros_like(m)
            cv2.fillPoly(teeth, [np.round((upper - box[:2]) * 8).astype(np.int32)], 1.0, cv2.LINE_8, 3)
            cv.blend(cv2.GaussianBlur(teeth, (0, 0), 0.5) * m, box, (0.86, 0.83, 0.76), 0.9)
    line = lm[[48, 60, 61, 62, 63, 64, 54]]
    cv.darken([line], 0.45 + 0.25 * a.get(24, 0), blur=0.004 * s, lines=max(1.0, 0.010 * s), closed=False)
    if gap <= 0.006:
        cv.ellipse(f.p(57, 0, -0.022), (0.035 * s, 0.01 * s), f.roll, -0.12, 0.008 * s)
    for c in (48, 54):
        cv.ellipse(lm[c], (0.008 * s, 0.008 * s), f.roll, 0.3, 0.004 * s)


def _draw_eyes(cv: Canvas, f: _Face, idn: Identity, gaze: np.ndarray) -> None:
    s, lm = f.s, f.lm
    for idx in (np.arange(36, 42), np.arange(42, 48)):
        eye = lm[idx]
        m, box = cv.mask([eye], 0.5)
        if m is None:
            continue
        cv.blend(m, box, (0.86, 0.84, 0.80), 1.0)
        width = np.linalg.norm(eye[3] - eye[0])
        c = eye.mean(0) + f.ax @ gaze
        x0, y0, x1, y1 = box
        r = 0.36 * width
        ir = np.zeros_like(m)
        cv2.circle(ir, (int(round((c[0] - x0) * 8)), int(round((c[1] - y0) * 8))), int(r * 8), 1.0, -1,
                   cv2.LINE_AA, 3)
        cv.blend(ir * m, box, idn.iris, 1.0)
        pu = np.zeros_like(m)
        cv2.circle(pu, (int(round((c[0] - x0) * 8)), int(round((c[1] - y0) * 8))), int(0.42 * r * 8), 1.0, -1,
                   cv2.LINE_AA, 3)
        cv.blend(pu * m, box, (0.03, 0.03, 0.03), 1.0)
        cv.ellipse(c + np.array([-0.3, -0.3]) * r, (0.18 * r, 0.18 * r), f.roll, -0.6, 0.3)
        upper = eye[[0, 1, 2, 3]]
        cv.darken([upper], 0.75, blur=0.004 * s, lines=max(1.0, (0.017 if idn.sex == "F" else 0.013) * s),
                  closed=False)
        cv.darken([eye[[3, 4, 5, 0]]], 0.28, blur=0.003 * s, lines=max(1.0, 0.007 * s), closed=False)
        crease = _curve(np.array([eye[0], eye[1], eye[2], eye[3]]) + f.ax @ np.array([0.0, -0.025]), 10)
        cv.darken([crease], 0.22, blur=0.006 * s, lines=max(1.0, 0.008 * s), closed=False)


def _draw_brows(cv: Canvas, f: _Face, idn: Identity) -> None:
    profile = np.array([0.55, 0.85, 1.0, 1.0, 0.95]) * idn.brow_thickness
    for idx in (np.arange(17, 22), np.arange(26, 21, -1)):
        pts = _curve(f.lm[idx], 12)
        th = np.interp(np.linspace(0, 4, 12), np.arange(5), profile) * f.s
        tang = np.gradient(pts, axis=0)
        normal = np.column_stack([tang[:, 1], -tang[:, 0]])
        normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-9
        if normal[:, 1].mean() > 0:
            normal = -normal  # point up in the image
        upper = pts + normal * (0.30 * th)[:, None]
        lower = pts - normal * (0.70 * th)[:, None]
        cv.fill([np.vstack([upper, lower[::-1]])], idn.brow, 0.92, 0.6)


def _draw_glasses(cv: Canvas, f: _Face, gl: dict) -> None:
    s = f.s
    rims = []
    for eye, temple in ((list(range(36, 42)), 0), (list(range(42, 48)), 16)):
        c = f.p(eye, 0, -0.004)
        rx = gl["size"] * 0.5 * np.linalg.norm(f.lm[eye[3]] - f.lm[eye[0]]) / s
        rims.append(_ring(c, f.ax, rx, 0.72 * rx, gl["shape"] == "rect"))
    for rim in rims:
        cv.darken([rim], -0.06, blur=0.5)
    t = max(1.0, gl["thickness"] * s)
    bridge = _curve([rims[0][0], f.p(27, 0, -0.005), rims[1][20]])
    temples = [np.array([rims[0][20], f.p(0, 0.01, -0.03)]), np.array([rims[1][0], f.p(16, -0.01, -0.03)])]
    m, box = cv.mask(rims + [bridge] + temples, 0.5, lines=t, closed=False)
    cv.blend(m, box, gl["colour"], 0.95)


def render_face(idn: Identity, g: FaceGeometry, strengths: np.ndarray, backdrop: np.ndarray, gaze: np.ndarray,
                exposure: float = 1.0) -> np.ndarray:
    """Draw one face over `backdrop` [H, W, 3] (float RGB, consumed). Returns float32 RGB [H, W, 3]."""
    a = {au: float(v) for au, v in zip(RENDERED_AUS, strengths) if v > 0.01}
    cv = Canvas(backdrop)
    f = _Face(g)
    skin = np.asarray(idn.skin, np.float32)
    _draw_head(cv, f, idn, g, skin)
    _draw_structure(cv, f, idn)
    _draw_au_cues(cv, f, a)
    _draw_mouth(cv, f, idn, skin, a)
    _draw_eyes(cv, f, idn, gaze)
    _draw_brows(cv, f, idn)
    # Hair over the forehead: the skull outline down to the hairline.
    skull = g.extras["skull"]
    if idn.hair_style in ("short", "buzz"):
        skull = skull[1:-1]
    front = np.vstack([skull, g.extras["hairline"][::-1]])
    cv.fill([front], idn.hair, 0.5 if idn.hair_style == "buzz" else 1.0, 0.9)
    if idn.glasses:
        _draw_glasses(cv, f, idn.glasses)
    # Key light across the head (inside its soft outline, computed at quarter size); the far side falls off.
    head = np.vstack([g.extras["skull"], g.landmarks[16::-1]])
    box = cv._box(np.vstack([head, g.neck]), 0.3 * f.s)
    if box is not None:
        x0, y0, x1, y1 = box
        q = 4.0
        small = np.zeros((int(np.ceil((y1 - y0) / q)), int(np.ceil((x1 - x0) / q))), np.uint8)
        cv2.fillPoly(small, [np.round((p - (x0, y0)) / q * 8).astype(np.int32) for p in (head, g.neck)], 255,
                     cv2.LINE_AA, 3)
        m = cv2.GaussianBlur(small.astype(np.float32) * (1 / 255.0), (0, 0), 0.12 * f.s / q)
        cx, cy = g.landmarks[:17].mean(0)
        gx = ((np.arange(small.shape[1], dtype=np.float32) * q + x0 - cx) / f.s)[None, :]
        gy = ((np.arange(small.shape[0], dtype=np.float32) * q + y0 - cy) / f.s)[:, None]
        light = 1.0 + np.clip(0.22 * (gx * idn.light[0] + gy * idn.light[1]), -0.3, 0.25) * m
        light = cv2.resize(light, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        cv.img[y0:y1, x0:x1] *= light[..., None]
    img = cv.img
    img *= exposure
    return img
