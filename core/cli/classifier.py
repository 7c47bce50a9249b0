"""``stylescope classifier train|eval``: the SynthFaces attribute classifier (:mod:`core.models.classifier`).

``train`` renders SynthFaces on the fly, trains, evaluates on a held-out stream (clean and blurred) and writes
the native ``.safetensors`` file plus ``CLASSIFIER_CARD.md`` next to it. ``eval`` scores a saved classifier.
"""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

from core.cli.common import emit_json, progress_bar, resolve_device
from core.errors import InputError

DEFAULT_CLASSIFIER = (
    Path(__file__).resolve().parents[2] / "assets" / "models" / "synthfaces-classifier.safetensors"
)
CARD_NAME = "CLASSIFIER_CARD.md"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classifier", help="train / evaluate the SynthFaces attribute classifier")
    csub = p.add_subparsers(dest="classifier_command", metavar="SUBCOMMAND")
    csub.required = True

    t = csub.add_parser(
        "train", help="train on SynthFaces rendered on the fly; writes the model and its card"
    )
    t.add_argument(
        "--out", required=True, help="output .safetensors (CLASSIFIER_CARD.md is written beside it)"
    )
    t.add_argument("--steps", type=int, default=3000, help="optimiser steps")
    t.add_argument(
        "--batch", type=int, default=None, help="images per step (default: 256 on CUDA, 64 otherwise)"
    )
    t.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    t.add_argument("--resolution", type=int, default=128, help="render resolution of training images")
    t.add_argument("--seed", type=int, default=0, help="SynthFaces training stream and init seed")
    t.add_argument(
        "--buffer",
        type=int,
        default=None,
        help="replay buffer size (default: 0 = pure on-the-fly on CUDA, 16 x batch on CPU)",
    )
    t.add_argument(
        "--refresh",
        type=float,
        default=None,
        help="fraction of a batch rendered fresh per step when buffering (0.25)",
    )
    t.add_argument(
        "--init",
        default=None,
        help="continue from this classifier (fine-tune; pick a new --seed for new images)",
    )
    t.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="train for this long: the learning-rate schedule follows the clock (--steps is then a cap)",
    )
    t.add_argument("--eval-n", type=int, default=5000, help="held-out renders for the card (0: skip)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    t.add_argument("--no-card", action="store_true", help="do not write CLASSIFIER_CARD.md")
    t.add_argument("--json", action="store_true", help="print only the JSON report")
    t.set_defaults(func=run_train)

    e = csub.add_parser("eval", help="held-out accuracy / R^2 of a saved classifier")
    e.add_argument("--model", default=str(DEFAULT_CLASSIFIER), help="classifier .safetensors")
    e.add_argument("--n", type=int, default=2000, help="number of held-out renders")
    e.add_argument("--seed", type=int, default=None, help="SynthFaces stream (default: the held-out stream)")
    e.add_argument("--blur", action="store_true", help="blur the renders first (robustness check)")
    e.add_argument("--device", default="auto")
    e.add_argument("--json", action="store_true", help="print only the JSON report")
    e.set_defaults(func=run_eval)


def _init_meta(path: str) -> dict:
    """Steps and seed recorded in a classifier file's metadata (empty when absent)."""
    from core.checkpoints.native import read_metadata

    meta = read_metadata(path)
    return {k: json.loads(meta[k]) for k in ("steps", "seed") if k in meta}


def run_train(args: argparse.Namespace) -> int:
    from core.models.classifier import load_classifier, save_classifier
    from core.models.classifier_train import HELD_OUT_SEED_OFFSET, classifier_card, train_classifier

    if args.steps < 1:
        raise InputError("--steps must be positive")
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise InputError(f"--out must end in .safetensors, got {out.name!r}")
    device = resolve_device(args.device)
    batch = args.batch or (256 if device.type == "cuda" else 64)
    init = load_classifier(args.init, device="cpu") if args.init else None
    stop = {"flag": False}

    def on_sigint(signum, frame):  # first Ctrl-C: finish the step, evaluate and save; second: abort
        if stop["flag"]:
            raise KeyboardInterrupt
        stop["flag"] = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        with progress_bar("classifier", unit="step", disable=args.json) as progress:
            model, report = train_classifier(
                resolution=args.resolution,
                steps=args.steps,
                batch=batch,
                lr=args.lr,
                device=device,
                seed=args.seed,
                eval_n=args.eval_n,
                buffer_size=args.buffer,
                refresh=args.refresh,
                progress=progress,
                should_stop=lambda: stop["flag"],
                init=init,
                time_budget=None if args.minutes is None else 60.0 * args.minutes,
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    meta = {
        "steps": report["steps"],
        "seed": args.seed,
        "held_out_seed": HELD_OUT_SEED_OFFSET + args.seed,
        "min_accuracy": report.get("eval", {}).get("min_accuracy"),
        "min_r2": report.get("eval", {}).get("min_r2"),
    }
    if args.init:
        report["init"] = {"model": Path(args.init).name, **_init_meta(args.init)}
        meta["init"] = report["init"]
    save_classifier(model, out, metadata=meta)
    report["model"] = str(out)
    if not args.no_card:
        card = out.parent / CARD_NAME
        card.write_text(classifier_card(report, model_file=out.name), encoding="utf-8")
        report["card"] = str(card)
    if args.json:
        emit_json(report)
    else:
        ev = report.get("eval")
        print(f"wrote {out}" + (f" and {report['card']}" if "card" in report else ""))
        if ev:
            print(
                f"held-out min accuracy {ev['min_accuracy']:.4f}, min R^2 {ev['min_r2']:.4f}, pass={ev['pass']}"
            )
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from core.models.classifier import load_classifier
    from core.models.classifier_train import HELD_OUT_SEED_OFFSET, evaluate_classifier

    if args.n < 1:
        raise InputError("--n must be positive")
    device = resolve_device(args.device)
    model = load_classifier(args.model, device=device)
    seed = HELD_OUT_SEED_OFFSET if args.seed is None else args.seed
    report = evaluate_classifier(model, n=args.n, seed=seed, blur=args.blur)
    report["model"] = str(args.model)
    if args.json:
        emit_json(report)
    else:
        print(json.dumps(report, indent=2))
    return 0
