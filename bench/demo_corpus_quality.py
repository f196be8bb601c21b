"""Can dlib read the demo corpus faces? Detection rate, 68-point NME per domain and region, render speed.

Renders N frames per domain from the demo subjects (or reads a generated corpus with --corpus), runs dlib's
HOG detector (upsample 1) and 68-point shape predictor, and compares with the renderer's true landmarks.
NME = mean point error / outer-eye-corner distance |lm36 - lm45|. Part of the error is annotation convention
(where the jaw and brow points sit on a drawn outline), not realism.

    python bench/demo_corpus_quality.py --frames 120
    python bench/demo_corpus_quality.py --corpus data
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

REGIONS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36), "eyes": range(36, 48),
           "mouth": range(48, 68)}


def _dlib():
    import dlib

    from fgnet_core.paths import dlib_landmark_model
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(dlib_landmark_model()))


def fit_landmarks(detector, predictor, bgr: np.ndarray, truth: np.ndarray) -> np.ndarray | None:
    """dlib's 68 points for the detection covering the true face, or None when no detection does.  # [68, 2]"""
    import dlib

    rgb = np.ascontiguousarray(bgr[..., ::-1])
    lo, hi = truth.min(0), truth.max(0)
    best, best_d = None, np.inf
    for r in detector(rgb, 1):
        c = np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])
        if np.all(c > lo) and np.all(c < hi):
            d = np.linalg.norm(c - (lo + hi) / 2)
            if d < best_d:
                best, best_d = r, d
    if best is None:
        return None
    shape = predictor(rgb, dlib.rectangle(best.left(), best.top(), best.right(), best.bottom()))
    return np.array([(p.x, p.y) for p in shape.parts()], np.float64)


def _score(frames) -> dict:
    """frames: iterable of (bgr, truth [68, 2]). Returns detection flags and per-point errors / |36-45|."""
    detector, predictor = _dlib()
    found, errors, offsets = [], [], []
    t = 0.0
    for bgr, truth in frames:
        t0 = time.perf_counter()
        fit = fit_landmarks(detector, predictor, bgr, truth)
        t += time.perf_counter() - t0
        found.append(fit is not None)
        if fit is not None:
            norm = np.linalg.norm(truth[36] - truth[45])
            errors.append(np.linalg.norm(fit - truth, axis=1) / norm)       # [68]
            offsets.append((fit - truth) / norm)                            # [68, 2]
    return {"found": found, "errors": errors, "offsets": offsets, "dlib_seconds": t}


def _render_job(job: tuple) -> dict:
    """Render `n` frames of one subject and score them (one process per job)."""
    import cv2

    from fgnet_core.democorpus.corpus import plan_subject, render_plan
    dataset, subject, fold, seed, n = job
    cv2.setNumThreads(1)
    plan = plan_subject(dataset, subject, fold, seed, n)
    frames, cpu = [], time.process_time()
    for _, _, img, lm in render_plan(plan, seed):
        if dataset == "BP4D":  # what the files hold: a JPEG round trip
            img = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1], cv2.IMREAD_COLOR)
        frames.append((img, lm))
    cpu = time.process_time() - cpu
    out = _score(frames)
    out.update(dataset=dataset, render_cpu=cpu, n=len(frames))
    return out


def _corpus_frames(root: Path, dataset: str):
    import cv2

    gt = root / "ground_truth" / dataset
    names = (gt / "frames.txt").read_text().split()
    landmarks = np.load(gt / "landmarks.npy")
    if dataset == "BP4D":
        for name, lm in zip(names, landmarks):
            yield cv2.imread(str(root / "BP4D" / f"{name}.jpg")), lm
        return
    by_subject: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        by_subject.setdefault(name.split("/")[0], []).append(i)
    for subject, rows in by_subject.items():
        cap = cv2.VideoCapture(str(root / "DISFA" / "Videos_LeftCamera" / f"LeftVideo{subject}_comp.avi"))
        for i in rows:
            ok, img = cap.read()
            if not ok:
                break
            yield img, landmarks[i]
        cap.release()


def _corpus_job(job: tuple) -> dict:
    root, dataset = job
    out = _score(_corpus_frames(Path(root), dataset))
    out.update(dataset=dataset, render_cpu=0.0, n=len(out["found"]))
    return out


def summarise(results: list[dict]) -> dict:
    summary = {}
    for dataset in sorted({r["dataset"] for r in results}):
        rs = [r for r in results if r["dataset"] == dataset]
        found = np.concatenate([r["found"] for r in rs])
        errors = np.array([e for r in rs for e in r["errors"]])                 # [M, 68]
        offsets = np.array([o for r in rs for o in r["offsets"]])               # [M, 68, 2]
        n = int(sum(r["n"] for r in rs))
        row = {"frames": n, "detection_rate": float(found.mean()),
               "nme": float(errors.mean()) if len(errors) else float("nan"),
               "nme_region": {k: float(errors[:, list(v)].mean()) for k, v in REGIONS.items()} if len(errors) else {},
               "bias_region": {k: [round(float(x), 4) for x in offsets[:, list(v)].mean((0, 1))]
                               for k, v in REGIONS.items()} if len(errors) else {},
               "dlib_seconds_per_frame": float(sum(r["dlib_seconds"] for r in rs) / max(n, 1))}
        if any(r["render_cpu"] for r in rs):
            row["render_cpu_seconds_per_frame"] = float(sum(r["render_cpu"] for r in rs) / max(n, 1))
        summary[dataset] = row
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120, help="frames rendered per domain")
    ap.add_argument("--corpus", type=Path, help="score a generated corpus instead of rendering")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the summary here")
    args = ap.parse_args(argv)

    from fgnet_core.democorpus.corpus import demo_subjects
    t0 = time.perf_counter()
    if args.corpus:
        jobs, fn = [(str(args.corpus), d) for d in ("BP4D", "DISFA")], _corpus_job
    else:
        jobs, fn = [], _render_job
        for dataset in ("BP4D", "DISFA"):
            subjects = demo_subjects(dataset, 4)
            per = [args.frames // len(subjects) + (k < args.frames % len(subjects)) for k in range(len(subjects))]
            jobs += [(dataset, s, fold, args.seed, n) for (s, fold), n in zip(subjects, per) if n > 0]
    with get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(fn, jobs, chunksize=1)
    summary = summarise(results)
    wall = time.perf_counter() - t0
    for dataset, row in summary.items():
        regions = " ".join(f"{k} {v:.3f}" for k, v in row["nme_region"].items())
        speed = f", render {row['render_cpu_seconds_per_frame']:.3f} s/frame (CPU)" \
            if "render_cpu_seconds_per_frame" in row else ""
        print(f"{dataset}: {row['frames']} frames, detected {100 * row['detection_rate']:.1f} %, NME {row['nme']:.3f} "
              f"({regions}), dlib {row['dlib_seconds_per_frame']:.3f} s/frame{speed}")
    print(f"wall time {wall:.1f} s with {args.workers} processes")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
