"""Derive the demo corpus's compact AU statistics from FG-Net label files.

The demo renderer must sample AU vectors whose marginals and main co-occurrences look like BP4D / DISFA,
without shipping (or reading at run time) the label files. This script compresses the official
`labels/{0,1,2}/test.csv` files of each dataset into:
  - per-AU prevalence,
  - a latent-class model (a few "expression prototypes": mixture weight + per-AU on-probability), fitted by
    EM, which reproduces the marginals exactly and the main pairwise correlations approximately,
  - the per-AU mean run length (frames at the native 25 fps) for temporal persistence,
  - the observed phi correlation matrix (2 decimals) so tests can check the sampler.

Usage: python tools/derive_demo_au_stats.py LABELS_ROOT > fgnet_core/democorpus/au_stats.py
where LABELS_ROOT holds `BP4D/labels/{0,1,2}/test.csv` and `DISFA/labels/{0,1,2}/test.csv`.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

N_PROTOTYPES = {"BP4D": 8, "DISFA": 7}


def load_labels(root: Path, dataset: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """AU column names, labels [N, A] (0/1) and a sequence id per row (subject/task or subject)."""
    rows, seqs, header = [], [], None
    for fold in (0, 1, 2):
        with open(root / dataset / "labels" / str(fold) / "test.csv", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            for r in reader:
                parts = r[0].split("/")
                seqs.append("/".join(parts[2:-1]))
                rows.append([int(v) for v in r[1:]])
    return header[1:], np.asarray(rows, dtype=np.int8), np.asarray(seqs)


def mean_run_lengths(x: np.ndarray, seqs: np.ndarray) -> np.ndarray:
    """Mean length of constant stretches per AU, breaking at sequence boundaries.  # [A]"""
    boundary = seqs[1:] != seqs[:-1]                                  # [N-1]
    changes = (np.diff(x, axis=0) != 0) | boundary[:, None]            # [N-1, A]
    return len(x) / (changes.sum(0) + 1.0)


def fit_latent_classes(x: np.ndarray, k: int, seed: int = 0, iters: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """EM for a mixture of independent Bernoullis. Returns weights [K] and on-probabilities [K, A]."""
    rng = np.random.default_rng(seed)
    patterns, counts = np.unique(x, axis=0, return_counts=True)     # fit on unique rows, weighted
    pat = patterns.astype(np.float64)                                # [U, A]
    w_row = counts / counts.sum()                                    # [U]
    best = None
    for restart in range(6):
        resp = rng.dirichlet(np.ones(k), size=len(pat))              # [U, K]
        for _ in range(iters):
            nk = (w_row[:, None] * resp).sum(0) + 1e-12              # [K]
            weights = nk / nk.sum()
            probs = (w_row[:, None] * resp).T @ pat / nk[:, None]    # [K, A]
            probs = probs.clip(1e-3, 1 - 1e-3)
            loglik = pat @ np.log(probs).T + (1 - pat) @ np.log(1 - probs).T + np.log(weights)  # [U, K]
            m = loglik.max(1, keepdims=True)
            resp = np.exp(loglik - m)
            total = resp.sum(1, keepdims=True)
            resp /= total
        ll = float((w_row * (np.log(total[:, 0]) + m[:, 0])).sum())
        if best is None or ll > best[0]:
            best = (ll, weights.copy(), probs.copy())
    _, weights, probs = best
    order = np.argsort(-weights)
    return weights[order], probs[order]


def model_correlation(weights: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Phi correlation implied by the latent-class model.  # [A, A]"""
    p = weights @ probs
    joint = (probs.T * weights) @ probs
    np.fill_diagonal(joint, p)
    cov = joint - np.outer(p, p)
    sd = np.sqrt(np.diag(cov))
    return cov / np.outer(sd, sd)


def _fmt(values, nd=3) -> str:
    return "(" + ", ".join(f"{v:.{nd}f}" for v in values) + ("," if len(values) == 1 else "") + ")"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("labels_root", type=Path, help="folder holding BP4D/labels and DISFA/labels")
    args = ap.parse_args(argv)

    out = [
        '"""Compact AU statistics of BP4D and DISFA for the demo corpus sampler (generated; do not edit).',
        "",
        "Derived from the official FG-Net label files (labels/{0,1,2}/test.csv, all three folds) by",
        "tools/derive_demo_au_stats.py. Per dataset:",
        "  AUS         AU numbers in FG-Net column order",
        "  PREVALENCE  fraction of frames with the AU present",
        "  PROTOTYPES  latent-class model: (weight, per-AU on-probability) per expression prototype; sampling a",
        "              prototype, then each AU independently, reproduces PREVALENCE and the main correlations",
        "  MEAN_RUN    mean length (frames at 25 fps) of constant on/off stretches per AU",
        "  CORRELATION observed phi correlation between AU labels (2 decimals), for checking the sampler",
        '"""',
        "from __future__ import annotations",
        "",
        "AUS: dict[str, tuple[int, ...]] = {}",
        "PREVALENCE: dict[str, tuple[float, ...]] = {}",
        "PROTOTYPES: dict[str, tuple[tuple[float, tuple[float, ...]], ...]] = {}",
        "MEAN_RUN: dict[str, tuple[float, ...]] = {}",
        "CORRELATION: dict[str, tuple[tuple[float, ...], ...]] = {}",
    ]
    for dataset in ("BP4D", "DISFA"):
        cols, x, seqs = load_labels(args.labels_root, dataset)
        aus = tuple(int(c[2:]) for c in cols)
        weights, probs = fit_latent_classes(x, N_PROTOTYPES[dataset])
        corr = np.corrcoef(x.T.astype(np.float64))
        err = np.abs(model_correlation(weights, probs) - corr)[np.triu_indices(len(aus), 1)]
        print(f"{dataset}: {len(x)} frames, prevalence error "
              f"{np.abs(weights @ probs - x.mean(0)).max():.4f}, correlation error mean {err.mean():.3f} "
              f"max {err.max():.3f}", file=sys.stderr)
        out += [
            "",
            f"# {dataset}: {len(x)} labelled frames, {len(set(seqs))} sequences",
            f"AUS[{dataset!r}] = {aus!r}",
            f"PREVALENCE[{dataset!r}] = {_fmt(x.mean(0))}",
            f"PROTOTYPES[{dataset!r}] = (",
            *[f"    ({w:.4f}, {_fmt(p)})," for w, p in zip(weights, probs)],
            ")",
            f"MEAN_RUN[{dataset!r}] = {_fmt(mean_run_lengths(x, seqs), 1)}",
            f"CORRELATION[{dataset!r}] = (",
            *[f"    {_fmt(row, 2)}," for row in corr],
            ")",
        ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
