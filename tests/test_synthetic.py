"""Demo corpus: determinism, raw layouts, AU statistics, locality of AU cues, and that dlib can read the faces."""
from __future__ import annotations

import filecmp
import re

import cv2
import numpy as np
import pytest

from fgnet_core.democorpus import au_stats
from fgnet_core.data.au_tables import ACTION_UNITS, DATASET_AUS
from fgnet_core.data.folds import TEST_SUBJECTS
from fgnet_core.democorpus.corpus import (
    RAW_AUS, au_sequence, demo_subjects, generate_demo_corpus, plan_subject, render_plan,
)
from fgnet_core.democorpus.domain import DOMAINS, render_frame
from fgnet_core.democorpus.face import RENDERED_AUS, Pose, sample_identity


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A tiny corpus: one subject per fold and domain, 8 frames each, written by two processes."""
    out = tmp_path_factory.mktemp("demo")
    report = generate_demo_corpus(out, seed=3, frames_per_subject=8, subjects_per_fold=1, workers=2)
    return out, report


def test_stats_table_matches_fgnet_columns():
    for dataset in ("BP4D", "DISFA"):
        assert au_stats.AUS[dataset] == DATASET_AUS[dataset]
        weights = np.array([w for w, _ in au_stats.PROTOTYPES[dataset]])
        probs = np.array([p for _, p in au_stats.PROTOTYPES[dataset]])
        assert abs(weights.sum() - 1) < 1e-3
        np.testing.assert_allclose(weights @ probs, au_stats.PREVALENCE[dataset], atol=3e-3)
        assert set(DATASET_AUS[dataset]) <= set(RAW_AUS[dataset]) and set(DATASET_AUS[dataset]) <= set(RENDERED_AUS)


@pytest.mark.parametrize("dataset,pair", [("BP4D", (6, 12)), ("DISFA", (1, 2))])
def test_sampled_labels_follow_prevalence_and_cooccurrence(dataset, pair):
    rng = np.random.default_rng(0)
    occ = np.concatenate([au_sequence(dataset, 40, rng) for _ in range(400)]).astype(float)  # [16000, A]
    np.testing.assert_allclose(occ.mean(0), au_stats.PREVALENCE[dataset], atol=0.03)
    i, j = (DATASET_AUS[dataset].index(a) for a in pair)
    corr = np.corrcoef(occ.T)[i, j]
    assert abs(corr - au_stats.CORRELATION[dataset][i][j]) < 0.1
    # Persistence: consecutive frames agree far more often than independent draws would.
    p = occ.mean(0)
    assert (occ[1:] == occ[:-1]).mean() > (p ** 2 + (1 - p) ** 2).mean() + 0.05


def test_every_disfa_subject_shows_every_au():
    """Rare DISFA AUs (AU1, AU2, AU9) must reach every fold's training and test subjects."""
    for subject, fold in demo_subjects("DISFA", 4):
        labels = plan_subject("DISFA", subject, fold, seed=0, frames_per_subject=48).sequences[0].labels
        columns = [RAW_AUS["DISFA"].index(au) for au in DATASET_AUS["DISFA"]]
        shown = (labels[:, columns] >= 2).any(axis=0)  # occurrence = intensity >= 2
        missing = [au for au, s in zip(DATASET_AUS['DISFA'], shown) if not s]
        assert shown.all(), f"{subject}: AU(s) {missing} never occur"


def test_subjects_are_official_test_subjects():
    for dataset in ("BP4D", "DISFA"):
        pairs = demo_subjects(dataset, 4)
        assert len(pairs) == 12 and len({s for s, _ in pairs}) == 12
        assert all(s in TEST_SUBJECTS[dataset][fold] for s, fold in pairs)
    assert {s[0] for s, _ in demo_subjects("BP4D", 4)} == {"F", "M"}


def test_same_seed_same_frames():
    a, b = (plan_subject("BP4D", "F001", 0, seed=5, frames_per_subject=12) for _ in range(2))
    for sa, sb in zip(a.sequences, b.sequences):
        np.testing.assert_array_equal(sa.labels, sb.labels)
        np.testing.assert_array_equal(sa.strengths, sb.strengths)
    frames_a = [x for _, x in zip(range(3), render_plan(a, 5))]
    frames_b = [x for _, x in zip(range(3), render_plan(b, 5))]
    for (_, _, img_a, lm_a), (_, _, img_b, lm_b) in zip(frames_a, frames_b):
        np.testing.assert_array_equal(img_a, img_b)
        np.testing.assert_array_equal(lm_a, lm_b)
    other = next(render_plan(plan_subject("BP4D", "F001", 0, seed=6, frames_per_subject=12), 6))
    assert not np.array_equal(other[2], frames_a[0][2])


def test_same_seed_same_bytes(tmp_path):
    for name in ("a", "b"):
        generate_demo_corpus(tmp_path / name, seed=1, frames_per_subject=4, subjects_per_fold=1, workers=1)
    cmp = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    files = [p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()]
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", [str(f) for f in files], shallow=False)
    assert not mismatch and not errors and not cmp.left_only and not cmp.right_only


def test_bp4d_raw_layout(corpus):
    out, report = corpus
    root = out / "BP4D"
    images = sorted(root.glob("*/T*/*.jpg"))
    assert images and all(re.fullmatch(r"[FM]\d{3}/T[1-8]/\d{5}\.jpg", str(p.relative_to(root))) for p in images)
    label_files = sorted((root / "AUCoding" / "AU_OCC").glob("*.csv"))
    assert label_files and all(re.fullmatch(r"[FM]\d{3}_T[1-8]", p.stem) for p in label_files)
    nines, rows_without_image = 0, 0
    for path in label_files:
        lines = path.read_text().splitlines()
        header = lines[0].split(",")
        assert header[0] == "0" and [int(h) for h in header[1:]] == list(RAW_AUS["BP4D"])
        subject, task = path.stem.split("_")
        for line in lines[1:]:
            values = [int(v) for v in line.split(",")]
            assert set(values[1:]) <= {0, 1, 9}
            nines += 9 in values[1:]
            rows_without_image += not (root / subject / task / f"{values[0]:05d}.jpg").is_file()
    assert nines >= 1 and rows_without_image >= 1
    gt = out / "ground_truth" / "BP4D"
    names = (gt / "frames.txt").read_text().split()
    assert np.load(gt / "landmarks.npy").shape == (len(names), 68, 2)
    assert all((root / f"{n}.jpg").is_file() for n in names)
    assert report["datasets"]["BP4D"]["frames"] == len(names) == 3 * 8


def test_disfa_raw_layout(corpus):
    out, _ = corpus
    root = out / "DISFA"
    videos = sorted((root / "Videos_LeftCamera").glob("*.avi"))
    assert [v.name for v in videos] == [f"LeftVideo{s}_comp.avi" for s in ("SN001", "SN003", "SN006")]
    for video in videos:
        subject = video.name[len("LeftVideo"):-len("_comp.avi")]
        cap = cv2.VideoCapture(str(video))
        n = 0
        while cap.read()[0]:
            n += 1
        cap.release()
        for au in RAW_AUS["DISFA"]:
            lines = (root / "ActionUnit_Labels" / subject / f"{subject}_au{au}.txt").read_text().split()
            frames, values = zip(*[(int(a), int(b)) for a, b in (line.split(",") for line in lines)])
            assert list(frames) == list(range(1, n + 1)) and set(values) <= set(range(6))
    gt = out / "ground_truth" / "DISFA"
    assert np.load(gt / "landmarks.npy").shape[0] == len((gt / "frames.txt").read_text().split()) == 24


def test_project_readers_accept_the_corpus(corpus):
    raw_bp4d = pytest.importorskip("fgnet_core.data.raw_bp4d")
    raw_disfa = pytest.importorskip("fgnet_core.data.raw_disfa")
    out, _ = corpus
    table, counts = raw_bp4d.scan_bp4d(out / "BP4D")
    assert counts["labelled"] > 0 and counts["not_coded"] >= 1 and counts["missing_frames"] >= 1
    table, counts = raw_disfa.scan_disfa(out / "DISFA")
    assert counts["labelled"] == 24


def _anchor_distance(lm: np.ndarray, au: int, hw: tuple[int, int]) -> np.ndarray:
    """Per-pixel distance to the nearer heatmap anchor of `au`, in inter-ocular distances.  # [H, W]"""
    iod = np.linalg.norm(lm[42] - lm[39])
    yy, xx = np.mgrid[:hw[0], :hw[1]]
    centres = [lm[list(a.landmarks)].mean(0) + (0.0, a.iod_down * iod) for a in ACTION_UNITS[au].anchors]
    return np.min([np.hypot(xx - c[0], yy - c[1]) for c in centres], axis=0) / iod


@pytest.mark.parametrize("seed", [0, 1])
def test_au_cues_are_local_and_visible(seed):
    rng = np.random.default_rng(seed)
    identity = sample_identity(rng, "FM"[seed])
    dom = DOMAINS["BP4D"]
    h, w = dom.out_hw
    pose = Pose(8.0 * (1 - 2 * seed), 2.0, -5.0, 165.0, w / 2, h * 0.47)
    base, lm = render_frame(dom, identity, np.zeros(len(RENDERED_AUS)), pose, np.random.default_rng(0), finish=False)
    for k, au in enumerate(RENDERED_AUS):
        strengths = np.zeros(len(RENDERED_AUS))
        strengths[k] = 1.0
        img, _ = render_frame(dom, identity, strengths, pose, np.random.default_rng(0), finish=False)
        diff = np.abs(img - base).sum(-1)                                          # [H, W]
        near = diff[_anchor_distance(lm, au, (h, w)) < 1.5].sum() / diff.sum()
        assert near > 0.8, f"AU{au}: only {near:.2f} of the change lies within 1.5 IOD of its anchors"
        assert (diff > 0.15).sum() > 40, f"AU{au}: too few clearly changed pixels"


@pytest.mark.slow
def test_dlib_finds_the_faces():
    dlib = pytest.importorskip("dlib")
    from fgnet_core.paths import dlib_landmark_model

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_landmark_model()))
    found, errors = 0, []
    frames = []
    for dataset, subject in (("BP4D", "M001"), ("BP4D", "F003"), ("DISFA", "SN002"), ("DISFA", "SN011")):
        plan = plan_subject(dataset, subject, 0, seed=2, frames_per_subject=4)
        frames += [(img, lm) for _, _, img, lm in render_plan(plan, 2)]
    for img, lm in frames:
        rgb = np.ascontiguousarray(img[..., ::-1])
        hits = [r for r in detector(rgb, 1) if r.left() < lm[:, 0].mean() < r.right()
                and r.top() < lm[:, 1].mean() < r.bottom()]
        if hits:
            found += 1
            fit = np.array([(p.x, p.y) for p in predictor(rgb, hits[0]).parts()])
            errors.append(np.linalg.norm(fit - lm, axis=1).mean() / np.linalg.norm(lm[36] - lm[45]))
    assert found >= 0.9 * len(frames)
    assert np.mean(errors) < 0.08
