"""One prepared GPU run: the official preset on CUDA, reference path vs simple speed knobs, plus parity.

Run from the repository root: `python3 bench/gpu_official.py`. Prints a markdown table.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from fgnet_core.bench import format_table, run_isolated  # noqa: E402
from fgnet_core.models import FGNet  # noqa: E402


def parity() -> None:
    """Grouped (reference numerics) vs batched modulated convs, and CUDA ops vs reference ops, at 1024 px."""
    torch.manual_seed(0)
    net = FGNet("official").cuda().eval()
    x = torch.rand(2, 3, 256, 256, device="cuda") * 2 - 1
    with torch.no_grad():
        ref = net(x)
        net.generator.set_modconv_mode("batched")
        fast = net(x)
    rel = ((fast - ref).abs().max() / ref.abs().max()).item()
    same = torch.equal(ref.clamp(-1, 1).mean((2, 3)) > 0, fast.clamp(-1, 1).mean((2, 3)) > 0)
    print(f"batched vs grouped modconv, fp32 CUDA: max rel diff {rel:.2e}, AU decisions identical: {same}")


def main() -> None:
    print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name())
    t = time.perf_counter()
    parity()
    results = []
    configs = [
        dict(mode="inference", batch=1, modconv="grouped"),
        dict(mode="inference", batch=16, modconv="grouped"),
        dict(mode="train-step", batch=16, modconv="grouped"),
        dict(mode="inference", batch=16, modconv="batched"),
        dict(mode="train-step", batch=16, modconv="batched"),
        dict(mode="inference", batch=16, modconv="batched", amp=True),
        dict(mode="train-step", batch=16, modconv="batched", amp=True),
    ]
    for cfg in configs:
        out = run_isolated(preset="official", device="cuda", warmup=2, repeats=5, **cfg)
        if isinstance(out, str):
            print("failed:", cfg, out)
            continue
        print(out, flush=True)
        results.append(out)
    print()
    print(format_table(results))
    print(f"total {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()
