"""Reference float32 path vs the fast path, side by side on one device, in one run.

    python3 bench/speed.py                      # official preset on CUDA, about 5-6 min on an H100
    python3 bench/speed.py --device cpu --preset tiny --budget-s 300   # the same logic on CPU

Every configuration runs in a fresh subprocess (peak memory, cuDNN/compile state and allocator
caches do not leak between configurations). For each it reports images/s, ms per batch, peak memory
(torch.cuda.max_memory_allocated; ru_maxrss on CPU), the ratio to the reference at the same mode and
batch, MFU (model FLOPs counted with FlopCounterMode on the meta device for the reference path,
times images/s, over the peak given by --peak-tflops) and, for the fast configurations at the parity
batch, the max relative heatmap difference to the reference on the same seeded weights and the AU
decision agreement. Configurations are run in priority order under a wall-clock budget; whatever
does not fit is listed as skipped, and the table is printed even when one configuration fails.
The script always exits 0 (failures are printed).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

_T_START = time.perf_counter()  # the budget counts from here (imports included)
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the package need not be installed

import torch  # noqa: E402

RESULT_TAG = "@@RESULT@@"
PEAKS_TFLOPS = {  # dense tensor-core peaks, TFLOP/s
    "H100 SXM bf16": 989.4, "H100 PCIe bf16": 756.0, "H200 bf16": 989.4,
}
SCORE_MARGIN = 0.02  # AU scores closer than this to 0 may flip between precisions
COMPILE_CAP_S = 300.0  # a compiled configuration is stopped after this long (compile included)


# ----------------------------------------------------------------------------
# Configurations


def default_configs(device: str, preset: str, quick: bool = False) -> list[dict]:
    """Priority order: what must be measured first comes first."""
    big = preset == "official"
    b_mid = 16 if big else 4
    b_search = [32, 64, 128, 256] if big else [8, 16]
    ref = dict(path="reference")
    bf16 = dict(path="fast", precision="bf16")
    fp32 = dict(path="fast", precision="fp32")
    cfgs = [
        dict(name="reference fp32", mode="inference", batch=1, **ref),
        dict(name="reference fp32", mode="inference", batch=b_mid, **ref),
        dict(name="reference fp32", mode="train", batch=b_mid, **ref),
        dict(name="fast bf16", mode="inference", batch=b_mid, parity=True, profile=big, **bf16),
        dict(name="fast bf16", mode="train", batch=b_mid, profile=big, **bf16),
    ]
    if device == "cuda":
        cfgs += [
            dict(name="fast bf16 + CUDA graph", mode="inference", batch=1, graph=True, **bf16),
            dict(name="fast bf16 + CUDA graph", mode="inference", batch=b_mid, graph=True, **bf16),
        ]
    else:
        cfgs += [dict(name="fast bf16", mode="inference", batch=1, **bf16)]
    cfgs += [
        dict(name="fast fp32", mode="inference", batch=b_mid, parity=True, **fp32),
        dict(name="fast fp32", mode="train", batch=b_mid, **fp32),
        dict(name="fast bf16", mode="inference", batch="max", search=b_search, **bf16),
        dict(name="reference fp32", mode="inference", batch="max", search=b_search, **ref),
        # compiled: inference first (it compiles in about a minute and shows whether the graph holds),
        # then training, where fusing the element-wise work saves the most
        dict(name="fast bf16 + compile", mode="inference", batch=b_mid, compile=True, parity=True, profile=big,
             **bf16),
        dict(name="fast bf16 + compile", mode="train", batch=b_mid, compile=True, profile=big, **bf16),
        # ablations in one process (speed only; parity for each): which change buys what
        dict(name="fast bf16, ablations", mode="inference", batch=b_mid, parity=True, variants=[
            dict(name="fast bf16, upconv transpose", upconv="transpose"),
            dict(name="fast bf16, upconv fused", upconv="fused"),
            dict(name="fast bf16, NCHW", channels_last=False),
            dict(name="fast bf16, no weight cache", cache_weights=False),
        ], **bf16),
        dict(name="fast bf16, train ablations", mode="train", batch=b_mid, variants=[
            dict(name="fast bf16, resize interpolate", resize="interpolate"),
            dict(name="fast bf16, fuse every up-conv", fused_up_max_out=512),  # the default fuses <= 128 ch
        ], **bf16),
        # only if time is left
        dict(name="fast bf16 + compile (reduce-overhead)", mode="inference", batch=b_mid, compile=True,
             compile_mode="reduce-overhead", parity=True, **bf16),
    ]
    if quick:
        cfgs = [c for c in cfgs if not c.get("compile") and ", " not in c["name"]]
    return cfgs


# ----------------------------------------------------------------------------
# FLOPs


def count_flops(preset: str) -> dict:
    """FLOPs per image (FlopCounterMode: convolutions and matmuls) on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    from fgnet_core.models import FGNet, FastSettings, make_fast

    with torch.device("meta"):
        net = FGNet(preset)
        size = net.preset.input_size
        x = torch.empty(1, 3, size, size)

    def run(train: bool) -> tuple[float, dict]:
        counter = FlopCounterMode(display=False)
        net.train(train)
        with counter, torch.set_grad_enabled(train):
            out = net(x)
            if train:
                out.float().square().mean().backward()
        parts = {k.split(".")[-1]: sum(v.values()) for k, v in counter.get_flop_counts().items()
                 if k.count(".") == 1}
        return counter.get_total_flops(), parts

    fwd, parts = run(False)
    train, _ = run(True)
    net.zero_grad(set_to_none=True)
    make_fast(net, settings=FastSettings(precision="bf16", cache_weights=False))
    fast_fwd, _ = run(False)
    parts["generator"] = fwd - sum(parts.values())
    return {"forward": fwd, "train": train, "fast_forward": fast_fwd, "forward_parts": parts}


# ----------------------------------------------------------------------------
# One configuration (runs in the child process)


def _seeded_model(preset: str, device: str):
    from fgnet_core.models import FGNet

    torch.manual_seed(0)
    with torch.device(device):
        net = FGNet(preset)
    with torch.no_grad():  # non-trivial BatchNorm statistics and noise strengths, seeded
        gen = torch.Generator(device=device).manual_seed(1)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)
        for layer in [net.generator.conv1, *net.generator.convs]:
            layer.noise.weight.fill_(0.1)
    return net


def _images(batch: int, size: int, device: str, seed: int = 2) -> torch.Tensor:
    gen = torch.Generator(device=device).manual_seed(seed)
    return torch.rand(batch, 3, size, size, device=device, generator=gen) * 2 - 1


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _peak_mib(device) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _make_step(net, cfg, device, batch, size):
    """Returns step() for the configuration (the model is already on the device and converted)."""
    images = _images(batch, size, device)
    if cfg["mode"] == "inference":
        net.eval()
        if cfg.get("graph"):
            from fgnet_core.models import CudaGraphRunner

            runner = CudaGraphRunner(net, images)
            return lambda: runner(images)

        def step():
            with torch.no_grad():
                return net(images)
        return step
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=5e-5, weight_decay=5e-4)  # as the training loop
    n_out = net.interpreter.out_channels
    target = torch.zeros(batch, n_out, net.preset.heatmap_size, net.preset.heatmap_size, device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        pred = net(images)
        loss = torch.nn.functional.mse_loss(pred.float(), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 0.1)
        opt.step()
        return loss
    return step


def _convert(net, cfg):
    if cfg["path"] == "reference":
        net.generator.set_modconv_mode("grouped")  # the official numerics
        return net
    from fgnet_core.models import make_fast, make_reference

    make_reference(net)  # a variant starts from the plain model
    return make_fast(net, precision=cfg["precision"], compile=cfg.get("compile", False),
                     compile_mode=cfg.get("compile_mode"), channels_last=cfg.get("channels_last", True),
                     upconv=cfg.get("upconv", "auto"), cache_weights=cfg.get("cache_weights", True),
                     **{k: cfg[k] for k in ("resize", "fused_up_max_out") if k in cfg})


def _parity(net, cfg, device, batch, size) -> dict:
    """Reference (grouped modconv, our ops, fp32) vs this configuration on the same weights and inputs."""
    from fgnet_core.models import make_reference

    images = _images(batch, size, device, seed=3)
    make_reference(net).eval()  # a previous variant may have converted it
    net.generator.set_modconv_mode("grouped")
    with torch.no_grad():
        ref = net(images).float()
        _convert(net, cfg)
        fast = net(images).float()
    rel = ((fast - ref).abs().max() / ref.abs().max()).item()
    s_ref, s_fast = ref.clamp(-1, 1).mean((2, 3)), fast.clamp(-1, 1).mean((2, 3))
    differ = (s_ref > 0) != (s_fast > 0)
    return {"parity_rel": rel, "au_agree": 1.0 - differ.float().mean().item(),
            "au_differ_far": int((differ & (s_ref.abs() >= SCORE_MARGIN)).sum().item()),
            "score_max_diff": (s_ref - s_fast).abs().max().item()}


def _time_steps(step, device, warmup, repeats, max_s) -> tuple[float, int]:
    """Seconds per step over `repeats` steps after `warmup` (fewer if they exceed max_s; at least one)."""
    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    n = 0
    while n < repeats:
        step()
        n += 1
        if time.perf_counter() - start > max_s:
            _sync(device)
            break
    _sync(device)
    return (time.perf_counter() - start) / n, n


def _dynamo_counts() -> dict:
    """Graphs compiled, recompilations and graph breaks so far in this process: a healthy compiled
    configuration shows one graph per direction and no recompiles."""
    counters = torch._dynamo.utils.counters
    return {"graphs": int(counters["stats"].get("unique_graphs", 0)),
            "recompiles": int(sum(counters["recompiles"].values())),
            "graph_breaks": int(sum(counters["graph_break"].values()))}


def _profile(step, device, top=12) -> list[tuple[str, float, int]]:
    if device != "cuda":
        return []
    from torch.profiler import ProfilerActivity, profile

    _sync(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        _sync(device)
    rows = []
    for evt in prof.key_averages():
        t = getattr(evt, "device_time_total", None) or getattr(evt, "cuda_time_total", 0)
        if t > 0:
            rows.append((evt.key[:90], t / 1000.0, evt.count))
    rows.sort(key=lambda r: -r[1])
    total = sum(r[1] for r in rows)
    return [("TOTAL (sum of kernels, ms)", total, 0)] + rows[:top]


def run_config(cfg: dict) -> list[dict]:
    """Build, convert, (parity), warm up, time. Returns one result, or one per variant."""
    device, preset = cfg["device"], cfg["preset"]
    if device == "cpu" and cfg.get("threads"):
        torch.set_num_threads(cfg["threads"])
    t0 = time.perf_counter()
    net = _seeded_model(preset, device)
    variants = cfg.get("variants") or [{}]
    results = []
    for variant in variants:
        vcfg = {**{k: v for k, v in cfg.items() if k != "variants"}, **variant}
        try:
            results.append(_run_variant(net, vcfg, t0))
        except Exception as exc:  # one variant failing does not lose the others
            if len(variants) == 1:
                raise
            results.append({"ok": False, **vcfg, "error": f"{type(exc).__name__}: {exc}",
                            "trace": traceback.format_exc()[-1500:]})
        t0 = time.perf_counter()
    return results


def _run_variant(net, cfg: dict, t0: float) -> dict:
    device = cfg["device"]
    size = net.preset.input_size
    out = {k: v for k, v in cfg.items() if k not in ("search",)}
    batches = cfg["search"] if cfg["batch"] == "max" else [cfg["batch"]]
    if cfg.get("parity") and cfg["path"] == "fast":
        out.update(_parity(net, cfg, device, batches[0], size))
    else:
        _convert(net, cfg)
    best = None
    for batch in batches:
        try:
            if device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            step = _make_step(net, cfg, device, batch, size)
            t_warm = time.perf_counter()
            step()  # the first call: cuDNN autotuning, or the whole compilation
            _sync(device)
            first_call_s = time.perf_counter() - t_warm
            warmup = cfg.get("warmup", 1 if not cfg.get("compile") else 2)
            repeats = cfg.get("repeats", 3 if cfg["batch"] == "max" else 5)
            sec, n = _time_steps(step, device, warmup, repeats, cfg.get("max_time_s", 20.0))
            res = {"batch": batch, "images_per_s": batch / sec, "ms_per_batch": sec * 1000, "repeats": n,
                   "peak_mib": _peak_mib(device), "warm_s": time.perf_counter() - t_warm,
                   "first_call_s": first_call_s}
            if cfg.get("compile"):
                res["dynamo"] = _dynamo_counts()
            if cfg.get("profile") and device == "cuda":
                try:
                    res["profile_top"] = _profile(step, device)
                except Exception as exc:
                    out.setdefault("notes", []).append(f"profile failed: {type(exc).__name__}")
            del step
        except torch.cuda.OutOfMemoryError if device == "cuda" else MemoryError:
            out.setdefault("notes", []).append(f"batch {batch}: out of memory")
            break
        best = res
        if cfg["batch"] == "max" and res["ms_per_batch"] > 4000:  # the next size would take too long
            break
    if device == "cuda":
        torch.cuda.empty_cache()
    if best is None:
        raise RuntimeError("; ".join(out.get("notes", ["no batch size fitted"])))
    out.update(best)
    out["setup_s"] = time.perf_counter() - t0
    if device == "cuda":
        out["device_name"] = torch.cuda.get_device_name()
    return {"ok": True, **out}


def _child_main(cfg_json: str) -> int:
    cfg = json.loads(cfg_json)
    try:
        results = run_config(cfg)
    except BaseException as exc:  # report, never hang the parent
        results = [{"ok": False, **cfg, "error": f"{type(exc).__name__}: {exc}",
                    "trace": traceback.format_exc()[-2000:]}]
    print(RESULT_TAG + json.dumps(results, default=str), flush=True)
    return 0


# ----------------------------------------------------------------------------
# Parent: run, guard time, print


def run_isolated(cfg: dict, timeout_s: float) -> list[dict]:
    """run_config in a fresh process (its own process group: on timeout, compile workers die with it)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO_ROOT),
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=max(timeout_s, 1.0))
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stdout, stderr = proc.communicate()
        return [{"ok": False, **cfg, "error": f"timed out after {timeout_s:.0f} s (stopped)",
                 "trace": (stderr or "")[-800:]}]
    finally:
        try:  # stray grandchildren (e.g. compile workers) of a finished child
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for line in stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG):])
    return [{"ok": False, **cfg, "error": f"child exited {proc.returncode} without a result",
             "trace": (stderr or "")[-2000:]}]


def run_inline(cfg: dict) -> list[dict]:
    try:
        return run_config(cfg)
    except Exception as exc:
        return [{"ok": False, **cfg, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}]


def estimate_s(cfg: dict, device: str) -> float:
    """Rough wall-clock need of one configuration, used to skip what cannot finish in the budget."""
    if device != "cuda":
        return 5.0
    if cfg.get("compile"):
        return 210.0 if cfg["mode"] == "train" else 80.0  # H100, official preset: 204 s / 72 s measured
    if cfg.get("variants"):
        return 8.0 + (12.0 if cfg["mode"] == "train" else 6.0) * len(cfg["variants"])
    return 25.0 if cfg["batch"] == "max" else 12.0


def _ratio_key(r):
    return (r["mode"], r["batch"] if r.get("requested_batch") != "max" else "max")


def format_table(results: list[dict], flops: dict | None, peak_tflops: float | None) -> str:
    ref = {}
    for r in results:
        if r.get("ok") and r["path"] == "reference":
            ref[_ratio_key(r)] = r
    rows = ["| config | mode | batch | images/s | ms/batch | peak GiB | x ref img/s | x ref mem | MFU | "
            "parity max rel | AU agree | note |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        batch_label = f"{r['batch']} (max)" if r.get("requested_batch") == "max" else str(r.get("batch"))
        if not r.get("ok"):
            rows.append(f"| {r['name']} | {r['mode']} | {batch_label} | failed | | | | | | | | "
                        f"{r.get('error', '')[:120]} |")
            continue
        base = ref.get(_ratio_key(r))
        ratio = f"{r['images_per_s'] / base['images_per_s']:.2f}" if base else "-"
        mem = f"{r['peak_mib'] / base['peak_mib']:.2f}" if base else "-"
        mfu = "-"
        if flops and peak_tflops:
            per_img = flops["train"] if r["mode"] == "train" else flops["forward"]
            mfu = f"{100 * per_img * r['images_per_s'] / (peak_tflops * 1e12):.1f}%"
        parity = f"{r['parity_rel']:.2e}" if "parity_rel" in r else ""
        agree = (f"{100 * r['au_agree']:.1f}% ({r['au_differ_far']} far)" if "au_agree" in r else "")
        note = "; ".join(r.get("notes", []))
        rows.append(f"| {r['name']} | {r['mode']} | {batch_label} | {r['images_per_s']:.1f} | "
                    f"{r['ms_per_batch']:.1f} | {r['peak_mib'] / 1024:.2f} | {ratio} | {mem} | {mfu} | "
                    f"{parity} | {agree} | {note} |")
    return "\n".join(rows)


def _print_result(res: dict, start: float) -> None:
    stamp = f"[{time.perf_counter() - start:5.0f} s]"
    if res.get("ok"):
        extra = f", parity {res['parity_rel']:.2e}" if "parity_rel" in res else ""
        extra += f", first call {res['first_call_s']:.1f} s" if "first_call_s" in res else ""
        extra += "".join(f", {k} {v}" for k, v in res.get("dynamo", {}).items())
        print(f"{stamp} {res['name']:40s} {res['mode']:9s} batch {res['batch']:>4}: {res['images_per_s']:8.1f} img/s, "
              f"{res['ms_per_batch']:8.1f} ms, peak {res['peak_mib'] / 1024:6.2f} GiB{extra} "
              f"({res['wall_s']:.0f} s wall)", flush=True)
        for name, ms, count in res.get("profile_top", []):
            print(f"      {ms:9.2f} ms  x{count:<5d} {name}", flush=True)
    else:
        print(f"{stamp} FAILED {res['name']} {res['mode']} batch {res['batch']}: {res.get('error')}\n"
              f"{res.get('trace', '')}", flush=True)


def _peak_for(device_name: str, override: float | None) -> tuple[float | None, str]:
    if override:
        return override, f"{override:g} TFLOP/s (given)"
    name = device_name or ""
    if "H100" in name and "PCIe" in name:
        return PEAKS_TFLOPS["H100 PCIe bf16"], "H100 PCIe dense bf16, 756 TFLOP/s"
    if "H100" in name or "H200" in name:
        return PEAKS_TFLOPS["H100 SXM bf16"], "H100/H200 SXM dense bf16, 989 TFLOP/s"
    return None, "unknown device: pass --peak-tflops for MFU"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None, help="cuda (default when present) or cpu")
    ap.add_argument("--preset", default="official")
    ap.add_argument("--budget-s", type=float, default=320.0, help="wall-clock budget for everything")
    ap.add_argument("--quick", action="store_true", help="fewer configurations (no ablations, no compile)")
    ap.add_argument("--only", nargs="*", default=None,
                    help="run configurations whose '<name> <mode>' contains one of these, in this order")
    ap.add_argument("--no-max", action="store_true", help="skip the largest-batch searches")
    ap.add_argument("--no-isolate", action="store_true", help="run configurations in this process (CPU tests)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads per configuration")
    ap.add_argument("--peak-tflops", type=float, default=None, help="peak for MFU (default: by device name)")
    ap.add_argument("--json", type=Path, default=None, help="also write all results as JSON")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        return _child_main(args.child)

    start = _T_START
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    deadline = start + args.budget_s
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, device {device}, preset {args.preset}, "
          f"budget {args.budget_s:.0f} s", flush=True)

    flops = None
    try:
        flops = count_flops(args.preset)
        parts = ", ".join(f"{k} {v / 1e9:.3g}" for k, v in flops["forward_parts"].items())
        print(f"FLOPs per image (FlopCounterMode, reference path): forward {flops['forward'] / 1e9:.4g} G "
              f"({parts}); training step (fwd+bwd) {flops['train'] / 1e9:.4g} G; fast path executes "
              f"{flops['fast_forward'] / 1e9:.4g} G forward (fused up-sampling convs)", flush=True)
    except Exception as exc:
        print(f"FLOP count failed: {type(exc).__name__}: {exc}", flush=True)

    configs = default_configs(device, args.preset, quick=args.quick)
    if args.only:
        # a pattern matches "<name> <mode>"; in the order of the patterns (the first that matches), then in
        # priority order
        rank = {id(c): next((i for i, s in enumerate(args.only) if s in f"{c['name']} {c['mode']}"), None)
                for c in configs}
        configs = sorted((c for c in configs if rank[id(c)] is not None), key=lambda c: rank[id(c)])
    if args.no_max:
        configs = [c for c in configs if c["batch"] != "max"]
    results, skipped = [], []
    for cfg in configs:
        cfg = {**cfg, "device": device, "preset": args.preset, "requested_batch": cfg["batch"]}
        if args.threads:
            cfg["threads"] = args.threads
        left = deadline - time.perf_counter()
        need = estimate_s(cfg, device)
        if left < need:
            skipped.append(f"{cfg['name']} {cfg['mode']} batch {cfg['batch']} (needs ~{need:.0f} s, {left:.0f} s left)")
            continue
        t = time.perf_counter()
        cap = left - 5 if not cfg.get("compile") else min(left - 5, COMPILE_CAP_S)
        for res in (run_inline(cfg) if args.no_isolate else run_isolated(cfg, timeout_s=cap)):
            res["wall_s"] = time.perf_counter() - t
            results.append(res)
            _print_result(res, start)

    device_name = next((r.get("device_name") for r in results if r.get("device_name")), "")
    peak, peak_label = _peak_for(device_name, args.peak_tflops) if device == "cuda" else (args.peak_tflops, "given")
    print()
    print(f"device: {device_name or device}; MFU = reference-path FLOPs per image x images/s / peak ({peak_label}); "
          f"training FLOPs = counted forward + backward")
    print(format_table(results, flops, peak))
    if skipped:
        print("\nskipped (time budget): " + "; ".join(skipped))
    summary = []
    by = {(r["name"], r["mode"], r.get("requested_batch")): r for r in results if r.get("ok")}
    batch = 16 if args.preset == "official" else 4
    for mode, b in (("inference", batch), ("train", batch)):
        base = by.get(("reference fp32", mode, b))
        cands = [r for r in results if r.get("ok") and r["path"] == "fast" and r["mode"] == mode and r["batch"] == b
                 and r.get("requested_batch") != "max"]
        if base and cands:
            top = max(cands, key=lambda r: r["images_per_s"])
            summary.append(f"{mode} batch {b}: best fast '{top['name']}' {top['images_per_s']:.1f} img/s = "
                           f"{top['images_per_s'] / base['images_per_s']:.2f}x reference, peak memory "
                           f"{top['peak_mib'] / base['peak_mib']:.2f}x")
    if summary:
        print("\n" + "\n".join(summary))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"flops": flops, "results": results, "skipped": skipped,
                                         "device": device_name or device}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException:  # never fail the run: print and exit 0
        traceback.print_exc()
        sys.exit(0)
