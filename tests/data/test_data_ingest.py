"""Ingestion of small synthetic raw BP4D and DISFA trees with an in-process fake aligner."""
from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from fgnet_core import cli
from fgnet_core.data.au_tables import au_columns
from fgnet_core.data.folds import validation_subjects
from fgnet_core.data.ingest import ingest_bp4d, ingest_disfa, write_fold_files
from fgnet_core.data.labels import intensity_csv_path, label_csv_path, read_intensity_csv, read_label_csv
from fgnet_core.data.raw_bp4d import read_occ_csv
from fgnet_core.data.raw_disfa import read_intensity_file, video_frame_count


class FakeAligner:
    """Writes tiny outputs for each job, skips existing ones, fails the rels it is told to."""

    def __init__(self, fail=()):
        self.fail = set(fail)
        self.jobs = []
        self.frame_means: dict[str, float] = {}

    def __call__(self, jobs, out_dir, *, workers=2, predictor_path=None, transform_size=1024, padding="reflect",
                 upsample=1, progress=True):
        self.jobs = list(jobs)
        self.options = {"transform_size": transform_size, "padding": padding, "upsample": upsample}
        processed = skipped = failed = 0
        ok = set()
        for job in jobs:
            image = Path(out_dir) / "aligned_images" / f"{job.rel}.jpg"
            lmk = Path(out_dir) / "aligned_landmarks" / f"{job.rel}.npy"
            if image.exists() and lmk.exists():
                skipped += 1
                ok.add(job.rel)
                continue
            if job.rel in self.fail:
                failed += 1
                continue
            if job.frame is None:
                pixels = cv2.imread(job.source)
            else:
                capture = cv2.VideoCapture(job.source)
                capture.set(cv2.CAP_PROP_POS_FRAMES, job.frame)
                _, pixels = capture.read()
                capture.release()
            self.frame_means[job.rel] = float(pixels.mean())
            image.parent.mkdir(parents=True, exist_ok=True)
            lmk.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(image), pixels)
            np.save(lmk, np.zeros((68, 2)))
            processed += 1
            ok.add(job.rel)
        return types.SimpleNamespace(processed=processed, skipped=skipped, failed=failed, ok_rels=ok)


# ------------------------------------------------------------------------------------------------ raw BP4D

OCC_AUS = [1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 22, 23, 24, 25, 27]  # more than 12


def _bp4d_label(frame: int, au: int) -> int:
    return (frame + au) % 2


def _write_sequence(raw: Path, subject: str, task: str, frames, names, labelled, not_coded=(), unused_9=()):
    folder = raw / subject / task
    folder.mkdir(parents=True)
    for n, name in zip(frames, names):
        cv2.imwrite(str(folder / name), np.full((8, 8, 3), 10 * n % 250, np.uint8))
    lines = ["0," + ",".join(map(str, OCC_AUS))]
    for n in labelled:
        values = [_bp4d_label(n, au) for au in OCC_AUS]
        if n in not_coded:
            values[OCC_AUS.index(4)] = 9
        if n in unused_9:
            values[OCC_AUS.index(25)] = 9
        lines.append(f"{n}," + ",".join(map(str, values)))
    occ = raw / "AUCoding" / "AU_OCC" / f"{subject}_{task}.csv"
    occ.parent.mkdir(parents=True, exist_ok=True)
    occ.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def bp4d_raw(tmp_path):
    raw = tmp_path / "raw_bp4d"
    # F001 (fold 0 test): 4-digit names; frame 3 not coded for AU4; frame 5 has a 9 in unused AU25;
    # label row 7 without a frame
    _write_sequence(raw, "F001", "T1", range(1, 7), [f"{n:04d}.jpg" for n in range(1, 7)], range(1, 8),
                    not_coded={3}, unused_9={5})
    # F001/T2: unpadded names; frame 12 has no label row
    _write_sequence(raw, "F001", "T2", [10, 11, 12], ["10.jpg", "11.jpg", "12.jpg"], [10, 11])
    for subject in ("F003", "F004", "M002", "M003", "F999"):  # F999 is outside the official folds
        _write_sequence(raw, subject, "T1", [1, 2, 3], ["001.jpg", "002.jpg", "003.jpg"], [1, 2, 3])
    return raw


def test_read_occ_csv_keeps_every_au_and_names_bad_files(bp4d_raw, tmp_path):
    table = read_occ_csv(bp4d_raw / "AUCoding" / "AU_OCC" / "F001_T1.csv")
    assert list(table.columns) == OCC_AUS and list(table.index) == list(range(1, 8))
    assert table.loc[3, 4] == 9
    bad = tmp_path / "M001_T1.csv"
    bad.write_text("0,1,2\n1,0,1\nx,0,0\n")
    with pytest.raises(ValueError, match="M001_T1.csv.*line 3"):
        read_occ_csv(bad)


def test_ingest_bp4d(bp4d_raw, tmp_path, capsys):
    out = tmp_path / "out"
    stale = label_csv_path(out, "BP4D", 0, "train_100")
    stale.parent.mkdir(parents=True)
    stale.write_text("left over\n")
    aligner = FakeAligner(fail={"F003/T1/00002"})
    report = ingest_bp4d(bp4d_raw, out, aligner=aligner, seed=0)

    assert report.scan["frames_found"] == 6 + 3 + 5 * 3
    assert report.scan["not_coded"] == 1
    assert report.scan["missing_frames"] == 1  # label row 7 of F001/T1
    assert report.scan["unlabelled_frames"] == 1  # F001/T2 frame 12
    assert report.scan["labelled"] == 5 + 2 + 5 * 3
    assert report.outside_folds == ["F999"]
    assert report.align_failed == 1 and report.aligned == 5 + 2 + 4 * 3 - 1
    rels = {j.rel for j in aligner.jobs}
    assert "F001/T1/00003" not in rels and "F999/T1/00001" not in rels
    assert {"F001/T1/00005", "F001/T2/00010"} <= rels
    assert all(j.frame is None for j in aligner.jobs)
    job = next(j for j in aligner.jobs if j.rel == "F001/T1/00002")
    assert Path(job.source).name == "0002.jpg"

    test = read_label_csv(label_csv_path(out, "BP4D", 0, "test"), "BP4D")
    expected = [f"BP4D/aligned_images/F001/T1/{n:05d}.jpg" for n in (1, 2, 4, 5, 6)] + \
               [f"BP4D/aligned_images/F001/T2/{n:05d}.jpg" for n in (10, 11)]
    assert test.image_path.tolist() == expected
    row = test.iloc[3]  # frame 5
    assert row[au_columns("BP4D")].tolist() == [_bp4d_label(5, int(c[2:])) for c in au_columns("BP4D")]
    assert (out / "BP4D" / "aligned_images" / "F001" / "T1" / "00005.jpg").is_file()

    train = read_label_csv(label_csv_path(out, "BP4D", 0, "train"), "BP4D")
    assert {p.split("/")[2] for p in train.image_path} == {"F003", "F004", "M002", "M003"}
    assert "BP4D/aligned_images/F003/T1/00002.jpg" not in set(train.image_path)  # alignment failed
    assert len(train) == 11
    val = read_label_csv(label_csv_path(out, "BP4D", 0, "val"), "BP4D", allow_empty=True)
    sub = read_label_csv(label_csv_path(out, "BP4D", 0, "train_sub"), "BP4D", allow_empty=True)
    assert sorted(val.image_path.tolist() + sub.image_path.tolist()) == train.image_path.tolist()
    val_subjects = validation_subjects("BP4D", 0, among={"F003", "F004", "M002", "M003"})
    assert {p.split("/")[2] for p in val.image_path} == set(val_subjects) and len(val_subjects) == 1
    assert report.validation[0] == list(val_subjects)
    assert read_label_csv(stale, "BP4D").equals(train)  # fewer training rows than 100: train_100 holds them all
    assert report.split_rows["0/test"] == 7 and report.split_rows["1/test"] == 2 + 3  # F003, M002

    summary = json.loads((out / "BP4D" / "ingest_summary.json").read_text())
    assert summary["scan"]["not_coded"] == 1 and summary["aligned"] == report.aligned
    printed = capsys.readouterr().out
    assert "dropped (9 = not coded)  1" in printed and "alignment failed   1" in printed

    # resume: alignment is skipped, label files are byte-identical
    before = {p: p.read_bytes() for p in (out / "BP4D" / "labels").rglob("*.csv")}
    again = ingest_bp4d(bp4d_raw, out, aligner=FakeAligner(fail={"F003/T1/00002"}), seed=0, verbose=False)
    assert again.align_processed == 0 and again.align_skipped == report.aligned and again.align_failed == 1
    assert {p: p.read_bytes() for p in (out / "BP4D" / "labels").rglob("*.csv")} == before


def test_ingest_bp4d_subject_filter(bp4d_raw, tmp_path):
    out = tmp_path / "out"
    aligner = FakeAligner()
    report = ingest_bp4d(bp4d_raw, out, aligner=aligner, subjects=["F001", "M002", "M018"], verbose=False)
    assert {j.rel.split("/")[0] for j in aligner.jobs} == {"F001", "M002"}
    assert report.requested_missing == ["M018"]
    assert read_label_csv(label_csv_path(out, "BP4D", 2, "test"), "BP4D", allow_empty=True).empty
    with pytest.raises(ValueError, match="no labelled BP4D frames"):
        ingest_bp4d(bp4d_raw, out, aligner=aligner, subjects=["F999"], verbose=False)


def test_seeded_subsets_stop_at_the_training_rows(tmp_path):
    subjects = ["F001", "F003", "F004"]  # one per fold
    rows = [(f"BP4D/aligned_images/{s}/T1/{n:05d}.jpg", s) for s in subjects for n in range(1, 1201)]
    table = pd.DataFrame(rows, columns=["image_path", "subject"])
    for c in au_columns("BP4D"):
        table[c] = 0
    stale = label_csv_path(tmp_path, "BP4D", 0, "train_7")
    stale.parent.mkdir(parents=True)
    stale.write_text("left over\n")
    written = write_fold_files(table, "BP4D", tmp_path, seed=3)
    assert written["0/train"] == 2400 and written["0/train_1000"] == 1000 and written["0/train_5000"] == 2400
    assert not stale.exists()  # a size no longer requested
    sub = read_label_csv(label_csv_path(tmp_path, "BP4D", 0, "train_100"), "BP4D")
    big = read_label_csv(label_csv_path(tmp_path, "BP4D", 0, "train_1000"), "BP4D")
    assert set(sub.image_path) <= set(big.image_path)
    assert {p.split("/")[2] for p in big.image_path} <= {"F003", "F004"}


# ----------------------------------------------------------------------------------------------- raw DISFA

DISFA_AUS = [1, 2, 4, 6, 9, 12, 25, 26]
VIDEO_FRAMES = 5


def _grey(frame0: int) -> int:
    return 40 * (frame0 + 1)  # video frame k (0-based) is a flat grey of 40 (k + 1)


def _write_disfa_subject(raw: Path, subject: str, *, drop_line=None, label_frames=VIDEO_FRAMES + 1):
    video = raw / "Videos_LeftCamera" / f"LeftVideo{subject}_comp.avi"
    video.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 20, (16, 16))
    for k in range(VIDEO_FRAMES):
        writer.write(np.full((16, 16, 3), _grey(k), np.uint8))
    writer.release()
    folder = raw / "ActionUnit_Labels" / subject
    folder.mkdir(parents=True)
    for au in DISFA_AUS:
        lines = []
        for n in range(1, label_frames + 1):
            if drop_line == (au, n):
                continue
            intensity = (n - 1) % 6 if au == 1 else (5 if au == 26 and n == 1 else 0)
            lines.append(f"{n},{intensity}")
        (folder / f"{subject}_au{au}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture()
def disfa_raw(tmp_path):
    raw = tmp_path / "raw_disfa"
    _write_disfa_subject(raw, "SN001")  # fold 0 test
    _write_disfa_subject(raw, "SN006")  # fold 1 test
    _write_disfa_subject(raw, "SN003", drop_line=(12, 2))  # fold 2 test; frame 2 lacks AU12
    _write_disfa_subject(raw, "SN004")  # fold 2 test
    return raw


def test_disfa_readers(disfa_raw, tmp_path):
    video = disfa_raw / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi"
    assert video_frame_count(video) == VIDEO_FRAMES
    assert read_intensity_file(disfa_raw / "ActionUnit_Labels" / "SN001" / "SN001_au1.txt")[3] == 2
    bad = tmp_path / "SN001_au2.txt"
    bad.write_text("1,0\n2,7\n")
    with pytest.raises(ValueError, match="SN001_au2.txt.*line 2.*intensity 7"):
        read_intensity_file(bad)
    bad.write_text("1,0\n2;1\n")
    with pytest.raises(ValueError, match="line 2"):
        read_intensity_file(bad)


def test_ingest_disfa(disfa_raw, tmp_path):
    out = tmp_path / "out"
    aligner = FakeAligner()
    report = ingest_disfa(disfa_raw, out, aligner=aligner, verbose=False)
    assert report.scan["frames_found"] == 4 * VIDEO_FRAMES
    assert report.scan["missing_frames"] == 4  # label frame 6 has no video frame
    assert report.scan["incomplete_labels"] == 1
    assert report.aligned == 4 * VIDEO_FRAMES - 1

    job = next(j for j in aligner.jobs if j.rel == "SN001/00003")
    assert job.frame == 2 and Path(job.source).name == "LeftVideoSN001_comp.avi"
    for n in range(1, VIDEO_FRAMES + 1):  # label frame n is video frame n - 1
        assert aligner.frame_means[f"SN001/{n:05d}"] == pytest.approx(_grey(n - 1), abs=4)

    test = read_label_csv(label_csv_path(out, "DISFA", 0, "test"), "DISFA")
    assert test.image_path.tolist() == [f"DISFA/aligned_images/SN001/{n:05d}.jpg" for n in range(1, 6)]
    assert test.au1.tolist() == [0, 0, 1, 1, 1]  # intensities 0..4: occurrence is intensity >= 2
    assert test.au26.tolist() == [1, 0, 0, 0, 0]
    fold2 = read_label_csv(label_csv_path(out, "DISFA", 2, "test"), "DISFA")
    assert "DISFA/aligned_images/SN003/00002.jpg" not in set(fold2.image_path) and len(fold2) == 9
    intensities = read_intensity_csv(intensity_csv_path(out, "DISFA"))
    assert len(intensities) == report.aligned
    assert intensities[intensities.image_path.str.contains("/SN001/")].au1.tolist() == [0, 1, 2, 3, 4]

    before = {p: p.read_bytes() for p in (out / "DISFA" / "labels").rglob("*.csv")}
    again = ingest_disfa(disfa_raw, out, aligner=FakeAligner(), verbose=False)
    assert again.align_processed == 0 and again.align_skipped == report.aligned
    assert {p: p.read_bytes() for p in (out / "DISFA" / "labels").rglob("*.csv")} == before


def test_disfa_missing_au_file_is_named(disfa_raw, tmp_path):
    (disfa_raw / "ActionUnit_Labels" / "SN006" / "SN006_au9.txt").unlink()
    with pytest.raises(ValueError, match="SN006_au9.txt"):
        ingest_disfa(disfa_raw, tmp_path / "out", aligner=FakeAligner(), verbose=False)


# ------------------------------------------------------------------------------------------------- command

@dataclass
class _Job:
    source: str
    rel: str
    frame: int | None = None


def test_command_line(bp4d_raw, tmp_path, monkeypatch, capsys):
    import fgnet_core.data.align_batch as align_batch

    fake = types.SimpleNamespace(run_alignment=FakeAligner())
    monkeypatch.setattr(align_batch, "AlignJob", _Job)
    monkeypatch.setattr(align_batch, "run_alignment", fake.run_alignment)
    out = tmp_path / "cli_out"
    code = cli.main(["ingest", "BP4D", str(bp4d_raw), "--out", str(out), "--subjects", "f001", "f003",
                     "--seed", "1", "--no-progress", "--upsample", "0"])
    assert code == 0
    assert all(isinstance(j, _Job) for j in fake.run_alignment.jobs)
    assert fake.run_alignment.options["upsample"] == 0
    assert len(read_label_csv(label_csv_path(out, "BP4D", 0, "test"), "BP4D")) == 7
    assert "BP4D ingestion" in capsys.readouterr().out
    assert cli.main(["ingest", "disfa", str(tmp_path / "missing"), "--out", str(out)]) == 1
    assert "raw DISFA folder not found" in capsys.readouterr().err


# ------------------------------------------------------------------------------- malformed label files

def _corrupt_bp4d_cell(raw: Path, value: str) -> Path:
    """F003/T1: AU4 of frame 2 (line 3 of the file) replaced by `value`."""
    occ = raw / "AUCoding" / "AU_OCC" / "F003_T1.csv"
    lines = occ.read_text().splitlines()
    cells = lines[2].split(",")
    cells[1 + OCC_AUS.index(4)] = value
    lines[2] = ",".join(cells)
    occ.write_text("\n".join(lines) + "\n")
    return occ


def test_bp4d_non_numeric_cell_is_an_error_naming_file_and_line(bp4d_raw, tmp_path):
    _corrupt_bp4d_cell(bp4d_raw, "1?")
    with pytest.raises(ValueError, match=r"F003_T1\.csv.*line 3.*AU 4.*'1\?'"):
        ingest_bp4d(bp4d_raw, tmp_path / "out", aligner=FakeAligner(), verbose=False)


def test_bp4d_bad_cells_skipped_and_counted_with_the_flag(bp4d_raw, tmp_path, capsys):
    _corrupt_bp4d_cell(bp4d_raw, "x")
    report = ingest_bp4d(bp4d_raw, tmp_path / "out", aligner=FakeAligner(), skip_bad_labels=True)
    assert report.scan["bad_label_rows"] == 1 and report.scan["not_coded"] == 1  # not read as 9
    assert report.scan["labelled"] == 5 + 2 + 5 * 3 - 1
    assert "skipped (malformed label)  1" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "BP4D" / "ingest_summary.json").read_text())["scan"]["bad_label_rows"] == 1


def test_bp4d_empty_cell_stays_not_coded(bp4d_raw, tmp_path):
    _corrupt_bp4d_cell(bp4d_raw, "")
    report = ingest_bp4d(bp4d_raw, tmp_path / "out", aligner=FakeAligner(), verbose=False)
    assert report.scan["not_coded"] == 2 and report.scan.get("bad_label_rows", 0) == 0


def test_disfa_empty_label_file_is_an_error(disfa_raw, tmp_path):
    (disfa_raw / "ActionUnit_Labels" / "SN006" / "SN006_au9.txt").write_text("")
    with pytest.raises(ValueError, match=r"SN006_au9\.txt.*empty"):
        ingest_disfa(disfa_raw, tmp_path / "out", aligner=FakeAligner(), verbose=False)


def test_disfa_bad_files_and_lines_skipped_and_counted_with_the_flag(disfa_raw, tmp_path):
    (disfa_raw / "ActionUnit_Labels" / "SN006" / "SN006_au9.txt").write_text("\n")
    au2 = disfa_raw / "ActionUnit_Labels" / "SN001" / "SN001_au2.txt"
    au2.write_text(au2.read_text().replace("3,0\n", "3,zero\n"))
    report = ingest_disfa(disfa_raw, tmp_path / "out", aligner=FakeAligner(), verbose=False, skip_bad_labels=True)
    assert report.scan["bad_label_files"] == 1 and report.scan["bad_label_lines"] == 1
    assert report.aligned == 2 * VIDEO_FRAMES - 1 + VIDEO_FRAMES - 1  # SN006 skipped; SN001 frame 3 incomplete
    assert "SN006" not in set(pd.read_csv(label_csv_path(tmp_path / "out", "DISFA", 1, "test"))["image_path"].str[23:28])


def test_command_line_skip_flag(bp4d_raw, tmp_path, monkeypatch, capsys):
    import fgnet_core.data.align_batch as align_batch

    monkeypatch.setattr(align_batch, "AlignJob", _Job)
    monkeypatch.setattr(align_batch, "run_alignment", FakeAligner())
    _corrupt_bp4d_cell(bp4d_raw, "x")
    assert cli.main(["ingest", "bp4d", str(bp4d_raw), "--out", str(tmp_path / "a"), "--no-progress"]) == 1
    assert "F003_T1.csv" in capsys.readouterr().err
    assert cli.main(["ingest", "bp4d", str(bp4d_raw), "--out", str(tmp_path / "b"), "--no-progress",
                     "--skip-bad-labels"]) == 0
