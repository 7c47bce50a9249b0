"""JSON round trips for the frozen dataclass configs that are stored next to weights and in run folders.

Configs hold tuples (hashable, immutable); JSON holds lists. ``to_json_dict`` turns every tuple into a list,
``from_json_dict`` turns every list back into a tuple (recursively) and refuses unknown keys, so a file written
by a newer StyleScope fails loudly instead of silently dropping a setting.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def _to_json(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    return value


def to_json_dict(config: Any) -> dict:
    """The fields of a dataclass instance as plain JSON types (tuples become lists)."""
    return {f.name: _to_json(getattr(config, f.name)) for f in dataclasses.fields(config)}


def from_json_dict(cls: type[T], data: dict, *, what: str, error: type[Exception] = ValueError) -> T:
    """Build ``cls`` from ``to_json_dict`` output (lists become tuples; dict fields stay dicts).

    Raises:
        error: ``data`` is not a mapping or has keys that are not fields of ``cls``.
    """
    if not isinstance(data, dict):
        raise error(f"{what} config must be a JSON object")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise error(f"unknown {what} config fields: {unknown}")
    return cls(**{k: _from_json(v) for k, v in data.items()})
