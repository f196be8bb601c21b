"""The official subject-independent 3-fold split of BP4D and DISFA, and the file-naming conventions of frames.

FG-Net (like ME-GraphAU and LibreFace) tests fold k on one third of the subjects and trains on the other two
thirds, so no subject is ever in both. This module is the one table of that split. It also carves a
reproducible validation split out of a fold's training subjects (the official code selects checkpoints on
the test set; the 'clean' protocol selects them on these held-out subjects instead) and draws the
reproducible `train_N` subsets used by the data-efficiency experiments.

Reproducibility does not depend on NumPy's generators: choices are made by ranking items on a SHA-256 hash
of (seed, item), so they are stable across library versions, platforms and row order, and nested (with one
seed, `train_100` is a subset of `train_1000`).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import PurePath

from fgnet_core.data.au_tables import canonical_dataset

__all__ = [
    "N_FOLDS", "FOLDS", "TEST_SUBJECTS", "SUBSET_SIZES",
    "test_subjects", "train_subjects", "all_subjects", "fold_of", "subject_of",
    "validation_subjects", "default_validation_size", "sample_training_rows", "stable_rank",
    "bp4d_frame_name", "disfa_frame_name", "bp4d_rel", "disfa_rel", "aligned_image_path", "subjects_in",
]

N_FOLDS = 3
FOLDS: tuple[int, ...] = tuple(range(N_FOLDS))

# Test subjects of folds 0, 1, 2 (the folders `labels/0`, `labels/1`, `labels/2` of the official label files).
TEST_SUBJECTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "BP4D": (
        ("F001", "F002", "F008", "F009", "F010", "F016", "F018", "F023",
         "M001", "M004", "M007", "M008", "M012", "M014"),
        ("F003", "F005", "F011", "F013", "F020", "F022",
         "M002", "M005", "M010", "M011", "M013", "M016", "M017", "M018"),
        ("F004", "F006", "F007", "F012", "F014", "F015", "F017", "F019", "F021",
         "M003", "M006", "M009", "M015"),
    ),
    "DISFA": (
        ("SN001", "SN002", "SN009", "SN010", "SN016", "SN026", "SN027", "SN030", "SN032"),
        ("SN006", "SN011", "SN012", "SN013", "SN018", "SN021", "SN024", "SN028", "SN031"),
        ("SN003", "SN004", "SN005", "SN007", "SN008", "SN017", "SN023", "SN025", "SN029"),
    ),
}

# Training-subset sizes of the data-efficiency experiments (`train_100.csv` ... `train_10000.csv`).
SUBSET_SIZES: tuple[int, ...] = (100, 1000, 5000, 10000)

_FRAME_WIDTH = 5  # frame numbers in the official label files' image paths are zero-padded to 5 digits


def _check_fold(fold: int) -> int:
    if isinstance(fold, bool) or int(fold) != fold or not 0 <= int(fold) < N_FOLDS:
        raise ValueError(f"fold must be one of {list(FOLDS)}, got {fold!r}")
    return int(fold)


def test_subjects(dataset: str, fold: int) -> tuple[str, ...]:
    """Subjects whose frames form fold `fold`'s test set (sorted)."""
    return tuple(sorted(TEST_SUBJECTS[canonical_dataset(dataset)][_check_fold(fold)]))


test_subjects.__test__ = False  # a library function, not a test, when a test module imports it


def train_subjects(dataset: str, fold: int) -> tuple[str, ...]:
    """Subjects of fold `fold`'s training set: the other folds' test subjects (sorted)."""
    fold = _check_fold(fold)
    table = TEST_SUBJECTS[canonical_dataset(dataset)]
    return tuple(sorted(s for k, group in enumerate(table) if k != fold for s in group))


def all_subjects(dataset: str) -> tuple[str, ...]:
    """Every subject of the corpus (sorted)."""
    return tuple(sorted(s for group in TEST_SUBJECTS[canonical_dataset(dataset)] for s in group))


def fold_of(dataset: str, subject: str) -> int:
    """The fold whose test set holds `subject`; ValueError for a subject outside the official split."""
    for k, group in enumerate(TEST_SUBJECTS[canonical_dataset(dataset)]):
        if subject in group:
            return k
    raise ValueError(f"subject {subject!r} is not part of the official {canonical_dataset(dataset)} folds")


def subject_of(image_path: str | PurePath) -> str:
    """Subject of a label-file image path: its third component.

    'BP4D/aligned_images/F001/T1/02440.jpg' -> 'F001'; 'DISFA/aligned_images/SN001/00001.jpg' -> 'SN001'.
    """
    parts = [p for p in str(image_path).replace("\\", "/").split("/") if p not in ("", ".")]
    if len(parts) < 4:
        raise ValueError(
            f"image path {str(image_path)!r} is not of the form '<DATASET>/aligned_images/<subject>/.../<frame>.jpg'"
        )
    return parts[2]


# ----------------------------------------------------------------------------------------------- seeded choice

def stable_rank(items: Iterable[str], *key: object) -> list[str]:
    """`items` ordered by SHA-256 of (key..., item): a seeded shuffle that no library version changes."""
    prefix = "|".join(str(k) for k in key) + "|"
    return sorted(items, key=lambda s: (hashlib.sha256((prefix + str(s)).encode("utf-8")).digest(), str(s)))


def default_validation_size(n_train_subjects: int) -> int:
    """About 1/6 of the training subjects (rounded half up), at least 1, and never all of them.

    BP4D folds (27-28 training subjects) -> 5; DISFA folds (18) -> 3; a pool of one subject -> 0.
    """
    if n_train_subjects < 2:
        return 0
    return min(max(1, (n_train_subjects + 3) // 6), n_train_subjects - 1)


def validation_subjects(
    dataset: str, fold: int, n: int | None = None, *, seed: int = 0, among: Iterable[str] | None = None,
) -> tuple[str, ...]:
    """Held-out validation subjects carved from fold `fold`'s training subjects (sorted).

    The choice is the first `n` training subjects in a seeded hash order, so it is the same on every machine.
    `among` restricts the pool (e.g. to the subjects actually present in a partial corpus); the default `n`
    is `default_validation_size(len(pool))`.
    """
    dataset = canonical_dataset(dataset)
    pool = set(train_subjects(dataset, fold))
    if among is not None:
        pool &= set(among)
    if n is None:
        n = default_validation_size(len(pool))
    if not 0 <= n <= len(pool):
        raise ValueError(f"cannot hold out {n} validation subjects from {len(pool)} training subjects")
    return tuple(sorted(stable_rank(pool, "validation", dataset, fold, seed)[:n]))


def sample_training_rows(rows, n: int, *, seed: int = 0, column: str = "image_path"):
    """Reproducible subset of `n` rows of a label table (pandas DataFrame), kept in the input order.

    Rows are ranked by a seeded hash of their `column` value, so the subset does not depend on row order, a
    frame dropped elsewhere does not reshuffle the rest, and smaller subsets are nested in larger ones.
    """
    if not 0 <= n <= len(rows):
        raise ValueError(f"cannot sample {n} rows from a table of {len(rows)} rows")
    prefix = f"subset|{seed}|".encode("utf-8")
    keys = [hashlib.sha256(prefix + str(v).encode("utf-8")).digest() for v in rows[column]]
    order = sorted(range(len(keys)), key=lambda i: (keys[i], i))
    chosen = sorted(order[:n])
    return rows.iloc[chosen].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ frame names

def bp4d_frame_name(n: int) -> str:
    """File stem of BP4D frame `n` (the AU_OCC frame number) in the aligned corpus: 2440 -> '02440'.

    Raw BP4D frame files are not padded consistently ('2440.jpg', '001.jpg', ...), so raw files are matched by
    their integer value and renamed to this fixed width, which is the one the official label files use.
    """
    return _padded(n, "BP4D")


def disfa_frame_name(n: int) -> str:
    """File stem of DISFA frame `n` (1-based, as in the label files: 1 = the video's first frame) -> '00001'."""
    if int(n) < 1:
        raise ValueError(f"DISFA frame numbers are 1-based, got {n}")
    return _padded(n, "DISFA")


def _padded(n: int, dataset: str) -> str:
    if isinstance(n, bool) or int(n) != n or int(n) < 0:
        raise ValueError(f"{dataset} frame number must be a non-negative integer, got {n!r}")
    return f"{int(n):0{_FRAME_WIDTH}d}"


def bp4d_rel(subject: str, task: str, frame: int) -> str:
    """Name of a BP4D frame relative to `aligned_images/`, without extension: 'F001/T1/02440'."""
    return f"{subject}/{task}/{bp4d_frame_name(frame)}"


def disfa_rel(subject: str, frame: int) -> str:
    """Name of a DISFA frame (1-based) relative to `aligned_images/`, without extension: 'SN001/00001'."""
    return f"{subject}/{disfa_frame_name(frame)}"


def aligned_image_path(dataset: str, rel: str) -> str:
    """Label-file `image_path` of an aligned frame.

    ('BP4D', 'F001/T1/02440') -> 'BP4D/aligned_images/F001/T1/02440.jpg'
    """
    return f"{canonical_dataset(dataset)}/aligned_images/{rel}.jpg"


def subjects_in(paths: Sequence[str]) -> set[str]:
    """Distinct subjects of a sequence of label-file image paths."""
    return {subject_of(p) for p in paths}
