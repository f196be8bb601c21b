"""Why is a compiled fast forward slow? Times each call of the compiled official-preset forward and logs
recompilations (reasons) and the top CUDA kernels of one steady-state call.

    TORCH_LOGS=recompiles,graph_breaks python3 bench/compile_probe.py --batch 4 --calls 5

A healthy compile shows one long first call, then calls at eager speed or better, and no recompiles.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package need not be installed

import torch  # noqa: E402

from fgnet_core.models import make_fast  # noqa: E402
from fgnet_core.models.fgnet import FGNet  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="official")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    net = FGNet(args.preset).to(args.device).eval()
    make_fast(net, precision=args.precision, compile=True)
    x = torch.randn(args.batch, 3, net.preset.input_size, net.preset.input_size, device=args.device)
    for i in range(args.calls):
        t0 = time.perf_counter()
        with torch.no_grad():
            net(x)
        if args.device == "cuda":
            torch.cuda.synchronize()
        print(f"call {i}: {time.perf_counter() - t0:.3f} s", flush=True)
    counters = {k: dict(v) for k, v in torch._dynamo.utils.counters.items() if v}
    print("dynamo counters:", {k: counters[k] for k in ("stats", "recompiles", "graph_break") if k in counters})
    if args.device == "cuda":
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            with torch.no_grad():
                net(x)
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=60))
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=12, max_name_column_width=60))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
