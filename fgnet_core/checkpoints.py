"""Loading the three official checkpoint formats, and saving / loading our own training checkpoints.

Every file is read with `torch.load(weights_only=True)`: a file holding pickled Python objects that
could run code is refused before anything in it executes. Errors name the file and the first problem
(missing / unexpected / wrong-shape key, wrong kind of file).
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fgnet_core.atomic import atomic_path
from fgnet_core.models.fgnet import FGNet
from fgnet_core.models.psp_encoder import GradualStyleEncoder, PSPEncoder, n_styles_for
from fgnet_core.models.stylegan2 import StyleGAN2Generator
from fgnet_core.presets import ModelPreset

TRAINING_FORMAT = "fgnet-workspace-training-v1"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""


# ----------------------------------------------------------------------------------------- reading
def read_checkpoint(path: str | os.PathLike, what: str = "checkpoint") -> Any:
    """torch.load with weights_only=True and one clear error per failure mode."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: {what} file not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} path is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: {what} file is empty (0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        detail = _unpickler_detail(text)
        if "allowed global" in text or "Unsupported global" in text:
            raise CheckpointError(
                f"{path}: refused to load {what}: it holds pickled Python objects beyond tensors and plain "
                f"containers, which could run code; nothing in it was executed ({detail})") from None
        raise CheckpointError(f"{path}: not a readable PyTorch {what} (truncated, corrupt or another "
                              f"kind of file): {detail}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch {what} (truncated or corrupt?): {msg}") from None


def _unpickler_detail(text: str) -> str:
    """The informative line of torch's weights-only refusal (it leads with a generic paragraph)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if "GLOBAL" in ln or "Unsupported" in ln or "invalid load key" in ln:
            return ln
    return lines[-1] if lines else "unpickling failed"


def _describe_kind(obj: Any) -> str:
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}"
    keys = set(obj)
    if "g_ema" in keys:
        return "a StyleGAN2 checkpoint (g_ema)"
    if {"state_dict", "opts"} <= keys:
        return "a pSp encoder checkpoint (state_dict + opts)"
    if {"interpreter", "g_all", "pspencoder"} <= keys:
        return "an FG-Net model.pth (interpreter, g_all, pspencoder)"
    if obj.get("format") == TRAINING_FORMAT:
        return "an fgnet-workspace training checkpoint"
    shown = ", ".join(sorted(map(str, keys))[:8])
    return f"a dict with keys [{shown}{', ...' if len(keys) > 8 else ''}]"


def _require(obj: Any, keys: list[str], path: Path, expected: str) -> None:
    if not isinstance(obj, dict) or any(k not in obj for k in keys):
        missing = [k for k in keys if not isinstance(obj, dict) or k not in obj]
        raise CheckpointError(
            f"{path}: not {expected}: missing {', '.join(repr(k) for k in missing)}; the file is {_describe_kind(obj)}")


def load_state_strict(module: nn.Module, state: Any, path: Path, entry: str) -> None:
    """load_state_dict(strict) with an error naming the first missing / unexpected / wrong-shape key."""
    where = f"{path} [{entry}]" if entry else f"{path}"
    if not isinstance(state, dict):
        raise CheckpointError(f"{where}: expected a state dict, found {type(state).__name__}")
    expected = module.state_dict()
    for key, ref in expected.items():
        if key not in state:
            raise CheckpointError(f"{where}: missing key '{key}' (expected shape {list(ref.shape)})")
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{where}: key '{key}' holds a {type(value).__name__}, expected a tensor")
        if tuple(value.shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{where}: key '{key}' has shape {list(value.shape)}, expected {list(ref.shape)}")
    for key in state:
        if key not in expected:
            raise CheckpointError(f"{where}: unexpected key '{key}'")
    module.load_state_dict(state, strict=True)


# ------------------------------------------------------------------------- inferring architectures
def _indexed(state: dict, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := rx.fullmatch(k))})


def stylegan2_config(state: dict, path: Path) -> dict:
    """Generator constructor arguments read off a g_ema state dict (any size, any widths)."""
    try:
        style_dim = state["style.1.weight"].shape[1]
        n_mlp = len(_indexed(state, r"style\.(\d+)\.weight"))
        n_rgbs = len(_indexed(state, r"to_rgbs\.(\d+)\.bias"))
        size = 2 ** (n_rgbs + 2)
        channels = {4: state["conv1.conv.weight"].shape[1]}
        for k in range(n_rgbs):
            channels[2 ** (k + 3)] = state[f"convs.{2 * k}.conv.weight"].shape[1]
    except KeyError as exc:
        raise CheckpointError(f"{path} [g_ema]: missing key {exc} needed to read the generator layout") from None
    return dict(size=size, style_dim=style_dim, n_mlp=n_mlp, channels=channels)


def psp_encoder_config(state: dict, path: Path, entry: str) -> dict:
    """GradualStyleEncoder arguments read off its state dict (prefix 'encoder.' already stripped).

    Stage boundaries are where the width changes (the first unit of every IR-SE stage widens it).
    """
    try:
        input_nc = state["input_layer.0.weight"].shape[1]
        units, widths, in_ch = [], [], state["input_layer.0.weight"].shape[0]
        for i in _indexed(state, r"body\.(\d+)\.res_layer\.1\.weight"):
            depth = state[f"body.{i}.res_layer.1.weight"].shape[0]
            if i == 0 or depth != in_ch:
                units.append(0)
                widths.append(depth)
            units[-1] += 1
            in_ch = depth
        se = "body.0.res_layer.5.fc1.weight" in state
        style_dim = state["styles.0.linear.weight"].shape[0]
        # the coarse heads pool the 1/16-scale level down to 1x1 with one stride-2 conv per octave
        input_size = 16 * 2 ** len(_indexed(state, r"styles\.0\.convs\.(\d+)\.weight"))
    except KeyError as exc:
        raise CheckpointError(f"{path} [{entry}]: missing key {exc} needed to read the encoder layout") from None
    if len(units) != 4:
        raise CheckpointError(f"{path} [{entry}]: expected a 4-stage IR-SE backbone, found {len(units)} stages")
    return dict(input_nc=input_nc, units=tuple(units), widths=tuple(widths), se=se, style_dim=style_dim,
                input_size=input_size)


# --------------------------------------------------------------------------------- official formats
def load_stylegan2(path: str | os.PathLike, entry: str = "g_ema") -> StyleGAN2Generator:
    """rosinality-format `stylegan2-ffhq-config-f.pt` -> StyleGAN2Generator (eval, float32, CPU)."""
    path = Path(path)
    ckpt = read_checkpoint(path, "StyleGAN2 checkpoint")
    _require(ckpt, [entry], path, f"a StyleGAN2 checkpoint with '{entry}'")
    cfg = stylegan2_config(ckpt[entry], path)
    generator = StyleGAN2Generator(**cfg)
    load_state_strict(generator, ckpt[entry], path, entry)
    return generator.float().eval()


def _psp_opts(ckpt: dict, path: Path) -> tuple[int, int]:
    opts = ckpt["opts"]
    if not isinstance(opts, dict):
        raise CheckpointError(f"{path}: 'opts' should be a dict of pSp options, found {type(opts).__name__}")
    if "input_nc" not in opts:
        raise CheckpointError(f"{path}: pSp 'opts' lacks 'input_nc'")
    output_size = int(opts.get("output_size", 1024) or 1024)
    return int(opts["input_nc"]), n_styles_for(output_size)


def load_psp_encoder(path: str | os.PathLike) -> PSPEncoder:
    """pSp checkpoint (`encoder.pt`) -> PSPEncoder: images -> W+ with `latent_avg` added (eval)."""
    path = Path(path)
    ckpt = read_checkpoint(path, "pSp encoder checkpoint")
    _require(ckpt, ["state_dict", "opts", "latent_avg"], path, "a pSp encoder checkpoint")
    input_nc, n_styles = _psp_opts(ckpt, path)
    state = {k[len("encoder."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("encoder.")}
    if not state:
        raise CheckpointError(f"{path}: pSp 'state_dict' holds no 'encoder.*' keys")
    cfg = psp_encoder_config(state, path, "state_dict/encoder")
    if cfg["input_nc"] != input_nc:
        raise CheckpointError(f"{path}: opts.input_nc={input_nc} but the first conv takes {cfg['input_nc']} channels")
    encoder = GradualStyleEncoder(n_styles=n_styles, **cfg)
    load_state_strict(encoder, state, path, "state_dict/encoder")
    latent_avg = ckpt["latent_avg"]
    if not isinstance(latent_avg, torch.Tensor) or latent_avg.shape[-1] != cfg["style_dim"]:
        raise CheckpointError(f"{path}: 'latent_avg' should be a tensor [n_styles, {cfg['style_dim']}]")
    if latent_avg.ndim == 2 and latent_avg.shape[0] not in (1, n_styles):
        raise CheckpointError(f"{path}: 'latent_avg' has {latent_avg.shape[0]} rows, expected {n_styles}")
    return PSPEncoder(encoder, latent_avg.float()).float().eval()


def _fgnet_preset(g_cfg: dict, e_cfg: dict, interp_state: dict, path: Path, heatmap_size: int) -> ModelPreset:
    heads = _indexed(interp_state, r"layer(\d+)\.\d+\.weight")
    if not heads:
        raise CheckpointError(f"{path} [interpreter]: no 'layerN.*' keys")
    last = max(heads)
    final = [k for k in interp_state if k.startswith(f"layer{last}.") and k.endswith(".weight")
             and interp_state[k].ndim == 4]
    out_channels = interp_state[sorted(final, key=lambda k: int(k.split(".")[1]))[-1]].shape[0]
    return ModelPreset(
        name="loaded", generator_size=g_cfg["size"], style_dim=g_cfg["style_dim"], n_mlp=g_cfg["n_mlp"],
        generator_channels=g_cfg["channels"], input_nc=e_cfg["input_nc"], encoder_units=e_cfg["units"],
        encoder_widths=e_cfg["widths"], encoder_se=e_cfg["se"], input_size=e_cfg["input_size"],
        out_channels=out_channels,
        heatmap_size=heatmap_size)


def load_fgnet(model_pth: str | os.PathLike, stylegan: str | os.PathLike | None = None,
               encoder: str | os.PathLike | None = None, heatmap_size: int = 128,
               allow_non_finite: bool = False) -> FGNet:
    """FG-Net `model.pth` (+ the StyleGAN2 and pSp files it was trained from) -> FGNet (eval).

    As in the official code, the StyleGAN2 and pSp weights are loaded first and then overridden by
    the fine-tuned `g_all` / `pspencoder`; only pSp's `latent_avg` survives from `encoder`, so that
    file is required. `stylegan` may be omitted (model.pth holds every generator tensor).
    """
    model_pth = Path(model_pth)
    if encoder is None:
        raise CheckpointError(f"{model_pth}: FG-Net needs the pSp encoder file too (for its latent_avg): "
                              "pass encoder=<path to encoder.pt>")
    ckpt = read_checkpoint(model_pth, "FG-Net model checkpoint")
    _require(ckpt, ["interpreter", "g_all", "pspencoder"], model_pth, "an FG-Net model.pth")
    psp = load_psp_encoder(encoder)
    g_cfg = stylegan2_config(ckpt["g_all"], model_pth)
    e_cfg = psp_encoder_config(ckpt["pspencoder"], model_pth, "pspencoder")
    preset = _fgnet_preset(g_cfg, e_cfg, ckpt["interpreter"], model_pth, heatmap_size)
    if psp.encoder.style_count != n_styles_for(g_cfg["size"]):
        raise CheckpointError(f"{encoder}: encoder predicts {psp.encoder.style_count} W+ rows but the generator "
                              f"in {model_pth} takes {n_styles_for(g_cfg['size'])}")
    net = FGNet(preset)
    if stylegan is not None:
        load_state_strict(net.generator, load_stylegan2(stylegan).state_dict(), Path(stylegan), "g_ema")
    load_state_strict(net.encoder.encoder, psp.encoder.state_dict(), Path(encoder), "state_dict/encoder")
    net.encoder.latent_avg.copy_(psp.latent_avg.expand_as(net.encoder.latent_avg))
    load_state_strict(net.interpreter, ckpt["interpreter"], model_pth, "interpreter")
    load_state_strict(net.generator, ckpt["g_all"], model_pth, "g_all")
    load_state_strict(net.encoder.encoder, ckpt["pspencoder"], model_pth, "pspencoder")
    if not allow_non_finite:
        require_finite(net, model_pth)
    return net.float().eval()


# -------------------------------------------------------------------------- writing official formats
def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save to a temporary file beside `path`, then rename: readers never see half a file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(path)


def save_stylegan2(generator: StyleGAN2Generator, path, latent_avg: torch.Tensor | None = None) -> Path:
    """rosinality format: {'g_ema': state dict, 'latent_avg': [style_dim]}."""
    obj = {"g_ema": generator.state_dict()}
    obj["latent_avg"] = latent_avg if latent_avg is not None else torch.zeros(generator.style_dim)
    return atomic_save(obj, path)


def save_psp_encoder(encoder: PSPEncoder, path, decoder: StyleGAN2Generator | None = None,
                     output_size: int | None = None) -> Path:
    """pSp format: {'state_dict': encoder.* (+ decoder.*), 'opts': {...}, 'latent_avg': [n_styles, D]}."""
    state = {f"encoder.{k}": v for k, v in encoder.encoder.state_dict().items()}
    if decoder is not None:
        state.update({f"decoder.{k}": v for k, v in decoder.state_dict().items()})
    n_styles = encoder.encoder.style_count
    output_size = output_size or 2 ** ((n_styles + 2) // 2)
    opts = {"encoder_type": "GradualStyleEncoder", "input_nc": int(encoder.encoder.input_layer[0].in_channels),
            "output_size": int(output_size), "n_styles": n_styles, "start_from_latent_avg": True,
            "dataset_type": "ffhq_encode", "checkpoint_path": None}
    latent_avg = encoder.latent_avg.expand(n_styles, -1).clone()
    return atomic_save({"state_dict": state, "opts": opts, "latent_avg": latent_avg}, path)


def save_fgnet_model(net: FGNet, path) -> Path:
    """FG-Net format model.pth: {'interpreter', 'g_all', 'pspencoder'}."""
    return atomic_save({"interpreter": net.interpreter.state_dict(), "g_all": net.generator.state_dict(),
                        "pspencoder": net.encoder.encoder.state_dict()}, path)


# ---------------------------------------------------------------------- our training checkpoints
def save_training_checkpoint(path, model: FGNet, optimizer: torch.optim.Optimizer | None = None,
                             epoch: int = 0, params: dict | None = None, **extra) -> Path:
    """Model + optimizer + epoch + run parameters, written atomically (plain types only)."""
    obj = {"format": TRAINING_FORMAT, "preset": model.preset.to_dict(), "model": model.state_dict(),
           "optimizer": optimizer.state_dict() if optimizer is not None else None,
           "epoch": int(epoch), "params": params or {}, **extra}
    return atomic_save(obj, path)


def load_training_checkpoint(path, model: FGNet | None = None, optimizer: torch.optim.Optimizer | None = None,
                             allow_non_finite: bool = False) -> tuple[FGNet, dict]:
    """-> (model with weights loaded, the checkpoint dict). Builds the model from its stored preset
    when `model` is None; restores `optimizer` state when given. Weights holding NaN or inf (a diverged
    run) are refused unless `allow_non_finite`: they would score every AU as absent without a word."""
    path = Path(path)
    ckpt = read_checkpoint(path, "training checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != TRAINING_FORMAT:
        raise CheckpointError(f"{path}: not an fgnet-workspace training checkpoint; the file is {_describe_kind(ckpt)}")
    if model is None:
        model = _model_from_preset(ckpt.get("preset"), path)
    load_state_strict(model, ckpt["model"], path, "model")
    if not allow_non_finite:
        require_finite(model, path)
    if optimizer is not None:
        if ckpt.get("optimizer") is None:
            raise CheckpointError(f"{path}: holds no optimizer state to resume from")
        optimizer.load_state_dict(ckpt["optimizer"])
    return model, ckpt


def _model_from_preset(preset: Any, path: Path) -> FGNet:
    """FGNet from a stored preset dict, or CheckpointError naming the file (not a traceback)."""
    if not isinstance(preset, dict):
        raise CheckpointError(f"{path}: the training checkpoint holds no model preset (found "
                              f"{type(preset).__name__})")
    try:
        return FGNet(ModelPreset.from_dict(preset))
    except Exception as exc:  # unknown fields, wrong types, impossible sizes
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise CheckpointError(f"{path}: invalid model preset in the training checkpoint ({text})") from None


def require_finite(model: nn.Module, path: str | os.PathLike) -> None:
    """CheckpointError naming the first parameter or buffer that holds NaN or inf."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"{path}: refused: non-finite weights ({bad} NaN/inf values in '{name}'; "
                                  "a diverged run?)")


def is_finite_model(model: nn.Module) -> bool:
    """True when every parameter and buffer is finite (guards against saving a diverged run)."""
    return all(torch.isfinite(t).all() for t in list(model.parameters()) + list(model.buffers())
               if t.is_floating_point())


__all__ = ["CheckpointError", "read_checkpoint", "load_state_strict", "load_stylegan2", "load_psp_encoder",
           "load_fgnet", "save_stylegan2", "save_psp_encoder", "save_fgnet_model", "atomic_save",
           "save_training_checkpoint", "load_training_checkpoint", "is_finite_model", "require_finite",
           "stylegan2_config", "psp_encoder_config", "TRAINING_FORMAT"]
