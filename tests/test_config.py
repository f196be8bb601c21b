"""The typed config: params.yaml read once into frozen dataclasses; bad keys, types and values fail at load with
one line that names the key, the value and what is allowed."""
from __future__ import annotations

import dataclasses
import pickle
import re

import pytest
import yaml

from fgnet_core.config import RECIPE_CHECKS, ConfigError, load_config, parse_config
from fgnet_core.paths import REPO_ROOT
from fgnet_core.training.recipe import TrainRecipe

TEXT = (REPO_ROOT / "params.yaml").read_text()


def _load_text(tmp_path, text: str):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return load_config(path)


def _load_edited(tmp_path, edit):
    params = yaml.safe_load(TEXT)
    edit(params)
    return _load_text(tmp_path, yaml.safe_dump(params))


def _replace_line(old: str, new: str) -> str:
    """params.yaml with one line's value replaced, as a user would type it (YAML reads it, not Python)."""
    pattern = re.compile(rf"^(\s*){re.escape(old)}(\s|$)", re.M)
    assert len(pattern.findall(TEXT)) == 1, old
    return pattern.sub(lambda m: f"{m.group(1)}{new}{m.group(2)}", TEXT)


def _fails(tmp_path, message: str, *, text: str | None = None, edit=None):
    with pytest.raises(ConfigError) as info:
        _load_text(tmp_path, text) if text is not None else _load_edited(tmp_path, edit)
    line = str(info.value)
    assert "\n" not in line and line.startswith(str(tmp_path / "params.yaml") + ": "), line
    assert re.search(message, line), line
    return line


# ------------------------------------------------------------------------- each case a new user might try
def test_negative_grad_clip_in_a_recipe(tmp_path):
    _fails(tmp_path, r"train\.recipes\.tiny\.grad_clip must be >= 0, got -1$",
           edit=lambda p: p["train"]["recipes"]["tiny"].update(grad_clip=-1))


def test_negative_grad_clip_as_an_override(tmp_path):
    _fails(tmp_path, r"train\.grad_clip must be >= 0, got -1$", edit=lambda p: p["train"].update(grad_clip=-1))


def test_fast_enabled_as_a_string(tmp_path):
    _fails(tmp_path, r"fast\.enabled must be true or false, got 'false'$",
           text=_replace_line("enabled: false", 'enabled: "false"'))


def test_lr_without_a_dot_is_text_in_yaml(tmp_path):
    _fails(tmp_path, r"train\.lr must be a finite number > 0, got '1e-3' \(YAML reads 1e-3 as text: write 1\.0e-3\)$",
           text=_replace_line("lr: null", "lr: 1e-3"))


def test_epochs_as_a_word(tmp_path):
    _fails(tmp_path, r"train\.epochs must be an integer >= 1, got 'ten'$",
           text=_replace_line("epochs: null", "epochs: ten"))


def test_fractional_epochs(tmp_path):
    _fails(tmp_path, r"train\.epochs must be an integer >= 1, got 2\.5$",
           text=_replace_line("epochs: null", "epochs: 2.5"))


def test_seed_as_a_word(tmp_path):
    _fails(tmp_path, r"^\S+: seed must be an integer >= 0, got 'zero'$", text=_replace_line("seed: 0 ", "seed: zero "))


def test_nan_lr(tmp_path):
    _fails(tmp_path, r"train\.lr must be a finite number > 0, got nan$", text=_replace_line("lr: null", "lr: .nan"))


def test_negative_weight_decay(tmp_path):
    _fails(tmp_path, r"train\.recipes\.tiny\.weight_decay must be >= 0, got -5$",
           edit=lambda p: p["train"]["recipes"]["tiny"].update(weight_decay=-5))


def test_a_fold_that_does_not_exist(tmp_path):
    _fails(tmp_path, r"folds must be a non-empty list of distinct folds \(0, 1, 2\), got \[0, 5\]$",
           edit=lambda p: p.update(folds=[0, 5]))


def test_datasets_as_a_string(tmp_path):
    _fails(tmp_path, r"datasets must be a non-empty list of distinct datasets \(BP4D, DISFA\), got 'BP4D'$",
           edit=lambda p: p.update(datasets="BP4D"))


def test_train_block_null(tmp_path):
    _fails(tmp_path, r"train must be a mapping .*, got None$", edit=lambda p: p.update(train=None))


def test_misspelled_train_key(tmp_path):
    _fails(tmp_path, r"unknown field train\.epoch: 3; a recipe takes lr, .*epochs",
           edit=lambda p: p["train"].update(epoch=3))


@pytest.mark.parametrize("block, key", [("runtime", "thread"), ("fast", "enable"), ("efficiency", "seed")])
def test_misspelled_nested_key(tmp_path, block, key):
    _fails(tmp_path, rf"unknown field {block}\.{key}: 1; {block} takes ", edit=lambda p: p[block].update({key: 1}))


def test_misspelled_key_deeper_down(tmp_path):
    _fails(tmp_path, r"unknown field pretrain\.generator\.step: 2; pretrain\.generator takes steps, ",
           edit=lambda p: p["pretrain"]["generator"].update(step=2))


@pytest.mark.parametrize("edit, message", [
    (lambda p: p["runtime"].update(workers=True), r"runtime\.workers must be an integer >= 1, got True$"),
    (lambda p: p.update(seeds=[True]), r"seeds must be .*got \[True\]$"),
    (lambda p: p["fast"].update(compile=1), r"fast\.compile must be true or false, got 1$"),
    (lambda p: p["prepare"]["detect_upsample"].update(demo=True), r"prepare\.detect_upsample\.demo True is not one of"),
    (lambda p: p["train"]["recipes"]["tiny"].update(amp=0), r"train\.recipes\.tiny\.amp must be true or false, got 0$"),
])
def test_booleans_and_integers_do_not_stand_in_for_each_other(tmp_path, edit, message):
    _fails(tmp_path, message, edit=edit)


def test_a_missing_key_is_named(tmp_path):
    _fails(tmp_path, r"runtime\.threads must be an integer >= 1, got None \(the key is missing\)$",
           edit=lambda p: p["runtime"].pop("threads"))


# ---------------------------------------------------------------------------------------- the recipe
def test_every_recipe_field_has_a_check():
    assert list(RECIPE_CHECKS) == [f.name for f in dataclasses.fields(TrainRecipe)]


def test_repository_recipe_is_resolved_once_at_load():
    config = load_config()
    assert config.recipe == TrainRecipe(lr=2e-3, weight_decay=5e-4, batch_size=16, epochs=7, iterations=21,
                                        heatmap_size=32, sigma=5.0, grad_clip=1.0, dropout=0.1, au_balance=0.5,
                                        checkpoint_every=10, seed=0)
    assert config.derive(seed=4).recipe.seed == 4  # a run's own seed seeds its recipe
    assert config.derive(preset="official").recipe == TrainRecipe()  # the official recipe: TrainRecipe's defaults


def test_official_recipe_may_be_omitted(tmp_path):
    def edit(p):
        p["train"]["recipes"].pop("official")
        p.update(preset="official")
    config = _load_edited(tmp_path, edit)
    assert config.recipe == TrainRecipe()
    _fails(tmp_path, r"no recipe for preset 'tiny'", edit=lambda p: p["train"]["recipes"].pop("tiny"))


def test_overrides_apply_to_the_active_recipe_only(tmp_path):
    config = _load_text(tmp_path, _replace_line("epochs: null", "epochs: 1"))
    assert config.recipe.epochs == 1 and config.train.recipes["tiny"]["epochs"] == 7


# ------------------------------------------------------------------------------------ the config object
def test_config_is_frozen_and_pickles():
    config = load_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.overrides = {}
    again = pickle.loads(pickle.dumps(config.recording(set())))  # worker processes get the config pickled
    assert again.recipe == config.recipe and again.datasets == ("BP4D", "DISFA") and again.folds == (0, 1, 2)


def test_parse_config_takes_a_mapping_and_names_its_source():
    params = yaml.safe_load(TEXT)
    assert parse_config(params) == load_config()
    params["preset"] = "huge"
    with pytest.raises(ConfigError, match=r"^edited: preset 'huge' is not one of official, tiny$"):
        parse_config(params, "edited")


def test_compare_attempts_are_recipe_changes():
    config = load_config()
    assert config.compare.attempts == {"frozen": {"freeze_backbone": True}, "gentle": {"lr": 5.0e-4}}


def test_an_attempt_with_a_bad_recipe_value_is_named(tmp_path):
    _fails(tmp_path, r"compare\.attempts\.gentle\.lr must be > 0, got -1$",
           edit=lambda p: p["compare"]["attempts"].update(gentle={"lr": -1}))


def test_an_attempt_that_changes_nothing_is_refused(tmp_path):
    _fails(tmp_path, r"compare\.attempts\.same must change at least one recipe field",
           edit=lambda p: p["compare"]["attempts"].update(same={}))
