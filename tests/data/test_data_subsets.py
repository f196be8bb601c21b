"""Data-efficiency subsets: the shipped official lists, what ingestion writes from them, and what a run reads."""
from __future__ import annotations

import pandas as pd
import pytest

from fgnet_core.data.au_tables import au_columns
from fgnet_core.data.folds import FOLDS, SUBSET_SIZES, subject_of, train_subjects, validation_subjects
from fgnet_core.data.ingest import ingest_bp4d, write_fold_files
from fgnet_core.data.labels import label_csv_path, read_label_csv, write_label_csv
from fgnet_core.data.subsets import OFFICIAL_LISTS, official_subset_paths, training_subsets
from tests.data.test_data_ingest import FakeAligner, _write_sequence


@pytest.mark.parametrize("dataset", ["BP4D", "DISFA"])
def test_shipped_lists_are_the_official_subsets(official, dataset):
    for fold in FOLDS:
        for size in SUBSET_SIZES:
            expected = official(dataset, fold, f"train_{size}").image_path.tolist()
            assert official_subset_paths(dataset, fold, size) == expected, (dataset, fold, size)


def test_shipped_lists_carry_the_official_licence():
    text = (OFFICIAL_LISTS / "LICENSE").read_text()
    assert "https://github.com/ihp-lab/FG-Net" in text and "Copyright (c) 2023 Intelligent Human Perception Lab" in text
    assert sorted(p.name for p in OFFICIAL_LISTS.glob("BP4D/0/*.gz")) == sorted(f"train_{n}.txt.gz" for n in SUBSET_SIZES)
    with pytest.raises(ValueError, match="official lists are folds"):
        official_subset_paths("BP4D", 0, 50)


def test_official_lists_hold_training_subjects_only():
    for dataset in ("BP4D", "DISFA"):
        for fold in FOLDS:
            paths = official_subset_paths(dataset, fold, 100)
            assert len(set(paths)) == 100
            assert {subject_of(p) for p in paths} <= set(train_subjects(dataset, fold))


def _table(dataset: str, paths: list[str]) -> pd.DataFrame:
    table = pd.DataFrame({"image_path": paths, "subject": [subject_of(p) for p in paths]})
    for c in au_columns(dataset):
        table[c] = 0
    return table


def test_ingesting_a_real_layout_corpus_writes_the_official_subsets(tmp_path):
    listed = official_subset_paths("BP4D", 0, 100)[:6]  # F00x/Tn/<frame> of fold 0's training subjects
    raw = tmp_path / "raw"
    for path in listed:
        subject, task, frame = path.split("/")[2], path.split("/")[3], int(path.split("/")[4][:-4])
        _write_sequence(raw, subject, task, [frame, frame + 100000], [f"{frame}.jpg", f"{frame + 100000}.jpg"],
                        [frame, frame + 100000])  # one listed frame, one that no list names
    failed = listed[0].split("aligned_images/")[1][:-4]
    report = ingest_bp4d(raw, tmp_path / "out", aligner=FakeAligner(fail={failed}), subset_sizes=[100, 1000],
                         subset_source="official", verbose=False)

    for fold in FOLDS:
        train = read_label_csv(label_csv_path(tmp_path / "out", "BP4D", fold, "train"), "BP4D", allow_empty=True)
        for size in (100, 1000):
            official = set(official_subset_paths("BP4D", fold, size))
            written = read_label_csv(label_csv_path(tmp_path / "out", "BP4D", fold, f"train_{size}"), "BP4D",
                                     allow_empty=True)
            assert set(written.image_path) == official & set(train.image_path)
            assert report.subset_missing[f"{fold}/train_{size}"] == len(official) - len(written)
        assert not label_csv_path(tmp_path / "out", "BP4D", fold, "train_5000").exists()
    fold0 = read_label_csv(label_csv_path(tmp_path / "out", "BP4D", 0, "train_100"), "BP4D")
    assert sorted(fold0.image_path) == sorted(listed[1:])  # the failed alignment is missing
    assert report.subset_missing["0/train_100"] == 95
    assert "official subset frames not ingested: 0/train_100 95" in report.summary()


def test_demo_subsets_are_nested_and_seeded_on_every_fold(tmp_path):
    subjects = ["F001", "F003", "F004"]  # one test subject per fold
    table = _table("BP4D", [f"BP4D/aligned_images/{s}/T1/{n:05d}.jpg" for s in subjects for n in range(1, 201)])
    write_fold_files(table, "BP4D", tmp_path / "a", seed=0, subset_sizes=[50, 150], subset_source="seeded")
    write_fold_files(table, "BP4D", tmp_path / "b", seed=1, subset_sizes=[150, 50], subset_source="seeded")
    for fold in FOLDS:
        def read(root, size):
            return set(read_label_csv(label_csv_path(root, "BP4D", fold, f"train_{size}"), "BP4D").image_path)
        small, large = read(tmp_path / "a", 50), read(tmp_path / "a", 150)
        assert len(small) == 50 and len(large) == 150 and small < large
        assert {subject_of(p) for p in large} == set(subjects) - {subjects[fold]}
        assert read(tmp_path / "b", 50) != small and read(tmp_path / "b", 50) < read(tmp_path / "b", 150)
    with pytest.raises(ValueError, match="subset source must be one of official, seeded"):
        training_subsets(table, "BP4D", 0, [50], "random")


def test_a_subset_run_trains_on_the_file_prepare_wrote(tmp_path):
    from fgnet_core.pipeline.config import Layout, load_config
    from fgnet_core.pipeline.runs import plan_run

    params = load_config()
    lay = Layout(tmp_path, params)
    subjects = ["F001", "F003", "F004"]
    table = _table("BP4D", [f"BP4D/aligned_images/{s}/T1/{n:05d}.jpg" for s in subjects for n in range(1, 21)])
    write_fold_files(table, "BP4D", lay.aligned_dir, subset_sizes=[8], subset_source="seeded")
    chosen = pd.concat([table[table.subject == "F003"].head(3), table[table.subject == "F004"].head(2)])
    write_label_csv(chosen, label_csv_path(lay.aligned_dir, "BP4D", 0, "train_8"), "BP4D")  # whatever the file says

    plan = plan_run(params, lay, "BP4D", 0, "faithful", size=8)
    assert plan.train_set.paths == chosen.image_path.tolist()
    assert plan.name == "BP4D_0_faithful_n8" and plan.run_params["size"] == 8

    held_out = validation_subjects("BP4D", 0, among=subjects)  # one of F003, F004
    clean = plan_run(params, lay, "BP4D", 0, "clean", size=8)  # never trains on the subjects it selects on
    assert clean.train_set.paths == [p for p in chosen.image_path if subject_of(p) not in held_out]
    with pytest.raises(FileNotFoundError, match=r"train_9\.csv: no data-efficiency subset of size 9"):
        plan_run(params, lay, "BP4D", 0, "faithful", size=9)
