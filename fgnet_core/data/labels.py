"""Reading and writing FG-Net label files: `image_path,au1,au2,...` with one 0/1 row per aligned frame.

The official files come in two shapes (`test.csv` without an index column, `train_N.csv` with an extra
unnamed leading index column); both are read as they are. Everything this project writes uses the plain
shape, atomically, so a crashed run never leaves a half-written label file behind. A DISFA intensity file
has the same layout with intensities 0-5 instead of 0/1.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from fgnet_core.atomic import write_text
from fgnet_core.data.au_tables import au_columns, canonical_dataset
from fgnet_core.data.folds import SUBSET_SIZES

__all__ = [
    "IMAGE_COLUMN", "SPLITS", "LabelFileError", "LabelFileNotFound",
    "label_csv_path", "intensity_csv_path", "read_label_csv", "read_intensity_csv", "write_label_csv",
]

IMAGE_COLUMN = "image_path"

# Per-fold label files written by ingestion: all training subjects, test subjects, held-out validation
# subjects, training minus validation subjects, and the seeded data-efficiency subsets of `train`.
SPLITS: tuple[str, ...] = ("train", "test", "val", "train_sub") + tuple(f"train_{n}" for n in SUBSET_SIZES)

_INDEX_COLUMN = re.compile(r"^(Unnamed: \d+)?$")


class LabelFileError(ValueError):
    """A label file that cannot be used; the message names the file and the problem."""


class LabelFileNotFound(LabelFileError, FileNotFoundError):
    """A label file that does not exist (both a ValueError and a FileNotFoundError)."""


def label_csv_path(root: str | Path, dataset: str, fold: int, split: str) -> Path:
    """`root/<DATASET>/labels/<fold>/<split>.csv`, the layout of the official label files."""
    return Path(root) / canonical_dataset(dataset) / "labels" / str(int(fold)) / f"{split}.csv"


def intensity_csv_path(root: str | Path, dataset: str = "DISFA") -> Path:
    """`root/<DATASET>/labels/intensities.csv`: AU intensities of every aligned, labelled frame."""
    return Path(root) / canonical_dataset(dataset) / "labels" / "intensities.csv"


def read_label_csv(path: str | Path, dataset: str, *, allow_empty: bool = False) -> pd.DataFrame:
    """Occurrence labels: columns `image_path` + the dataset's AU columns in canonical order, values int 0/1."""
    return _read(path, dataset, max_value=1, kind="label", allow_empty=allow_empty)


def read_intensity_csv(path: str | Path, dataset: str = "DISFA", *, allow_empty: bool = False) -> pd.DataFrame:
    """Intensity labels (0-5) in the label-file layout."""
    return _read(path, dataset, max_value=5, kind="intensity", allow_empty=allow_empty)


def _read(path: str | Path, dataset: str, *, max_value: int, kind: str, allow_empty: bool) -> pd.DataFrame:
    path = Path(path)
    columns = au_columns(dataset)
    if not path.is_file():
        raise LabelFileNotFound(f"{path}: {kind} file not found")
    if path.stat().st_size == 0:
        raise LabelFileError(f"{path}: {kind} file is empty")
    try:
        table = pd.read_csv(path, dtype={IMAGE_COLUMN: str}, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError as exc:
        raise LabelFileError(f"{path}: {kind} file is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise LabelFileError(f"{path}: cannot read {kind} file ({exc})") from exc

    table = table.drop(columns=[c for c in table.columns if _INDEX_COLUMN.match(str(c))])
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in [IMAGE_COLUMN, *columns] if c not in table.columns]
    if missing:
        raise LabelFileError(
            f"{path}: missing column(s) {', '.join(missing)} for {canonical_dataset(dataset)} "
            f"(found: {', '.join(map(str, table.columns)) or 'none'})"
        )
    if len(table) == 0 and not allow_empty:
        raise LabelFileError(f"{path}: {kind} file has a header but no rows")

    out = pd.DataFrame({IMAGE_COLUMN: table[IMAGE_COLUMN]})
    bad_paths = out[IMAGE_COLUMN].isna() | (out[IMAGE_COLUMN].astype(str).str.strip() == "")
    if bad_paths.any():
        raise LabelFileError(f"{path}: empty {IMAGE_COLUMN} on line {int(np.flatnonzero(bad_paths)[0]) + 2}")
    for col in columns:
        out[col] = _checked_values(table[col], path, col, max_value)
    return out.reset_index(drop=True)


def _checked_values(values: pd.Series, path: Path, col: str, max_value: int) -> np.ndarray:
    """Column as int64, or LabelFileError naming the first bad value and its line."""
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(numeric) & (numeric == np.round(numeric)) & (numeric >= 0) & (numeric <= max_value)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        allowed = "0/1" if max_value == 1 else f"integers 0-{max_value}"
        raise LabelFileError(
            f"{path}: column {col} must hold {allowed}; found {values.iloc[i]!r} on line {i + 2}"
        )
    return numeric.astype(np.int64)


def write_label_csv(df: pd.DataFrame, path: str | Path, dataset: str | None = None) -> Path:
    """Write `image_path,au...` (no index column) atomically; returns the path.

    With `dataset`, the AU columns are written in canonical order and any other column is left out; without
    it, `image_path` goes first and the remaining columns keep their order.
    """
    path = Path(path)
    if IMAGE_COLUMN not in df.columns:
        raise ValueError(f"cannot write {path}: the table has no {IMAGE_COLUMN} column")
    if dataset is not None:
        missing = [c for c in au_columns(dataset) if c not in df.columns]
        if missing:
            raise ValueError(f"cannot write {path}: missing column(s) {', '.join(missing)}")
        order = [IMAGE_COLUMN, *au_columns(dataset)]
    else:
        order = [IMAGE_COLUMN, *[c for c in df.columns if c != IMAGE_COLUMN]]
    table = df[order].copy()
    for col in order[1:]:
        table[col] = table[col].astype(np.int64)
    write_text(path, table.to_csv(index=False, lineterminator="\n"))
    return path

