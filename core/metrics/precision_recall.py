"""Improved precision and recall (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for
Assessing Generative Models", Sec. 2, Eq. 1-3).

Each set approximates its manifold by the union of hyperspheres around its samples, the radius of a sample being
the distance to its k-th nearest neighbour within the same set (k = 3 in the paper). Precision = fraction of
generated samples inside the real manifold (quality); recall = fraction of real samples inside the generated
manifold (coverage). Distances are computed in blocks with ``torch.cdist`` so 10k x 10k sets fit anywhere.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def knn_radii(features: Tensor, *, k: int = 3, block: int = 1024) -> Tensor:
    """Distance of every sample of ``features [N, D]`` to its k-th nearest other sample: ``[N]``.

    Raises:
        ValueError: if ``N <= k``.
    """
    n = features.shape[0]
    if n <= k:
        raise ValueError(f"need more than k={k} samples, got {n}")
    x = features.float()
    out = torch.empty(n, device=x.device)
    for i in range(0, n, block):
        d = torch.cdist(x[i : i + block], x)
        # The k+1 smallest include the sample itself (distance 0).
        out[i : i + block] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return out


def manifold_coverage(ref: Tensor, ref_radii: Tensor, query: Tensor, *, block: int = 1024) -> Tensor:
    """Bool ``[M]``: whether each ``query`` sample lies inside some hypersphere ``(ref_i, ref_radii_i)``."""
    x, q = ref.float(), query.float()
    inside = torch.empty(q.shape[0], dtype=torch.bool, device=q.device)
    for i in range(0, q.shape[0], block):
        d = torch.cdist(q[i : i + block], x)
        inside[i : i + block] = (d <= ref_radii[None]).any(1)
    return inside


def precision_recall(
    real: Tensor,
    fake: Tensor,
    *,
    k: int = 3,
    block: int = 1024,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, float]:
    """Improved precision and recall of ``fake [M, D]`` against ``real [N, D]`` features.

    Args:
        real, fake: feature sets on one device.
        k: neighbourhood size for the manifold radii (the paper uses 3).
        block: rows per ``cdist`` block (memory: ``block * max(N, M)`` floats).
        should_stop: polled between the precision and recall passes; True skips recall (NaN).

    Returns:
        ``{"precision": float, "recall": float, "k": k}``.
    """
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need [N, D] and [M, D] features, got {tuple(real.shape)} and {tuple(fake.shape)}")
    r_real = knn_radii(real, k=k, block=block)
    precision = float(manifold_coverage(real, r_real, fake, block=block).float().mean())
    if should_stop is not None and should_stop():
        return {"precision": precision, "recall": float("nan"), "k": k}
    r_fake = knn_radii(fake, k=k, block=block)
    recall = float(manifold_coverage(fake, r_fake, real, block=block).float().mean())
    return {"precision": precision, "recall": recall, "k": k}
