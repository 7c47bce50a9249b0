"""Directions benchmark: SVM fit time and collect+label throughput; prints one JSON object.

* ``svm``: ``core.directions.fit_svm`` on 10k planted samples (w_dim 256 = the default model, and 512 = the
  FFHQ models), median of ``--repeats`` fits, with validation accuracy and the angle to the planted normal.
  Target: <= 2 s for 10k samples on this CPU.
* ``collect``: ``core.directions.collect`` (map, render, classify) of N samples with the default-size 128 px
  generator and the SynthFaces classifier (``--model`` / ``--classifier`` files, or random weights of the
  same size), on the CPU and, when present, on CUDA. The CPU run measures ``--cpu-samples`` and extrapolates
  linearly to 10k (``est_10k_s``); the GPU run measures 10k directly.

    python benchmarks/directions.py                     # CPU (and GPU if available)
    python benchmarks/directions.py --model M --classifier C --devices cuda
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.directions import collect, fit_svm, load_scorer  # noqa: E402
from core.directions.collect import ClassifierScorer  # noqa: E402
from core.models.stylegan import Generator, GeneratorConfig  # noqa: E402

DEFAULT_128 = dict(img_resolution=128, z_dim=256, w_dim=256, n_mlp=4, channels=(256, 256, 256, 128, 64, 32))


def bench_svm(n: int, dim: int, repeats: int) -> dict:
    g = torch.Generator().manual_seed(dim)
    X = torch.randn(n, dim, generator=g)
    normal = torch.nn.functional.normalize(torch.randn(dim, generator=g), dim=0)
    y = X @ normal + 0.2 * torch.randn(n, generator=g) > 0.3
    fit_svm(X[:200], y[:200])  # import sklearn outside the timing
    times, fit = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        fit = fit_svm(X, y, seed=0)
        times.append(time.perf_counter() - t0)
    return {
        "samples": n,
        "dim": dim,
        "fit_s_median": round(statistics.median(times), 3),
        "fit_s_all": [round(t, 3) for t in times],
        "val_accuracy": round(fit.val_accuracy, 4),
        "cos_to_planted": round(float(fit.normal @ normal), 4),
        "target_s": 2.0,
        "meets_target": statistics.median(times) <= 2.0,
    }


def load_models(args, device: torch.device):
    if args.model:
        import core

        G = core.load_generator(args.model, device=device)
    else:
        torch.manual_seed(0)  # benchmark only: random weights of the default size
        G = Generator(GeneratorConfig(**DEFAULT_128)).to(device).eval().requires_grad_(False)
    if args.classifier:
        scorer = load_scorer(args.classifier, device=device)
    else:
        from core.models.classifier import AttributeClassifier, ClassifierConfig

        torch.manual_seed(0)
        clf = AttributeClassifier(ClassifierConfig.synthfaces()).to(device).eval().requires_grad_(False)
        scorer = ClassifierScorer(clf)
    return G, scorer


def bench_collect(args, device: torch.device, n: int) -> dict:
    G, scorer = load_models(args, device)
    collect(G, scorer, min(n, 2 * args.batch), batch_size=args.batch)  # warm-up (cuDNN autotune, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    s = collect(G, scorer, n, seed=1, batch_size=args.batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "samples": len(s),
        "batch": args.batch,
        "time_s": round(dt, 3),
        "img_per_s": round(len(s) / dt, 1),
        "est_10k_s": round(dt * 10_000 / len(s), 1),
        "model": args.model or "random default-size 128 px",
        "classifier": args.classifier or "random SynthFaces-size classifier",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="generator file (default: random weights, default 128 px size)")
    p.add_argument("--classifier", help="attribute classifier file (default: random weights)")
    p.add_argument("--devices", default="auto", help="comma list of cpu,cuda or auto (cpu + cuda if present)")
    p.add_argument("--cpu-samples", type=int, default=512, help="samples measured on the CPU (extrapolated)")
    p.add_argument("--gpu-samples", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--skip-collect", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = {
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "svm": [bench_svm(10_000, d, args.repeats) for d in (256, 512)],
    }
    if not args.skip_collect:
        devices = ["cpu", "cuda"] if args.devices == "auto" else args.devices.split(",")
        out["collect"] = []
        for name in devices:
            dev = torch.device(name)
            if dev.type == "cuda" and not torch.cuda.is_available():
                out["collect"].append({"device": name, "skipped": "no CUDA device"})
                continue
            n = args.cpu_samples if dev.type == "cpu" else args.gpu_samples
            out["collect"].append(bench_collect(args, dev, n))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
