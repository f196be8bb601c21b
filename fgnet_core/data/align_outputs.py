"""What batch alignment writes under its out_dir, and how it is written.

Layout under out_dir:
    aligned_images/<rel>.jpg      256x256 RGB, JPEG quality 95
    aligned_landmarks/<rel>.npy   [68, 2] float32 (x, y) in the 256 frame (dlib run on the aligned face)
    failures.csv                  path, frame, reason: one row per item that could not be aligned

Each output is written atomically (`fgnet_core.atomic`: a hidden temp file in its folder, renamed into place),
landmarks first and image last, so an existing .jpg means the item is complete whatever killed the run.
A killed run can leave hidden temp files behind; `remove_stale_temps` deletes them (so run one alignment at a
time per out_dir).
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from fgnet_core.atomic import write_bytes, write_text

_TEMP_SUFFIXES = (".tmp", ".part")  # hidden temp files: ".<name>.<random>.tmp" (".part": earlier versions)
_FAILURE_COLUMNS = ("path", "frame", "reason")


def output_paths(out_dir: Path, rel: str) -> tuple[Path, Path]:
    """(image .jpg, landmarks .npy) paths of one item."""
    out_dir = Path(out_dir)
    return out_dir / "aligned_images" / f"{rel}.jpg", out_dir / "aligned_landmarks" / f"{rel}.npy"


def is_complete(out_dir: Path, rel: str) -> bool:
    image, landmarks = output_paths(out_dir, rel)
    return image.is_file() and landmarks.is_file()



def save_aligned(out_dir: Path, rel: str, image, landmarks) -> None:
    """Write one item: landmarks first, image last, each atomically."""
    import numpy as np
    from PIL import Image

    image_path, landmarks_path = output_paths(out_dir, rel)
    buf = io.BytesIO()
    np.save(buf, np.asarray(landmarks, dtype=np.float32).reshape(68, 2))
    write_bytes(landmarks_path, buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95)
    write_bytes(image_path, buf.getvalue())


def remove_stale_temps(out_dir: Path) -> int:
    """Delete temp files left by a killed run; returns how many."""
    removed = 0
    for sub in ("aligned_images", "aligned_landmarks"):
        for root, _, files in os.walk(Path(out_dir) / sub):
            for name in files:
                if name.startswith(".") and name.endswith(_TEMP_SUFFIXES):
                    Path(root, name).unlink(missing_ok=True)
                    removed += 1
    return removed


# ----------------------------------------------------------------------------------------------
# failures.csv: (path, frame) -> reason


def failure_key(path: str, frame) -> tuple[str, str]:
    return str(path), "" if frame is None or frame == "" else str(int(frame))


def read_failures(path: Path) -> dict[tuple[str, str], str]:
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {failure_key(row["path"], row["frame"]): row["reason"] for row in csv.DictReader(f)
                if row.get("path") is not None}


def write_failures(path: Path, failures: dict[tuple[str, str], str]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_FAILURE_COLUMNS)
    for (source, frame), reason in sorted(failures.items()):
        writer.writerow((source, frame, reason))
    write_text(path, buf.getvalue())
