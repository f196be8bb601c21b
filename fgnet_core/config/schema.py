"""The typed config: params.yaml as frozen dataclasses, one per block, each field with its value check.

Every knob's default is its line in params.yaml (the official training recipe: `TrainRecipe`); a field with a
default here (`None`) is an optional knob whose default lives in the code that uses it (the GAN and inversion
recipes). Per-corpus settings stay mappings of corpus setting -> value; `Config` answers for the active one.
"""
from __future__ import annotations

from dataclasses import dataclass

from fgnet_core.config.checks import (
    ConfigError, boolean, choice, integer, list_of, mapping_of, number, one_or_per_corpus, optional, text,
)
from fgnet_core.config.section import Section, entry, section
from fgnet_core.config.train import Train, named_recipes
from fgnet_core.data.au_tables import DATASETS, canonical_dataset
from fgnet_core.data.folds import FOLDS
from fgnet_core.presets import PRESETS
from fgnet_core.training.recipe import TrainRecipe

PROTOCOLS = ("faithful", "clean")  # select the epoch on the test fold (official) / on held-out subjects
BACKBONES = ("pretrained", "scratch")  # the preset's pretrained StyleGAN2 + pSp files / random weights
CROSS_DOMAIN_FOLDS = ("first", "all")  # the fold-0 models on the other corpus's fold-0 test set (official) / every fold
SUBSET_SOURCES = ("official", "seeded")  # FG-Net's train_N lists / nested seeded samples
PADDINGS = ("reflect", "edge", "constant", "none")
PRECISIONS = ("bf16", "fp32")  # the fast mode's (models.modes maps them to dtypes)

SEEDS = list_of(integer(minimum=0), "integers >= 0")
SIZES = list_of(integer(minimum=1), "integers >= 1")


def _dataset(key, value):
    if not isinstance(value, str):
        raise ValueError(value)
    return canonical_dataset(value)


# ------------------------------------------------------------------------------------------------ paths
@dataclass(frozen=True)
class BackboneFiles(Section):
    stylegan: str = entry(text())  # StyleGAN2 checkpoint (rosinality format)
    encoder: str = entry(text())  # pSp encoder checkpoint


@dataclass(frozen=True)
class Paths(Section):
    raw: dict = entry(mapping_of(text(), "corpus setting -> folder"))
    checkpoints: dict = entry(mapping_of(section(BackboneFiles), "preset -> {stylegan, encoder}"))


# --------------------------------------------------------------------------------------------- pretrain
@dataclass(frozen=True)
class PretrainCorpus(Section):
    faces: int = entry(integer(minimum=1))
    seed: int = entry(integer(minimum=0))
    styles: tuple = entry(list_of(text(), "style names"))


@dataclass(frozen=True)
class GeneratorPretrain(Section):
    """`training.gan.GANRecipe`'s fields; the optional ones default to the recipe's own values."""

    steps: int = entry(integer(minimum=1))
    batch_size: int = entry(integer(minimum=1))
    lr: float = entry(number(above=0))
    r1_gamma: float = entry(number(minimum=0))
    r1_every: int = entry(integer(minimum=1))
    style_mixing: float = entry(number(minimum=0, maximum=1))
    ema_half_life_kimg: float = entry(number(above=0))
    seed: int = entry(integer(minimum=0))
    beta2: float | None = entry(optional(number(minimum=0, below=1)), default=None)
    flip: bool | None = entry(optional(boolean()), default=None)
    checkpoint_every: int | None = entry(optional(integer(minimum=1)), default=None)
    sample_every: int | None = entry(optional(integer(minimum=1)), default=None)
    log_every: int | None = entry(optional(integer(minimum=1)), default=None)

    def recipe_kwargs(self) -> dict:
        """The keyword arguments of the recipe: the fields set in params.yaml."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__ if getattr(self, f) is not None}


@dataclass(frozen=True)
class EncoderPretrain(Section):
    """`training.inversion.InversionRecipe`'s fields; the optional ones default to the recipe's own values."""

    steps: int = entry(integer(minimum=1))
    batch_size: int = entry(integer(minimum=1))
    lr: float = entry(number(above=0))
    holdout: int = entry(integer(minimum=0))
    seed: int = entry(integer(minimum=0))
    l1_weight: float | None = entry(optional(number(minimum=0)), default=None)
    half_res_weight: float | None = entry(optional(number(minimum=0)), default=None)
    flip: bool | None = entry(optional(boolean()), default=None)
    checkpoint_every: int | None = entry(optional(integer(minimum=1)), default=None)
    log_every: int | None = entry(optional(integer(minimum=1)), default=None)

    recipe_kwargs = GeneratorPretrain.recipe_kwargs


@dataclass(frozen=True)
class Pretrain(Section):
    corpus: PretrainCorpus = entry(section(PretrainCorpus))
    generator: GeneratorPretrain = entry(section(GeneratorPretrain))
    encoder: EncoderPretrain = entry(section(EncoderPretrain))


# ------------------------------------------------------------------------------------ stages' settings
@dataclass(frozen=True)
class Prepare(Section):
    workers: int = entry(integer(minimum=1))  # alignment processes
    transform_size: int | None = entry(optional(integer(minimum=256)))  # null: align straight to 256 px
    padding: str = entry(choice(*PADDINGS))
    detect_upsample: dict = entry(mapping_of(choice(0, 1, 2), "corpus setting -> 0, 1 or 2"))


@dataclass(frozen=True)
class Evaluation(Section):
    cross_domain_protocol: str = entry(choice(*PROTOCOLS))
    cross_domain_folds: str | dict = entry(one_or_per_corpus(choice(*CROSS_DOMAIN_FOLDS),
                                                             f"one of {', '.join(CROSS_DOMAIN_FOLDS)}"))


@dataclass(frozen=True)
class Efficiency(Section):
    protocol: str = entry(choice(*PROTOCOLS))
    seeds: tuple = entry(SEEDS)
    sizes: dict = entry(mapping_of(SIZES, "corpus setting -> list of sizes"))
    subsets: dict = entry(mapping_of(choice(*SUBSET_SOURCES), "corpus setting -> official | seeded"))


@dataclass(frozen=True)
class Fast(Section):
    enabled: bool = entry(boolean())
    precision: str = entry(choice(*PRECISIONS))
    compile: bool = entry(boolean())

    def settings(self) -> dict:
        """The block as `models.make_fast_from_params` takes it."""
        return {"enabled": self.enabled, "precision": self.precision, "compile": self.compile}


def _attempts(key, value) -> dict:
    """`compare.attempts`: name -> recipe fields (as `train:` takes them) that an attempt changes."""
    attempts = named_recipes(value, key, "attempt name")
    for name, recipe in attempts.items():
        if not recipe:
            raise ConfigError(f"{key}.{name} must change at least one recipe field, got {value[name]!r}")
    return attempts


@dataclass(frozen=True)
class Compare(Section):
    protocol: str = entry(choice(*PROTOCOLS))
    seeds: tuple = entry(SEEDS)
    sizes: tuple = entry(SIZES)
    attempts: dict = entry(_attempts)  # other recipes for both backbones (full training sets)


@dataclass(frozen=True)
class Runtime(Section):
    device: str = entry(text())  # cpu | cuda
    workers: int = entry(integer(minimum=1))  # training runs in parallel (processes)
    threads: int = entry(integer(minimum=1))  # torch intra-op threads per run


# ------------------------------------------------------------------------------------------- the file
@dataclass(frozen=True)
class Config(Section):
    """params.yaml, checked. Build it with `fgnet_core.config.load_config` (or `parse_config`)."""

    corpus: str = entry(text())
    preset: str = entry(choice(*PRESETS))
    backbone: str = entry(choice(*BACKBONES))
    seed: int = entry(integer(minimum=0))
    seeds: tuple = entry(SEEDS)
    datasets: tuple = entry(list_of(_dataset, f"datasets ({', '.join(DATASETS)})"))
    folds: tuple = entry(list_of(integer(minimum=min(FOLDS), maximum=max(FOLDS)),
                                 f"folds ({', '.join(map(str, FOLDS))})"))
    protocols: tuple = entry(list_of(choice(*PROTOCOLS), f"protocols ({', '.join(PROTOCOLS)})"))
    paths: Paths = entry(section(Paths))
    pretrain: Pretrain = entry(section(Pretrain))
    prepare: Prepare = entry(section(Prepare))
    train: Train = entry(lambda key, value: Train.parse(value, key))
    evaluation: Evaluation = entry(section(Evaluation))
    efficiency: Efficiency = entry(section(Efficiency))
    fast: Fast = entry(section(Fast))
    compare: Compare = entry(section(Compare))
    runtime: Runtime = entry(section(Runtime))

    @property
    def recipe(self) -> TrainRecipe:
        """The training recipe of the active preset: its `train.recipes` entry, `train` overrides, `seed`."""
        return self.train.resolve(self.preset, self.seed)

    @property
    def cross_domain_folds(self) -> str:
        """`evaluation.cross_domain_folds` for the active corpus: 'first' (official fold-0 pairing) or 'all'."""
        value = self.evaluation.cross_domain_folds
        return value[self.corpus] if isinstance(value, dict) else value
