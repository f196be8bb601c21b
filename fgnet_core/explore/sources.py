"""What the explorer notebooks look at: a model, and aligned face samples with their labels and targets.

Both fall back to something self-contained so the notebooks run anywhere (fresh CI, no pipeline run yet):
a missing model becomes a seeded untrained `tiny` FGNet (with a printed note), and a missing aligned corpus
becomes real photos aligned on the spot (scikit-image's astronaut when no `image_paths` are given).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fgnet_core.data.align import FaceAligner
from fgnet_core.data.au_tables import DATASETS, canonical_dataset, dataset_aus
from fgnet_core.data.image_load import AlignmentError
from fgnet_core.data.image_tensors import to_model_range
from fgnet_core.data.dataset import AUDataset, landmark_path, load_landmarks
from fgnet_core.data.labels import label_csv_path, read_label_csv
from fgnet_core.evaluation.predict_set import score_faces
from fgnet_core.models.fgnet import FGNet
from fgnet_core.paths import REPO_ROOT
from fgnet_core.predict.models import LoadedModel, ModelNotFoundError, resolve_model


def setup(threads: int | None = 2) -> None:
    """Torch CPU threads, as the pipeline stages set them (the machine is shared)."""
    if threads:
        torch.set_num_threads(int(threads))


def explore_model(model_path: str | Path = "demo", fallback_dataset: str = "BP4D", seed: int = 0,
                  verbose: bool = True) -> LoadedModel:
    """`demo` | `bp4d` | `disfa` | a checkpoint path; when the file is missing, a seeded untrained tiny FGNet
    reading `fallback_dataset`'s AUs (a relative path is taken from the repository root)."""
    path = Path(model_path)
    if str(model_path).lower() not in ("demo", "bp4d", "disfa") and not path.is_absolute():
        model_path = resolve_root(path) if not path.exists() else path
    try:
        return resolve_model(model_path, root=REPO_ROOT)
    except ModelNotFoundError as exc:
        torch.manual_seed(seed)
        net = FGNet("tiny").eval()
        ds = canonical_dataset(fallback_dataset)
        if verbose:
            print(f"note: {exc}\nnote: using an untrained 'tiny' FGNet (seed {seed}) reading {ds} AUs instead: "
                  "the plots show the machinery, not what a trained model sees")
        return LoadedModel(net, ds, f"untrained tiny (seed {seed})", Path("-"))


def heatmap_sigma(size: int) -> float:
    """Target sigma for `size` px heatmaps: the official 20 px at 128, scaled (5 px at the tiny preset's 32)."""
    return 20.0 * size / 128


@dataclass
class Sample:
    """One aligned face: image [256, 256, 3] uint8, landmarks [68, 2] in that frame, labels by AU label."""

    name: str
    image: np.ndarray
    landmarks: np.ndarray | None = None
    truth: dict[str, int] = field(default_factory=dict)       # 'AU01' -> 0/1 (empty: no ground truth)
    targets: dict[str, np.ndarray] = field(default_factory=dict)  # 'AU01' -> [S, S] training target

    def tensor(self) -> torch.Tensor:
        return to_model_range(torch.from_numpy(self.image.copy())[None])  # [1, 3, 256, 256]


class CorpusSource:
    """The aligned corpus the pipeline writes: `<aligned_root>/<DATASET>/labels/<fold>/<split>.csv`."""

    def __init__(self, aligned_root: str | Path, dataset: str, fold: int, split: str = "test",
                 heatmap_size: int = 128, max_images: int | None = 64):
        self.root = Path(aligned_root)
        self.dataset, self.fold = dataset, int(fold)
        csv = label_csv_path(self.root, dataset, fold, split)
        table = read_label_csv(csv, dataset)
        if max_images:
            table = table.iloc[np.linspace(0, len(table) - 1, min(max_images, len(table))).astype(int)]
        self.items = AUDataset(table.reset_index(drop=True), self.root, dataset, heatmap_size=heatmap_size,
                               sigma=heatmap_sigma(heatmap_size))
        self.name = f"{self.dataset} fold {self.fold} {split}"

    def __len__(self) -> int:
        return len(self.items)

    def names(self) -> list[str]:
        return list(self.items.paths)

    def sample(self, index: int) -> Sample:
        item = self.items[index]
        image = ((item["image"].permute(1, 2, 0).numpy() + 1.0) * 127.5).round().astype(np.uint8)  # [256, 256, 3]
        stored = landmark_path(self.items.image_file(index))
        lmk = load_landmarks(stored) if stored.is_file() else None
        labels = [au.label for au in dataset_aus(self.dataset)]
        return Sample(item["path"], image, lmk, dict(zip(labels, item["labels"].int().tolist())),
                      dict(zip(labels, item["heatmap"].numpy())))


class PhotoSource:
    """Photos aligned on the spot (FaceAligner): `image_paths`, uploads, or scikit-image's astronaut."""

    def __init__(self, image_paths=(), name: str = "photos"):
        self.name = name
        self.samples: list[Sample] = []
        self.skipped: list[str] = []
        self._aligner = None
        paths = [Path(p) for p in image_paths or ()]
        for path in paths:
            try:
                self.add(path, path.name)
            except ValueError as exc:
                self.skipped.append(str(exc))
                print(f"skipped {exc}")
        if not paths:
            self.add(*offline_photo())

    def add(self, image, name: str) -> int:
        """Align an RGB array, an image path or encoded image bytes; -> the new index. ValueError if no face."""
        if isinstance(image, (bytes, bytearray, memoryview)):
            from PIL import Image

            try:
                image = np.asarray(Image.open(io.BytesIO(bytes(image))).convert("RGB"))
            except Exception as exc:
                raise ValueError(f"{name}: not a readable image ({exc})") from None
        self._aligner = self._aligner or FaceAligner()
        try:
            face = self._aligner.align(image)
        except AlignmentError as exc:
            text = str(exc)
            raise ValueError(text if text.startswith(str(name)) else f"{name}: {text}") from None
        self.samples.append(Sample(name, face.image, face.landmarks))
        return len(self.samples) - 1

    def __len__(self) -> int:
        return len(self.samples)

    def names(self) -> list[str]:
        return [s.name for s in self.samples]

    def sample(self, index: int) -> Sample:
        return self.samples[index]


def offline_photo() -> tuple[np.ndarray, str]:
    """A real face photo available offline: scikit-image's astronaut, else matplotlib's Grace Hopper."""
    try:
        from skimage import data

        return data.astronaut(), "astronaut (scikit-image)"
    except ImportError:
        import matplotlib
        from PIL import Image

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        return np.asarray(Image.open(path).convert("RGB")), "grace_hopper (matplotlib)"


def corpus_folds(aligned_root: str | Path, split: str = "test") -> dict[str, list[int]]:
    """Datasets of an aligned corpus that have label files for `split` -> their folds."""
    root = Path(aligned_root)
    found = {}
    for ds in DATASETS:
        labels = root / ds / "labels"
        folds = sorted(int(p.name) for p in labels.glob("*") if p.name.isdigit() and (p / f"{split}.csv").is_file())
        if folds:
            found[ds] = folds
    return found


def resolve_root(path: str | Path) -> Path:
    """A relative path is taken from the repository root, so notebooks work from any folder."""
    path = Path(path)
    return path if path.is_absolute() else REPO_ROOT / path


def model_outputs(loaded: LoadedModel, images: list[np.ndarray], batch_size: int = 8):
    """Aligned faces [256, 256, 3] uint8 -> (heatmaps [N, n_aus, S, S], scores [N, n_aus]) as NumPy arrays."""
    return score_faces(loaded.net, images, loaded.n_aus, batch_size)


def explore_samples(image_paths=(), aligned_root: str | Path = "workspace/aligned", dataset: str = "BP4D",
                    fold: int = 0, max_images: int = 8, heatmap_size: int = 128) -> list[Sample]:
    """`image_paths` aligned on the spot; else the aligned corpus's test images; else the offline photo."""
    if image_paths:
        return PhotoSource(image_paths).samples[:max_images]
    root = resolve_root(aligned_root)
    if fold in corpus_folds(root).get(dataset, []):
        src = CorpusSource(root, dataset, fold, "test", heatmap_size, max_images)
        return [src.sample(i) for i in range(len(src))]
    print(f"note: no aligned {dataset} fold {fold} test set under {aligned_root}; using an offline photo")
    return PhotoSource().samples
