"""Project wiring: environment.yml mirrors pyproject, the CLI lists its commands, no import cycles."""
from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import tomllib

import yaml

import fgnet_core
from fgnet_core.paths import REPO_ROOT


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
