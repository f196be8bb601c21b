"""The report's figures, from the stages' run tables. Every statistical figure shows its spread over seeds."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter  # noqa: E402

from fgnet_core.data.au_tables import CROSS_DOMAIN_AUS, DATASET_AUS, dataset_aus  # noqa: E402
from fgnet_core.data.image_tensors import to_uint8  # noqa: E402
from fgnet_core.evaluation.baselines import PUBLISHED_F1  # noqa: E402
from fgnet_core.evaluation.features import pca_rgb  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path


def per_au_figure(runs: dict[str, pd.DataFrame], path: Path, published: bool) -> Path:
    """Per-AU F1 per protocol: bars are means over folds and seeds, whiskers the sd over seeds of the fold mean.
    Published per-AU rows (real corpora only) are drawn as markers when `published`."""
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 3.8), squeeze=False)
    for ax, (ds, table) in zip(axes[0], runs.items()):
        aus = DATASET_AUS[ds]
        protocols = list(dict.fromkeys(table["protocol"]))
        width = 0.8 / len(protocols)
        for k, protocol in enumerate(protocols):
            part = table[table["protocol"] == protocol]
            per_seed = part.groupby("seed")[[f"f1_AU{a:02d}" for a in aus]].mean()  # [seeds, AUs]
            ax.bar(np.arange(len(aus)) + k * width, per_seed.mean().to_numpy(), width,
                   yerr=per_seed.std(ddof=1).fillna(0).to_numpy(), capsize=2, label=protocol)
        if published:
            ax.plot(np.arange(len(aus)) + 0.4 - width / 2, PUBLISHED_F1[ds]["ME-GraphAU (ResNet-50)"][:-1], "k_",
                    markersize=14, label="ME-GraphAU (published)")
        ax.set_xticks(np.arange(len(aus)) + 0.4 - width / 2, [f"AU{a}" for a in aus], rotation=45)
        ax.set_ylim(0, 100)
        ax.set_ylabel("test F1 x 100")
        ax.set_title(f"{ds}: within-domain (mean over folds; whiskers: sd over seeds)", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)


def cross_domain_figure(summary: pd.DataFrame, path: Path) -> Path:
    """Trained-on x tested-on matrix of F1 on the shared AUs, mean ± sd over seeds, one panel per backbone."""
    backbones = list(dict.fromkeys(summary["backbone"]))
    fig, axes = plt.subplots(1, len(backbones), figsize=(4.2 * len(backbones), 3.6), squeeze=False)
    for ax, backbone in zip(axes[0], backbones):
        part = summary[summary["backbone"] == backbone]
        names = sorted(set(part["source"]) | set(part["target"]))
        grid = np.full((len(names), len(names)), np.nan)
        text = [["" for _ in names] for _ in names]
        for _, r in part.iterrows():
            i, j = names.index(r["source"]), names.index(r["target"])
            grid[i, j] = r["avg"]
            text[i][j] = f"{r['avg']:.1f}\n± {r['sd_seeds']:.1f}"
        im = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis")
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, text[i][j], ha="center", va="center", color="w", fontsize=9)
        ax.set_xticks(range(len(names)), names)
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("tested on")
        ax.set_ylabel("trained on")
        ax.set_title(f"{backbone}: F1 on AUs {', '.join(map(str, CROSS_DOMAIN_AUS))}", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def efficiency_figure(curve: pd.DataFrame, path: Path, title: str = "Data efficiency") -> Path:
    """F1 against training frames (log axis, plain tick labels), a band of ± sd over seeds per line."""
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for (ds, backbone), part in curve.groupby(["dataset", "backbone"], sort=False):
        part = part.sort_values("train_frames")
        x, y = part["train_frames"].to_numpy(), part["f1_avg"].to_numpy()
        sd = np.where(part["n_seeds"] > 1, part["sd_seeds"], part["sd_folds"])
        label = ds if curve["backbone"].nunique() == 1 else f"{ds}, {backbone}"
        style = "--" if backbone == "scratch" else "-"
        (line,) = ax.plot(x, y, "o" + style, label=label)
        ax.fill_between(x, y - sd, y + sd, color=line.get_color(), alpha=0.2)
    ticks = []
    for v in sorted(set(int(round(v)) for v in curve["train_frames"])):
        if not ticks or v > 1.25 * ticks[-1]:  # neighbours closer than that would print over each other
            ticks.append(v)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.set_xlabel("training frames (mean over folds)")
    ax.set_ylabel("test F1 x 100 (mean over folds)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{title}\n(band: ± sd over seeds; over folds where one seed)", fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, path)


def curves_figure(curves: pd.DataFrame, path: Path) -> Path:
    """Training loss and selection F1 per epoch: mean over runs per dataset x protocol, band = ± sd over runs."""
    fig, (ax_loss, ax_f1) = plt.subplots(1, 2, figsize=(10, 3.6))
    sns.lineplot(data=curves, x="epoch", y="loss", hue="dataset", style="protocol", errorbar="sd", ax=ax_loss)
    sns.lineplot(data=curves, x="epoch", y="selection_f1", hue="dataset", style="protocol", errorbar="sd",
                 ax=ax_f1, legend=False)
    ax_loss.set_ylabel("training loss (heatmap MSE)")
    ax_f1.set_ylabel("selection F1 x 100")
    ax_loss.legend(fontsize=7)
    return _save(fig, path)


def seed_points_figure(points: pd.DataFrame, path: Path, title: str) -> Path:
    """Each seed's score (dots) and the mean ± sd (bars) per condition and backbone."""
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * points["condition"].nunique() + 2), 3.8))
    sns.pointplot(data=points, x="condition", y="f1", hue="backbone", errorbar="sd", dodge=0.4, linestyle="none",
                  capsize=0.1, ax=ax)
    sns.stripplot(data=points, x="condition", y="f1", hue="backbone", dodge=True, alpha=0.5, legend=False, ax=ax)
    ax.set_ylabel("test F1 x 100 (fold mean, per seed)")
    ax.set_xlabel("")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


@torch.no_grad()
def examples_figure(model, test, dataset: str, path: Path, n_faces: int = 4, n_aus: int = 4) -> Path:
    """Test faces with target vs predicted heatmaps for a few AUs (red: present, blue: absent)."""
    model.eval()
    picks = np.linspace(0, len(test) - 1, n_faces).astype(int)
    aus = dataset_aus(dataset)[:n_aus]
    fig, axes = plt.subplots(n_faces, 1 + 2 * n_aus, figsize=(1.6 * (1 + 2 * n_aus), 1.7 * n_faces), squeeze=False)
    for row, idx in enumerate(picks):
        item = test[int(idx)]
        pred = model(item["image"][None])[0].clamp(-1, 1).numpy()  # [C, S, S]
        face = to_uint8(item["image"][None])[0]
        axes[row, 0].imshow(face)
        axes[row, 0].set_title(Path(item["path"]).stem, fontsize=6)
        for k, au in enumerate(aus):
            for col, (maps, tag) in enumerate(((item["heatmap"].numpy(), "target"), (pred, "pred"))):
                ax = axes[row, 1 + 2 * k + col]
                ax.imshow(face, alpha=0.6)
                ax.imshow(maps[k], cmap="bwr", vmin=-1, vmax=1, alpha=0.55, extent=(0, 256, 256, 0))
                ax.set_title(f"{au.label} {tag} {float(maps[k].mean()):+.2f}", fontsize=6)
    for ax in axes.ravel():
        ax.axis("off")
    return _save(fig, path)


@torch.no_grad()
def feature_pca_figure(models: dict, images: torch.Tensor, path: Path) -> Path:
    """Per model (row group) and face (row): the face, then each pyramid level the interpreter reads as the
    PCA-to-RGB of its channels. A generatively pretrained pyramid separates face parts; a random one is noise."""
    rows = [(name, i) for name in models for i in range(len(images))]
    n_levels = len(next(iter(models.values())).feature_layers)
    fig, axes = plt.subplots(len(rows), 1 + n_levels, figsize=(1.5 * (1 + n_levels), 1.6 * len(rows)), squeeze=False)
    for r, (name, i) in enumerate(rows):
        model = models[name].eval()
        feats = model.features(images[i:i + 1])
        axes[r, 0].imshow(to_uint8(images[i:i + 1])[0])
        axes[r, 0].set_title(name, fontsize=7)
        for k, f in enumerate(feats):
            axes[r, 1 + k].imshow(pca_rgb(f[0].float().numpy()), interpolation="nearest")
            axes[r, 1 + k].set_title(f"{f.shape[-1]} px, {f.shape[1]} ch", fontsize=6)
    for ax in axes.ravel():
        ax.axis("off")
    return _save(fig, path)
