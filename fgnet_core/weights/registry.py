"""Which published files the official preset and `--model bp4d|disfa` need, where they go and come from.

Sources are the project pages that publish them: FG-Net's README links the pSp encoder and its two AU
models (Google Drive); pSp's README links rosinality's conversion of the official StyleGAN2 FFHQ 1024
generator ('FFHQ StyleGAN'). Sizes and SHA-256 are not published: they are recorded on first download
(`record.py`) and checked from then on. Each file's expected keys, shapes and dtypes are the manifests
in formats/ (the official formats, read with weights_only loading by `verify.py`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fgnet_core.paths import REPO_ROOT
from fgnet_core.pipeline.config import ParamsError, load_params

FORMATS_DIR = Path(__file__).resolve().parent / "formats"
TARGETS = ("official", "bp4d", "disfa")  # the preset that trains from the official weights; the two models
FGNET_PAGE = "https://github.com/ihp-lab/FG-Net#checkpoints"
PSP_PAGE = "https://github.com/eladrich/pixel2style2pixel#pretrained-models"


@dataclass(frozen=True)
class WeightFile:
    key: str                   # short name: stylegan2 | encoder | bp4d | disfa
    path: str                  # where it goes, relative to the workspace root
    what: str                  # one line for people
    format: str | dict         # manifest name in formats/, or the manifest itself
    needed_by: tuple[str, ...]  # TARGETS that cannot run without it
    optional_for: tuple[str, ...] = ()  # TARGETS that use it when present
    gdrive_id: str | None = None  # Google Drive file id as published
    url: str | None = None     # a direct URL (a mirror), used before gdrive_id
    page: str = ""             # the project page that publishes it
    size: int | None = None    # bytes, when published
    sha256: str | None = None  # when published

    def manifest(self) -> dict:
        return self.format if isinstance(self.format, dict) else load_manifest(self.format)

    def source(self) -> str:
        return self.url or (f"https://drive.google.com/uc?id={self.gdrive_id}" if self.gdrive_id else self.page)


@lru_cache(maxsize=8)
def load_manifest(name: str) -> dict:
    """{entries: {entry: {key: [shape, dtype]} | [shape, dtype]}, required: [...], ...} of one official format."""
    return json.loads((FORMATS_DIR / f"{name}.json").read_text(encoding="utf-8"))


OFFICIAL_FILES: tuple[WeightFile, ...] = (
    WeightFile("stylegan2", "checkpoints/stylegan2-ffhq-config-f.pt",
               "StyleGAN2 FFHQ 1024 generator, rosinality format (pSp's 'FFHQ StyleGAN')",
               "stylegan2_ffhq_config_f", needed_by=("official",), optional_for=("bp4d", "disfa"),
               gdrive_id="1EM87UquaoQmk17Q8d5kYIAHqu0dkYqdT", page=PSP_PAGE),
    WeightFile("encoder", "checkpoints/encoder.pt",
               "pSp FFHQ StyleGAN-inversion encoder (psp_ffhq_encode.pt, renamed as FG-Net does)",
               "psp_ffhq_encode", needed_by=("official", "bp4d", "disfa"),
               gdrive_id="1bMTNWkh5LArlaWSc_wa8VKyq2V42T2z0", page=FGNET_PAGE),
    WeightFile("bp4d", "checkpoints/bp4d_0/model.pth", "FG-Net BP4D AU model (fold 0)",
               "fgnet_au_model", needed_by=("bp4d",),
               gdrive_id="1mwOq1gceGTKvcxN0EJywY9VTuXvASgUZ", page=FGNET_PAGE),
    WeightFile("disfa", "checkpoints/disfa_0/model.pth", "FG-Net DISFA AU model (fold 0)",
               "fgnet_au_model", needed_by=("disfa",),
               gdrive_id="1wTeqUNkhi-ONXXFJ4K6AozyOxyHTHog-", page=FGNET_PAGE),
)


def _configured_paths(root: Path) -> dict[str, str]:
    """StyleGAN2 / pSp paths as params.yaml `paths.checkpoints.official` names them (the pipeline reads them
    there)."""
    try:
        names = load_params(root / "params.yaml")["paths"]["checkpoints"]["official"]
        return {k: str(v) for k, v in names.items() if k in ("stylegan", "encoder")}
    except (ParamsError, KeyError, TypeError, OSError):
        return {}


def files_for(target: str = "all", root: str | Path | None = None,
              files: tuple[WeightFile, ...] = OFFICIAL_FILES) -> list[tuple[WeightFile, Path]]:
    """(file, where it goes under root) for one target of TARGETS (required and optional ones), or 'all'."""
    root = Path(root) if root else REPO_ROOT
    if target != "all" and target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)} or all")
    configured = _configured_paths(root) if files is OFFICIAL_FILES else {}
    chosen = []
    for f in files:
        if target == "all" or target in f.needed_by or target in f.optional_for:
            rel = configured.get("stylegan" if f.key == "stylegan2" else f.key, f.path)
            chosen.append((f, root / rel))
    return chosen


def manual_instructions(chosen: list[tuple[WeightFile, Path]]) -> list[str]:
    """One line per file: where to place it by hand and which page publishes it."""
    return [f"  {path}  <- {f.what}: {f.source()} (published on {f.page})" for f, path in chosen]
