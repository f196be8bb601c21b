"""Throughput and memory of FGNet presets: inference and one training step, CPU and CUDA.

Each configuration runs in a fresh subprocess so the CPU peak resident memory (ru_maxrss) belongs
to that configuration alone. Weights are seeded; with `roundtrip=True` they are first written in
the three official checkpoint formats and read back through the public loaders.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from fgnet_core import checkpoints
from fgnet_core.models import FGNet


@dataclass
class BenchResult:
    preset: str
    device: str
    mode: str  # 'inference' | 'train-step'
    batch: int
    images_per_s: float
    ms_per_batch: float
    peak_mem_mib: float
    note: str = ""


def build_model(preset: str, seed: int = 0, roundtrip: bool = False):
    """A seeded FGNet; optionally saved in the official formats and loaded back through the loaders."""
    torch.manual_seed(seed)
    net = FGNet(preset)
    if not roundtrip:
        return net
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoints.save_stylegan2(net.generator, tmp / "stylegan2.pt")
        checkpoints.save_psp_encoder(net.encoder, tmp / "encoder.pt")
        checkpoints.save_fgnet_model(net, tmp / "model.pth")
        loaded = checkpoints.load_fgnet(tmp / "model.pth", stylegan=tmp / "stylegan2.pt",
                                        encoder=tmp / "encoder.pt", heatmap_size=net.preset.heatmap_size)
    loaded.generator.set_modconv_mode(net.preset.modconv)
    return loaded


def _time(fn, device: str, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def run_one(preset: str, device: str, mode: str, batch: int, warmup: int = 1, repeats: int = 2,
            roundtrip: bool = False, threads: int | None = None, modconv: str | None = None,
            amp: bool = False) -> BenchResult:
    """Time one configuration. `modconv` overrides the preset's modulated-conv mode; `amp` runs bf16 autocast."""
    if threads:
        torch.set_num_threads(threads)
    net = build_model(preset, roundtrip=roundtrip).to(device)
    if modconv:
        net.generator.set_modconv_mode(modconv)
    size = net.preset.input_size
    images = torch.rand(batch, 3, size, size, device=device) * 2 - 1  # [B, 3, 256, 256]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if mode == "inference":
        net.eval()

        def step():
            with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=amp):
                net(images)
    else:
        net.train()
        opt = torch.optim.AdamW(net.parameters(), lr=5e-5, weight_decay=5e-4)
        target = torch.zeros(batch, net.interpreter.out_channels, net.preset.heatmap_size,
                             net.preset.heatmap_size, device=device)

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=amp):
                pred = net(images)
            loss = torch.nn.functional.mse_loss(pred.float(), target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 0.1)
            opt.step()
    seconds = _time(step, device, warmup, repeats)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    note = f"{torch.get_num_threads()} threads" if device == "cpu" else torch.cuda.get_device_name()
    note += f", modconv {modconv or net.preset.modconv}" + (", bf16" if amp else ", fp32")
    return BenchResult(preset, device, mode, batch, batch / seconds, seconds * 1000, peak, note=note)


def _child(conn, kwargs):
    try:
        conn.send(("ok", asdict(run_one(**kwargs))))
    except BaseException as exc:  # report, never hang the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_isolated(**kwargs) -> BenchResult | str:
    """run_one in a fresh process; returns the result or an error string."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, kwargs))
    proc.start()
    child.close()
    status, payload = parent.recv() if parent.poll(timeout=24 * 3600) else ("error", "timed out")
    proc.join()
    return BenchResult(**payload) if status == "ok" else payload


def format_table(results: list[BenchResult]) -> str:
    rows = ["| preset | device | mode | batch | images/s | ms/batch | peak MiB | note |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.preset} | {r.device} | {r.mode} | {r.batch} | {r.images_per_s:.2f} | "
                    f"{r.ms_per_batch:.0f} | {r.peak_mem_mib:.0f} | {r.note} |")
    return "\n".join(rows)


def main(presets=("tiny", "official"), devices=None, modes=("inference", "train-step"),
         batches: dict[str, int] | None = None, repeats: int = 2, roundtrip: bool = True,
         json_out: Path | None = None) -> list[BenchResult]:
    devices = devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    batches = batches or {"tiny": 16, "official": 2}
    results = []
    for preset in presets:
        for device in devices:
            for mode in modes:
                out = run_isolated(preset=preset, device=device, mode=mode, batch=batches.get(preset, 2),
                                   repeats=repeats, roundtrip=roundtrip)
                if isinstance(out, str):
                    print(f"{preset} {device} {mode}: failed: {out}", file=sys.stderr)
                    continue
                print(f"{preset:9s} {device:5s} {mode:11s} batch {out.batch:3d}: "
                      f"{out.images_per_s:8.2f} images/s, peak {out.peak_mem_mib:.0f} MiB", flush=True)
                results.append(out)
    print()
    print(format_table(results))
    if json_out:
        Path(json_out).write_text(json.dumps([asdict(r) for r in results], indent=2))
    return results
