"""The training stages: every run of one dataset (protocols x folds x seeds, or subset sizes), and their tables.

Each stage writes one row per run to `reports/metrics/<stage>/<DATASET>.csv` (protocol, fold, seed, size,
backbone, per-AU test F1, ...), a small JSON of seed means for `dvc metrics`, and the runs' curves to
`reports/curves/<stage>_<DATASET>.csv` for `dvc plots`. Tables and figures are built from those rows.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from fgnet_core.atomic import write_json
from fgnet_core.data.au_tables import canonical_dataset
from fgnet_core.pipeline.config import Config, Layout
from fgnet_core.pipeline.sweep import RunSpec, efficiency_specs, run_sweep, seed_summary, training_specs

ID_COLUMNS = ["dataset", "protocol", "fold", "seed", "size", "backbone"]


def sweep_table(specs: list[RunSpec], results: dict[str, dict]) -> pd.DataFrame:
    """One row per run: its identity, then its metrics (F1 x 100 per AU and `f1_avg`)."""
    rows = []
    for spec in specs:
        m = results[spec.name]
        rows.append({"dataset": spec.dataset, "protocol": spec.protocol, "fold": spec.fold, "seed": spec.seed,
                     "size": spec.size, "backbone": spec.backbone, "run": spec.name,
                     **{k: v for k, v in m.items() if k not in ID_COLUMNS and k not in ("run", "dataset")}})
    return pd.DataFrame(rows)


def curves_table(specs: list[RunSpec], runs_dir: Path) -> pd.DataFrame:
    """Every run's per-epoch history, stacked, with the run's identity columns."""
    parts = []
    for spec in specs:
        history = runs_dir / spec.name / "history.csv"
        if history.exists():
            h = pd.read_csv(history)
            for col, value in zip(ID_COLUMNS, (spec.dataset, spec.protocol, spec.fold, spec.seed, spec.size,
                                               spec.backbone)):
                h.insert(0, col, value)
            parts.append(h)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def seed_means(table: pd.DataFrame, keys: list[str]) -> dict:
    """{key values: {'mean', 'sd', 'n'}} of the 3-fold mean F1 per seed (the paper's number, once per seed)."""
    per_seed = table.groupby(keys + ["seed"])["f1_avg"].mean()
    out = {}
    for group, values in per_seed.groupby(level=list(range(len(keys)))):
        group = group if isinstance(group, tuple) else (group,)
        out["_".join(str(g) for g in group)] = seed_summary(list(values))
    return out


def run_training_stage(config: Config, lay: Layout, dataset: str, *, log=print) -> pd.DataFrame:
    """train@<DATASET>: protocols x folds x seeds with the configured backbone."""
    ds = canonical_dataset(dataset)
    specs = training_specs(config, ds, config.backbone)
    return _run_and_publish(config, lay, specs, lay.runs_dir / ds, f"train/{ds}", ["protocol"], log)


def run_efficiency_stage(config: Config, lay: Layout, dataset: str, *, log=print) -> pd.DataFrame:
    """data_efficiency@<DATASET>: every subset size x fold x efficiency seed."""
    ds = canonical_dataset(dataset)
    specs = efficiency_specs(config, ds, config.backbone)
    return _run_and_publish(config, lay, specs, lay.efficiency_dir(ds), f"efficiency/{ds}", ["size"], log)


def _run_and_publish(config: Config, lay: Layout, specs: list[RunSpec], runs_dir: Path, stem: str,
                     keys: list[str], log) -> pd.DataFrame:
    runtime = config.runtime
    log(f"{stem}: {len(specs)} runs on {runtime.workers} worker(s) x {runtime.threads} thread(s)")
    results = run_sweep(specs, config, lay.root, runs_dir, workers=runtime.workers, threads=runtime.threads, log=log)
    table = sweep_table(specs, results)
    (lay.metrics_dir / stem).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(lay.metrics_dir / f"{stem}.csv", index=False, float_format="%.4f")
    write_json(lay.metrics_dir / f"{stem}.json", {"f1_avg_over_seeds": seed_means(table, keys)})
    curves = curves_table(specs, runs_dir)
    if not curves.empty:
        lay.curves_dir.mkdir(parents=True, exist_ok=True)
        curves.to_csv(lay.curves_dir / f"{stem.replace('/', '_')}.csv", index=False, float_format="%.4f")
    return table
