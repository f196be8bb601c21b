"""The one home for project paths and locating bundled model files."""
from __future__ import annotations

import importlib.util
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent  # the pipeline's folder layout: pipeline/config.py


def dlib_landmark_model() -> Path:
    """Path of dlib's 68-point shape predictor shipped by the `face-recognition-models` package.

    Located with importlib's spec so the package (which imports pkg_resources) is never imported.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "dlib 68-point landmark model not found: install the 'face-recognition-models' package "
            "or pass an explicit predictor path"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dlib 68-point landmark model missing from face-recognition-models")
    return path
