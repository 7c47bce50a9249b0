"""``stylescope evaluate``: quality, disentanglement and noise metrics of a SynthFaces generator.

A thin shell over :func:`core.metrics.evaluate.evaluate_model`; exit status 0 even when a target is missed
(the JSON says which), 2 on user errors (missing files, bad options).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.cli.classifier import DEFAULT_CLASSIFIER
from core.cli.common import add_report_options, emit_json, progress_bar, resolve_device
from core.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="FD / precision / recall, style-mixing disentanglement, noise stability"
    )
    p.add_argument(
        "--model", required=True, help="generator: native .safetensors, rosinality .pt or NVIDIA .pkl"
    )
    p.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER), help="SynthFaces classifier .safetensors")
    p.add_argument("--n", type=int, default=10_000, help="images per set (generated, real, second real)")
    p.add_argument("--pairs", type=int, default=None, help="style-mixing pairs (default min(n, 1000))")
    p.add_argument(
        "--noise-n", type=int, default=None, help="latents for the noise test (default min(n, 500))"
    )
    p.add_argument("--noise-draws", type=int, default=8, help="noise draws per latent")
    p.add_argument(
        "--row-pairs",
        type=int,
        default=0,
        help="also report which ws rows carry which factor (one row of B at a time), from this many pairs",
    )
    p.add_argument(
        "--rows-only", action="store_true", help="report only the row influence (needs --row-pairs)"
    )
    p.add_argument("--batch", type=int, default=128, help="images per forward pass")
    add_report_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import core
    from core.metrics.evaluate import evaluate_model
    from core.models.classifier import load_classifier

    for what, path in (("--model", args.model), ("--classifier", args.classifier)):
        if not Path(path).is_file():
            raise InputError(f"{what}: no such file {path}")
    if args.n < 8:
        raise InputError("--n must be at least 8")
    if args.row_pairs < 0:
        raise InputError("--row-pairs must be >= 0")
    if args.rows_only and not args.row_pairs:
        raise InputError("--rows-only needs --row-pairs N (N > 0)")
    device = resolve_device(args.device)
    G = core.load_generator(args.model, device=device)
    classifier = load_classifier(args.classifier, device=device)

    report: dict = {"cancelled": False}
    if not args.rows_only:
        with progress_bar("evaluate", unit="img", disable=args.json) as progress:
            report = evaluate_model(
                G,
                classifier,
                n=args.n,
                seed=args.seed,
                device=device,
                batch=args.batch,
                n_pairs=args.pairs,
                noise_n=args.noise_n,
                noise_draws=args.noise_draws,
                progress=progress,
            )
    if args.row_pairs and not report["cancelled"]:
        from core.metrics.disentanglement import row_influence

        with progress_bar("rows", unit="pair", disable=args.json) as progress:
            report["row_influence"] = row_influence(
                G, classifier, n_pairs=args.row_pairs, seed=args.seed + 7, batch=args.batch, progress=progress
            )
    report["model"] = str(args.model)
    report["classifier"] = str(args.classifier)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2), encoding="utf-8")
    if args.json:
        emit_json(report)
        return 0
    if "quality" in report:
        q = report["quality"]
        print(
            f"FD {q['fd']:.3f} (floor {q['fd_floor']:.3f}), precision {q['precision']:.3f}, recall {q['recall']:.3f}"
        )
    for name, ok in report.get("checks", {}).items():
        print(f"  {name}: {'pass' if ok else 'FAIL' if ok is False else 'n/a'}")
    if "pass" in report:
        print("overall:", "PASS" if report["pass"] else "FAIL")
    if "row_influence" in report:
        follows = report["row_influence"]["follows_b"]
        print("factor".ljust(14), " ".join(f"r{r:<3d}" for r in range(report["row_influence"]["num_ws"])))
        for f, vals in follows.items():
            print(f.ljust(14), " ".join("  - " if v is None else f"{v:.2f}" for v in vals))
    return 0
