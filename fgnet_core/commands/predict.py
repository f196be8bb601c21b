"""`fgnet predict PATH... --out results.csv`: AU presence and scores for images, folders and videos."""
from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="detect action units in images, folders and videos (CSV, optional heatmap overlays)",
        description="Align the largest face of every image / video frame (FFHQ-style, as the training data), "
                    "run the model on batches of faces and write one CSV row per frame: source, frame, time_s, "
                    "face box x0,y0,x1,y1, status (ok | no_face | error), presence AU01... (1 when the clamped "
                    "heatmap mean is > 0), heatmap mean AU01_score..., model, dataset. Folders are searched "
                    "recursively. One face per frame is scored (the largest, as the official FG-Net code aligns "
                    "it). Exit status: 0 when every input was read, 1 when any input could not be read "
                    "(one error line each on stderr; the other inputs are still scored), 2 on a usage or "
                    "model error. Frames without a face are rows with status no_face, not failures.",
    )
    parser.add_argument("inputs", nargs="+", metavar="PATH",
                        help="image files, folders, or videos (.mp4 .avi .mov .mkv ...)")
    parser.add_argument("--out", required=True, metavar="CSV", help="results table to write")
    parser.add_argument("--model", default="demo", metavar="demo|bp4d|disfa|PATH",
                        help="demo: the model `make demo` trains; bp4d / disfa: the released FG-Net fold-0 models "
                             "under checkpoints/; or a checkpoint path (training .pt, or FG-Net model.pth)")
    parser.add_argument("--stylegan", metavar="PATH", help="StyleGAN2 file for an FG-Net model.pth")
    parser.add_argument("--encoder", metavar="PATH", help="pSp encoder file for an FG-Net model.pth (required there)")
    parser.add_argument("--dataset", choices=["BP4D", "DISFA"], type=str.upper,
                        help="which AUs the model reads (default: recorded in the checkpoint / named in its path)")
    parser.add_argument("--overlays", metavar="DIR",
                        help="write DIR/<name>.png per image and DIR/<video>/<frame>.png per video frame with a face "
                             "(aligned face + each AU's heatmap, label and score), and DIR/<video>.mp4 "
                             "(every frame annotated, beside its heatmap grid)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="faces per model call (default 8)")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="score every N-th video frame (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--detect-max-side", type=int, default=1024, metavar="N",
                        help="detect faces on a copy shrunk to this longer side (0: full size; default 1024)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _error(message: str) -> int:
    print(f"fgnet predict: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.batch_size < 1:
        return _error("--batch-size must be at least 1")
    if args.every < 1:
        return _error("--every must be at least 1")
    out = Path(args.out)
    if out.is_dir():
        return _error(f"--out {out}: is a folder; give the CSV file to write")

    from fgnet_core.checkpoints import CheckpointError
    from fgnet_core.predict import ModelNotFoundError, ModelSpecError, predict, resolve_model

    try:
        model = resolve_model(args.model, stylegan=args.stylegan, encoder=args.encoder, dataset=args.dataset,
                              device=args.device)
    except (ModelNotFoundError, ModelSpecError, CheckpointError) as exc:
        return _error(str(exc))
    try:
        table = predict(args.inputs, model, batch_size=args.batch_size, overlays_dir=args.overlays,
                        progress=not args.no_progress, every_n_frames=args.every, device=args.device,
                        detect_max_side=args.detect_max_side or None,
                        error_prefix="fgnet predict: error: ")
    except FileNotFoundError as exc:  # the dlib landmark model
        return _error(str(exc))
    except KeyboardInterrupt:
        print("fgnet predict: interrupted", file=sys.stderr)
        return 130
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False, float_format="%.6g")
    except OSError as exc:
        return _error(f"--out {out}: cannot write ({exc.strerror or exc})")
    counts = table["status"].value_counts().to_dict()
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("ok", "no_face", "error"))
    print(f"predict: {len(table)} rows ({summary}) -> {out}", file=sys.stderr)
    return 1 if table.attrs.get("errors") or counts.get("error", 0) else 0
