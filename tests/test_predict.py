"""`fgnet predict`: images, folders and a video made here, the no-face and unreadable cases, the CSV schema,
overlays, and the `--model` mapping. The model is a seeded untrained `tiny` FGNet saved as a training
checkpoint, so nothing needs training or downloading. Real photos available offline: scikit-image's
astronaut (a face) and chelsea (a cat: no human face).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

cv2 = pytest.importorskip("cv2")
pytest.importorskip("dlib")
skdata = pytest.importorskip("skimage.data")
from PIL import Image  # noqa: E402

from fgnet_core.checkpoints import save_fgnet_model  # noqa: E402
from fgnet_core.cli import main  # noqa: E402
from fgnet_core.models.fgnet import FGNet  # noqa: E402
from fgnet_core.predict import ModelNotFoundError, ModelSpecError, predict, resolve_model, result_columns  # noqa: E402

BP4D_AUS = ["AU01", "AU02", "AU04", "AU06", "AU07", "AU10", "AU12", "AU14", "AU15", "AU17", "AU23", "AU24"]
VIDEO_FPS = 10.0
BLANK_FRAMES = (2, 5)
N_FRAMES = 7


def _write_video(path: Path, face: np.ndarray) -> None:
    """N_FRAMES frames of 288x288 (MJPG .avi): the face moving and growing a little, blank at BLANK_FRAMES."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, (288, 288))
    assert writer.isOpened()
    for i in range(N_FRAMES):
        if i in BLANK_FRAMES:
            frame = np.full((288, 288, 3), 40, np.uint8)
        else:
            scale = 1.0 + 0.04 * i
            big = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            frame = np.ascontiguousarray(big[3 * i:3 * i + 288, 2 * i:2 * i + 288])
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    astronaut = skdata.astronaut()  # [512, 512, 3]
    face = cv2.resize(np.ascontiguousarray(astronaut[30:350, 110:430]), (288, 288), interpolation=cv2.INTER_AREA)
    files = {"face": root / "astronaut.jpg", "cat": root / "chelsea.jpg", "text": root / "notes.jpg",
             "empty": root / "empty.jpg", "video": root / "clip.avi"}
    Image.fromarray(face).save(files["face"], quality=92)
    Image.fromarray(skdata.chelsea()).save(files["cat"], quality=92)
    files["text"].write_text("this is not a picture\n")
    files["empty"].write_bytes(b"")
    _write_video(files["video"], face)
    return files


@pytest.fixture(scope="module")
def full_run(tiny_model, media, tmp_path_factory):
    """One CLI run over every kind of input, with overlays -> (exit code, stderr, table, overlay dir)."""
    out = tmp_path_factory.mktemp("run")
    inputs = [media[k] for k in ("face", "cat", "text", "empty", "video")] + [out / "missing.png"]
    argv = ["predict", *map(str, inputs), "--out", str(out / "results.csv"), "--model", str(tiny_model),
            "--overlays", str(out / "overlays"), "--batch-size", "3", "--no-progress"]
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue(), pd.read_csv(out / "results.csv"), out / "overlays"


def test_schema_is_exact():
    assert result_columns(BP4D_AUS) == (["source", "frame", "time_s", "x0", "y0", "x1", "y1", "status"] + BP4D_AUS
                                        + [f"{a}_score" for a in BP4D_AUS] + ["model", "dataset"])


def test_csv_schema_and_face_row(full_run, media, tiny_model):
    code, _, table, _ = full_run
    assert list(table.columns) == result_columns(BP4D_AUS)
    assert set(table["status"]) <= {"ok", "no_face", "error"}
    row = table[table["source"] == str(media["face"])].iloc[0]
    assert row["status"] == "ok" and row["frame"] == 0 and math.isnan(row["time_s"])
    assert 0 <= row["x0"] < row["x1"] <= 288 and 0 <= row["y0"] < row["y1"] <= 288
    scores = row[[f"{a}_score" for a in BP4D_AUS]].to_numpy(float)
    assert np.all(np.abs(scores) <= 1)
    assert list(row[BP4D_AUS].astype(int)) == [int(s > 0) for s in scores]  # presence = heatmap mean > 0
    assert (table["model"] == str(tiny_model)).all() and (table["dataset"] == "BP4D").all()


def test_no_face_is_a_row_not_a_failure(full_run, media):
    table = full_run[2]
    row = table[table["source"] == str(media["cat"])].iloc[0]
    assert row["status"] == "no_face"
    assert row[BP4D_AUS + ["x0"]].isna().all()


def test_unreadable_inputs_report_and_continue(full_run, media):
    code, stderr, table, _ = full_run
    assert code == 1
    lines = [ln for ln in stderr.splitlines() if "error:" in ln]
    for key in ("text", "empty"):
        assert sum(str(media[key]) in ln for ln in lines) == 1, stderr
        assert table.loc[table["source"] == str(media[key]), "status"].tolist() == ["error"]
    assert any("missing.png" in ln and "no such file" in ln for ln in lines)
    assert "empty file" in stderr and "not an image" in stderr
    assert (table["status"] == "ok").sum() >= 1 + N_FRAMES - len(BLANK_FRAMES) - 1  # the rest still ran


def test_video_rows_per_frame(full_run, media):
    table = full_run[2]
    video = table[table["source"] == str(media["video"])]
    assert video["frame"].tolist() == list(range(N_FRAMES))
    assert np.allclose(video["time_s"], video["frame"] / VIDEO_FPS)
    blank = video[video["frame"].isin(BLANK_FRAMES)]
    assert (blank["status"] == "no_face").all()
    faces = video[~video["frame"].isin(BLANK_FRAMES)]
    assert (faces["status"] == "ok").mean() >= 0.8  # dlib finds the moving face in (nearly) every frame
    assert faces["x1"].max() <= 288


def test_overlays_pngs_and_mp4(full_run):
    overlays = full_run[3]
    png = overlays / "astronaut.png"
    assert png.is_file() and Image.open(png).size[0] >= 5 * 128
    frames = sorted((overlays / "clip").glob("*.png"))
    assert 1 <= len(frames) <= N_FRAMES - len(BLANK_FRAMES)
    cap = cv2.VideoCapture(str(overlays / "clip.mp4"))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    assert count == N_FRAMES  # every frame, with or without a face
    assert not (overlays / "chelsea.png").exists()


def test_all_readable_exits_zero(tiny_model, media, tmp_path, capsys):
    code = main(["predict", str(media["face"]), str(media["cat"]), "--out", str(tmp_path / "r.csv"),
                 "--model", str(tiny_model), "--no-progress"])
    assert code == 0  # a cat is not a failure
    assert pd.read_csv(tmp_path / "r.csv")["status"].tolist() == ["ok", "no_face"]


def test_python_api_folder_and_every(tiny_model, media, tmp_path):
    folder = tmp_path / "shots"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    Image.open(media["face"]).save(folder / "sub" / "a.png")
    Image.open(media["face"]).save(folder / ".hidden" / "b.png")
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    table = predict([folder, media["video"]], model=str(tiny_model), every_n_frames=3, progress=False)
    assert isinstance(table, pd.DataFrame) and table.attrs["errors"] == []
    assert table["source"].tolist()[0] == str(folder / "sub" / "a.png")
    assert table.loc[table["source"] == str(media["video"]), "frame"].tolist() == [0, 3, 6]


def test_missing_models_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"best\.pt.*make demo"):
        resolve_model("demo", root=tmp_path)
    with pytest.raises(ModelNotFoundError, match=r"bp4d_0.model\.pth.*checkpoints"):
        resolve_model("bp4d", root=tmp_path)
    with pytest.raises(ModelNotFoundError, match=r"nope\.pt: model file not found"):
        resolve_model(tmp_path / "nope.pt")


def test_demo_model_is_the_pipelines_run_of_the_configured_backbone(tmp_path, tiny_model):
    """`--model demo` is `Layout.demo_model` under the given root: BP4D fold 0, clean, seed 0, params' backbone."""
    import shutil

    import yaml

    from fgnet_core.paths import REPO_ROOT
    from fgnet_core.pipeline.config import Layout, load_config

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["backbone"] = "scratch"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    expected = Layout(tmp_path, load_config(tmp_path / "params.yaml")).demo_model
    assert expected == tmp_path / "workspace" / "runs" / "BP4D" / "BP4D_0_clean_s0_scratch" / "best.pt"
    with pytest.raises(ModelNotFoundError, match=r"BP4D_0_clean_s0_scratch.best\.pt.*make demo"):
        resolve_model("demo", root=tmp_path)
    expected.parent.mkdir(parents=True)
    shutil.copyfile(tiny_model, expected)
    loaded = resolve_model("demo", root=tmp_path)
    assert loaded.path == expected and loaded.dataset == "BP4D" and loaded.name == "demo"


def test_official_files_come_from_the_official_preset_entry(tmp_path):
    import yaml

    from fgnet_core.paths import REPO_ROOT
    from fgnet_core.predict.models import official_paths

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["paths"]["checkpoints"]["official"] = {"stylegan": "w/g.pt", "encoder": "w/e.pt"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert official_paths(tmp_path) == {"stylegan": tmp_path / "w" / "g.pt", "encoder": tmp_path / "w" / "e.pt"}
    assert official_paths(tmp_path / "elsewhere") == {  # no params.yaml: the release's file names
        "stylegan": tmp_path / "elsewhere" / "checkpoints" / "stylegan2-ffhq-config-f.pt",
        "encoder": tmp_path / "elsewhere" / "checkpoints" / "encoder.pt"}


def test_official_model_needs_its_encoder(tmp_path):
    path = save_fgnet_model(FGNet("tiny"), tmp_path / "disfa_0" / "model.pth")
    with pytest.raises(ModelSpecError, match="--encoder"):
        resolve_model(path)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ModelSpecError, match="not a model checkpoint"):
        resolve_model(other)


def test_cli_model_error_exit_two(media, tmp_path, capsys):
    code = main(["predict", str(media["face"]), "--out", str(tmp_path / "r.csv"), "--model",
                 str(tmp_path / "absent.pt"), "--no-progress"])
    assert code == 2
    assert "absent.pt" in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()


# ----------------------------------------------------------------------------------------------
# Nothing lost, nothing mislabelled


def _cli(argv: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def test_dataset_the_model_was_not_trained_for_is_refused(tiny_model, media, tmp_path):
    code, err = _cli(["predict", str(media["face"]), "--out", str(tmp_path / "r.csv"), "--model", str(tiny_model),
                      "--dataset", "DISFA", "--no-progress"])
    assert code == 2 and "trained on BP4D" in err and "DISFA" in err
    assert not (tmp_path / "r.csv").exists()
    assert _cli(["predict", str(media["face"]), "--out", str(tmp_path / "r.csv"), "--model", str(tiny_model),
                 "--dataset", "bp4d", "--no-progress"])[0] == 0  # the same dataset is fine


def test_non_finite_weights_are_refused_at_load(media, tmp_path):
    from fgnet_core.checkpoints import CheckpointError, load_training_checkpoint, save_training_checkpoint

    net = FGNet("tiny")
    with torch.no_grad():
        next(net.interpreter.parameters()).fill_(float("nan"))
    path = save_training_checkpoint(tmp_path / "nan.pt", net, params={"dataset": "BP4D"})
    with pytest.raises(CheckpointError, match="non-finite"):
        load_training_checkpoint(path)
    code, err = _cli(["predict", str(media["face"]), "--out", str(tmp_path / "r.csv"), "--model", str(path),
                      "--no-progress"])
    assert code == 2 and "non-finite" in err and "nan.pt" in err


@pytest.mark.parametrize("change", ["preset", "dataset", "no_preset"])
def test_bad_training_checkpoint_exits_two_with_one_line(media, tmp_path, change):
    from fgnet_core.checkpoints import TRAINING_FORMAT

    net = FGNet("tiny")
    obj = {"format": TRAINING_FORMAT, "preset": net.preset.to_dict(), "model": net.state_dict(), "optimizer": None,
           "epoch": 0, "params": {"dataset": "BP4D"}}
    if change == "preset":
        obj["preset"]["frobnicate"] = 3
    elif change == "dataset":
        obj["params"]["dataset"] = "CK+"
    else:
        del obj["preset"]
    torch.save(obj, tmp_path / "bad.pt")
    code, err = _cli(["predict", str(media["face"]), "--out", str(tmp_path / "r.csv"), "--model",
                      str(tmp_path / "bad.pt"), "--no-progress"])
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "bad.pt" in err


def test_out_pointing_at_an_input_is_refused(tiny_model, media, tmp_path):
    target = tmp_path / "photo.jpg"
    target.write_bytes(media["face"].read_bytes())
    before = target.read_bytes()
    code, err = _cli(["predict", str(target), "--out", str(target), "--model", str(tiny_model), "--no-progress"])
    assert code == 2 and "input" in err
    assert target.read_bytes() == before


def _write_mkv(path: Path, face: np.ndarray, n: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, (288, 288))
    assert writer.isOpened()
    for i in range(n):
        writer.write(cv2.cvtColor(np.roll(face, i, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_truncated_video_is_reported(tiny_model, media, tmp_path):
    face = np.asarray(Image.open(media["face"]))
    full = _write_mkv(tmp_path / "full.mkv", face, 12)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    code, err = _cli(["predict", str(cut), "--out", str(tmp_path / "r.csv"), "--model", str(tiny_model),
                      "--no-progress"])
    table = pd.read_csv(tmp_path / "r.csv")
    assert code == 1 and "truncated" in err and "cut.mkv" in err
    last = table.iloc[-1]
    assert last["status"] == "error" and 0 < last["frame"] < 12
    assert (table["status"] != "error").sum() == last["frame"]  # every decoded frame kept its row


class _StopAfter:
    """An aligner that raises KeyboardInterrupt (as Ctrl-C / SIGTERM do) when asked for its n-th face."""

    def __init__(self, n: int):
        from fgnet_core.data.align import FaceAligner

        self.inner, self.left = FaceAligner(), n

    def align(self, rgb, **kwargs):
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        return self.inner.align(rgb, **kwargs)


def test_interrupted_run_keeps_scored_rows_and_resumes(tiny_model, media, tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(5):
        Image.open(media["face"]).save(folder / f"{i}.jpg")
    out = tmp_path / "r.csv"
    with pytest.raises(KeyboardInterrupt):
        predict([folder], str(tiny_model), batch_size=2, progress=False, out=out, aligner=_StopAfter(3))
    partial = Path(f"{out}.partial")
    assert not out.exists() and partial.is_file()
    kept = pd.read_csv(partial)
    assert len(kept) == 2 and list(kept.columns) == result_columns(BP4D_AUS)  # the first batch, flushed
    with pytest.raises(ValueError, match="--resume"):
        predict([folder], str(tiny_model), progress=False, out=out)  # never silently starts over
    table = predict([folder], str(tiny_model), batch_size=2, progress=False, out=out, resume=True)
    assert not partial.exists() and out.is_file()
    final = pd.read_csv(out)
    assert final["source"].tolist() == [str(folder / f"{i}.jpg") for i in range(5)]
    assert final["status"].tolist() == ["ok"] * 5 and len(table) == 5
    assert final.iloc[:2].equals(kept)


def test_sigterm_keeps_a_partial_csv(tiny_model, media, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "many"
    folder.mkdir()
    data = media["face"].read_bytes()
    for i in range(150):  # far more than get scored before the signal, even on a fast machine
        (folder / f"{i:03d}.jpg").write_bytes(data)
    out = tmp_path / "r.csv"
    partial = Path(f"{out}.partial")
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fgnet_core.cli", "predict", str(folder), "--out", str(out),
                             "--model", str(tiny_model), "--batch-size", "1", "--no-progress"],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not partial.exists() or len(partial.read_text().splitlines()) < 3):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and "--resume" in err
    rows = pd.read_csv(partial)
    assert 2 <= len(rows) < 150 and (rows["status"] == "ok").all()


# ----------------------------------------------------------------------------------------------
# Output for analysis


def test_parquet_and_openface_columns(tiny_model, media, tmp_path):
    out = tmp_path / "r.parquet"
    code, _ = _cli(["predict", str(media["face"]), str(media["cat"]), "--out", str(out), "--model", str(tiny_model),
                    "--openface-columns", "--no-progress"])
    assert code == 0 and not Path(f"{out}.partial").exists()
    table = pd.read_parquet(out)
    presence = [f"{a}_c" for a in BP4D_AUS]
    assert list(table.columns) == result_columns(BP4D_AUS, openface=True)
    assert presence[0] in table.columns and "AU01" not in table.columns
    assert table["status"].tolist() == ["ok", "no_face"]
    scores = table.loc[0, [f"{a}_score" for a in BP4D_AUS]].to_numpy(float)
    assert table.loc[0, presence].astype(int).tolist() == [int(s > 0) for s in scores]
    csv_out = tmp_path / "r.txt"
    assert _cli(["predict", str(media["face"]), "--out", str(csv_out), "--format", "csv", "--model",
                 str(tiny_model), "--no-progress"])[0] == 0
    assert list(pd.read_csv(csv_out).columns) == result_columns(BP4D_AUS)


# ----------------------------------------------------------------------------------------------
# Speed: tracking between detections, workers


def test_tracking_follows_the_face_and_loses_it_on_blank_frames(media):
    from fgnet_core.data.align import FaceAligner
    from fgnet_core.data.face_detect import NoFaceError
    from fgnet_core.data.face_tracking import FaceTracker

    aligner = FaceAligner()
    tracker = FaceTracker(aligner, detect_every=100)
    cap = cv2.VideoCapture(str(media["video"]))
    statuses, drift = [], []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        try:
            tracked = tracker.align(rgb)
            statuses.append("ok")
            direct = aligner.align(rgb, second_pass=False)
            drift.append(np.abs(tracked.source_landmarks - direct.source_landmarks).mean())
        except NoFaceError:
            statuses.append("no_face")
    cap.release()
    assert [i for i, s in enumerate(statuses) if s == "no_face"] == list(BLANK_FRAMES)
    assert tracker.detections < tracker.frames  # detected only when it had to (start, after each blank)
    assert np.mean(drift) < 2.0  # px, against detecting on every frame


def test_workers_and_tracking_give_the_same_rows(tiny_model, media, tmp_path, monkeypatch):
    import fgnet_core.data.frame_source as frame_source

    monkeypatch.setattr(frame_source, "VIDEO_CHUNK", 3)  # the 7-frame video in three stretches
    folder = tmp_path / "mix"
    folder.mkdir()
    for i in range(3):
        Image.open(media["face"]).save(folder / f"{i}.jpg")
    Image.open(media["cat"]).save(folder / "3.jpg")
    (folder / "4.jpg").write_text("not an image")
    inputs = [folder, media["video"]]
    reference = predict(inputs, str(tiny_model), detect_every=1, progress=False)
    parallel = predict(inputs, str(tiny_model), detect_every=5, workers=2, progress=False)
    assert parallel["source"].tolist() == reference["source"].tolist()
    assert parallel["frame"].tolist() == reference["frame"].tolist()
    assert parallel["status"].tolist() == reference["status"].tolist()
    scores = [f"{a}_score" for a in BP4D_AUS]
    ok = reference["status"] == "ok"
    assert np.abs(parallel.loc[ok, scores].to_numpy(float) - reference.loc[ok, scores].to_numpy(float)).max() < 0.05
    assert parallel.attrs["errors"] == reference.attrs["errors"] and len(reference.attrs["errors"]) == 1

    face = np.asarray(Image.open(media["face"]))
    full = _write_mkv(tmp_path / "full.mkv", face, 12)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    inline = predict([cut], str(tiny_model), progress=False)
    chunked = predict([cut], str(tiny_model), workers=2, progress=False)
    assert chunked["frame"].tolist() == inline["frame"].tolist() and chunked["status"].iloc[-1] == "error"
    assert len(chunked.attrs["errors"]) == 1 and "truncated" in chunked.attrs["errors"][0][1]
