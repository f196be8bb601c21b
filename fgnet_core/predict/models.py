"""The one home for `--model demo|bp4d|disfa|PATH`: which file it means, how it loads, which dataset it reads.

* `demo`  -- the model the pipeline trains on the demo corpus (`Layout.demo_model`: BP4D fold 0, clean, seed 0,
  the configured backbone, under `workspace/runs/BP4D/`);
* `bp4d`, `disfa` -- the released FG-Net fold-0 models (`checkpoints/<name>_0/model.pth`) with the StyleGAN2
  and pSp files named in params.yaml `paths.checkpoints`;
* a PATH -- one of our training checkpoints (format 'fgnet-workspace-training-v1') or an official model.pth
  (which also needs the pSp encoder file, and optionally the StyleGAN2 file).
A missing file gives one `ModelNotFoundError` naming the file and how to get it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fgnet_core import checkpoints
from fgnet_core.data.au_tables import canonical_dataset, dataset_aus
from fgnet_core.paths import REPO_ROOT
from fgnet_core.pipeline.config import ParamsError, demo_model_path, load_params

OFFICIAL_MODELS = {"bp4d": ("BP4D", Path("checkpoints") / "bp4d_0" / "model.pth"),
                   "disfa": ("DISFA", Path("checkpoints") / "disfa_0" / "model.pth")}
_GET_OFFICIAL = ("run `fgnet weights download --for bp4d` (or --for disfa): it fetches the FG-Net model.pth and the "
                 "pSp 'encoder.pt' into checkpoints/ (`fgnet weights list` says where to place them by hand)")


class ModelNotFoundError(FileNotFoundError):
    """A model file that is not there; the message names it and says how to get it."""


class ModelSpecError(ValueError):
    """A model argument that cannot be used as given (wrong kind of file, missing companion file, ...)."""


@dataclass
class LoadedModel:
    net: "object"        # FGNet in eval mode
    dataset: str         # 'BP4D' | 'DISFA': which AUs the first output channels are
    name: str            # what the user asked for, for the results table
    path: Path           # the model file
    trained: str | None = None  # the dataset the model was trained on, when the checkpoint or --model says so

    @property
    def au_labels(self) -> list[str]:
        return [au.label for au in dataset_aus(self.dataset)]

    @property
    def n_aus(self) -> int:
        return len(self.au_labels)


def _root_params(root: Path) -> dict | None:
    """`root`/params.yaml when it is there and valid, else None."""
    try:
        return load_params(root / "params.yaml")
    except ParamsError:
        return None


def official_paths(root: Path | None = None) -> dict[str, Path]:
    """StyleGAN2 / pSp files named in params.yaml `paths.checkpoints.official` (defaults when there is no
    params.yaml)."""
    root = Path(root) if root else REPO_ROOT
    names = {"stylegan": "checkpoints/stylegan2-ffhq-config-f.pt", "encoder": "checkpoints/encoder.pt"}
    params = _root_params(root)
    try:
        names.update(params["paths"]["checkpoints"]["official"])
    except (KeyError, TypeError):
        pass
    return {key: root / value for key, value in names.items()}


def demo_checkpoint(root: Path | None = None) -> Path:
    """The pipeline's demo model under `root` (`Layout.demo_model`, with the backbone of `root`/params.yaml;
    `pretrained` when there is none)."""
    root = Path(root) if root else REPO_ROOT
    params = _root_params(root) or {}
    return demo_model_path(root, params.get("backbone", "pretrained"))


def _need(path: Path, what: str, how: str) -> Path:
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: {what} not found; {how}")
    return path


def _dataset_from_path(path: Path) -> str | None:
    """'BP4D' / 'DISFA' when exactly one of them is named in the path (e.g. checkpoints/disfa_0/model.pth)."""
    text = str(path).lower()
    found = [ds for ds in ("BP4D", "DISFA") if ds.lower() in text]
    return found[0] if len(found) == 1 else None


def resolve_model(spec: str | Path = "demo", *, stylegan: str | Path | None = None,
                  encoder: str | Path | None = None, dataset: str | None = None,
                  root: str | Path | None = None, device: str = "cpu") -> LoadedModel:
    """`demo` | `bp4d` | `disfa` | a checkpoint path -> LoadedModel (FGNet in eval mode on `device`).

    `dataset` overrides the dataset the model reads (needed for an official model.pth whose path names
    neither corpus). Raises ModelNotFoundError / ModelSpecError / CheckpointError, each naming the file.
    """
    root = Path(root) if root else REPO_ROOT
    key = str(spec).lower()
    if key == "demo":
        path = _need(demo_checkpoint(root), "demo model",
                     "run `make demo` (the pipeline trains it), or pass --model PATH")
        loaded = _load_training(path, dataset, "demo")
    elif key in OFFICIAL_MODELS:
        ds, rel = OFFICIAL_MODELS[key]
        files = official_paths(root)
        model_pth = _need(root / rel, f"FG-Net {ds} model", _GET_OFFICIAL)
        enc = _need(Path(encoder) if encoder else files["encoder"], "pSp encoder file", _GET_OFFICIAL)
        sg = Path(stylegan) if stylegan else files["stylegan"]
        sg = _need(sg, "StyleGAN2 file", _GET_OFFICIAL) if stylegan or sg.exists() else None
        _same_dataset(model_pth, ds, dataset)
        net = checkpoints.load_fgnet(model_pth, stylegan=sg, encoder=enc)
        loaded = LoadedModel(net, ds, key, model_pth, trained=ds)
    else:
        path = _need(Path(spec), "model file",
                     "pass demo, bp4d, disfa or the path of a checkpoint (.pt from training, or FG-Net model.pth)")
        loaded = _load_path(path, stylegan, encoder, dataset)
    loaded.net.to(device).eval()
    if loaded.net.preset.out_channels < loaded.n_aus:
        raise ModelSpecError(f"{loaded.path}: the model has {loaded.net.preset.out_channels} output channels, "
                             f"fewer than the {loaded.n_aus} AUs of {loaded.dataset}")
    return loaded


def _load_training(path: Path, dataset: str | None, name: str) -> LoadedModel:
    net, ckpt = checkpoints.load_training_checkpoint(path)
    params = ckpt.get("params") if isinstance(ckpt.get("params"), dict) else {}
    stored = params.get("dataset")
    if stored is not None:
        try:
            stored = canonical_dataset(stored)
        except ValueError as exc:
            raise ModelSpecError(f"{path}: the checkpoint records an unknown dataset ({exc})") from None
    _same_dataset(path, stored, dataset)
    ds = stored or (canonical_dataset(dataset) if dataset else None)
    if not ds:
        raise ModelSpecError(f"{path}: the checkpoint does not record its dataset; pass --dataset BP4D|DISFA")
    return LoadedModel(net, ds, name, path, trained=stored)


def _same_dataset(path: Path, trained: str | None, asked: str | None) -> None:
    """ModelSpecError when --dataset names another corpus than the one the model was trained on.

    The output channels are the training corpus's AUs in its order; reading them as another corpus's
    AUs would put e.g. AU07's score in the AU09 column.
    """
    if trained is None or asked is None or canonical_dataset(asked) == trained:
        return
    labels = " ".join(au.label for au in dataset_aus(trained))
    raise ModelSpecError(f"{path}: the model was trained on {trained}; its outputs are the {trained} AUs "
                         f"({labels}), so --dataset {canonical_dataset(asked)} would mislabel them. Drop "
                         "--dataset (the AUs both corpora share, AU01 AU02 AU04 AU06 AU12, are among its columns)")


def _load_path(path: Path, stylegan, encoder, dataset: str | None) -> LoadedModel:
    obj = checkpoints.read_checkpoint(path, "model checkpoint")
    if isinstance(obj, dict) and obj.get("format") == checkpoints.TRAINING_FORMAT:
        del obj
        return _load_training(path, dataset, str(path))
    if isinstance(obj, dict) and {"interpreter", "g_all", "pspencoder"} <= set(obj):
        del obj
        if encoder is None:
            raise ModelSpecError(f"{path}: an FG-Net model.pth needs the pSp encoder file it was trained from: "
                                 "pass --encoder PATH (and --stylegan PATH for the StyleGAN2 file)")
        enc = _need(Path(encoder), "pSp encoder file", "pass the pSp 'encoder.pt' of the FG-Net release")
        sg = _need(Path(stylegan), "StyleGAN2 file", _GET_OFFICIAL) if stylegan else None
        ds = dataset or _dataset_from_path(path)
        if ds is None:
            raise ModelSpecError(f"{path}: cannot tell whether this FG-Net model reads BP4D or DISFA AUs from its "
                                 "path; pass --dataset BP4D|DISFA")
        net = checkpoints.load_fgnet(path, stylegan=sg, encoder=enc)
        return LoadedModel(net, canonical_dataset(ds), str(path), path)
    raise ModelSpecError(f"{path}: not a model checkpoint: expected an fgnet-workspace training checkpoint or an "
                         f"FG-Net model.pth; the file is {checkpoints._describe_kind(obj)}")
