"""The explorer core (fgnet_core/explore) on a small aligned corpus made here, and both explorer notebooks
executed headless with papermill: once on the self-contained fallbacks (no model, no corpus), once on a
saved checkpoint and the corpus.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("dlib")
pytest.importorskip("ipywidgets")
skdata = pytest.importorskip("skimage.data")

from fgnet_core.data.align import FaceAligner  # noqa: E402
from fgnet_core.data.align_outputs import save_aligned  # noqa: E402
from fgnet_core.data.au_tables import au_columns  # noqa: E402
from fgnet_core.data.labels import label_csv_path, write_label_csv  # noqa: E402
from fgnet_core.explore import (  # noqa: E402
    FeatureExplorer, HeatmapExplorer, channel_stats, explore_model, explore_samples, feature_pyramid,
    level_ablation, pca_rgb,
)
from fgnet_core.paths import REPO_ROOT  # noqa: E402

NOTEBOOKS = REPO_ROOT / "notebooks"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """An aligned BP4D corpus of two test images (the astronaut, AU12 on / off) for fold 0."""
    root = tmp_path_factory.mktemp("aligned")
    face = FaceAligner().align(skdata.astronaut())
    rels = ["F001/T1/0001", "F001/T1/0002"]
    for rel in rels:
        save_aligned(root / "BP4D", rel, face.image, face.landmarks)
    labels = np.zeros((2, len(au_columns("BP4D"))), int)
    labels[0, au_columns("BP4D").index("au12")] = 1
    table = pd.DataFrame(labels, columns=au_columns("BP4D"))
    table.insert(0, "image_path", [f"BP4D/aligned_images/{rel}.jpg" for rel in rels])
    write_label_csv(table, label_csv_path(root, "BP4D", 0, "test"), "BP4D")
    return root


def test_model_fallback_is_seeded_and_says_so(tmp_path, capsys):
    a = explore_model(tmp_path / "absent.pt", fallback_dataset="DISFA", seed=3)
    b = explore_model(tmp_path / "absent.pt", fallback_dataset="DISFA", seed=3, verbose=False)
    assert "untrained 'tiny'" in capsys.readouterr().out
    assert a.dataset == "DISFA" and a.n_aus == 8
    assert all(torch.equal(p, q) for p, q in zip(a.net.state_dict().values(), b.net.state_dict().values()))


def _titles(fig) -> str:
    return " ".join(ax.get_title() for ax in fig.axes)


def _pngs(panel) -> list[str]:
    """The images in an app's output area, in order."""
    return [o["data"]["image/png"] for o in panel.outputs if "image/png" in o.get("data", {})]


def _text(panel) -> str:
    return "".join(o.get("text", "") for o in panel.outputs)


def test_heatmap_explorer_on_corpus(corpus, tiny_model):
    model = explore_model(tiny_model)
    app = HeatmapExplorer(model, corpus)
    assert app.folds == {"BP4D": [0]} and app.w_source.value == "BP4D"
    src = app.source()
    sample = src.sample(0)
    assert sample.image.shape == (256, 256, 3) and sample.landmarks.shape == (68, 2)
    assert sample.truth["AU12"] == 1 and sample.targets["AU12"].shape == (32, 32)
    assert sample.targets["AU12"].max() > 0 and src.sample(1).targets["AU12"].min() < 0  # present / absent blobs
    app.precompute()
    assert len(app.cache) == 2
    assert "predicted AU12" in _titles(app.figure(1, "AU12", "single AU"))
    assert "AU24" in _titles(app.figure(1, "AU12", "all AUs"))
    app.render()
    first = _pngs(app.panel)
    app.w_au.value = "AU04"  # the widget path: each change redraws the output area
    second = _pngs(app.panel)
    app.w_mode.value = "all AUs"
    assert len(first) == len(second) == len(_pngs(app.panel)) == 1
    assert len({first[0], second[0], _pngs(app.panel)[0]}) == 3


def test_heatmap_explorer_upload_and_errors(tiny_model, tmp_path):
    import io

    from PIL import Image

    app = HeatmapExplorer(explore_model(tiny_model), tmp_path / "no-corpus")
    assert app.w_source.options == ("photos",) and len(app.photos) == 1  # the offline photo
    buf = io.BytesIO()
    Image.fromarray(skdata.astronaut()).save(buf, format="PNG")
    app._on_upload({"new": ({"name": "mine.png", "content": memoryview(buf.getvalue())},)})
    assert len(app.photos) == 2 and app.w_image.value == 1 and app.w_name.value == "mine.png"
    assert len(_pngs(app.panel)) == 1
    app._on_upload({"new": ({"name": "cat.png", "content": memoryview(b"not an image")},)})
    assert "error: cat.png: not a readable image" in _text(app.panel)  # in the output area, not raised
    assert not _pngs(app.panel)
    assert len(app.photos) == 2


def test_feature_analysis(tiny_model, corpus):
    model = explore_model(tiny_model)
    samples = explore_samples((), corpus, "BP4D", 0, max_images=1, heatmap_size=32)
    assert len(samples) == 1
    pyr = feature_pyramid(model, samples[0].image)
    assert pyr.reconstruction.shape == (64, 64, 3) and len(pyr.maps) == 10 and pyr.levels == [1, 3, 5, 7, 9]
    assert pyr.heatmaps.shape == (12, 32, 32)
    view = pca_rgb(pyr.maps[5])
    assert view.shape == (16, 16, 3) and 0 <= view.min() and view.max() <= 1
    stats = channel_stats(pyr)
    assert len(stats) == 10 and stats["interpreter_level"].notna().sum() == 5
    table, ablated = level_ablation(model, pyr)
    assert table.shape == (5, 12) and len(ablated) == 5 and np.abs(table.to_numpy()).max() > 0
    explorer = FeatureExplorer(model, samples)
    assert len(explorer.ablation_figures(0, "AU12")) == 2
    explorer.w_au.value = "AU04"
    assert len(_pngs(explorer.panel)) == 4 and "error" not in _text(explorer.panel)


def _run_notebook(name: str, out_dir: Path, **parameters) -> dict:
    import nbformat
    import papermill

    out = out_dir / name
    papermill.execute_notebook(str(NOTEBOOKS / name), str(out), parameters=parameters, kernel_name="python3",
                               cwd=str(out_dir), progress_bar=False, start_timeout=120, execution_timeout=600)
    return nbformat.read(out, as_version=4)


def _images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.slow
def test_explore_heatmaps_notebook_fallbacks(tmp_path):
    nb = _run_notebook("explore_heatmaps.ipynb", tmp_path, model_path=str(tmp_path / "absent.pt"),
                       aligned_root=str(tmp_path / "no-corpus"), max_images=2)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "untrained 'tiny'" in text
    assert _images(nb) >= 2


@pytest.mark.slow
def test_explore_features_notebook_on_corpus(tmp_path, corpus, tiny_model):
    nb = _run_notebook("explore_features.ipynb", tmp_path, model_path=str(tiny_model), aligned_root=str(corpus),
                       max_images=2, au="AU04")
    assert _images(nb) >= 4


@pytest.mark.parametrize("name", ["explore_heatmaps.ipynb", "explore_features.ipynb"])
def test_notebooks_are_stripped_and_parametrised(name):
    import nbformat

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for line in params[0].source.splitlines():
        assert " = " in line and "  # " in line, f"{name}: parameter line without a comment: {line!r}"
