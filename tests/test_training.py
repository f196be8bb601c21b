"""Training loop: deterministic on CPU, resumable mid-epoch with identical results, stops on divergence."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fgnet_core import checkpoints
from fgnet_core.evaluation.metrics import cross_domain_f1, dataset_f1, mean_over_folds, per_au_f1
from fgnet_core.models import FGNet
from fgnet_core.presets import get_preset
from fgnet_core.training import loop
from fgnet_core.config import resolve_recipe
from fgnet_core.training.recipe import TrainRecipe
from tests.toy_data import ToySet

PRESET = get_preset("tiny", out_channels=8, heatmap_size=16, generator_size=32,
                    generator_channels={4: 8, 8: 8, 16: 8, 32: 8}, encoder_input_size=64,
                    encoder_widths=(4, 8, 8, 16), style_dim=16)


RECIPE = TrainRecipe(lr=2e-3, batch_size=4, epochs=2, iterations=5, heatmap_size=16, sigma=2.0, grad_clip=1.0,
                     checkpoint_every=2, eval_batch_size=8, seed=3)


def _model(seed=0):
    torch.manual_seed(seed)
    return FGNet(PRESET)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_is_deterministic_and_writes_outputs(tmp_path):
    data, val = ToySet(16), ToySet(8, seed=1)
    results = []
    for run in ("a", "b"):
        model = _model()
        res = loop.train(model, data, RECIPE, tmp_path / run, "DISFA", selection_set=val, log=lambda s: None)
        results.append((_weights(model), res))
    (w_a, r_a), (w_b, r_b) = results
    assert all(torch.equal(w_a[k], w_b[k]) for k in w_a)
    assert [h["loss"] for h in r_a.history] == [h["loss"] for h in r_b.history]
    assert len(r_a.history) == 2 and {"epoch", "loss", "selection_f1"} <= set(r_a.history[0])
    assert (tmp_path / "a" / "history.csv").read_text().startswith("epoch,loss")
    best, ckpt = checkpoints.load_training_checkpoint(tmp_path / "a" / "best.pt")
    assert ckpt["epoch"] == r_a.best_epoch


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    data = ToySet(16)
    straight = _model()
    loop.train(straight, data, RECIPE, tmp_path / "straight", "DISFA", log=lambda s: None)

    interrupted = _model()
    loop.train(interrupted, data, RECIPE, tmp_path / "resumed", "DISFA", log=lambda s: None,
               stop_after_iterations=3)  # mid-epoch 1
    logs = []
    resumed = _model(seed=99)  # a fresh process would start from other weights
    loop.train(resumed, data, RECIPE, tmp_path / "resumed", "DISFA", log=logs.append)
    assert any("resuming" in line for line in logs)
    ws, wr = _weights(straight), _weights(resumed)
    assert all(torch.allclose(ws[k].float(), wr[k].float(), atol=0, rtol=0) for k in ws)


def test_non_finite_loss_stops_with_clear_message_and_keeps_last_good(tmp_path, monkeypatch):
    data = ToySet(16)
    model = _model()
    calls = {"n": 0}
    real = loop.heatmap_loss

    def poisoned(pred, target, weights=None):
        calls["n"] += 1
        out = real(pred, target, weights)
        return out * float("nan") if calls["n"] == 4 else out

    monkeypatch.setattr(loop, "heatmap_loss", poisoned)
    with pytest.raises(loop.TrainingDiverged, match=r"loss is nan at epoch 1, iteration 4.*last\.pt"):
        loop.train(model, data, RECIPE, tmp_path, "DISFA", log=lambda s: None)
    _, ckpt = checkpoints.load_training_checkpoint(tmp_path / "last.pt")
    assert ckpt["state"]["iteration"] == 2  # checkpoint_every=2: the last good state before the NaN
    assert checkpoints.is_finite_model(checkpoints.load_training_checkpoint(tmp_path / "last.pt")[0])


def test_freeze_backbone_trains_only_the_interpreter(tmp_path):
    model = _model()
    before = _weights(model)
    recipe = TrainRecipe(**{**RECIPE.to_dict(), "freeze_backbone": True, "epochs": 1})
    loop.train(model, ToySet(8), recipe, tmp_path, "DISFA", log=lambda s: None)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("encoder.", "generator.")))
    assert not torch.equal(before["interpreter.layer0.1.weight"], after["interpreter.layer0.1.weight"])


def test_recipe_resolution_and_overrides():
    params = {"epochs": None, "lr": 1e-3, "recipes": {"official": {}, "tiny": {"epochs": 4, "lr": 5e-3}}}
    assert resolve_recipe(params, "official").epochs == 15
    tiny = resolve_recipe(params, "tiny", seed=7)
    assert tiny.epochs == 4 and tiny.lr == 1e-3 and tiny.seed == 7
    with pytest.raises(ValueError, match="no recipe for preset"):
        resolve_recipe(params, "huge")
    with pytest.raises(ValueError, match="unknown field"):
        resolve_recipe({**params, "epoch": 3}, "tiny")


def test_f1_matches_sklearn_binary_and_cross_domain_mapping():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, (50, 8)), rng.integers(0, 2, (50, 8))
    from sklearn.metrics import f1_score

    scores = dataset_f1(y, p, "DISFA")
    assert scores["AU09"] == pytest.approx(100 * f1_score(y[:, 4], p[:, 4]))
    assert scores["avg"] == pytest.approx(np.mean([100 * f1_score(y[:, i], p[:, i]) for i in range(8)]))
    assert per_au_f1(np.zeros((4, 1)), np.zeros((4, 1)), [1])["AU01"] == 0.0  # sklearn's zero_division=0
    # BP4D model (12 channels) scored on DISFA labels: channels [0,1,2,3,6] vs DISFA columns [0,1,2,3,5]
    bp4d_pred = np.zeros((50, 12), int)
    bp4d_pred[:, [0, 1, 2, 3, 6]] = y[:, [0, 1, 2, 3, 5]]
    cross = cross_domain_f1(y, bp4d_pred, source="BP4D", target="DISFA")
    assert list(cross) == ["AU01", "AU02", "AU04", "AU06", "AU12", "avg"] and cross["avg"] == 100.0
    assert mean_over_folds([{"avg": 10.0}, {"avg": 20.0}])["avg"] == 15.0


def test_loss_decreases_on_a_tiny_batch(tmp_path):
    """Eight toy faces, 16 steps: the heatmap MSE must fall well below where it started."""
    from dataclasses import replace

    recipe = replace(RECIPE, epochs=8, iterations=2, lr=3e-3)
    result = loop.train(_model(), ToySet(8), recipe, tmp_path, "DISFA", log=lambda s: None)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.6 * losses[0], losses
    assert sum(b < a for a, b in zip(losses, losses[1:])) >= 6, losses  # falling epoch after epoch


# ----------------------------------------------------------------------------
# class-balancing loss weights (au_balance)


def test_au_balance_weights_equalise_the_classes_and_average_one():
    labels = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 9.0]])  # 9: BP4D "unknown" counts as absent
    prevalence = np.array([0.25, 0.8])
    w = loop.au_balance_weights(labels, prevalence, 1.0)
    assert torch.allclose(w, torch.tensor([[2.0, 2.5], [2 / 3, 2.5], [2 / 3, 0.625], [2 / 3, 2.5]]))
    # in expectation both classes weigh the same and the mean weight is 1
    assert prevalence[0] * 2.0 == pytest.approx((1 - prevalence[0]) * 2 / 3)
    assert prevalence[0] * 2.0 + (1 - prevalence[0]) * 2 / 3 == pytest.approx(1.0)
    assert torch.allclose(loop.au_balance_weights(labels, prevalence, 0.5), w.sqrt())
    assert torch.equal(loop.au_balance_weights(labels, prevalence, 0.0), torch.ones_like(w))


def test_weighted_heatmap_loss():
    torch.manual_seed(0)
    pred, target = torch.randn(3, 5, 4, 4), torch.randn(3, 4, 4, 4)  # one extra output channel is ignored
    plain = loop.heatmap_loss(pred, target)
    assert torch.allclose(loop.heatmap_loss(pred, target, torch.ones(3, 4)), plain)
    w = torch.zeros(3, 4)
    w[1, 2] = 12.0  # all the weight on one (image, AU): its MSE, times 12, over 12 cells
    assert torch.allclose(loop.heatmap_loss(pred, target, w), (pred[1, 2] - target[1, 2]).pow(2).mean())


def test_training_with_au_balance_uses_the_training_prevalence(tmp_path, monkeypatch):
    data = ToySet(16)
    seen = []
    real = loop.au_balance_weights
    monkeypatch.setattr(loop, "au_balance_weights", lambda lab, prev, power: seen.append((prev, power)) or
                        real(lab, prev, power))
    recipe = dataclasses.replace(RECIPE, epochs=1, au_balance=0.5)
    loop.train(_model(), data, recipe, tmp_path, "DISFA", log=lambda s: None)
    assert len(seen) == 4  # one pass over 16 images in batches of 4
    prev, power = seen[0]
    assert power == 0.5 and np.allclose(prev, data.labels.numpy().mean(0))


def test_au_balance_needs_labels_and_a_non_negative_power(tmp_path):
    class NoLabels(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return ToySet(4)[i]

    with pytest.raises(ValueError, match="au_balance needs a training set with a `labels` array; NoLabels"):
        loop.train(_model(), NoLabels(), dataclasses.replace(RECIPE, au_balance=1.0), tmp_path, "DISFA")
    with pytest.raises(ValueError, match="au_balance must be >= 0"):
        resolve_recipe({"recipes": {"tiny": {}}, "au_balance": -1}, "tiny")
