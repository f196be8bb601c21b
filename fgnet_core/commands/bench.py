"""`fgnet bench`: images/s and peak memory of the model presets (inference and a training step)."""
from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="measure images/s and peak memory of the model presets")
    p.add_argument("--presets", nargs="+", default=["tiny", "official"], help="presets to measure")
    p.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda (default: all present)")
    p.add_argument("--modes", nargs="+", default=["inference", "train-step"], choices=["inference", "train-step"])
    p.add_argument("--batch-tiny", type=int, default=16, help="batch size for the tiny preset")
    p.add_argument("--batch-official", type=int, default=2, help="batch size for the official preset")
    p.add_argument("--repeats", type=int, default=2, help="timed repetitions after one warm-up")
    p.add_argument("--no-roundtrip", action="store_true",
                   help="skip writing/reading seeded weights in the official checkpoint formats")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    p.set_defaults(func=_run)


def _run(args) -> int:
    # deferred: `fgnet --help` builds the parser without loading any command's dependencies
    from fgnet_core import bench

    results = bench.main(presets=args.presets, devices=args.devices, modes=args.modes,
                         batches={"tiny": args.batch_tiny, "official": args.batch_official},
                         repeats=args.repeats, roundtrip=not args.no_roundtrip, json_out=args.json)
    return 0 if results else 1
