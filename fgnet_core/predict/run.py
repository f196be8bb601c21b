"""`predict`: AU presence and heatmap-mean scores for images, folders and videos, one row per frame.

Every frame is aligned like the training data (`FaceAligner`: the largest face, FFHQ-style, 256 px), so
one face per frame is scored, as in the official FG-Net code; in videos the face is detected every
`detect_every` frames and followed in between (`FaceTracker`). Decoding and alignment run inline or in
`workers` processes (`data/frame_source.py`); aligned faces are batched through the model here; a frame
without a face gives a `no_face` row, an input that cannot be read gives an `error` row and one line on
stderr, and the run goes on with the next input. A video that ends before the frame count its container
declares (truncated) gets an `error` row at the first missing frame. With `out`, rows are
written as they are scored (see `results.py`), so an interrupted run keeps them and `resume` continues it.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from fgnet_core.atomic import atomic_path
from fgnet_core.data.frame_source import (  # noqa: F401 (re-exported)
    InputError, Source, TruncatedVideo, aligned_frames, collect_sources, frame_estimate, video_frames,
)
from fgnet_core.data.heatmaps import is_present
from fgnet_core.data.image_tensors import save_png
from fgnet_core.evaluation.predict_set import score_faces
from fgnet_core.predict import overlays as ov
from fgnet_core.predict.models import LoadedModel, resolve_model
from fgnet_core.predict.overlays import VideoOverlay, grid_shape
from fgnet_core.predict.results import ResultsFileError, ResultsWriter, partial_path

HEAD_COLUMNS = ["source", "frame", "time_s", "x0", "y0", "x1", "y1", "status"]
TAIL_COLUMNS = ["model", "dataset"]
STATUSES = ("ok", "no_face", "error")


def presence_column(label: str, openface: bool = False) -> str:
    """'AU01', or 'AU01_c' as OpenFace names its presence columns."""
    return f"{label}_c" if openface else label


def result_columns(au_labels: list[str], openface: bool = False) -> list[str]:
    """The results table's columns, in order: head, presence per AU, score per AU, model and dataset."""
    return [*HEAD_COLUMNS, *[presence_column(label, openface) for label in au_labels],
            *[f"{label}_score" for label in au_labels], *TAIL_COLUMNS]


@dataclass
class _Pending:
    row: dict
    face: object = None            # AlignedFace, or None when the frame gave no face
    frame: np.ndarray | None = None  # the input frame, kept only for video overlays
    source: Source | None = None


@dataclass
class _Runner:
    """Batches aligned faces through the model and turns them into rows (and overlays)."""

    loaded: LoadedModel
    batch_size: int
    overlays: Path | None
    device: str
    openface: bool = False
    writer: object = None          # ResultsWriter, or None: rows only kept in memory
    rows: list = field(default_factory=list)
    pending: list = field(default_factory=list)
    video: object = None

    def flush(self) -> None:
        faces = [p for p in self.pending if p.face is not None]
        labels = self.loaded.au_labels
        heat = scores = None
        if faces:  # one batch: heatmaps [B, n_aus, S, S], scores [B, n_aus]
            heat, scores = score_faces(self.loaded.net, [p.face.image for p in faces], len(labels),
                                       batch_size=len(faces), device=self.device)
        k = 0
        for item in self.pending:
            grid = None
            if item.face is not None:
                s = scores[k]
                item.row.update({presence_column(lab, self.openface): int(is_present(v)) for lab, v in zip(labels, s)})
                item.row.update({f"{lab}_score": float(v) for lab, v in zip(labels, s)})
                if self.overlays is not None:
                    source = item.source
                    title, png = source.path.name, self.overlays / f"{source.name}.png"
                    if source.kind == "video":
                        title += f" frame {item.row['frame']}"
                        png = self.overlays / source.name / f"{item.row['frame']:06d}.png"
                    grid = ov.heatmap_grid(item.face.image, item.face.landmarks, heat[k], labels, s,
                                           title=title)
                    save_png(grid, png)
                k += 1
            if self.video is not None and item.frame is not None:
                box = None if item.face is None else item.face.box
                annotated = ov.annotate_frame(item.frame, box, labels,
                                              [item.row.get(presence_column(lab, self.openface)) for lab in labels],
                                              [item.row.get(f"{lab}_score") for lab in labels], item.row["status"])
                self.video.add(annotated, grid)
        self.add_rows([item.row for item in self.pending])
        self.pending = []

    def add_rows(self, rows: list[dict]) -> None:
        self.rows += rows
        if self.writer is not None and rows:
            self.writer.write(rows)


def predict(paths: Iterable[str | Path] | str | Path, model: str | Path | LoadedModel = "demo", *,
            batch_size: int = 8, overlays_dir: str | Path | None = None, progress: bool = True,
            every_n_frames: int = 1, stylegan=None, encoder=None, dataset: str | None = None,
            device: str = "cpu", detect_max_side: int | None = 1024, aligner=None,
            error_prefix: str = "predict: error: ", out: str | Path | None = None, fmt: str | None = None,
            resume: bool = False, openface_columns: bool = False, detect_every: int = 10, workers: int = 1,
            upsample: int = 1) -> pd.DataFrame:
    """Score every frame of `paths` (images, folders, videos) -> DataFrame with `result_columns` (see module doc).

    `df.attrs["errors"]` lists (path, message) of the inputs that could not be read. `detect_max_side`
    shrinks large frames for face detection only (landmarks still use the full frame); None = full size.
    `out` writes the table as it goes (`fmt` 'csv' | 'parquet', default from the suffix); `resume` keeps the
    rows of an interrupted run there and skips their frames. `openface_columns` names presence `AU01_c`.
    `detect_every` (videos): run the face detector every N frames and follow the landmarks in between
    (1: detect on every frame). `workers` > 1 decodes and aligns in that many processes. `aligner`
    (an object with `align(rgb)`) replaces the default FaceAligner and runs inline.
    Raises ResultsFileError (a ValueError) when `out` is one of the inputs or a run to resume is in the way.
    """
    from tqdm import tqdm

    if isinstance(paths, (str, Path)):
        paths = [paths]
    if batch_size < 1 or every_n_frames < 1:
        raise ValueError("batch_size and every_n_frames must be at least 1")
    sources, errors = collect_sources(paths, exclude=[overlays_dir] if overlays_dir is not None else ()), []
    if out is not None:
        refuse_overwriting_inputs(out, sources)
    loaded = model if isinstance(model, LoadedModel) else resolve_model(
        model, stylegan=stylegan, encoder=encoder, dataset=dataset, device=device)
    loaded.net.to(device).eval()
    columns = result_columns(loaded.au_labels, openface_columns)
    writer = ResultsWriter(out, columns, fmt=fmt, resume=resume) if out is not None else None
    kept = writer.open() if writer is not None else pd.DataFrame(columns=columns)
    done = {(str(s), int(f)) for s, f in zip(kept["source"], kept["frame"]) if not pd.isna(f)}
    if writer is None and resume:
        raise ResultsFileError("resume needs the results file (out) to continue")
    overlays = Path(overlays_dir) if overlays_dir is not None else None
    if overlays is not None:
        overlays.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=frame_estimate(sources, every_n_frames), initial=len(done), unit="frame", desc="predict",
               disable=not progress, file=sys.stderr, dynamic_ncols=True)

    def report(path, message: str) -> None:
        bar.write(f"{error_prefix}{path}: {message}", file=sys.stderr)  # one line, between bar updates

    runner = _Runner(loaded, batch_size, overlays, device, openface_columns, writer)
    base = {"model": loaded.name, "dataset": loaded.dataset}
    options = {"detect_max_side": detect_max_side, "upsample": upsample, "coarse_first": True}
    events = aligned_frames(sources, every_n_frames, detect_every=detect_every, workers=workers,
                            aligner=aligner, aligner_options=options, done=frozenset(done))
    decoded = None  # the input frames of the current video, decoded again here for its overlay video
    try:
        for kind, index, item in events:
            source = sources[index]
            if kind == "end":
                if item is not None:
                    report(source.path, str(item))
                    errors.append((str(source.path), str(item)))
                    row = {"source": str(source.path), "frame": item.frame, "status": "error", **base}
                    runner.pending.append(_Pending(row, None, None, source))
                if source.kind == "video":
                    runner.flush()  # before its overlay video closes; images batch across inputs
                    if runner.video is not None:
                        runner.video.close()
                        runner.video, decoded = None, None
                continue
            if overlays is not None and source.kind == "video" and runner.video is None:
                runner.video = VideoOverlay(overlays / f"{source.name}.mp4", _fps(source.path) / every_n_frames,
                                            grid_shape(loaded.n_aus, title=True))
                decoded = video_frames(source.path, every_n_frames, declared_check=False)
            rgb = _frame_at(decoded, item.frame) if decoded is not None else None
            row = {"source": str(source.path), "frame": item.frame, "time_s": item.time_s, "status": item.status,
                   **base}
            if item.status == "ok":
                row.update(zip(("x0", "y0", "x1", "y1"), item.face.box))
            elif item.status == "error":
                report(source.path, f"frame {item.frame}: {item.message}")
            runner.pending.append(_Pending(row, item.face, rgb, source))
            faces = sum(p.face is not None for p in runner.pending)
            if faces >= batch_size or len(runner.pending) >= 4 * batch_size:  # bound memory when faceless
                runner.flush()
            bar.update(1)
        runner.flush()
        if runner.video is not None:
            runner.video.close()
    except BaseException:
        if writer is not None:
            writer.close()  # what was scored stays in <out>.partial for --resume
        if runner.video is not None:
            runner.video.close()
        raise
    finally:
        events.close()  # stops the worker processes now, not at garbage collection
        bar.close()
    new = pd.DataFrame(runner.rows, columns=columns)
    table = _typed(pd.concat([kept, new], ignore_index=True) if len(kept) else new, loaded.au_labels,
                   openface_columns)
    if resume and len(kept):  # resumed frames take their place in input order
        order = {str(s.path): i for i, s in enumerate(sources)}
        table = table.sort_values(by=["source", "frame"], key=lambda c: c.map(order) if c.name == "source" else c,
                                  kind="stable").reset_index(drop=True)
    table.attrs["errors"] = errors
    if writer is not None:
        if resume and len(kept):
            _rewrite_partial(writer, table)
        writer.finish(table)
    return table


def refuse_overwriting_inputs(out: str | Path, sources: list[Source]) -> None:
    """ResultsFileError when the results file (or its partial file) is one of the inputs."""
    out = Path(out)
    targets = {p.resolve() for p in (out, partial_path(out))}
    for source in sources:
        if source.kind != "error" and source.path.resolve() in targets:
            raise ResultsFileError(f"--out {out}: is one of the inputs; refusing to overwrite it")


def _rewrite_partial(writer, table: pd.DataFrame) -> None:
    """Put a resumed run's rows in input order before the partial file is published."""
    with atomic_path(writer.partial) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")


def _frame_at(decoded, frame: int) -> np.ndarray | None:
    """Advance a `video_frames` generator to `frame` -> its RGB, or None past the end."""
    for index, _, rgb in decoded:
        if index == frame:
            return rgb
        if index > frame:
            return None
    return None


def _fps(path: Path) -> float:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
    finally:
        cap.release()


def _typed(table: pd.DataFrame, labels: list[str], openface: bool = False) -> pd.DataFrame:
    """Integers that may be missing (frame, box, presence) as nullable Int64, scores as float."""
    for col in ["frame", "x0", "y0", "x1", "y1", *[presence_column(lab, openface) for lab in labels]]:
        table[col] = table[col].astype("Int64")
    for col in ["time_s", *[f"{lab}_score" for lab in labels]]:
        table[col] = table[col].astype("float64")
    return table
