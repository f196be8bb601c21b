"""What every pipeline notebook does first: read the config, set threads, show progress in logs."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from fgnet_core.paths import REPO_ROOT
from fgnet_core.config import Config, load_config
from fgnet_core.config.load import PARAMS_FILE
from fgnet_core.pipeline.config import Layout, check_notebook_parameters

INJECTED_HEADER = "# Parameters"  # first line of the cell papermill injects after the `parameters` cell


def _assigned_names(source: str) -> dict[str, None]:
    """Names a cell assigns at top level, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    names: dict[str, None] = {}
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        for target in targets:
            if isinstance(target, ast.Name):
                names[target.id] = None
    return names


def check_injected_parameters(history: list[str] | None = None) -> None:
    """Fail on a papermill parameter the notebook does not declare (papermill itself only warns).

    `history` is the kernel's executed cell sources (IPython's `In`); the last cell papermill injected is
    compared with the cell run just before it, the notebook's own `parameters` cell. Outside papermill
    there is no injected cell and nothing to check.
    """
    if history is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
        history = list(shell.user_ns.get("In", [])) if shell is not None else []
    for k in range(len(history) - 1, 0, -1):
        if history[k].lstrip().startswith(INJECTED_HEADER):
            check_notebook_parameters(_assigned_names(history[k]), _assigned_names(history[k - 1]))
            return


def stage_setup(params_file: str | Path = PARAMS_FILE) -> tuple[Config, Layout]:
    """The checked config of params.yaml and the pipeline's layout; torch's threads set to `runtime.threads`.

    A notebook's own parameters are its loop variables (e.g. `dataset`); papermill may inject only those
    (papermill itself only warns about unknown names).
    """
    check_injected_parameters()
    config = load_config(REPO_ROOT / params_file)
    torch.set_num_threads(config.runtime.threads)
    return config, Layout(REPO_ROOT, config)


def progress(iterable, **kwargs):
    """A text progress bar on stdout: readable in JupyterLab and in papermill's logs alike."""
    return tqdm(iterable, file=sys.stdout, ascii=True, mininterval=5.0, leave=False, **kwargs)


def show(path: str | Path):
    """Display an image file inline (when running in a notebook)."""
    try:
        from IPython.display import Image, display
    except ImportError:  # plain Python
        return None
    return display(Image(filename=str(path)))
