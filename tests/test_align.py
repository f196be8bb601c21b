"""Face alignment: image loading, FFHQ geometry, fast vs literal recipe, batch runner, resume, CLI, video.

Real photos available offline: scikit-image's astronaut (a face), matplotlib's Grace Hopper sample (a
face), scikit-image's chelsea (a cat: no human face).
"""
from __future__ import annotations

import csv
import io
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
pytest.importorskip("dlib")
skdata = pytest.importorskip("skimage.data")
from PIL import Image  # noqa: E402

from fgnet_core.data.align import FaceAligner  # noqa: E402
from fgnet_core.data.face_detect import NoFaceError, detect_landmarks  # noqa: E402
from fgnet_core.data.ffhq_geometry import apply_affine  # noqa: E402
from fgnet_core.data.image_load import AlignmentError, ImageLoadError, load_image_rgb  # noqa: E402
from fgnet_core.data.align_batch import AlignJob, jobs_for_paths, run_alignment, video_frame_count  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# FFHQ geometry: eye centres land near (0.375, 0.475) and (0.625, 0.475) of the output side.
EYES_256 = np.array([[96.0, 122.0], [160.0, 122.0]])


# ----------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skdata.astronaut()  # [512, 512, 3]


@pytest.fixture(scope="module")
def astronaut_face(astronaut) -> np.ndarray:
    """A 270x270 crop around the face: quick to detect, and the FFHQ square leaves it at the top (padding)."""
    return np.ascontiguousarray(astronaut[60:330, 140:410])


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        pytest.skip("matplotlib sample photo missing")
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def aligner() -> FaceAligner:
    return FaceAligner()


def _save(img: np.ndarray | Image.Image, path: Path, **kw) -> Path:
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(path, **kw)
    return path


def _eyes(landmarks: np.ndarray) -> np.ndarray:
    return np.stack([landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)])  # [2, 2]


def _png_with_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height: costs nothing to write, a bomb to decode."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# ----------------------------------------------------------------------------------------------
# Loading


def test_load_normalises_modes(tmp_path, astronaut):
    small = np.asarray(Image.fromarray(astronaut).resize((64, 48)))  # [48, 64, 3]
    gray = np.asarray(Image.fromarray(small).convert("L"))
    cases = {}
    cases["gray"] = (_save(gray, tmp_path / "gray.png"), np.repeat(gray[:, :, None], 3, axis=2), 0)
    rgba = np.dstack([small, np.full(small.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0  # transparent corner -> white
    want = small.copy()
    want[:10, :10] = 255
    cases["rgba"] = (_save(rgba, tmp_path / "rgba.png"), want, 0)
    cases["la"] = (_save(Image.fromarray(rgba).convert("LA"), tmp_path / "la.png"), None, 0)
    cases["palette"] = (_save(Image.fromarray(small).convert("P"), tmp_path / "p.png"), small, 40)
    cases["cmyk_jpeg"] = (_save(Image.fromarray(small).convert("CMYK"), tmp_path / "cmyk.jpg", quality=95), small, 8)
    gray16 = gray.astype(np.uint16) * 257
    cases["gray16_png"] = (_save(Image.fromarray(gray16), tmp_path / "g16.png"), np.repeat(gray[:, :, None], 3, 2), 1)
    rgb16 = small.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "rgb16.tif"), rgb16[:, :, ::-1])
    cases["rgb16_png"] = (tmp_path / "rgb16.png", small, 1)
    cases["rgb16_tiff"] = (tmp_path / "rgb16.tif", small, 1)
    for name, (path, want, tol) in cases.items():
        got = load_image_rgb(path)
        assert got.dtype == np.uint8 and got.shape == (48, 64, 3) and got.flags.c_contiguous, name
        if want is not None:
            assert np.abs(got.astype(int) - want.astype(int)).mean() <= tol, name
    assert load_image_rgb(tmp_path / "la.png")[:10, :10].min() == 255  # alpha composited on white


def test_load_applies_exif_orientation(tmp_path):
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, :10] = 255  # white stripe on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display = rotate 90 degrees clockwise
    path = _save(Image.fromarray(img), tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    got = load_image_rgb(path)
    assert got.shape == (80, 40, 3)
    assert got[:10].mean() > 200 and got[-10:].mean() < 50  # the left stripe is now on top


@pytest.mark.parametrize("kind, expect", [
    ("zero_byte", "empty file"),
    ("truncated_jpeg", "truncated or corrupt"),
    ("corrupt_png", "truncated or corrupt"),
    ("text_as_jpg", "not an image"),
    ("huge_header", "too large"),
    ("bomb_header", "too large"),
    ("too_small", "too small"),
    ("missing", "no such file"),
])
def test_load_rejects_bad_files(tmp_path, astronaut, kind, expect):
    path = tmp_path / f"{kind}.jpg"
    buf = io.BytesIO()
    if kind == "zero_byte":
        path.write_bytes(b"")
    elif kind == "truncated_jpeg":
        Image.fromarray(astronaut).save(buf, format="JPEG", quality=90)
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif kind == "corrupt_png":
        path = tmp_path / "corrupt.png"
        Image.fromarray(astronaut).save(buf, format="PNG")
        data = bytearray(buf.getvalue())
        data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
        path.write_bytes(bytes(data))
    elif kind == "text_as_jpg":
        path.write_text("this is not a picture\n")
    elif kind == "huge_header":  # over our limit (50 MP), under Pillow's own bomb limit
        path = tmp_path / "huge.png"
        path.write_bytes(_png_with_header(8000, 8000))
    elif kind == "bomb_header":  # far over Pillow's bomb limit too
        path = tmp_path / "bomb.png"
        path.write_bytes(_png_with_header(100_000, 100_000))
    elif kind == "too_small":
        _save(np.zeros((12, 12, 3), np.uint8), path)
    start = time.perf_counter()
    with pytest.raises(ImageLoadError, match=expect) as info:
        load_image_rgb(path)
    assert time.perf_counter() - start < 2.0  # nothing big was decoded
    assert str(path) in str(info.value)
    assert isinstance(info.value, AlignmentError)


def test_load_max_pixels_is_configurable(tmp_path, astronaut):
    path = _save(astronaut, tmp_path / "a.png")
    with pytest.raises(ImageLoadError, match="too large"):
        load_image_rgb(path, max_pixels=100_000)


# ----------------------------------------------------------------------------------------------
# Alignment


def _check_aligned(face, shape):
    assert face.image.shape == (256, 256, 3) and face.image.dtype == np.uint8
    assert face.landmarks.shape == (68, 2) and face.landmarks.dtype == np.float32
    assert face.source_landmarks.shape == (68, 2) and face.quad.shape == (4, 2)
    assert (face.landmarks >= 0).all() and (face.landmarks < 256).all()
    assert np.abs(_eyes(face.landmarks) - EYES_256).max() < 12
    # The re-detected landmarks agree with the source landmarks mapped through the warp.
    assert np.linalg.norm(apply_affine(face.matrix, face.source_landmarks) - face.landmarks, axis=1).mean() < 4
    left, top, right, bottom = face.box
    assert 0 <= left < right <= shape[1] and 0 <= top < bottom <= shape[0]


def test_align_astronaut(aligner, astronaut):
    face = aligner.align(astronaut)
    _check_aligned(face, astronaut.shape)
    left, top, right, bottom = face.box  # her face, not the patch on the suit
    assert 150 < (left + right) / 2 < 290 and 50 < (top + bottom) / 2 < 190


def test_align_hopper_from_path(aligner, hopper, tmp_path):
    path = _save(hopper, tmp_path / "hopper.jpg", quality=95)
    _check_aligned(aligner.align(path), hopper.shape)
    _check_aligned(aligner.align(str(path)), hopper.shape)


def test_align_grayscale(aligner, astronaut):
    gray = np.asarray(Image.fromarray(astronaut).convert("L"))
    face = aligner.align(gray)
    assert face.image.shape == (256, 256, 3)
    assert np.abs(_eyes(face.landmarks) - EYES_256).max() < 12


def test_no_face(aligner):
    with pytest.raises(NoFaceError, match="no face"):
        aligner.align(skdata.chelsea())
    assert issubclass(NoFaceError, AlignmentError)
    assert detect_landmarks(skdata.chelsea()) is None


def test_detect_landmarks_cached(astronaut):
    a = detect_landmarks(astronaut)
    b = detect_landmarks(astronaut)
    assert a.shape == (68, 2) and np.array_equal(a, b)
    assert np.abs(detect_landmarks(astronaut, max_side=256) - a).mean() < 4  # detector on a smaller copy


def test_fast_matches_recipe_with_padding(astronaut_face):
    """The fast path and the literal 4096 recipe agree (the crop needs padding here)."""
    lm = detect_landmarks(astronaut_face)
    fast, quad = FaceAligner().warp(astronaut_face, lm)
    exact, quad2 = FaceAligner(transform_size=4096).warp(astronaut_face, lm)
    assert np.array_equal(quad, quad2)
    diff = np.abs(fast.astype(float) - exact.astype(float))
    assert diff.mean() < 1.0 and np.percentile(diff, 99) < 6
    assert np.abs(detect_landmarks(fast) - detect_landmarks(exact)).mean() < 2.0


def test_fast_matches_recipe_with_shrink(hopper):
    """A large input takes the recipe's integer shrink (done on the crop alone by the fast path)."""
    size = (hopper.shape[1] * 4, hopper.shape[0] * 4)
    big = np.asarray(Image.fromarray(hopper).resize(size, Image.Resampling.BICUBIC))  # [2400, 2048, 3]
    lm = detect_landmarks(hopper) * 4 + 1.5  # same face, big frame: skips the slow big detection
    fast, _ = FaceAligner().warp(big, lm)
    exact, _ = FaceAligner(transform_size=4096).warp(big, lm)
    assert np.abs(fast.astype(float) - exact.astype(float)).mean() < 1.0


def test_padding_modes(astronaut_face):
    lm = detect_landmarks(astronaut_face)
    modes = ("reflect", "edge", "constant", "none")
    out = {mode: FaceAligner(padding=mode).warp(astronaut_face, lm)[0] for mode in modes}
    corner = (slice(0, 12), slice(0, 12))  # the crop leaves the image at the top left
    assert out["constant"][corner].max() == 0 and out["none"][corner].max() == 0
    assert out["reflect"][corner].mean() > 20 and out["edge"][corner].mean() > 20
    centre = (slice(100, 160), slice(100, 160))
    for mode in out:
        assert np.abs(out[mode][centre].astype(int) - out["reflect"][centre].astype(int)).mean() < 2
    with pytest.raises(ValueError):
        FaceAligner(padding="mirror")


def test_detection_without_upsampling_finds_large_faces(astronaut_face):
    """prepare.detect_upsample 0 (the demo's setting): same face, landmarks within a pixel or two."""
    authors = detect_landmarks(astronaut_face, upsample=1)
    fast = detect_landmarks(astronaut_face, upsample=0)
    assert fast is not None and np.abs(fast - authors).mean() < 2.0
    aligned = FaceAligner(upsample=0).align(astronaut_face)
    assert aligned.image.shape == (256, 256, 3)
    with pytest.raises(ValueError, match="upsample must be 0, 1 or 2"):
        run_alignment([], Path("unused"), upsample=3)


# ----------------------------------------------------------------------------------------------
# Batch runner


def _read_failures(out: Path) -> list[dict]:
    with open(out / "failures.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture()
def mixed_folder(tmp_path, astronaut_face, hopper, astronaut) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    _save(astronaut_face, folder / "astro.jpg", quality=95)
    _save(hopper, folder / "sub" / "hopper.png")
    _save(skdata.chelsea(), folder / "sub" / "cat.png")
    (folder / "notes.jpg").write_text("not a picture")
    (folder / "empty.png").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, format="JPEG")
    (folder / "cut.jpg").write_bytes(buf.getvalue()[:5000])
    (folder / ".hidden.jpg").write_bytes(b"")  # ignored
    (folder / "readme.txt").write_text("ignored: not an image extension")
    return folder


def test_jobs_for_paths(mixed_folder, tmp_path):
    jobs = jobs_for_paths([mixed_folder, mixed_folder / "sub" / "hopper.png"])
    rels = [j.rel for j in jobs]
    assert rels == ["astro", "cut", "empty", "notes", "sub/cat", "sub/hopper", "hopper"]
    assert all(j.frame is None for j in jobs)
    with pytest.raises(FileNotFoundError):
        jobs_for_paths([tmp_path / "missing"])


def test_run_alignment_failures_and_rerun(mixed_folder, tmp_path, capsys):
    out = tmp_path / "out"
    jobs = jobs_for_paths([mixed_folder])
    summary = run_alignment(jobs, out, workers=1, progress=False)
    assert (summary.processed, summary.skipped, summary.failed) == (2, 0, 4)
    assert summary.ok_rels == {"astro", "sub/hopper"}
    assert f"aligned: 2 processed, 0 skipped, 4 failed (see {out / 'failures.csv'})" in capsys.readouterr().out
    for rel in summary.ok_rels:
        img = Image.open(out / "aligned_images" / f"{rel}.jpg")
        assert img.size == (256, 256) and img.mode == "RGB"
        lm = np.load(out / "aligned_landmarks" / f"{rel}.npy")
        assert lm.shape == (68, 2) and (lm >= 0).all() and (lm < 256).all()
    rows = {Path(r["path"]).name: r for r in _read_failures(out)}
    assert set(rows) == {"cat.png", "notes.jpg", "empty.png", "cut.jpg"}
    assert "no face" in rows["cat.png"]["reason"] and "not an image" in rows["notes.jpg"]["reason"]
    assert "empty" in rows["empty.png"]["reason"] and "truncated" in rows["cut.jpg"]["reason"]
    assert all(r["frame"] == "" for r in rows.values())

    # Rerun: done items skipped, failures retried; a fixed input succeeds and loses its row.
    _save(skdata.astronaut(), mixed_folder / "notes.jpg")
    summary = run_alignment(jobs, out, workers=1, progress=False)
    assert (summary.processed, summary.skipped, summary.failed) == (1, 2, 3)
    assert {Path(r["path"]).name for r in _read_failures(out)} == {"cat.png", "empty.png", "cut.jpg"}
    assert summary.ok_rels == {"astro", "sub/hopper", "notes"}


def test_cli_exit_codes(mixed_folder, tmp_path, capsys):
    from fgnet_core.cli import main

    out = tmp_path / "cli_out"
    assert main(["align", str(mixed_folder), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    assert len(_read_failures(out)) == 4 and (out / "aligned_images" / "astro.jpg").is_file()
    assert "2 processed" in capsys.readouterr().out
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert main(["align", str(empty), "--out", str(out), "--no-progress"]) == 2
    assert main(["align", str(tmp_path / "missing.jpg"), "--out", str(out), "--no-progress"]) == 2
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert main(["align", str(mixed_folder), "--out", str(a_file), "--no-progress"]) == 2
    assert "error" in capsys.readouterr().err


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_video_jobs(tmp_path, astronaut_face):
    cat = np.ascontiguousarray(cv2.resize(skdata.chelsea(), astronaut_face.shape[1::-1]))
    frames = [np.roll(astronaut_face, 3 * i, axis=1) for i in range(8)]
    frames[5] = cat
    video = _write_video(tmp_path / "clip.avi", frames)
    assert video_frame_count(video) == 8
    assert [j.rel for j in jobs_for_paths([video])][:2] == ["clip/00000", "clip/00001"]
    jobs = [AlignJob(str(video), f"S1/T1/{f:05d}", f) for f in (7, 1, 3, 5, 20)]
    out = tmp_path / "out"
    summary = run_alignment(jobs, out, workers=1, progress=False)
    assert summary.ok_rels == {"S1/T1/00001", "S1/T1/00003", "S1/T1/00007"}
    assert (summary.processed, summary.failed) == (3, 2)
    rows = {r["frame"]: r["reason"] for r in _read_failures(out)}
    assert set(rows) == {"5", "20"} and "no face" in rows["5"] and "past the end" in rows["20"]
    # The right frames were read: the shift of frame 7 shows in the source, not in the aligned face,
    # so compare the aligned images with aligning the frames directly.
    aligner = FaceAligner()
    for f in (1, 7):
        direct = aligner.align(frames[f]).landmarks
        stored = np.load(out / "aligned_landmarks" / "S1" / "T1" / f"{f:05d}.npy")
        assert np.abs(stored - direct).mean() < 3


def _pool_workers(parent: int) -> list[int]:
    """PIDs of the spawned pool workers of a process (Linux /proc), not its resource tracker."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            pids.append(int(entry.name))
    return pids


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_kill_and_resume(tmp_path, astronaut_face):
    """SIGKILL one worker (the run recovers), then the whole 2-worker run mid-way: no partial outputs
    are visible, and a rerun completes, skipping what was done."""
    src = tmp_path / "in"
    src.mkdir()
    n = 20
    for i in range(n):
        _save(np.roll(astronaut_face, i, axis=0), src / f"img{i:02d}.png")
    out = tmp_path / "out"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        from pathlib import Path
        from fgnet_core.data.align_batch import jobs_for_paths, run_alignment
        if __name__ == "__main__":
            run_alignment(jobs_for_paths([Path({str(src)!r})]), Path({str(out)!r}), workers=2, progress=False)
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    images = out / "aligned_images"

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(list(images.glob("*.jpg"))) < count:
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)

    try:
        wait_for(2)
        workers = _pool_workers(proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)  # the run restarts its pool and carries on
        wait_for(len(list(images.glob("*.jpg"))) + 3)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.5)  # let the killed process group go
    done = sorted(p.stem for p in images.glob("*.jpg"))
    assert 4 <= len(done) < n
    for sub, ext in (("aligned_images", ".jpg"), ("aligned_landmarks", ".npy")):
        for path in (out / sub).iterdir():  # anything not hidden is a complete output
            assert path.name.startswith(".") or path.suffix == ext
    for rel in done:  # an existing .jpg means both outputs are complete
        with Image.open(images / f"{rel}.jpg") as img:
            img.load()
            assert img.size == (256, 256)
        assert np.load(out / "aligned_landmarks" / f"{rel}.npy").shape == (68, 2)
    for path in (out / "aligned_landmarks").glob("*.npy"):  # landmarks may be ahead of images
        assert np.load(path).shape == (68, 2)

    summary = run_alignment(jobs_for_paths([src]), out, workers=1, progress=False)  # models already loaded here
    assert summary.skipped == len(done) and summary.processed == n - len(done) and summary.failed == 0
    assert len(summary.ok_rels) == n
    leftovers = [p for sub in ("aligned_images", "aligned_landmarks") for p in (out / sub).iterdir()
                 if p.name.startswith(".")]
    assert leftovers == []


# ----------------------------------------------------------------------------------------------
# Nothing lost: clashing names, videos in folders, unreadable videos, output inside the input


def test_same_relative_name_from_two_folders_keeps_both(tmp_path, astronaut_face):
    for task in ("T1", "T2"):
        (tmp_path / task).mkdir()
        _save(np.roll(astronaut_face, 5 if task == "T2" else 0, axis=1), tmp_path / task / "1.jpg")
    jobs = jobs_for_paths([tmp_path / "T1" / "1.jpg", tmp_path / "T2" / "1.jpg"])
    assert sorted(j.rel for j in jobs) == ["T1/1", "T2/1"]  # the relative path kept, not one dropped
    summary = run_alignment(jobs, tmp_path / "out", workers=1, progress=False)
    assert (summary.processed, summary.failed) == (2, 0)
    assert {p.relative_to(tmp_path / "out" / "aligned_images").as_posix()
            for p in (tmp_path / "out" / "aligned_images").rglob("*.jpg")} == {"T1/1.jpg", "T2/1.jpg"}


def test_unresolvable_name_clash_is_refused_listing_it(tmp_path, astronaut_face):
    from fgnet_core.data.align_batch import OutputNameClash

    _save(astronaut_face, tmp_path / "1.jpg")
    _save(astronaut_face, tmp_path / "1.png")
    with pytest.raises(OutputNameClash, match=r"1\.jpg.*1\.png"):
        jobs_for_paths([tmp_path])
    with pytest.raises(OutputNameClash):
        run_alignment([AlignJob(str(tmp_path / "1.jpg"), "x"), AlignJob(str(tmp_path / "1.png"), "x")],
                      tmp_path / "out", workers=1, progress=False)


def test_video_in_folder_and_corrupt_video_are_counted(tmp_path, astronaut_face, capsys):
    from fgnet_core.cli import main

    folder = tmp_path / "in"
    (folder / "clips").mkdir(parents=True)
    _save(astronaut_face, folder / "face.jpg")
    _write_video(folder / "clips" / "talk.avi", [astronaut_face, np.roll(astronaut_face, 4, axis=1)])
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    rels = [j.rel for j in jobs_for_paths([folder])]
    assert "clips/talk/00000" in rels and "clips/talk/00001" in rels
    out = tmp_path / "out"
    assert main(["align", str(folder), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    assert (out / "aligned_images" / "clips" / "talk" / "00001.jpg").is_file()
    rows = _read_failures(out)
    assert [Path(r["path"]).name for r in rows] == ["broken.mp4"] and "video" in rows[0]["reason"]
    assert "3 processed, 0 skipped, 1 failed" in capsys.readouterr().out


def test_output_folder_inside_the_input_is_never_read(tmp_path, astronaut_face):
    from fgnet_core.cli import main

    folder = tmp_path / "photos"
    folder.mkdir()
    _save(astronaut_face, folder / "a.jpg")
    out = folder / "aligned"
    for _ in range(2):
        assert main(["align", str(folder), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == ["aligned_images/a.jpg"]
