"""The feature-pyramid explorer: what StyleGAN2 computes for a face, and what the interpreter takes from it.

For one aligned face: the pSp reconstruction (synthesis of the W+ the encoder predicts), every synthesis
feature map as a PCA-to-RGB view with channel statistics, and a level ablation: the interpreter is run
again with one of the pyramid levels it reads set to zero, and the change of each AU's heatmap and score
says how much that level contributes for this image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from fgnet_core.data.heatmaps import heatmap_scores
from fgnet_core.data.image_tensors import to_model_range, to_uint8
from fgnet_core.evaluation.features import pca_rgb  # noqa: F401 (re-exported for the notebook)
from fgnet_core.explore import plots


@dataclass
class Pyramid:
    image: np.ndarray            # [256, 256, 3] uint8 aligned input
    reconstruction: np.ndarray   # [R, R, 3] uint8, R = generator size
    maps: list[np.ndarray]       # every synthesis map [C, H, W] float32
    levels: list[int]            # indices of `maps` the interpreter reads, in order
    heatmaps: np.ndarray         # [n_aus, S, S]
    scores: np.ndarray           # [n_aus]
    block_states: list[np.ndarray]  # interpreter state after each level is added [C, S_i, S_i]

    def map_name(self, i: int) -> str:
        c, h, _ = self.maps[i].shape
        read = f" -> level {self.levels.index(i)}" if i in self.levels else ""
        return f"map {i}: {h}px x {c}ch{read}"

    def level_names(self) -> list[str]:
        return [f"level {k} ({self.maps[i].shape[1]}px)" for k, i in enumerate(self.levels)]


@torch.no_grad()
def feature_pyramid(loaded, image: np.ndarray) -> Pyramid:
    """Aligned face [256, 256, 3] uint8 -> the model's view of it (one forward pass through every stage)."""
    net = loaded.net
    device = next(net.parameters()).device
    x = to_model_range(torch.from_numpy(image.copy()).to(device)[None])  # [1, 3, 256, 256]
    recon, feats = net.generator.synthesis(net.latents(x))  # [1, 3, R, R], every map [1, C, H, W]
    levels = [feats[i] for i in net.feature_layers]
    heat, states = net.interpreter(levels, return_levels=True)  # [1, C_out, S, S]
    heat = heat[:, : loaded.n_aus]
    return Pyramid(image, to_uint8(recon)[0], [f[0].float().cpu().numpy() for f in feats], list(net.feature_layers),
                   heat[0].cpu().numpy(), heatmap_scores(heat)[0].cpu().numpy(),
                   [s[0].float().cpu().numpy() for s in states])


def channel_stats(pyramid: Pyramid) -> pd.DataFrame:
    """One row per synthesis map: size, whether the interpreter reads it, and activation statistics."""
    rows = []
    for i, fmap in enumerate(pyramid.maps):
        energy = np.abs(fmap).reshape(fmap.shape[0], -1).mean(axis=1)  # [C]
        top = np.sort(energy)[::-1]
        rows.append({
            "map": i, "resolution": fmap.shape[1], "channels": fmap.shape[0],
            "interpreter_level": pyramid.levels.index(i) if i in pyramid.levels else None,
            "mean": float(fmap.mean()), "std": float(fmap.std()), "mean_abs": float(np.abs(fmap).mean()),
            "positive_fraction": float((fmap > 0).mean()),
            "top10pct_channel_share": float(top[: max(1, len(top) // 10)].sum() / max(top.sum(), 1e-12)),
            "dead_channels": int((energy < 1e-6).sum()),
        })
    return pd.DataFrame(rows).astype({"interpreter_level": "Int64"})


@torch.no_grad()
def level_ablation(loaded, pyramid: Pyramid) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """Zero each interpreter level in turn -> (score change [levels x AUs] table, heatmaps [n_aus, S, S] each)."""
    net = loaded.net
    device = next(net.parameters()).device
    levels = [torch.from_numpy(pyramid.maps[i])[None].to(device) for i in pyramid.levels]
    ablated, deltas = [], []
    for k in range(len(levels)):
        inputs = [torch.zeros_like(f) if j == k else f for j, f in enumerate(levels)]
        heat = net.interpreter(inputs)[0, : loaded.n_aus].cpu()  # [n_aus, S, S]
        ablated.append(heat.numpy())
        deltas.append(heatmap_scores(heat).numpy() - pyramid.scores)
    table = pd.DataFrame(np.array(deltas), index=pyramid.level_names(), columns=loaded.au_labels)
    return table, ablated


class FeatureExplorer:
    """Widget app: image, feature map and AU choices over precomputed pyramids of a few samples."""

    def __init__(self, loaded, samples: list):
        self.loaded, self.samples = loaded, samples
        self._cache: dict[int, tuple] = {}
        self._build()

    def analysis(self, index: int):
        """(pyramid, ablation table, ablated heatmaps) of sample `index`, computed once."""
        if index not in self._cache:
            pyr = feature_pyramid(self.loaded, self.samples[index].image)
            self._cache[index] = (pyr, *level_ablation(self.loaded, pyr))
        return self._cache[index]

    # figures, also usable without widgets
    def reconstruction_figure(self, index: int = 0):
        pyr = self.analysis(index)[0]
        return plots.image_pair_figure(pyr.image, pyr.reconstruction,
                                       ("aligned input", f"pSp reconstruction ({pyr.reconstruction.shape[0]} px)"))

    def pyramid_figure(self, index: int = 0):
        pyr = self.analysis(index)[0]
        return plots.pyramid_figure([pca_rgb(m) for m in pyr.maps], [pyr.map_name(i) for i in range(len(pyr.maps))])

    def map_figure(self, index: int, map_index: int):
        pyr = self.analysis(index)[0]
        return plots.map_detail_figure(pca_rgb(pyr.maps[map_index]), pyr.maps[map_index], pyr.map_name(map_index))

    def ablation_figures(self, index: int, au: str):
        pyr, table, ablated = self.analysis(index)
        k = self.loaded.au_labels.index(au)
        return (plots.ablation_figure(table.to_numpy(), list(table.index), list(table.columns)),
                plots.level_heatmaps_figure(pyr.image, pyr.heatmaps[k], [a[k] for a in ablated],
                                            pyr.level_names(), au))

    def _build(self) -> None:
        import ipywidgets as w

        n_maps = len(self.loaded.net.generator.feature_channels)
        self.w_image = w.Dropdown(options=[(s.name, i) for i, s in enumerate(self.samples)], value=0,
                                  description="image")
        self.w_map = w.IntSlider(self.loaded.net.feature_layers[0], 0, n_maps - 1, description="feature map",
                                 continuous_update=False)
        self.w_au = w.Dropdown(options=self.loaded.au_labels, value=self.loaded.au_labels[0], description="AU")
        self.panel = plots.Panel(border="1px solid #ddd", min_height="200px")
        self.out = self.panel.widget
        for widget in (self.w_image, self.w_map, self.w_au):
            widget.observe(lambda change: self.render(), names="value")
        self.app = w.VBox([w.HBox([self.w_image, self.w_map, self.w_au]), self.out])

    def render(self) -> None:
        """Redraw: reconstruction, the chosen feature map, and the chosen AU's level ablation."""
        def draw(panel):
            i = self.w_image.value
            panel.figure(self.reconstruction_figure(i))
            panel.figure(self.map_figure(i, self.w_map.value))
            for fig in self.ablation_figures(i, self.w_au.value):
                panel.figure(fig)

        self.panel.guard(draw)

    def show(self):
        from IPython.display import display

        self.render()
        display(self.app)
        return self
