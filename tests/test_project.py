"""Project wiring: environment.yml mirrors pyproject, the CLI lists its commands, no import cycles, and the
packages form layers whose imports only point down."""
from __future__ import annotations

import ast
import importlib
import shutil
import pkgutil
import subprocess
import sys
import tomllib

from pathlib import Path

import yaml

import fgnet_core
from fgnet_core.paths import REPO_ROOT
from fgnet_core.pipeline.stage_deps import imported_modules


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"]) | {"-e ."}
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert set(pip_section) == wanted
    assert "torch==2.13.0" in wanted  # a bare `torch` would pull a CUDA build


IMPORT_EACH = """
import importlib, pkgutil, sys, torch
import fgnet_core
names = [m.name for m in pkgutil.walk_packages(fgnet_core.__path__, "fgnet_core.")]
for name in names:
    for loaded in [m for m in sys.modules if m.startswith("fgnet_core")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as exc:
        print(f"FAIL {name}: {type(exc).__name__}: {exc}")
print(f"checked {len(names)}")
"""


def test_every_module_imports_first_on_its_own():
    """Each module imported first in a clean module table: an import cycle or missing dependency fails."""
    out = subprocess.run([sys.executable, "-c", IMPORT_EACH], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "FAIL" not in out.stdout, out.stdout
    assert "checked" in out.stdout


def test_cli_lists_commands():
    out = subprocess.run([sys.executable, "-m", "fgnet_core.cli", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0
    for command in ("bench", "align", "ingest"):
        assert command in out.stdout


def test_importing_the_package_builds_nothing():
    code = ("import sys, fgnet_core.models, fgnet_core.checkpoints; "
            "print('torch.utils.cpp_extension' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
    assert importlib.util.find_spec("fgnet_core.ops") is not None


# ------------------------------------------------------------------------------------------------ layering

# Bottom to top (README, "Layout"): a unit (a subpackage or a top-level module of fgnet_core) imports only from
# itself and from units of lower layers; units that share a layer do not import each other.
LAYERS = (
    ("paths", "atomic"),                 # repository paths, atomic file writes: standard library only
    ("data",),                           # AU tables, corpora, labels, alignment, targets, datasets: no network
    ("democorpus",),                     # the demo and pretraining corpus renderer (writes the data layer's formats)
    ("ops",),                            # StyleGAN2 kernels
    ("presets",),                        # model presets
    ("models",),                         # the network (names its outputs by the data layer's AU tables)
    ("checkpoints",),                    # checkpoint formats of the network
    ("evaluation",),                     # F1, scoring a model over a set
    ("training",),                       # the training loops
    ("config",),                         # params.yaml, parsed and checked once (uses the training recipe's fields)
    ("pipeline",),                       # params.yaml, workspace layout, the stages the notebooks call
    ("predict", "weights", "bench"),     # applications: `--model demo` is the model the pipeline trains
    ("explore",),                        # the interactive explorers (they reuse predict's model loading)
    ("commands",),                       # `fgnet` sub-commands
    ("cli",),                            # the `fgnet` entry point
)
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _has_reason(lines: list[str], node: ast.stmt) -> bool:
    """A comment on the import's own line(s) or on the line just above it (or above its block of imports)."""
    first = node.lineno - 1
    if any("#" in ln for ln in lines[first:node.end_lineno]):
        return True
    i = first - 1
    while i >= 0 and lines[i].strip().startswith(("import ", "from ")):
        if "#" in lines[i]:
            return True
        i -= 1
    return i >= 0 and lines[i].strip().startswith("#")


def layering_violations(root) -> list[str]:
    """Every import between fgnet_core units that breaks LAYERS, at module level or inside functions, and every
    fgnet_core import inside a function that does not say why it is deferred."""
    root = Path(root)
    problems = []
    for path in sorted((root / "fgnet_core").rglob("*.py")):
        rel = path.relative_to(root)
        is_package = path.name == "__init__.py"
        module = ".".join(rel.with_suffix("").parts[:-1] if is_package else rel.with_suffix("").parts)
        source = path.read_text()
        lines = source.splitlines()
        unit = _unit(module)
        tree = ast.parse(source)
        in_function = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                       for n in ast.walk(f)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets = imported_modules(ast.unparse(node), root, module, is_package)
            where = f"{rel}:{node.lineno}"
            for target in sorted(targets):
                other = _unit(target)
                if other == unit or target == "fgnet_core":
                    continue
                if unit not in RANK or other not in RANK:
                    problems.append(f"{where}: {unit} -> {other}: a unit missing from LAYERS")
                elif RANK[other] >= RANK[unit]:
                    kind = "sideways" if RANK[other] == RANK[unit] else "upward"
                    problems.append(f"{where}: {unit} -> {other} points {kind}")
            if targets and id(node) in in_function and not _has_reason(lines, node):
                problems.append(f"{where}: a deferred fgnet_core import without a comment saying why")
    return problems


def test_layers_only_point_down():
    assert not layering_violations(REPO_ROOT), "\n".join(layering_violations(REPO_ROOT))


def test_every_unit_is_in_a_layer():
    units = {_unit(m.name) for m in pkgutil.iter_modules(fgnet_core.__path__, "fgnet_core.")}
    assert units == set(RANK)


def _planted(tmp_path, module: str, code: str):
    """A copy of fgnet_core with `code` appended to `module`'s file."""
    shutil.copytree(REPO_ROOT / "fgnet_core", tmp_path / "fgnet_core",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "cuda"))
    target = tmp_path / Path(*module.split(".")).with_suffix(".py")
    target.write_text(target.read_text() + code)
    return layering_violations(tmp_path)


def test_layering_check_fails_on_a_planted_upward_import(tmp_path):
    code = "\n\ndef _planted():\n    from fgnet_core.pipeline.config import layout  # planted\n    return layout\n"
    got = _planted(tmp_path, "fgnet_core.models.fgnet", code)
    assert len(got) == 1 and "fgnet_core/models/fgnet.py" in got[0] and "models -> pipeline points upward" in got[0]


def test_layering_check_fails_on_planted_module_level_and_relative_imports(tmp_path):
    got = _planted(tmp_path, "fgnet_core.training.loop", "\nfrom ..pipeline import runs  # noqa: E402\n")
    assert len(got) == 1 and "training -> pipeline points upward" in got[0]


def test_layering_check_fails_on_a_sideways_import(tmp_path):
    got = _planted(tmp_path, "fgnet_core.weights.registry", "\nfrom fgnet_core import bench  # noqa: E402\n")
    assert len(got) == 1 and "weights -> bench points sideways" in got[0]


def test_layering_check_wants_a_reason_for_a_deferred_import(tmp_path):
    got = _planted(tmp_path, "fgnet_core.pipeline.report",
                   "\n\ndef _planted():\n    from fgnet_core.data import labels\n    return labels\n")
    assert len(got) == 1 and "without a comment" in got[0]
