"""AUDataset items: shapes, ranges, targets from stored landmarks, the detection fallback, clear errors."""
from __future__ import annotations

import sys
import types

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from fgnet_core.data.au_tables import au_columns
from fgnet_core.data.dataset import AUDataset, landmark_path
from fgnet_core.data.heatmaps import au_heatmaps
from fgnet_core.data.labels import write_label_csv


def _landmarks(shift: float) -> np.ndarray:
    rng = np.random.default_rng(int(shift))
    return rng.uniform(60, 200, (68, 2)) + shift


@pytest.fixture()
def corpus(tmp_path):
    """Three aligned DISFA frames with stored landmarks (the last one without) and a label file."""
    rels = ["SN001/00001", "SN001/00002", "SN002/00001"]
    rng = np.random.default_rng(0)
    for i, rel in enumerate(rels):
        image = tmp_path / "DISFA" / "aligned_images" / f"{rel}.jpg"
        image.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(image, quality=95)
        if i < 2:
            lmk = tmp_path / "DISFA" / "aligned_landmarks" / f"{rel}.npy"
            lmk.parent.mkdir(parents=True, exist_ok=True)
            np.save(lmk, _landmarks(i))
    labels = pd.DataFrame({"image_path": [f"DISFA/aligned_images/{r}.jpg" for r in rels]})
    for j, col in enumerate(au_columns("DISFA")):
        labels[col] = [(i + j) % 2 for i in range(3)]
    csv = tmp_path / "DISFA" / "labels" / "0" / "test.csv"
    write_label_csv(labels, csv, "DISFA")
    return tmp_path, csv, labels


def test_landmark_path():
    assert landmark_path("root/DISFA/aligned_images/SN001/00001.jpg").as_posix() == \
        "root/DISFA/aligned_landmarks/SN001/00001.npy"
    with pytest.raises(ValueError, match="aligned_images"):
        landmark_path("root/x/00001.jpg")


def test_item_shapes_ranges_and_targets(corpus):
    root, csv, labels = corpus
    ds = AUDataset(csv, root, "disfa", heatmap_size=64)
    assert len(ds) == 3
    item = ds[1]
    assert item["image"].shape == (3, 256, 256) and item["image"].dtype == torch.float32
    assert -1.0 <= item["image"].min() and item["image"].max() <= 1.0
    expected = np.asarray(Image.open(root / labels.image_path[1]).convert("RGB"), dtype=np.float32)
    np.testing.assert_allclose(item["image"].permute(1, 2, 0).numpy(), expected / 127.5 - 1, atol=1e-6)
    assert item["labels"].dtype == torch.float32
    assert item["labels"].tolist() == labels.loc[1, au_columns("DISFA")].astype(float).tolist()
    assert item["heatmap"].shape == (8, 64, 64) and item["heatmap"].dtype == torch.float32
    target = au_heatmaps(_landmarks(1), labels.loc[1, au_columns("DISFA")].to_numpy(), "DISFA", size=64)
    np.testing.assert_allclose(item["heatmap"].numpy(), target.astype(np.float32))
    assert item["path"] == labels.image_path[1] and item["index"] == 1
    again = ds[1]
    assert torch.equal(again["image"], item["image"]) and torch.equal(again["heatmap"], item["heatmap"])


def test_batches_and_no_heatmaps(corpus):
    root, csv, labels = corpus
    ds = AUDataset(labels.iloc[:2], root, "DISFA", with_heatmaps=False)
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 256, 256) and batch["labels"].shape == (2, 8)
    assert "heatmap" not in batch and batch["path"] == list(labels.image_path[:2])


def test_colour_jitter_is_reproducible_and_off_by_default(corpus):
    root, csv, _ = corpus
    plain = AUDataset(csv, root, "DISFA", with_heatmaps=False)[0]["image"]
    ds = AUDataset(csv, root, "DISFA", with_heatmaps=False, augment=True, seed=5)
    a, b = ds[0]["image"], ds[0]["image"]
    assert torch.equal(a, b) and not torch.equal(a, plain)
    assert a.min() >= -1 and a.max() <= 1
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["image"], a)


def test_detection_fallback_when_landmarks_are_not_stored(corpus, monkeypatch):
    root, csv, labels = corpus
    calls = []
    fake = types.ModuleType("fgnet_core.data.face_detect")

    def detect_landmarks(image_rgb):
        calls.append(image_rgb.shape)
        return _landmarks(2)

    fake.detect_landmarks = detect_landmarks
    monkeypatch.setitem(sys.modules, "fgnet_core.data.face_detect", fake)
    ds = AUDataset(csv, root, "DISFA")
    item = ds[2]
    assert calls == [(256, 256, 3)]
    target = au_heatmaps(_landmarks(2), labels.loc[2, au_columns("DISFA")].to_numpy(), "DISFA")
    np.testing.assert_allclose(item["heatmap"].numpy(), target.astype(np.float32))
    ds[2]
    assert len(calls) == 1  # detected once per item

    fake.detect_landmarks = lambda image_rgb: None
    with pytest.raises(ValueError, match="00001.jpg.*no face"):
        AUDataset(csv, root, "DISFA")[2]


def test_missing_and_broken_images_are_named(corpus):
    root, csv, labels = corpus
    (root / labels.image_path[0]).unlink()
    ds = AUDataset(csv, root, "DISFA")
    with pytest.raises(FileNotFoundError, match="SN001/00001.jpg"):
        ds[0]
    (root / labels.image_path[1]).write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="SN001/00002.jpg"):
        ds[1]
    bad = root / "DISFA" / "aligned_landmarks" / "SN002" / "00001.npy"
    bad.parent.mkdir(parents=True)
    np.save(bad, np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"00001.npy.*\(68, 2\)"):
        ds[2]
    with pytest.raises(IndexError):
        ds[3]
