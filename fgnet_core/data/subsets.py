"""The training subsets of the data-efficiency experiments (`labels/<fold>/train_<N>.csv`), from one source.

With the real corpora the subsets are FG-Net's own: the image lists of the official `train_N.csv` files, shipped
in `official_subset_lists/` (paths only, MIT, see the LICENSE there) and intersected with the frames that were
ingested and aligned. The demo corpus has no official lists; it gets nested seeded samples of each fold's
training rows instead (`folds.sample_training_rows`: `train_50` is inside `train_150`). Ingestion writes these
files and training reads them, so what a data-efficiency run trains on is always on disk to inspect.
"""
from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fgnet_core.data.au_tables import canonical_dataset
from fgnet_core.data.folds import FOLDS, SUBSET_SIZES, sample_training_rows

__all__ = ["OFFICIAL_LISTS", "SUBSET_SOURCES", "TrainingSubset", "official_subset_paths", "subset_split",
           "training_subsets"]

OFFICIAL_LISTS = Path(__file__).resolve().parent / "official_subset_lists"
SUBSET_SOURCES = ("official", "seeded")  # FG-Net's lists (real corpora) | nested seeded samples (demo)


@dataclass(frozen=True)
class TrainingSubset:
    """One `train_N` file's rows, and how many frames the official list names that the table lacks."""

    size: int
    rows: pd.DataFrame
    missing: int = 0


def subset_split(size: int) -> str:
    """Split name of a data-efficiency subset: 100 -> 'train_100' (the official file name)."""
    if isinstance(size, bool) or int(size) != size or int(size) < 1:
        raise ValueError(f"subset size must be a positive integer, got {size!r}")
    return f"train_{int(size)}"


def official_subset_paths(dataset: str, fold: int, size: int) -> list[str]:
    """The image paths of FG-Net's `labels/<fold>/train_<size>.csv`, in the official order."""
    dataset = canonical_dataset(dataset)
    if fold not in FOLDS or size not in SUBSET_SIZES:
        raise ValueError(f"no official {dataset} subset for fold {fold!r}, size {size!r}: the official lists are "
                         f"folds {list(FOLDS)} x sizes {list(SUBSET_SIZES)}")
    path = OFFICIAL_LISTS / dataset / str(int(fold)) / f"{subset_split(size)}.txt.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [line for line in handle.read().splitlines() if line]


def training_subsets(train: pd.DataFrame, dataset: str, fold: int, sizes: Sequence[int], source: str, *,
                     seed: int = 0, column: str = "image_path") -> list[TrainingSubset]:
    """The `train_N` tables of one fold, drawn from that fold's training rows `train`.

    official: the rows of `train` the official list names (frames that were not ingested or not aligned are
    counted in `missing`). seeded: a seeded sample of min(N, rows) rows, nested across sizes.
    """
    if source not in SUBSET_SOURCES:
        raise ValueError(f"subset source must be one of {', '.join(SUBSET_SOURCES)}, got {source!r}")
    out = []
    for size in sorted(dict.fromkeys(int(s) for s in sizes)):
        subset_split(size)
        if source == "official":
            listed = official_subset_paths(dataset, fold, size)
            rows = train[train[column].isin(set(listed))].reset_index(drop=True)
            out.append(TrainingSubset(size, rows, missing=len(listed) - len(rows)))
        else:
            out.append(TrainingSubset(size, sample_training_rows(train, min(size, len(train)), seed=seed,
                                                                 column=column)))
    return out
