"""The paper's findings in miniature: the same runs with a generatively pretrained backbone and from scratch.

FG-Net claims that a generator pretrained on many diverse faces makes AU detection generalise across
corpora and need little labelled data. This stage trains both backbones of the tiny preset on identical
runs (one protocol, several seeds, every fold): within-domain, the data-efficiency subsets, and the
cross-domain transfer of the full-data models. Each claim is a difference of seed means with its standard
error (seeds are the independent repetitions; each seed's value is the 3-fold mean). The runs' folders are
scratch space (`workspace/compare`), removed once the tables are written: the results are the tables.
"""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd

from fgnet_core.atomic import write_json, write_text
from fgnet_core.pipeline import report_figures as figs
from fgnet_core.pipeline.config import BACKBONES, Config, Layout
from fgnet_core.pipeline.evaluate import cross_domain_runs, cross_domain_summary, efficiency_curve, spread
from fgnet_core.pipeline.report import md_table
from fgnet_core.pipeline.sweep import efficiency_specs, run_sweep, training_specs
from fgnet_core.pipeline.train_stage import sweep_table



def comparison_config(config: Config) -> Config:
    """The config with the comparison's protocol, seeds and subset sizes in place of the demo's."""
    spec = config.compare
    efficiency = config.efficiency.derive(protocol=spec.protocol, seeds=spec.seeds,
                                          sizes={config.corpus: spec.sizes})
    return config.derive(protocols=(spec.protocol,), seeds=spec.seeds, efficiency=efficiency)


def difference(p: pd.Series, s: pd.Series) -> dict:
    """Pretrained minus scratch over per-seed values: the difference of means and its standard error."""
    diff = float(p.mean() - s.mean())
    se = float(np.sqrt(p.var(ddof=1) / len(p) + s.var(ddof=1) / len(s)))
    return {"pretrained": round(float(p.mean()), 2), "scratch": round(float(s.mean()), 2),
            "difference": round(diff, 2), "se": round(se, 2), "beyond_2se": bool(diff > 2 * se)}


def per_seed(table: pd.DataFrame, column: str) -> pd.Series:
    """Each seed's 3-fold mean of `column`."""
    return table.groupby("seed")[column].mean()


def claims(runs: pd.DataFrame, cross: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    """One row per claim of the paper, each a pretrained-minus-scratch difference over seeds."""
    rows = []
    full = runs[runs["size"] == 0]
    for ds in datasets:
        part = full[full["dataset"] == ds]
        rows.append({"claim": f"within-domain {ds}", **difference(
            per_seed(part[part["backbone"] == "pretrained"], "f1_avg"),
            per_seed(part[part["backbone"] == "scratch"], "f1_avg"))})
    for src in datasets:
        for tgt in datasets:
            if src == tgt:
                continue
            part = cross[(cross["source"] == src) & (cross["target"] == tgt)]
            rows.append({"claim": f"cross-domain {src} → {tgt}", **difference(
                per_seed(part[part["backbone"] == "pretrained"], "avg"),
                per_seed(part[part["backbone"] == "scratch"], "avg"))})
    small = runs[runs["size"] > 0]
    for ds in (datasets if not small.empty else []):  # attempts run no subsets
        part = small[small["dataset"] == ds]
        smallest = part["size"].min()
        part = part[part["size"] == smallest]
        rows.append({"claim": f"{ds} with {smallest} training frames", **difference(
            per_seed(part[part["backbone"] == "pretrained"], "f1_avg"),
            per_seed(part[part["backbone"] == "scratch"], "f1_avg"))})
    return pd.DataFrame(rows)


def attempt_config(cp: Config, recipe: dict) -> Config:
    """The comparison's config with one attempt's recipe values laid over the demo recipe (as `train:` overrides)."""
    return cp.derive(train=dataclasses.replace(cp.train, overrides={**cp.train.overrides, **recipe}))


def cross_domain_of(cp: Config, lay: Layout, runs_dir, full: pd.DataFrame, datasets: list[str], device: str,
                    log) -> pd.DataFrame:
    """Every full-data model of both backbones scored on each corpus's test folds (one row per model x target)."""
    return pd.concat([cross_domain_runs(cp, lay, {ds: runs_dir for ds in datasets},
                                        {ds: full[(full["dataset"] == ds) & (full["backbone"] == b)]
                                         for ds in datasets}, cp.protocols[0], device=device, log=log)
                      for b in BACKBONES], ignore_index=True)


def run_attempts(cp: Config, lay: Layout, datasets: list[str], runs_dir, device: str, log) -> pd.DataFrame:
    """Other recipes for both backbones (`compare.attempts`): the full-data runs of each, within- and
    cross-domain claims as above. One row per (attempt, claim)."""
    rows = []
    for name, recipe in cp.compare.attempts.items():
        ap = attempt_config(cp, recipe)
        specs = [s for b in BACKBONES for ds in datasets for s in training_specs(ap, ds, b)]
        log(f"attempt {name} ({recipe}): {len(specs)} runs")
        results = run_sweep(specs, ap, lay.root, runs_dir / name, workers=cp.runtime.workers,
                            threads=cp.runtime.threads, log=log)
        runs = sweep_table(specs, results)
        cross = cross_domain_of(ap, lay, runs_dir / name, runs, datasets, device, log)
        for _, r in claims(runs, cross, datasets).iterrows():
            rows.append({"attempt": name, "recipe": ", ".join(f"{k}: {v}" for k, v in recipe.items()), **r})
    return pd.DataFrame(rows)


def run_comparison(config: Config, lay: Layout, device: str = "cpu", log=print) -> pd.DataFrame:
    """Train both backbones' runs, score them, write reports/compare/ (tables, figures, README.md section)."""
    cp = comparison_config(config)
    datasets = list(config.datasets)
    scratch_dir = lay.root / "workspace" / "compare"
    specs = [s for b in BACKBONES for ds in datasets
             for s in training_specs(cp, ds, b) + efficiency_specs(cp, ds, b)]
    log(f"backbone comparison: {len(specs)} runs")
    results = run_sweep(specs, cp, lay.root, scratch_dir, workers=config.runtime.workers,
                        threads=config.runtime.threads, log=log)
    runs = sweep_table(specs, results)
    protocol = cp.protocols[0]
    full = runs[runs["size"] == 0]
    cross = cross_domain_of(cp, lay, scratch_dir, full, datasets, device, log)
    cross_table, _ = cross_domain_summary(cross)
    curve = efficiency_curve(runs[runs["size"] > 0], full, protocol)
    verdicts = claims(runs, cross, datasets)
    attempts = run_attempts(cp, lay, datasets, scratch_dir / "attempts", device, log)
    out = lay.reports_dir / "compare"
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False, float_format="%.4f")
    cross.to_csv(out / "cross_domain_runs.csv", index=False, float_format="%.4f")
    cross_table.to_csv(out / "cross_domain.csv", index=False, float_format="%.4f")
    curve.to_csv(out / "efficiency.csv", index=False, float_format="%.4f")
    verdicts.to_csv(out / "claims.csv", index=False)
    attempts.to_csv(out / "attempts.csv", index=False)
    write_json(out / "claims.json", {r["claim"]: {k: r[k] for k in ("pretrained", "scratch", "difference", "se")}
                                     for _, r in verdicts.iterrows()})
    figs.efficiency_figure(curve, out / "efficiency.png", title=f"Pretrained vs scratch, {protocol}")
    figs.cross_domain_figure(cross_table, out / "cross_domain.png")
    points = pd.concat([
        full.groupby(["backbone", "dataset", "seed"])["f1_avg"].mean().reset_index().assign(
            condition=lambda d: "within " + d["dataset"]).rename(columns={"f1_avg": "f1"}),
        cross[cross["source"] != cross["target"]].groupby(["backbone", "source", "target", "seed"])["avg"].mean()
        .reset_index().assign(condition=lambda d: d["source"] + " → " + d["target"]).rename(columns={"avg": "f1"}),
    ], ignore_index=True)
    figs.seed_points_figure(points, out / "seeds.png", f"Per seed ({protocol}; 3-fold means)")
    write_text(out / "README.md", comparison_markdown(verdicts, runs, cross_table, curve, cp, attempts))
    shutil.rmtree(scratch_dir, ignore_errors=True)
    return verdicts


def claim_rows(verdicts: pd.DataFrame) -> list[dict]:
    return [{"claim": r["claim"], "pretrained": r["pretrained"], "scratch": r["scratch"],
             "pretrained − scratch ± SE": f"{r['difference']:+.1f} ± {r['se']:.1f}",
             "> 2 SE": "yes" if r["beyond_2se"] else "no"} for _, r in verdicts.iterrows()]


def attempts_markdown(attempts: pd.DataFrame, cp: Config) -> list[str]:
    """The other recipes tried, each claim as above (empty when `compare.attempts` is empty)."""
    if attempts.empty:
        return []
    rows = [{"attempt": r["attempt"], "recipe change": r["recipe"], **claim_rows(pd.DataFrame([r]))[0]}
            for _, r in attempts.iterrows()]
    return ["### Other recipes tried", "",
            f"Each attempt changes the demo recipe for both backbones and repeats the full-data runs "
            f"(`{cp.protocols[0]}`, seeds {list(cp.seeds)}, all folds); the claims are computed as above.", "",
            md_table(pd.DataFrame(rows)), ""]


def comparison_markdown(verdicts: pd.DataFrame, runs: pd.DataFrame, cross_table: pd.DataFrame,
                        curve: pd.DataFrame, cp: Config, attempts: pd.DataFrame | None = None) -> str:
    protocol, seeds = cp.protocols[0], list(cp.seeds)
    rows = claim_rows(verdicts)
    within = [{"dataset": ds, "backbone": b, **{k: v for k, v in spread(part, "f1_avg").items() if k != "n_folds"}}
              for (ds, b), part in runs[runs["size"] == 0].groupby(["dataset", "backbone"])]
    drops = [{"backbone": r["backbone"], "transfer": f"{r['source']} → {r['target']}", "F1": r["avg"],
              "drop vs target's own models": r["drop"]} for _, r in cross_table.iterrows()
             if r["source"] != r["target"]]
    return "\n".join([
        "## The paper's findings on the demo", "",
        f"The same runs with the generatively pretrained tiny backbone and from random weights: `{protocol}` "
        f"protocol, seeds {seeds}, all folds, the demo recipe. Each value is a seed's 3-fold mean; a claim holds "
        "when the pretrained-minus-scratch difference exceeds two standard errors over seeds.", "",
        md_table(pd.DataFrame(rows)), "", "Within-domain F1 (mean ± sd over seeds, sd over folds):", "",
        md_table(pd.DataFrame(within)), "", "Cross-domain drop (AUs 1, 2, 4, 6, 12):", "",
        md_table(pd.DataFrame(drops)), "", "![F1 vs training frames, both backbones](efficiency.png)", "",
        "![per-seed scores](seeds.png)", "", "![cross-domain, both backbones](cross_domain.png)", "",
        *attempts_markdown(attempts if attempts is not None else pd.DataFrame(), cp)])
