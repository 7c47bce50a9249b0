"""Render latency benchmark: prints one JSON line per configuration.

GPU suite (``--suite gpu``): the 1024 px config-F StyleGAN2 generator with random weights, fp32 (TF32 off) and
the bf16 fast path (channels_last, CUDA graphs, optionally torch.compile), batch 1 and 8; reports p50/p90
latency, GFLOP per image, and the bf16 PSNR against fp32 on the same latents.
CPU suite (``--suite cpu``): the default-size 128 px model (or ``--model PATH``) at batch 1 and 8 with the
number of threads of this machine, and the largest pixel difference from the module-by-module path (which the
no-grad CPU plan of ``core.models.cpu_synthesis`` replaces for frozen StyleGAN2 generators).

    python benchmarks/render.py --suite gpu            # on a CUDA machine
    python benchmarks/render.py --suite cpu --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# Sleep, not spin, between OpenMP regions: with 2 threads on 2 cores any other busy process (or the spinning
# partner itself) otherwise stalls every barrier -- measured 830 ms vs 25 ms per 128 px image at load 4.4.
# libgomp reads this once when torch loads it, so it must be set before the import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.fastpath import FastOptions, FastSynthesis, psnr  # noqa: E402
from core.models.stylegan import Generator, GeneratorConfig  # noqa: E402
from core.nn.layers import FOLD_FORMS, get_fold_form, set_fold_form  # noqa: E402

DEFAULT_128 = dict(img_resolution=128, z_dim=256, w_dim=256, n_mlp=4, channels=(256, 256, 256, 128, 64, 32))


def gflop_per_image(G: Generator, ws: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        # fused_modconv=True: the module-by-module path at batch 1, whose products are the model's (the CPU plan of
        # core.models.cpu_synthesis regroups a few of them).
        G.synthesis(ws[:1], fused_modconv=True)
    return counter.get_total_flops() / 1e9


def time_fn(fn, ws: torch.Tensor, *, iters: int, warmup: int, cuda: bool) -> list[float]:
    for _ in range(warmup):
        fn(ws)
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn(ws)
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def summary(times: list[float]) -> dict:
    q = statistics.quantiles(times, n=10)
    return {
        "p50_ms": round(statistics.median(times), 3),
        "p90_ms": round(q[8], 3),
        "min_ms": round(min(times), 3),
        "iters": len(times),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
    }


def gpu_suite(args) -> None:
    if args.fold_form:
        set_fold_form(args.fold_form)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    with torch.device("cpu"):
        torch.manual_seed(0)
        G_cpu = Generator(GeneratorConfig(img_resolution=1024)).eval().requires_grad_(False)
    z = torch.randn(8, 512, generator=gen)
    with torch.inference_mode():  # CPU float32 reference for the GPU fp32 path (a correctness check)
        cpu_ref = G_cpu.synthesis(G_cpu.mapping(z[:1], truncation_psi=0.7), noise_mode="const")
    G = G_cpu.to(dev)
    with torch.inference_mode():
        ws_all = G.mapping(z.to(dev), truncation_psi=0.7)
    gflop = gflop_per_image(G, ws_all)
    name = torch.cuda.get_device_name()
    variants = [
        ("fp32-eager", FastOptions(precision="fp32", channels_last=False, cuda_graphs=False)),
        ("bf16-eager", FastOptions(precision="bf16", channels_last=True, cuda_graphs=False)),
        ("bf16-graphs", FastOptions(precision="bf16", channels_last=True, cuda_graphs=True)),
    ]
    if args.compile:
        # Compiled, the FIR runs as taps after the transposed conv (FastOptions.fold_fir's default there);
        # "-fold" times the up-sampling filter folded into the conv instead, as eager mode does.
        variants.append(
            ("bf16-compile-graphs", FastOptions(precision="bf16", compile=True, cuda_graphs=True))
        )
        variants.append(
            (
                "bf16-compile-graphs-fold",
                FastOptions(precision="bf16", compile=True, cuda_graphs=True, fold_fir=True),
            )
        )
    if args.only:
        variants = [v for v in variants if v[0] in args.only or v[0] == "fp32-eager"]  # fp32: PSNR reference
    reference = {}
    for label, opts in variants:
        torch._dynamo.reset()
        fast = FastSynthesis(G, opts)
        for batch in (1, 8):
            ws = ws_all[:batch].contiguous()
            t = time_fn(fast, ws, iters=args.iters, warmup=5, cuda=True)
            out = fast(ws)
            rec = {
                "bench": "render",
                "model": "stylegan2-1024-config-f",
                "variant": label,
                "batch": batch,
                "device": name,
                **summary(t),
                "gflop_per_image": round(gflop, 1),
                "fold_form": get_fold_form(),
                "torch": torch.__version__,
            }
            if opts.precision == "fp32":
                reference[batch] = out
                if batch == 1:
                    rec["max_abs_diff_vs_cpu_fp32"] = float((out.cpu() - cpu_ref).abs().max())
            elif batch in reference:
                rec["psnr_vs_fp32_db"] = round(psnr(out, reference[batch]), 2)
            print(json.dumps(rec), flush=True)
        del fast
        torch.cuda.empty_cache()


def cpu_suite(args) -> None:
    torch.set_num_threads(args.threads)
    if args.model:
        from core.checkpoints import load_generator

        G = load_generator(args.model)
        label = Path(args.model).name
    else:
        torch.manual_seed(0)
        G = Generator(GeneratorConfig(**DEFAULT_128)).eval().requires_grad_(False)
        label = "stylegan2-128-default-size(random)"
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(8, G.z_dim, generator=gen)
    with torch.inference_mode():
        ws_all = G.mapping(z)
    gflop = gflop_per_image(G, ws_all)
    for batch in (1, 8):
        ws = ws_all[:batch]

        def fn(w):
            with torch.inference_mode():
                return G.synthesis(w)

        t = time_fn(fn, ws, iters=args.iters, warmup=5, cuda=False)
        # Parity with the module-by-module path, which an explicit fused_modconv selects.
        with torch.inference_mode():
            diff = (fn(ws) - G.synthesis(ws, fused_modconv=batch == 1)).abs().max().item()
        print(
            json.dumps(
                {
                    "bench": "render",
                    "model": label,
                    "variant": "fp32-eager",
                    "batch": batch,
                    "device": f"cpu ({platform.processor() or platform.machine()}, {args.threads} threads)",
                    **summary(t),
                    "gflop_per_image": round(gflop, 2),
                    "max_abs_diff_vs_modules": float(f"{diff:.2e}"),
                    "torch": torch.__version__,
                }
            ),
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=("gpu", "cpu"), default="gpu" if torch.cuda.is_available() else "cpu")
    p.add_argument(
        "--model", default=None, help="CPU suite: a model file instead of the random default-size one"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--compile", action="store_true", help="GPU suite: also time torch.compile + CUDA graphs")
    p.add_argument("--only", nargs="+", default=None, help="GPU suite: variant labels to time (plus fp32)")
    p.add_argument(
        "--fold-form",
        choices=FOLD_FORMS,
        default=None,
        help="GPU suite: how folded up-sampling convs run (default: the library's); named in each line",
    )
    args = p.parse_args()
    gpu_suite(args) if args.suite == "gpu" else cpu_suite(args)


if __name__ == "__main__":
    main()
