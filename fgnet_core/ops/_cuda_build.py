"""Lazy, cached build of the CUDA sources in ``cuda/``.

Nothing here runs at import time. The first CUDA call of an op asks
:func:`get_ops`, which compiles ``cuda/*.cpp`` and ``cuda/*.cu`` into one
extension with ``torch.utils.cpp_extension.load`` (ninja). The build directory
is keyed by a hash of the sources plus the torch/CUDA/Python versions, so a
rebuild happens only when one of them changes; cpp_extension's file baton
keeps concurrent processes from building the same directory at once. A
process tries to build at most once and remembers a failure.

Build root: ``$FGNET_OPS_BUILD_ROOT``, else ``$TORCH_EXTENSIONS_DIR/fgnet_core``,
else ``$XDG_CACHE_HOME/fgnet_core/ops`` (default ``~/.cache/fgnet_core/ops``).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import threading
import uuid
import warnings
from pathlib import Path
from typing import List, Optional

import torch

EXTENSION_NAME = "fgnet_ops"
SOURCE_DIR = Path(__file__).resolve().parent / "cuda"
IMPLS = ("auto", "ref", "cuda")

_lock = threading.Lock()
_module = None  # the loaded extension, once built
_error: Optional[str] = None  # why the build failed, once tried
_warned = False


# ----------------------------------------------------------------------------
# Sources and build directory


def source_files() -> List[Path]:
    """The extension's sources: bindings, kernels and shared headers."""
    files = [p for p in sorted(SOURCE_DIR.iterdir()) if p.suffix in (".cpp", ".cu", ".h", ".cuh")]
    if not any(p.suffix == ".cu" for p in files):
        raise FileNotFoundError(f"no CUDA sources found in {SOURCE_DIR}")
    return files


def source_digest(files: Optional[List[Path]] = None) -> str:
    """Hash of the source bytes and of the toolchain versions they are built for."""
    h = hashlib.sha256()
    for path in files if files is not None else source_files():
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update(f"torch={torch.__version__} cuda={torch.version.cuda} py={sys.version_info[:2]}".encode())
    return h.hexdigest()[:16]


def build_root() -> Path:
    """Where hashed build directories live (see the module docstring)."""
    if os.environ.get("FGNET_OPS_BUILD_ROOT"):
        return Path(os.environ["FGNET_OPS_BUILD_ROOT"]).expanduser()
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        return Path(os.environ["TORCH_EXTENSIONS_DIR"]).expanduser() / "fgnet_core"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "fgnet_core" / "ops"


def _stage_sources(files: List[Path], build_dir: Path) -> List[str]:
    """Copy sources into the hashed build dir so ninja sees stable paths.

    Copies land in a private temp dir first and are moved in with one rename,
    so a concurrent process never sees a half-written tree.
    """
    src_dir = build_dir / "src"
    if not src_dir.is_dir():
        build_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".src-{uuid.uuid4().hex[:8]}-", dir=build_dir))
        for path in files:
            shutil.copyfile(path, tmp / path.name)
        try:
            os.replace(tmp, src_dir)
        except OSError:  # another process won the race; its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)
    return [str(src_dir / p.name) for p in files if p.suffix in (".cpp", ".cu")]


def _ensure_ninja_on_path() -> None:
    """cpp_extension shells out to ``ninja``; a pip-installed one may not be on PATH."""
    if shutil.which("ninja"):
        return
    candidates = [os.path.dirname(sys.executable)]
    try:
        import ninja  # type: ignore

        candidates.insert(0, ninja.BIN_DIR)
    except Exception:
        pass
    for directory in candidates:
        if os.path.isfile(os.path.join(directory, "ninja")):
            os.environ["PATH"] = directory + os.pathsep + os.environ.get("PATH", "")
            return


def _build(verbose: bool = False):
    """Compile (or load from cache) the extension; raises on failure."""
    from torch.utils import cpp_extension  # deferred: heavy, and only needed here

    if not torch.cuda.is_available():
        raise RuntimeError("torch.cuda.is_available() is False")
    if cpp_extension.CUDA_HOME is None:
        raise RuntimeError("no CUDA toolkit found (set CUDA_HOME or put nvcc on PATH)")
    _ensure_ninja_on_path()
    cpp_extension.verify_ninja_availability()

    files = source_files()
    build_dir = build_root() / f"{EXTENSION_NAME}-{source_digest(files)}"
    sources = _stage_sources(files, build_dir)
    return cpp_extension.load(
        name=EXTENSION_NAME,
        sources=sources,
        build_directory=str(build_dir),
        extra_cflags=["-O3"],
        extra_cuda_cflags=["-O3", "-lineinfo"],
        verbose=verbose,
    )


# ----------------------------------------------------------------------------
# Public helpers


def get_ops(required: bool = False, verbose: bool = False):
    """Return the compiled extension, building it on first use.

    Returns None when the build failed and ``required`` is False; raises
    RuntimeError with the build error when ``required`` is True.
    """
    global _module, _error
    if _module is None and _error is None:
        with _lock:
            if _module is None and _error is None:
                try:
                    _module = _build(verbose=verbose)
                except Exception as exc:  # compiler errors surface as many exception types
                    _error = f"{type(exc).__name__}: {exc}"
    if _module is None and required:
        raise RuntimeError(f"fgnet_core.ops: building the CUDA extension failed ({_error})")
    return _module


def build_error() -> Optional[str]:
    """The remembered build failure, or None (not tried yet, or succeeded)."""
    return _error


def cuda_available_for_ops() -> bool:
    """True when a CUDA device exists and the extension builds (builds it if needed)."""
    return torch.cuda.is_available() and get_ops() is not None


def use_cuda(x: torch.Tensor, impl: str, op_name: str) -> bool:
    """Decide between the CUDA kernel and the reference for one call.

    'ref' never builds; 'cuda' insists (clear error on CPU tensors or a failed
    build); 'auto' uses CUDA only for CUDA tensors and falls back to the
    reference, with one warning per process, if the build fails.
    """
    global _warned
    if impl not in IMPLS:
        raise ValueError(f"{op_name}: impl must be one of {IMPLS}, got {impl!r}")
    if impl == "ref":
        return False
    if impl == "cuda":
        if not x.is_cuda:
            raise RuntimeError(f"{op_name}(impl='cuda') needs a CUDA tensor, got device {x.device}")
        get_ops(required=True)
        return True
    if not x.is_cuda:
        return False
    if get_ops() is not None:
        return True
    if not _warned:
        _warned = True
        warnings.warn(
            f"fgnet_core.ops: CUDA extension unavailable, using the PyTorch reference ({_error})",
            RuntimeWarning,
            stacklevel=3,
        )
    return False


def _reset_for_tests() -> None:
    """Forget build state (tests only)."""
    global _module, _error, _warned
    with _lock:
        _module, _error, _warned = None, None, False
