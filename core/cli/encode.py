"""``stylescope encode``: a pSp encoder inverts one image to W+ in a single forward pass.

Writes ``<stem>_reconstruction.png`` (the decoder's image of the codes) and ``ws.npz`` (``ws [1, n, w]``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.cli.common import emit_json, resolve_device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "encode", help="invert an image to W+ with a pSp encoder checkpoint (one forward pass)"
    )
    p.add_argument("--checkpoint", required=True, help="pSp training checkpoint (.pt)")
    p.add_argument("--image", required=True, help="input image (a cropped, aligned face for FFHQ encoders)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-latent-avg", action="store_true", help="do not add latent_avg to the codes")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from core.checkpoints.psp import load_psp
    from core.images import load_image, save_png, to_pil
    from core.inversion.encode import encode_image

    device = resolve_device(args.device)
    encoder, decoder, latent_avg, opts = load_psp(args.checkpoint, device=device)
    image = load_image(args.image)
    start = not args.no_latent_avg and bool(opts.get("start_from_latent_avg", True))
    img, ws = encode_image(encoder, decoder, latent_avg, image, start_from_latent_avg=start)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = out / f"{Path(args.image).stem}_reconstruction.png"
    meta = {"checkpoint": str(args.checkpoint), "image": str(args.image), "start_from_latent_avg": start}
    save_png(to_pil(img.clamp(-1, 1))[0], rec_path, text={"stylescope_encode": json.dumps(meta)})
    ws_path = out / "ws.npz"
    np.savez(ws_path, ws=ws.numpy().astype(np.float32))
    report = {
        "reconstruction": str(rec_path),
        "ws": str(ws_path),
        "ws_shape": list(ws.shape),
        "encoder": encoder.cfg.to_dict(),
        **meta,
    }
    if args.json:
        emit_json(report)
    else:
        print(f"wrote {rec_path} and {ws_path} (ws {list(ws.shape)})")
    return 0
