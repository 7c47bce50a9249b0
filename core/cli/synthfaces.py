"""``stylescope dataset synthfaces --n N --res R [--seed S] DST [--json]``: a thin shell over
:func:`core.data.synthfaces.export`.

Mounted by ``core.cli`` under the ``dataset`` command via :func:`register`.
"""

from __future__ import annotations

import argparse

from core.errors import InputError

__all__ = ["register", "run_synthfaces"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synthfaces`` subcommand to ``subparsers`` (those of ``stylescope dataset``).

    The handler is stored as ``func`` in the parsed namespace (``core.cli.main`` calls ``args.func(args)``).

    Args:
        subparsers: result of ``parser.add_subparsers()`` on the ``dataset`` parser.
    """
    parser = subparsers.add_parser(
        "synthfaces",
        help="render the SynthFaces dataset (procedural labelled portraits) to PNGs + dataset.json",
        description=(
            "Render images 0..N-1 of the SynthFaces stream SEED at R x R into DST/images/*.png and write "
            "DST/dataset.json with every image's binary attributes (NVIDIA dataset_tool layout) and the "
            "ground-truth value of every factor. Prints a JSON report."
        ),
    )
    parser.add_argument("dst", metavar="DST", help="output folder (created; must not hold a dataset yet)")
    parser.add_argument("--n", type=int, required=True, metavar="N", help="number of images")
    parser.add_argument("--res", type=int, default=128, metavar="R", help="image side, 32..256 (default 128)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="stream seed (default 0)")
    parser.add_argument("--no-detail", action="store_true", help="leave out the unlabelled stochastic detail")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace DST/images and DST/dataset.json")
    parser.add_argument(
        "--json", action="store_true", help="print only the compact JSON report (no progress)"
    )
    parser.set_defaults(func=run_synthfaces)


def run_synthfaces(args: argparse.Namespace) -> int:
    """Export the dataset described by ``args``; print the report.

    Args:
        args: namespace with ``dst``, ``n``, ``res``, ``seed``, ``no_detail``, ``device``, ``overwrite``
            and ``json``.

    Returns:
        Exit status 0.

    Raises:
        InputError: bad numbers, DST is a file or already holds a dataset, or DST is not writable.
    """
    # Imported here so `stylescope --help` does not pay for torch.
    from core.cli.common import print_report, progress_bar, resolve_device
    from core.data.synthfaces import export

    try:
        with progress_bar("synthfaces", unit="img", disable=args.json) as progress:
            report = export(
                args.dst,
                n=args.n,
                resolution=args.res,
                seed=args.seed,
                detail=not args.no_detail,
                overwrite=args.overwrite,
                device=resolve_device(args.device),
                progress=progress,
            )
    except OSError as e:
        raise InputError(f"cannot write the dataset to {args.dst}: {e.strerror or e}") from None
    print_report(
        report, compact=args.json, summary=f"wrote {report['images']} SynthFaces images -> {report['output']}"
    )
    return 0
