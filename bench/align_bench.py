"""Alignment throughput (images/s) of the fast path and the literal 4096 recipe, 1 and 2 processes.

    python bench/align_bench.py [--n 24] [--skip-recipe]

Uses real photos available offline (scikit-image's astronaut, matplotlib's Grace Hopper) at their
own size, cropped so the FFHQ square needs padding, and enlarged to a BP4D-like 1040x1392 frame.
Also prints the fast-vs-recipe difference on those photos. `measure_on_folder` is the hook for
detection-rate / landmark-error measurements on a corpus.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fgnet_core.data.align import FaceAligner  # noqa: E402
from fgnet_core.data.face_detect import detect_landmarks  # noqa: E402
from fgnet_core.data.image_load import AlignmentError, load_image_rgb  # noqa: E402


def bench_images() -> dict[str, np.ndarray]:
    import matplotlib
    import skimage.data
    from PIL import Image

    astronaut = skimage.data.astronaut()
    hopper_path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    hopper = np.asarray(Image.open(hopper_path).convert("RGB"))  # [600, 512, 3]
    bp4d_like = np.asarray(Image.fromarray(hopper).resize((1040, 1392), Image.Resampling.LANCZOS))
    return {
        "astronaut 512x512": astronaut,
        "hopper 512x600": hopper,
        "astronaut crop 270x270 (padded)": np.ascontiguousarray(astronaut[60:330, 140:410]),
        "hopper 1040x1392 (BP4D-like)": bp4d_like,
    }


# ----------------------------------------------------------------------------------------------
# Multi-process: each worker builds its aligner once, like the batch runner.

_WORKER: FaceAligner | None = None


def _init(kwargs: dict) -> None:
    global _WORKER
    _WORKER = FaceAligner(**kwargs)


def _align(image: np.ndarray) -> int:
    _WORKER.align(image)
    return 1


def rate(images: list[np.ndarray], workers: int, **kwargs) -> tuple[float, float | None]:
    """(aligned images per second, CPU ms per image or None) over `images`, models loaded beforehand.

    CPU time (single process only) is the figure to compare when other jobs share the machine.
    """
    if workers == 1:
        aligner = FaceAligner(**kwargs)
        aligner.align(images[0])  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        for image in images:
            aligner.align(image)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        return len(images) / wall, 1e3 * cpu / len(images)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init, initargs=(kwargs,)) as pool:
        list(pool.map(_align, images[:workers]))  # warm-up: every worker has loaded its models
        start = time.perf_counter()
        list(pool.map(_align, images))
        return len(images) / (time.perf_counter() - start), None


def fidelity(images: dict[str, np.ndarray]) -> None:
    """Fast path vs literal 4096 recipe on the same detected landmarks: pixels and re-detected landmarks."""
    fast, exact = FaceAligner(), FaceAligner(transform_size=4096)
    for name, image in images.items():
        lm = detect_landmarks(image)
        t0 = time.perf_counter()
        a, _ = fast.warp(image, lm)
        t1 = time.perf_counter()
        b, _ = exact.warp(image, lm)
        t2 = time.perf_counter()
        diff = np.abs(a.astype(float) - b.astype(float))
        la, lb = detect_landmarks(a), detect_landmarks(b)
        lm_diff = np.linalg.norm(la - lb, axis=1) if la is not None and lb is not None else np.array([np.nan])
        print(f"  {name:34s} warp {1e3 * (t1 - t0):6.1f} ms vs {1e3 * (t2 - t1):7.1f} ms | pixels |diff| mean "
              f"{diff.mean():.2f} p99 {np.percentile(diff, 99):.0f} max {diff.max():.0f} (0..255) | "
              f"landmarks mean {lm_diff.mean():.2f} max {lm_diff.max():.2f} px")


def measure_on_folder(folder, ground_truth=None, **aligner_kwargs) -> dict:
    """Detection rate, time per image and (optionally) landmark error over the images of a folder.

    ground_truth: {relative path without extension: [68, 2] landmarks in the source image}; the error
    is the mean point-to-point distance of dlib's source landmarks, over the inter-ocular distance.
    """
    from fgnet_core.data.align_batch import jobs_for_paths

    aligner = FaceAligner(**aligner_kwargs)
    jobs = jobs_for_paths([Path(folder)])
    found, errors, seconds = 0, [], 0.0
    for job in jobs:
        start = time.perf_counter()
        try:
            face = aligner.align(load_image_rgb(job.source))
        except AlignmentError:
            seconds += time.perf_counter() - start
            continue
        seconds += time.perf_counter() - start
        found += 1
        if ground_truth is not None and job.rel in ground_truth:
            gt = np.asarray(ground_truth[job.rel], dtype=np.float64)  # [68, 2]
            inter_ocular = np.linalg.norm(gt[36:42].mean(0) - gt[42:48].mean(0))
            errors.append(np.linalg.norm(face.source_landmarks - gt, axis=1).mean() / inter_ocular)
    return {
        "images": len(jobs),
        "detected": found,
        "detection_rate": found / len(jobs) if jobs else float("nan"),
        "seconds_per_image": seconds / len(jobs) if jobs else float("nan"),
        "nme_interocular": float(np.mean(errors)) if errors else None,
    }


def _load() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="images per measurement (cycled over the photos)")
    parser.add_argument("--skip-recipe", action="store_true", help="only the fast path")
    args = parser.parse_args()
    photos = bench_images()
    print(f"{os.cpu_count()} CPU cores; photos: {', '.join(photos)}")
    print("fast path vs literal 4096 recipe, same landmarks:")
    if not args.skip_recipe:
        fidelity(photos)
    images = [photos[k] for k in photos] * (args.n // len(photos) + 1)
    images = images[: args.n]
    configs = [("fast (transform_size=None)", {})]
    if not args.skip_recipe:
        configs.append(("recipe (transform_size=4096)", {"transform_size": 4096}))
    print(f"detect + align + detect again, {len(images)} images (load average {_load()}):")
    for name, kwargs in configs:
        for workers in (1, 2):
            per_s, cpu_ms = rate(images, workers, **kwargs)
            cpu = f", {cpu_ms:.0f} CPU ms/image" if cpu_ms is not None else ""
            print(f"  {name:30s} {workers} worker(s): {per_s:5.2f} images/s{cpu}")
    big = [photos["hopper 1040x1392 (BP4D-like)"]] * max(4, args.n // 4)
    print("BP4D-like frames only, fast path, 1 worker:")
    for label, kwargs in (("full-frame detection", {}), ("detect_max_side=640", {"detect_max_side": 640})):
        per_s, cpu_ms = rate(big, 1, **kwargs)
        print(f"  {label:22s} {per_s:5.2f} images/s, {cpu_ms:.0f} CPU ms/image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
