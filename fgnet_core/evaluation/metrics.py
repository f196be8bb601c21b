"""AU detection metrics: per-AU F1 x 100 exactly as sklearn's binary `f1_score`, averages, cross-domain views."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score

from fgnet_core.data.au_tables import CROSS_DOMAIN_AUS, DATASET_AUS, canonical_dataset, cross_domain_columns


def per_au_f1(labels: np.ndarray, predictions: np.ndarray, aus: Sequence[int]) -> dict[str, float]:
    """labels, predictions int [N, n_aus] -> {'AU01': F1 x 100, ..., 'avg': mean over AUs}.

    An AU with no positives and no predicted positives scores 0, as sklearn does (zero_division=0).
    """
    labels, predictions = np.asarray(labels).astype(int), np.asarray(predictions).astype(int)
    if labels.shape != predictions.shape or labels.ndim != 2 or labels.shape[1] != len(aus):
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must both be [N, {len(aus)}]")
    scores = {f"AU{au:02d}": 100.0 * float(f1_score(labels[:, i], predictions[:, i], zero_division=0))
              for i, au in enumerate(aus)}
    scores["avg"] = float(np.mean(list(scores.values())))
    return scores


def dataset_f1(labels: np.ndarray, predictions: np.ndarray, dataset: str) -> dict[str, float]:
    """Per-AU F1 in the dataset's column order."""
    return per_au_f1(labels, predictions, DATASET_AUS[canonical_dataset(dataset)])


def cross_domain_f1(labels: np.ndarray, predictions: np.ndarray, source: str, target: str) -> dict[str, float]:
    """F1 on the AUs both corpora annotate (1, 2, 4, 6, 12).

    `labels` are the target corpus's columns; `predictions` come from a model trained on `source`,
    in the source's channel order. Each side is mapped to the shared AUs before scoring.
    """
    src_cols = cross_domain_columns(source)
    tgt_cols = cross_domain_columns(target)
    return per_au_f1(np.asarray(labels)[:, tgt_cols], np.asarray(predictions)[:, src_cols], CROSS_DOMAIN_AUS)


def mean_over_folds(fold_scores: Sequence[dict[str, float]]) -> dict[str, float]:
    """Average each key over folds (the paper's 3-fold mean)."""
    keys = list(fold_scores[0])
    return {k: float(np.mean([s[k] for s in fold_scores])) for k in keys}
