"""Saving and loading direction sets: one ``.safetensors`` file per set, vectors as tensors, JSON metadata.

Metadata keys: ``format`` ("stylescope-directions"), ``format_version``, ``model_hash`` (content hash of the
generator the directions belong to, ``core.checkpoints.native.file_digest``), ``num_ws``, ``layer_groups``,
``directions`` (a JSON list: name, space, rows, method, offset, accuracy, scale, attribute, conditions, meta)
and ``meta`` (facts about the set). Written atomically; loading executes nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.directions.edit import Direction, DirectionSet
from core.errors import CheckpointError, InputError

FORMAT = "stylescope-directions"
FORMAT_VERSION = "1"
# A direction whose edit vector differs from its boundary's normal stores the normal under this prefix.
NORMAL_PREFIX = "normal:"


def save_directions(directions: DirectionSet, path: str | os.PathLike) -> None:
    """Write a ``DirectionSet`` (base directions only) to one safetensors file, atomically."""
    from core.checkpoints.native import atomic_write

    items = [directions[n] for n in directions.base_names()]
    tensors = {d.name: d.vector.detach().to("cpu", torch.float32).contiguous() for d in items}
    tensors.update(
        {
            NORMAL_PREFIX + d.name: d.normal.to("cpu", torch.float32).contiguous()
            for d in items
            if d.normal is not None
        }
    )
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_hash": directions.model_hash or "",
        "num_ws": json.dumps(directions.num_ws),
        "layer_groups": json.dumps(directions.layer_groups),
        "directions": json.dumps([d.metadata() for d in items]),
        "meta": json.dumps(directions.meta),
    }
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_directions(path: str | os.PathLike, *, model_hash: str | None = None) -> DirectionSet:
    """Read a direction set written by ``save_directions``.

    Args:
        path: the ``.safetensors`` file.
        model_hash: when given, the file must belong to this model.

    Raises:
        CheckpointError: unreadable file, not a direction set, inconsistent metadata, model hash mismatch.
    """
    try:
        tensors = load_file(str(path), device="cpu")
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"{path}: not a readable safetensors file ({first})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a StyleScope direction set (format {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: direction format version {meta.get('format_version')!r} is not supported"
        )
    try:
        entries: list[dict[str, Any]] = json.loads(meta["directions"])
        num_ws = json.loads(meta.get("num_ws", "null"))
        groups = json.loads(meta.get("layer_groups", "{}"))
        set_meta = json.loads(meta.get("meta", "{}"))
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: damaged direction metadata ({e})") from None
    stored_hash = meta.get("model_hash") or None
    if model_hash is not None and stored_hash is not None and stored_hash != model_hash:
        raise CheckpointError(
            f"{path}: directions were fitted on model {stored_hash}, this model is {model_hash}"
        )
    out = DirectionSet(model_hash=stored_hash, num_ws=num_ws, layer_groups=groups, meta=set_meta)
    for e in entries:
        name = e.get("name")
        if name not in tensors:
            raise CheckpointError(f"{path}: direction {name!r} has no tensor")
        try:
            out.add(
                Direction(
                    name=name,
                    vector=tensors[name],
                    space=e["space"],
                    rows=None if e.get("rows") is None else tuple(e["rows"]),
                    method=e.get("method", "custom"),
                    offset=float(e.get("offset", 0.0)),
                    accuracy=e.get("accuracy"),
                    scale=float(e.get("scale", 1.0)),
                    attribute=e.get("attribute"),
                    conditions=tuple(e.get("conditions", ())),
                    meta=dict(e.get("meta", {})),
                    normal=tensors.get(NORMAL_PREFIX + name),
                )
            )
        except (InputError, KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{path}: direction {name!r} is invalid ({err})") from None
    return out


def export_json(directions: DirectionSet, path: str | os.PathLike | None = None) -> str:
    """A readable JSON copy of a set (vectors as lists), e.g. for other tools; writes it when ``path`` given."""
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_hash": directions.model_hash,
        "num_ws": directions.num_ws,
        "layer_groups": directions.layer_groups,
        "meta": directions.meta,
        "directions": [
            {
                **directions[n].metadata(),
                "vector": directions[n].vector.tolist(),
                "normal": None if directions[n].normal is None else directions[n].normal.tolist(),
            }
            for n in directions.base_names()
        ],
    }
    text = json.dumps(doc)
    if path is not None:
        from core.checkpoints.native import atomic_write

        atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return text
