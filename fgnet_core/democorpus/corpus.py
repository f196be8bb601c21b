"""Demo corpus: procedural faces with known landmarks and AU labels, written in the RAW BP4D and DISFA layouts.

BP4D and DISFA are licensed and never shipped. The demo corpus stands in for them so the project's real
ingestion, alignment, training and evaluation code runs end to end: real subject IDs from the official 3-fold
split, raw file layouts (BP4D frame folders + AU_OCC CSVs with 9 = not coded and label rows without images;
DISFA MJPG videos + per-AU intensity files), AU vectors that follow the real prevalence and co-occurrence
(`au_stats`), and the renderer's true 68 landmarks for measuring the landmark detector.
Deterministic: the same seed and library versions give the same bytes.
"""
from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from fgnet_core.democorpus import au_stats
from fgnet_core.data.folds import TEST_SUBJECTS, bp4d_rel, disfa_rel
from fgnet_core.democorpus.domain import DOMAINS, render_frame
from fgnet_core.democorpus.face import RENDERED_AUS, Identity, Pose, sample_identity

__all__ = [
    "RAW_AUS", "demo_subjects", "subject_rng", "au_sequence", "SubjectPlan", "plan_subject",
    "render_plan", "generate_demo_corpus",
]

# AU columns of the raw label files: BP4D AU_OCC CSVs code more AUs than the 12 FG-Net uses; DISFA codes 12.
RAW_AUS: dict[str, tuple[int, ...]] = {
    "BP4D": (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 24, 27, 28),
    "DISFA": (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26),
}
# DISFA AUs outside FG-Net's 8 have no statistics in the label files: nominal rates (AU5 and AU20 are label-only).
_NOMINAL_PREVALENCE = {"DISFA": {5: 0.03, 15: 0.04, 17: 0.06, 20: 0.03}}
# Drawn but not labelled (the raw files have no column for them): expression variety the model must ignore.
_NUISANCE = {"BP4D": {25: 0.20, 26: 0.05}, "DISFA": {7: 0.08, 10: 0.05}}
# Native frames between consecutive demo frames, for AU persistence (real runs last ~60-800 frames at 25 fps).
_STRIDE = {"BP4D": 30.0, "DISFA": 60.0}
_MAX_REDRAWS = 200  # DISFA: redraws of a subject's AU sequence until every AU occurs (deterministic)
_PROTOTYPE_SWITCH = {"BP4D": 0.15, "DISFA": 0.10}
BP4D_TASKS = tuple(f"T{k}" for k in range(1, 9))
DISFA_FPS = 20
# DISFA intensity (0-5) -> drawing strength; occurrence is intensity >= 2.
_DISFA_STRENGTH = np.array([0.0, 0.3, 0.65, 0.8, 0.9, 1.0])


def demo_subjects(dataset: str, per_fold: int = 4) -> list[tuple[str, int]]:
    """(subject, fold) pairs: the first `per_fold` test subjects of each official fold, women and men mixed."""
    out = []
    for fold, subjects in enumerate(TEST_SUBJECTS[dataset]):
        if dataset == "BP4D":
            f = [s for s in subjects if s[0] == "F"]
            m = [s for s in subjects if s[0] == "M"]
            mixed = [x for pair in zip(f, m) for x in pair] + f[len(m):] + m[len(f):]
        else:
            mixed = list(subjects)
        out += [(s, fold) for s in mixed[:per_fold]]
    return out


def subject_rng(seed: int, dataset: str, subject: str, stream: int = 0) -> np.random.Generator:
    """Independent, reproducible random stream per (seed, dataset, subject, stream)."""
    key = [int(seed), zlib.crc32(dataset.encode()), zlib.crc32(subject.encode()), int(stream)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))


def au_sequence(dataset: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Occurrence [n, A] (0/1, columns = au_stats.AUS[dataset]) of one continuous sequence.

    A latent "expression prototype" persists over frames and switches now and then; each AU is redrawn from
    its prototype's on-probability at a rate set by its real mean run length. The chain's stationary law is the
    prototype mixture, so marginals and co-occurrence follow au_stats.
    """
    weights = np.array([w for w, _ in au_stats.PROTOTYPES[dataset]])
    probs = np.array([p for _, p in au_stats.PROTOTYPES[dataset]])          # [K, A]
    weights = weights / weights.sum()
    redraw = np.minimum(1.0, _STRIDE[dataset] / np.array(au_stats.MEAN_RUN[dataset]))  # [A]
    occ = np.zeros((n, probs.shape[1]), np.int8)
    z = rng.choice(len(weights), p=weights)
    state = rng.random(probs.shape[1]) < probs[z]
    for t in range(n):
        if t > 0:
            if rng.random() < _PROTOTYPE_SWITCH[dataset]:
                z = rng.choice(len(weights), p=weights)
                state = rng.random(probs.shape[1]) < probs[z]
            else:
                pick = rng.random(probs.shape[1]) < redraw
                state = np.where(pick, rng.random(probs.shape[1]) < probs[z], state)
        occ[t] = state
    return occ


def _persistent_bernoulli(n: int, p: float, rng: np.random.Generator, redraw: float = 0.25) -> np.ndarray:
    """0/1 sequence [n] with prevalence p and some temporal persistence."""
    out = np.zeros(n, np.int8)
    state = rng.random() < p
    for t in range(n):
        if t > 0 and rng.random() < redraw:
            state = rng.random() < p
        out[t] = state
    return out


def _levels(occ: np.ndarray, rng: np.random.Generator, disfa: bool) -> np.ndarray:
    """Per-frame intensity, constant within on/off runs: DISFA 0-5 (>= 2 when on); BP4D strength 0..1."""
    n, a = occ.shape
    out = np.zeros((n, a), np.float32)
    for j in range(a):
        for t in range(n):
            if t > 0 and occ[t, j] == occ[t - 1, j]:
                out[t, j] = out[t - 1, j]
                continue
            if disfa:
                out[t, j] = rng.choice([2, 3, 4, 5], p=[0.35, 0.3, 0.2, 0.15]) if occ[t, j] else \
                    rng.choice([0, 1], p=[0.85, 0.15])
            else:
                out[t, j] = rng.uniform(0.8, 1.0) if occ[t, j] else (rng.uniform(0.05, 0.15) if rng.random() < 0.1
                                                                     else 0.0)
    return out


@dataclass
class Sequence:
    """One BP4D task or DISFA video: frame numbers, raw label rows and what to draw per frame."""

    name: str                        # "T3" for BP4D, "" for DISFA
    frames: np.ndarray               # [n] frame numbers written (BP4D file names; DISFA 1-based video frames)
    labels: np.ndarray               # [n, len(RAW_AUS)] int: BP4D 0/1/9, DISFA intensity 0-5
    has_image: np.ndarray            # [n] bool: BP4D label rows without an image are False
    strengths: np.ndarray            # [n, len(RENDERED_AUS)] drawing strength 0..1
    poses: list                      # [n] Pose in written pixels
    exposure: np.ndarray             # [n]
    unlabelled: list                 # BP4D: frame numbers with an image but no label row


@dataclass
class SubjectPlan:
    dataset: str
    subject: str
    fold: int
    identity: Identity
    sequences: list


def _pose_sequence(dataset: str, n: int, rng: np.random.Generator, jaw_units: float) -> list:
    dom = DOMAINS[dataset]
    h, w = dom.out_hw
    base = rng.uniform([-9, -4, -7], [9, 4, 7])
    amp = rng.uniform([2, 1, 1.5], [6, 3, 4])
    period = rng.uniform(12, 40, 3)
    phase = rng.uniform(0, 2 * np.pi, 3)
    face_px = rng.uniform(*dom.face_px)
    c0 = np.array([w * 0.5, h * (0.47 if dataset == "BP4D" else 0.5)]) + rng.uniform(-1, 1, 2) * dom.centre_jitter * w
    poses = []
    for t in range(n):
        yaw, pitch, roll = base + amp * np.sin(2 * np.pi * t / period + phase)
        drift = np.array([np.sin(t / 7.0 + phase[0]), np.cos(t / 9.0 + phase[1])]) * 0.012 * w
        scale = face_px * (1 + 0.02 * np.sin(t / 5.0 + phase[2])) / jaw_units
        poses.append(Pose(float(np.clip(yaw, -15, 15)), float(np.clip(pitch, -8, 8)), float(np.clip(roll, -15, 15)),
                          float(scale), float(c0[0] + drift[0]), float(c0[1] + drift[1])))
    return poses


def _strengths(dataset: str, levels: np.ndarray, n: int, rng: np.random.Generator,
               extra: dict[int, np.ndarray]) -> np.ndarray:
    """Drawing strength per RENDERED_AUS column from labelled levels, nominal AUs and nuisance AUs.  # [n, 15]"""
    out = np.zeros((n, len(RENDERED_AUS)), np.float32)
    aus = au_stats.AUS[dataset]
    for j, au in enumerate(aus):
        col = levels[:, j]
        out[:, RENDERED_AUS.index(au)] = _DISFA_STRENGTH[col.astype(int)] if dataset == "DISFA" else col
    for au, col in extra.items():
        if au in RENDERED_AUS:
            out[:, RENDERED_AUS.index(au)] = _DISFA_STRENGTH[col.astype(int)] if dataset == "DISFA" else col
    for au, p in _NUISANCE[dataset].items():
        on = _persistent_bernoulli(n, p, rng)
        out[:, RENDERED_AUS.index(au)] = on * rng.uniform(0.4, 0.9)
    out += (out > 0) * rng.uniform(-0.04, 0.04, out.shape).astype(np.float32)  # frame-to-frame wobble
    return np.clip(out, 0, 1)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


def plan_subject(dataset: str, subject: str, fold: int, seed: int, frames_per_subject: int) -> SubjectPlan:
    """Everything about one subject's frames except the pixels: identity, labels, poses (deterministic)."""
    rng = subject_rng(seed, dataset, subject)
    sex = subject[0] if dataset == "BP4D" else ("F" if rng.random() < 0.55 else "M")
    idn = sample_identity(rng, sex)
    jaw_units = float(idn.shape[16, 0] - idn.shape[0, 0])
    raw = RAW_AUS[dataset]
    if dataset == "DISFA":
        n = frames_per_subject
        # One continuous video per subject: with 48 frames the rare AUs (AU1, AU2, AU9: 4-5 %) would be
        # missing from whole folds, so a subject's sequence is redrawn until it shows every AU at least once.
        for _ in range(_MAX_REDRAWS):
            occ = au_sequence(dataset, n, rng)
            if occ.any(axis=0).all():
                break
        levels = _levels(occ, rng, disfa=True)                                   # [n, 8] intensity
        extra = {au: _levels(_persistent_bernoulli(n, p, rng)[:, None], rng, True)[:, 0]
                 for au, p in _NOMINAL_PREVALENCE["DISFA"].items()}
        labels = np.zeros((n, len(raw)), np.int16)
        for j, au in enumerate(au_stats.AUS[dataset]):
            labels[:, raw.index(au)] = levels[:, j]
        for au, col in extra.items():
            labels[:, raw.index(au)] = col
        seq = Sequence("", np.arange(1, n + 1), labels, np.ones(n, bool), _strengths(dataset, levels, n, rng, extra),
                       _pose_sequence(dataset, n, rng, jaw_units), rng.uniform(0.92, 1.06) + rng.normal(0, 0.01, n), [])
        return SubjectPlan(dataset, subject, fold, idn, [seq])
    n_tasks = min(len(BP4D_TASKS), max(1, frames_per_subject // 6))
    sequences = []
    exposure = rng.uniform(0.92, 1.08)
    for k, n_img in enumerate(_split(frames_per_subject, n_tasks)):
        task = BP4D_TASKS[k]
        gaps = []  # label rows without an image: one inside (some tasks), one after the end (some tasks)
        if n_img >= 3 and rng.random() < 0.35:
            gaps.append(int(rng.integers(1, n_img)))
        n_rows = n_img + len(gaps) + (1 if k == 0 or rng.random() < 0.35 else 0)
        has_image = np.ones(n_rows, bool)
        for g in gaps:
            has_image[g] = False
        has_image[n_img + len(gaps):] = False
        start = int(rng.integers(1, 3000))
        occ = au_sequence(dataset, n_rows, rng)
        levels = _levels(occ, rng, disfa=False)
        labels = np.zeros((n_rows, len(raw)), np.int16)
        cols = [raw.index(au) for au in au_stats.AUS[dataset]]
        labels[:, cols] = occ
        uncoded = [int(rng.integers(n_rows))] if k == 0 or rng.random() < 0.2 else []
        for r in uncoded:
            labels[r, :] = 9                                   # whole frame not coded
        cell = rng.random((n_rows, len(cols))) < 0.002
        labels[:, cols] = np.where(cell, 9, labels[:, cols])  # single AUs not coded
        unlabelled = [start - 1] if rng.random() < 0.2 else []
        sequences.append(Sequence(
            task, np.arange(start, start + n_rows), labels, has_image, _strengths(dataset, levels, n_rows, rng, {}),
            _pose_sequence(dataset, n_rows, rng, jaw_units), exposure + rng.normal(0, 0.01, n_rows), unlabelled))
    return SubjectPlan(dataset, subject, fold, idn, sequences)


def render_plan(plan: SubjectPlan, seed: int, finish: bool = True):
    """Yield (sequence, row, image, landmarks) for every frame with an image, in order (deterministic)."""
    dom = DOMAINS[plan.dataset]
    rng = subject_rng(seed, plan.dataset, plan.subject, stream=1)
    for seq in plan.sequences:
        for row in range(len(seq.frames)):
            if not seq.has_image[row]:
                continue
            img, lm = render_frame(dom, plan.identity, seq.strengths[row], seq.poses[row], rng,
                                   float(seq.exposure[row]), finish)
            yield seq, row, img, lm


def _write_subject(job: tuple) -> dict:
    """Worker: render and write one subject's raw files; return its ground truth rows."""
    dataset, subject, fold, seed, frames_per_subject, out = job
    cv2.setNumThreads(1)
    out = Path(out)
    plan = plan_subject(dataset, subject, fold, seed, frames_per_subject)
    t0 = time.process_time()  # CPU time: wall time depends on what else the machine runs
    names, landmarks, poses, strengths = [], [], [], []
    dom = DOMAINS[dataset]
    rng_q = subject_rng(seed, dataset, subject, stream=2)
    writer = None
    if dataset == "DISFA":
        video = out / "DISFA" / "Videos_LeftCamera" / f"LeftVideo{subject}_comp.avi"
        video.parent.mkdir(parents=True, exist_ok=True)
        h, w = dom.out_hw
        writer = cv2.VideoWriter(str(video), cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), DISFA_FPS, (w, h))
        writer.set(cv2.VIDEOWRITER_PROP_QUALITY, dom.video_quality)
    for seq, row, img, lm in render_plan(plan, seed):
        frame = int(seq.frames[row])
        if dataset == "BP4D":
            rel = bp4d_rel(subject, seq.name, frame)
            path = out / "BP4D" / f"{rel}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            quality = int(rng_q.integers(*dom.jpeg_quality, endpoint=True))
            cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, quality])
            names.append(rel)
        else:
            writer.write(img)
            names.append(disfa_rel(subject, frame))
        landmarks.append(lm)
        p = seq.poses[row]
        poses.append((p.yaw, p.pitch, p.roll, p.scale))
        strengths.append(seq.strengths[row])
    if writer is not None:
        writer.release()
    extra_images = 0
    for seq in plan.sequences:  # BP4D images before the coded segment (no label row)
        for frame in seq.unlabelled:
            row = 0
            img, _ = render_frame(dom, plan.identity, seq.strengths[row], seq.poses[row], rng_q,
                                  float(seq.exposure[row]))
            cv2.imwrite(str(out / "BP4D" / f"{bp4d_rel(subject, seq.name, frame)}.jpg"), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
            extra_images += 1
    _write_labels(plan, out)
    return {"dataset": dataset, "subject": subject, "fold": fold, "names": names,
            "landmarks": np.asarray(landmarks, np.float32), "pose": np.asarray(poses, np.float32),
            "strength": np.asarray(strengths, np.float32), "cpu_seconds": time.process_time() - t0,
            "extra_images": extra_images}


def _write_labels(plan: SubjectPlan, out: Path) -> None:
    raw = RAW_AUS[plan.dataset]
    if plan.dataset == "BP4D":
        folder = out / "BP4D" / "AUCoding" / "AU_OCC"
        folder.mkdir(parents=True, exist_ok=True)
        for seq in plan.sequences:
            lines = [",".join(["0"] + [str(a) for a in raw])]
            lines += [",".join([str(int(f))] + [str(int(v)) for v in row]) for f, row in zip(seq.frames, seq.labels)]
            (folder / f"{plan.subject}_{seq.name}.csv").write_text("\n".join(lines) + "\n")
        return
    folder = out / "DISFA" / "ActionUnit_Labels" / plan.subject
    folder.mkdir(parents=True, exist_ok=True)
    seq = plan.sequences[0]
    for j, au in enumerate(raw):
        lines = [f"{int(f)},{int(v)}" for f, v in zip(seq.frames, seq.labels[:, j])]
        (folder / f"{plan.subject}_au{au}.txt").write_text("\n".join(lines) + "\n")


def _write_ground_truth(out: Path, dataset: str, results: list[dict]) -> None:
    folder = out / "ground_truth" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "frames.txt").write_text("\n".join(n for r in results for n in r["names"]) + "\n")
    np.save(folder / "landmarks.npy", np.concatenate([r["landmarks"] for r in results]))
    np.save(folder / "pose.npy", np.concatenate([r["pose"] for r in results]))
    np.save(folder / "au_strength.npy", np.concatenate([r["strength"] for r in results]).astype(np.float16))
    meta = {"frames": "one id per row: BP4D subject/task/frame, DISFA subject/frame (1-based video frame)",
            "landmarks": "[N, 68, 2] float32, iBUG-68 in image pixels (x, y)",
            "pose": "[N, 4] float32: yaw, pitch, roll (degrees), pixels per face unit (jaw width ~ 1 unit)",
            "au_strength": "[N, 15] float16 drawing strength 0..1", "au_strength_columns": list(RENDERED_AUS)}
    (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


_README = """# Demo corpus (procedural, not real data)

Rendered faces standing in for the licensed BP4D and DISFA corpora, so that ingestion, alignment, training and
evaluation run end to end. Written by `fgnet demo-corpus` (seed {seed}); regenerate rather than edit.

- `BP4D/{{subject}}/{{task}}/{{frame:05d}}.jpg` and `BP4D/AUCoding/AU_OCC/{{subject}}_{{task}}.csv` (first column frame
  number, then one column per AU code; 0/1, 9 = not coded; some rows have no image, some images no row).
- `DISFA/Videos_LeftCamera/LeftVideo{{subject}}_comp.avi` (MJPG, {fps} fps) and
  `DISFA/ActionUnit_Labels/{{subject}}/{{subject}}_au{{N}}.txt` (`frame,intensity`, 1-based frames,
  occurrence = intensity >= 2).
- `ground_truth/{{BP4D,DISFA}}/`: the renderer's true 68 landmarks, head pose and drawn AU strengths per frame.

Subjects carry real IDs from the official 3-fold split ({n_bp4d} BP4D, {n_disfa} DISFA), so fold files apply.
AU labels of the FG-Net AUs follow the real per-dataset prevalence and co-occurrence, except that every DISFA
subject shows every AU at least once (so the rare AU1, AU2 and AU9 are more frequent than in DISFA); each AU is
drawn, larger than life so that a 64 px copy still shows it, as a local change of shape and shading at its
heatmap anchors. BP4D columns outside FG-Net's 12 hold only 0 and 9;
DISFA AU5 and AU20 are label-only (nominal rates); some unlabelled expressions are drawn too (BP4D: lips part
and jaw drop; DISFA: lid tightener, upper lip raiser). Faces are procedural: numbers measured here say that the
pipeline works, not how FG-Net performs on real data.
"""


def generate_demo_corpus(out_dir: str | Path, seed: int = 0, frames_per_subject: int = 48,
                         subjects_per_fold: int = 4, workers: int = 2,
                         datasets: tuple[str, ...] = ("BP4D", "DISFA")) -> dict:
    """Render the demo corpus under `out_dir` with `workers` processes; return a report dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = [(d, s, fold, seed, frames_per_subject, str(out)) for d in datasets
            for s, fold in demo_subjects(d, subjects_per_fold)]
    if workers > 1:
        with get_context("spawn").Pool(workers) as pool:
            results = pool.map(_write_subject, jobs, chunksize=1)
    else:
        results = [_write_subject(j) for j in jobs]
    report = {"seed": seed, "frames_per_subject": frames_per_subject, "datasets": {}}
    for d in datasets:
        rs = [r for r in results if r["dataset"] == d]
        _write_ground_truth(out, d, rs)
        n = sum(len(r["names"]) for r in rs)
        size = sum(p.stat().st_size for p in (out / d).rglob("*") if p.is_file())
        report["datasets"][d] = {
            "subjects": {r["subject"]: r["fold"] for r in rs}, "frames": n,
            "extra_images": sum(r["extra_images"] for r in rs), "megabytes": round(size / 2 ** 20, 2),
            "cpu_seconds_per_frame": round(sum(r["cpu_seconds"] for r in rs) / max(n, 1), 4),
        }
    (out / "README.md").write_text(_README.format(
        seed=seed, fps=DISFA_FPS, n_bp4d=len(demo_subjects("BP4D", subjects_per_fold)),
        n_disfa=len(demo_subjects("DISFA", subjects_per_fold))))
    report["seconds"] = round(time.perf_counter() - t0, 1)
    report["megabytes"] = round(sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2 ** 20, 2)
    return report
