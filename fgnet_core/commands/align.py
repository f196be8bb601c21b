"""`fgnet align INPUT... --out DIR`: FFHQ-style 256x256 face alignment of images, folders and videos."""
from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "align",
        help="align faces FFHQ-style to 256x256 (dlib landmarks), resumable and parallel",
        description="Detect the largest face with dlib, align it FFHQ-style to 256x256 and detect its 68 "
                    "landmarks again. Writes DIR/aligned_images/<name>.jpg, DIR/aligned_landmarks/<name>.npy "
                    "and DIR/failures.csv (one row per input without a usable face, or unreadable). Folders are "
                    "searched recursively (images and videos; never DIR's own outputs) and keep their relative "
                    "paths; inputs whose names would clash get their parent folders prepended, or are refused "
                    "when that cannot tell them apart; a video gives one image per frame. Rerunning "
                    "skips finished items and retries failed ones. Exits 0 when the run completed, even "
                    "with per-file failures.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders of images, or videos")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--workers", type=int, default=2, metavar="N", help="parallel processes (default 2)")
    parser.add_argument("--transform-size", type=int, metavar="N",
                        help="literal FFHQ recipe warping to N x N first (the authors used 4096; slow). "
                             "Default: the fast single-warp path")
    parser.add_argument("--padding", default="reflect", choices=["reflect", "edge", "constant", "none"],
                        help="fill where the crop leaves the image (default: reflect + blur + fade, as FFHQ)")
    parser.add_argument("--predictor", metavar="PATH", help="dlib 68-point model (default: the bundled one)")
    parser.add_argument("--upsample", type=int, default=1, choices=[0, 1, 2],
                        help="dlib detector upsampling (default 1, as the authors; 0 is ~2x faster for faces > 80 px)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def _error(message: str) -> int:
    print(f"fgnet align: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    # deferred: `fgnet --help` builds the parser without loading any command's dependencies
    from fgnet_core.data.align_batch import OUTPUT_SUBFOLDERS, OutputNameClash, jobs_for_paths, run_alignment

    if args.workers < 1:
        return _error("--workers must be at least 1")
    if args.transform_size is not None and args.transform_size < 256:
        return _error("--transform-size must be at least the output size (256)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _error(f"--out {out}: exists and is not a folder")
    try:
        jobs = jobs_for_paths([Path(p) for p in args.inputs], exclude=[out / sub for sub in OUTPUT_SUBFOLDERS])
    except (FileNotFoundError, OutputNameClash) as exc:
        return _error(str(exc))
    if not jobs:
        return _error(f"no images found in {' '.join(args.inputs)}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return _error(f"--out {out}: cannot create ({exc.strerror or exc})")
    try:
        run_alignment(jobs, out, workers=args.workers, predictor_path=args.predictor,
                      transform_size=args.transform_size, padding=args.padding, upsample=args.upsample,
                      progress=not args.no_progress)
    except FileNotFoundError as exc:  # the landmark model
        return _error(str(exc))
    except KeyboardInterrupt:
        print("fgnet align: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0
