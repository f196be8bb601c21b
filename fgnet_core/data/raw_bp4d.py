"""Reader of the raw BP4D-Spontaneous layout: which frames exist and how each is labelled.

    RAW/{subject}/{task}/{frame}.jpg             2D texture frames (padding of the number varies)
    RAW/AUCoding/AU_OCC/{subject}_{task}.csv     header row; frame number, then one column per AU code,
                                                 values 0/1, 9 = not coded

A frame enters the corpus when it has both an image and a label row coded (0/1) for every AU FG-Net uses.
Rows with a 9 (or an empty cell) in one of those AUs are dropped and counted; frames without label rows and
label rows without frames are counted, not fatal. Anything else unexpected in a label file (a cell that is
not a number, a value other than 0, 1, 9) is an error naming the file and line, because it means the corpus
is not what the labels assume; with `skip_bad_labels` such rows are skipped and counted (`bad_label_rows`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from fgnet_core.data.au_tables import DATASET_AUS, au_columns
from fgnet_core.data.folds import bp4d_rel

__all__ = ["NOT_CODED", "occ_label_files", "frame_files", "read_occ_csv", "scan_bp4d"]

NOT_CODED = 9
_SUBJECT = re.compile(r"^[FM]\d{3}$")
_TASK = re.compile(r"^T\d+$")
_AU_NAME = re.compile(r"^(?:au)?0*(\d+)$", re.IGNORECASE)
_LABEL_FILE = re.compile(r"^([FM]\d{3})_(T\d+)$")


def occ_label_files(raw_dir: str | Path) -> dict[tuple[str, str], Path]:
    """(subject, task) -> its AU_OCC label file."""
    folder = Path(raw_dir) / "AUCoding" / "AU_OCC"
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.glob("*.csv")):
        match = _LABEL_FILE.match(path.stem)
        if match:
            found[(match.group(1), match.group(2))] = path
    return found


def frame_sequences(raw_dir: str | Path) -> dict[tuple[str, str], Path]:
    """(subject, task) -> folder of its frames."""
    found = {}
    for subject_dir in sorted(p for p in Path(raw_dir).iterdir() if p.is_dir() and _SUBJECT.match(p.name)):
        for task_dir in sorted(p for p in subject_dir.iterdir() if p.is_dir() and _TASK.match(p.name)):
            found[(subject_dir.name, task_dir.name)] = task_dir
    return found


def frame_files(folder: str | Path) -> dict[int, Path]:
    """Frame number -> image file of one sequence folder; names are matched by integer value ('0012' = 12)."""
    frames: dict[int, Path] = {}
    for path in sorted(Path(folder).glob("*.jpg")):
        if path.stem.isdigit():
            frames.setdefault(int(path.stem), path)
    return frames


def read_occ_csv(path: str | Path) -> pd.DataFrame:
    """One AU_OCC file as a table indexed by frame number with columns named by AU number (9 kept).

    An empty cell reads as 9 (not coded); a cell that is not a number reads as NaN, for the caller to
    refuse. `table.attrs["lines"]` holds each row's line number in the file, and `attrs["raw"]` the text
    of the non-numeric cells ({(row position, AU): text}), for error messages.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, header=0)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise ValueError(f"{path}: cannot read BP4D AU occurrence file ({exc})") from exc
    if table.shape[1] < 2:
        raise ValueError(f"{path}: expected a frame column followed by AU columns")
    frames = pd.to_numeric(table.iloc[:, 0], errors="coerce")
    if frames.isna().any() or (frames < 0).any() or (frames != frames.round()).any():
        bad = int(np.flatnonzero((frames.isna() | (frames < 0) | (frames != frames.round())).to_numpy())[0])
        raise ValueError(f"{path}: invalid frame number {table.iloc[bad, 0]!r} on line {bad + 2}")
    frames = frames.astype(np.int64)
    if frames.duplicated().any():
        raise ValueError(f"{path}: frame {int(frames[frames.duplicated()].iloc[0])} appears twice")

    columns = {}
    for name in table.columns[1:]:
        match = _AU_NAME.match(str(name).strip())
        if match:
            columns.setdefault(int(match.group(1)), name)
    out = pd.DataFrame(index=pd.Index(frames.to_numpy(), name="frame"))
    raw: dict[tuple[int, int], str] = {}
    for au, name in columns.items():
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        empty = table[name].isna().to_numpy() | (table[name].astype(str).str.strip() == "").to_numpy()
        for r in np.flatnonzero(np.isnan(values) & ~empty):
            raw[(int(r), au)] = str(table[name].iloc[r])
        out[au] = np.where(empty, NOT_CODED, values)  # an empty cell is not a coding; text stays NaN
    out.attrs["lines"] = list(range(2, len(out) + 2))
    out.attrs["raw"] = raw
    return out


def _labels_of(path: Path, skip_bad: bool = False) -> tuple[pd.DataFrame, set[int], set[int]]:
    """Coded rows of one label file as a table with the FG-Net AU columns, the frame numbers not coded,
    and those of malformed rows skipped (only with skip_bad; otherwise the first one raises)."""
    table = read_occ_csv(path)
    aus = DATASET_AUS["BP4D"]
    missing = [au for au in aus if au not in table.columns]
    if missing:
        raise ValueError(f"{path}: no column for AU {', '.join(map(str, missing))}")
    values = table[list(aus)].to_numpy()  # [rows, 12], NaN where a cell is not a number
    valid = np.isin(values, (0, 1, NOT_CODED))
    bad = ~valid.all(axis=1)
    if bad.any() and not skip_bad:
        r, c = np.argwhere(~valid)[0]
        shown = table.attrs["raw"].get((int(r), aus[c]), values[r, c])
        raise ValueError(f"{path}: line {table.attrs['lines'][r]}: AU {aus[c]} of frame {table.index[r]} is "
                         f"{shown!r}; expected 0, 1 or {NOT_CODED} (pass --skip-bad-labels to skip such rows)")
    coded = ~bad & ~(values == NOT_CODED).any(axis=1)
    not_coded = ~bad & ~coded
    labels = pd.DataFrame(values[coded].astype(np.int64), columns=au_columns("BP4D"), index=table.index[coded])
    return labels, {int(n) for n in table.index[not_coded]}, {int(n) for n in table.index[bad]}


def scan_bp4d(raw_dir: str | Path, subjects=None, skip_bad_labels: bool = False) -> tuple[pd.DataFrame, dict[str, int]]:
    """Labelled frames of a raw BP4D tree and the counts of what was found and dropped.

    Returns (frames, counts). `frames` has one row per usable frame, sorted by `rel`, with columns
    `subject`, `rel` (e.g. 'F001/T1/02440'), `source` (image file), `frame` (None: not a video) and the AU
    columns. `counts` holds sequences, frames_found, label_rows, not_coded, bad_label_rows (malformed rows
    skipped with `skip_bad_labels`; without it the first one raises), missing_frames, unlabelled_frames and
    labelled.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"{raw_dir}: raw BP4D folder not found")
    wanted = None if subjects is None else set(subjects)
    labels = {k: v for k, v in occ_label_files(raw_dir).items() if wanted is None or k[0] in wanted}
    sequences = {k: v for k, v in frame_sequences(raw_dir).items() if wanted is None or k[0] in wanted}
    counts = dict.fromkeys(
        ("sequences", "frames_found", "label_rows", "not_coded", "bad_label_rows", "missing_frames",
         "unlabelled_frames", "labelled"), 0
    )
    rows = []
    for key in sorted(set(labels) | set(sequences)):
        subject, task = key
        counts["sequences"] += 1
        frames = frame_files(sequences[key]) if key in sequences else {}
        counts["frames_found"] += len(frames)
        if key not in labels:
            counts["unlabelled_frames"] += len(frames)
            continue
        coded, dropped, bad = _labels_of(labels[key], skip_bad_labels)
        counts["label_rows"] += len(coded) + len(dropped) + len(bad)
        counts["not_coded"] += len(dropped)
        counts["bad_label_rows"] += len(bad)
        rowed = set(coded.index) | dropped | bad  # a frame with a 9-row counts as not coded, not as unlabelled
        counts["unlabelled_frames"] += sum(1 for n in frames if n not in rowed)
        for number, values in zip(coded.index, coded.to_numpy()):
            if number not in frames:
                counts["missing_frames"] += 1
                continue
            rows.append((subject, bp4d_rel(subject, task, int(number)), str(frames[number]), None, *values))
    table = pd.DataFrame(rows, columns=["subject", "rel", "source", "frame", *au_columns("BP4D")])
    table = table.sort_values("rel", kind="stable").reset_index(drop=True)
    counts["labelled"] = len(table)
    return table, counts
