"""``stylescope project``: invert an image into a generator's W or W+ space (StyleGAN2 projector)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from core.cli.common import emit_json, resolve_device
from core.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("project", help="find the latents (W or W+) whose image matches a target image")
    p.add_argument("--model", required=True, help="native .safetensors, rosinality .pt or NVIDIA .pkl")
    p.add_argument(
        "--target", required=True, help="image to invert (any common format; resized to the model)"
    )
    p.add_argument("--steps", type=int, default=500, help="optimisation steps (default 500)")
    p.add_argument("--space", choices=("w", "w+"), default="w", help="w: editable; w+: closer reconstruction")
    p.add_argument(
        "--loss", choices=("lpips", "pixel"), default="lpips", help="lpips falls back to pixel offline"
    )
    p.add_argument("--noise-reg", type=float, default=1e5, help="noise regularisation weight (default 1e5)")
    p.add_argument("--seed", type=int, default=0, help="seed for every random number of the run")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="output folder: projected.png, projected_ws.npz, report.json")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    import core
    from core.checkpoints.native import file_digest
    from core.images import from_pil, load_image, save_png, square_crop, to_pil
    from core.inversion import latent_spec, project, save_latents

    if not 0 <= args.seed < 2**63:
        raise InputError(f"--seed must be a non-negative integer, got {args.seed}")
    device = resolve_device(args.device)
    image = load_image(args.target)
    # Centre square: the generator is square, and stretching a portrait would distort the face.
    target = from_pil(square_crop(image, size=min(image.size)))
    G = core.load_generator(args.model, device=device)
    gen = torch.Generator(device="cpu").manual_seed(args.seed)
    bar = tqdm(total=args.steps, desc=f"project ({args.space})", unit="step", disable=args.json)

    def progress(step: int, total: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.4f}")

    try:
        result = project(
            G,
            target,
            num_steps=args.steps,
            space=args.space,
            loss=args.loss,
            noise_reg_weight=args.noise_reg,
            generator=gen,
            progress=progress,
        )
    finally:
        bar.close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = latent_spec(result, model=str(args.model), model_hash=file_digest(args.model), seed=args.seed)
    png = save_png(
        to_pil(result.image)[0], out / "projected.png", text={"stylescope-projection": json.dumps(spec)}
    )
    save_png(to_pil(result.target)[0], out / "target.png")
    npz = save_latents(result, out / "projected_ws.npz")
    report = {**result.report(), "image": str(png), "latents": str(npz)}
    (out / "report.json").write_text(json.dumps({**report, "losses": result.losses}, indent=2) + "\n")
    if args.json:
        emit_json(report)
    return 0
