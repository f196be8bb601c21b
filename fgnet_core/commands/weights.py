"""`fgnet weights list | download | verify`: the official weights the preset and `--model bp4d|disfa` need."""
from __future__ import annotations

import argparse
import sys

from fgnet_core.paths import REPO_ROOT


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "weights", help="list, download and verify the official weights (StyleGAN2, pSp, FG-Net models)",
        description="The official preset needs the StyleGAN2 and pSp files; `--model bp4d|disfa` needs the FG-Net "
                    "model.pth and the pSp file (StyleGAN2 optional). `download` resumes interrupted transfers, "
                    "places each file only when complete and records its size and SHA-256 in "
                    "checkpoints/weights-record.json; `verify` checks keys, shapes and dtypes against the official "
                    "formats (weights_only loading) and the recorded hashes. Exit status: 0 all good, 1 a file "
                    "missing, failing verification or a download that did not complete (rerun to resume), "
                    "2 usage error.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("list", "what each target needs and what is present"),
                       ("download", "fetch the missing files"),
                       ("verify", "check the files against the official formats")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--for", dest="target", default="all", choices=["all", "official", "bp4d", "disfa"],
                       help="the official preset, one of the released models, or all (default)")
        p.add_argument("--root", metavar="DIR", help="workspace root holding checkpoints/ (default: this repository)")
        if name == "download":
            p.add_argument("--base-url", metavar="URL",
                           help="a mirror serving the files under their paths (URL/checkpoints/encoder.pt ...)")
            p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="network timeout (default 30)")
            p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.set_defaults(func=run)


def _error(message: str) -> int:
    print(f"fgnet weights: error: {message}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    # deferred: `fgnet --help` builds the parser without loading any command's dependencies
    from fgnet_core.weights import actions
    from fgnet_core.weights.registry import files_for, manual_instructions

    root = Path(args.root) if args.root else REPO_ROOT
    chosen = files_for(args.target, root)
    needed = [(f, p) for f, p in chosen if args.target == "all" or args.target in f.needed_by]
    present_optional = [(f, p) for f, p in chosen if (f, p) not in needed and p.is_file()]
    if args.action == "list":
        for st in actions.status(chosen):
            need = ", ".join(st.file.needed_by) + (f"; optional for {', '.join(st.file.optional_for)}"
                                                  if st.file.optional_for else "")
            size = f" ({st.size} bytes)" if st.size is not None else ""
            print(f"{st.state:8s} {st.path}{size}\n         {st.file.what}; needed by {need}; {st.file.source()}")
        return 0 if all(st.state == "present" for st in actions.status(needed)) else 1
    if args.action == "download":
        try:
            actions.download(needed, root, base_url=args.base_url, progress=not args.no_progress,
                             timeout=args.timeout, log=lambda line: print(line, file=sys.stderr))
        except actions.OfflineError as exc:
            missing = [(f, p) for f, p in needed if not p.is_file()]
            print(f"fgnet weights: offline: {exc}; place the files by hand:", file=sys.stderr)
            print("\n".join(manual_instructions(missing)), file=sys.stderr)
            return 1
        except actions.DownloadError as exc:
            return _error(str(exc))
        except KeyboardInterrupt:
            print("fgnet weights: interrupted; rerun the same command to resume", file=sys.stderr)
            return 130
        return 0
    results = actions.verify(needed + present_optional, root)
    for rel, problems in results.items():
        print(f"{'ok' if not problems else 'FAILED':6s} {rel}")
        for problem in problems:
            print(f"       {problem}")
    return 0 if all(not p for p in results.values()) else 1
