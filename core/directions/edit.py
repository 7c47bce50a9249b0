"""Latent directions and how they edit W+ latents (InterFaceGAN, Shen et al. CVPR 2020, Sec. 2.2 and 2.3).

A direction is a vector ``v`` in a latent space. Editing moves a latent along it: ``w' = w + alpha * v``
(InterFaceGAN Eq. 4 applied in W), on every ws row or only on chosen rows (a layer group or a row range, as
GANSpace applies its components to a layer range).

An SVM direction also carries its boundary: a unit normal ``n`` and an offset (signed distance ``n . w +
offset``). In Z, where InterFaceGAN works, the latent distribution is isotropic and the edit is the normal
itself. W is far from isotropic (a trained mapping network spreads its variance over a few directions: the
eigenvalues of its covariance span four orders of magnitude), so the normal there points mostly into directions
the samples hardly vary along and the generator hardly responds to. SVM directions in W therefore edit along
``v = S n / (n^T S n)`` (S the covariance of W): the step that changes the signed distance fastest per unit of
Mahalanobis length, scaled so that ``alpha`` is the change of the signed distance, exactly as with ``v = n``.

Conditional manipulation (InterFaceGAN Sec. 2.3) removes from ``v`` its components along other attributes'
normals so that moving along the result leaves their signed distances unchanged: ``v' = v - Q Q^T v`` with
``Q`` an orthonormal basis of the conditions (Gram-Schmidt, done here with a QR factorisation), rescaled so
that its own signed distance still changes by ``alpha``.

Named variants. A recipe stores only ``{name: strength}``, so a row range and conditions are encoded in the
name and resolved by ``DirectionSet``: ``"smiling@middle"`` (rows of a layer group), ``"smiling@4-7"``,
``"smiling~eyeglasses,beard"`` (conditioned on two other normals) and ``"smiling@0-3~eyeglasses"``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from core.errors import InputError

SPACES = ("z", "w", "w+")
METHODS = ("svm", "pca", "sefa", "user", "custom")
GROUP_NAMES = ("coarse", "middle", "fine")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def parse_rows(
    spec: str | Sequence[int] | None, num_ws: int, groups: Mapping[str, Sequence[int]] | None = None
) -> tuple[int, ...] | None:
    """Turn a row selection into sorted ws row indices (None = all rows).

    Args:
        spec: None/"all"/"" (all rows), a layer group name ("coarse", "middle", "fine", or several joined by
            "+"), a range/list text ("0-3", "2,5,7", "4-"), or a sequence of ints.
        num_ws: number of ws rows of the model.
        groups: the model's ``G.layer_groups``; needed for group names.

    Raises:
        InputError: unknown group, rows outside ``0..num_ws-1``, unreadable text.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        text = spec.replace(" ", "").lower()
        if text in ("", "all", "*"):
            return None
        rows: list[int] = []
        for part in text.replace("+", ",").split(","):
            if not part:
                continue
            if part in GROUP_NAMES:
                if groups is None:
                    raise InputError(f"rows {spec!r}: layer groups need the model's layer_groups")
                rows.extend(int(r) for r in groups[part])
                continue
            try:
                if "-" in part:
                    lo, hi = part.split("-", 1)
                    a = int(lo) if lo else 0
                    b = int(hi) if hi else num_ws - 1
                    if b < a:
                        raise InputError(f"rows {spec!r}: range {part!r} runs backwards")
                    rows.extend(range(a, b + 1))
                else:
                    rows.append(int(part))
            except ValueError:
                raise InputError(
                    f"rows {spec!r}: use all, coarse/middle/fine, or row numbers and ranges like 0-3,6"
                ) from None
    else:
        rows = [int(r) for r in spec]
    out = tuple(sorted(set(rows)))
    bad = [r for r in out if not 0 <= r < num_ws]
    if bad:
        raise InputError(f"rows: this model has ws rows 0..{num_ws - 1}, got {bad[0]}")
    if not out:
        raise InputError(f"rows {spec!r}: selects no rows")
    return None if len(out) == num_ws else out


def format_rows(rows: Sequence[int] | None) -> str:
    """Compact text for a row selection: ``None -> "all"``, ``(0,1,2,5) -> "0-2,5"``."""
    if rows is None:
        return "all"
    rows = sorted(rows)
    parts, start = [], rows[0]
    for a, b in zip(rows, [*rows[1:], None], strict=True):
        if b != a + 1:
            parts.append(f"{start}-{a}" if a != start else str(a))
            start = b
    return ",".join(parts)


def orthogonal_complement(n: Tensor, conditions: Sequence[Tensor] | Tensor, *, eps: float = 1e-6) -> Tensor:
    """Project ``n`` off the span of ``conditions`` and renormalise (InterFaceGAN conditional manipulation).

    Args:
        n: ``[D]`` direction.
        conditions: ``[K, D]`` (or a list of ``[D]``) normals to keep fixed; need not be orthogonal.
        eps: relative norm below which the projection is considered empty.

    Returns:
        ``[D]`` unit vector orthogonal to every condition.

    Raises:
        InputError: ``n`` lies (numerically) inside the span of the conditions.
    """
    if isinstance(conditions, Tensor):
        C = conditions.reshape(-1, n.numel())
    else:
        C = torch.stack([c.reshape(-1) for c in conditions]) if len(conditions) else n.new_zeros(0, n.numel())
    v = n.reshape(-1).double()
    if C.shape[0]:
        # QR of the conditions is Gram-Schmidt done stably; drop columns that are (almost) dependent.
        Q, R = torch.linalg.qr(C.double().T)
        keep = R.diagonal().abs() > eps * R.diagonal().abs().max().clamp_min(1e-30)
        Q = Q[:, keep]
        v = v - Q @ (Q.T @ v)
    norm = v.norm()
    if norm <= eps * n.double().norm():
        raise InputError("conditional direction: the direction lies in the span of its conditions")
    return (v / norm).to(n.dtype).reshape(n.shape)


@dataclass(eq=False)
class Direction:
    """A named latent direction that edits ws: ``apply(ws [N, num_ws, w_dim], strength) -> ws``.

    Attributes:
        name: stable name (recipes refer to it).
        vector: the edit direction; ``[w_dim]`` for space "w", ``[num_ws, w_dim]`` for "w+", ``[z_dim]`` for
            "z". A unit vector, or, with a ``normal``, scaled so that ``normal . vector = 1``.
        space: "w", "w+" or "z" (z directions edit z via ``apply_z``; they cannot edit ws).
        rows: ws rows to edit (None = all rows).
        method: "svm", "pca", "sefa", "user" (SVM on labels a person gave) or "custom".
        offset: SVM intercept in latent units: signed distance to the boundary is ``n . w + offset``.
        accuracy: validation accuracy of the SVM (None for unsupervised directions).
        scale: standard deviation of ``n . w`` over sampled latents; a natural unit for strengths.
        attribute: the attribute it was fitted for, if any.
        conditions: names of the directions it was made orthogonal to.
        meta: other JSON-able facts (samples, ratio, explained variance, ...).
        normal: the boundary's unit normal (same shape as ``vector``) when it differs from the edit direction
            (covariance-aware SVM directions); ``distance`` and conditioning use it. None: ``vector`` is both.
    """

    name: str
    vector: Tensor
    space: str = "w"
    rows: tuple[int, ...] | None = None
    method: str = "custom"
    offset: float = 0.0
    accuracy: float | None = None
    scale: float = 1.0
    attribute: str | None = None
    conditions: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    normal: Tensor | None = None

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise InputError(f"direction {self.name!r}: space must be one of {', '.join(SPACES)}")
        if self.method not in METHODS:
            raise InputError(f"direction {self.name!r}: method must be one of {', '.join(METHODS)}")
        v = torch.as_tensor(self.vector).detach().to(torch.float32)
        if v.ndim != (2 if self.space == "w+" else 1) or v.numel() == 0:
            raise InputError(f"direction {self.name!r}: {self.space} vector has shape {list(v.shape)}")
        if not torch.isfinite(v).all() or float(v.norm()) == 0.0:
            raise InputError(f"direction {self.name!r}: vector is zero or not finite")
        self.vector = v
        if self.normal is not None:
            nv = torch.as_tensor(self.normal).detach().to(torch.float32)
            if nv.shape != v.shape or not torch.isfinite(nv).all() or float(nv.norm()) == 0.0:
                raise InputError(
                    f"direction {self.name!r}: normal of shape {list(nv.shape)} must be finite, non-zero and "
                    f"shaped like the vector {list(v.shape)}"
                )
            self.normal = nv / nv.norm()
        if self.rows is not None:
            self.rows = tuple(sorted({int(r) for r in self.rows}))
        self.conditions = tuple(self.conditions)

    # ------------------------------------------------------------------ editing
    def apply(self, ws: Tensor, strength: float) -> Tensor:
        """Edit W+ latents: ``ws + strength * n`` on the direction's rows.

        Args:
            ws: ``[N, num_ws, w_dim]``.
            strength: alpha, in latent units (``scale`` is one standard deviation of the data along n).

        Returns:
            A new ``[N, num_ws, w_dim]`` tensor; rows outside ``rows`` are bit-identical to the input.

        Raises:
            InputError: a z-space direction, or shapes that do not match the model.
        """
        if self.space == "z":
            raise InputError(f"direction {self.name!r} lives in Z: edit z with apply_z, then map it")
        if ws.ndim != 3:
            raise InputError(f"direction {self.name!r}: ws must be [N, num_ws, w_dim], got {list(ws.shape)}")
        num_ws, w_dim = ws.shape[1:]
        v = self.vector.to(device=ws.device, dtype=ws.dtype)
        if v.shape[-1] != w_dim or (v.ndim == 2 and v.shape[0] != num_ws):
            raise InputError(
                f"direction {self.name!r} has shape {list(v.shape)}, the model's ws rows are [{num_ws}, {w_dim}]"
            )
        delta = (v if v.ndim == 2 else v.expand(num_ws, w_dim)) * float(strength)
        if self.rows is not None:
            if max(self.rows) >= num_ws:
                raise InputError(
                    f"direction {self.name!r}: rows go up to {max(self.rows)}, model has {num_ws}"
                )
            mask = torch.zeros(num_ws, 1, dtype=torch.bool, device=ws.device)
            mask[list(self.rows)] = True
            return torch.where(mask[None], ws + delta[None], ws)
        return ws + delta[None]

    def apply_z(self, z: Tensor, strength: float) -> Tensor:
        """Edit z ``[N, z_dim]`` with a Z-space direction (``z + strength * n``)."""
        if self.space != "z":
            raise InputError(f"direction {self.name!r} lives in {self.space}, not Z")
        return z + float(strength) * self.vector.to(device=z.device, dtype=z.dtype)

    @property
    def boundary(self) -> Tensor:
        """The boundary's normal: ``normal`` when set, else ``vector``."""
        return self.vector if self.normal is None else self.normal

    def distance(self, latents: Tensor) -> Tensor:
        """Signed distance to the boundary, ``n . x + offset`` for latents ``[N, D]`` (or ws ``[N, num_ws, w_dim]``
        for w directions, read from the first edited row)."""
        v = self.boundary.to(device=latents.device, dtype=latents.dtype)
        if self.space == "w+":
            x = latents.reshape(latents.shape[0], -1)
            return x @ v.reshape(-1) + self.offset
        x = latents[:, (self.rows or (0,))[0]] if latents.ndim == 3 else latents
        return x @ v + self.offset

    # ------------------------------------------------------------------ variants
    def with_rows(self, rows: Sequence[int] | None, *, name: str | None = None) -> Direction:
        """The same direction restricted to ``rows`` (None = all)."""
        return dataclasses.replace(self, rows=None if rows is None else tuple(rows), name=name or self.name)

    def conditioned(self, others: Sequence[Direction], *, name: str | None = None) -> Direction:
        """The direction made orthogonal to ``others``' normals (InterFaceGAN conditional manipulation).

        Moving along the result leaves every condition's signed distance unchanged. A direction with a
        ``normal`` keeps ``normal . vector = 1``.

        Raises:
            InputError: spaces or shapes differ, or nothing is left after the projection.
        """
        for o in others:
            if o.space != self.space or o.vector.shape != self.vector.shape:
                raise InputError(
                    f"cannot condition {self.name!r} ({self.space} {list(self.vector.shape)}) on "
                    f"{o.name!r} ({o.space} {list(o.vector.shape)})"
                )
        if not others:
            return self
        v = orthogonal_complement(self.vector.reshape(-1), [o.boundary.reshape(-1) for o in others])
        if self.normal is not None:
            along = float(self.normal.reshape(-1) @ v)
            if abs(along) < 1e-3:
                raise InputError(
                    f"conditional direction: {self.name!r} no longer crosses its own boundary once made "
                    "orthogonal to its conditions"
                )
            v = v / along
        return dataclasses.replace(
            self,
            vector=v.reshape(self.vector.shape),
            conditions=tuple(dict.fromkeys([*self.conditions, *(o.name for o in others)])),
            name=name or self.name,
        )

    def metadata(self) -> dict[str, Any]:
        """JSON-able description (everything but the vector)."""
        return {
            "name": self.name,
            "space": self.space,
            "rows": None if self.rows is None else list(self.rows),
            "method": self.method,
            "offset": float(self.offset),
            "accuracy": None if self.accuracy is None else float(self.accuracy),
            "scale": float(self.scale),
            "attribute": self.attribute,
            "conditions": list(self.conditions),
            "meta": dict(self.meta),
        }


def split_variant(name: str) -> tuple[str, str | None, tuple[str, ...]]:
    """``"smiling@0-3~eyeglasses,beard" -> ("smiling", "0-3", ("eyeglasses", "beard"))``."""
    base, conds = (name.split("~", 1) + [""])[:2]
    base, rows = (base.split("@", 1) + [None])[:2]
    return base, rows, tuple(c for c in conds.split(",") if c)


def variant_name(base: str, rows: str | None = None, conditions: Sequence[str] = ()) -> str:
    """Inverse of ``split_variant``: the recipe name of a row-restricted and/or conditioned variant."""
    name = base
    if rows and rows != "all":
        name += f"@{rows}"
    if conditions:
        name += "~" + ",".join(conditions)
    return name


class DirectionSet(Mapping[str, Direction]):
    """Directions of one model, addressable by name; resolves ``name@rows~cond1,cond2`` variants on demand.

    Pass it as ``directions=`` to ``core.render`` / ``render_tensor``: a recipe's ``{name: strength}`` then
    finds its direction here, variants included.
    """

    def __init__(
        self,
        directions: Sequence[Direction] | Mapping[str, Direction] = (),
        *,
        model_hash: str | None = None,
        num_ws: int | None = None,
        layer_groups: Mapping[str, Sequence[int]] | None = None,
        meta: Mapping[str, Any] | None = None,
    ):
        items = directions.values() if isinstance(directions, Mapping) else directions
        self._items: dict[str, Direction] = {}
        for d in items:
            self.add(d)
        self.model_hash = model_hash
        self.num_ws = num_ws
        self.layer_groups = {k: list(v) for k, v in (layer_groups or {}).items()}
        self.meta = dict(meta or {})

    def add(self, d: Direction) -> None:
        """Add (or replace) a base direction. Raises InputError for names that cannot be parsed back."""
        if not _NAME_RE.match(d.name):
            raise InputError(f"direction name {d.name!r}: use letters, digits, '_', '-' and '.' only")
        self._items[d.name] = d

    def base_names(self) -> list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self[name]
        except KeyError:
            return False
        return True

    def __getitem__(self, name: str) -> Direction:
        if name in self._items:
            return self._items[name]
        base, rows, conds = split_variant(name)
        if base not in self._items or (rows is None and not conds):
            raise KeyError(name)
        d = self._items[base]
        try:
            if conds:
                missing = [c for c in conds if c not in self._items]
                if missing:
                    raise KeyError(name)
                d = d.conditioned([self._items[c] for c in conds])
            if rows is not None:
                num_ws = self.num_ws or (d.vector.shape[0] if d.space == "w+" else None)
                if num_ws is None:
                    raise KeyError(name)
                d = d.with_rows(parse_rows(rows, num_ws, self.layer_groups or None))
        except InputError:
            raise KeyError(name) from None
        return dataclasses.replace(d, name=name)

    def variant(self, base: str, *, rows: str | None = None, conditions: Sequence[str] = ()) -> Direction:
        """Build (and validate) a variant; raises InputError with the reason instead of KeyError."""
        if base not in self._items:
            raise InputError(f"no direction named {base!r}; loaded: {', '.join(self._items) or 'none'}")
        missing = [c for c in conditions if c not in self._items]
        if missing:
            raise InputError(f"condition {missing[0]!r} is not a loaded direction")
        d = self._items[base].conditioned([self._items[c] for c in conditions if c != base])
        if rows is not None and rows != "all":
            if self.num_ws is None:
                raise InputError("this direction set does not know the model's number of ws rows")
            d = d.with_rows(parse_rows(rows, self.num_ws, self.layer_groups or None))
        return dataclasses.replace(d, name=variant_name(base, rows, [c for c in conditions if c != base]))
