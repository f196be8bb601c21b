"""`python -m fgnet_core.pipeline.reproduce [--rev REV] [--tolerance T]`: do the results reproduce?

After `dvc repro`, compares every number of the metrics files git tracks (`reports/metrics/**.json`,
`reports/compare/claims.json`) with the committed version at REV. With the pinned CPU kernels (dvc.yaml
`vars.cpu`), fixed seeds and fixed thread counts the demo is deterministic, so the default tolerance is 0:
any difference is reported, file and key named, and the exit code is 1.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

from fgnet_core.paths import REPO_ROOT

PATTERNS = ("reports/metrics/*.json", "reports/metrics/**/*.json", "reports/compare/claims.json")
TIMINGS = ("seconds", "minutes", "per_second")  # keys that measure the machine, not the result


def flatten(obj, prefix: str = "") -> dict[str, float]:
    """Nested JSON -> {'a.b.c': number} for every number (booleans and strings are skipped)."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return {prefix: float(obj)}
    return {}


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def differences(root: Path, rev: str, tolerance: float) -> tuple[list[str], int]:
    """-> (one line per number that moved more than `tolerance` or is missing, numbers compared)."""
    files = sorted(set(_git(root, "ls-files", "--", *PATTERNS).split()))
    if not files:
        return [f"no committed metrics files at {rev} ({', '.join(PATTERNS)})"], 0
    problems, compared = [], 0
    for rel in files:
        try:
            old = flatten(json.loads(_git(root, "show", f"{rev}:{rel}")))
        except subprocess.CalledProcessError:
            continue  # new file, nothing committed to compare with
        try:
            new = flatten(json.loads((root / rel).read_text()))
        except (OSError, ValueError) as exc:
            problems.append(f"{rel}: cannot read the fresh file ({exc})")
            continue
        for key, value in old.items():
            if any(t in key for t in TIMINGS):
                continue
            compared += 1
            fresh = new.get(key)
            if fresh is None or not math.isfinite(fresh):
                problems.append(f"{rel}: {key} committed {value}, now {fresh}")
            elif abs(fresh - value) > tolerance:
                problems.append(f"{rel}: {key} committed {value}, now {fresh} (diff {fresh - value:+.4g})")
    return problems, compared


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="HEAD", help="the commit whose results are expected (default HEAD)")
    ap.add_argument("--tolerance", type=float, default=0.0, help="largest accepted absolute difference")
    args = ap.parse_args(argv)
    problems, compared = differences(REPO_ROOT, args.rev, args.tolerance)
    for line in problems[:40]:
        print(line)
    if len(problems) > 40:
        print(f"... and {len(problems) - 40} more")
    verdict = "reproduced" if not problems else "DIFFERENT"
    print(f"results {verdict}: {compared} committed numbers compared with tolerance {args.tolerance}, "
          f"{len(problems)} differ")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
