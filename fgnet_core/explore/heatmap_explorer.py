"""The heatmap explorer: pick a source (aligned corpus and fold, or photos / your own upload), an image and an
AU; see the aligned face with its landmarks, the target and predicted heatmaps, and every AU's score.

Model outputs are computed once per image, in batches when a source is chosen, and cached; every control
redraws on release (`continuous_update=False`), and errors are printed in the output area.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fgnet_core.explore import plots
from fgnet_core.explore.sources import CorpusSource, PhotoSource, corpus_folds, model_outputs

PHOTOS = "photos"
MODES = ("single AU", "all AUs")


class HeatmapExplorer:
    """Widget app over one model (a LoadedModel). Sources: each dataset with test label files under
    `aligned_root` (per fold), and photos (`image_paths`, uploads, or the offline photo without a corpus)."""

    def __init__(self, loaded, aligned_root: str | Path | None = None, image_paths=(), fold: int | None = None,
                 dataset: str | None = None, max_images: int = 64, batch_size: int = 8):
        self.loaded = loaded
        self.labels = loaded.au_labels
        self.aligned_root = Path(aligned_root) if aligned_root else None
        self.max_images, self.batch_size = max_images, batch_size
        self.folds = corpus_folds(self.aligned_root) if self.aligned_root and self.aligned_root.is_dir() else {}
        self.photos = PhotoSource(image_paths) if image_paths or not self.folds else None
        self.cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # (source, index) -> (heatmaps, scores)
        self._sources: dict[tuple, object] = {}
        options = list(self.folds) + [PHOTOS]
        start = dataset if dataset in self.folds else (loaded.dataset if loaded.dataset in self.folds else options[0])
        self._quiet = False
        self.state = {"source": start, "fold": fold if fold in self.folds.get(start, []) else None}
        self._build_widgets(options)

    # ------------------------------------------------------------------ data
    def source(self, key: str | None = None, fold: int | None = None):
        key = key or self.state["source"]
        if key == PHOTOS:
            if self.photos is None:
                self.photos = PhotoSource()
            return self.photos
        fold = self.folds[key][0] if fold is None else fold
        if (key, fold) not in self._sources:
            self._sources[(key, fold)] = CorpusSource(self.aligned_root, key, fold, "test",
                                                      self.loaded.net.preset.heatmap_size, self.max_images)
        return self._sources[(key, fold)]

    def precompute(self, src=None) -> None:
        """Model outputs of every not-yet-seen image of a source, in batches."""
        src = src or self.source(self.state["source"], self.state["fold"])
        todo = [i for i in range(len(src)) if (src.name, i) not in self.cache]
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            heat, scores = model_outputs(self.loaded, [src.sample(i).image for i in chunk], self.batch_size)
            for k, i in enumerate(chunk):
                self.cache[(src.name, i)] = (heat[k], scores[k])

    def outputs(self, src, index: int) -> tuple[np.ndarray, np.ndarray]:
        if (src.name, index) not in self.cache:
            heat, scores = model_outputs(self.loaded, [src.sample(index).image])
            self.cache[(src.name, index)] = (heat[0], scores[0])
        return self.cache[(src.name, index)]

    def figure(self, index: int = 0, au: str | None = None, mode: str = MODES[0], source: str | None = None,
               fold: int | None = None):
        """The figure the app shows for these choices (also usable without widgets)."""
        src = self.source(source, fold)
        sample = src.sample(index)
        heat, scores = self.outputs(src, index)
        if mode == MODES[1]:
            return plots.all_aus_figure(sample, self.labels, heat, scores)
        return plots.single_au_figure(sample, self.labels, heat, scores, au or self.labels[0])

    # ------------------------------------------------------------------ widgets
    def _build_widgets(self, options: list[str]) -> None:
        import ipywidgets as w

        src = self.source(self.state["source"], self.state["fold"])
        folds = self.folds.get(self.state["source"], [])
        self.w_source = w.Dropdown(options=options, value=self.state["source"], description="source")
        self.w_fold = w.Dropdown(options=folds or [0], value=self.state["fold"] if self.state["fold"] is not None
                                 else (folds or [0])[0], description="fold", disabled=not folds)
        self.w_image = w.IntSlider(0, 0, max(0, len(src) - 1), description="image", continuous_update=False)
        self.w_name = w.Label(src.names()[0] if len(src) else "")
        self.w_au = w.Dropdown(options=self.labels, value=self.labels[0], description="AU")
        self.w_mode = w.ToggleButtons(options=MODES, value=MODES[0], description="view")
        self.w_upload = w.FileUpload(accept="image/*", multiple=False, description="your image")
        self.w_note = w.HTML(f"model: <b>{self.loaded.name}</b> ({self.loaded.dataset} AUs)")
        self.panel = plots.Panel(border="1px solid #ddd", min_height="200px")
        self.out = self.panel.widget
        self.w_source.observe(self._on_source, names="value")
        self.w_fold.observe(self._on_source, names="value")
        for widget in (self.w_image, self.w_au, self.w_mode):
            widget.observe(self._on_change, names="value")
        self.w_upload.observe(self._on_upload, names="value")
        self.app = w.VBox([w.HBox([self.w_source, self.w_fold, self.w_upload]),
                           w.HBox([self.w_image, self.w_name]), w.HBox([self.w_au, self.w_mode]),
                           self.w_note, self.out])

    def _current(self):
        return self.source(self.w_source.value, self._fold())

    def render(self) -> None:
        """Redraw the output area for the current choices."""
        def draw(panel):
            src = self._current()
            if not len(src):
                panel.text(f"{src.name}: no images")
                return
            index = min(self.w_image.value, len(src) - 1)
            self.w_name.value = src.names()[index]
            panel.figure(self.figure(index, self.w_au.value, self.w_mode.value, self.w_source.value, self._fold()))

        self.panel.guard(draw)

    def _on_source(self, change) -> None:
        if self._quiet:
            return

        def switch(panel):
            key = self.w_source.value
            folds = self.folds.get(key, [])
            with self._hush():
                if change["owner"] is self.w_source:
                    self.w_fold.options = folds or [0]
                    self.w_fold.disabled = not folds
                src = self._current()
                panel.text(f"computing model outputs for {len(src)} images of {src.name} ...")
                self.precompute(src)
                self.w_image.max = max(0, len(src) - 1)
                self.w_image.value = 0

        if self.panel.guard(switch):
            self.render()

    def _on_change(self, change) -> None:
        if not self._quiet:
            self.render()

    def _on_upload(self, change) -> None:
        value = change["new"]
        if not value or self._quiet:
            return
        item = value[0] if isinstance(value, (list, tuple)) else next(iter(value.values()))

        def add(panel):
            if self.photos is None:
                self.photos = PhotoSource(name=PHOTOS)
            name = item.get("name", "upload")
            panel.text(f"aligning {name} ...")
            index = self.photos.add(item["content"], name)
            with self._hush():
                self.w_source.value = PHOTOS
                self.w_fold.disabled = True
                self.precompute(self.photos)
                self.w_image.max = len(self.photos) - 1
                self.w_image.value = index

        if self.panel.guard(add):
            self.render()

    def _hush(self):
        """Programmatic widget changes inside this block do not redraw (one redraw follows)."""
        from contextlib import contextmanager

        @contextmanager
        def block():
            self._quiet = True
            try:
                yield
            finally:
                self._quiet = False

        return block()

    def show_static(self, index: int = 0, au: str | None = None) -> None:
        """Both views of one image as plain output cells (what an executed notebook keeps)."""
        au = au if au in self.labels else self.labels[0]
        plots.show(self.figure(index, au, MODES[0], self.w_source.value, self._fold()))
        plots.show(self.figure(index, au, MODES[1], self.w_source.value, self._fold()))

    def _fold(self):
        return self.w_fold.value if self.w_source.value != PHOTOS else None

    def show(self):
        """Precompute the first source, draw, and display the app."""
        from IPython.display import display

        if self.panel.guard(lambda panel: self.precompute(self._current())):
            self.render()
        display(self.app)
        return self
