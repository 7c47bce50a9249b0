"""``stylescope generate``: images for a list of seeds, each PNG carrying its recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from core.cli.common import emit_json, parse_seeds, resolve_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="render seeds to PNGs (each embeds its recipe)")
    p.add_argument("--model", required=True, help="native .safetensors, rosinality .pt or NVIDIA .pkl")
    p.add_argument("--seeds", default="0-7", help="seeds and ranges, e.g. 0-7,42")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi (1 = off)")
    p.add_argument("--cutoff", type=int, default=None, help="truncate only ws rows below this index")
    p.add_argument("--noise-mode", choices=("const", "random", "none"), default="const")
    p.add_argument("--class-idx", type=int, default=None, help="class for conditional models")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--fast",
        choices=("off", "fp32", "bf16", "bf16-compile"),
        default="off",
        help="GPU fast path (core.fastpath): CUDA graphs, bf16, torch.compile; no effect on CPU",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import core
    from core.checkpoints.native import file_digest
    from core.fastpath import set_render_fast_path
    from core.images import save_png, to_pil
    from core.render import Recipe, recipe_png_text, render_tensor

    seeds = parse_seeds(args.seeds)
    set_render_fast_path(args.fast)
    device = resolve_device(args.device)
    G = core.load_generator(args.model, device=device)
    digest = file_digest(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for seed in tqdm(seeds, desc="generate", unit="img", disable=args.json):
        recipe = Recipe(
            model=str(args.model),
            model_hash=digest,
            seed=seed,
            truncation_psi=args.psi,
            truncation_cutoff=args.cutoff,
            noise_mode=args.noise_mode,
            class_idx=args.class_idx,
        )
        img = to_pil(render_tensor(G, recipe))[0]
        path = out / f"seed{seed:08d}.png"
        save_png(img, path, text=recipe_png_text(recipe))
        written.append(str(path))
    if args.json:
        emit_json({"images": written, "model": str(args.model), "model_hash": digest})
    return 0
