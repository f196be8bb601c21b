"""Evaluation stages: within-domain 3-fold tables, cross-domain transfer, data efficiency."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fgnet_core import checkpoints
from fgnet_core.data.au_tables import CROSS_DOMAIN_AUS, DATASET_AUS, canonical_dataset
from fgnet_core.evaluation.metrics import cross_domain_f1
from fgnet_core.evaluation.predict_set import predict_dataset
from fgnet_core.pipeline.config import Layout, cross_domain_folds, recipe_for
from fgnet_core.pipeline.runs import (flat_f1, labelled_set, publish_run, run_metrics_path, train_run,
                                      write_json)


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: metrics file missing; run the stage that writes it first") from None


def within_domain(params: dict, lay: Layout) -> tuple[pd.DataFrame, dict]:
    """Per-AU test F1 of every run, with the 3-fold mean per dataset x protocol.

    Returns the long table (one row per dataset x protocol x fold, plus 'mean' rows) and flat metrics.
    """
    rows = []
    for dataset in params["datasets"]:
        ds = canonical_dataset(dataset)
        for protocol in params["protocols"]:
            fold_rows = []
            for fold in params["folds"]:
                m = read_json(lay.run_metrics(ds, fold, protocol))
                fold_rows.append({"dataset": ds, "protocol": protocol, "fold": str(fold),
                                  **{f"AU{a}": m[f"f1_AU{a:02d}"] for a in DATASET_AUS[ds]}, "avg": m["f1_avg"]})
                if "allpos_f1_avg" in m and protocol == params["protocols"][0]:  # same test frames: list once
                    fold_rows.append({"dataset": ds, "protocol": "all-present", "fold": str(fold),
                                      **{f"AU{a}": m[f"allpos_f1_AU{a:02d}"] for a in DATASET_AUS[ds]},
                                      "avg": m["allpos_f1_avg"]})
            frame = pd.DataFrame(fold_rows)
            for proto, part in frame.groupby("protocol", sort=False):
                mean = part.drop(columns=["dataset", "protocol", "fold"]).mean().to_dict()
                rows += part.to_dict("records") + [{"dataset": ds, "protocol": proto, "fold": "mean", **mean}]
    table = pd.DataFrame(rows)
    flat = {}
    for _, r in table[table["fold"] == "mean"].iterrows():
        flat[f"{r['dataset']}_{r['protocol']}_avg"] = round(float(r["avg"]), 4)
        for a in DATASET_AUS[r["dataset"]]:
            flat[f"{r['dataset']}_{r['protocol']}_AU{a:02d}"] = round(float(r[f"AU{a}"]), 4)
    return table, flat


def cross_domain(params: dict, lay: Layout, device: str = "cpu", log=print) -> tuple[pd.DataFrame, dict]:
    """Models trained on one corpus scored on the other on AUs 1, 2, 4, 6, 12.

    `evaluation.cross_domain_folds: first` is the official protocol (the fold-0 model on the other
    corpus's fold-0 test set); `all` averages the three fold pairs (the demo's setting: one tiny model
    varies by about +-10 F1 with its seed, too much for a one-model comparison). Within-domain scores on the same
    AUs are listed beside them for the drop.
    """
    recipe = recipe_for(params)
    protocol = params["evaluation"]["cross_domain_protocol"]
    folds = params["folds"][:1] if cross_domain_folds(params) == "first" else params["folds"]
    datasets = [canonical_dataset(d) for d in params["datasets"]]
    rows = []
    for source in datasets:
        for fold in folds:
            model, _ = checkpoints.load_training_checkpoint(lay.run_dir(source, fold, protocol) / "best.pt")
            model.to(device).eval()
            for target in datasets:
                test = labelled_set(lay, params, target, fold, "test", False)
                preds = predict_dataset(model, test, recipe.eval_batch_size, device=device, amp=recipe.amp)
                scores = cross_domain_f1(preds.labels, preds.predictions, source, target)
                rows.append({"source": source, "target": target, "fold": fold, **scores})
                log(f"{source} -> {target} fold {fold}: F1 {scores['avg']:.1f} on AUs {list(CROSS_DOMAIN_AUS)}")
    table = pd.DataFrame(rows).groupby(["source", "target"], as_index=False).mean(numeric_only=True)
    table = table.drop(columns=["fold"])
    flat = {}
    for _, r in table.iterrows():
        key = f"{r['source']}_to_{r['target']}"
        flat.update(flat_f1({k: r[k] for k in [f"AU{a:02d}" for a in CROSS_DOMAIN_AUS] + ["avg"]}, key))
    return table, flat


def data_efficiency(params: dict, lay: Layout, dataset: str, device: str = "cpu", log=print,
                    progress=None) -> tuple[pd.DataFrame, dict]:
    """Train on nested random subsets of one fold's training frames and score each on its test fold."""
    eff = params["efficiency"]
    sizes = eff["sizes"][params["corpus"]]
    rows = []
    for size in sizes:
        out = train_run(params, lay, dataset, eff["fold"], eff["protocol"], size=size, log=log, progress=progress,
                        device=device)
        publish_run(out, lay, run_metrics_path(lay, dataset, eff["fold"], eff["protocol"], size))
        rows.append({"dataset": canonical_dataset(dataset), "requested": size, "train_frames": out.metrics["train_frames"],
                     "f1_avg": out.metrics["f1_avg"]})
    table = pd.DataFrame(rows)
    flat = {f"n{r['requested']}_f1_avg": r["f1_avg"] for r in rows}
    return table, flat


def save_table(table: pd.DataFrame, flat: dict, stem: str, lay: Layout) -> None:
    """`reports/metrics/<stem>.json` (flat, for `dvc metrics`) and `<stem>.csv` (the full table)."""
    write_json(lay.metrics_dir / f"{stem}.json", flat)
    table.to_csv(lay.metrics_dir / f"{stem}.csv", index=False, float_format="%.4f")
