"""Reading the official label files as they are, writing ours, and clear errors for broken files."""
from __future__ import annotations

import pandas as pd
import pytest

from fgnet_core.data.au_tables import au_columns
from fgnet_core.data.labels import (
    LabelFileError, label_csv_path, read_intensity_csv, read_label_csv, write_label_csv,
)

BP4D_HEADER = "image_path," + ",".join(au_columns("BP4D"))


def _first_line(path) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.readline()


@pytest.mark.parametrize("dataset, rows", [("BP4D", 50579), ("DISFA", 43545)])
def test_reads_official_test_file_without_index(reference_labels, official, dataset, rows):
    path = reference_labels / dataset / "labels" / "0" / "test.csv"
    assert _first_line(path).startswith("image_path,")  # no index column
    table = official(dataset, 0, "test")
    assert list(table.columns) == ["image_path", *au_columns(dataset)]
    assert len(table) == rows
    assert all(str(table[c].dtype) == "int64" for c in au_columns(dataset))
    assert set(pd.unique(table[au_columns(dataset)].to_numpy().ravel())) <= {0, 1}
    assert table.image_path[0].startswith(f"{dataset}/aligned_images/")


@pytest.mark.parametrize("dataset", ["BP4D", "DISFA"])
def test_reads_official_subset_file_with_index_column(reference_labels, dataset):
    path = reference_labels / dataset / "labels" / "1" / "train_100.csv"
    assert _first_line(path).startswith(",image_path,")  # the extra unnamed index column
    table = read_label_csv(path, dataset)
    assert list(table.columns) == ["image_path", *au_columns(dataset)]
    assert len(table) == 100
    raw = pd.read_csv(path, index_col=0)
    assert (table[au_columns(dataset)].to_numpy() == raw[au_columns(dataset)].to_numpy()).all()


def test_column_order_and_extra_columns_are_tolerated(tmp_path):
    cols = au_columns("DISFA")
    path = tmp_path / "shuffled.csv"
    path.write_text("au26,extra," + ",".join(reversed(cols[:-1])) + ",image_path\n"
                    "1,x," + ",".join(str(i % 2) for i in range(7)) + ",DISFA/aligned_images/SN001/00001.jpg\n")
    table = read_label_csv(path, "disfa")
    assert list(table.columns) == ["image_path", *cols]
    assert table.au26[0] == 1 and table.au25[0] == 0 and table.au1[0] == 0 and table.au2[0] == 1


def _write(tmp_path, text, name="labels.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("body, problem", [
    ("image_path,au1\nBP4D/aligned_images/F001/T1/00001.jpg,1\n", "missing column"),
    (BP4D_HEADER + "\nBP4D/aligned_images/F001/T1/00001.jpg,2,0,0,0,0,0,0,0,0,0,0,0\n", "au1 must hold 0/1"),
    (BP4D_HEADER + "\nBP4D/aligned_images/F001/T1/00001.jpg,0,,0,0,0,0,0,0,0,0,0,0\n", "au2 must hold 0/1"),
    (BP4D_HEADER + "\nBP4D/aligned_images/F001/T1/00001.jpg,0,0,yes,0,0,0,0,0,0,0,0,0\n", "au4 must hold 0/1"),
    (BP4D_HEADER + "\nBP4D/aligned_images/F001/T1/00001.jpg,0,0,0,0.5,0,0,0,0,0,0,0,0\n", "au6 must hold 0/1"),
    (BP4D_HEADER + "\n,0,0,0,0,0,0,0,0,0,0,0,0\n", "empty image_path"),
    ("", "empty"),
    (BP4D_HEADER + "\n", "no rows"),
])
def test_broken_files_raise_naming_file_and_problem(tmp_path, body, problem):
    path = _write(tmp_path, body)
    with pytest.raises(LabelFileError, match=problem) as info:
        read_label_csv(path, "BP4D")
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_unreadable_and_missing_files(tmp_path):
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\xff\xfe\x00\x81\x92" * 50)
    with pytest.raises(ValueError, match="garbage.csv"):
        read_label_csv(garbage, "BP4D")
    missing = tmp_path / "nope.csv"
    with pytest.raises(ValueError, match="nope.csv"):
        read_label_csv(missing, "BP4D")
    with pytest.raises(FileNotFoundError):
        read_label_csv(missing, "BP4D")


def test_header_only_allowed_on_request(tmp_path):
    table = read_label_csv(_write(tmp_path, BP4D_HEADER + "\n"), "BP4D", allow_empty=True)
    assert len(table) == 0 and list(table.columns) == BP4D_HEADER.split(",")


def test_write_round_trip_is_plain_and_atomic(tmp_path):
    cols = au_columns("DISFA")
    df = pd.DataFrame({c: [1, 0] for c in reversed(cols)})
    df["image_path"] = ["DISFA/aligned_images/SN001/00001.jpg", "DISFA/aligned_images/SN001/00002.jpg"]
    df["subject"] = "SN001"
    path = label_csv_path(tmp_path, "disfa", 2, "train")
    assert path == tmp_path / "DISFA" / "labels" / "2" / "train.csv"
    write_label_csv(df, path, "DISFA")
    lines = path.read_text().splitlines()
    assert lines[0] == "image_path," + ",".join(cols)
    assert lines[1] == "DISFA/aligned_images/SN001/00001.jpg," + ",".join("1" * 8)
    assert sorted(p.name for p in path.parent.iterdir()) == ["train.csv"]  # no temporary file left
    back = read_label_csv(path, "DISFA")
    assert back.image_path.tolist() == df.image_path.tolist()
    assert (back[cols].to_numpy() == df[cols].to_numpy()).all()
    with pytest.raises(ValueError, match="au9"):
        write_label_csv(df.drop(columns=["au9"]), path, "DISFA")


def test_intensity_files(tmp_path):
    cols = au_columns("DISFA")
    header = "image_path," + ",".join(cols) + "\nDISFA/aligned_images/SN001/00001.jpg,"
    path = _write(tmp_path, header + "0,1,2,3,4,5,0,5\n")
    table = read_intensity_csv(path)
    assert table.loc[0, cols].tolist() == [0, 1, 2, 3, 4, 5, 0, 5]
    with pytest.raises(LabelFileError, match="0/1"):
        read_label_csv(path, "DISFA")
    path = _write(tmp_path, header + "0,1,2,3,4,6,0,5\n")
    with pytest.raises(LabelFileError, match="0-5"):
        read_intensity_csv(path)
