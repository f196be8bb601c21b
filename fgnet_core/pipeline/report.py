"""Report stage: paper-layout tables (markdown) and figures (PNG) from the metrics the stages wrote."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from fgnet_core import checkpoints  # noqa: E402
from fgnet_core.data.au_tables import CROSS_DOMAIN_AUS, DATASET_AUS, canonical_dataset, dataset_aus  # noqa: E402
from fgnet_core.evaluation.baselines import PUBLISHED_F1  # noqa: E402
from fgnet_core.pipeline.config import Layout, cross_domain_folds, recipe_for  # noqa: E402
from fgnet_core.pipeline.runs import labelled_set  # noqa: E402


def _md(table: pd.DataFrame, digits: int = 1) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, (float, np.floating)) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def within_domain_markdown(within: pd.DataFrame, dataset: str) -> str:
    ds = canonical_dataset(dataset)
    aus = DATASET_AUS[ds]
    rows = []
    for name, vals in PUBLISHED_F1[ds].items():
        rows.append({"method": f"{name} (published)", **{f"AU{a}": v for a, v in zip(aus, vals)}, "avg": vals[-1]})
    means = within[(within["dataset"] == ds) & (within["fold"] == "mean")]
    for _, r in means.iterrows():
        label = ("predict every AU present (trivial baseline)" if r["protocol"] == "all-present"
                 else f"ours ({r['protocol']}, 3-fold mean)")
        rows.append({"method": label, **{f"AU{a}": r[f"AU{a}"] for a in aus}, "avg": r["avg"]})
    return _md(pd.DataFrame(rows))


def per_au_figure(within: pd.DataFrame, path: Path) -> Path:
    datasets = list(dict.fromkeys(within["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 3.6), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        aus = DATASET_AUS[ds]
        means = within[(within["dataset"] == ds) & (within["fold"] == "mean") & (within["protocol"] != "all-present")]
        width = 0.8 / max(len(means), 1)
        for k, (_, r) in enumerate(means.iterrows()):
            ax.bar(np.arange(len(aus)) + k * width, [r[f"AU{a}"] for a in aus], width, label=r["protocol"])
        best = PUBLISHED_F1[ds]["ME-GraphAU (ResNet-50)"][:-1]
        ax.plot(np.arange(len(aus)) + 0.4 - width / 2, best, "k_", markersize=14, label="ME-GraphAU (published)")
        ax.set_xticks(np.arange(len(aus)) + 0.4 - width / 2, [f"AU{a}" for a in aus], rotation=45)
        ax.set_ylim(0, 100)
        ax.set_ylabel("F1 x 100")
        ax.set_title(f"{ds}: within-domain, 3-fold mean")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def cross_domain_figure(cross: pd.DataFrame, path: Path) -> Path:
    names = sorted(set(cross["source"]) | set(cross["target"]))
    grid = np.full((len(names), len(names)), np.nan)
    for _, r in cross.iterrows():
        grid[names.index(r["source"]), names.index(r["target"])] = r["avg"]
    fig, ax = plt.subplots(figsize=(4, 3.4))
    im = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", color="w")
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.set_title(f"F1 on AUs {', '.join(map(str, CROSS_DOMAIN_AUS))}")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def efficiency_figure(eff: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 3.4))
    for ds, part in eff.groupby("dataset"):
        ax.plot(part["train_frames"], part["f1_avg"], "o-", label=ds)
    ax.set_xscale("log")
    ax.set_xlabel("training frames")
    ax.set_ylabel("average F1 x 100")
    ax.set_ylim(0, 100)
    ax.set_title("Data efficiency")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves_figure(curves_dir: Path, path: Path) -> Path:
    files = sorted(p for p in curves_dir.glob("*.csv") if "_n" not in p.stem)
    fig, (ax_loss, ax_f1) = plt.subplots(1, 2, figsize=(10, 3.6))
    for f in files:
        h = pd.read_csv(f)
        ax_loss.plot(h["epoch"], h["loss"], label=f.stem)
        ax_f1.plot(h["epoch"], h["selection_f1"], label=f.stem)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (heatmap MSE)")
    ax_f1.set_xlabel("epoch")
    ax_f1.set_ylabel("selection F1 x 100")
    ax_f1.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@torch.no_grad()
def examples_figure(params: dict, lay: Layout, dataset: str, path: Path, n_faces: int = 4, n_aus: int = 4) -> Path:
    """Test faces of fold 0 with target vs predicted heatmaps for a few AUs (red: present, blue: absent)."""
    ds = canonical_dataset(dataset)
    fold = params["folds"][0]
    protocol = params["protocols"][0]
    model, _ = checkpoints.load_training_checkpoint(lay.run_dir(ds, fold, protocol) / "best.pt")
    model.eval()
    test = labelled_set(lay, params, ds, fold, "test", True)
    picks = np.linspace(0, len(test) - 1, n_faces).astype(int)
    aus = dataset_aus(ds)[:n_aus]
    fig, axes = plt.subplots(n_faces, 1 + 2 * n_aus, figsize=(1.6 * (1 + 2 * n_aus), 1.7 * n_faces), squeeze=False)
    for row, idx in enumerate(picks):
        item = test[int(idx)]
        pred = model(item["image"][None])[0].clamp(-1, 1).numpy()  # [C, S, S]
        face = ((item["image"].permute(1, 2, 0).numpy() + 1) * 127.5).astype(np.uint8)
        axes[row, 0].imshow(face)
        axes[row, 0].set_title(Path(item["path"]).stem, fontsize=6)
        for k, au in enumerate(aus):
            for col, (maps, tag) in enumerate(((item["heatmap"].numpy(), "target"), (pred, "pred"))):
                ax = axes[row, 1 + 2 * k + col]
                ax.imshow(face, alpha=0.6)
                ax.imshow(maps[k], cmap="bwr", vmin=-1, vmax=1, alpha=0.55, extent=(0, 256, 256, 0))
                mean = float(maps[k].mean())
                ax.set_title(f"{au.label} {tag} {mean:+.2f}", fontsize=6)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(params: dict, lay: Layout) -> Path:
    """reports/README.md with the paper's tables and the figures."""
    lay.figures_dir.mkdir(parents=True, exist_ok=True)
    within = pd.read_csv(lay.metrics_dir / "within_domain.csv", dtype={"fold": str})
    cross = pd.read_csv(lay.metrics_dir / "cross_domain.csv")
    eff = pd.concat([pd.read_csv(p) for p in sorted(lay.metrics_dir.glob("efficiency_*.csv"))])
    per_au_figure(within, lay.figures_dir / "per_au_f1.png")
    cross_domain_figure(cross, lay.figures_dir / "cross_domain.png")
    efficiency_figure(eff, lay.figures_dir / "data_efficiency.png")
    curves_figure(lay.curves_dir, lay.figures_dir / "training_curves.png")
    for ds in params["datasets"]:
        examples_figure(params, lay, ds, lay.figures_dir / f"examples_{canonical_dataset(ds).lower()}.png")
    recipe = recipe_for(params)
    parts = [
        "# FG-Net workspace report",
        "",
        f"Generated by `dvc repro` on {date.today().isoformat()}: corpus `{params['corpus']}`, preset "
        f"`{params['preset']}`, seed {params['seed']}, {recipe.epochs} epochs x <= {recipe.iterations} iterations "
        f"of batch {recipe.batch_size}. F1 x 100 on the test subjects of each fold (sklearn binary F1).",
    ]
    if params["corpus"] == "demo":
        parts += ["", "> Demo corpus: procedural faces, not BP4D/DISFA. These numbers show the pipeline works; "
                  "they are not comparable with the published rows, which are listed for layout only."]
    for ds in params["datasets"]:
        parts += ["", f"## Within-domain: {canonical_dataset(ds)}", "", within_domain_markdown(within, ds)]
    for ds in params["datasets"]:
        name = canonical_dataset(ds)
        columns = ["protocol", "fold", *[f"AU{a}" for a in DATASET_AUS[name]], "avg"]
        per_fold = within[(within["fold"] != "mean") & (within["dataset"] == name)][columns]
        parts += ["", f"Per fold, {name}:", "", _md(per_fold)]
    parts += ["", "## Cross-domain (AUs 1, 2, 4, 6, 12)", "",
              f"Models of the `{params['evaluation']['cross_domain_protocol']}` runs, "
              f"folds: {cross_domain_folds(params)}. Diagonal = within-domain on the same AUs.", "",
              _md(cross), "", "## Data efficiency", "", _md(eff), "",
              "## Figures", "", "![per-AU F1](figures/per_au_f1.png)", "",
              "![cross-domain](figures/cross_domain.png)", "", "![data efficiency](figures/data_efficiency.png)", "",
              "![training curves](figures/training_curves.png)", ""]
    for ds in params["datasets"]:
        parts += [f"![examples {ds}](figures/examples_{canonical_dataset(ds).lower()}.png)", ""]
    path = lay.reports_dir / "README.md"
    path.write_text("\n".join(parts))
    return path

