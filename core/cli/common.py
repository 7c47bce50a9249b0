"""Small helpers shared by CLI subcommands: seed ranges, devices, JSON output, progress bars."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch

from core.errors import InputError

MAX_SEEDS = 100_000


def parse_seeds(text: str) -> list[int]:
    """Parse ``"0-7,10,12"`` into ``[0, ..., 7, 10, 12]``. Raises InputError on bad text."""
    seeds: list[int] = []
    for part in str(text).replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                a, b = int(lo), int(hi)
                if b < a:
                    raise InputError(f"seed range {part!r} runs backwards")
                if b - a + 1 > MAX_SEEDS:
                    raise InputError(f"seed range {part!r} has more than {MAX_SEEDS} seeds")
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise InputError(f"cannot read seeds {text!r}: use numbers and ranges like 0-7,10") from None
    if not seeds:
        raise InputError("no seeds given")
    bad = [s for s in seeds if not 0 <= s < 2**32]
    if bad:
        raise InputError(f"seed {bad[0]} is outside 0..4294967295")
    if len(seeds) > MAX_SEEDS:
        raise InputError(f"more than {MAX_SEEDS} seeds")
    return seeds


def resolve_device(name: str | None) -> torch.device:
    """``auto`` -> cuda if available, else mps, else cpu; a clear error for unavailable devices."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was requested but no CUDA GPU is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r} (use cpu, cuda, cuda:N, mps or auto)") from None


def add_report_options(p: argparse.ArgumentParser) -> None:
    """The options every metric command ends with: ``--seed``, ``--device``, ``--out FILE``, ``--json``."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="also write the JSON report to this file")
    p.add_argument("--json", action="store_true", help="print only the JSON report")


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def print_report(report: dict, *, compact: bool, summary: str) -> None:
    """A command's JSON report: one line with ``--json``; else indented, then a one-line summary on stderr."""
    if compact:
        emit_json(report)
        return
    print(json.dumps(report, indent=2))
    print(summary, file=sys.stderr)


@contextlib.contextmanager
def progress_bar(
    desc: str, *, unit: str = "it", disable: bool = False, leave: bool = True
) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar on stderr driven by the core's ``progress(done, total)`` callbacks; closed on exit.

    Usage: ``with progress_bar("collect", unit="img") as progress: core_function(..., progress=progress)``.
    """
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit=unit, disable=disable, leave=leave, file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield progress
    finally:
        bar.close()
