"""Multi-GPU training with torchrun + DistributedDataParallel: the training loop of `loop.py`, sharded.

    torchrun --nproc_per_node 8 -m fgnet_core.pipeline.distributed_run --dataset BP4D --fold 0 --protocol faithful

(the entry point, `pipeline/distributed_run.py`, plans one pipeline run and calls `train_ddp` here)

What stays the same as one process (so a run is the same training, only faster):
- `recipe.batch_size` is the GLOBAL batch. Every iteration takes the same seeded epoch order and the
  same global batch as `loop.train`; rank r loads and runs only its contiguous share of it.
- The loss is the mean over the global batch: each rank's local mean is weighted by
  n_local * world / n_global before DDP averages the gradients, so uneven last batches are exact too.
- BatchNorm statistics are computed over the global batch (SyncBatchNorm on CUDA; on CPU/gloo a
  cross-rank BatchNorm built on differentiable all-reduces), as one process would. Parameter names
  do not change, so checkpoints are the usual files.
- Checkpoints (last.pt / best.pt), history files and log lines are written by rank 0 only, in the
  same format and with the same run signature as `loop.train`: a run resumes across world sizes.
- Evaluation sets are sharded over ranks and gathered, so every rank picks the same best epoch.
Differences: dropout masks come from per-rank generators (statistically the same); floating-point
sums run in another order (results agree to float tolerance, not bit for bit).
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from fgnet_core.evaluation.predict_set import SetPredictions, predict_dataset
from fgnet_core.models.fgnet import FGNet
from fgnet_core.training.loop import OneProcess, TrainResult, train
from fgnet_core.training.recipe import TrainRecipe

# ----------------------------------------------------------------------------
# Process group


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"  # 'cpu' or 'cuda:<local_rank>'

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def device_type(self) -> str:
        return self.device.split(":")[0]


def init_from_env(device: str | None = None, backend: str | None = None, timeout_s: float = 1800.0) -> DistEnv:
    """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK (absent: one process) and join the process group.

    device: 'cuda' (one GPU per local rank, NCCL) or 'cpu' (gloo); default cuda when available.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dev = f"cuda:{local_rank}" if use_cuda else "cpu"
    if world > 1 and not dist.is_initialized():
        kwargs = {"device_id": torch.device(dev)} if use_cuda else {}
        dist.init_process_group(backend or ("nccl" if use_cuda else "gloo"), timeout=timedelta(seconds=timeout_s),
                                **kwargs)
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


# ----------------------------------------------------------------------------
# Sharding


def shard_batch(idx: list[int], rank: int, world: int) -> tuple[list[int], float]:
    """Rank `rank`'s contiguous share of one global batch and its loss weight n_local * world / n_global.

    Shares differ by at most one item. With fewer items than ranks, empty ranks get weight 0 (they
    still run a forward on one item so the collectives line up; that item adds nothing to the gradient).
    """
    n = len(idx)
    base, extra = divmod(n, world)
    sizes = [base + (r < extra) for r in range(world)]
    start = sum(sizes[:rank])
    local = idx[start:start + sizes[rank]]
    return local, (len(local) * world / n if n else 0.0)


def shard_indices(n: int, rank: int, world: int) -> list[int]:
    """Contiguous shard of range(n) for evaluation (gathered back in order)."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return list(range(start, start + base + (rank < extra)))


# ----------------------------------------------------------------------------
# BatchNorm over the global batch


class CrossRankBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the batch of all ranks (any backend, CPU included).

    Two differentiable all-reduces (count + sum, then the centred sum of squares: a stable two-pass
    variance). Eval mode and single-process runs are plain BatchNorm2d. Same parameters and buffers.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        with warnings.catch_warnings():  # deprecated in favour of a private API; still the differentiable one
            warnings.simplefilter("ignore", FutureWarning)
            from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        xf = x.float()
        local_n = xf.new_tensor([x.numel() // c], dtype=torch.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            first = all_reduce(torch.cat([xf.sum(dim=(0, 2, 3)), local_n]))
            n = first[c]
            mean = first[:c] / n
            centred = xf - mean.view(1, c, 1, 1)
            var = all_reduce(centred.square().sum(dim=(0, 2, 3))) / n  # biased, for normalisation
        y = centred * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)).clamp(min=1.0), alpha=m)
        return y.to(x.dtype)


def convert_batchnorm(model: nn.Module, kind: str) -> nn.Module:
    """Replace BatchNorm2d modules by a synchronised kind ('torch' SyncBatchNorm or 'cross_rank'); keys kept."""
    if kind == "torch":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if kind != "cross_rank":
        raise ValueError(f"unknown BatchNorm kind {kind!r}")
    for name, child in list(model.named_children()):
        if type(child) is nn.BatchNorm2d:
            new = CrossRankBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                       child.track_running_stats, device=child.running_mean.device,
                                       dtype=child.running_mean.dtype)
            new.load_state_dict(child.state_dict())
            new.train(child.training)
            if child.affine:  # keep the very Parameter objects (an optimizer may already hold them)
                new.weight, new.bias = child.weight, child.bias
            setattr(model, name, new)
        else:
            convert_batchnorm(child, kind)
    return model


# ----------------------------------------------------------------------------
# DDP


def unused_parameter_names(model: FGNet) -> list[str]:
    """Parameters FG-Net's forward never reads (the RGB branch; layers and W+ rows past the last map
    the interpreter reads). DDP must not wait for their gradients."""
    last = max(model.feature_layers)  # feature j >= 1 is layer j - 1 of [conv1, convs...], W+ row j - 1
    names = []
    for name, _ in model.named_parameters():
        conv = re.match(r"generator\.convs\.(\d+)\.", name)
        head = re.match(r"encoder\.encoder\.styles\.(\d+)\.", name)
        if (name.startswith("generator.to_rgb") or (conv and int(conv[1]) + 2 > last)
                or (head and int(head[1]) > last - 1)):
            names.append(name)
    return names


def wrap_ddp(model: FGNet, env: DistEnv, find_unused_parameters: bool = False, **kwargs) -> nn.Module:
    """DistributedDataParallel around `model` (returned as is for one process)."""
    if not env.distributed:
        return model
    DDP._set_params_and_buffers_to_ignore_for_model(model, unused_parameter_names(model))
    device_ids = [env.local_rank] if env.device_type == "cuda" else None
    return DDP(model, device_ids=device_ids, broadcast_buffers=False, gradient_as_bucket_view=True,
               find_unused_parameters=find_unused_parameters, **kwargs)


def _all_sum(value: float, env: DistEnv) -> float:
    if not env.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=env.device)
    dist.all_reduce(t)
    return float(t.item())


def predict_sharded(model: FGNet, dataset, batch_size: int, env: DistEnv, amp: bool = False) -> SetPredictions:
    """predict_dataset over this rank's shard, gathered in dataset order on every rank."""
    if not env.distributed:
        return predict_dataset(model, dataset, batch_size, device=env.device_type, amp=amp)
    part = torch.utils.data.Subset(dataset, shard_indices(len(dataset), env.rank, env.world_size))
    mine = predict_dataset(model, part, batch_size, device=env.device_type, amp=amp) if len(part) else None
    gathered: list = [None] * env.world_size
    dist.all_gather_object(gathered, mine)
    parts = [g for g in gathered if g is not None]
    return SetPredictions(np.concatenate([p.labels for p in parts]), np.concatenate([p.predictions for p in parts]),
                          np.concatenate([p.scores for p in parts]), [q for p in parts for q in p.paths])


# ----------------------------------------------------------------------------
# The loop: loop.train with the work sharded over the ranks


class DDPRanks(OneProcess):
    """`loop.train`'s placement over torchrun ranks: shards each global batch, synchronises BatchNorm,
    wraps the model in DDP, averages the logged loss and shards evaluation (see the module docstring)."""

    def __init__(self, env: DistEnv, sync_batchnorm: str = "auto"):
        super().__init__(env.device)
        self.env = env
        self.world_size = env.world_size
        self.is_main = env.is_main
        self.sync_batchnorm = sync_batchnorm

    def prepare(self, model: FGNet, state: dict, seed: int) -> nn.Module:
        env = self.env
        if env.distributed and self.sync_batchnorm != "none":
            kind = self.sync_batchnorm if self.sync_batchnorm != "auto" else (
                "torch" if env.device_type == "cuda" else "cross_rank")
            convert_batchnorm(model, kind)  # the same Parameter objects: the optimizer keeps them
        if env.rank > 0:  # own dropout masks per rank; rank 0 keeps the single-process stream
            torch.manual_seed(seed * 1_000_003 + env.rank * 7919 + state["epoch"] * 101 + state["iteration"])
        return wrap_ddp(model, env)

    def shard(self, idx: list[int]) -> tuple[list[int], float]:
        return shard_batch(idx, self.env.rank, self.env.world_size)

    def mean_loss(self, loss: torch.Tensor, n_local: int, n_global: int) -> float:
        if not self.env.distributed:
            return float(loss.item())
        return _all_sum(float(loss.detach()) * n_local, self.env) / n_global

    def predict(self, model: FGNet, eval_set, batch_size: int, amp: bool):
        return predict_sharded(model, eval_set, batch_size, self.env, amp=amp)

    def barrier(self) -> None:
        barrier(self.env)


def train_ddp(model: FGNet, train_set, recipe: TrainRecipe, out_dir: str | Path, dataset: str, *, env: DistEnv,
              sync_batchnorm: str = "auto", **kwargs) -> TrainResult:
    """`loop.train` over `env.world_size` processes (see the module docstring); with one process it is
    the same computation as `loop.train`. sync_batchnorm: 'auto' (SyncBatchNorm on CUDA, cross-rank on
    CPU), 'torch', 'cross_rank' or 'none' (per-rank statistics). Other arguments: those of `loop.train`."""
    return train(model, train_set, recipe, out_dir, dataset, ranks=DDPRanks(env, sync_batchnorm), **kwargs)
