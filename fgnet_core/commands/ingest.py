"""`fgnet ingest {bp4d,disfa} RAW_DIR --out DIR`: align a raw corpus and write the FG-Net label files."""
from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="align a raw BP4D/DISFA corpus and write per-fold label files",
        description="Align the labelled frames of a raw BP4D or DISFA corpus and write "
                    "OUT/<DATASET>/labels/<fold>/{train,test,val,train_sub,train_N}.csv. "
                    "Rerunning resumes: aligned frames are skipped, label files are rewritten.",
    )
    parser.add_argument("dataset", choices=["bp4d", "disfa"], type=str.lower, help="which corpus RAW_DIR holds")
    parser.add_argument("raw_dir", metavar="RAW_DIR", help="root of the raw corpus as distributed")
    parser.add_argument("--out", required=True, metavar="DIR", help="output root (image paths are relative to it)")
    parser.add_argument("--workers", type=int, default=2, help="alignment processes (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the validation split and train_N subsets")
    parser.add_argument("--subjects", nargs="+", metavar="ID", help="only these subjects (e.g. F001 M002)")
    parser.add_argument("--predictor", metavar="PATH", help="dlib 68-point model (default: bundled one)")
    parser.add_argument("--transform-size", type=int, metavar="N",
                        help="alignment crop size before resizing (default: the alignment module's)")
    parser.add_argument("--upsample", type=int, default=1, choices=[0, 1, 2],
                        help="dlib detector upsampling (default 1, as the authors; 0 is ~2x faster for faces > 80 px)")
    parser.add_argument("--skip-bad-labels", action="store_true",
                        help="skip (and count) label rows, lines or files that cannot be read, instead of stopping "
                             "at the first with an error naming the file and line")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # deferred: `fgnet --help` builds the parser without loading any command's dependencies
    from fgnet_core.data.ingest import ingest_bp4d, ingest_disfa

    ingest = ingest_bp4d if args.dataset == "bp4d" else ingest_disfa
    subjects = [s.upper() for s in args.subjects] if args.subjects else None
    try:
        ingest(args.raw_dir, args.out, workers=args.workers, seed=args.seed, subjects=subjects,
               predictor_path=args.predictor, transform_size=args.transform_size,
               upsample=args.upsample, progress=not args.no_progress, verbose=True,
               skip_bad_labels=args.skip_bad_labels)
    except (FileNotFoundError, ValueError) as exc:
        print(f"fgnet ingest: error: {exc}", file=sys.stderr)
        return 1
    return 0
