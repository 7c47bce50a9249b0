"""Exploration subcommands, the command-line twins of the Explorer tabs.

``stylescope render RECIPE``       a recipe (JSON file, JSON text, or a StyleScope PNG) -> PNG
``stylescope mix``                 the style-mixing matrix (StyleGAN Figure 3) for a layer group or rows
``stylescope noise``               stochastic variation: mean image and per-pixel std over K noise draws
``stylescope interpolate``         frames between two seeds (W lerp or Z slerp) as GIF / MP4 / zip of PNGs
``stylescope layers``              feature maps of one synthesis layer, colour-mapped

Each is a thin shell over :mod:`core.explore` / :mod:`core.render`; results carry their recipe or spec.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from core.cli.common import emit_json, parse_seeds, resolve_device
from core.errors import InputError

GROUPS = ("coarse", "middle", "fine")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="render a recipe (JSON file/text or a StyleScope PNG) to a PNG")
    p.add_argument("recipe", help="recipe .json file, JSON text, or a PNG written by StyleScope")
    p.add_argument("--model", default=None, help="use this model instead of the one the recipe names")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="output .png")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_render)

    p = sub.add_parser("mix", help="style-mixing matrix: rows = seeds A, columns = seeds B")
    _model_args(p)
    p.add_argument("--rows-seeds", required=True, help="seeds of the rows (sources A), e.g. 0-3")
    p.add_argument("--cols-seeds", required=True, help="seeds of the columns (sources B), e.g. 10-14")
    p.add_argument("--group", choices=GROUPS, default=None, help="copy B's rows of this layer group")
    p.add_argument("--layers", default=None, help="explicit ws rows to copy from B, e.g. 0-3 or 4,5")
    p.add_argument("--alpha", type=float, default=1.0, help="blend: 1 copies B's rows, 0 keeps A")
    p.set_defaults(func=run_mix)

    p = sub.add_parser("noise", help="stochastic variation: mean image and per-pixel std over noise draws")
    _model_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--draws", type=int, default=16)
    p.add_argument("--noise-seed", type=int, default=0)
    p.add_argument("--preset", choices=("all", "none", "fine", "coarse"), default="all")
    p.set_defaults(func=run_noise)

    p = sub.add_parser("interpolate", help="frames between two seeds as .gif, .mp4 or .zip of PNGs")
    _model_args(p)
    p.add_argument("--seeds", required=True, help="two seeds, e.g. 3,7")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--space", choices=("w", "z"), default="w", help="lerp in W or slerp in Z")
    p.add_argument("--fps", type=int, default=15)
    p.set_defaults(func=run_interpolate)

    p = sub.add_parser("layers", help="feature maps of one synthesis layer (channel grid, mean or channel)")
    _model_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layer", default="conv1", help="layer name, e.g. conv1, convs.5 (see --list)")
    p.add_argument("--mode", choices=("grid", "mean", "channel"), default="grid")
    p.add_argument("--channel", type=int, default=0)
    p.add_argument("--cmap", default="viridis")
    p.add_argument("--list", action="store_true", help="list the model's layers and exit")
    p.set_defaults(func=run_layers)


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="native .safetensors, rosinality .pt or NVIDIA .pkl")
    p.add_argument("--psi", type=float, default=1.0, help="truncation psi")
    p.add_argument("--cutoff", type=int, default=None, help="truncate only ws rows below this index")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="output file (.png; .gif/.mp4/.zip for interpolate)")
    p.add_argument("--json", action="store_true", help="print a JSON report")


def _load(args: argparse.Namespace):
    import core

    return core.load_generator(args.model, device=resolve_device(args.device))


def _require_out(args: argparse.Namespace, default_suffix: str = ".png") -> Path:
    if not args.out:
        raise InputError("--out is required")
    out = Path(args.out)
    if not out.suffix:
        out = out.with_suffix(default_suffix)
    return out


def _save(img_tensor, out: Path, text: dict[str, str] | None = None) -> None:
    from core.images import save_png, to_pil

    save_png(to_pil(img_tensor)[0], out, text=text)


def run_render(args: argparse.Namespace) -> int:
    from core.render import Recipe, recipe_from_png, recipe_png_text, render

    src = args.recipe
    path = Path(src)
    if path.suffix.lower() == ".png" and path.is_file():
        recipe = recipe_from_png(path)
    elif path.is_file():
        recipe = Recipe.from_json(path.read_text(encoding="utf-8", errors="replace"))
    else:
        recipe = Recipe.from_json(src)
    G = None
    if args.model:
        import core

        G = core.load_generator(args.model, device=resolve_device(args.device))
    image = render(recipe, G=G, device=resolve_device(args.device))
    from core.images import save_png

    out = Path(args.out)
    save_png(image, out, text=recipe_png_text(recipe))
    if args.json:
        emit_json({"image": str(out), "recipe": recipe.to_dict()})
    return 0


def _rows_from_args(G, args: argparse.Namespace) -> list[int]:
    if args.layers:
        rows = parse_seeds(args.layers)
    elif args.group:
        rows = G.layer_groups[args.group]
    else:
        raise InputError("choose --group coarse|middle|fine or --layers ROWS")
    bad = [r for r in rows if r >= G.num_ws]
    if bad:
        raise InputError(f"ws row {bad[0]} does not exist: this model has rows 0..{G.num_ws - 1}")
    if not rows:
        raise InputError(f"the {args.group} group is empty for a {G.img_resolution} px model")
    return rows


def run_mix(args: argparse.Namespace) -> int:
    from core.explore import mixing_matrix

    G = _load(args)
    rows = _rows_from_args(G, args)
    a, b = parse_seeds(args.rows_seeds), parse_seeds(args.cols_seeds)
    if len(a) * len(b) > 400:
        raise InputError("the matrix would have more than 400 cells; use fewer seeds")
    from core.images import make_grid

    cells = mixing_matrix(G, a, b, rows, psi=args.psi, cutoff=args.cutoff, alpha=args.alpha)
    grid = make_grid(cells, nrow=len(b) + 1)
    out = _require_out(args)
    spec = {
        "kind": "mixing-matrix",
        "model": args.model,
        "row_seeds": a,
        "col_seeds": b,
        "rows": rows,
        "alpha": args.alpha,
        "truncation_psi": args.psi,
        "truncation_cutoff": args.cutoff,
    }
    _save(grid, out, {"stylescope-spec": json.dumps(spec)})
    if args.json:
        emit_json({"image": str(out), **spec})
    return 0


def run_noise(args: argparse.Namespace) -> int:
    import torch

    from core.explore import noise_preset, noise_std_map
    from core.images import make_grid
    from core.render import Recipe, recipe_ws

    G = _load(args)
    recipe = Recipe(model=args.model, seed=args.seed, truncation_psi=args.psi, truncation_cutoff=args.cutoff)
    ws = recipe_ws(G, recipe)
    layers = noise_preset(G, args.preset)
    mean, std = noise_std_map(G, ws, draws=args.draws, seed=args.noise_seed, noise_layers=layers)
    # Show the std map on the image scale: 0 -> black, the largest std -> white.
    std_img = (std / std.max().clamp_min(1e-8)) * 2 - 1
    std_img = std_img.expand(-1, 3, -1, -1) if std_img.shape[1] == 1 else std_img
    out = _require_out(args)
    pair = torch.cat([mean.float().cpu(), std_img.float().cpu()])
    _save(make_grid(pair, nrow=2), out, {"stylescope-recipe": recipe.to_json()})
    if args.json:
        emit_json(
            {
                "image": str(out),
                "preset": args.preset,
                "draws": args.draws,
                "mean_std": float(std.mean()),
                "max_std": float(std.max()),
            }
        )
    return 0


def run_interpolate(args: argparse.Namespace) -> int:
    from core.checkpoints.native import file_digest
    from core.explore import interpolate, interpolation_spec, save_animation
    from core.images import to_pil

    seeds = parse_seeds(args.seeds)
    if len(seeds) != 2:
        raise InputError("--seeds needs exactly two seeds, e.g. 3,7")
    if not 2 <= args.steps <= 1000:
        raise InputError("--steps must be between 2 and 1000")
    G = _load(args)
    out = _require_out(args, ".gif")
    bar = tqdm(total=args.steps, desc="interpolate", unit="frame", disable=args.json)

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    path_args = dict(steps=args.steps, psi=args.psi, cutoff=args.cutoff, space=args.space)
    frames = interpolate(G, seeds[0], seeds[1], progress=progress, **path_args)
    bar.close()
    digest = file_digest(args.model)
    spec = interpolation_spec(
        args.model, digest, seeds[0], seeds[1], noise_mode="const", fps=args.fps, **path_args
    )
    path = save_animation(to_pil(frames), out, fps=args.fps, spec=spec)
    if args.json:
        emit_json({"animation": str(path), "frames": int(frames.shape[0]), **spec})
    return 0


def run_layers(args: argparse.Namespace) -> int:
    from core.explore import feature_grid, feature_layers, features
    from core.images import save_png
    from core.render import Recipe

    G = _load(args)
    if args.list:
        layers = [{"name": n, "resolution": r, "channels": c} for n, r, c in feature_layers(G)]
        if args.json:
            emit_json({"layers": layers})
        else:
            for layer in layers:
                print(f"{layer['name']:10s} {layer['resolution']:5d} px {layer['channels']:5d} channels")
        return 0
    recipe = Recipe(model=args.model, seed=args.seed, truncation_psi=args.psi, truncation_cutoff=args.cutoff)
    _, feats = features(G, recipe, args.layer)
    arr = feature_grid(feats, mode=args.mode, channel=args.channel, cmap=args.cmap)
    from PIL import Image

    out = _require_out(args)
    save_png(Image.fromarray(arr), out, text={"stylescope-recipe": recipe.to_json(), "layer": args.layer})
    if args.json:
        emit_json(
            {"image": str(out), "layer": args.layer, "mode": args.mode, "channels": int(feats.shape[1])}
        )
    return 0
