"""Resumable, parallel batch alignment of images and video frames.

What is written under out_dir, and how, is in `align_outputs`; what one worker does, in `align_worker`. A rerun
skips complete items, retries failed ones, and removes temp files left by a killed run (so run one alignment
at a time per out_dir).
"""
from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from fgnet_core.data.align_inputs import (  # noqa: F401 (re-exported: the runner's public inputs)
    IMAGE_EXTENSIONS, OUTPUT_SUBFOLDERS, VIDEO_EXTENSIONS, AlignJob, OutputNameClash, jobs_for_paths, name_clashes,
    video_frame_count,
)
from fgnet_core.data.align_outputs import (
    failure_key, is_complete, read_failures, remove_stale_temps, write_failures,
)
from fgnet_core.data.align_worker import init_worker, run_task
from fgnet_core.data.ffhq_crop import PADDING_MODES
from fgnet_core.paths import dlib_landmark_model

VIDEO_CHUNK = 128       # frames per task: one seek per chunk, and long videos still spread over workers


@dataclass
class AlignSummary:
    processed: int          # aligned by this run
    skipped: int            # already complete before this run
    failed: int             # recorded in failures.csv by this run
    ok_rels: set[str] = field(default_factory=set)  # every rel of `jobs` with complete outputs


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
    failures = read_failures(failures_path)
    ok_rels, pending, unusable = set(), [], []
    for job in unique.values():
        failures.pop(failure_key(job.source, job.frame), None)  # retried now, or already complete
        if getattr(job, "error", None):
            unusable.append(job)
        elif is_complete(out_dir, job.rel):
            ok_rels.add(job.rel)
        else:
            pending.append(job)
    skipped, processed, failed = len(ok_rels), 0, 0
    for job in unusable:  # a corrupt video: one failures row, counted like any other failure
        failures[failure_key(job.source, job.frame)] = job.error
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
                failures[failure_key(sources[rel], frame)] = reason
                failed += 1
        bar.update(len(results))
        if time.monotonic() - last_write > 10:
            write_failures(failures_path, failures)
            last_write = time.monotonic()

    init_args = (str(out_dir), str(predictor_path), transform_size, padding, int(upsample))
    sigterm = _raise_on_sigterm()
    try:
        if workers <= 1 or len(tasks) <= 1:
            init_worker(*init_args, in_pool=False)
            for task in tasks:
                record(run_task(task))
        else:
            _run_pool(tasks, workers, init_args, record)
    finally:
        bar.close()
        write_failures(failures_path, failures)
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
        executor = ProcessPoolExecutor(max_workers=min(workers, len(queue)), mp_context=ctx, initializer=init_worker,
                                       initargs=(*init_args, True))
        in_flight: dict = {}
        try:
            while queue or in_flight:
                while queue and len(in_flight) < 2 * workers:
                    task, tries = queue.pop()
                    in_flight[executor.submit(run_task, task)] = (task, tries)
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
