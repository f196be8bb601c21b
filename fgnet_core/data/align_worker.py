"""The worker side of batch alignment: a task is (source, is_video, [(rel, frame), ...]) and returns
[(rel, frame, reason | None)], reason None when the item's outputs are complete.

Each process builds its FaceAligner once (`init_worker`); the parent runs tasks inline or in a pool
(`align_batch`).
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from fgnet_core.data.align import FaceAligner
from fgnet_core.data.align_outputs import is_complete, save_aligned
from fgnet_core.data.image_load import AlignmentError, load_image_rgb

_ALIGNER = None
_OUT_DIR: Path | None = None


def init_worker(out_dir: str, predictor_path, transform_size, padding, upsample: int, in_pool: bool) -> None:
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


def run_task(task) -> list[tuple[str, int | None, str | None]]:
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

