"""Many training runs of one stage (folds x protocols x seeds, or subset sizes), spread over worker processes.

One tiny model moves by about +-10 F1 with its seed, so every table cell of the demo is a mean over seeds,
and a stage trains all the runs of its cells. Runs are independent, so they go to `runtime.workers`
processes of `runtime.threads` torch threads each (on 2 cores, two 1-thread runs measured ~1.7x the
throughput of one 2-thread run). Each run trains with the same thread count whichever worker takes it,
so its numbers do not depend on the schedule; each is resumable (`last.pt`), and a finished run (its
metrics file present and matching) is not trained again.
"""
from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import numpy as np

import torch

from fgnet_core.atomic import write_json
from fgnet_core.data.au_tables import canonical_dataset
from fgnet_core.pipeline.config import Config, Layout, RunSpec
from fgnet_core.pipeline.runs import train_run


def training_specs(config: Config, dataset: str, backbone: str) -> list[RunSpec]:
    """Every (protocol, fold, seed) run of one dataset's training stage."""
    ds = canonical_dataset(dataset)
    return [RunSpec(ds, f, p, s, 0, backbone) for p in config.protocols for f in config.folds for s in config.seeds]


def efficiency_specs(config: Config, dataset: str, backbone: str) -> list[RunSpec]:
    """Every (size, fold, seed) subset run of one dataset's data-efficiency stage (the full-size point is the
    training stage's run)."""
    ds, eff = canonical_dataset(dataset), config.efficiency
    return [RunSpec(ds, f, eff.protocol, s, n, backbone)
            for n in eff.sizes[config.corpus] for f in config.folds for s in eff.seeds]


def run_config(config: Config, spec: RunSpec) -> Config:
    """The config of one run: only the run's own seed and backbone differ."""
    return config.derive(seed=spec.seed, backbone=spec.backbone)


def record_run(run_dir: Path, spec: RunSpec, metrics: dict, log_lines: list[str]) -> dict:
    """`<run>/metrics.json`: the run's spec and test metrics; a run with a matching record counts as finished."""
    metrics = {**metrics, "seed": spec.seed, "backbone": spec.backbone, "size": spec.size}
    write_json(Path(run_dir) / "metrics.json", {"spec": asdict(spec), "metrics": metrics, "log": log_lines})
    return metrics


def _run_in_worker(spec: RunSpec, config: Config, root: str, run_dir: str, threads: int) -> dict:
    """Worker side: one run, with its own torch thread count; returns its metrics."""
    torch.set_num_threads(threads)
    config = run_config(config, spec)
    lay = Layout(Path(root), config)
    lines: list[str] = []
    out = train_run(config, lay, spec.dataset, spec.fold, spec.protocol, size=spec.size or None,
                    log=lines.append, run_dir=Path(run_dir))
    return record_run(Path(run_dir), spec, out.metrics, lines)


def _finished(run_dir: Path, spec: RunSpec) -> dict | None:
    path = run_dir / "metrics.json"
    try:
        done = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return done["metrics"] if done.get("spec") == asdict(spec) else None


def run_sweep(specs: list[RunSpec], config: Config, root: Path, out_dir: Path, *, workers: int, threads: int,
              log=print) -> dict[str, dict]:
    """Train every spec (skipping finished ones) under `out_dir/<spec.name>`; -> {name: metrics}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results, todo = {}, []
    for spec in specs:
        done = _finished(out_dir / spec.name, spec)
        if done is not None:
            results[spec.name] = done
        else:
            todo.append(spec)
    if results:
        log(f"{len(results)} of {len(specs)} runs already finished")
    todo.sort(key=lambda s: -(s.size or 10**9))  # largest first: the pool drains evenly
    if workers <= 1:
        for spec in todo:
            results[spec.name] = _run_in_worker(spec, config, str(root), str(out_dir / spec.name), threads)
            log(f"{spec.name}: F1 {results[spec.name]['f1_avg']:.1f}")
        return {s.name: results[s.name] for s in specs}
    ctx = multiprocessing.get_context("spawn")
    env_threads = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)  # the workers' OpenMP pools start at this size
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(_run_in_worker, spec, config, str(root), str(out_dir / spec.name), threads): spec
                       for spec in todo}
            for fut in as_completed(futures):
                spec = futures[fut]
                results[spec.name] = fut.result()
                log(f"{spec.name}: F1 {results[spec.name]['f1_avg']:.1f}")
    finally:
        if env_threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env_threads
    return {s.name: results[s.name] for s in specs}


def seed_summary(values: list[float]) -> dict:
    """mean, sd (n - 1) and n of a list of scores."""
    arr = np.asarray(values, dtype=float)
    return {"mean": round(float(arr.mean()), 4), "sd": round(float(arr.std(ddof=1)) if len(arr) > 1 else 0.0, 4),
            "n": int(len(arr))}
