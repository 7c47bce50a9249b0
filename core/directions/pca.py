"""GANSpace: principal components of sampled W as editing directions (Harkonen et al., NeurIPS 2020, Sec. 2).

Sample w = mapping(z) for many z, take the eigenvectors of their covariance (PCA) in order of variance and use
each as a direction ``w' = w + alpha * v_k`` applied to a chosen range of ws rows (GANSpace's "layer-wise
edits", e.g. v_0 on rows 0-3 for head rotation). Unsupervised: the names are ``pca_<k>``, not attributes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from core.directions.collect import sample_latents
from core.directions.edit import Direction
from core.errors import InputError


def _canonical_sign(v: torch.Tensor) -> torch.Tensor:
    """Eigenvectors have no sign; fix it so the largest-magnitude entry is positive (reproducible files)."""
    return v * torch.sign(v[v.abs().argmax()])


@torch.no_grad()
def pca_directions(
    G: torch.nn.Module,
    *,
    num_components: int = 10,
    samples: int = 10_000,
    seed: int = 0,
    rows: Sequence[int] | None = None,
    truncation_psi: float = 1.0,
    prefix: str = "pca",
) -> list[Direction]:
    """Top principal components of W as directions.

    Args:
        G: generator.
        num_components: how many components (at most ``w_dim``).
        samples: number of sampled w (seeded, recipe seeds ``seed..seed+samples-1``).
        rows: ws rows every component edits (None = all); use ``Direction.with_rows`` per component.
        truncation_psi: truncation of the sampled w.
        prefix: names are ``f"{prefix}_{k}"``.

    Returns:
        Directions in order of explained variance; ``scale`` = standard deviation along the component,
        ``meta`` holds ``component``, ``variance`` and ``explained_variance_ratio``.
    """
    if not 1 <= num_components <= G.w_dim:
        raise InputError(f"num_components must be in 1..{G.w_dim}, got {num_components}")
    if samples < 2:
        raise InputError("PCA needs at least 2 samples")
    w = sample_latents(G, samples, seed=seed, space="w", truncation_psi=truncation_psi).w.double()
    w = w - w.mean(0)
    cov = (w.T @ w) / (w.shape[0] - 1)
    evals, evecs = torch.linalg.eigh(cov)
    order = torch.argsort(evals, descending=True)
    evals, evecs = evals[order].clamp_min(0), evecs[:, order]
    total = float(evals.sum()) or 1.0
    out = []
    for k in range(num_components):
        out.append(
            Direction(
                name=f"{prefix}_{k}",
                vector=_canonical_sign(evecs[:, k]).float(),
                space="w",
                rows=None if rows is None else tuple(rows),
                method="pca",
                scale=float(evals[k].sqrt()),
                meta={
                    "component": k,
                    "variance": float(evals[k]),
                    "explained_variance_ratio": float(evals[k]) / total,
                    "samples": samples,
                },
            )
        )
    return out
