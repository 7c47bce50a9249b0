"""``stylescope ppl``: perceptual path length of any generator, in W and / or Z, "end" and / or "full" sampling.

    stylescope ppl --model M                          # W and Z, end sampling, 10k pairs, LPIPS if installed
    stylescope ppl --model M --space w --sampling end full --n 2000 --crop --json

A thin shell over :func:`core.metrics.ppl.perceptual_path_length`; exit status 2 on user errors.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from core.cli.common import add_report_options, emit_json, progress_bar, resolve_device
from core.errors import InputError
from core.metrics.ppl import DISTANCES, SAMPLINGS, SPACES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ppl",
        help="perceptual path length (StyleGAN paper Sec. 4.1): how smoothly images change along latent paths",
    )
    p.add_argument(
        "--model", required=True, help="generator: native .safetensors, rosinality .pt or NVIDIA .pkl"
    )
    p.add_argument(
        "--space", nargs="+", choices=SPACES, default=list(SPACES), help="latent spaces (default both)"
    )
    p.add_argument(
        "--sampling", nargs="+", choices=SAMPLINGS, default=["end"], help="end (t = 0) and / or full"
    )
    p.add_argument("--n", type=int, default=10_000, help="interpolation pairs per measurement")
    p.add_argument("--epsilon", type=float, default=1e-4, help="step along the path")
    p.add_argument(
        "--distance",
        choices=DISTANCES,
        default="auto",
        help="lpips (VGG16; its weights must be on disk), pixel (64 px MSE), auto = lpips when present",
    )
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi (1 = none, as in the papers)")
    p.add_argument("--crop", action="store_true", help="central face region only (aligned portraits)")
    p.add_argument("--batch", type=int, default=16, help="pairs per forward pass")
    add_report_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import core
    from core.metrics.ppl import make_distance, perceptual_path_length

    if not Path(args.model).is_file():
        raise InputError(f"--model: no such file {args.model}")
    device = resolve_device(args.device)
    G = core.load_generator(args.model, device=device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        distance, name = make_distance(args.distance, device=device)
    notes = [str(w.message) for w in caught]
    if not args.json:
        for note in notes:
            print(f"note: {note}")
    results = []
    for space in dict.fromkeys(args.space):
        for sampling in dict.fromkeys(args.sampling):
            with progress_bar(f"ppl {space}-{sampling}", unit="pair", disable=args.json) as progress:
                r = perceptual_path_length(
                    G,
                    n=args.n,
                    space=space,
                    sampling=sampling,
                    epsilon=args.epsilon,
                    distance=distance,
                    truncation_psi=args.psi,
                    crop=args.crop,
                    batch=args.batch,
                    seed=args.seed,
                    progress=progress,
                )
            results.append({**r, "distance": name})
    report = {"model": str(args.model), "results": results, "notes": notes}
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.json:
        emit_json(report)
        return 0
    for r in results:
        print(
            f"PPL {r['space'].upper()}-{r['sampling']}: {r['ppl']:.2f} (median {r['median']:.2f}, {r['n']} pairs, {name})"
        )
    return 0
