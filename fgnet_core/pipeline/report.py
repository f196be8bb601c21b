"""Report stage: `reports/README.md` — the paper's tables and figures from the stages' run tables.

Every number names its protocol (`clean`: epoch selected on held-out training subjects, the number a new
method should be compared with; `faithful`: selected on the test fold, as the official code does) and its
spread (± sd over seeds of the 3-fold mean; sd over folds). Published rows of other methods appear only
beside real-corpus results.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fgnet_core import checkpoints
from fgnet_core.data.au_tables import DATASET_AUS, canonical_dataset
from fgnet_core.evaluation.baselines import PUBLISHED_F1
from fgnet_core.pipeline import report_figures as figs
from fgnet_core.pipeline.config import Config, Layout
from fgnet_core.pipeline.evaluate import data_efficiency_table
from fgnet_core.pipeline.runs import build_model, labelled_set

PROTOCOL_NOTE = ("`clean`: epoch selected on held-out training subjects (compare new methods with this); "
                 "`faithful`: epoch selected on the test fold, as the official code does (optimistic)")


def _fmt(v) -> str:
    return f"{v:.1f}" if isinstance(v, (float, np.floating)) else str(v)


def md_table(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for _, row in table.iterrows()]
    return "\n".join(lines)


def pm(mean: float, sd: float) -> str:
    return f"{mean:.1f} ± {sd:.1f}"


def within_domain_markdown(within: pd.DataFrame, dataset: str, published: bool) -> str:
    ds = canonical_dataset(dataset)
    aus = DATASET_AUS[ds]
    rows = []
    if published:
        for name, vals in PUBLISHED_F1[ds].items():
            rows.append({"method": f"{name} (published)", **{f"AU{a}": v for a, v in zip(aus, vals)},
                         "avg ± sd seeds": f"{vals[-1]:.1f}", "sd folds": "-"})
    for _, r in within[within["dataset"] == ds].iterrows():
        label = ("predict every AU present (rule)" if r["protocol"] == "all-present rule"
                 else f"FG-Net {r['backbone']} backbone, {r['protocol']} ({int(r['runs'])} runs)")
        rows.append({"method": label, **{f"AU{a}": r[f"AU{a}"] for a in aus},
                     "avg ± sd seeds": pm(r["avg"], r["sd_seeds"]), "sd folds": r["sd_folds"]})
    return md_table(pd.DataFrame(rows))


def cross_domain_markdown(summary: pd.DataFrame) -> str:
    rows = [{"backbone": r["backbone"], "trained on → tested on": f"{r['source']} → {r['target']}",
             "F1 ± sd seeds": pm(r["avg"], r["sd_seeds"]), "sd folds": r["sd_folds"],
             "drop vs target's own models": "-" if r["source"] == r["target"] else f"{r['drop']:.1f}",
             "runs": int(r["runs"])} for _, r in summary.iterrows()]
    return md_table(pd.DataFrame(rows))


def efficiency_markdown(curve: pd.DataFrame) -> str:
    rows = [{"dataset": r["dataset"], "backbone": r["backbone"], "size": r["size"],
             "training frames": r["train_frames"],
             "F1 ± sd seeds": pm(r["f1_avg"], r["sd_seeds"]) if r["n_seeds"] > 1 else f"{r['f1_avg']:.1f} (1 seed)",
             "sd folds": r["sd_folds"], "seeds": int(r["n_seeds"])} for _, r in curve.iterrows()]
    return md_table(pd.DataFrame(rows))


def _demo_faces(config: Config, lay: Layout, n: int = 2) -> torch.Tensor:
    """A few test faces of the first dataset's first fold, [n, 3, 256, 256] in [-1, 1]."""
    test = labelled_set(lay, config, config.datasets[0], config.folds[0], "test", False)
    return torch.stack([test[int(i)]["image"] for i in np.linspace(0, len(test) - 1, n).astype(int)])


def write_report(config: Config, lay: Layout) -> Path:
    """reports/README.md with the tables and figures of every stage that ran."""
    fig_dir, m = lay.figures_dir, lay.metrics_dir
    datasets = list(config.datasets)
    published = config.corpus != "demo"
    runs = {ds: pd.read_csv(m / f"train/{ds}.csv") for ds in datasets}
    within = pd.read_csv(m / "within_domain.csv")
    cross = pd.read_csv(m / "cross_domain.csv")
    eff = pd.concat([data_efficiency_table(config, lay, ds)[0] for ds in datasets], ignore_index=True)
    curves = pd.concat([pd.read_csv(lay.curves_dir / f"train_{ds}.csv") for ds in datasets], ignore_index=True)
    figs.per_au_figure(runs, fig_dir / "per_au_f1.png", published)
    figs.cross_domain_figure(cross, fig_dir / "cross_domain.png")
    figs.efficiency_figure(eff, fig_dir / "data_efficiency.png")
    figs.curves_figure(curves, fig_dir / "training_curves.png")
    for ds in datasets:
        first = runs[ds].iloc[0]
        model, _ = checkpoints.load_training_checkpoint(lay.runs_dir / ds / first["run"] / "best.pt")
        test = labelled_set(lay, config, ds, int(first["fold"]), "test", True)
        figs.examples_figure(model, test, ds, fig_dir / f"examples_{ds.lower()}.png")
    recipe = config.recipe
    protocols = ", ".join(f"`{p}`" for p in config.protocols)
    parts = [
        "# FG-Net workspace report", "",
        f"Corpus `{config.corpus}`, preset `{config.preset}`, backbone `{config.backbone}`; "
        f"{recipe.epochs} epochs x <= {recipe.iterations} iterations of batch {recipe.batch_size}; protocols "
        f"{protocols}; seeds {list(config.seeds)} per fold. F1 x 100 (sklearn binary F1) on the test subjects of each "
        "fold. **avg ± sd seeds**: the 3-fold mean computed once per seed, mean ± sd over seeds; **sd folds**: the "
        "spread of the per-fold means.", "", f"Protocols: {PROTOCOL_NOTE}.",
    ]
    if not published:
        parts += ["", "> Demo corpus: procedural faces in the BP4D/DISFA layouts, not the real corpora. The numbers "
                  "test the pipeline and the paper's claims in miniature; they are not comparable with published "
                  "results, so none are shown beside them."]
    compare_dir = lay.reports_dir / "compare"
    if (compare_dir / "README.md").exists():
        parts += ["", (compare_dir / "README.md").read_text().strip().replace("](", "](compare/")]
    for ds in datasets:
        parts += ["", f"## Within-domain: {ds}", "", within_domain_markdown(within, ds, published)]
    parts += ["", "## Cross-domain (AUs 1, 2, 4, 6, 12)", "",
              f"Models of the `{config.evaluation.cross_domain_protocol}` runs, folds: "
              f"{config.cross_domain_folds}; each model is scored on the test fold of the same index of both "
              "corpora. The drop is the target's own models' F1 minus the transfer's.", "",
              cross_domain_markdown(cross), "",
              f"## Data efficiency (`{config.efficiency.protocol}` protocol)", "",
              "Nested training subsets of every fold (`train_N` files of the prepare stage: seeded samples on the "
              "demo, FG-Net's official lists on the real corpora); `all` is the full training set of the training "
              "stage's runs.", "", efficiency_markdown(eff), "",
              "## Figures", "", "![per-AU F1](figures/per_au_f1.png)", "", "![cross-domain](figures/cross_domain.png)",
              "", "![data efficiency](figures/data_efficiency.png)", "",
              "![training curves](figures/training_curves.png)", ""]
    parts += [f"![examples {ds}](figures/examples_{ds.lower()}.png)\n" for ds in datasets]
    if config.preset == "tiny" and config.backbone == "pretrained":
        scratch = config.derive(backbone="scratch")  # only the backbone differs
        torch.manual_seed(0)
        models = {"pretrained": build_model(config, lay), "scratch": build_model(scratch, lay)}
        figs.feature_pca_figure(models, _demo_faces(config, lay), fig_dir / "features_pca.png")
        parts += ["## The pretrained backbone", "",
                  "Samples of the generatively pretrained tiny StyleGAN2 (top row: real pretraining faces) and "
                  "inversions of held-out pretraining faces by the tiny pSp encoder (each row above its inversion):",
                  "", "![GAN samples](pretrain/generator_samples.png)", "",
                  "![inversions](pretrain/encoder_inversions.png)", "",
                  "The feature pyramid the interpreter reads for two test faces, each level as the PCA of its "
                  "channels to RGB: pretrained backbone (before AU training) above, random weights below.", "",
                  "![feature pyramid](figures/features_pca.png)", ""]
    path = lay.reports_dir / "README.md"
    path.write_text("\n".join(parts))
    return path
