"""`fgnet demo-corpus`: render the procedural demo corpus in the raw BP4D / DISFA layouts."""
from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo-corpus", help="render the procedural demo corpus (raw BP4D + DISFA layouts)",
        description="Render procedural faces with known landmarks and AU labels, written like the raw BP4D and "
                    "DISFA releases, so ingestion and the rest of the pipeline run without the licensed data.")
    p.add_argument("--out", default="data", help="output root (default: data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--frames-per-subject", type=int, default=48)
    p.add_argument("--subjects-per-fold", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--datasets", nargs="+", default=["BP4D", "DISFA"], choices=["BP4D", "DISFA"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # deferred: `fgnet --help` builds the parser without loading any command's dependencies
    from fgnet_core.democorpus.corpus import generate_demo_corpus

    report = generate_demo_corpus(args.out, seed=args.seed, frames_per_subject=args.frames_per_subject,
                                  subjects_per_fold=args.subjects_per_fold, workers=args.workers,
                                  datasets=tuple(args.datasets))
    print(json.dumps(report, indent=1))
    return 0
