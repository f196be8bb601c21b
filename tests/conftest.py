"""Shared test fixtures: locations of the reference facts, and small seeded models."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fgnet_core.paths import REPO_ROOT

REFERENCE_DIR = REPO_ROOT.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The shared reference facts (official label files, checkpoint manifests); skip when absent."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip("shared reference facts not available beside the repository")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def manifests(reference_dir) -> dict:
    """Checkpoint manifests: {name: {entry: {key: [shape, dtype]}}}."""
    out = {}
    for name in ("stylegan2_ffhq_config_f", "psp_ffhq_encode", "fgnet_au_model"):
        out[name] = json.loads((reference_dir / "checkpoint-formats" / f"{name}.json").read_text())
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A seeded, untrained `tiny` FG-Net saved as one of our training checkpoints (for BP4D)."""
    from fgnet_core.checkpoints import save_training_checkpoint
    from fgnet_core.models.fgnet import FGNet

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_training_checkpoint(path, FGNet("tiny"), epoch=0, params={"dataset": "BP4D"})
    return path


def seeded_state(shapes: dict[str, list], seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict of the given {key: [shape, dtype]} filled with seeded values.

    Variances are positive and FIR kernels keep their fixed value shape so the model stays sane.
    """
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, (shape, dtype) in shapes.items():
        if dtype == "int64":
            state[key] = torch.tensor(7, dtype=torch.int64) if not shape else torch.zeros(shape, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.5
    return state
