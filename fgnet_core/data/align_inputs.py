"""What `fgnet align` reads: files, folders and videos -> alignment jobs with output names that never clash.

An output name (`rel`) is the input's path relative to the folder given (a file given by itself: its
stem); every frame of a video is `<rel>/<frame:05d>`. When two different inputs would get the same name
(`T1/1.jpg` and `T2/1.jpg` given as files), parent folders are prepended until the names differ
(`T1/1`, `T2/1`); names that still clash (`1.jpg` beside `1.png`) are refused with `OutputNameClash`
listing them, so no input is ever silently dropped. A video that cannot be opened, or holds no frame,
becomes one job carrying the reason, recorded as a failure by the runner.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pnm"}
VIDEO_EXTENSIONS = {".avi", ".mp4", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm"}
OUTPUT_SUBFOLDERS = ("aligned_images", "aligned_landmarks")  # what the runner writes under its out_dir


class OutputNameClash(ValueError):
    """Different inputs that would be written under the same output name."""


@dataclass
class AlignJob:
    source: str             # image file path, or video file path
    rel: str                # output name relative to out_dir/aligned_images, no extension, e.g. "F001/T1/02440"
    frame: int | None = None  # 0-based frame index into a video file; None for images
    error: str | None = None  # set when the input is unusable before any alignment (a corrupt video)


def video_frame_count(path) -> int:
    """Frames in a video (container metadata, or counted by decoding when the metadata has none)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return 0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if count <= 0:
            count = 0
            while cap.grab():
                count += 1
        return count
    finally:
        cap.release()


def _under(path: Path, folders: list[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


def _found_in(folder: Path, exclude: list[Path]) -> list[Path]:
    """Images and videos under a folder, sorted, hidden entries and excluded folders skipped."""
    found = []
    for file in sorted(folder.rglob("*")):
        rel = file.relative_to(folder)
        if (file.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS and file.is_file()
                and not any(part.startswith(".") for part in rel.parts)
                and not _under(file.resolve(), exclude)):
            found.append(file)
    return found


def _distinct_names(entries: list[tuple[Path, str]]) -> list[str]:
    """(source, rel) -> rels where different sources never share one (parent folders prepended as needed)."""
    names = [rel for _, rel in entries]
    depth = [0] * len(entries)
    for _ in range(64):  # each pass lengthens every clashing name by one folder
        owners: dict[str, set[Path]] = {}
        for (source, _), name in zip(entries, names):
            owners.setdefault(name, set()).add(source.resolve())
        clashing = [i for i, name in enumerate(names) if len(owners[name]) > 1]
        if not clashing:
            return names
        grew = False
        for i in clashing:
            source, rel = entries[i]
            parents = source.resolve().parent.parts[1:]  # without the root
            hidden = len(Path(rel).parts) - 1  # folders already in rel
            available = parents[: len(parents) - hidden] if hidden else parents
            if depth[i] < len(available):
                depth[i] += 1
                names[i] = "/".join([*available[len(available) - depth[i]:], rel])
                grew = True
        if not grew:
            break
    owners = {}
    for (source, rel), name in zip(entries, names):
        owners.setdefault(name, []).append((rel, str(source)))
    clashes = sorted({rel: sorted({s for _, s in group}) for group in owners.values()
                      if len({s for _, s in group}) > 1 for rel, _ in group}.items())
    listing = "; ".join(f"{rel}: {', '.join(paths)}" for rel, paths in clashes)
    raise OutputNameClash(f"inputs that would be written under the same output name (rename or align them "
                          f"separately): {listing}")


def jobs_for_paths(inputs: list[Path], exclude: list[Path] = ()) -> list[AlignJob]:
    """Files and folders -> jobs (see the module docstring). Hidden files and folders are ignored, and so is
    anything under `exclude` (the output folders, so a rerun never aligns its own output).

    Raises FileNotFoundError for a missing input, OutputNameClash for inputs whose names cannot be told apart.
    """
    exclude = [Path(p).resolve() for p in exclude]
    entries: list[tuple[Path, str]] = []
    for inp in inputs:
        path = Path(inp)
        if path.is_dir():
            entries += [(f, f.relative_to(path).with_suffix("").as_posix()) for f in _found_in(path, exclude)]
        elif path.is_file():
            entries.append((path, path.stem))
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    seen, unique = set(), []
    for source, rel in entries:  # the same file reached twice under the same name is one input
        if (source.resolve(), rel) not in seen:
            seen.add((source.resolve(), rel))
            unique.append((source, rel))
    jobs: list[AlignJob] = []
    for (source, _), rel in zip(unique, _distinct_names(unique)):
        if source.suffix.lower() in VIDEO_EXTENSIONS:
            count = video_frame_count(source)
            if count == 0:
                jobs.append(AlignJob(str(source), rel, None, "cannot open video, or it holds no decodable frame"))
            jobs += [AlignJob(str(source), f"{rel}/{i:05d}", i) for i in range(count)]
        else:
            jobs.append(AlignJob(str(source), rel))
    return jobs


def name_clashes(jobs: list[AlignJob]) -> dict[str, list[str]]:
    """rel -> the different inputs (path, or path#frame) that share it; empty when every name is unique."""
    owners: dict[str, set[str]] = {}
    for job in jobs:
        owners.setdefault(job.rel, set()).add(job.source if job.frame is None else f"{job.source}#{job.frame}")
    return {rel: sorted(srcs) for rel, srcs in owners.items() if len(srcs) > 1}
