"""`python -m fgnet_core.pipeline.check_metrics FILE KEY...`: fail unless FILE holds finite numbers at KEYs."""
from __future__ import annotations

import json
import math
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: check_metrics FILE KEY...", file=sys.stderr)
        return 2
    path, keys = argv[0], argv[1:]
    try:
        metrics = json.loads(open(path).read())
    except (OSError, ValueError) as exc:
        print(f"{path}: cannot read metrics ({exc})", file=sys.stderr)
        return 1
    bad = [k for k in keys if not isinstance(metrics.get(k), (int, float)) or not math.isfinite(metrics[k])]
    if bad:
        print(f"{path}: missing or non-finite metric(s) {', '.join(bad)}", file=sys.stderr)
        return 1
    print(f"{path}: " + ", ".join(f"{k} = {metrics[k]}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
