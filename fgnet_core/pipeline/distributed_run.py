"""One pipeline run (dataset x fold x protocol) trained over all torchrun ranks with DistributedDataParallel.

    torchrun --nproc_per_node 8 -m fgnet_core.pipeline.distributed_run --dataset BP4D --fold 0 --protocol faithful

The training itself is `training.distributed` (see its docstring for what stays the same as one process);
this module plans the run as the pipeline's `train_run` does and records it where the training stages look.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fgnet_core import checkpoints
from fgnet_core.config.schema import PRECISIONS
from fgnet_core.pipeline import runs, sweep
from fgnet_core.pipeline.config import Config, RunSpec, canonical_dataset, layout, load_config
from fgnet_core.training.distributed import DistEnv, cleanup, init_from_env, predict_sharded, train_ddp


def ddp_train_run(config: Config, dataset: str, fold: int, protocol: str, env: DistEnv, *, size: int | None = None,
                  seed: int | None = None, fast: dict | None = None, log=print, lay=None):
    """`pipeline.runs.train_run` with the training sharded over ranks; rank 0 scores the test set and records the
    run where the pipeline's training stages keep it (`Layout.run_dir_of`), so a stage finds it finished.
    Returns the RunOutput on rank 0 (None elsewhere). config: the typed params.yaml; seed: default the first of
    its `seeds`.
    lay: the pipeline Layout (default: this repository's)."""
    spec = RunSpec(canonical_dataset(dataset), int(fold), protocol, int(config.seeds[0] if seed is None else seed),
                   int(size or 0), config.backbone)
    config = sweep.run_config(config, spec)
    if fast is not None:  # the command line's fast path in place of params.yaml's (build_model applies it)
        config = config.derive(fast=config.fast.derive(enabled=True, **fast))
    lay = lay or layout(config)
    recipe = config.recipe
    plan = runs.plan_run(config, lay, dataset, fold, protocol, size)
    run_dir = lay.run_dir_of(spec)
    lines: list[str] = []

    def log_both(line: str) -> None:
        lines.append(line)
        log(line)

    if env.is_main:
        log_both(f"{spec.name}: {len(plan.train_set)} training frames on {env.world_size} ranks (global batch "
                 f"{recipe.batch_size}), selecting on {plan.select_split} ({len(plan.selection_set)} frames), "
                 f"preset {config.preset}")
    model = runs.build_model(config, lay)
    result = train_ddp(model, plan.train_set, recipe, run_dir, plan.dataset, env=env,
                       selection_set=plan.selection_set, eval_sets=plan.eval_sets, log=log_both,
                       run_params=plan.run_params)
    best, _ = checkpoints.load_training_checkpoint(result.best_path)
    preds = predict_sharded(best.to(env.device), plan.test_set, recipe.eval_batch_size, env, amp=recipe.amp)
    if not env.is_main:
        return None
    out = runs.score_run(spec.name, run_dir, preds, plan.dataset, fold, protocol, result,
                         len(plan.train_set), world_size=env.world_size)
    sweep.record_run(run_dir, spec, out.metrics, lines)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fgnet_core.pipeline.distributed_run",
                                 description="one training run over all torchrun ranks (DDP)")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--fold", type=int, required=True)
    ap.add_argument("--protocol", default="faithful")
    ap.add_argument("--size", type=int, default=None, help="train on the train_<size> subset prepare wrote")
    ap.add_argument("--seed", type=int, default=None, help="the run's seed (default: the first of params.yaml seeds)")
    ap.add_argument("--params", type=Path, default=None, help="params.yaml (default: the repository's)")
    ap.add_argument("--device", default=None, help="cuda (default when present) or cpu")
    ap.add_argument("--fast", action="store_true", help="run the fast mode (models/modes.py)")
    ap.add_argument("--precision", default="bf16", choices=list(PRECISIONS), help="fast path precision")
    ap.add_argument("--compile", action="store_true", help="torch.compile the fast path")
    args = ap.parse_args(argv)

    env = init_from_env(args.device)
    try:
        config = load_config(args.params)
        fast = {"precision": args.precision, "compile": args.compile} if args.fast else None
        out = ddp_train_run(config, args.dataset, args.fold, args.protocol, env, size=args.size, seed=args.seed,
                            fast=fast)
        if out is not None:
            print(out.metrics)
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
