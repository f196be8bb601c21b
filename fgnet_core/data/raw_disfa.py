"""Reader of the raw DISFA layout: left-camera videos and per-AU intensity files.

    RAW/Videos_LeftCamera/LeftVideoSN001_comp.avi     one video per subject
    RAW/ActionUnit_Labels/SN001/SN001_au{N}.txt       lines 'frame,intensity', frames 1-based, intensity 0-5

Frame n of the label files is video frame n - 1 (0-based) and is named `disfa_frame_name(n)` ('00001' for the
first frame), as in the official label files. Occurrence is intensity >= 2 (the convention of FG-Net and the
works it compares with); intensities are kept too. A frame is used when every AU FG-Net uses has a line for
it and the video has that frame; other frames are counted, not fatal. A malformed line, an empty AU file or
a missing AU file is an error naming the file (and line); with `skip_bad_labels` malformed lines are skipped
and counted (`bad_label_lines`), and a subject with an empty or unreadable AU file is skipped and counted
(`bad_label_files`), never silently.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from fgnet_core.data.au_tables import DATASET_AUS, au_columns
from fgnet_core.data.folds import disfa_rel
from fgnet_core.data.align_inputs import video_frame_count  # one home for reading video lengths

__all__ = [
    "OCCURRENCE_THRESHOLD", "MAX_INTENSITY", "intensity_columns", "video_files", "label_folders",
    "read_intensity_file", "video_frame_count", "scan_disfa", "EmptyLabelFile",
]

OCCURRENCE_THRESHOLD = 2
MAX_INTENSITY = 5
_VIDEO = re.compile(r"^LeftVideo(SN\d+)_comp\.avi$", re.IGNORECASE)
_SUBJECT = re.compile(r"^SN\d+$")


def intensity_columns() -> list[str]:
    """Column names of the intensity values in `scan_disfa` frames: 'au1_intensity', ..."""
    return [f"{c}_intensity" for c in au_columns("DISFA")]


def video_files(raw_dir: str | Path) -> dict[str, Path]:
    """Subject -> left-camera video."""
    folder = Path(raw_dir) / "Videos_LeftCamera"
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.iterdir()):
        match = _VIDEO.match(path.name)
        if match:
            found[match.group(1).upper()] = path
    return found


def label_folders(raw_dir: str | Path) -> dict[str, Path]:
    """Subject -> folder of its per-AU label files."""
    folder = Path(raw_dir) / "ActionUnit_Labels"
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and _SUBJECT.match(p.name)}


class EmptyLabelFile(ValueError):
    """A DISFA AU file with no label line at all."""


def read_intensity_file(path: str | Path, skip_bad: bool = False, bad_lines: list | None = None) -> dict[int, int]:
    """1-based frame -> intensity 0-5 of one `SNxxx_au{N}.txt` file.

    Raises ValueError naming the file and line for a malformed line (with `skip_bad`: skips it and appends
    its line number to `bad_lines`), EmptyLabelFile when the file holds no line at all.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read DISFA label file ({exc})") from exc
    if not any(line.strip() for line in lines):
        raise EmptyLabelFile(f"{path}: empty DISFA label file (no 'frame,intensity' line)")
    values: dict[int, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            frame, intensity = _parse_line(path, number, line)
            if frame in values:
                raise ValueError(f"{path}: frame {frame} appears twice (line {number})")
        except ValueError:
            if not skip_bad:
                raise
            if bad_lines is not None:
                bad_lines.append(number)
            continue
        values[frame] = intensity
    return values


def _parse_line(path: Path, number: int, line: str) -> tuple[int, int]:
    fields = [f.strip() for f in line.split(",")]
    try:
        frame, intensity = (int(f) for f in fields)
    except ValueError:
        raise ValueError(f"{path}: line {number} is {line!r}; expected 'frame,intensity'") from None
    if frame < 1:
        raise ValueError(f"{path}: line {number} has frame {frame}; DISFA frames are 1-based")
    if not 0 <= intensity <= MAX_INTENSITY:
        raise ValueError(f"{path}: line {number} has intensity {intensity}; expected 0-{MAX_INTENSITY}")
    return frame, intensity


def _subject_labels(folder: Path, subject: str, skip_bad: bool = False,
                    bad_lines: list | None = None) -> tuple[dict[int, list[int]], set[int]]:
    """Frame -> intensities of the FG-Net AUs (frames coded for all of them), and the frames coded for some."""
    per_au = []
    for au in DATASET_AUS["DISFA"]:
        path = folder / f"{subject}_au{au}.txt"
        if not path.is_file():
            raise ValueError(f"{path}: DISFA label file for AU {au} not found")
        per_au.append(read_intensity_file(path, skip_bad, bad_lines))
    complete = set.intersection(*(set(v) for v in per_au))
    incomplete = set.union(*(set(v) for v in per_au)) - complete
    return {n: [v[n] for v in per_au] for n in sorted(complete)}, incomplete


def scan_disfa(raw_dir: str | Path, subjects=None, skip_bad_labels: bool = False) -> tuple[pd.DataFrame, dict[str, int]]:
    """Labelled frames of a raw DISFA tree and the counts of what was found and dropped.

    Returns (frames, counts). `frames` has one row per usable frame, sorted by `rel`, with columns `subject`,
    `rel` (e.g. 'SN001/00001'), `source` (the video), `frame` (0-based video index), the AU occurrence
    columns and the `intensity_columns()`. `counts` holds videos, frames_found, label_rows,
    incomplete_labels, bad_label_lines, bad_label_files (both only with `skip_bad_labels`; without it the
    first one raises), missing_frames, unlabelled_frames and labelled.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"{raw_dir}: raw DISFA folder not found")
    wanted = None if subjects is None else set(subjects)
    videos = {k: v for k, v in video_files(raw_dir).items() if wanted is None or k in wanted}
    folders = {k: v for k, v in label_folders(raw_dir).items() if wanted is None or k in wanted}
    counts = dict.fromkeys(
        ("videos", "frames_found", "label_rows", "incomplete_labels", "bad_label_lines", "bad_label_files",
         "missing_frames", "unlabelled_frames", "labelled"), 0,
    )
    rows = []
    for subject in sorted(set(videos) | set(folders)):
        n_frames = video_frame_count(videos[subject]) if subject in videos else 0
        counts["videos"] += subject in videos
        counts["frames_found"] += n_frames
        if subject not in folders:
            counts["unlabelled_frames"] += n_frames
            continue
        bad_lines: list[int] = []
        try:
            labels, incomplete = _subject_labels(folders[subject], subject, skip_bad_labels, bad_lines)
        except ValueError:
            if not skip_bad_labels:
                raise
            counts["bad_label_files"] += 1  # an empty or unreadable AU file: the subject is skipped
            continue
        counts["bad_label_lines"] += len(bad_lines)
        counts["label_rows"] += len(labels) + len(incomplete)
        counts["incomplete_labels"] += len(incomplete)
        usable = [n for n in labels if n <= n_frames]
        counts["missing_frames"] += len(labels) - len(usable)
        with_lines = sum(1 for n in (*labels, *incomplete) if n <= n_frames)
        counts["unlabelled_frames"] += n_frames - with_lines
        for n in usable:
            intensities = labels[n]
            occurrence = [int(v >= OCCURRENCE_THRESHOLD) for v in intensities]
            rows.append((subject, disfa_rel(subject, n), str(videos[subject]), n - 1, *occurrence, *intensities))
    columns = ["subject", "rel", "source", "frame", *au_columns("DISFA"), *intensity_columns()]
    table = pd.DataFrame(rows, columns=columns)
    table = table.sort_values("rel", kind="stable").reset_index(drop=True)
    counts["labelled"] = len(table)
    return table, counts
