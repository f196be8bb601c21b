"""The unlabelled pretraining corpus: deterministic, varied, FFHQ-aligned, and no labelled subject in it."""
from __future__ import annotations

import numpy as np
import pytest

from fgnet_core.data.folds import TEST_SUBJECTS
from fgnet_core.democorpus.corpus import plan_subject, render_plan
from fgnet_core.democorpus.pretrain import (
    CAMERA_STYLES, DEFAULT_STYLES, generate_pretrain_corpus, pretrain_identity, render_pretrain_face,
)

SIZE = 64


@pytest.fixture(scope="module")
def sample():
    """48 faces of seed 0: (images [48, 64, 64, 3], metas)."""
    pairs = [render_pretrain_face(i, seed=0, size=SIZE) for i in range(48)]
    return np.stack([img for img, _ in pairs]), [m for _, m in pairs]


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path):
    runs = {}
    for name, workers in (("a", 1), ("b", 1), ("c", 2)):
        summary = generate_pretrain_corpus(tmp_path / name, n=10, seed=3, workers=workers, chunk_size=4)
        assert summary["faces"] == 10 and summary["identities"] == 5
        runs[name] = {f: (tmp_path / name / f).read_bytes() for f in ("faces.npy", "index.csv", "samples.png")}
    assert runs["a"] == runs["b"] == runs["c"]
    faces = np.load(tmp_path / "a" / "faces.npy")
    assert faces.shape == (10, SIZE, SIZE, 3) and faces.dtype == np.uint8
    header, *rows = runs["a"]["index.csv"].decode().splitlines()
    assert header == "index,identity,style,sex,yaw,pitch,roll,glasses,n_aus_on" and len(rows) == 10
    assert not list(tmp_path.glob("*/.*tmp*"))  # atomic writes leave no temporaries


def test_different_seeds_differ():
    a, _ = render_pretrain_face(5, seed=0)
    b, _ = render_pretrain_face(5, seed=1)
    assert not np.array_equal(a, b)
    again, _ = render_pretrain_face(5, seed=0)
    np.testing.assert_array_equal(a, again)


def test_styles_pose_and_expressions_vary(sample):
    _, metas = sample
    assert {m["style"] for m in metas} == set(DEFAULT_STYLES) and len(CAMERA_STYLES) >= 6
    assert max(abs(m["yaw"]) for m in metas) > 15 and max(abs(m["pitch"]) for m in metas) > 8  # beyond labelled
    assert max(m["n_aus_on"] for m in metas) >= 4 and len({m["identity"] for m in metas}) == 24


def test_faces_are_not_blank_and_aligned_alike(sample):
    images, metas = sample
    assert images.shape == (48, SIZE, SIZE, 3)
    assert images.reshape(48, -1).astype(np.float32).std(axis=1).min() > 12  # a face, not a flat frame
    lm = np.stack([m["landmarks"] for m in metas]) / SIZE                     # [48, 68, 2] in crop units
    eyes = (lm[:, 36:42].mean(1) + lm[:, 42:48].mean(1)) / 2
    mouth = (lm[:, 48] + lm[:, 54]) / 2
    # FFHQ geometry: crop centre = eye midpoint + 0.1 of the way to the mouth, eye line level.
    np.testing.assert_allclose(eyes + 0.1 * (mouth - eyes), 0.5, atol=0.02)
    assert np.all(np.abs(lm[:, 42:48].mean(1)[:, 1] - lm[:, 36:42].mean(1)[:, 1]) < 0.05)
    assert 0.36 < eyes[:, 1].mean() < 0.48 and 0.62 < mouth[:, 1].mean() < 0.75
    assert lm.min() > 0 and lm.max() < 1


def test_no_identity_shared_with_a_labelled_subject():
    """Every official test subject's demo identity (both datasets, two seeds) differs from the pretraining ones."""
    labelled = [plan_subject(d, s, fold, seed, frames_per_subject=6).identity
                for seed in (0, 1) for d in ("BP4D", "DISFA")
                for fold, subjects in enumerate(TEST_SUBJECTS[d]) for s in subjects]
    ours = [pretrain_identity(i, seed) for seed in (0, 1) for i in range(200)]
    lab_shape = np.stack([idn.shape[:68].ravel() for idn in labelled])      # [L, 204]
    our_shape = np.stack([idn.shape[:68].ravel() for idn in ours])          # [P, 204]
    dist = np.abs(lab_shape[:, None] - our_shape[None]).max(axis=2)         # [L, P]
    assert dist.min() > 1e-3
    lab_texture = {idn.texture.tobytes() for idn in labelled}
    assert not lab_texture & {idn.texture.tobytes() for idn in ours}


def test_labelled_frames_unchanged_by_pretraining_renders():
    """The pretraining renderer shares caches with the labelled one; it must not alter labelled frames."""
    plan = plan_subject("DISFA", "SN001", 0, seed=2, frames_per_subject=4)
    before = next(render_plan(plan, 2))[2]
    for i in range(12):
        render_pretrain_face(i, seed=2, styles=("studio", "lab"))
    after = next(render_plan(plan, 2))[2]
    np.testing.assert_array_equal(before, after)
