"""Published within-domain F1 x 100 (subject-independent 3-fold) of earlier AU detectors, for the report.

Numbers as reported in the original papers (compiled in the ME-GraphAU README); AU order as in
`au_tables.DATASET_AUS`, last value the average.
"""
from __future__ import annotations

PUBLISHED_F1: dict[str, dict[str, tuple[float, ...]]] = {
    "BP4D": {
        "JAA-Net (ECCV 2018)": (47.2, 44.0, 54.9, 77.5, 74.6, 84.0, 86.9, 61.9, 43.6, 60.3, 42.7, 41.9, 60.0),
        "J^A-Net (IJCV 2021)": (53.8, 47.8, 58.2, 78.5, 75.8, 82.7, 88.2, 63.7, 43.3, 61.8, 45.6, 49.9, 62.4),
        "ME-GraphAU (ResNet-50)": (53.7, 46.9, 59.0, 78.5, 80.0, 84.4, 87.8, 67.3, 52.5, 63.2, 50.6, 52.4, 64.7),
    },
    "DISFA": {
        "JAA-Net (ECCV 2018)": (43.7, 46.2, 56.0, 41.4, 44.7, 69.6, 88.3, 58.4, 56.0),
        "J^A-Net (IJCV 2021)": (62.4, 60.7, 67.1, 41.1, 45.1, 73.5, 90.9, 67.4, 63.5),
        "ME-GraphAU (ResNet-50)": (54.6, 47.1, 72.9, 54.0, 55.7, 76.7, 91.1, 53.0, 63.1),
    },
}
