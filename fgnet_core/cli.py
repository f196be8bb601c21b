"""`fgnet` command line: one sub-command per module in fgnet_core/commands/.

Each command module defines `register(subparsers)`, which adds its parser and sets `func(args) -> int`
(the exit code). Modules are imported only to build the parser; heavy imports live inside `func`.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import fgnet_core.commands as _commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fgnet", description="FG-Net facial action unit workspace")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"fgnet_core.commands.{info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
