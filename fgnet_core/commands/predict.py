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
                    "model error. Frames without a face are rows with status no_face, not failures. Rows are "
                    "written as they are scored to CSV.partial, renamed to CSV when the run ends; after Ctrl-C, "
                    "SIGTERM or a crash, rerun with --resume to keep them and continue.",
    )
    parser.add_argument("inputs", nargs="+", metavar="PATH",
                        help="image files, folders, or videos (.mp4 .avi .mov .mkv ...)")
    parser.add_argument("--out", required=True, metavar="CSV", help="results table to write (never an input)")
    parser.add_argument("--format", choices=["csv", "parquet"], dest="fmt",
                        help="results format (default: parquet for a .parquet/.pq --out, else csv)")
    parser.add_argument("--openface-columns", action="store_true",
                        help="name presence columns as OpenFace does (AU01_c ...), for existing analysis scripts")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run: keep the rows in CSV.partial (or a finished CSV) and "
                             "score only the frames they lack")
    parser.add_argument("--model", default="demo", metavar="demo|bp4d|disfa|PATH",
                        help="demo: the model `make demo` trains; bp4d / disfa: the released FG-Net fold-0 models "
                             "under checkpoints/; or a checkpoint path (training .pt, or FG-Net model.pth)")
    parser.add_argument("--stylegan", metavar="PATH", help="StyleGAN2 file for an FG-Net model.pth")
    parser.add_argument("--encoder", metavar="PATH", help="pSp encoder file for an FG-Net model.pth (required there)")
    parser.add_argument("--dataset", choices=["BP4D", "DISFA"], type=str.upper,
                        help="which AUs the model reads (default: recorded in the checkpoint / named in its path); "
                             "refused when the model records another dataset")
    parser.add_argument("--overlays", metavar="DIR",
                        help="write DIR/<name>.png per image and DIR/<video>/<frame>.png per video frame with a face "
                             "(aligned face + each AU's heatmap, label and score), and DIR/<video>.mp4 "
                             "(every frame annotated, beside its heatmap grid)")
    parser.add_argument("--batch-size", type=int, default=8, metavar="N", help="faces per model call (default 8)")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="score every N-th video frame (default 1)")
    parser.add_argument("--detect-every", type=int, default=10, metavar="N",
                        help="videos: run the face detector on the whole frame every N frames and follow the face "
                             "in between (re-detecting when it is lost or jumps); 1 detects on every frame "
                             "(default 10)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes that decode and align frames while this one runs the model (default 1: "
                             "all in this process)")
    parser.add_argument("--upsample", type=int, default=1, choices=[0, 1, 2],
                        help="dlib detector upsampling (default 1, as the training data; 0 is ~4x faster and "
                             "finds faces above ~80 px)")
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
    if args.detect_every < 1 or args.workers < 1:
        return _error("--detect-every and --workers must be at least 1")
    out = Path(args.out)
    if out.is_dir():
        return _error(f"--out {out}: is a folder; give the CSV file to write")

    # deferred: `fgnet --help` builds the parser without loading any command's dependencies
    from fgnet_core.checkpoints import CheckpointError
    from fgnet_core.predict import ModelNotFoundError, ModelSpecError, predict, resolve_model
    from fgnet_core.predict.results import ResultsFileError, partial_path
    from fgnet_core.predict.run import collect_sources, refuse_overwriting_inputs

    try:
        refuse_overwriting_inputs(out, collect_sources(args.inputs, exclude=[args.overlays] if args.overlays else ()))
        if partial_path(out).exists() and not args.resume:
            raise ResultsFileError(f"{partial_path(out)}: holds the rows of an interrupted run; pass --resume to "
                                   "continue it, or delete it to start over")
    except ResultsFileError as exc:
        return _error(str(exc))
    try:
        model = resolve_model(args.model, stylegan=args.stylegan, encoder=args.encoder, dataset=args.dataset,
                              device=args.device)
    except (ModelNotFoundError, ModelSpecError, CheckpointError) as exc:
        return _error(str(exc))
    previous = _stop_on_sigterm()
    try:
        table = predict(args.inputs, model, batch_size=args.batch_size, overlays_dir=args.overlays,
                        progress=not args.no_progress, every_n_frames=args.every, device=args.device,
                        detect_max_side=args.detect_max_side or None, out=out, fmt=args.fmt, resume=args.resume,
                        openface_columns=args.openface_columns, detect_every=args.detect_every,
                        workers=args.workers, upsample=args.upsample, error_prefix="fgnet predict: error: ")
    except FileNotFoundError as exc:  # the dlib landmark model
        return _error(str(exc))
    except ResultsFileError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"--out {out}: cannot write ({exc.strerror or exc})")
    except KeyboardInterrupt:
        print(f"fgnet predict: interrupted; the rows scored so far are in {partial_path(out)}: rerun the same "
              "command with --resume to continue", file=sys.stderr)
        return 130
    finally:
        _restore_sigterm(previous)
    counts = table["status"].value_counts().to_dict()
    summary = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("ok", "no_face", "error"))
    print(f"predict: {len(table)} rows ({summary}) -> {out}", file=sys.stderr)
    return 1 if table.attrs.get("errors") or counts.get("error", 0) else 0


def _stop_on_sigterm():
    """SIGTERM (schedulers, `timeout`, `kill`) stops like Ctrl-C, keeping the partial results."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous) -> None:
    import signal

    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
