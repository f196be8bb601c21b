"""Decoded and aligned frames of images and videos, in input order, inline or from worker processes.

A run is a list of `Source`s (an image, a video, or a path that gave nothing). Each is cut into tasks
(an image; a video, or with workers a stretch of `VIDEO_CHUNK` frames of it) that decode and align
their frames: images with one detection each, video frames with a `FaceTracker` (detection every
`detect_every` frames, landmarks followed in between; a stretch starts with a detection). With
`workers > 1` the tasks run in spawned processes and come back in order, so a consumer (the model)
sees exactly the stream the inline run gives. No torch here: workers start fast.

Events, in order: ("frame", source index, AlignedFrame) per decoded frame, then ("end", source index,
InputError or None) once per source.
"""
from __future__ import annotations

import math
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from fgnet_core.data.align_inputs import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, video_frame_count

VIDEO_CHUNK = 48  # frames per worker task: one detection and one seek each


class InputError(Exception):
    """An input that cannot be read at all (missing, not an image, a video with no decodable frame)."""

    frame: int | None = None


class TruncatedVideo(InputError):
    """A video whose frames end before the count its container declares; `frame` is the first missing one."""

    def __init__(self, message: str, frame: int):
        super().__init__(message)
        self.frame = frame

    def __reduce__(self):  # comes back from worker processes
        return type(self), (str(self), self.frame)


@dataclass
class Source:
    path: Path
    kind: str   # 'image' | 'video' | 'error' (a path that gave no input at all)
    name: str   # overlay name, unique in the run: file stem, or <folder>/<relative path without suffix>
    error: str = ""


@dataclass
class AlignedFrame:
    frame: int
    time_s: float
    status: str                 # ok | no_face | error
    face: object = None         # AlignedFace when ok
    message: str = ""           # why, when error


def collect_sources(paths: Iterable[str | Path], exclude: Iterable[str | Path] = ()) -> list[Source]:
    """Files and folders (searched recursively, hidden entries and `exclude` folders skipped) -> sources."""
    exclude = [Path(p).resolve() for p in exclude]
    sources, used = [], set()

    def add(path: Path, name: str) -> None:
        unique, k = name, 2
        while unique in used:
            unique, k = f"{name}_{k}", k + 1
        used.add(unique)
        sources.append(Source(path, "video" if path.suffix.lower() in VIDEO_EXTENSIONS else "image", unique))

    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = [f for f in sorted(path.rglob("*"))
                     if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
                     and not any(part.startswith(".") for part in f.relative_to(path).parts)
                     and not any(e == f.resolve() or e in f.resolve().parents for e in exclude)]
            if not found:
                sources.append(Source(path, "error", "", "folder holds no images or videos"))
            for f in found:
                add(f, (Path(path.resolve().name or "input") / f.relative_to(path).with_suffix("")).as_posix())
        elif path.is_file():
            add(path, path.stem)
        else:
            sources.append(Source(path, "error", "", "no such file or folder"))
    return sources


def frame_estimate(sources: list[Source], every: int) -> int:
    return sum(-(-video_frame_count(s.path) // every) if s.kind == "video" else int(s.kind == "image")
               for s in sources)


def video_frames(path: Path, every: int, start: int = 0, stop: int | None = None,
                 declared_check: bool = True) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, time in s, RGB [H, W, 3]) of every `every`-th frame in [start, stop).

    Raises InputError when the video cannot be opened or (from frame 0) nothing decodes, TruncatedVideo
    when decoding ends before `stop` (or the declared frame count) and `declared_check` is on.
    """
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError("cannot open video (unsupported or corrupt file)")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        index = 0
        if start > 0:
            if cap.set(cv2.CAP_PROP_POS_FRAMES, start) and int(cap.get(cv2.CAP_PROP_POS_FRAMES)) == start:
                index = start
            else:  # the backend cannot seek: decode from the start
                cap.release()
                cap = cv2.VideoCapture(str(path))
        decoded = 0
        while stop is None or index < stop:
            if index < start or index % every:
                if not cap.grab():
                    break
            else:
                ok, bgr = cap.read()
                if not ok:
                    break
                decoded += 1
                yield index, (index / fps if fps > 0 else math.nan), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
        if start == 0 and decoded == 0 and index == 0:
            raise InputError("video has no decodable frame")
        end = declared if stop is None else min(stop, declared) if declared > 0 else stop
        if declared_check and end is not None and index < end:
            raise TruncatedVideo(f"video ends after frame {index - 1} of the {declared} its container declares "
                                 f"(truncated or corrupt); frames {index}-{max(declared, end) - 1} were not "
                                 "scored", index)
    finally:
        cap.release()


def source_frames(source: Source, every: int, start: int = 0,
                  stop: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    if source.kind == "error":
        raise InputError(source.error)
    if source.kind == "video":
        yield from video_frames(source.path, every, start, stop)
        return
    # deferred: OpenCV and dlib load in a worker only after it sets OMP_NUM_THREADS (`_init_worker`)
    from fgnet_core.data.image_load import ImageLoadError, load_image_rgb

    try:
        rgb = load_image_rgb(source.path)
    except ImageLoadError as exc:
        raise InputError(str(exc).removeprefix(f"{source.path}: ")) from None
    yield 0, math.nan, rgb


# ------------------------------------------------------------------------------------------------- tasks
def _align_frame(aligner, frame: int, time_s: float, rgb: np.ndarray) -> AlignedFrame:
    # deferred: OpenCV and dlib load in a worker only after it sets OMP_NUM_THREADS (`_init_worker`)
    from fgnet_core.data.face_detect import NoFaceError

    try:
        return AlignedFrame(frame, time_s, "ok", aligner.align(rgb, second_pass=False))
    except NoFaceError:
        return AlignedFrame(frame, time_s, "no_face")
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # AlignmentError, or a frame dlib/OpenCV choke on
        return AlignedFrame(frame, time_s, "error", message=str(exc))


def run_task(task: tuple, aligner, detect_every: int, done: frozenset = frozenset()) -> Iterator[tuple]:
    """One task (index, source, every, start, stop) -> its events; `done` frames are decoded, not aligned."""
    # deferred: OpenCV and dlib load in a worker only after it sets OMP_NUM_THREADS (`_init_worker`)
    from fgnet_core.data.align import FaceAligner
    from fgnet_core.data.face_tracking import FaceTracker

    index, source, every, start, stop = task
    key = str(source.path)
    follow = source.kind == "video" and detect_every > 1 and isinstance(aligner, FaceAligner)
    per_frame = FaceTracker(aligner, detect_every) if follow else aligner
    try:
        for frame, time_s, rgb in source_frames(source, every, start, stop):
            if (key, frame) in done:
                continue
            yield "frame", index, _align_frame(per_frame, frame, time_s, rgb)
    except InputError as exc:
        yield "end", index, exc
        return
    yield "end", index, None


def plan_tasks(sources: list[Source], every: int, chunked: bool) -> list[tuple]:
    """(source index, source, every, start, stop) per task; videos cut into VIDEO_CHUNK stretches when chunked."""
    tasks = []
    for i, source in enumerate(sources):
        count = video_frame_count(source.path) if source.kind == "video" and chunked else 0
        if count > VIDEO_CHUNK:
            step = VIDEO_CHUNK * every
            tasks += [(i, source, every, s, min(s + step, count)) for s in range(0, count, step)]
        else:
            tasks.append((i, source, every, 0, None))
    return tasks


_WORKER: dict = {}


def _init_worker(aligner_options: dict, detect_every: int, done: frozenset) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pool
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # deferred: OpenCV and dlib load in a worker only after it sets OMP_NUM_THREADS (`_init_worker`)
    from fgnet_core.data.align import FaceAligner

    _WORKER.update(aligner=FaceAligner(**aligner_options), detect_every=detect_every, done=done)


def _worker_task(task: tuple) -> list[tuple]:
    return list(run_task(task, _WORKER["aligner"], _WORKER["detect_every"], _WORKER["done"]))


def _merged(events: Iterator[tuple]) -> Iterator[tuple]:
    """Chunk events -> source events: one 'end' per source (a truncation ends the source's later chunks)."""
    current, failed = None, None
    for kind, index, payload in events:
        if index != current:
            if current is not None:
                yield "end", current, failed
            current, failed = index, None
        if kind == "frame":
            if failed is None:
                yield kind, index, payload
        elif payload is not None and failed is None:
            failed = payload
    if current is not None:
        yield "end", current, failed


def aligned_frames(sources: list[Source], every: int = 1, *, detect_every: int = 10, workers: int = 1,
                   aligner=None, aligner_options: dict | None = None,
                   done: frozenset = frozenset()) -> Iterator[tuple]:
    """Events of every source in order (see the module docstring).

    `aligner` (any object with `align(rgb)`) runs inline; otherwise a FaceAligner(**aligner_options) per
    process. `workers > 1` decodes and aligns in that many spawned processes.
    """
    # deferred: OpenCV and dlib load in a worker only after it sets OMP_NUM_THREADS (`_init_worker`)
    from fgnet_core.data.align import FaceAligner

    if aligner is not None or workers <= 1:
        aligner = aligner or FaceAligner(**(aligner_options or {}))
        for task in plan_tasks(sources, every, chunked=False):
            yield from run_task(task, aligner, detect_every, done)
        return
    import multiprocessing

    tasks = plan_tasks(sources, every, chunked=True)
    pool = multiprocessing.get_context("spawn").Pool(
        workers, initializer=_init_worker, initargs=(aligner_options or {}, detect_every, done))
    try:
        yield from _merged(_in_order(pool, tasks, ahead=2 * workers))
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def _in_order(pool, tasks: list[tuple], ahead: int) -> Iterator[tuple]:
    """Task results in task order with at most `ahead` tasks in flight (memory stays bounded when the
    consumer is slower than the workers)."""
    from collections import deque

    waiting, queue = deque(), deque(tasks)
    while queue or waiting:
        while queue and len(waiting) < ahead:
            waiting.append(pool.apply_async(_worker_task, (queue.popleft(),)))
        yield from waiting.popleft().get()
