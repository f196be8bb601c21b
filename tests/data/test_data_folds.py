"""The fold table against the official label files; validation split, subsets and frame names."""
from __future__ import annotations

from pathlib import PurePosixPath

import pandas as pd
import pytest

from fgnet_core.data import folds
from fgnet_core.data.folds import (
    FOLDS, all_subjects, bp4d_frame_name, bp4d_rel, disfa_frame_name, disfa_rel, fold_of,
    sample_training_rows, subject_of, test_subjects, train_subjects, validation_subjects,
)

DATASETS = ("BP4D", "DISFA")
OFFICIAL_TEST_ROWS = {"BP4D": (50579, 50157, 45687), "DISFA": (43545, 43605, 43161)}


@pytest.mark.parametrize("dataset", DATASETS)
def test_folds_partition_the_subjects(dataset):
    everyone = set(all_subjects(dataset))
    assert len(everyone) == {"BP4D": 41, "DISFA": 27}[dataset]
    tests = [set(test_subjects(dataset, k)) for k in FOLDS]
    assert set().union(*tests) == everyone
    assert sum(len(t) for t in tests) == len(everyone)  # disjoint
    for k in FOLDS:
        train = set(train_subjects(dataset, k))
        assert not train & tests[k]
        assert train | tests[k] == everyone
        assert all(fold_of(dataset, s) == k for s in tests[k])


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("fold", FOLDS)
def test_table_matches_official_label_files(official, dataset, fold):
    test = official(dataset, fold, "test")
    assert len(test) == OFFICIAL_TEST_ROWS[dataset][fold]
    assert set(test.image_path.str.split("/").str[2]) == set(test_subjects(dataset, fold))
    for n in (100, 1000, 5000, 10000):
        subset = official(dataset, fold, f"train_{n}")
        assert len(subset) == n
        assert set(subset.image_path.str.split("/").str[2]) <= set(train_subjects(dataset, fold))


def test_official_frame_names_follow_the_conventions(official):
    for dataset, name in (("BP4D", bp4d_frame_name), ("DISFA", disfa_frame_name)):
        paths = official(dataset, 0, "test").image_path
        assert subject_of(paths[0]) == paths[0].split("/")[2]
        stems = sorted(set(paths.str.rsplit("/", n=1).str[1].str.removesuffix(".jpg")))
        assert all(name(int(s)) == s for s in stems)
    disfa = official("DISFA", 0, "test")
    first = disfa.image_path[disfa.image_path.str.contains("/SN001/")].min()
    assert first == "DISFA/aligned_images/SN001/00001.jpg"  # frame 1 is the first video frame


def test_frame_names_and_rels():
    assert bp4d_frame_name(2440) == "02440"
    assert bp4d_frame_name(1) == "00001"
    assert disfa_frame_name(1) == "00001"
    assert disfa_frame_name(4845) == "04845"
    assert bp4d_rel("F001", "T1", 2440) == "F001/T1/02440"
    assert disfa_rel("SN001", 1) == "SN001/00001"
    assert folds.aligned_image_path("bp4d", "F001/T1/02440") == "BP4D/aligned_images/F001/T1/02440.jpg"
    with pytest.raises(ValueError, match="1-based"):
        disfa_frame_name(0)
    with pytest.raises(ValueError):
        bp4d_frame_name(-3)


def test_subject_of():
    assert subject_of("BP4D/aligned_images/F001/T1/02440.jpg") == "F001"
    assert subject_of("DISFA/aligned_images/SN001/00001.jpg") == "SN001"
    assert subject_of(PurePosixPath("DISFA/aligned_images/SN030/00001.jpg")) == "SN030"
    with pytest.raises(ValueError, match="02440.jpg"):
        subject_of("02440.jpg")


def test_bad_fold_and_dataset():
    with pytest.raises(ValueError, match="fold"):
        test_subjects("BP4D", 3)
    with pytest.raises(ValueError, match="dataset"):
        train_subjects("CK+", 0)
    with pytest.raises(ValueError, match="X999"):
        fold_of("BP4D", "X999")


@pytest.mark.parametrize("dataset, size", [("BP4D", 5), ("DISFA", 3)])
def test_validation_subjects(dataset, size):
    for k in FOLDS:
        val = validation_subjects(dataset, k)
        assert len(val) == size
        assert set(val) <= set(train_subjects(dataset, k))
        assert val == validation_subjects(dataset, k, seed=0)  # reproducible
        assert list(val) == sorted(val)
    seeds = {validation_subjects(dataset, 0, seed=s) for s in range(5)}
    assert len(seeds) > 1  # the seed matters
    assert len(validation_subjects(dataset, 0, n=1)) == 1


def test_validation_subjects_among_present_subjects():
    present = ["F003", "F004", "M002"]  # training subjects of fold 0 in a small corpus
    val = validation_subjects("BP4D", 0, among=present + ["F001"])  # F001 is a test subject: ignored
    assert len(val) == 1 and set(val) <= set(present)
    assert validation_subjects("BP4D", 0, among=["F003"]) == ()  # never the only training subject
    with pytest.raises(ValueError):
        validation_subjects("BP4D", 0, n=4, among=present)


def test_sample_training_rows_is_seeded_nested_and_order_free():
    rows = pd.DataFrame({"image_path": [f"BP4D/aligned_images/F003/T1/{i:05d}.jpg" for i in range(3000)],
                         "au1": [i % 2 for i in range(3000)]})
    small = sample_training_rows(rows, 100, seed=0)
    large = sample_training_rows(rows, 1000, seed=0)
    assert len(small) == 100 and len(large) == 1000
    assert set(small.image_path) <= set(large.image_path)
    assert small.equals(sample_training_rows(rows, 100, seed=0))
    assert list(small.image_path) == sorted(small.image_path)  # input order kept
    shuffled = rows.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert set(sample_training_rows(shuffled, 100, seed=0).image_path) == set(small.image_path)
    assert set(sample_training_rows(rows, 100, seed=1).image_path) != set(small.image_path)
    assert sample_training_rows(rows, 3000).shape == rows.shape
    with pytest.raises(ValueError):
        sample_training_rows(rows, 3001)
