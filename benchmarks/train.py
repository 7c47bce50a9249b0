"""Training throughput benchmark: the classic comparison configuration, one JSON line per resolution.

Config-F widths (``channel_table(res)``: 512 channels up to 64 px, then 256 / 128 at 128 / 256 px), all
regularisers on at their standard intervals (R1 every 16, path length every 4 on half the batch, style mixing
0.9, G EMA), non-saturating loss, Adam. Data is a fixed pool of batches already on the GPU, so the number
measures the training step itself. Timing: warm-up (cuDNN autotuning, ``torch.compile``), then ``--steps``
steps (a multiple of 16 so lazy regularisation is counted at its true rate) between ``cuda.synchronize``.

    python benchmarks/train.py --res 64 256 --batch 64 [--compile] [--precision bf16|fp32] [--aug none|ada]
    torchrun --standalone --nproc_per_node 2 benchmarks/train.py --res 64 256   # multi-GPU (global img/s)
    python benchmarks/train.py --tiny                                            # CPU smoke test

Prints ``{"bench":"train","res":64,"batch":B,"img_per_s":...,"gpu":...,"precision":"bf16","compile":false,...}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.nn import FIR_IMPLS, get_fir_impl, set_fir_impl  # noqa: E402
from core.nn.layers import FOLD_FORMS, get_fold_form, set_fold_form  # noqa: E402
from core.training import TrainConfig, Trainer, tiny_config  # noqa: E402
from core.training import distributed as D_  # noqa: E402
from core.training.data import DataSource, toy_images  # noqa: E402
from core.training.loop import configure_backends  # noqa: E402

DEFAULT_WIDTHS = (
    256,
    256,
    256,
    128,
    64,
    32,
    16,
    16,
    16,
)  # 4..1024 px; the shipped 128 px model uses the first 6


def gpu_pool(res: int, batch: int, device, pool: int = 4) -> DataSource:
    """A few fixed batches on the device, cycled: no loader or rendering cost in the measurement."""
    batches = [(toy_images(i * batch, batch, res, seed=0, device=device), None) for i in range(pool)]
    return DataSource(itertools.cycle(batches), 0, "bench-pool", "benchmark pool")


def bench_one(cfg: TrainConfig, ctx: D_.DistContext, *, steps: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tr = Trainer(cfg, tmp, ctx=ctx, data=gpu_pool(cfg.res, cfg.batch // ctx.world, ctx.device))
        cuda = ctx.device.type == "cuda"
        for _ in range(warmup):
            tr.train_step()
        tr.read_stats(False)  # sync (and all ranks together)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for _ in range(steps):
            tr.train_step()
        tr.read_stats(False)
        if cuda:
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        return {
            "bench": "train",
            "res": cfg.res,
            "batch": cfg.batch,
            "img_per_s": round(steps * cfg.batch / dt, 1),
            "gpu": torch.cuda.get_device_name(ctx.device) if cuda else "cpu",
            "gpus": ctx.world,
            "precision": cfg.precision,
            "compile": cfg.compile,
            "channels_last": cfg.channels_last,
            "aug": cfg.aug,
            "fir": get_fir_impl(),
            "fold_form": get_fold_form() if get_fir_impl() == "fused" else None,
            "widths": list(cfg.widths),
            "steps": steps,
            "ms_per_step": round(1000 * dt / steps, 2),
            "peak_mem_gb": round(torch.cuda.max_memory_allocated(ctx.device) / 2**30, 2) if cuda else None,
            "torch": str(torch.__version__),
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", type=int, nargs="+", default=[64, 256])
    ap.add_argument(
        "--batch", type=int, nargs="+", default=None, help="global batch per resolution (default 64)"
    )
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--aug", choices=("none", "ada", "diffaug"), default="none")
    ap.add_argument(
        "--fir",
        choices=FIR_IMPLS,
        nargs="+",
        default=None,
        help="FIR implementation(s) to time (default: current)",
    )
    ap.add_argument(
        "--widths",
        choices=("F", "default"),
        default="F",
        help="F: config-F channel table; default: the shipped SynthFaces model's widths (z = w = 256)",
    )
    ap.add_argument(
        "--fold-form", choices=FOLD_FORMS, default=None, help='how "fused" FIR convs run (default: library)'
    )
    ap.add_argument("--tiny", action="store_true", help="CPU smoke test with a tiny config")
    args = ap.parse_args(argv)
    if args.fold_form:
        set_fold_form(args.fold_form)

    ctx = D_.init_distributed("cpu" if args.tiny else None)
    configure_backends(ctx.device)
    try:
        if args.tiny:
            cfg = tiny_config(res=32, batch=8, aug=args.aug)
            out = bench_one(cfg, ctx, steps=16, warmup=2)
            if ctx.is_main:
                print(json.dumps(out), flush=True)
            return 0
        if ctx.device.type != "cuda":
            print("benchmarks/train.py needs a CUDA GPU (use --tiny for a CPU smoke test)", file=sys.stderr)
            return 2
        batches = args.batch or [64] * len(args.res)
        if len(batches) == 1:
            batches = batches * len(args.res)
        shape = {"width": "F"}
        if args.widths == "default":
            shape = {"channels": DEFAULT_WIDTHS, "z_dim": 256, "w_dim": 256}
        for fir, (res, batch) in itertools.product(
            args.fir or [get_fir_impl()], zip(args.res, batches, strict=True)
        ):
            set_fir_impl(fir)
            cfg = TrainConfig(
                data="toy",
                res=res,
                batch=batch,
                **{**shape, "channels": shape["channels"][: int(math.log2(res)) - 1]}
                if "channels" in shape
                else shape,
                aug=args.aug,
                fir=fir,
                precision=args.precision,
                compile=args.compile,
                channels_last=not args.no_channels_last,
                gpus=ctx.world,
                tensorboard=False,
            )
            out = bench_one(cfg, ctx, steps=args.steps, warmup=args.warmup)
            if ctx.is_main:
                print(json.dumps(out), flush=True)
    finally:
        D_.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
