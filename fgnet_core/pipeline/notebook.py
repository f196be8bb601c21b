"""What every pipeline notebook does first: resolve parameters, set threads, show progress in logs."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from tqdm import tqdm

from fgnet_core.paths import REPO_ROOT
from fgnet_core.pipeline.config import Layout, ParamsError, load_params


def stage_setup(params_file: str = "params.yaml", **overrides) -> tuple[dict, Layout]:
    """params.yaml with the notebook's own parameters laid over it (corpus, preset, seed, ...).

    Overrides must name existing top-level keys: papermill only warns about unknown names.
    """
    root = REPO_ROOT
    params = load_params(root / params_file)
    for key, value in overrides.items():
        if key not in params:
            raise ParamsError(f"notebook parameter {key!r} is not a params.yaml key")
        params[key] = value
    threads = params.get("runtime", {}).get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    return params, Layout(root, params)


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
