"""Frechet distance between two feature sets modelled as Gaussians (Heusel et al. 2017, "GANs Trained by a Two
Time-Scale Update Rule Converge to a Local Nash Equilibrium", Eq. 6; FID when the features are Inception's):

    d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)).

StyleScope computes it in the SynthFaces classifier's feature space (:mod:`core.models.classifier`), so the
numbers are comparable across SynthFaces models but not with published FIDs. Everything runs in float64. The
trace of the matrix square root uses the symmetric form: ``S_1 S_2`` is similar to ``A = S_1^(1/2) S_2
S_1^(1/2)``, which is symmetric positive semi-definite, so ``Tr (S_1 S_2)^(1/2) = sum_i sqrt(lambda_i(A))``
from two ``eigh`` calls and no scipy (and no complex parts from a non-symmetric ``sqrtm``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def feature_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and (unbiased) covariance of ``features [N, D]`` in float64.

    Raises:
        ValueError: fewer than two samples or not a 2-D tensor.
    """
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need features [N >= 2, D], got {tuple(features.shape)}")
    x = features.detach().to(torch.float64)
    mu = x.mean(0)
    xc = x - mu
    return mu, xc.T @ xc / (x.shape[0] - 1)


def _sqrt_psd(m: Tensor) -> Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """Frechet distance ``d^2`` between N(mu1, sigma1) and N(mu2, sigma2) (float64).

    Args:
        mu1, mu2: means ``[D]``.
        sigma1, sigma2: covariances ``[D, D]`` (symmetric positive semi-definite).

    Returns:
        The squared Frechet distance (>= 0 up to rounding), as reported by FID.
    """
    mu1, mu2 = mu1.to(torch.float64), mu2.to(torch.float64)
    s1, s2 = sigma1.to(torch.float64), sigma2.to(torch.float64)
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2  # remove rounding asymmetry before eigh
    r1 = _sqrt_psd(s1)
    a = r1 @ s2 @ r1
    tr_sqrt = torch.linalg.eigvalsh((a + a.T) / 2).clamp(min=0).sqrt().sum()
    d2 = (mu1 - mu2).square().sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_sqrt
    return float(d2.clamp(min=0))


def frechet_distance_features(a: Tensor, b: Tensor) -> float:
    """Frechet distance between two feature sets ``[N, D]`` and ``[M, D]``."""
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))
