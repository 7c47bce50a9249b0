"""Device-machine A/B of compiled-inference choices on the 1024 px config-F generator (bf16, CUDA graphs).

Each variant swaps one library function for its previous form, recompiles and times batch 1 and 8 (median of
``--iters``), printing JSON lines. Used to check that a compiled-path change is a gain on the same machine.

    python benchmarks/gpu/ab_render.py --iters 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.fastpath import FastOptions, FastSynthesis, psnr  # noqa: E402
from core.models.stylegan import Generator, GeneratorConfig  # noqa: E402
from core.nn import layers, modulated  # noqa: E402


def separable(x, taps):  # the filter as two 1-D passes (before the 2-D stencil)
    return layers._fir(layers._fir(x, taps[0], 2, 1), taps[1], 3, 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=30)
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(img_resolution=1024)).cuda().eval().requires_grad_(False)
    with torch.inference_mode():
        ws_all = G.mapping(torch.randn(8, 512, device="cuda"), truncation_psi=0.7)
        ref = G.synthesis(ws_all, noise_mode="const")
    stencil = layers._fir2d
    variants = {
        "separable-filter+bmm-torgb": (separable, False),
        "stencil+bmm-torgb": (stencil, False),
        "stencil+reduction-torgb": (stencil, True),
    }
    for name, (fir2d, reduction) in variants.items():
        layers._fir2d, modulated.COMPILED_TORGB_REDUCTION = fir2d, reduction
        torch._dynamo.reset()
        fast = FastSynthesis(G, FastOptions(precision="bf16", compile=True, cuda_graphs=True))
        for batch in (1, 8):
            ws = ws_all[:batch].contiguous()
            t0 = time.perf_counter()
            out = fast(ws)
            first_s = time.perf_counter() - t0
            times = []
            for _ in range(args.iters):
                torch.cuda.synchronize()
                t = time.perf_counter()
                fast(ws)
                torch.cuda.synchronize()
                times.append((time.perf_counter() - t) * 1e3)
            rec = {
                "bench": "render_ab",
                "variant": name,
                "batch": batch,
                "p50_ms": round(statistics.median(times), 3),
                "min_ms": round(min(times), 3),
                "first_call_s": round(first_s, 1),
                "psnr_vs_fp32_db": round(psnr(out, ref[:batch]), 2),
                "device": torch.cuda.get_device_name(),
            }
            print(json.dumps(rec), flush=True)
    layers._fir2d, modulated.COMPILED_TORGB_REDUCTION = stencil, True


if __name__ == "__main__":
    main()
