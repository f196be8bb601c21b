"""Model presets by name: the one home for model sizes.

`official` is exactly FG-Net (StyleGAN2 config-f at 1024 px, pSp IR-SE-50, 32-channel interpreter,
128 px heatmaps). `tiny` keeps the topology (mapping + modulated synthesis, IR-SE FPN encoder,
pyramid interpreter) at widths that train on 2 CPU cores in minutes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class ModelPreset:
    name: str
    # StyleGAN2 generator
    generator_size: int = 1024
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    lr_mlp: float = 0.01
    generator_channels: dict[int, int] | None = None  # None: the official widths
    modconv: str = "grouped"  # 'grouped' reproduces official numerics; 'batched' is faster
    # pSp encoder
    input_size: int = 256  # aligned face size the model takes
    encoder_input_size: int | None = None  # None: the encoder reads the input as is; else resized first
    input_nc: int = 3
    encoder_units: tuple[int, int, int, int] = (3, 4, 14, 3)
    encoder_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
    encoder_se: bool = True
    # interpreter
    out_channels: int = 32
    heatmap_size: int = 128
    dropout: float = 0.1
    feature_layers: tuple[int, ...] = field(default=())  # () = every other map from conv1 on: 1, 3, 5, ...

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["generator_channels"] is not None:
            d["generator_channels"] = {str(k): v for k, v in d["generator_channels"].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelPreset":
        d = dict(d)
        if d.get("generator_channels") is not None:
            d["generator_channels"] = {int(k): int(v) for k, v in d["generator_channels"].items()}
        for key in ("encoder_units", "encoder_widths", "feature_layers"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)


PRESETS: dict[str, ModelPreset] = {
    "official": ModelPreset(name="official"),
    # ~100 MFLOP per image forward (official: ~510 GFLOP): the encoder reads a 64 px copy
    # of the aligned face; the generator stops at 64 px; heatmaps are 32 px.
    "tiny": ModelPreset(
        name="tiny",
        generator_size=64,
        style_dim=32,
        n_mlp=2,
        modconv="batched",
        generator_channels={4: 32, 8: 32, 16: 32, 32: 16, 64: 8},
        encoder_input_size=64,
        encoder_units=(1, 1, 2, 1),
        encoder_widths=(8, 16, 24, 32),
        out_channels=12,
        heatmap_size=32,
        dropout=0.1,
    ),
}


def get_preset(name: str, **overrides) -> ModelPreset:
    """A preset by name, optionally with fields replaced (e.g. out_channels=8)."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; choose from {', '.join(PRESETS)}") from None
    return replace(preset, **overrides) if overrides else preset
