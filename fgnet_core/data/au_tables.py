"""The one home for facial Action Unit facts: names, per-dataset order, heatmap anchors, cross-domain mapping.

Each AU's heatmap target is two Gaussians centred on facial landmarks (iBUG 68-point indexing, 0-based).
A centre is the mean of a set of landmarks, shifted down by a multiple of the inter-ocular distance
(IOD = |lmk[42] - lmk[39]|, measured in the heatmap frame). These anchors follow the official FG-Net
training targets, so a checkpoint trained with them reads the same locations.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Anchor", "ActionUnit", "ACTION_UNITS", "DATASETS", "DATASET_AUS", "CROSS_DOMAIN_AUS",
    "dataset_aus", "n_aus", "au_columns", "cross_domain_columns", "canonical_dataset",
]


@dataclass(frozen=True)
class Anchor:
    """A Gaussian centre: mean of `landmarks`, moved down by `iod_down` inter-ocular distances."""

    landmarks: tuple[int, ...]
    iod_down: float = 0.0


@dataclass(frozen=True)
class ActionUnit:
    number: int
    name: str  # FACS name
    anchors: tuple[Anchor, Anchor]
    region: str  # coarse face region, used by the demo renderer and figures

    @property
    def label(self) -> str:
        """Display label, e.g. 'AU01'."""
        return f"AU{self.number:02d}"

    @property
    def column(self) -> str:
        """Column name in FG-Net label CSVs, e.g. 'au1'."""
        return f"au{self.number}"


_LEFT_BROW = tuple(range(17, 22))
_RIGHT_BROW = tuple(range(22, 27))
_LEFT_EYE = tuple(range(36, 42))
_RIGHT_EYE = tuple(range(42, 48))


def _pair(a: int, b: int) -> tuple[Anchor, Anchor]:
    return (Anchor((a,)), Anchor((b,)))


ACTION_UNITS: dict[int, ActionUnit] = {
    au.number: au
    for au in (
        ActionUnit(1, "Inner brow raiser", _pair(21, 22), "brows"),
        ActionUnit(2, "Outer brow raiser", _pair(17, 26), "brows"),
        ActionUnit(4, "Brow lowerer", (Anchor(_LEFT_BROW), Anchor(_RIGHT_BROW)), "brows"),
        ActionUnit(6, "Cheek raiser", (Anchor(_LEFT_EYE, 1.0), Anchor(_RIGHT_EYE, 1.0)), "cheeks"),
        ActionUnit(7, "Lid tightener", _pair(38, 43), "eyes"),
        ActionUnit(9, "Nose wrinkler", _pair(39, 42), "nose"),
        ActionUnit(10, "Upper lip raiser", _pair(50, 52), "mouth"),
        ActionUnit(12, "Lip corner puller", _pair(48, 54), "mouth"),
        ActionUnit(14, "Dimpler", _pair(48, 54), "mouth"),
        ActionUnit(15, "Lip corner depressor", _pair(48, 54), "mouth"),
        ActionUnit(17, "Chin raiser", (Anchor((56,), 0.5), Anchor((58,), 0.5)), "chin"),
        ActionUnit(23, "Lip tightener", _pair(51, 57), "mouth"),
        ActionUnit(24, "Lip pressor", _pair(51, 57), "mouth"),
        ActionUnit(25, "Lips part", _pair(51, 57), "mouth"),
        ActionUnit(26, "Jaw drop", _pair(56, 58), "mouth"),
    )
}

DATASETS = ("BP4D", "DISFA")

# Column order of the FG-Net label CSVs and of the interpreter's output channels.
DATASET_AUS: dict[str, tuple[int, ...]] = {
    "BP4D": (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24),
    "DISFA": (1, 2, 4, 6, 9, 12, 25, 26),
}

# AUs annotated in both corpora: the cross-domain protocol evaluates these.
CROSS_DOMAIN_AUS: tuple[int, ...] = (1, 2, 4, 6, 12)


def canonical_dataset(dataset: str) -> str:
    """'bp4d' / 'BP4D' -> 'BP4D'; anything else raises with the accepted names."""
    key = str(dataset).upper()
    if key not in DATASET_AUS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    return key


def dataset_aus(dataset: str) -> tuple[ActionUnit, ...]:
    """The dataset's AUs in label-column / output-channel order."""
    return tuple(ACTION_UNITS[n] for n in DATASET_AUS[canonical_dataset(dataset)])


def n_aus(dataset: str) -> int:
    return len(DATASET_AUS[canonical_dataset(dataset)])


def au_columns(dataset: str) -> list[str]:
    """Label CSV column names in order, e.g. ['au1', 'au2', ...]."""
    return [au.column for au in dataset_aus(dataset)]


def cross_domain_columns(dataset: str) -> list[int]:
    """Indices of CROSS_DOMAIN_AUS within the dataset's column order (BP4D [0,1,2,3,6], DISFA [0,1,2,3,5])."""
    order = DATASET_AUS[canonical_dataset(dataset)]
    return [order.index(n) for n in CROSS_DOMAIN_AUS]
