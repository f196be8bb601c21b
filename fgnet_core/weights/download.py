"""Downloading the weights: resumable, placed atomically, sizes and SHA-256 recorded on first download.

Bytes stream into a hidden `.<name>.part` beside the destination (`fgnet_core.atomic.part_path`); an
interrupted transfer keeps it and the next run asks the server for the rest (HTTP Range). The file is renamed
into place only once complete (and matching the published or recorded size / hash), so a file at its path is
always whole. Google Drive links go through `gdown` (which resumes too); a `base_url` mirror or a direct URL
uses plain HTTP(S). `OfflineError` means the source could not be reached at all (no network, DNS, refused).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

from fgnet_core.atomic import part_path, publish, write_text

CHUNK = 1 << 20
RECORD_NAME = "weights-record.json"  # in the checkpoints folder: {path relative to root: {size, sha256, source}}


class DownloadError(Exception):
    """A transfer that did not complete; the message says what to do (usually: rerun to resume)."""


class OfflineError(DownloadError):
    """The source could not be reached at all."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _offline(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, (ConnectionRefusedError, socket.gaierror, socket.timeout, TimeoutError, OSError)) \
        and not isinstance(exc, urllib.error.HTTPError)


def fetch_url(url: str, dest: Path, *, timeout: float = 30.0, progress=None) -> Path:
    """Download url into part_path(dest), resuming what is there -> the part file (complete).

    Raises OfflineError when nothing could be reached, DownloadError when the transfer broke (the part
    file is kept for the next run) or the server refused.
    """
    part = part_path(dest)
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part file is complete
            return part
        raise DownloadError(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        if _offline(exc):
            raise OfflineError(f"cannot reach {url} ({getattr(exc, 'reason', exc)})") from None
        raise DownloadError(f"{url}: {exc}") from None
    with response:
        length = response.headers.get("Content-Length")
        if response.status == 206 and have:
            mode, total = "ab", have + int(length) if length else None
        else:  # 200: the server sends the whole file (it ignored or cannot serve the range)
            mode, total, have = "wb", int(length) if length else None, 0
        received = have
        if progress is not None:
            progress(received, total)
        try:
            with open(part, mode) as out:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    received += len(block)
                    if progress is not None:
                        progress(received, total)
        except (http.client.IncompleteRead, ConnectionError, socket.timeout, TimeoutError, OSError) as exc:
            raise DownloadError(f"{url}: transfer interrupted after {received} of {total or '?'} bytes "
                                f"({type(exc).__name__}); rerun to resume") from None
    if total is not None and received != total:
        raise DownloadError(f"{url}: transfer interrupted after {received} of {total} bytes; rerun to resume")
    return part


def fetch_gdrive(file_id: str, dest: Path, *, progress: bool = True) -> Path:
    """Download a Google Drive file with gdown (resumable) into part_path(dest) -> the part file."""
    try:
        import gdown
    except ImportError:
        raise DownloadError("Google Drive downloads need the gdown package (pip install gdown)") from None
    part = part_path(dest)
    part.parent.mkdir(parents=True, exist_ok=True)
    try:
        got = gdown.download(id=file_id, output=str(part), quiet=not progress, resume=True)
    except Exception as exc:  # requests' connection errors, gdown's FileURLRetrievalError, ...
        text = " ".join(str(exc).split())[:300] or type(exc).__name__
        if "ConnectionError" in type(exc).__name__ or "Max retries" in text or "resolve" in text.lower():
            raise OfflineError(f"cannot reach Google Drive for id {file_id} ({type(exc).__name__})") from None
        raise DownloadError(f"Google Drive id {file_id}: {text}") from None
    if not got or not part.is_file():
        raise DownloadError(f"Google Drive id {file_id}: gdown returned no file")
    return part


# ------------------------------------------------------------------------------------------- the record
def record_path(root: Path) -> Path:
    return Path(root) / "checkpoints" / RECORD_NAME


def read_record(root: Path) -> dict:
    path = record_path(root)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_record(root: Path, record: dict) -> None:
    write_text(record_path(root), json.dumps(record, indent=1, sort_keys=True) + "\n")


def place(part: Path, dest: Path, *, size: int | None, sha256: str | None) -> tuple[int, str]:
    """Check a complete part file against the expected size / hash, then rename it into place -> (size, sha)."""
    got_size, got_sha = part.stat().st_size, sha256_of(part)
    if size is not None and got_size != size:
        part.unlink()
        raise DownloadError(f"{dest}: downloaded {got_size} bytes, expected {size}; removed, rerun to fetch again")
    if sha256 is not None and got_sha != sha256:
        part.unlink()
        raise DownloadError(f"{dest}: SHA-256 {got_sha[:12]}... differs from the expected {sha256[:12]}...; "
                            "removed, rerun to fetch again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    publish(part, dest)
    return got_size, got_sha
