"""list / download / verify over a set of weight files: the logic behind `fgnet weights`."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from fgnet_core.atomic import part_path
from fgnet_core.weights.download import (
    DownloadError, OfflineError, fetch_gdrive, fetch_url, place, read_record, sha256_of, write_record,
)
from fgnet_core.weights.registry import WeightFile
from fgnet_core.weights.verify import verify_file


@dataclass
class FileStatus:
    file: WeightFile
    path: Path
    state: str       # present | missing | partial (a download to resume)
    size: int | None


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def status(chosen: list[tuple[WeightFile, Path]]) -> list[FileStatus]:
    out = []
    for f, path in chosen:
        if path.is_file():
            out.append(FileStatus(f, path, "present", path.stat().st_size))
        elif part_path(path).is_file():
            out.append(FileStatus(f, path, "partial", part_path(path).stat().st_size))
        else:
            out.append(FileStatus(f, path, "missing", None))
    return out


def download(chosen: list[tuple[WeightFile, Path]], root: Path, *, base_url: str | None = None,
             progress: bool = True, timeout: float = 30.0, log=print) -> list[Path]:
    """Fetch every chosen file not yet present -> the paths placed now.

    Raises OfflineError at the first source that cannot be reached, DownloadError when a transfer breaks
    (its part file stays for the next run). Files already present are left alone (`verify` checks them).
    """
    root = Path(root)
    record = read_record(root)
    placed = []
    for f, path in chosen:
        rel = _rel(path, root)
        if path.is_file():
            log(f"present   {rel}")
            continue
        if base_url:
            source = f"{base_url.rstrip('/')}/{rel}"
        else:
            source = f.url or (f"gdrive:{f.gdrive_id}" if f.gdrive_id else None)
        if source is None:
            raise DownloadError(f"{rel}: no download source is known; get it from {f.page}")
        log(f"fetching  {rel} <- {source}")
        bar = _ByteBar(rel) if progress else None
        try:
            if source.startswith("gdrive:"):
                part = fetch_gdrive(f.gdrive_id, path, progress=progress)
            else:
                part = fetch_url(source, path, timeout=timeout, progress=bar)
        finally:
            if bar is not None:
                bar.close()
        known = record.get(rel, {})
        size, sha = place(part, path, size=f.size or known.get("size"), sha256=f.sha256 or known.get("sha256"))
        record[rel] = {"size": size, "sha256": sha, "source": source}
        write_record(root, record)  # after each file: an interrupted run keeps what it recorded
        placed.append(path)
        log(f"placed    {rel} ({size} bytes, sha256 {sha[:12]}...)")
    return placed


class _ByteBar:
    """A tqdm byte bar fed with (received, total)."""

    def __init__(self, name: str):
        from tqdm import tqdm

        self.bar = tqdm(unit="B", unit_scale=True, desc=name, file=sys.stderr, dynamic_ncols=True)

    def __call__(self, received: int, total: int | None) -> None:
        if total is not None and self.bar.total != total:
            self.bar.total = total
        self.bar.n = received
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def verify(chosen: list[tuple[WeightFile, Path]], root: Path) -> dict[str, list[str]]:
    """Relative path -> problems (empty when the file matches its format and its recorded size / hash)."""
    root = Path(root)
    record = read_record(root)
    results = {}
    for f, path in chosen:
        rel = _rel(path, root)
        problems = verify_file(path, f.manifest())
        known = record.get(rel)
        if path.is_file() and known:
            if path.stat().st_size != known.get("size"):
                problems.insert(0, f"size {path.stat().st_size} differs from the {known.get('size')} bytes "
                                   "recorded at download")
            elif known.get("sha256") and sha256_of(path) != known["sha256"]:
                problems.insert(0, "SHA-256 differs from the one recorded at download (changed or corrupt)")
        results[rel] = problems
    return results


__all__ = ["FileStatus", "status", "download", "verify", "DownloadError", "OfflineError"]
