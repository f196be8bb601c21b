"""Resumable, parallel batch alignment of images and video frames.

Layout under out_dir:
    aligned_images/<rel>.jpg      256x256 RGB, JPEG quality 95
    aligned_landmarks/<rel>.npy   [68, 2] float32 (x, y) in the 256 frame (dlib run on the aligned face)
    failures.csv                  path, frame, reason: one row per item that could not be aligned

Each output is written to a hidden temp file in its folder and renamed into place, landmarks first and
image last, so an existing .jpg means the item is complete whatever killed the run. A rerun skips
complete items, retries failed ones, and removes temp files left by a killed run (so run one
alignment at a time per out_dir).
"""
from __future__ import annotations

import csv
import io
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from fgnet_core.data.align import PADDING_MODES, AlignmentError, FaceAligner, load_image_rgb
from fgnet_core.data.align_inputs import (  # noqa: F401 (re-exported: the runner's public inputs)
    IMAGE_EXTENSIONS, OUTPUT_SUBFOLDERS, VIDEO_EXTENSIONS, AlignJob, OutputNameClash, jobs_for_paths, name_clashes,
    video_frame_count,
)
from fgnet_core.paths import dlib_landmark_model

VIDEO_CHUNK = 128       # frames per task: one seek per chunk, and long videos still spread over workers
_TEMP_SUFFIX = ".part"  # temp files: ".<name>.<pid>.part" (hidden, never named like an output)
_FAILURE_COLUMNS = ("path", "frame", "reason")


@dataclass
class AlignSummary:
    processed: int          # aligned by this run
    skipped: int            # already complete before this run
    failed: int             # recorded in failures.csv by this run
    ok_rels: set[str] = field(default_factory=set)  # every rel of `jobs` with complete outputs


def output_paths(out_dir: Path, rel: str) -> tuple[Path, Path]:
    """(image .jpg, landmarks .npy) paths of one item."""
    out_dir = Path(out_dir)
    return out_dir / "aligned_images" / f"{rel}.jpg", out_dir / "aligned_landmarks" / f"{rel}.npy"


def is_complete(out_dir: Path, rel: str) -> bool:
    image, landmarks = output_paths(out_dir, rel)
    return image.is_file() and landmarks.is_file()


# ----------------------------------------------------------------------------------------------
# Atomic outputs


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}{_TEMP_SUFFIX}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_aligned(out_dir: Path, rel: str, image, landmarks) -> None:
    """Write one item: landmarks first, image last, each atomically."""
    import numpy as np
    from PIL import Image

    image_path, landmarks_path = output_paths(out_dir, rel)
    buf = io.BytesIO()
    np.save(buf, np.asarray(landmarks, dtype=np.float32).reshape(68, 2))
    _write_atomic(landmarks_path, buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95)
    _write_atomic(image_path, buf.getvalue())


def remove_stale_temps(out_dir: Path) -> int:
    """Delete temp files left by a killed run; returns how many."""
    removed = 0
    for sub in ("aligned_images", "aligned_landmarks"):
        for root, _, files in os.walk(Path(out_dir) / sub):
            for name in files:
                if name.startswith(".") and name.endswith(_TEMP_SUFFIX):
                    Path(root, name).unlink(missing_ok=True)
                    removed += 1
    return removed


# ----------------------------------------------------------------------------------------------
# Worker side: a task is (source, is_video, [(rel, frame), ...]); returns [(rel, frame, reason|None)]

_ALIGNER = None
_OUT_DIR: Path | None = None


def _init_worker(out_dir: str, predictor_path, transform_size, padding, upsample: int, in_pool: bool) -> None:
    """Build the dlib models once per process."""
    global _ALIGNER, _OUT_DIR
    if in_pool:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates workers
        threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    _ALIGNER = FaceAligner(predictor_path=predictor_path, transform_size=transform_size, padding=padding,
                           upsample=upsample)
    _OUT_DIR = Path(out_dir)


def _exit_with_parent(parent_pid: int) -> None:
    """A killed parent cannot stop its pool: leave instead of idling forever (temp files are cleaned later)."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(1)


def _align_one(rgb, rel: str) -> None:
    face = _ALIGNER.align(rgb)
    save_aligned(_OUT_DIR, rel, face.image, face.landmarks)


def _reason(exc: BaseException, source: str) -> str:
    """One line for failures.csv; the path has its own column, so a leading "<path>: " is dropped."""
    text = str(exc) if isinstance(exc, AlignmentError) else f"{type(exc).__name__}: {exc}"
    text = text.removeprefix(f"{source}: ")
    return " ".join(text.split()) or type(exc).__name__


def _run_task(task) -> list[tuple[str, int | None, str | None]]:
    source, is_video, items = task
    if is_video:
        return _run_video_task(source, items)
    results = []
    for rel, frame in items:
        try:
            if not is_complete(_OUT_DIR, rel):  # a retried task may find it done
                _align_one(load_image_rgb(source), rel)
            results.append((rel, frame, None))
        except Exception as exc:
            results.append((rel, frame, _reason(exc, source)))
    return results


def _run_video_task(source: str, items) -> list[tuple[str, int | None, str | None]]:
    """Frames in increasing order from one VideoCapture: one seek, then sequential decoding."""
    import cv2

    items = sorted(items, key=lambda item: item[1])
    results = []
    cap = cv2.VideoCapture(source)
    try:
        if not cap.isOpened():
            return [(rel, frame, "cannot open video") for rel, frame in items]
        first = items[0][1]
        pos = 0
        if first > 0 and cap.set(cv2.CAP_PROP_POS_FRAMES, first) and int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == first:
            pos = first
        elif first > 0:  # the backend cannot seek: reopen and decode from the start
            cap.release()
            cap = cv2.VideoCapture(source)
        current, current_index, ended = None, -1, False
        for rel, frame in items:
            try:
                if is_complete(_OUT_DIR, rel):
                    results.append((rel, frame, None))
                    continue
                if frame < 0:
                    raise AlignmentError(f"negative frame index {frame}")
                if frame != current_index:
                    while not ended and pos < frame:
                        ended = not cap.grab()
                        pos += 0 if ended else 1
                    ok, bgr = (False, None) if ended else cap.read()
                    if not ok:
                        ended = True
                        raise AlignmentError(f"frame {frame} is past the end of the video")
                    pos += 1
                    current, current_index = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), frame
                _align_one(current, rel)
                results.append((rel, frame, None))
            except Exception as exc:
                results.append((rel, frame, _reason(exc, source)))
    finally:
        cap.release()
    return results


# ----------------------------------------------------------------------------------------------
# Parent side


def _make_tasks(jobs: list[AlignJob]) -> list[tuple]:
    """Images one per task; video frames grouped per video, sorted, in chunks of VIDEO_CHUNK."""
    tasks, videos = [], {}
    for job in jobs:
        if job.frame is None:
            tasks.append((str(job.source), False, [(job.rel, None)]))
        else:
            videos.setdefault(str(job.source), []).append((job.rel, int(job.frame)))
    for source, items in videos.items():
        items.sort(key=lambda item: item[1])
        tasks += [(source, True, items[i:i + VIDEO_CHUNK]) for i in range(0, len(items), VIDEO_CHUNK)]
    return tasks


def _failure_key(path: str, frame) -> tuple[str, str]:
    return str(path), "" if frame is None or frame == "" else str(int(frame))


def _read_failures(path: Path) -> dict[tuple[str, str], str]:
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {_failure_key(row["path"], row["frame"]): row["reason"] for row in csv.DictReader(f)
                if row.get("path") is not None}


def _write_failures(path: Path, failures: dict[tuple[str, str], str]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_FAILURE_COLUMNS)
    for (source, frame), reason in sorted(failures.items()):
        writer.writerow((source, frame, reason))
    tmp = path.parent / f".{path.name}.{os.getpid()}{_TEMP_SUFFIX}"
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)


def _terminate(executor: ProcessPoolExecutor) -> None:
    """Stop workers now (they ignore SIGINT); their temp files are removed afterwards."""
    processes = list(getattr(executor, "_processes", {}).values())  # no public API for this
    for proc in processes:
        proc.terminate()
    for proc in processes:
        proc.join(timeout=10)
    executor.shutdown(wait=False, cancel_futures=True)


def run_alignment(jobs: list[AlignJob], out_dir: Path, *, workers: int = 2, predictor_path=None,
                  transform_size=None, padding="reflect", upsample: int = 1, progress=True) -> AlignSummary:
    """Align every job not yet complete under out_dir; failures go to out_dir/failures.csv, never raise.

    `upsample` is dlib's detector upsampling (1 as the authors; 0 is ~2x faster and finds faces above ~80 px).
    """
    from tqdm.auto import tqdm

    if padding not in PADDING_MODES:
        raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
    if upsample not in (0, 1, 2):
        raise ValueError(f"upsample must be 0, 1 or 2, got {upsample!r}")
    if predictor_path is None:
        predictor_path = dlib_landmark_model()
    if not Path(predictor_path).is_file():
        raise FileNotFoundError(f"{predictor_path}: dlib landmark model not found")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures_path = out_dir / "failures.csv"
    remove_stale_temps(out_dir)

    clashes = name_clashes(jobs)
    if clashes:  # never keep one and drop the other
        listing = "; ".join(f"{rel}: {', '.join(srcs)}" for rel, srcs in sorted(clashes.items())[:10])
        raise OutputNameClash(f"{len(clashes)} output names are shared by different inputs: {listing}")
    unique: dict[str, AlignJob] = {}
    for job in jobs:
        unique.setdefault(job.rel, job)  # the same input listed twice
    failures = _read_failures(failures_path)
    ok_rels, pending, unusable = set(), [], []
    for job in unique.values():
        failures.pop(_failure_key(job.source, job.frame), None)  # retried now, or already complete
        if getattr(job, "error", None):
            unusable.append(job)
        elif is_complete(out_dir, job.rel):
            ok_rels.add(job.rel)
        else:
            pending.append(job)
    skipped, processed, failed = len(ok_rels), 0, 0
    for job in unusable:  # a corrupt video: one failures row, counted like any other failure
        failures[_failure_key(job.source, job.frame)] = job.error
        failed += 1

    tasks = _make_tasks(pending)
    sources = {job.rel: str(job.source) for job in pending}
    bar = tqdm(total=len(pending), unit="face", desc="align", disable=not progress, dynamic_ncols=True)
    last_write = time.monotonic()

    def record(results) -> None:
        nonlocal processed, failed, last_write
        for rel, frame, reason in results:
            if reason is None:
                ok_rels.add(rel)
                processed += 1
            else:
                failures[_failure_key(sources[rel], frame)] = reason
                failed += 1
        bar.update(len(results))
        if time.monotonic() - last_write > 10:
            _write_failures(failures_path, failures)
            last_write = time.monotonic()

    init_args = (str(out_dir), str(predictor_path), transform_size, padding, int(upsample))
    sigterm = _raise_on_sigterm()
    try:
        if workers <= 1 or len(tasks) <= 1:
            _init_worker(*init_args, in_pool=False)
            for task in tasks:
                record(_run_task(task))
        else:
            _run_pool(tasks, workers, init_args, record)
    finally:
        bar.close()
        _write_failures(failures_path, failures)
        remove_stale_temps(out_dir)
        if sigterm:
            signal.signal(signal.SIGTERM, sigterm[0])
    print(f"aligned: {processed} processed, {skipped} skipped, {failed} failed (see {failures_path})")
    return AlignSummary(processed=processed, skipped=skipped, failed=failed, ok_rels=ok_rels)


def _raise_on_sigterm():
    """Turn SIGTERM (schedulers, `timeout`) into the same clean stop as Ctrl-C -> (old handler,) or ()."""
    if threading.current_thread() is not threading.main_thread():
        return ()

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    return (signal.signal(signal.SIGTERM, handler),)


def _run_pool(tasks: list[tuple], workers: int, init_args: tuple, record) -> None:
    """Feed tasks to `workers` spawned processes, a few in flight each; restart the pool if one dies.

    A task in flight when a worker died is retried once; the second time its items are failures.
    """
    ctx = multiprocessing.get_context("spawn")
    queue = [(task, 0) for task in reversed(tasks)]  # pop() from the end keeps the original order
    while queue:
        executor = ProcessPoolExecutor(max_workers=min(workers, len(queue)), mp_context=ctx, initializer=_init_worker,
                                       initargs=(*init_args, True))
        in_flight: dict = {}
        try:
            while queue or in_flight:
                while queue and len(in_flight) < 2 * workers:
                    task, tries = queue.pop()
                    in_flight[executor.submit(_run_task, task)] = (task, tries)
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    results = future.result()  # raises BrokenProcessPool if a worker died
                    in_flight.pop(future)
                    record(results)
        except BrokenProcessPool:
            executor.shutdown(wait=False, cancel_futures=True)
            for task, tries in in_flight.values():
                if tries >= 1:
                    record([(rel, frame, "worker process died (crash or out of memory)") for rel, frame in task[2]])
                else:
                    queue.append((task, tries + 1))
            continue
        except BaseException:
            _terminate(executor)
            raise
        executor.shutdown(wait=True)
