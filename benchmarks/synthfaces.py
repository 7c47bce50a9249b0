"""Benchmark SynthFaces rendering speed (and write the README example sheets).

Prints one JSON line per device: ``{"bench": "synthfaces", "device", "resolution", "batch", "threads",
"images_per_s"}``. CUDA is skipped when absent. Targets: >= 500 images/s at 128 px on a 2-core CPU,
>= 20,000 images/s on an H100.

    python benchmarks/synthfaces.py [--resolution 128] [--threads 2] [--devices cpu,cuda]
    python benchmarks/synthfaces.py --sheets assets/examples   # also write the two example PNGs
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from core.data.synthfaces import SynthFaces, contact_sheet, factor_sweep_sheet


def bench(device: torch.device, *, resolution: int, batch: int, min_seconds: float) -> float:
    """Images per second of ``SynthFaces.batch`` (factor sampling + rendering) on ``device``."""
    ds = SynthFaces(resolution=resolution, seed=0)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    ds.batch(0, batch, device)  # warm-up: allocator, kernels
    sync()
    done, start = 0, time.perf_counter()
    while True:
        ds.batch(done + batch, batch, device)
        done += batch
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (the reference box has 2 cores)")
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--cpu-batch", type=int, default=256)
    parser.add_argument("--gpu-batch", type=int, default=16384)
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum measuring time per device")
    parser.add_argument(
        "--sheets", metavar="DIR", help="write synthfaces-grid.png and synthfaces-factors.png"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.sheets:
        out = Path(args.sheets)
        out.mkdir(parents=True, exist_ok=True)
        contact_sheet(rows=8, cols=8, resolution=128, seed=0).save(out / "synthfaces-grid.png", optimize=True)
        factor_sweep_sheet(cols=8, resolution=96).save(out / "synthfaces-factors.png", optimize=True)

    for name in filter(None, args.devices.split(",")):  # --devices "" only writes the sheets
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            continue
        batch = args.gpu_batch if device.type == "cuda" else args.cpu_batch
        ips = bench(device, resolution=args.resolution, batch=batch, min_seconds=args.seconds)
        row = {"bench": "synthfaces", "device": str(device), "resolution": args.resolution, "batch": batch,
               "threads": torch.get_num_threads(), "images_per_s": round(ips, 1)}  # fmt: skip
        if device.type == "cuda":
            row["gpu"] = torch.cuda.get_device_name(device)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
