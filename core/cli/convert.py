"""``stylescope convert IN OUT.safetensors``: any supported generator checkpoint -> StyleScope's native format.

Reads native, rosinality/pSp ``.pt`` and NVIDIA ``.pkl`` files through the safe readers of
:mod:`core.checkpoints` (nothing from the input file is executed) and writes one ``.safetensors`` file whose
metadata records where it came from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a rosinality .pt / NVIDIA .pkl / pSp .pt generator to native .safetensors",
        description="Load any supported generator checkpoint safely and write StyleScope's native format.",
    )
    p.add_argument("input", metavar="IN", help="checkpoint to read (.safetensors, .pt, .pkl)")
    p.add_argument("output", metavar="OUT", help="native file to write (must end in .safetensors)")
    p.add_argument("--json", action="store_true", help="print a JSON report instead of a one-line summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert ``args.input`` to ``args.output``; errors are raised as StyleScopeErrors (one line, exit 2)."""
    from core.checkpoints import describe_checkpoint, load_generator, save_generator
    from core.checkpoints.native import file_digest

    out = Path(args.output)
    if out.suffix.lower() != ".safetensors":
        raise InputError(f"{out}: the output must be a .safetensors file")
    if out.is_dir():
        raise InputError(f"{out}: is a directory")
    info = describe_checkpoint(args.input)
    G = load_generator(args.input)
    source = {"format": info["format"], "file": Path(args.input).name, "sha256_16": file_digest(args.input)}
    save_generator(G, out, metadata={"source": source, "notes": info["notes"]})
    report = {
        "input": str(args.input),
        "output": str(out),
        "format": info["format"],
        "resolution": info["resolution"],
        "num_ws": info["num_ws"],
        "w_dim": info["w_dim"],
        "c_dim": info["c_dim"],
        "has_w_avg": info["has_w_avg"],
        "notes": info["notes"],
    }
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        est = "" if info["has_w_avg"] else ", w_avg estimated"
        print(
            f"converted {info['format']} {info['resolution']}px generator ({info['num_ws']} ws, "
            f"w_dim {info['w_dim']}{est}) -> {out}"
        )
    return 0
