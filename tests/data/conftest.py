"""Shared fixtures of the data-layer tests."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

from fgnet_core.data.labels import read_label_csv
from fgnet_core.paths import REPO_ROOT

REFERENCE_LABELS = REPO_ROOT.parent / "shared" / "reference" / "fgnet-labels"


@pytest.fixture(scope="session")
def reference_labels() -> Path:
    """The official FG-Net label files (test-only reference data); skipped where they are not available."""
    if not (REFERENCE_LABELS / "BP4D" / "labels" / "0" / "test.csv").is_file():
        pytest.skip("official FG-Net label files not available")
    return REFERENCE_LABELS


@lru_cache(maxsize=None)
def _official(dataset: str, fold: int, split: str):
    return read_label_csv(REFERENCE_LABELS / dataset / "labels" / str(fold) / f"{split}.csv", dataset)


@pytest.fixture(scope="session")
def official(reference_labels):
    """`official(dataset, fold, split)` -> that official label file, read once per session (do not modify)."""
    return _official
