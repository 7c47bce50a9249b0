"""The ``stylescope`` command line: one subcommand per capability, each a thin shell over a core function.

Every area registers its subcommands from its own module (``core/cli/<area>.py`` exposing
``register(subparsers)``); this file only assembles them, runs the chosen handler and turns user errors into a
one-line message with exit status 2 (1 for unexpected failures).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from core.errors import StyleScopeError

# (subcommand group, module): modules whose register() adds top-level subcommands.
TOP_LEVEL = (
    "core.cli.generate",
    "core.cli.explore",
    "core.cli.convert",
    "core.cli.train",
    "core.cli.directions",
    "core.cli.evaluate",
    "core.cli.ppl",
    "core.cli.classifier",
    "core.cli.project",
    "core.cli.encode",
    "core.cli.translate",
)
# Modules whose register() adds subcommands of `stylescope dataset`.
DATASET = ("core.cli.synthfaces", "core.cli.dataset_import")


def _modules(names: Sequence[str]):
    for name in names:
        try:
            yield importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # a real missing dependency inside the module: surface it
                raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylescope", description="Explore, train and evaluate style-based GANs (StyleGAN, StyleGAN2)."
    )
    parser.add_argument("--version", action="version", version="stylescope 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _modules(TOP_LEVEL):
        mod.register(sub)
    dataset = sub.add_parser("dataset", help="make datasets: SynthFaces export, import of your own images")
    dsub = dataset.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND")
    dsub.required = True
    for mod in _modules(DATASET):
        mod.register(dsub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except StyleScopeError as e:
        print(f"stylescope {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stylescope {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
