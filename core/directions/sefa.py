"""SeFa: closed-form directions from the style affine weights (Shen & Zhou, CVPR 2021, Eq. 5-6).

Every styled layer maps w to its style with an affine layer ``y = A w + b``. A direction n changes the styles
by ``A n``; the directions that change them most solve ``max ||A n||^2`` subject to ``||n|| = 1``, i.e. the
eigenvectors of ``A^T A`` with the largest eigenvalues (Eq. 6), where ``A`` stacks the affine weights of the
chosen layers. Restricting the layers (ws rows) gives directions for, e.g., only the coarse layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from core.directions.edit import Direction
from core.errors import InputError


def _affine(layer: nn.Module) -> nn.Module | None:
    """The w -> style affine of a styled layer (StyleGAN2 ``conv.modulation``, StyleGAN ``style``)."""
    for path in ("conv.modulation", "modulation", "style"):
        m = layer
        for part in path.split("."):
            m = getattr(m, part, None)
            if m is None:
                break
        if isinstance(m, nn.Module) and getattr(m, "weight", None) is not None and m.weight.ndim == 2:
            return m
    return None


def style_affines(G: nn.Module) -> list[tuple[int, str, Tensor]]:
    """``(ws row, layer name, effective weight [out, w_dim])`` for every styled layer of a generator.

    Row layout (StyleGAN2 skip generator): conv1 -> 0, to_rgb1 -> 1, convs.j -> j+1, to_rgbs.b -> 2b+3
    (to_rgb -> num_ws-1 without skips). Effective weight = stored weight times its equalised-lr scale.
    """
    layers: list[tuple[int, str, nn.Module]] = [(0, "conv1", G.conv1)]
    if getattr(G, "to_rgb1", None) is not None:
        layers.append((1, "to_rgb1", G.to_rgb1))
    layers += [(j + 1, f"convs.{j}", m) for j, m in enumerate(G.convs)]
    layers += [(2 * b + 3, f"to_rgbs.{b}", m) for b, m in enumerate(getattr(G, "to_rgbs", []))]
    if getattr(G, "to_rgb", None) is not None:
        layers.append((G.num_ws - 1, "to_rgb", G.to_rgb))
    out = []
    for row, name, layer in layers:
        aff = _affine(layer)
        if aff is None:
            continue
        scale = float(getattr(aff, "scale", 1.0))
        out.append((row, name, aff.weight.detach().float().cpu() * scale))
    return sorted(out, key=lambda t: t[0])


@torch.no_grad()
def sefa_directions(
    G: nn.Module,
    *,
    num_components: int = 10,
    rows: Sequence[int] | None = None,
    include_rgb: bool = True,
    prefix: str = "sefa",
    scale_samples: int = 2000,
    seed: int = 0,
) -> list[Direction]:
    """Closed-form directions from the affine weights of the layers that read ``rows``.

    Args:
        G: generator.
        num_components: how many eigenvectors (at most ``w_dim``).
        rows: ws rows whose layers define A (None = all); the directions also edit only these rows.
        include_rgb: include the toRGB layers' affines (rosinality's tool skips them; SeFa uses all layers).
        prefix: names are ``f"{prefix}_{k}"``.
        scale_samples: w sampled to measure the standard deviation along each direction (``scale``); 0 = skip.
        seed: seed of those samples.

    Returns:
        Directions in order of eigenvalue; ``meta`` holds ``component`` and ``eigenvalue``.

    Raises:
        InputError: no styled layer reads the chosen rows, or a bad component count.
    """
    if not 1 <= num_components <= G.w_dim:
        raise InputError(f"num_components must be in 1..{G.w_dim}, got {num_components}")
    wanted = None if rows is None else set(int(r) for r in rows)
    mats = [
        w
        for row, name, w in style_affines(G)
        if (wanted is None or row in wanted) and (include_rgb or "rgb" not in name)
    ]
    if not mats:
        raise InputError(f"no styled layer reads ws rows {sorted(wanted or [])}")
    A = torch.cat(mats).double()
    evals, evecs = torch.linalg.eigh(A.T @ A)
    order = torch.argsort(evals, descending=True)
    evals, evecs = evals[order], evecs[:, order]
    w = None
    if scale_samples:
        from core.directions.collect import sample_latents

        w = sample_latents(G, scale_samples, seed=seed, space="w").w
    out = []
    for k in range(num_components):
        v = evecs[:, k]
        v = (v * torch.sign(v[v.abs().argmax()])).float()
        out.append(
            Direction(
                name=f"{prefix}_{k}",
                vector=v,
                space="w",
                rows=None if rows is None else tuple(sorted(wanted)),
                method="sefa",
                scale=float((w @ v).std()) if w is not None else 1.0,
                meta={"component": k, "eigenvalue": float(evals[k]), "include_rgb": include_rgb},
            )
        )
    return out
