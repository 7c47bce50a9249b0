"""``stylescope train``: start, resume, watch, stop and list training runs (a thin shell over core.training).

stylescope train --data synthfaces|PATH --res 128 --kimg K [--arch stylegan2|stylegan1] [--batch B]
                 [--g-architecture skip|orig|resnet] [--gpus N] [--aug ada|diffaug|none] --out RUNS_DIR
                 [--background]
stylescope train --resume RUN_DIR [--kimg K]
stylescope train --status RUN_DIR [--json]
stylescope train --stop RUN_DIR
stylescope train --list RUNS_DIR [--json]
stylescope train --export-weights RUN_DIR --out FILE.safetensors [--dtype float32|bfloat16]
stylescope train --data ... --init RUN_DIR|CKPT|WEIGHTS|GENERATOR --out RUNS_DIR   (warm start)
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from tqdm import tqdm

from core.cli.common import emit_json
from core.errors import StyleScopeError
from core.models.stylegan import SYNTHESIS_ARCHITECTURES
from core.nn.layers import FIR_IMPLS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a StyleGAN/StyleGAN2 (foreground with a progress bar, or --background)",
        description="Train on SynthFaces or your own images. One GPU runs in this process; --gpus N uses torchrun.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    mode.add_argument("--status", metavar="RUN_DIR", help="show a run's status")
    mode.add_argument("--stop", metavar="RUN_DIR", help="ask a background run to save and stop")
    mode.add_argument("--list", metavar="RUNS_DIR", help="list the runs in a folder")
    mode.add_argument(
        "--export-weights",
        metavar="RUN_DIR",
        help="write G, D and G_ema of a run's latest checkpoint (no optimiser state) to --out, for --init",
    )
    p.add_argument("--data", default=None, help="'synthfaces', 'toy', or a folder / .zip of images")
    p.add_argument("--res", type=int, default=None, help="resolution in pixels (power of two)")
    p.add_argument("--kimg", type=float, default=None, help="training length in thousands of images")
    p.add_argument("--arch", choices=("stylegan2", "stylegan1"), default=None)
    p.add_argument(
        "--g-architecture",
        choices=SYNTHESIS_ARCHITECTURES,
        default=None,
        help="generator output: skip (an RGB output per resolution, StyleGAN2's), orig (one at the end, as in "
        "the StyleGAN paper) or resnet",
    )
    p.add_argument("--batch", type=int, default=None, help="global batch size")
    p.add_argument("--gpus", type=int, default=None, help="number of GPUs (torchrun when > 1)")
    p.add_argument("--aug", choices=("ada", "diffaug", "none"), default=None)
    p.add_argument("--preset", default=None, help="named preset: tiny-cpu, small-data, paper-F, fast")
    p.add_argument("--width", default=None, help="width preset: F, half, small, tiny")
    p.add_argument("--gamma", type=float, default=None, help="R1 weight (default: 0.0002*res^2/batch)")
    p.add_argument("--snapshot-kimg", type=float, default=None)
    p.add_argument("--sample-kimg", type=float, default=None)
    p.add_argument("--precision", choices=("bf16", "fp32"), default=None)
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the G/D passes")
    p.add_argument(
        "--fir",
        choices=FIR_IMPLS,
        default=None,
        help="FIR resampling implementation under autograd (speed only)",
    )
    p.add_argument(
        "--cond", action="store_true", default=None, help="class-conditional (datasets with labels)"
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--init",
        default=None,
        metavar="PATH",
        help="start from trained weights: a run, a ckpt-*.pt, an --export-weights file or any generator file "
        "(then D starts fresh); the image count and optimisers start from zero",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="storage dtype for --export-weights",
    )
    p.add_argument("--device", choices=("cuda", "cpu"), default=None)
    p.add_argument(
        "--out",
        default=None,
        help="runs folder (a numbered run directory is created inside); the file for --export-weights",
    )
    p.add_argument("--run-dir", default=None, help="exact run directory instead of a numbered one in --out")
    p.add_argument("--background", action="store_true", help="start as a background job and return")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


_FIELDS = {
    "data": "data",
    "res": "res",
    "kimg": "kimg",
    "arch": "arch",
    "g_architecture": "g_architecture",
    "batch": "batch",
    "gpus": "gpus",
    "aug": "aug",
    "width": "width",
    "gamma": "r1_gamma",
    "snapshot_kimg": "snapshot_kimg",
    "sample_kimg": "sample_kimg",
    "precision": "precision",
    "compile": "compile",
    "fir": "fir",
    "cond": "cond",
    "seed": "seed",
    "init": "init",
}


def build_config(args: argparse.Namespace):
    """TrainConfig from preset + flags (flags win)."""
    from core.training.config import PRESETS, TrainConfig

    fields: dict = {}
    if args.preset:
        if args.preset not in PRESETS:
            raise StyleScopeError(f"unknown preset {args.preset!r}; choose from {sorted(PRESETS)}")
        fields.update(PRESETS[args.preset])
    for flag, name in _FIELDS.items():
        v = getattr(args, flag)
        if v is not None:
            fields[name] = v
    if fields.get("init"):  # absolute, so a background job started elsewhere finds it
        fields["init"] = str(Path(fields["init"]).expanduser().resolve())
    if "data" not in fields:
        raise StyleScopeError("--data is required (synthfaces, toy, or a folder/.zip of images)")
    return TrainConfig(**fields)


def run(args: argparse.Namespace) -> int:
    from core.training import jobs

    if args.status:
        st = jobs.status(args.status)
        if args.json:
            emit_json(st)
        else:
            print(_status_line(st))
        return 0
    if args.list:
        runs = jobs.list_runs(args.list)
        if args.json:
            emit_json(runs)
        else:
            for st in runs:
                print(f"{st['name']}: {_status_line(st)}")
        return 0
    if args.export_weights:
        import torch

        from core.training.warmstart import export_weights

        if not args.out:
            raise StyleScopeError("--export-weights needs --out FILE.safetensors")
        info = export_weights(args.export_weights, args.out, dtype=getattr(torch, args.dtype))
        if args.json:
            emit_json(info)
        else:
            print(f"wrote {info['out']} ({info['bytes'] / 2**20:.1f} MiB, {info['kimg']:.1f} kimg)")
        return 0
    if args.stop:
        ok = jobs.stop(args.stop)
        if args.json:
            emit_json({"run_dir": args.stop, "signalled": ok})
        else:
            print(f"{args.stop}: {'asked to save and stop' if ok else 'not running'}")
        return 0

    if args.resume:
        run_dir = Path(args.resume)
        from core.training.config import TrainConfig

        try:
            config = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
        except OSError:
            raise StyleScopeError(f"{run_dir} is not a run directory (no config.json)") from None
        if args.gpus is not None:
            config = config.replace(gpus=args.gpus)
        if args.kimg is not None:
            config = config.replace(kimg=args.kimg)
    else:
        config = build_config(args)
        if not (args.out or args.run_dir):
            raise StyleScopeError("--out RUNS_DIR (or --run-dir) is required")
        run_dir = Path(args.run_dir) if args.run_dir else jobs.next_run_dir(args.out, config)
    device = jobs.check_device(config, args.device)

    if args.background or config.gpus > 1:
        if args.resume:
            handle = jobs.resume(run_dir, kimg=args.kimg, gpus=args.gpus, device=device)
        else:
            handle = jobs.start(config, run_dir, device=device)
        if args.background:
            emit_json(handle.to_dict()) if args.json else print(f"started {run_dir} (pid {handle.pid})")
            return 0
        return _watch(run_dir, handle.pid, json_out=args.json)
    return _foreground(
        config, run_dir, resume=bool(args.resume), kimg=args.kimg, device=device, json_out=args.json
    )


def _foreground(config, run_dir: Path, *, resume: bool, kimg, device: str, json_out: bool) -> int:
    from core.training import train

    bar = tqdm(total=round(config.kimg, 3), unit="kimg", desc=f"train {run_dir.name}", disable=json_out)

    def progress(st: dict) -> None:
        bar.n = round(st["kimg"], 3)
        losses = st.get("losses", {})
        bar.set_postfix(
            img_s=f"{st['img_per_s']:.0f}" if st.get("img_per_s") else "-",
            D=_fmt(losses.get("loss_D")),
            G=_fmt(losses.get("loss_G")),
            p=f"{st['augment_p']:.2f}",
        )
        bar.refresh()

    try:
        st = train(
            None if resume else config, run_dir, resume=resume, kimg=kimg, device=device, callback=progress
        )
    finally:
        bar.close()
    if json_out:
        emit_json(st)
    else:
        print(f"{st['state']} at kimg {st['kimg']:.3f}; run directory {run_dir}")
    return 0


def _watch(run_dir: Path, pid: int, *, json_out: bool) -> int:
    """Follow a multi-GPU run's status.json with a progress bar; Ctrl-C asks it to save and stop."""
    from core.training import jobs

    bar = tqdm(unit="kimg", desc=f"train {run_dir.name}", disable=json_out)
    old = signal.signal(signal.SIGINT, lambda *_: jobs.stop(run_dir))
    try:
        while True:
            st = jobs.status(run_dir)
            if st.get("total_kimg"):
                bar.total = st["total_kimg"]
                bar.n = round(st.get("kimg", 0.0), 3)
                bar.refresh()
            if not st["alive"]:
                break
            time.sleep(1.0)
    finally:
        signal.signal(signal.SIGINT, old)
        bar.close()
    if json_out:
        emit_json(st)
    else:
        print(f"{st['state']} at kimg {st.get('kimg', 0):.3f}; run directory {run_dir}", file=sys.stderr)
    return 0 if st["state"] in ("finished", "stopped") else 1


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, int | float) else "-"


def _status_line(st: dict) -> str:
    if st.get("state") == "unknown":
        return f"no status yet ({st.get('message', '')})"
    ips = st.get("img_per_s")
    eta = st.get("eta_s")
    parts = [
        f"{st.get('state')}",
        f"kimg {st.get('kimg', 0):g}/{st.get('total_kimg', 0):g}",
        f"{ips:.0f} img/s" if ips else None,
        f"ETA {eta / 60:.0f} min" if eta else None,
        f"augment p {st.get('augment_p', 0):.3f}",
        st.get("message") or None,
    ]
    return ", ".join(x for x in parts if x)
