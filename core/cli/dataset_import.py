"""``stylescope dataset import SRC DST [--res N] [--json]``: a thin shell over core.data.datasets.

Mounted by ``core.cli`` under the ``dataset`` command via :func:`register`.
"""

from __future__ import annotations

import argparse

from core.errors import InputError

__all__ = ["register", "run_import"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import`` subcommand to ``subparsers`` (those of ``stylescope dataset``).

    The handler is stored as ``func`` in the parsed namespace (``core.cli.main`` calls ``args.func(args)``).

    Args:
        subparsers: result of ``parser.add_subparsers()`` on the ``dataset`` parser.
    """
    parser = subparsers.add_parser(
        "import",
        help="import a folder, .zip or .tar of images as a square PNG training dataset",
        description=(
            "Import images from SRC (a folder, .zip, .tar, .tar.gz or .tgz) into DST/images/*.png, "
            "centre-cropped and resized to N x N, plus DST/dataset.json. Bad, hostile or unsupported "
            "entries are skipped with a reason; nothing is written outside DST. Prints a JSON report: "
            '{"imported": n, "skipped": [{"name", "reason"}], ...}.'
        ),
    )
    parser.add_argument("src", metavar="SRC", help="folder, .zip or .tar(.gz) of images")
    parser.add_argument("dst", metavar="DST", help="output folder (created; must not hold a dataset yet)")
    parser.add_argument("--res", type=int, default=128, metavar="N", help="output side, power of two")
    parser.add_argument("--overwrite", action="store_true", help="replace DST/images and DST/dataset.json")
    parser.add_argument(
        "--json", action="store_true", help="print only the compact JSON report (no summary, no progress)"
    )
    parser.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    """Run the import described by ``args``; print the report.

    Args:
        args: namespace with ``src``, ``dst``, ``res``, ``overwrite`` and ``json``.

    Returns:
        Exit status 0 (also when entries were skipped).

    Raises:
        InputError: fatal problems (SRC missing or unreadable, DST is a file or holds a dataset, bad
            ``--res``, DST not writable); ``core.cli.main`` prints them as one line and exits nonzero.
    """
    # Imported here so `stylescope --help` does not pay for torch.
    from core.cli.common import print_report, progress_bar
    from core.data.datasets import import_dataset

    try:
        with progress_bar("import", unit="img", disable=args.json) as progress:
            report = import_dataset(
                args.src, args.dst, resolution=args.res, overwrite=args.overwrite, progress=progress
            )
    except OSError as e:
        # Disk full, permissions...: user-fixable, so it becomes a one-line InputError like the rest.
        raise InputError(f"cannot write the dataset to {args.dst}: {e.strerror or e}") from None
    summary = f"imported {report['imported']} images, skipped {len(report['skipped'])} -> {report['output']}"
    print_report(report, compact=args.json, summary=summary)
    return 0
