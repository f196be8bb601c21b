"""Atomic file writes: a temporary file beside the target, then a rename, so readers (DVC, a resumed run,
another process) never see half a file. `atomic_path` is the one mechanism; the writers below use it.

A transfer that may stop and continue in a later run (a download) streams into `part_path(target)` instead, a
fixed hidden name that outlives the run, and `publish` renames it into place once it is whole."""
from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary path beside `path` (unique, so concurrent writers never share one) to write to; when
    the block ends it is renamed over `path` (mode 0644), and when the block raises it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def part_path(path: str | os.PathLike) -> Path:
    """The hidden `.<name>.part` beside `path`: where a resumable transfer streams; kept when a run stops."""
    path = Path(path)
    return path.with_name(f".{path.name}.part")


def publish(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Rename a finished temporary file over `path` (mode 0644) -> `path`."""
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
    os.replace(tmp, path)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2) + "\n")


def write_csv_rows(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Rows of dicts as CSV; the header is the union of their keys in first-seen order."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)
