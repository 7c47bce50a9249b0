"""Device-machine profiler: where the GPU time of rendering and of a training step goes (top CUDA kernels).

    python benchmarks/gpu/prof_kernels.py render --batch 1 8      # 1024 px config-F, bf16 channels_last, eager
    python benchmarks/gpu/prof_kernels.py render --batch 8 --compile --fold 0   # compiled, FIR as taps
    python benchmarks/gpu/prof_kernels.py train --res 64 --batch 64 --fir fused

Prints a kernel table (self CUDA time) per configuration; used to decide what the fast paths should fuse.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.fastpath import FastOptions, FastSynthesis  # noqa: E402
from core.models.stylegan import Generator, GeneratorConfig  # noqa: E402
from core.nn import FIR_IMPLS, set_fir_impl  # noqa: E402
from core.nn.layers import FOLD_FORMS, set_fold_form  # noqa: E402


def table(fn, iters: int, rows: int) -> str:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
    return prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=rows, max_name_column_width=90)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("render", "train"))
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--fir", choices=FIR_IMPLS, default="fused")
    ap.add_argument("--rows", type=int, default=30)
    ap.add_argument("--compile", action="store_true", help="render: torch.compile the synthesis")
    ap.add_argument("--fold", type=int, choices=(0, 1), default=None, help="render: FastOptions.fold_fir")
    ap.add_argument("--fold-form", choices=FOLD_FORMS, default=None, help="render: how folded convs run")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    if args.what == "render":
        G = Generator(GeneratorConfig(img_resolution=1024)).cuda().eval().requires_grad_(False)
        if args.fold_form:
            set_fold_form(args.fold_form)
        fold = None if args.fold is None else bool(args.fold)
        opts = FastOptions(precision="bf16", cuda_graphs=False, compile=args.compile, fold_fir=fold)
        fast = FastSynthesis(G, opts)
        for b in args.batch:
            ws = G.mapping(torch.randn(b, 512, device="cuda"))
            print(f"== render 1024 config-F bf16, batch {b}, {opts}, 5 iterations", flush=True)
            print(table(lambda ws=ws: fast(ws), 5, args.rows), flush=True)
        return
    from core.training import TrainConfig, Trainer
    from core.training.loop import configure_backends

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from train import gpu_pool  # benchmarks/train.py

    from core.training import distributed as D_

    ctx = D_.init_distributed(None)
    configure_backends(ctx.device)
    set_fir_impl(args.fir)
    for b in args.batch:
        cfg = TrainConfig(data="toy", res=args.res, batch=b, width="F", fir=args.fir, tensorboard=False)
        with tempfile.TemporaryDirectory() as tmp:
            tr = Trainer(cfg, tmp, ctx=ctx, data=gpu_pool(cfg.res, b, ctx.device))
            print(f"== train {args.res} px config-F batch {b} fir {args.fir}, 16 steps", flush=True)
            print(table(tr.train_step, 16, args.rows), flush=True)


if __name__ == "__main__":
    main()
