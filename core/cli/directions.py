"""``stylescope directions``: fit, apply, evaluate and list latent directions (InterFaceGAN SVM, PCA, SeFa).

Subcommands: ``fit`` (one attribute from a classifier or a ``seed,label`` CSV), ``fit-all`` (every attribute
of the classifier + PCA + SeFa, evaluated, in one file), ``apply`` (render seeds with edits), ``pca``, ``sefa``,
``evaluate`` and ``list``. Each is a thin shell over ``core.directions``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from core.cli.common import emit_json, parse_seeds, progress_bar, resolve_device
from core.errors import InputError

DEFAULT_CLASSIFIER = (
    Path(__file__).resolve().parents[2] / "assets" / "models" / "synthfaces-classifier.safetensors"
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("directions", help="latent directions: SVM (InterFaceGAN), PCA (GANSpace), SeFa")
    dsub = p.add_subparsers(dest="directions_command", metavar="SUBCOMMAND")
    dsub.required = True

    def common(q: argparse.ArgumentParser, *, model: bool = True) -> None:
        if model:
            q.add_argument(
                "--model", required=True, help="generator: native .safetensors, rosinality .pt, NVIDIA .pkl"
            )
        q.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
        q.add_argument("--json", action="store_true", help="print a JSON report on stdout")

    f = dsub.add_parser(
        "fit", help="fit one attribute's SVM direction (classifier labels or a seed,label CSV)"
    )
    common(f)
    f.add_argument(
        "--attribute",
        help="classifier attribute (e.g. smiling) or continuous factor (e.g. roll: the direction along its range); "
        "the direction's name by default",
    )
    f.add_argument("--labels", help="CSV of seed,label rows instead of a classifier (label: yes/no, 1/0)")
    f.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER), help="attribute classifier .safetensors")
    f.add_argument("--name", help="name of the direction (default: the attribute, or 'label')")
    f.add_argument("--samples", type=int, default=10_000, help="latents to sample and score")
    f.add_argument("--space", choices=("z", "w", "w+"), default="w")
    f.add_argument("--ratio", type=float, default=0.25, help="top/bottom fraction kept (InterFaceGAN)")
    f.add_argument("--psi", type=float, default=1.0, help="truncation psi while sampling")
    f.add_argument("--seed", type=int, default=0, help="first seed of the samples")
    f.add_argument(
        "--rows", default=None, help="ws rows the direction edits: all, coarse, middle, fine, 0-3, ..."
    )
    f.add_argument("--batch", type=int, default=64, help="images rendered per batch")
    f.add_argument("--out", required=True, help="direction set .safetensors (added to it if it exists)")
    f.set_defaults(func=run_fit)

    a = dsub.add_parser(
        "fit-all", help="fit + evaluate every classifier attribute, add PCA/SeFa, write one set"
    )
    common(a)
    a.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER))
    a.add_argument("--samples", type=int, default=10_000)
    a.add_argument(
        "--eval-samples", type=int, default=1000, help="fresh samples for edit success / side effects"
    )
    a.add_argument("--ratio", type=float, default=0.25)
    a.add_argument("--psi", type=float, default=1.0)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--distance", type=float, default=2.0, help="edit past the boundary, in std units")
    a.add_argument("--components", type=int, default=10, help="PCA and SeFa components added (0 = none)")
    a.add_argument("--batch", type=int, default=64)
    a.add_argument(
        "--out", required=True, help="folder (writes <model>.safetensors + .report.json) or a file"
    )
    a.set_defaults(func=run_fit_all)

    ap = dsub.add_parser("apply", help="render seeds with direction edits (PNG + embedded recipe)")
    common(ap)
    ap.add_argument("--directions", required=True, help="direction set .safetensors")
    ap.add_argument("--seeds", default="0-3")
    ap.add_argument("--edit", action="append", required=True, help="NAME=STRENGTH (repeatable)")
    ap.add_argument("--rows", default=None, help="restrict every edit to these ws rows (coarse, 0-3, ...)")
    ap.add_argument(
        "--condition", default="", help="comma-separated directions to keep fixed (conditional edit)"
    )
    ap.add_argument("--psi", type=float, default=1.0)
    ap.add_argument("--out", required=True, help="output folder")
    ap.set_defaults(func=run_apply)

    gd = dsub.add_parser(
        "guided",
        help="per-face classifier-guided edit: flip one attribute, keep the others (PNG + recipe with ws)",
    )
    common(gd)
    gd.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER))
    gd.add_argument("--attribute", required=True, help="binary classifier attribute, e.g. smiling")
    gd.add_argument(
        "--target",
        choices=("flip", "yes", "no"),
        default="flip",
        help="label to reach (default: the opposite)",
    )
    gd.add_argument(
        "--keep", default="all", help="attributes to keep: 'all' (every other), 'none', or a comma list"
    )
    gd.add_argument(
        "--rows", default=None, help="ws rows the edit may change (coarse, 0-3, ...; default all)"
    )
    gd.add_argument("--seeds", default="0-3")
    gd.add_argument("--psi", type=float, default=1.0)
    gd.add_argument("--steps", type=int, default=40, help="optimiser steps")
    gd.add_argument(
        "--hold", type=float, default=100.0, help="weight of the pixel term that holds the rest of the image"
    )
    gd.add_argument("--out", required=True, help="output folder")
    gd.set_defaults(func=run_guided)

    for method in ("pca", "sefa"):
        q = dsub.add_parser(
            method, help=f"unsupervised {'GANSpace PCA' if method == 'pca' else 'SeFa'} directions"
        )
        common(q)
        q.add_argument("--components", type=int, default=10)
        q.add_argument("--rows", default=None, help="ws rows (all, coarse, middle, fine, 0-3, ...)")
        if method == "pca":
            q.add_argument("--samples", type=int, default=10_000)
            q.add_argument("--seed", type=int, default=0)
        q.add_argument("--out", required=True, help="direction set .safetensors (added to it if it exists)")
        q.set_defaults(func=run_unsupervised, method=method)

    e = dsub.add_parser("evaluate", help="edit success and side effects of saved SVM directions")
    common(e)
    e.add_argument("--classifier", default=str(DEFAULT_CLASSIFIER))
    e.add_argument("--directions", required=True)
    e.add_argument("--samples", type=int, default=1000)
    e.add_argument("--seed", type=int, default=1_000_000)
    e.add_argument("--distance", type=float, default=2.0)
    e.add_argument(
        "--conditional", action="store_true", help="condition each direction on the unrelated ones"
    )
    e.add_argument("--batch", type=int, default=64)
    e.set_defaults(func=run_evaluate)

    ls = dsub.add_parser("list", help="show the directions in a set")
    ls.add_argument("directions")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)


# ---------------------------------------------------------------------------- helpers
def _load_model(args):
    import core
    from core.checkpoints.native import file_digest

    device = resolve_device(args.device)
    return core.load_generator(args.model, device=device), file_digest(args.model), device


def _open_set(path: str, G, digest: str):
    from core.directions import DirectionSet, load_directions

    if Path(path).exists():
        return load_directions(path, model_hash=digest)
    return DirectionSet(model_hash=digest, num_ws=G.num_ws, layer_groups=G.layer_groups)


def _print(args, obj: dict, text: str) -> None:
    if args.json:
        emit_json(obj)
    else:
        print(text)


# ---------------------------------------------------------------------------- fit
def run_fit(args: argparse.Namespace) -> int:
    from core.directions import collect, fit_attribute_direction, load_scorer, parse_rows, save_directions
    from core.directions.collect import read_label_csv, samples_from_labels, w_covariance

    if not args.labels and not args.attribute:
        raise InputError("give --attribute (classifier labels) or --labels FILE.csv")
    G, digest, device = _load_model(args)
    t0 = time.perf_counter()
    if args.labels:
        seeds, labels = read_label_csv(args.labels)
        name = args.name or args.attribute or "label"
        samples = samples_from_labels(G, seeds, labels, name=name, space=args.space, truncation_psi=args.psi)
        column, method, ratio = name, "user", 0.5
    else:
        scorer = load_scorer(args.classifier, device=device).for_column(args.attribute)
        if args.attribute not in scorer.attributes:
            raise InputError(
                f"unknown attribute {args.attribute!r}; the classifier knows {', '.join(scorer.attributes)} "
                f"and the continuous factors {', '.join(scorer.available_factors) or '(none)'}"
            )
        with progress_bar("collect", unit="img", leave=False) as update:
            samples = collect(G, scorer, args.samples, seed=args.seed, space=args.space, truncation_psi=args.psi,
                              batch_size=args.batch, progress=update)  # fmt: skip
        column, method, ratio, name = args.attribute, "svm", args.ratio, args.name or args.attribute
    threshold = 0.5 if args.labels else scorer.threshold_of(column)
    d = fit_attribute_direction(samples, column, space=args.space, name=name, ratio=ratio, method=method,
                                num_ws=G.num_ws, covariance=w_covariance(G, device=device),
                                threshold=threshold)  # fmt: skip
    if args.rows:
        d = d.with_rows(parse_rows(args.rows, G.num_ws, G.layer_groups))
    if args.labels:
        d.meta["labels_file"] = str(args.labels)
    else:
        d.meta["classifier"] = str(args.classifier)
    dirs = _open_set(args.out, G, digest)
    dirs.add(d)
    save_directions(dirs, args.out)
    report = {
        "attribute": d.attribute if not args.labels else None,
        "name": d.name,
        "val_accuracy": d.accuracy,
        "train_accuracy": d.meta.get("train_accuracy"),
        "samples": len(samples),
        "num_pos": d.meta.get("num_pos"),
        "num_neg": d.meta.get("num_neg"),
        "space": d.space,
        "rows": None if d.rows is None else list(d.rows),
        "method": d.method,
        "offset": d.offset,
        "scale": d.scale,
        "model_hash": digest,
        "out": str(args.out),
        "time_s": round(time.perf_counter() - t0, 3),
    }
    _print(
        args,
        report,
        f"{d.name}: validation accuracy {d.accuracy:.3f} on {len(samples)} samples -> {args.out}",
    )
    return 0


def run_fit_all(args: argparse.Namespace) -> int:
    from core.directions import load_scorer, save_directions
    from core.directions.evaluate import fit_all
    from core.directions.pca import pca_directions
    from core.directions.sefa import sefa_directions

    G, digest, device = _load_model(args)
    scorer = load_scorer(args.classifier, device=device)
    out = Path(args.out)
    path = out if out.suffix == ".safetensors" else out / f"{Path(args.model).stem}.safetensors"
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:  # one bar per stage (setdefault would open, and leak, a bar on every call)
            bars[stage] = tqdm(desc=stage, total=total, leave=False, file=sys.stderr)
        bar = bars[stage]
        bar.total, bar.n = total, done
        bar.refresh()

    t0 = time.perf_counter()
    try:
        dirs, report = fit_all(
            G, scorer, samples=args.samples, eval_samples=args.eval_samples, seed=args.seed, ratio=args.ratio,
            truncation_psi=args.psi, distance=args.distance, batch_size=args.batch, model_hash=digest,
            progress=progress,
        )  # fmt: skip
    finally:
        for bar in bars.values():
            bar.close()
    if args.components:
        for d in pca_directions(G, num_components=args.components, samples=args.samples, seed=args.seed):
            dirs.add(d)
        for d in sefa_directions(G, num_components=args.components):
            dirs.add(d)
    dirs.meta["classifier"] = str(args.classifier)
    save_directions(dirs, path)
    report.update(
        model=str(args.model), model_hash=digest, out=str(path), time_s=round(time.perf_counter() - t0, 2)
    )
    from core.checkpoints.native import atomic_write

    report_path = path.with_suffix(".report.json")
    atomic_write(
        report_path, lambda tmp: Path(tmp).write_text(json.dumps(report, indent=1), encoding="utf-8")
    )
    report["report"] = str(report_path)
    if args.json:
        emit_json(report)
    else:
        for name, r in report["attributes"].items():
            if "error" in r:
                print(f"{name:18s} not fitted: {r['error']}")
                continue
            print(
                f"{name:18s} val_acc {r['val_accuracy']:.3f}  edit {r['edit_success']:.3f}"
                f"  cond.edit {r.get('edit_success_conditional', float('nan')):.3f}"
                f"  cond.side {r.get('side_effect_conditional_max', float('nan')):.3f}"
            )
        s = report["summary"]
        print(f"separability Z {s['separability_z']:.3f}  W {s['separability_w']:.3f}  -> {path}")
    return 0


# ---------------------------------------------------------------------------- guided
def run_guided(args: argparse.Namespace) -> int:
    import torch

    from core.directions import load_scorer, parse_rows, w_covariance
    from core.directions.guided import guided_edit
    from core.images import save_png, to_pil
    from core.render import Recipe, recipe_png_text, recipe_ws, render_tensor

    if not 1 <= args.steps <= 1000:
        raise InputError(f"--steps must be in 1..1000, got {args.steps}")
    if not 0 <= args.hold <= 1e6:
        raise InputError(f"--hold must be in 0..1e6, got {args.hold}")
    G, digest, device = _load_model(args)
    scorer = load_scorer(args.classifier, device=device)
    seeds = parse_seeds(args.seeds)
    if len(seeds) > 256:
        raise InputError(f"--seeds: at most 256 faces per call, got {len(seeds)}")
    if args.keep == "all":
        keep = None
    elif args.keep == "none":
        keep = []
    else:
        keep = [k.strip() for k in args.keep.split(",") if k.strip()]
    rows = parse_rows(args.rows, G.num_ws, G.layer_groups) if args.rows else None
    base = [Recipe(model=str(args.model), model_hash=digest, seed=s, truncation_psi=args.psi) for s in seeds]
    with torch.no_grad():
        ws = torch.cat([recipe_ws(G, r) for r in base])
    target = None if args.target == "flip" else args.target == "yes"
    with progress_bar("guided", unit="step", leave=False) as update:
        result = guided_edit(G, scorer, ws, args.attribute, covariance=w_covariance(G, device=device),
                             target=target, keep=keep, rows=rows, steps=args.steps, pixel_weight=args.hold,
                             progress=update)  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    i = list(scorer.attributes).index(args.attribute)
    images = []
    for k, seed in enumerate(seeds):
        recipe = Recipe(model=str(args.model), model_hash=digest, seed=seed, ws=result.ws[k].tolist())
        path = out / f"seed{seed:08d}-{args.attribute}.png"
        save_png(to_pil(render_tensor(G, recipe))[0], path, text=recipe_png_text(recipe))
        images.append({"seed": seed, "path": str(path), "before": float(result.before[k, i]),
                       "after": float(result.scores[k, i]), "reached": bool(result.reached[k])})  # fmt: skip
    others = [j for j, a in enumerate(scorer.attributes) if a != args.attribute]
    change = (result.scores - result.before).abs()[:, others].mean(0)
    report = {
        "attribute": args.attribute,
        "target": args.target,
        "reached": float(result.reached.float().mean()),
        "side_effect_mean": float(change.mean()),
        "side_effect_max": float(change.max()) if len(others) else 0.0,
        "steps": result.steps,
        "images": images,
    }
    _print(args, report, f"{args.attribute}: reached {report['reached']:.2f} of {len(seeds)}; wrote {out}")
    return 0


# ---------------------------------------------------------------------------- apply / pca / sefa
def run_apply(args: argparse.Namespace) -> int:
    from core.directions import load_directions, variant_name
    from core.images import save_png, to_pil
    from core.render import Recipe, recipe_png_text, render_tensor

    G, digest, _ = _load_model(args)
    dirs = load_directions(args.directions, model_hash=digest)
    conds = [c for c in args.condition.split(",") if c.strip()]
    edits: dict[str, float] = {}
    for item in args.edit:
        name, sep, value = item.partition("=")
        try:
            strength = float(value)
        except ValueError:
            raise InputError(f"--edit {item!r}: use NAME=STRENGTH, e.g. smiling=2.5") from None
        if not sep:
            raise InputError(f"--edit {item!r}: use NAME=STRENGTH, e.g. smiling=2.5")
        dirs.variant(
            name, rows=args.rows, conditions=[c for c in conds if c != name]
        )  # validates, clear errors
        edits[variant_name(name, args.rows, [c for c in conds if c != name])] = strength
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written, recipes = [], []
    for seed in tqdm(parse_seeds(args.seeds), desc="apply", unit="img", leave=False):
        recipe = Recipe(model=str(args.model), model_hash=digest, seed=seed, truncation_psi=args.psi,
                        directions=dict(edits))  # fmt: skip
        img = to_pil(render_tensor(G, recipe, directions=dirs))[0]
        path = out / f"seed{seed:08d}-edit.png"
        save_png(img, path, text=recipe_png_text(recipe))
        written.append(str(path))
        recipes.append(recipe.to_dict())
    _print(
        args,
        {"images": written, "directions": edits, "recipes": recipes},
        f"wrote {len(written)} images to {out}",
    )
    return 0


def run_unsupervised(args: argparse.Namespace) -> int:
    from core.directions import parse_rows, save_directions
    from core.directions.pca import pca_directions
    from core.directions.sefa import sefa_directions

    G, digest, _ = _load_model(args)
    rows = parse_rows(args.rows, G.num_ws, G.layer_groups) if args.rows else None
    if args.method == "pca":
        found = pca_directions(
            G, num_components=args.components, samples=args.samples, seed=args.seed, rows=rows
        )
    else:
        found = sefa_directions(G, num_components=args.components, rows=rows)
    dirs = _open_set(args.out, G, digest)
    for d in found:
        dirs.add(d)
    save_directions(dirs, args.out)
    report = {"method": args.method, "out": str(args.out), "model_hash": digest,
              "directions": [{"name": d.name, "scale": d.scale, **d.meta} for d in found]}  # fmt: skip
    _print(args, report, f"wrote {len(found)} {args.method} directions to {args.out}")
    return 0


# ---------------------------------------------------------------------------- evaluate / list
def run_evaluate(args: argparse.Namespace) -> int:
    from core.directions import collect, load_directions, load_scorer
    from core.directions.evaluate import evaluate_edit, related_attributes

    G, digest, device = _load_model(args)
    dirs = load_directions(args.directions, model_hash=digest)
    scorer = load_scorer(args.classifier, device=device)
    svm = [n for n in dirs.base_names() if dirs[n].attribute in scorer.attributes and dirs[n].space == "w"]
    if not svm:
        raise InputError(f"{args.directions}: no W-space direction matches a classifier attribute")
    with progress_bar("collect", unit="img", leave=False) as update:
        ev = collect(G, scorer, args.samples, seed=args.seed, batch_size=args.batch, progress=update)
    related = related_attributes(ev.scores, scorer.attributes)
    ws = ev.ws(G.num_ws)
    out = {}
    for name in tqdm(svm, desc="evaluate", leave=False):
        d = dirs[name]
        rel = related[d.attribute]
        move = None
        if args.conditional:
            move = d.conditioned([dirs[c] for c in svm if c != name and dirs[c].attribute not in rel])
        r = evaluate_edit(G, scorer, ws, ev.scores, d, move=move, exclude=rel, distance=args.distance,
                          batch_size=args.batch)  # fmt: skip
        out[name] = {"edit_success": r.success, "side_effect_max": r.max_side_effect,
                     "side_effect_mean": r.mean_side_effect, "related": rel}  # fmt: skip
    report = {"samples": args.samples, "conditional": args.conditional, "directions": out}
    text = "\n".join(
        f"{n:18s} edit {r['edit_success']:.3f}  side {r['side_effect_max']:.3f}" for n, r in out.items()
    )
    _print(args, report, text)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from core.directions import format_rows, load_directions

    dirs = load_directions(args.directions)
    items = [dirs[n].metadata() for n in dirs.base_names()]
    report = {"model_hash": dirs.model_hash, "num_ws": dirs.num_ws, "directions": items}
    text = "\n".join(
        f"{d['name']:18s} {d['method']:5s} {d['space']:3s} rows {format_rows(d['rows'])}"
        + (f"  val_acc {d['accuracy']:.3f}" if d["accuracy"] is not None else "")
        for d in items
    )
    _print(args, report, text or "(empty)")
    return 0
