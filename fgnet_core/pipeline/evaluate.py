"""Evaluation stages: within-domain tables, cross-domain transfer, data efficiency — over folds and seeds.

Every number carries its protocol and its spread. The headline of a cell is the paper's number (the mean
over the 3 folds) computed once per seed, reported as mean ± sd over seeds; `sd_folds` is the spread of
the per-fold means (each averaged over seeds), i.e. how much the test subjects matter.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from fgnet_core import checkpoints
from fgnet_core.atomic import write_json
from fgnet_core.data.au_tables import CROSS_DOMAIN_AUS, DATASET_AUS, canonical_dataset
from fgnet_core.evaluation.metrics import cross_domain_f1
from fgnet_core.evaluation.predict_set import predict_dataset
from fgnet_core.pipeline.config import Config, Layout
from fgnet_core.pipeline.runs import labelled_set
from fgnet_core.pipeline.sweep import seed_summary


def read_runs(path: Path) -> pd.DataFrame:
    """A stage's per-run table (`reports/metrics/<stage>/<DATASET>.csv`)."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: run table missing; run the stage that writes it first") from None


def spread(runs: pd.DataFrame, column: str) -> dict:
    """mean ± sd over seeds of the fold-mean of `column`, and sd over folds of the seed-mean."""
    per_seed = runs.groupby("seed")[column].mean()
    per_fold = runs.groupby("fold")[column].mean()
    s = seed_summary(list(per_seed))
    return {"mean": s["mean"], "sd_seeds": s["sd"], "n_seeds": s["n"],
            "sd_folds": round(float(per_fold.std(ddof=1)) if len(per_fold) > 1 else 0.0, 4),
            "n_folds": int(len(per_fold))}


def within_domain(config: Config, lay: Layout, backbone_runs: dict[str, pd.DataFrame] | None = None
                  ) -> tuple[pd.DataFrame, dict]:
    """One row per dataset x protocol (plus the all-present rule): per-AU means and the avg's spread."""
    rows, flat = [], {}
    for ds in config.datasets:
        runs = read_runs(lay.metrics_dir / f"train/{ds}.csv")
        au_cols = [f"f1_AU{a:02d}" for a in DATASET_AUS[ds]]
        for protocol, part in runs.groupby("protocol", sort=False):
            s = spread(part, "f1_avg")
            rows.append({"dataset": ds, "protocol": protocol, "backbone": part["backbone"].iloc[0],
                         **{f"AU{a}": part[c].mean() for a, c in zip(DATASET_AUS[ds], au_cols)},
                         "avg": s["mean"], "sd_seeds": s["sd_seeds"], "sd_folds": s["sd_folds"],
                         "runs": len(part)})
            flat[f"{ds}_{protocol}"] = {"f1_avg": s["mean"], "sd_seeds": s["sd_seeds"], "sd_folds": s["sd_folds"]}
        baseline = runs.drop_duplicates("fold")  # the rule's F1 depends on the test fold only
        rows.append({"dataset": ds, "protocol": "all-present rule", "backbone": "-",
                     **{f"AU{a}": baseline[f"allpos_{c}"].mean() for a, c in zip(DATASET_AUS[ds], au_cols)},
                     "avg": baseline["allpos_f1_avg"].mean(), "sd_seeds": 0.0,
                     "sd_folds": round(float(baseline["allpos_f1_avg"].std(ddof=1)), 4), "runs": 0})
        flat[f"{ds}_all_present_rule"] = {"f1_avg": round(float(baseline["allpos_f1_avg"].mean()), 4)}
    return pd.DataFrame(rows), flat


def cross_domain_runs(config: Config, lay: Layout, runs_dirs: dict[str, Path], tables: dict[str, pd.DataFrame],
                      protocol: str, device: str = "cpu", log=print) -> pd.DataFrame:
    """Every selected model of every source corpus scored on each corpus's test fold of the same index, on the
    AUs both annotate. One row per (source, target, fold, seed)."""
    recipe = config.recipe
    folds = list(config.folds)
    folds = folds[:1] if config.cross_domain_folds == "first" else folds
    datasets = list(config.datasets)
    test_sets = {(t, f): labelled_set(lay, config, t, f, "test", False) for t in datasets for f in folds}
    rows = []
    for source in datasets:
        runs = tables[source]
        runs = runs[(runs["protocol"] == protocol) & (runs["fold"].isin(folds)) & (runs["size"] == 0)]
        for _, run in runs.iterrows():
            model, _ = checkpoints.load_training_checkpoint(runs_dirs[source] / run["run"] / "best.pt")
            model.to(device).eval()
            for target in datasets:
                preds = predict_dataset(model, test_sets[(target, int(run["fold"]))], recipe.eval_batch_size,
                                        device=device, amp=recipe.amp)
                scores = cross_domain_f1(preds.labels, preds.predictions, source, target)
                rows.append({"source": source, "target": target, "fold": int(run["fold"]), "seed": int(run["seed"]),
                             "backbone": run["backbone"], "protocol": protocol, **scores})
            log(f"{run['run']}: " + ", ".join(f"-> {r['target']} {r['avg']:.1f}" for r in rows[-len(datasets):]))
    return pd.DataFrame(rows)


def cross_domain_summary(per_run: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Per (backbone, source, target): per-AU means, the avg's spread, and the drop from the target's own models."""
    rows, flat = [], {}
    for (backbone, source, target), part in per_run.groupby(["backbone", "source", "target"], sort=False):
        s = spread(part, "avg")
        rows.append({"backbone": backbone, "source": source, "target": target,
                     **{f"AU{a}": part[f"AU{a:02d}"].mean() for a in CROSS_DOMAIN_AUS},
                     "avg": s["mean"], "sd_seeds": s["sd_seeds"], "sd_folds": s["sd_folds"], "runs": len(part)})
    table = pd.DataFrame(rows)
    own = {(r["backbone"], r["target"]): r["avg"] for _, r in table.iterrows() if r["source"] == r["target"]}
    table["drop"] = [own.get((r["backbone"], r["target"]), float("nan")) - r["avg"] if r["source"] != r["target"]
                     else 0.0 for _, r in table.iterrows()]
    for _, r in table.iterrows():
        flat[f"{r['backbone']}_{r['source']}_to_{r['target']}"] = {"f1_avg": round(r["avg"], 4),
                                                                   "sd_seeds": r["sd_seeds"]}
    return table, flat


def cross_domain(config: Config, lay: Layout, device: str = "cpu", log=print
                 ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The cross-domain stage on the training stages' models -> (per-run rows, summary table, flat metrics)."""
    datasets = config.datasets
    tables = {ds: read_runs(lay.metrics_dir / f"train/{ds}.csv") for ds in datasets}
    per_run = cross_domain_runs(config, lay, {ds: lay.runs_dir / ds for ds in datasets}, tables,
                                config.evaluation.cross_domain_protocol, device=device, log=log)
    table, flat = cross_domain_summary(per_run)
    return per_run, table, flat


def efficiency_curve(subset_runs: pd.DataFrame, full_runs: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """F1 against training-set size: the subset runs plus the full training set (the training stage's runs of the
    same protocol), one row per (dataset, backbone, size) with mean ± sd over seeds and the mean frame count."""
    full = full_runs[full_runs["protocol"] == protocol]
    rows = []
    for (ds, backbone, size), part in pd.concat([subset_runs, full]).groupby(["dataset", "backbone", "size"]):
        s = spread(part, "f1_avg")
        rows.append({"dataset": ds, "backbone": backbone, "protocol": protocol,
                     "size": "all" if size == 0 else int(size), "train_frames": round(part["train_frames"].mean(), 1),
                     "f1_avg": s["mean"], "sd_seeds": s["sd_seeds"], "sd_folds": s["sd_folds"],
                     "n_seeds": s["n_seeds"], "runs": len(part)})
    table = pd.DataFrame(rows)
    return table.sort_values(["dataset", "backbone", "train_frames"]).reset_index(drop=True)


def data_efficiency_table(config: Config, lay: Layout, dataset: str) -> tuple[pd.DataFrame, dict]:
    ds = canonical_dataset(dataset)
    table = efficiency_curve(read_runs(lay.metrics_dir / f"efficiency/{ds}.csv"),
                             read_runs(lay.metrics_dir / f"train/{ds}.csv"), config.efficiency.protocol)
    flat = {f"n_{r['size']}": {"f1_avg": r["f1_avg"], "sd_seeds": r["sd_seeds"], "train_frames": r["train_frames"]}
            for _, r in table.iterrows()}
    return table, flat


def save_table(table: pd.DataFrame, flat: dict, stem: str, lay: Layout) -> None:
    """`reports/metrics/<stem>.json` (for `dvc metrics`) and `<stem>.csv` (the full table)."""
    write_json(lay.metrics_dir / f"{stem}.json", flat)
    table.to_csv(lay.metrics_dir / f"{stem}.csv", index=False, float_format="%.4f")
