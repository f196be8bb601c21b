"""DDP training (training/distributed.py): 2 CPU processes under torchrun (gloo) == one process.

Run as a script, this file is the torchrun worker: `torchrun --nproc_per_node 2 tests/test_distributed.py OUT`.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))

from fgnet_core.models import FGNet  # noqa: E402
from fgnet_core.models import make_fast  # noqa: E402
from fgnet_core.presets import get_preset  # noqa: E402
from fgnet_core.training import distributed as ddp  # noqa: E402
from fgnet_core.training import loop  # noqa: E402
from fgnet_core.training.recipe import TrainRecipe  # noqa: E402
from tests.toy_data import ToySet  # noqa: E402

# small, BatchNorm everywhere (encoder + interpreter), dropout 0: runs compare to float tolerance
PRESET = get_preset("tiny", out_channels=8, heatmap_size=16, generator_size=32, dropout=0.0,
                    generator_channels={4: 8, 8: 8, 16: 8, 32: 8}, encoder_input_size=64,
                    encoder_widths=(4, 8, 8, 16), style_dim=16)
# global batch 5 over 2 ranks: shares 3 + 2, and a last batch of 3 (13 items): uneven shares are exact too
RECIPE = TrainRecipe(lr=2e-3, batch_size=5, epochs=2, iterations=3, heatmap_size=16, sigma=2.0, grad_clip=1.0,
                     checkpoint_every=100, eval_batch_size=4, seed=3)
N_TRAIN = 13


def _model():
    torch.manual_seed(0)
    return FGNet(PRESET)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


STEP_IDX = [0, 1, 2, 3, 4]  # one global batch for the first-step gradient check


def _first_step(model, env):
    """One forward/backward of the global batch STEP_IDX (sharded when distributed); grads and BN stats."""
    from fgnet_core.training.loop import _collate, heatmap_loss

    data = ToySet(N_TRAIN)
    local, weight = ddp.shard_batch(STEP_IDX, env.rank, env.world_size)
    if env.distributed:
        ddp.convert_batchnorm(model, "cross_rank")
    net = ddp.wrap_ddp(model, env)
    model.train()
    batch = _collate([data[i] for i in local])
    (heatmap_loss(net(batch["image"]), batch["heatmap"]) * weight).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}
    return grads, stats


def _worker(out_dir: str) -> None:
    torch.set_num_threads(1)
    env = ddp.init_from_env("cpu")
    try:
        grads, stats = _first_step(_model(), env)
        fast_grads, _ = _first_step(make_fast(_model(), precision="fp32"), env)  # channels_last fast path
        torch.save({"grads": grads, "stats": stats, "fast_grads": fast_grads},
                   Path(out_dir) / f"step_rank{env.rank}.pt")
        model = _model()
        res = ddp.train_ddp(model, ToySet(N_TRAIN), RECIPE, Path(out_dir) / "run", "DISFA", env=env,
                            selection_set=ToySet(6, seed=1), log=lambda s: None)
        torch.save({"state": _state(model), "history": res.history, "best_epoch": res.best_epoch},
                   Path(out_dir) / f"rank{env.rank}.pt")
    finally:
        ddp.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------


def test_shards_cover_the_global_batch_in_order_with_exact_weights():
    idx = list(range(10, 17))  # 7 items over 3 ranks: 3 + 2 + 2
    shards = [ddp.shard_batch(idx, r, 3) for r in range(3)]
    assert [s for s, _ in shards] == [[10, 11, 12], [13, 14], [15, 16]]
    # DDP averages the weighted local means: (1/W) sum_r w_r mean_r == the global-batch mean
    values = {i: float(i * i % 7) for i in idx}
    averaged = sum(w * sum(values[i] for i in s) / len(s) for s, w in shards) / 3
    assert averaged == pytest.approx(sum(values.values()) / len(idx))
    assert ddp.shard_batch([4], 1, 2) == ([], 0.0)
    assert [ddp.shard_indices(5, r, 2) for r in range(2)] == [[0, 1, 2], [3, 4]]


def test_unused_parameters_are_exactly_those_without_gradient():
    model = _model().train()
    out = model(torch.rand(2, 3, 256, 256) * 2 - 1)
    out.square().mean().backward()
    without = {n for n, p in model.named_parameters() if p.grad is None}
    zero = {n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()}
    unused = set(ddp.unused_parameter_names(model))
    assert without and without <= unused <= zero  # DDP must ignore every parameter autograd never reaches
    assert {n for n in unused if "to_rgb" not in n} == {n for n in zero if ".styles.7." in n}  # row 7: RGB only


@pytest.mark.slow
def test_one_process_train_ddp_is_loop_train(tmp_path):
    """Guards against drift between the two loops: with one process they are the same computation."""
    data, val = ToySet(N_TRAIN), ToySet(6, seed=1)
    a, b = _model(), _model()
    ra = loop.train(a, data, RECIPE, tmp_path / "loop", "DISFA", selection_set=val, log=lambda s: None)
    rb = ddp.train_ddp(b, data, RECIPE, tmp_path / "ddp", "DISFA", env=ddp.DistEnv(), selection_set=val,
                       log=lambda s: None)
    sa, sb = _state(a), _state(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert ra.history == [{**h, "seconds": r["seconds"]} for h, r in zip(rb.history, ra.history)]
    assert ra.best_epoch == rb.best_epoch


def _rel_update_diff(a: dict, b: dict, init: dict) -> float:
    """|| (a - init) - (b - init) || / || b - init || over all parameters."""
    keys = [k for k in b if b[k].is_floating_point() and "running_" not in k]
    num = sum(float((a[k] - b[k]).double().square().sum()) for k in keys)
    den = sum(float((b[k] - init[k]).double().square().sum()) for k in keys)
    return (num / den) ** 0.5


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(Path(__file__).resolve()), str(tmp_path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(REPO_ROOT))
    # meanwhile, the one-process references, with the ranks' one thread: the comparison is about sharding, and
    # another thread count rounds differently (Adam then amplifies it, most in the mapping network's weights,
    # which equalized lr stores 100x larger)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref_grads, ref_stats = _first_step(_model(), ddp.DistEnv())
        init, single = _state(_model()), _model()
        ref = loop.train(single, ToySet(N_TRAIN), RECIPE, tmp_path / "single", "DISFA",
                         selection_set=ToySet(6, seed=1), log=lambda s: None)
    finally:
        torch.set_num_threads(threads)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]

    # 1) one step: the gradients of the sharded global batch (cross-rank BatchNorm) are the one-process ones
    for rank in (0, 1):
        step = torch.load(tmp_path / f"step_rank{rank}.pt", weights_only=False)
        assert step["grads"].keys() == ref_grads.keys()
        for k, g in ref_grads.items():
            assert (step["grads"][k] - g).abs().max() <= 1e-4 * g.abs().max() + 1e-9, k
        for k, v in ref_stats.items():
            assert torch.allclose(step["stats"][k], v, rtol=1e-5, atol=1e-6), k
        assert step["fast_grads"].keys() == ref_grads.keys()  # the fast path under DDP: same gradients
        for k, g in ref_grads.items():
            assert (step["fast_grads"][k] - g).abs().max() <= 1e-3 * g.abs().max() + 1e-9, k

    # 2) a whole run: both ranks end with identical weights ...
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in r0["state"])
    # ... equal to the one-process run up to float rounding, which Adam at this toy learning rate
    # amplifies step by step (a 1e-6 weight perturbation gives ~1e-3 here): compare the updates
    assert _rel_update_diff(r0["state"], _state(single), init) < 2e-2
    assert [h["loss"] for h in r0["history"]] == pytest.approx([h["loss"] for h in ref.history], rel=1e-3)
    assert r0["best_epoch"] == ref.best_epoch
    # rank 0 alone wrote the run's files, in the usual formats
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["best.pt", "history.csv", "history.json", "last.pt"]


if __name__ == "__main__":
    _worker(sys.argv[1])
