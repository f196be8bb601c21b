"""Matplotlib figures of the explorers. Figures are built without pyplot (no global state, any backend)
and shown as PNG, so they render the same in JupyterLab, in papermill's output and in a widget's output area.
Heatmaps use one colour map everywhere: coolwarm from -1 (absent) to +1 (present).
"""
from __future__ import annotations

import base64
import io
import traceback

import numpy as np
from matplotlib.figure import Figure

CMAP = "coolwarm"
ALPHA = 0.55


def new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=90, layout="constrained")


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def show(fig: Figure) -> None:
    """Display a figure as a PNG image in the current cell's output."""
    from IPython.display import Image, display

    display(Image(data=to_png(fig)))


class Panel:
    """An ipywidgets Output filled by setting its `outputs` directly, not by capturing display calls.

    Capturing (`with output:`) makes a headless client (papermill / nbclient) mimic the widget and send
    messages back to the busy kernel, which can leave a run waiting forever; direct outputs also work
    without a kernel (tests) and in every frontend.
    """

    def __init__(self, **layout):
        import ipywidgets as w

        self.widget = w.Output(layout=layout or None)

    @property
    def outputs(self) -> tuple:
        return self.widget.outputs

    def clear(self) -> None:
        self.widget.outputs = ()

    def text(self, text: str, name: str = "stdout") -> None:
        self.widget.outputs += ({"output_type": "stream", "name": name, "text": text.rstrip("\n") + "\n"},)

    def figure(self, fig: Figure) -> None:
        data = {"image/png": base64.b64encode(to_png(fig)).decode("ascii"), "text/plain": "<figure>"}
        self.widget.outputs += ({"output_type": "display_data", "data": data, "metadata": {}},)

    def guard(self, action, clear: bool = True) -> bool:
        """Run `action(self)` -> True; an exception becomes an error message in the panel -> False."""
        if clear:
            self.clear()
        try:
            action(self)
            return True
        except Exception as exc:
            tail = "".join(traceback.format_exception(exc, limit=-2))
            self.text(f"error: {exc}\n\n{tail}", name="stderr")
            return False


def face_axes(ax, face: np.ndarray, landmarks: np.ndarray | None = None, title: str = "") -> None:
    """Aligned face with its 68 landmarks (numbered every 8th so the indexing stays readable)."""
    ax.imshow(face)
    if landmarks is not None:
        ax.scatter(landmarks[:, 0], landmarks[:, 1], s=6, c="lime", edgecolors="black", linewidths=0.3)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def overlay_axes(ax, face: np.ndarray, heatmap: np.ndarray | None, title: str = ""):
    """Face under a heatmap [S, S] stretched to the face; -> the heatmap's AxesImage (for a colour bar)."""
    ax.imshow(face)
    image = None
    h, w = face.shape[:2]
    if heatmap is None:
        ax.text(w / 2, h / 2, "no ground truth\nfor this image", ha="center", va="center", fontsize=9,
                bbox=dict(facecolor="white", alpha=0.8))
    else:
        image = ax.imshow(np.clip(heatmap, -1, 1), cmap=CMAP, vmin=-1, vmax=1, alpha=ALPHA,
                          extent=(0, w, h, 0), interpolation="bilinear")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return image


def score_bars(ax, labels: list[str], scores: np.ndarray, truth: dict[str, int], selected: str | None = None) -> None:
    """Heatmap mean per AU (presence = mean > 0), bars coloured by prediction, ground truth marked."""
    x = np.arange(len(labels))
    colours = ["tab:red" if s > 0 else "tab:blue" for s in scores]
    bars = ax.bar(x, scores, color=colours, alpha=0.8)
    if selected in labels:
        bars[labels.index(selected)].set_edgecolor("black")
        bars[labels.index(selected)].set_linewidth(2)
    ax.axhline(0, color="black", linewidth=0.8)
    top = max(0.05, float(np.abs(scores).max()) if len(scores) else 0.05) * 1.25
    known = [(i, truth[lab]) for i, lab in enumerate(labels) if lab in truth]
    if known:
        xs, ys = zip(*known)
        ax.scatter([i for i, v in known if v], [top * 0.9] * sum(ys), marker="v", s=40, c="black",
                   label="ground truth: present")
        ax.scatter([i for i, v in known if not v], [top * 0.9] * (len(xs) - sum(ys)), marker="v", s=40,
                   facecolors="none", edgecolors="black", label="ground truth: absent")
        ax.legend(loc="lower right", fontsize=7)
    ax.set_ylim(-top, top)
    ax.set_xticks(x, labels, fontsize=8, rotation=45)
    ax.set_ylabel("heatmap mean", fontsize=8)
    ax.set_title("predicted presence (red: mean > 0) and heatmap mean per AU", fontsize=9)


def single_au_figure(sample, labels: list[str], heatmaps: np.ndarray, scores: np.ndarray, au: str) -> Figure:
    """Face + landmarks, target and predicted heatmap of one AU, and the score bar chart of all AUs."""
    k = labels.index(au)
    fig = new_figure(10, 6.4)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.35, 1])
    axes = top.subplots(1, 3)
    face_axes(axes[0], sample.image, sample.landmarks, f"{sample.name}\naligned face, 68 landmarks")
    gt = sample.truth.get(au)
    overlay_axes(axes[1], sample.image, sample.targets.get(au),
                 f"target {au}" + ("" if gt is None else f" (ground truth {gt})"))
    mapped = overlay_axes(axes[2], sample.image, heatmaps[k],
                          f"predicted {au}: mean {scores[k]:+.3f} -> {'present' if scores[k] > 0 else 'absent'}")
    top.colorbar(mapped, ax=axes, shrink=0.8, label="heatmap value (-1 absent .. +1 present)")
    score_bars(bottom.subplots(), labels, scores, sample.truth, au)
    return fig


def all_aus_figure(sample, labels: list[str], heatmaps: np.ndarray, scores: np.ndarray, columns: int = 6) -> Figure:
    """Every AU's predicted heatmap (and its target, when the image has labels) in one grid."""
    with_targets = bool(sample.targets)
    per_au = 2 if with_targets else 1
    rows = -(-len(labels) // columns) * per_au
    fig = new_figure(1.7 * columns + 1, 1.9 * rows)
    axes = np.atleast_2d(fig.subplots(rows, columns))
    mapped = None
    for ax in axes.flat:
        ax.axis("off")
    for k, au in enumerate(labels):
        r, c = divmod(k, columns)
        gt = sample.truth.get(au)
        title = f"{au} {scores[k]:+.2f} pred {int(scores[k] > 0)}" + ("" if gt is None else f" gt {gt}")
        mapped = overlay_axes(axes[r * per_au, c], sample.image, heatmaps[k], title) or mapped
        if with_targets:
            overlay_axes(axes[r * per_au + 1, c], sample.image, sample.targets.get(au), f"target {au}")
    if mapped is not None:
        fig.colorbar(mapped, ax=axes, shrink=0.6, label="heatmap value")
    fig.suptitle(f"{sample.name}: all AUs" + (" (rows: predicted, target)" if with_targets else ""), fontsize=10)
    return fig


def image_pair_figure(left: np.ndarray, right: np.ndarray, titles=("input", "reconstruction")) -> Figure:
    fig = new_figure(6, 3.2)
    for ax, img, title in zip(fig.subplots(1, 2), (left, right), titles):
        ax.imshow(img)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    return fig


def pyramid_figure(views: list[np.ndarray], titles: list[str], columns: int = 5) -> Figure:
    """PCA-to-RGB views of feature maps, one panel each."""
    rows = -(-len(views) // columns)
    fig = new_figure(2.0 * columns, 2.2 * rows)
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, view, title in zip(axes, views, titles):
        ax.imshow(view, interpolation="nearest")
        ax.set_title(title, fontsize=8)
    fig.suptitle("StyleGAN2 feature pyramid: first 3 principal components of the channels as RGB", fontsize=10)
    return fig


def map_detail_figure(view: np.ndarray, values: np.ndarray, title: str) -> Figure:
    """One feature map: its PCA view, a histogram of all activations, and per-channel mean |x| (sorted)."""
    fig = new_figure(10, 3)
    ax_view, ax_hist, ax_chan = fig.subplots(1, 3)
    ax_view.imshow(view, interpolation="nearest")
    ax_view.set_title(title, fontsize=9)
    ax_view.axis("off")
    ax_hist.hist(values.ravel(), bins=60, color="tab:gray")
    ax_hist.set_title("activations", fontsize=9)
    energy = np.sort(np.abs(values).reshape(values.shape[0], -1).mean(axis=1))[::-1]
    ax_chan.bar(np.arange(len(energy)), energy, color="tab:purple", width=1.0)
    ax_chan.set_title("mean |activation| per channel (sorted)", fontsize=9)
    return fig


def ablation_figure(delta: np.ndarray, level_names: list[str], labels: list[str]) -> Figure:
    """Change of every AU score when one interpreter level is zeroed: [levels, n_aus] as a diverging image."""
    fig = new_figure(1.0 + 0.55 * len(labels), 1.2 + 0.4 * len(level_names))
    ax = fig.subplots()
    lim = max(1e-6, float(np.abs(delta).max()))
    image = ax.imshow(delta, cmap=CMAP, vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=8, rotation=45)
    ax.set_yticks(np.arange(len(level_names)), level_names, fontsize=8)
    ax.set_title("AU score change when one pyramid level is zeroed (ablated - full)", fontsize=9)
    fig.colorbar(image, ax=ax, label="score change")
    return fig


def level_heatmaps_figure(face: np.ndarray, full: np.ndarray, ablated: list[np.ndarray], level_names: list[str],
                          au: str) -> Figure:
    """One AU's heatmap with every level, then with each level zeroed in turn; below, each change (own scale)."""
    panels = [(full, f"{au}: all levels")] + [(h, f"without {n}") for h, n in zip(ablated, level_names)]
    fig = new_figure(1.9 * len(panels) + 1, 4.6)
    axes = np.atleast_2d(fig.subplots(2, len(panels)))
    mapped = None
    for ax, (heat, title) in zip(axes[0], panels):
        mapped = overlay_axes(ax, face, heat, f"{title}\nmean {np.clip(heat, -1, 1).mean():+.3f}")
    fig.colorbar(mapped, ax=axes[0], shrink=0.8, label="heatmap")
    diffs = [np.clip(h, -1, 1) - np.clip(full, -1, 1) for h in ablated]
    lim = max(1e-6, max(float(np.abs(d).max()) for d in diffs)) if diffs else 1.0
    axes[1, 0].axis("off")
    axes[1, 0].text(0.5, 0.5, "change when\nthe level is zeroed\n(ablated - full)", ha="center", va="center",
                    fontsize=9, transform=axes[1, 0].transAxes)
    image = None
    for ax, diff, name in zip(axes[1, 1:], diffs, level_names):
        image = ax.imshow(diff, cmap=CMAP, vmin=-lim, vmax=lim, interpolation="bilinear")
        ax.set_title(f"change, {name}", fontsize=8)
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes[1], shrink=0.8, label="change")
    return fig
