"""``stylescope translate``: StarGAN v2 image-to-image translation (Choi et al., CVPR 2020).

Reference-guided: ``stylescope translate --checkpoint CKPT --source IMG --reference IMG --domain K --out FILE``.
Latent-guided:    ``stylescope translate --checkpoint CKPT --source IMG --seed S [--psi P] --domain K --out FILE``.
A thin shell over :mod:`core.translation`; the PNG embeds the settings as a ``stylescope-translate`` text chunk.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.cli.common import emit_json, resolve_device
from core.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate", help="StarGAN v2 translation of a source image (reference- or latent-guided)"
    )
    p.add_argument("--checkpoint", required=True, help="StarGAN v2 *_nets_ema.ckpt")
    p.add_argument("--source", required=True, help="source image")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--reference", help="reference image whose style is copied (reference-guided)")
    mode.add_argument("--seed", type=int, help="latent seed (latent-guided)")
    p.add_argument("--domain", type=int, required=True, help="target domain index")
    p.add_argument("--psi", type=float, default=1.0, help="latent-guided truncation towards the domain mean")
    p.add_argument("--num-avg", type=int, default=10_000, help="latents averaged for the domain mean (psi)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True, help="output .png")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(func=run_translate)


def run_translate(args: argparse.Namespace) -> int:
    from core.checkpoints.stargan_v2 import load_stargan_v2
    from core.images import save_png, to_pil
    from core.translation import load_translation_image, translate_latent, translate_reference

    if args.seed is not None and not 0 <= args.seed < 2**32:
        raise InputError(f"seed {args.seed} is outside 0..4294967295")
    bundle = load_stargan_v2(args.checkpoint, device=resolve_device(args.device))
    x_src = load_translation_image(args.source, bundle)
    spec = {"checkpoint": str(args.checkpoint), "source": str(args.source), "domain": args.domain}
    if args.reference is not None:
        x_ref = load_translation_image(args.reference, bundle)
        out_img = translate_reference(bundle, x_src, x_ref, args.domain)
        spec.update(mode="reference", reference=str(args.reference))
    else:
        out_img = translate_latent(
            bundle, x_src, args.domain, seed=args.seed, psi=args.psi, num_avg=args.num_avg
        )
        spec.update(mode="latent", seed=args.seed, psi=args.psi, num_avg=args.num_avg)
    out = Path(args.out)
    if not out.suffix:
        out = out.with_suffix(".png")
    save_png(to_pil(out_img.cpu())[0], out, text={"stylescope-translate": json.dumps(spec)})
    if args.json:
        emit_json({"image": str(out), **spec, "config": bundle.config.to_dict(), "notes": list(bundle.notes)})
    return 0
