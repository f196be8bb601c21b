"""Turn a raw BP4D or DISFA corpus into the FG-Net data layout: aligned faces plus per-fold label files.

    OUT/<DATASET>/aligned_images/<rel>.jpg        written by the alignment module
    OUT/<DATASET>/aligned_landmarks/<rel>.npy     written by the alignment module
    OUT/<DATASET>/failures.csv                    frames alignment could not process
    OUT/<DATASET>/labels/<fold>/<split>.csv       `image_path` relative to OUT, as in the official files
    OUT/<DATASET>/labels/intensities.csv          DISFA only: AU intensities 0-5 of every listed frame
    OUT/<DATASET>/ingest_summary.json             the counts printed at the end (a record of the last run)

Only labelled frames are aligned, and only frames whose alignment outputs exist enter the label files. Per
fold: `train` holds every training-subject row, `test` the test subjects, `val` the held-out validation
subjects (`folds.validation_subjects`, drawn among the training subjects present), `train_sub` = `train`
minus `val` (for checkpoint selection without touching the test set), and `train_N` the data-efficiency
subsets of `train` for the requested sizes (`subsets.training_subsets`: the official FG-Net lists or nested
seeded samples; any other `train_N` file left from an earlier run is removed).
Reruns are cheap: alignment skips outputs that exist, and label files are rewritten deterministically.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from fgnet_core.atomic import write_text
from fgnet_core.data.au_tables import au_columns, canonical_dataset
from fgnet_core.data.folds import (
    FOLDS, SUBSET_SIZES, aligned_image_path, all_subjects, test_subjects, train_subjects, validation_subjects,
)
from fgnet_core.data.labels import (
    IMAGE_COLUMN, intensity_csv_path, label_csv_path, write_label_csv,
)
from fgnet_core.data.raw_bp4d import scan_bp4d
from fgnet_core.data.raw_disfa import intensity_columns, scan_disfa
from fgnet_core.data.subsets import subset_split, training_subsets

__all__ = ["IngestReport", "PlannedJob", "ingest_bp4d", "ingest_disfa", "ingest_frames", "write_fold_files"]


@dataclass(frozen=True)
class PlannedJob:
    """An alignment job with the fields of `AlignJob`, handed to a caller-supplied aligner (no dlib import)."""

    source: str
    rel: str
    frame: int | None = None


@dataclass
class IngestReport:
    """What an ingestion found, dropped, aligned and wrote."""

    dataset: str
    out_dir: Path  # OUT/<DATASET>
    scan: dict[str, int]  # counts from the raw reader
    outside_folds: list[str] = field(default_factory=list)  # subjects not in the official split (skipped)
    requested_missing: list[str] = field(default_factory=list)  # --subjects entries not found in the raw tree
    align_processed: int = 0
    align_skipped: int = 0  # outputs that already existed
    align_failed: int = 0
    aligned: int = 0  # labelled frames with alignment outputs: the rows of the label files
    validation: dict[int, list[str]] = field(default_factory=dict)  # fold -> validation subjects
    split_rows: dict[str, int] = field(default_factory=dict)  # '<fold>/<split>' -> rows written
    subset_missing: dict[str, int] = field(default_factory=dict)  # '<fold>/train_N' -> official frames not ingested

    def summary(self) -> str:
        s = self.scan
        lines = [
            f"{self.dataset} ingestion -> {self.out_dir}",
            f"  frames found       {s.get('frames_found', 0)}",
            f"  label rows         {s.get('label_rows', 0)}",
            f"  labelled frames    {s.get('labelled', 0)}",
        ]
        if "not_coded" in s:
            lines.append(f"  dropped (9 = not coded)  {s['not_coded']}")
        if "incomplete_labels" in s:
            lines.append(f"  dropped (not every AU labelled)  {s['incomplete_labels']}")
        for key, what in (("bad_label_rows", "rows"), ("bad_label_lines", "lines"), ("bad_label_files", "files")):
            if s.get(key):
                lines.append(f"  skipped (malformed label)  {s[key]} {what}")
        lines += [
            f"  labels without a frame   {s.get('missing_frames', 0)}",
            f"  frames without labels    {s.get('unlabelled_frames', 0)}",
            f"  aligned            {self.aligned} (new {self.align_processed}, already done {self.align_skipped})",
            f"  alignment failed   {self.align_failed} (see {self.out_dir / 'failures.csv'})",
        ]
        if self.outside_folds:
            lines.append(f"  skipped subjects outside the official folds: {' '.join(self.outside_folds)}")
        if self.requested_missing:
            lines.append(f"  requested subjects not found: {' '.join(self.requested_missing)}")
        for fold in FOLDS:
            parts = [f"{k.split('/')[1]} {v}" for k, v in self.split_rows.items() if k.startswith(f"{fold}/")]
            lines.append(f"  fold {fold}: " + ", ".join(parts))
        if any(self.subset_missing.values()):
            lines.append("  official subset frames not ingested: " + ", ".join(
                f"{k} {v}" for k, v in self.subset_missing.items() if v))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["out_dir"]  # the summary file lives there; an absolute path would tie it to one machine
        data["validation"] = {str(k): v for k, v in self.validation.items()}
        return data


Aligner = Callable[..., object]  # run_alignment(jobs, out_dir, *, workers, predictor_path, progress, **align_options)


def ingest_bp4d(raw_dir, out_dir, *, workers: int = 2, seed: int = 0, subjects=None, predictor_path=None,
                transform_size: int | None = None, padding: str | None = None, upsample: int | None = None,
                progress: bool = True, verbose: bool = True, aligner: Aligner | None = None,
                subset_sizes: Sequence[int] = SUBSET_SIZES, subset_source: str = "seeded",
                skip_bad_labels: bool = False) -> IngestReport:
    """Raw BP4D tree -> OUT/BP4D (see the module docstring); malformed labels raise unless skip_bad_labels."""
    frames, counts = scan_bp4d(raw_dir, subjects, skip_bad_labels=skip_bad_labels)
    return ingest_frames("BP4D", frames, counts, out_dir, raw_dir=raw_dir, workers=workers, seed=seed,
                         subjects=subjects, predictor_path=predictor_path, transform_size=transform_size,
                         padding=padding, upsample=upsample, progress=progress, verbose=verbose, aligner=aligner,
                         subset_sizes=subset_sizes, subset_source=subset_source)


def ingest_disfa(raw_dir, out_dir, *, workers: int = 2, seed: int = 0, subjects=None, predictor_path=None,
                 transform_size: int | None = None, padding: str | None = None, upsample: int | None = None,
                 progress: bool = True, verbose: bool = True, aligner: Aligner | None = None,
                 subset_sizes: Sequence[int] = SUBSET_SIZES, subset_source: str = "seeded",
                 skip_bad_labels: bool = False) -> IngestReport:
    """Raw DISFA tree -> OUT/DISFA (see the module docstring); malformed labels raise unless skip_bad_labels."""
    frames, counts = scan_disfa(raw_dir, subjects, skip_bad_labels=skip_bad_labels)
    return ingest_frames("DISFA", frames, counts, out_dir, raw_dir=raw_dir, workers=workers, seed=seed,
                         subjects=subjects, predictor_path=predictor_path, transform_size=transform_size,
                         padding=padding, upsample=upsample, progress=progress, verbose=verbose, aligner=aligner,
                         subset_sizes=subset_sizes, subset_source=subset_source)


def ingest_frames(dataset: str, frames: pd.DataFrame, counts: dict[str, int], out_dir, *, raw_dir=None,
                  workers: int = 2, seed: int = 0, subjects=None, predictor_path=None,
                  transform_size: int | None = None, padding: str | None = None, upsample: int | None = None,
                  progress: bool = True, verbose: bool = True, aligner: Aligner | None = None,
                  subset_sizes: Sequence[int] = SUBSET_SIZES, subset_source: str = "seeded") -> IngestReport:
    """Align the labelled frames a raw reader found and write the label files (shared by both corpora).

    transform_size / padding / upsample go to the aligner when given (None: its defaults, the authors' recipe).
    subset_sizes / subset_source choose the `train_N` files (see `subsets.training_subsets`).
    """
    dataset = canonical_dataset(dataset)
    out_root = Path(out_dir)
    dataset_dir = out_root / dataset
    report = IngestReport(dataset=dataset, out_dir=dataset_dir, scan=dict(counts))
    if subjects is not None:
        present = set(frames["subject"])
        report.requested_missing = sorted(set(subjects) - present)

    known = set(all_subjects(dataset))
    report.outside_folds = sorted(set(frames["subject"]) - known)
    frames = frames[frames["subject"].isin(known)].reset_index(drop=True)
    if frames.empty:
        where = f" in {raw_dir}" if raw_dir is not None else ""
        raise ValueError(f"no labelled {dataset} frames of the official subjects found{where}; "
                         f"check the raw layout (see fgnet_core/data/raw_{dataset.lower()}.py)")

    if aligner is None:
        job_type, aligner = _alignment_api()
    else:
        job_type = PlannedJob  # a caller-supplied aligner reads only .source, .rel and .frame
    jobs = [job_type(source=s, rel=r, frame=None if pd.isna(f) else int(f))
            for s, r, f in zip(frames["source"], frames["rel"], frames["frame"])]
    options = {"workers": workers, "predictor_path": predictor_path, "progress": progress}
    for key, value in (("transform_size", transform_size), ("padding", padding), ("upsample", upsample)):
        if value is not None:
            options[key] = value
    summary = aligner(jobs, dataset_dir, **options)
    report.align_processed = int(getattr(summary, "processed", 0))
    report.align_skipped = int(getattr(summary, "skipped", 0))
    report.align_failed = int(getattr(summary, "failed", 0))
    ok_rels = set(summary.ok_rels)

    aligned = frames[frames["rel"].isin(ok_rels)].reset_index(drop=True)
    report.aligned = len(aligned)
    table = pd.DataFrame({IMAGE_COLUMN: [aligned_image_path(dataset, r) for r in aligned["rel"]]})
    for col in au_columns(dataset):
        table[col] = aligned[col].to_numpy()
    table["subject"] = aligned["subject"].to_numpy()
    table = table.sort_values(IMAGE_COLUMN, kind="stable").reset_index(drop=True)

    write_fold_files(table, dataset, out_root, seed=seed, report=report, subset_sizes=subset_sizes,
                     subset_source=subset_source)
    if dataset == "DISFA":
        intensities = pd.DataFrame({IMAGE_COLUMN: [aligned_image_path(dataset, r) for r in aligned["rel"]]})
        for col, src in zip(au_columns(dataset), intensity_columns()):
            intensities[col] = aligned[src].to_numpy()
        intensities = intensities.sort_values(IMAGE_COLUMN, kind="stable").reset_index(drop=True)
        write_label_csv(intensities, intensity_csv_path(out_root, dataset), dataset)

    summary_path = dataset_dir / "ingest_summary.json"  # outside labels/, which reruns leave byte-identical
    write_text(summary_path, json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n")
    if verbose:
        print(report.summary())
    return report


def write_fold_files(table: pd.DataFrame, dataset: str, out_root, *, seed: int = 0,
                     report: IngestReport | None = None, subset_sizes: Sequence[int] = SUBSET_SIZES,
                     subset_source: str = "seeded") -> dict[str, int]:
    """Write every fold's split files from a table of `image_path`, `subject` and AU columns.

    Returns '<fold>/<split>' -> rows written (also stored in `report` when given).
    """
    dataset = canonical_dataset(dataset)
    rows: dict[str, int] = {}
    present = set(table["subject"])
    for fold in FOLDS:
        train = table[table["subject"].isin(train_subjects(dataset, fold))].reset_index(drop=True)
        val_subjects = validation_subjects(dataset, fold, seed=seed, among=present)
        splits = {
            "train": train,
            "test": table[table["subject"].isin(test_subjects(dataset, fold))],
            "val": train[train["subject"].isin(val_subjects)],
            "train_sub": train[~train["subject"].isin(val_subjects)],
        }
        for subset in training_subsets(train, dataset, fold, subset_sizes, subset_source, seed=seed):
            splits[subset_split(subset.size)] = subset.rows
            if report is not None and subset_source == "official":
                report.subset_missing[f"{fold}/{subset_split(subset.size)}"] = subset.missing
        for stale in label_csv_path(out_root, dataset, fold, "train").parent.glob("train_*.csv"):
            if re.fullmatch(r"train_\d+", stale.stem) and stale.stem not in splits:
                stale.unlink()  # a subset size of an earlier run
        for split, frame in splits.items():
            write_label_csv(frame, label_csv_path(out_root, dataset, fold, split), dataset)
            rows[f"{fold}/{split}"] = len(frame)
        if report is not None:
            report.validation[fold] = list(val_subjects)
    if report is not None:
        report.split_rows = rows
    return rows


def _alignment_api():
    """(AlignJob, run_alignment), imported only now (the runner's workers pull in dlib and OpenCV)."""
    # deferred: dlib and OpenCV load only when alignment runs (and tests replace the runner's attributes)
    from fgnet_core.data.align_batch import AlignJob, run_alignment

    return AlignJob, run_alignment
