"""The results table on disk: rows written as they are scored, so an interrupted run loses nothing scored.

Rows go to `<out>.partial` (CSV, flushed after every batch); a finished run renames it to `<out>` (CSV) or
writes `<out>` as Parquet and removes it, so `<out>` only ever appears complete. A run stopped by Ctrl-C,
SIGTERM or a crash leaves `<out>.partial`; `--resume` reads it (or a finished `<out>`), keeps its scored
rows, and the run skips those frames. Rows of inputs that failed (`error`) are retried, not kept.
A `.partial` left behind is never overwritten without `--resume`.
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pandas as pd

from fgnet_core.atomic import atomic_path

FORMATS = ("csv", "parquet")


class ResultsFileError(ValueError):
    """The results file cannot be written as asked (it is an input, a run to resume is in the way, ...)."""


def results_format(path: Path, fmt: str | None) -> str:
    """'csv' | 'parquet': as given, else from the suffix (.parquet / .pq), else csv."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ResultsFileError(f"unknown results format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return fmt
    return "parquet" if Path(path).suffix.lower() in (".parquet", ".pq") else "csv"


def partial_path(path: Path) -> Path:
    return Path(f"{path}.partial")


def _cell(value) -> str:
    """One CSV cell as pandas writes it with float_format='%.6g' (missing values empty)."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


class ResultsWriter:
    """Appends rows to `<out>.partial` as they are scored; `finish` publishes `<out>` atomically."""

    def __init__(self, path: str | Path, columns: list[str], *, fmt: str | None = None, resume: bool = False):
        self.path = Path(path)
        self.columns = list(columns)
        self.fmt = results_format(self.path, fmt)
        self.partial = partial_path(self.path)
        self.resume = resume
        self._file = None
        self._csv = None

    def open(self) -> pd.DataFrame:
        """Start the partial file -> rows kept from an earlier run (empty unless resuming)."""
        if self.fmt == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise ResultsFileError("--format parquet needs the pyarrow package (pip install pyarrow)") from None
        if self.partial.exists() and not self.resume:
            raise ResultsFileError(f"{self.partial}: holds the rows of an interrupted run; pass --resume to "
                                   "continue it, or delete it to start over")
        kept = self._earlier_rows() if self.resume else pd.DataFrame(columns=self.columns)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.partial) as tmp:
            kept.to_csv(tmp, index=False, float_format="%.6g")  # rewritten whole: a torn last line is dropped
        self._file = open(self.partial, "a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file, lineterminator="\n")
        return kept

    def _earlier_rows(self) -> pd.DataFrame:
        source = self.partial if self.partial.exists() else self.path if self.path.exists() else None
        if source is None:
            return pd.DataFrame(columns=self.columns)
        try:
            if source == self.path and self.fmt == "parquet":
                table = pd.read_parquet(source)
            else:
                table = pd.read_csv(source, on_bad_lines="skip", engine="python")
        except Exception as exc:  # pandas raises many kinds here
            raise ResultsFileError(f"{source}: cannot read the earlier results to resume ({exc})") from None
        if list(table.columns) != self.columns:
            raise ResultsFileError(f"{source}: its columns differ from this run's (another model, dataset or "
                                   "--openface-columns?); write to another file instead of --resume")
        return table[table["status"].isin(["ok", "no_face"])].reset_index(drop=True)

    def write(self, rows: list[dict]) -> None:
        for row in rows:
            self._csv.writerow([_cell(row.get(col)) for col in self.columns])
        self._file.flush()

    def close(self) -> None:
        """Close the partial file, keeping it (an interrupted run)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def finish(self, table: pd.DataFrame) -> Path:
        """Publish the finished table at `path` (atomic rename) and drop the partial file."""
        self.close()
        if self.fmt == "csv":
            os.replace(self.partial, self.path)
        else:
            with atomic_path(self.path) as tmp:
                table.to_parquet(tmp, index=False)
            self.partial.unlink(missing_ok=True)
        return self.path
