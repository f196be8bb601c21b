"""`fgnet predict` throughput: frames/s on images and a 640x480 video, 1 and 2 workers, tracking on and off,
overlays on and off; the landmark drift of tracking against detecting on every frame; start-up time.

    python bench/predict_speed.py [--frames 150] [--video PATH] [--skip-slow]

Steady state is measured as N / (t(2N frames) - t(N frames)), so start-up (imports, model and dlib
loading, spawning workers) cancels out; start-up is the wall time of `fgnet predict` on one image.
The model is the `tiny` preset, seeded and untrained (its speed does not depend on its weights).
Media are made here from real photos available offline: a face moving, turning a little and changing
size over a 640x480 background (mp4), and photos of faces at 640x480. Set OMP_NUM_THREADS=1 and run
on an otherwise idle machine; numbers go to stdout. On a shared machine the wall-clock rates swing with
the other load; the CPU time per frame (all processes) does not, and 1000 / it is the rate one idle core
gives.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

W, H = 640, 480


def _faces() -> list[np.ndarray]:
    import cv2
    import matplotlib
    import skimage.data
    from PIL import Image

    astronaut = skimage.data.astronaut()[0:420, 60:480]
    hopper = np.asarray(Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
                        .convert("RGB"))[40:520, 20:500]
    return [np.ascontiguousarray(cv2.resize(f, (300, 300), interpolation=cv2.INTER_AREA)) for f in (astronaut, hopper)]


def _frame(face: np.ndarray, t: float) -> np.ndarray:
    """The face at time t (frames): moving on a smooth path, rotating +-6 degrees, scaling 0.85-1.15."""
    import cv2

    background = np.full((H, W, 3), (70, 90, 110), np.uint8)
    angle, scale = 6 * math.sin(t / 17), 1 + 0.15 * math.sin(t / 23)
    cx, cy = W / 2 + 120 * math.sin(t / 29), H / 2 + 40 * math.cos(t / 19)
    m = cv2.getRotationMatrix2D((150, 150), angle, scale)
    m[:, 2] += (cx - 150, cy - 150)
    return cv2.warpAffine(face, m, (W, H), dst=background, borderMode=cv2.BORDER_TRANSPARENT)


def write_video(path: Path, n: int, face: np.ndarray) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (W, H))
    for i in range(n):
        writer.write(cv2.cvtColor(_frame(face, i), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_photos(folder: Path, n: int, faces: list[np.ndarray]) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(_frame(faces[i % len(faces)], 37.0 * i)).save(folder / f"{i:03d}.jpg", quality=92)
    return folder


def tiny_model(path: Path) -> Path:
    import torch

    from fgnet_core.checkpoints import save_training_checkpoint
    from fgnet_core.models.fgnet import FGNet

    torch.manual_seed(0)
    return save_training_checkpoint(path, FGNet("tiny"), params={"dataset": "BP4D"})


def _cpu() -> float:
    t = os.times()  # this process and its finished children (the worker pool is joined when predict returns)
    return t.user + t.system + t.children_user + t.children_system


def timed(inputs, model, **kwargs) -> tuple[float, float]:
    """(wall s, CPU s of all processes) of one predict call."""
    from fgnet_core.predict import predict

    t0, c0 = time.perf_counter(), _cpu()
    predict(inputs, model, progress=False, **kwargs)
    return time.perf_counter() - t0, _cpu() - c0


def steady(short, long, n: int, model, **kwargs) -> tuple[float, float]:
    """(frames/s wall, CPU ms per frame) with start-up cancelled: n more frames in `long` than in `short`."""
    (w0, c0), (w1, c1) = timed(short, model, **kwargs), timed(long, model, **kwargs)
    return n / (w1 - w0), 1000 * (c1 - c0) / n


def _line(what: str, result: tuple[float, float], unit: str = "frames/s") -> str:
    fps, cpu_ms = result
    return f"{what}: {fps:.1f} {unit} wall; {cpu_ms:.1f} CPU ms per frame (= {1000 / cpu_ms:.1f} {unit} per idle core)"


def drift(video: Path, detect_every: int) -> tuple[float, float, int, int]:
    """Mean and 95th percentile px distance of tracked to per-frame-detected landmarks; detections, frames."""
    import cv2

    from fgnet_core.data.align import FaceAligner
    from fgnet_core.data.face_detect import NoFaceError
    from fgnet_core.data.face_tracking import FaceTracker

    aligner = FaceAligner(detect_max_side=1024, coarse_first=True)  # the detector as predict runs it
    tracker = FaceTracker(aligner, detect_every)
    cap = cv2.VideoCapture(str(video))
    errors = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        try:
            a = tracker.align(rgb).source_landmarks
            b = aligner.align(rgb, second_pass=False).source_landmarks
        except NoFaceError:
            continue
        errors.append(np.linalg.norm(a - b, axis=1).mean())
    cap.release()
    return float(np.mean(errors)), float(np.percentile(errors, 95)), tracker.detections, tracker.frames


def startup(model: Path, image: Path, out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fgnet_core.cli", "predict", str(image), "--out", str(out), "--model",
                    str(model), "--no-progress"], env=env, check=True, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=150, help="N: frames of the short video (the long has 2N)")
    parser.add_argument("--photos", type=int, default=40, help="N: photos of the short folder (the long has 2N)")
    parser.add_argument("--video", type=Path, help="also measure drift on this video")
    parser.add_argument("--skip-slow", action="store_true", help="skip tracking off (detection on every frame)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        faces = _faces()
        model = tiny_model(tmp / "tiny.pt")
        n = args.frames
        short, long = write_video(tmp / "short.mp4", n, faces[0]), write_video(tmp / "long.mp4", 2 * n, faces[0])
        photos_short = write_photos(tmp / "photos_short", args.photos, faces)
        photos_long = write_photos(tmp / "photos_long", 2 * args.photos, faces)
        print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        seconds = startup(model, photos_short / "000.jpg", tmp / "s.csv")
        print(f"start-up (fgnet predict, one image, wall): {seconds:.2f} s")
        timed([photos_short / "000.jpg"], model)  # first call pays one-time costs (dlib models, torch init)
        for workers in (1, 2):
            result = steady([photos_short], [photos_long], args.photos, model, workers=workers)
            print(_line(f"photos 640x480, {workers} worker(s)", result, "images/s"))
        for workers in (1, 2):
            for detect_every in ((10, 1) if not args.skip_slow else (10,)):
                frames = n if detect_every > 1 else max(20, n // 4)
                s, lg = (short, long) if detect_every > 1 else (write_video(tmp / "s1.mp4", frames, faces[0]),
                                                                 write_video(tmp / "l1.mp4", 2 * frames, faces[0]))
                result = steady([s], [lg], frames, model, workers=workers, detect_every=detect_every)
                label = f"tracking (detect every {detect_every})" if detect_every > 1 else "detection every frame"
                print(_line(f"video 640x480, {workers} worker(s), {label}, no overlays", result))
            result = steady([short], [long], n, model, workers=workers, detect_every=10, overlays_dir=tmp / "ov")
            print(_line(f"video 640x480, {workers} worker(s), tracking (detect every 10), overlays", result))
        mean, p95, detections, frames = drift(short, 10)
        print(f"tracking drift vs per-frame detection (synthetic 640x480 video): mean {mean:.2f} px, "
              f"95th percentile {p95:.2f} px; {detections} detections in {frames} frames")
        if args.video:
            mean, p95, detections, frames = drift(args.video, 10)
            print(f"tracking drift on {args.video.name}: mean {mean:.2f} px, 95th percentile {p95:.2f} px; "
                  f"{detections} detections in {frames} frames")


if __name__ == "__main__":
    main()
