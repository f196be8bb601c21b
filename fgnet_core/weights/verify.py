"""Is a weights file what its official format says? Keys, shapes and dtypes, read with weights_only loading.

A manifest (formats/*.json) maps each entry of the saved dict to either a state dict description
{key: [shape, dtype]} or one tensor [shape, dtype]; `required` lists the entries a file must have
(others are optional). Every problem is one line naming the entry and key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fgnet_core.checkpoints import CheckpointError, read_checkpoint

MAX_PROBLEMS = 8  # per file: the first few say enough


def _is_tensor_spec(spec: Any) -> bool:
    return isinstance(spec, list) and len(spec) == 2 and isinstance(spec[0], list) and isinstance(spec[1], str)


def _check_tensor(value: Any, spec: list, where: str, problems: list[str], finite: bool) -> None:
    shape, dtype = spec
    if not isinstance(value, torch.Tensor):
        problems.append(f"{where}: holds a {type(value).__name__}, expected a {dtype} tensor {shape}")
    elif list(value.shape) != list(shape):
        problems.append(f"{where}: shape {list(value.shape)}, expected {shape}")
    elif str(value.dtype).removeprefix("torch.") != dtype:
        problems.append(f"{where}: dtype {str(value.dtype).removeprefix('torch.')}, expected {dtype}")
    elif finite and value.is_floating_point() and not torch.isfinite(value).all():
        problems.append(f"{where}: holds NaN or inf values")


def check_against_manifest(obj: Any, manifest: dict, finite: bool = True) -> list[str]:
    """Problems of a loaded checkpoint against a format manifest (empty: it matches)."""
    if not isinstance(obj, dict):
        return [f"expected a dict of entries, found a {type(obj).__name__}"]
    problems: list[str] = []
    for entry in manifest.get("required", []):
        if entry not in obj:
            problems.append(f"missing entry '{entry}' (found: {', '.join(sorted(map(str, obj)))})")
    for entry, spec in manifest["entries"].items():
        if entry not in obj:
            continue
        value = obj[entry]
        if _is_tensor_spec(spec):
            _check_tensor(value, spec, f"[{entry}]", problems, finite)
            continue
        if not isinstance(value, dict):
            problems.append(f"[{entry}]: holds a {type(value).__name__}, expected a state dict")
            continue
        for key in spec:
            if key not in value:
                problems.append(f"[{entry}] missing key '{key}'")
        for key in value:
            if key not in spec:
                problems.append(f"[{entry}] unexpected key '{key}'")
        for key, kspec in spec.items():
            if key in value:
                _check_tensor(value[key], kspec, f"[{entry}] '{key}'", problems, finite)
        if len(problems) > MAX_PROBLEMS:
            break
    if "opts_values" in manifest:  # pSp: FG-Net reads opts['input_nc'] (and output_size)
        opts = obj.get("opts")
        if not isinstance(opts, dict) or "input_nc" not in opts:
            problems.append("[opts]: expected a dict of pSp options with 'input_nc'")
    if len(problems) > MAX_PROBLEMS:
        problems = problems[:MAX_PROBLEMS] + [f"... and {len(problems) - MAX_PROBLEMS} more"]
    return problems


def verify_file(path: str | Path, manifest: dict) -> list[str]:
    """Problems of one file against its format (not there, unreadable, wrong keys / shapes / dtypes, NaN)."""
    path = Path(path)
    if not path.is_file():
        return ["not found"]
    try:
        obj = read_checkpoint(path, "weights")  # weights_only=True: nothing in the file runs
    except CheckpointError as exc:
        return [str(exc).removeprefix(f"{path}: ")]
    return check_against_manifest(obj, manifest)


def manifest_of(obj: dict, required: list[str] | None = None) -> dict:
    """The manifest describing a checkpoint dict (for files in a format of one's own, e.g. a test mirror)."""
    entries: dict = {}
    for entry, value in obj.items():
        if isinstance(value, torch.Tensor):
            entries[entry] = [list(value.shape), str(value.dtype).removeprefix("torch.")]
        elif isinstance(value, dict) and all(isinstance(v, torch.Tensor) for v in value.values()):
            entries[entry] = {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in value.items()}
    return {"entries": entries, "required": list(required if required is not None else entries)}
