"""What each `dvc.yaml` stage runs, and whether its `deps:` and `params:` cover it.

`dvc repro` reruns a stage only when a listed dependency changes, so a module a stage imports but does not
list, or a params key it reads but does not list, lets stale results pass as current. This module derives the
code a stage runs from its notebook (every `import` inside `fgnet_core`, also those inside functions, followed
transitively) and compares it, and any recorded params reads, with what `dvc.yaml` declares. It reads
`dvc.yaml` as data, so new stages are checked as soon as they exist.
"""
from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

PACKAGE = "fgnet_core"
_NOTEBOOK = re.compile(r"papermill\s+(\S+\.ipynb)\s")
_INTERPOLATED = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*\}")


@dataclass(frozen=True)
class StageSpec:
    """One stage of dvc.yaml as written (a `foreach`/`matrix` stage once, its `${item...}` left in place)."""

    name: str
    cmd: str
    notebook: str | None  # the papermill input notebook, relative to the repository root
    deps: tuple[str, ...]
    params: tuple[str, ...]  # params.yaml keys (dotted); entries of other params files are kept as 'file:key'

    @property
    def cmd_params(self) -> tuple[str, ...]:
        """params.yaml keys interpolated into the command: DVC reruns the stage when the command changes."""
        keys = (k for k in _INTERPOLATED.findall(self.cmd) if k != "item" and not k.startswith("item."))
        return tuple(dict.fromkeys(keys))


def read_stages(dvc_yaml: str | Path) -> dict[str, StageSpec]:
    """Every stage of a dvc.yaml file by name."""
    doc = yaml.safe_load(Path(dvc_yaml).read_text()) or {}
    stages = {}
    for name, stage in (doc.get("stages") or {}).items():
        body = stage.get("do", stage) if isinstance(stage, Mapping) else {}
        cmd = body.get("cmd", "")
        cmd = " ".join(cmd) if isinstance(cmd, list) else " ".join(str(cmd).split())
        match = _NOTEBOOK.search(cmd + " ")
        stages[name] = StageSpec(name, cmd, match.group(1) if match else None,
                                 tuple(_entry_names(body.get("deps", []))), tuple(_param_names(body.get("params", []))))
    return stages


def _entry_names(entries: Iterable) -> list[str]:
    """`- path` and `- path: {options}` entries alike."""
    return [next(iter(e)) if isinstance(e, Mapping) else str(e) for e in entries]


def _param_names(entries: Iterable) -> list[str]:
    names = []
    for entry in entries:
        if isinstance(entry, Mapping):  # `- other.yaml: [keys]`
            for file, keys in entry.items():
                names += [k if file == "params.yaml" else f"{file}:{k}" for k in (keys or [])]
        else:
            names.append(str(entry))
    return names


# ------------------------------------------------------------------------------------------------- imports

def notebook_source(path: str | Path) -> str:
    """The code cells of a notebook, one after another (IPython magics and shell lines dropped)."""
    cells = json.loads(Path(path).read_text())["cells"]
    lines = []
    for cell in cells:
        if cell.get("cell_type") == "code":
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            lines += [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return "\n".join(lines) + "\n"


def imported_modules(source: str, root: str | Path, module: str | None = None,
                     is_package: bool = False) -> set[str]:
    """`fgnet_core` modules a piece of code imports anywhere (module level or inside functions).

    `module` names the code's own module, for relative imports. `from pkg import name` counts as importing
    `pkg.name` when that is a module, else `pkg`.
    """
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if alias.name != "*" and module_file(sub, root) else base)
    return {m for m in found if (m == PACKAGE or m.startswith(PACKAGE + ".")) and module_file(m, root)}


def _absolute(node: ast.ImportFrom, module: str | None, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    if module is None:
        raise ValueError("a relative import outside a package")
    parts = module.split(".")
    keep = len(parts) - node.level + (1 if is_package else 0)
    return ".".join(parts[:keep] + ([node.module] if node.module else []))


def module_file(module: str, root: str | Path) -> PurePosixPath | None:
    """`fgnet_core.a.b` -> `fgnet_core/a/b.py` or `fgnet_core/a/b/__init__.py` (relative to root), if it exists."""
    rel = PurePosixPath(*module.split("."))
    for candidate in (rel.with_suffix(".py"), rel / "__init__.py"):
        if (Path(root) / candidate).is_file():
            return candidate
    return None


def import_closure(modules: Iterable[str], root: str | Path) -> dict[str, int]:
    """Every module the given ones import, transitively, with its import depth (0: given), plus the
    packages (`__init__.py`) Python executes on the way to each."""
    depth: dict[str, int] = {}
    queue = [(m, 0) for m in sorted(set(modules))]
    while queue:
        name, level = queue.pop(0)
        if name in depth:
            continue
        depth[name] = level
        path = module_file(name, root)
        if path is None:
            continue
        is_package = path.name == "__init__.py"
        source = (Path(root) / path).read_text()
        parents = [".".join(name.split(".")[:k]) for k in range(1, len(name.split(".")))]
        for dep in sorted(imported_modules(source, root, name, is_package) | set(parents)):
            if dep not in depth:
                queue.append((dep, level + 1))
    return depth


def stage_code(stage: StageSpec, root: str | Path) -> dict[str, int]:
    """Files (relative paths) of every `fgnet_core` module a stage's notebook runs -> import depth."""
    if stage.notebook is None:
        return {}
    direct = imported_modules(notebook_source(Path(root) / stage.notebook), root)
    return {str(module_file(m, root)): d for m, d in import_closure(direct, root).items() if module_file(m, root)}


def covered(path: str, deps: Iterable[str]) -> bool:
    """True when `path` is a dep or lies below a dep (a directory dep covers every file under it)."""
    target = PurePosixPath(path)
    return any(target == PurePosixPath(d) or PurePosixPath(d) in target.parents for d in deps)


def missing_code_deps(stage: StageSpec, root: str | Path) -> list[str]:
    """Modules the stage runs that its `deps:` does not cover, the notebook itself included."""
    files = sorted(stage_code(stage, root)) + ([stage.notebook] if stage.notebook else [])
    return [f for f in files if not covered(f, stage.deps)]


# -------------------------------------------------------------------------------------------------- params

def param_covered(key: str, entries: Iterable[str]) -> bool:
    """True when a dotted key read is an entry or lies below one (`train` covers `train.recipes.tiny.lr`)."""
    return any(key == e or key.startswith(e + ".") for e in entries)


def deepest_reads(keys_read: Iterable[str]) -> set[str]:
    """Recorded reads without the mappings that were only walked through (`a` when `a.b` was read)."""
    keys = set(keys_read)
    return {k for k in keys if not any(other.startswith(k + ".") for other in keys)}


def missing_params(stage: StageSpec, keys_read: Iterable[str]) -> list[str]:
    """Params keys the stage's code read that neither its `params:` nor its command's `${...}` cover."""
    entries = stage.params + stage.cmd_params
    return sorted(k for k in deepest_reads(keys_read) if not param_covered(k, entries))


def notebook_param_reads(source: str, name: str = "config") -> set[str]:
    """Dotted keys a notebook reads from its config: `config.runtime.device` -> 'runtime.device'.

    Constant subscripts count as keys too (`params["a"]["b"]` -> 'a.b', for dict-style access); a subscript that is
    not a constant string ends the key there (`params["x"][params["y"]]` -> 'x', 'y').
    """
    keys = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.Subscript, ast.Attribute)):
            continue
        chain, inner = [], node
        while isinstance(inner, (ast.Subscript, ast.Attribute)):
            if isinstance(inner, ast.Attribute):
                chain.append(inner.attr)
            else:
                index = inner.slice
                chain.append(index.value if isinstance(index, ast.Constant) and isinstance(index.value, str) else None)
            inner = inner.value
        if isinstance(inner, ast.Name) and inner.id == name:
            chain.reverse()
            path = []
            for part in chain:
                if part is None:
                    break
                path.append(part)
            if path:
                keys.add(".".join(path))
    return keys
