"""Atomic training-state checkpoints: ``torch.save`` of plain dicts, loaded with ``weights_only=True``.

Layout of a run directory::

    config.json                 the TrainConfig (JSON)
    ckpt-000012345.pt           full training state after 12,345 images (the number is cur_nimg)
    network-000012345.safetensors   G_ema in the native format (core.checkpoints.native), same step
    latest.json                 {"checkpoint": "ckpt-....pt", "network": "...", "cur_nimg": ..., "kimg": ...}

Kill safety: a checkpoint is written to ``<name>.tmp``, fsynced, renamed into place (``os.replace`` is atomic
on POSIX and Windows), the directory is fsynced, and only then is ``latest.json`` replaced the same way. A
process killed at any moment leaves either the previous ``latest.json`` (pointing at an intact file) or the
new one (pointing at a complete file). Loading falls back to the newest intact ``ckpt-*.pt`` if
``latest.json`` is missing or damaged. Old checkpoints beyond ``keep_last`` are removed after the pointer
moves on.

For tests, ``STYLESCOPE_TEST_SAVE_PAUSE=<seconds>[@<n>]`` makes the writer pause between finishing the
temporary file and renaming it (after touching ``<run_dir>/.saving``), on every save or only on the n-th save
of the process, so a test can SIGKILL it mid-save deterministically.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import torch

from core.errors import CheckpointError

FORMAT = "stylescope-training-state"
FORMAT_VERSION = 1
LATEST = "latest.json"
_CKPT_RE = re.compile(r"^ckpt-(\d+)\.pt$")
_saves_in_process = 0


def _test_pause(run_dir: Path, cur_nimg: int) -> None:
    global _saves_in_process
    _saves_in_process += 1
    spec = os.environ.get("STYLESCOPE_TEST_SAVE_PAUSE", "")
    if not spec:
        return
    seconds, _, nth = spec.partition("@")
    if nth and int(nth) != _saves_in_process:
        return
    (run_dir / ".saving").write_text(str(cur_nimg))
    time.sleep(float(seconds))


def checkpoint_name(cur_nimg: int) -> str:
    return f"ckpt-{cur_nimg:09d}.pt"


def network_name(cur_nimg: int) -> str:
    return f"network-{cur_nimg:09d}.safetensors"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a fsynced temporary file and ``os.replace``."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def save_training_state(
    run_dir: str | os.PathLike, state: dict, *, cur_nimg: int, keep_last: int, network_writer=None
) -> Path:
    """Write ``state`` as ``ckpt-<cur_nimg>.pt`` atomically, export G_ema, move ``latest.json``, prune.

    Args:
        run_dir: the run directory.
        state: plain dict of tensors / numbers / strings / lists / dicts (weights_only-loadable).
        cur_nimg: images shown so far (names the file).
        keep_last: number of checkpoints to keep.
        network_writer: optional ``callable(path)`` exporting G_ema next to the checkpoint.

    Returns:
        Path of the written checkpoint.
    """
    run_dir = Path(run_dir)
    path = run_dir / checkpoint_name(cur_nimg)
    tmp = path.with_name(path.name + ".tmp")
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    with open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    _test_pause(run_dir, cur_nimg)  # test hook: a window in which SIGKILL lands "mid-save"
    os.replace(tmp, path)
    _fsync_dir(run_dir)
    network = None
    if network_writer is not None:
        network = network_name(cur_nimg)
        network_writer(run_dir / network)
    pointer = {
        "checkpoint": path.name,
        "network": network,
        "cur_nimg": int(cur_nimg),
        "kimg": cur_nimg / 1000,
    }
    atomic_write_json(run_dir / LATEST, pointer)
    prune(run_dir, keep_last=keep_last, protect=path.name)
    return path


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(cur_nimg, path)`` of every finished checkpoint, oldest first."""
    out = []
    for p in Path(run_dir).glob("ckpt-*.pt"):
        m = _CKPT_RE.match(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def prune(run_dir: str | os.PathLike, *, keep_last: int, protect: str | None = None) -> None:
    """Remove all but the newest ``keep_last`` checkpoints (and their networks) and stale temporaries."""
    run_dir = Path(run_dir)
    ckpts = list_checkpoints(run_dir)
    for nimg, p in ckpts[: max(len(ckpts) - keep_last, 0)]:
        if p.name == protect:
            continue
        p.unlink(missing_ok=True)
        (run_dir / network_name(nimg)).unlink(missing_ok=True)


def clean_temporaries(run_dir: str | os.PathLike) -> list[str]:
    """Delete ``*.tmp`` left by a killed writer; returns their names."""
    removed = []
    for p in Path(run_dir).glob("*.tmp"):
        p.unlink(missing_ok=True)
        removed.append(p.name)
    for p in Path(run_dir).glob(".*.tmp"):
        p.unlink(missing_ok=True)
        removed.append(p.name)
    (Path(run_dir) / ".saving").unlink(missing_ok=True)
    return removed


def load_training_state(path: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> dict:
    """Load one checkpoint file with ``weights_only=True``.

    Raises:
        CheckpointError: unreadable, truncated, or not a StyleScope training state.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, pickle error, missing file ...
        raise CheckpointError(
            f"{path.name}: not a readable training checkpoint ({str(e).splitlines()[0][:200]})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path.name}: not a StyleScope training checkpoint")
    if int(state.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path.name}: written by a newer StyleScope (format {state['format_version']})"
        )
    return state


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The checkpoint ``latest.json`` points at, else the newest ``ckpt-*.pt``; None when there is none."""
    run_dir = Path(run_dir)
    try:
        pointer = json.loads((run_dir / LATEST).read_text())
        p = run_dir / pointer["checkpoint"]
        if p.is_file():
            return p
    except (OSError, ValueError, KeyError, TypeError):
        pass
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1][1] if ckpts else None


def load_latest(run_dir: str | os.PathLike, *, map_location: str | torch.device = "cpu") -> tuple[Path, dict]:
    """Load the newest intact checkpoint of a run (the pointer's, else the newest file that loads).

    Raises:
        CheckpointError: the run has no loadable checkpoint.
    """
    run_dir = Path(run_dir)
    candidates: list[Path] = []
    first = latest_checkpoint(run_dir)
    if first is not None:
        candidates.append(first)
    candidates += [p for _, p in reversed(list_checkpoints(run_dir)) if p != first]
    errors = []
    for p in candidates:
        try:
            return p, load_training_state(p, map_location=map_location)
        except CheckpointError as e:
            errors.append(str(e))
    detail = f" ({'; '.join(errors)})" if errors else ""
    raise CheckpointError(f"{run_dir}: no loadable training checkpoint{detail}")
