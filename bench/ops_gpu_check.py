#!/usr/bin/env python3
"""GPU check for fgnet_core.ops: build the CUDA extension, check parity with the
reference (forward and backward, many shapes and dtypes), then time both on
1024-px StyleGAN2 shapes and print markdown tables.

Run from the repository root:  python3 bench/ops_gpu_check.py [--quick] [--markdown FILE]
Exit status: 0 all good, 1 a parity check failed, 2 no CUDA device or the build failed.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the package is used in place, not installed

import torch  # noqa: E402

from fgnet_core.ops import _cuda_build, fused_bias_leaky_relu, upfirdn2d  # noqa: E402

# Max error relative to max |truth| allowed per dtype (output rounding + float accumulation).
TOL = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
# Looser bound for timing-shape spot checks, where the reference runs in the low dtype too.
SPOT_TOL = {torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 3e-2}
DT_NAME = {torch.float64: "fp64", torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def make_kernel(taps=(1, 3, 3, 1), factor=1, device="cuda"):
    """StyleGAN2's make_kernel(taps) * factor**2 as a [k, k] float32 tensor."""
    k = torch.tensor(taps, dtype=torch.float32, device=device)
    k = k[None, :] * k[:, None]
    return k / k.sum() * factor ** 2


def rand_kernel(kh, kw, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(kh, kw, generator=g) + 0.1).cuda()  # asymmetric: catches a missing flip


def rel_err(a: torch.Tensor, truth: torch.Tensor):
    """(max abs error, max abs error / max |truth|)."""
    a, truth = a.double(), truth.double()
    err = (a - truth).abs().max().item() if a.numel() else 0.0
    return err, err / max(truth.abs().max().item(), 1e-30)


class Report:
    """Collects parity results; prints a per-group summary, keeps per-case rows for --markdown."""

    def __init__(self):
        self.rows, self.failures = [], []

    def add(self, group, name, dtype, what, err, tol):
        ok = math.isfinite(err[1]) and err[1] <= tol
        self.rows.append((group, name, DT_NAME[dtype], what, err[0], err[1], tol, ok))
        if not ok:
            self.failures.append(f"{name} [{DT_NAME[dtype]}] {what}: rel err {err[1]:.3g} > {tol:.1g}")

    def summary(self):
        groups = {}
        for group, _, dt, what, abs_err, rel, tol, ok in self.rows:
            g = groups.setdefault((group, dt, what), [0, 0.0, 0.0, tol, 0])
            g[0] += 1
            g[1], g[2] = max(g[1], abs_err), max(g[2], rel)
            g[4] += 0 if ok else 1
        lines = ["| op | dtype | check | cases | worst abs err | worst rel err | tol | failures |",
                 "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {grp} | {dt} | {what} | {n} | {a:.3g} | {r:.3g} | {t:.0e} | {f} |"
                  for (grp, dt, what), (n, a, r, t, f) in groups.items()]
        return "\n".join(lines)

    def details(self):
        lines = ["| case | dtype | check | max abs err | max rel err | tol | ok |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {n} | {d} | {w} | {a:.3g} | {r:.3g} | {t:.0e} | {'ok' if ok else 'FAIL'} |"
                  for _, n, d, w, a, r, t, ok in self.rows]
        return "\n".join(lines)


# ----------------------------------------------------------------------------
# Parity

def upfirdn_cases():
    k4 = make_kernel()
    return [
        # name, shape, kernel, up, down, pad
        ("Upsample x2 pad(2,1) (ToRGB skip)", (4, 3, 16, 16), k4 * 4, 2, 1, (2, 1)),
        ("Blur pad(1,1) after tconv (2H+1)", (2, 8, 33, 33), k4 * 4, 1, 1, (1, 1)),
        ("Downsample /2 pad(1,1)", (2, 8, 32, 32), k4, 1, 2, (1, 1)),
        ("Blur pad(2,2) before stride-2 conv", (2, 8, 32, 32), k4, 1, 1, (2, 2)),
        ("odd sizes, 4x3 kernel, up2", (3, 5, 17, 13), rand_kernel(4, 3, 1), 2, 1, (1, 2, 0, 3)),
        ("up3 down2", (2, 4, 11, 9), rand_kernel(4, 4, 2), 3, 2, (1, 2)),
        ("separate x/y factors", (2, 4, 10, 12), rand_kernel(3, 4, 3), (2, 1), (1, 2), (2, 1, 0, 1)),
        ("negative pads", (2, 4, 12, 12), rand_kernel(4, 4, 4), 2, 2, (-2, -1, 1, 0)),
        ("7x7 kernel (generic loop)", (2, 3, 20, 21), rand_kernel(7, 7, 5), 1, 1, (3, 3)),
        ("2x2 kernel up2 (1 tap)", (2, 3, 9, 10), rand_kernel(2, 2, 6), 2, 1, (1, 0)),
        ("5x5 kernel down2 pad(2,2)", (2, 3, 19, 18), rand_kernel(5, 5, 7), 1, 2, (2, 2)),
        ("1x1 image up2", (2, 4, 1, 1), k4 * 4, 2, 1, (2, 1)),
        ("71680 planes (grid-z loop)", (140, 512, 4, 4), k4, 1, 1, (1, 2)),
        ("wide image up2", (2, 16, 37, 300), k4 * 4, 2, 1, (2, 1)),
    ]


def check_upfirdn2d(report: Report):
    for idx, (name, shape, k, up, down, pad) in enumerate(upfirdn_cases()):
        for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
            if dtype == torch.float64 and idx % 3:
                continue
            torch.manual_seed(idx)
            x = torch.randn(shape, device="cuda").to(dtype).requires_grad_(True)
            x64 = x.detach().double().requires_grad_(True)
            truth = upfirdn2d(x64, k.double(), up, down, pad, impl="ref")
            y = upfirdn2d(x, k, up, down, pad, impl="cuda")
            if y.shape != truth.shape or y.dtype != dtype:
                report.failures.append(f"{name}: shape/dtype {tuple(y.shape)}/{y.dtype} vs {tuple(truth.shape)}")
                continue
            report.add("upfirdn2d", name, dtype, "forward", rel_err(y, truth), TOL[dtype])
            g = torch.randn_like(truth)
            (gx_truth,) = torch.autograd.grad(truth, x64, g)
            (gx,) = torch.autograd.grad(y, x, g.to(dtype))
            report.add("upfirdn2d", name, dtype, "grad x", rel_err(gx, gx_truth), TOL[dtype])
    # 'auto' must pick the kernel for CUDA tensors.
    x = torch.randn(2, 3, 9, 9, device="cuda")
    k = make_kernel()
    if not torch.equal(upfirdn2d(x, k, 2, 1, (2, 1)), upfirdn2d(x, k, 2, 1, (2, 1), impl="cuda")):
        report.failures.append("upfirdn2d impl='auto' differs from impl='cuda' on a CUDA tensor")


def check_fused_act(report: Report):
    shapes = [(8, 512), (4, 512, 16, 16), (3, 7, 5), (2, 3, 33, 17)]
    params = [(0.2, 2 ** 0.5), (0.0, 1.0), (0.1, -2.0)]
    for shape in shapes:
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            for use_bias in (True, False):
                for slope, scale in params:
                    name = f"lrelu {list(shape)} bias={use_bias} slope={slope} scale={scale:.3g}"
                    torch.manual_seed(0)
                    x = torch.randn(shape, device="cuda").to(dtype).requires_grad_(True)
                    b = torch.randn(shape[1], device="cuda").requires_grad_(True) if use_bias else None
                    x64 = x.detach().double().requires_grad_(True)
                    b64 = b.detach().to(dtype).double().requires_grad_(True) if use_bias else None
                    truth = fused_bias_leaky_relu(x64, b64, slope, scale, impl="ref")
                    y = fused_bias_leaky_relu(x, b, slope, scale, impl="cuda")
                    report.add("fused lrelu", name, dtype, "forward", rel_err(y, truth), TOL[dtype])
                    g = torch.randn_like(truth)
                    inputs, inputs64 = ((x, b), (x64, b64)) if use_bias else ((x,), (x64,))
                    grads64 = torch.autograd.grad(truth, inputs64, g)
                    grads = torch.autograd.grad(y, inputs, g.to(dtype))
                    report.add("fused lrelu", name, dtype, "grad x", rel_err(grads[0], grads64[0]), TOL[dtype])
                    if use_bias:  # summed in the low dtype: a little looser
                        report.add("fused lrelu", name, dtype, "grad bias", rel_err(grads[1], grads64[1]),
                                   4 * TOL[dtype])


def check_gradcheck(report: Report):
    """float64 gradcheck and gradgradcheck of the CUDA path itself."""
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, device="cuda", requires_grad=True)
    k = rand_kernel(3, 4, 9)
    cases = [("upfirdn2d up2 pad(2,1)", lambda t: upfirdn2d(t, k, 2, 1, (2, 1), impl="cuda"), (x,)),
             ("upfirdn2d down2 pad(1,2)", lambda t: upfirdn2d(t, k, 1, 2, (1, 2), impl="cuda"), (x,))]
    xa = (torch.randn(2, 3, 4, dtype=torch.float64, device="cuda") + 0.05).requires_grad_(True)
    ba = torch.randn(3, dtype=torch.float64, device="cuda", requires_grad=True)
    cases.append(("fused lrelu", lambda t, bb: fused_bias_leaky_relu(t, bb, impl="cuda"), (xa, ba)))
    for name, fn, inputs in cases:
        for label, check in (("gradcheck", torch.autograd.gradcheck), ("gradgradcheck", torch.autograd.gradgradcheck)):
            try:
                ok = check(fn, inputs, raise_exception=False)
            except Exception as exc:  # a crash is a failure too
                ok = False
                print(f"{name} {label}: {exc}")
            report.add(name, name, torch.float64, label, (0.0, 0.0 if ok else float("inf")), TOL[torch.float64])


# ----------------------------------------------------------------------------
# Timing

def time_ms(fn, warmup=3, iters=10):
    """Median CUDA-event time of fn() in milliseconds."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def timing(report: Report, iters: int):
    k = make_kernel()
    ops_ = [
        ("Blur 4x4 pad(1,1)", lambda x, impl: upfirdn2d(x, k * 4, 1, 1, (1, 1), impl=impl), False),
        ("Upsample x2 pad(2,1)", lambda x, impl: upfirdn2d(x, k * 4, 2, 1, (2, 1), impl=impl), False),
        ("Upsample x2 pad(2,1) fwd+bwd", lambda x, impl: upfirdn2d(x, k * 4, 2, 1, (2, 1), impl=impl), True),
        ("Downsample /2 pad(1,1)", lambda x, impl: upfirdn2d(x, k, 1, 2, (1, 1), impl=impl), False),
        ("fused lrelu", None, False),
        ("fused lrelu fwd+bwd", None, True),
    ]
    rows = []
    for shape in [(16, 512, 64, 64), (16, 64, 512, 512), (4, 32, 1024, 1024)]:
        for dtype in (torch.float32, torch.float16):
            x = torch.randn(shape, device="cuda", dtype=dtype)
            bias = torch.randn(shape[1], device="cuda")
            for name, op, backward in ops_:
                if op is None:
                    op = lambda t, impl: fused_bias_leaky_relu(t, bias, impl=impl)  # noqa: E731
                xin = x.detach().requires_grad_(backward)
                if backward:
                    g = torch.randn_like(op(xin, "ref"))
                    run = lambda impl: torch.autograd.grad(op(xin, impl), xin, g)[0]  # noqa: E731
                else:
                    run = lambda impl: op(xin, impl)  # noqa: E731
                with torch.no_grad() if not backward else torch.enable_grad():
                    err = rel_err(run("cuda"), run("ref"))
                    report.add("timing-shape spot check", f"{name} {list(shape)}", dtype, name, err, SPOT_TOL[dtype])
                    t_ref = time_ms(lambda: run("ref"), iters=iters)
                    t_cuda = time_ms(lambda: run("cuda"), iters=iters)
                rows.append((name, list(shape), DT_NAME[dtype], t_ref, t_cuda))
                torch.cuda.empty_cache()
            del x
    lines = ["| op | input shape | dtype | reference (ms) | CUDA kernel (ms) | speed-up |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {n} | {s} | {d} | {r:.3f} | {c:.3f} | {r / c:.2f}x |" for n, s, d, r, c in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="parity only, no timing")
    parser.add_argument("--iters", type=int, default=10, help="timed iterations per measurement")
    parser.add_argument("--verbose-build", action="store_true")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args()

    if not torch.cuda.is_available():
        print("no CUDA device; nothing to check")
        return 2
    props = torch.cuda.get_device_properties(0)
    print(f"device: {props.name}, {props.multi_processor_count} SMs; "
          f"torch {torch.__version__}, CUDA {torch.version.cuda}")
    t0 = time.time()
    try:
        _cuda_build.get_ops(required=True, verbose=args.verbose_build)
    except RuntimeError as exc:
        print(exc)
        return 2
    print(f"extension ready in {time.time() - t0:.1f} s (build root: {_cuda_build.build_root()})")

    report = Report()
    t0 = time.time()
    check_upfirdn2d(report)
    check_fused_act(report)
    check_gradcheck(report)
    print(f"parity checks: {len(report.rows)} in {time.time() - t0:.1f} s")
    out = ["## Parity (CUDA kernel vs float64 reference; rel err = max abs err / max |reference|)", "",
           report.summary()]
    if not args.quick:
        t0 = time.time()
        table = timing(report, args.iters)
        print(f"timing done in {time.time() - t0:.1f} s")
        out += ["", f"## Timing ({props.name}, median of {args.iters} after warm-up)", "", table]
    text = "\n".join(out)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n\n## Parity per case\n\n" + report.details() + "\n")
    if report.failures:
        print(f"\n{len(report.failures)} parity failure(s):")
        for line in report.failures:
            print("  " + line)
        return 1
    print("\nall parity checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
