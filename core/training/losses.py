"""GAN losses and regularisers of StyleGAN / StyleGAN2.

* Non-saturating logistic loss (Goodfellow et al. 2014, sec. 3): ``L_D = softplus(D(G(z))) +
  softplus(-D(x))``, ``L_G = softplus(-D(G(z)))``.
* R1 (Mescheder et al. 2018, eq. 9): ``gamma/2 * E ||grad_x D(x)||^2`` on reals; StyleGAN2 sec. 3.1 applies
  it lazily every 16 minibatches, multiplying the penalty by the interval.
* Path-length regularisation (StyleGAN2 eq. 4): ``E_{w,y} (||J_w^T y||_2 - a)^2`` with ``y ~ N(0, I) /
  sqrt(H*W)`` (appendix B), ``a`` an exponential moving average (decay 0.01) of the lengths, on a batch
  shrunk by 2, weight 2, every 4 minibatches.

Every function here is pure tensor math (no host synchronisation): the loop reads the results rarely.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def d_logistic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator's non-saturating logistic loss, averaged over the batch."""
    return F.softplus(fake_logits.float()).mean() + F.softplus(-real_logits.float()).mean()


def g_nonsaturating_loss(fake_logits: Tensor) -> Tensor:
    """Generator's non-saturating loss ``softplus(-D(G(z)))``, averaged over the batch."""
    return F.softplus(-fake_logits.float()).mean()


def r1_penalty(real_images: Tensor, real_logits: Tensor) -> Tensor:
    """Per-sample ``||grad_x D(x)||^2`` ``[N]`` (keeps the graph, so it can be back-propagated).

    ``real_images`` must have ``requires_grad=True`` and be the tensor ``real_logits`` was computed from
    (before augmentation, as in StyleGAN2-ADA). The square and sum are done in fp32: under bf16 autocast the
    gradient itself arrives with bf16 precision but summing thousands of bf16 squares would lose more.
    """
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_images, create_graph=True)
    return grad.float().square().sum(dim=[1, 2, 3])


def path_length_penalty(
    images: Tensor,
    ws: Tensor,
    pl_mean: Tensor,
    *,
    decay: float = 0.01,
    generator: torch.Generator | None = None,
    reduce_mean=None,
) -> tuple[Tensor, Tensor]:
    """StyleGAN2 path-length penalty; updates ``pl_mean`` in place (a 0-d fp32 buffer).

    Args:
        images: ``G.synthesis(ws)`` ``[N, C, H, W]`` (with graph to ``ws``).
        ws: ``[N, num_ws, w_dim]`` with ``requires_grad=True``.
        pl_mean: running mean of the path lengths (``a`` in eq. 4), modified in place.
        decay: EMA rate of ``pl_mean``.
        generator: RNG for the image-space noise ``y``.
        reduce_mean: optional in-place cross-rank average, so every rank tracks the same ``pl_mean``.

    Returns:
        ``(penalty, lengths)``: scalar mean of ``(|J^T y| - a)^2`` and the per-sample lengths ``[N]``.
    """
    h, w = images.shape[2], images.shape[3]
    noise = torch.randn(images.shape, device=images.device, generator=generator) / (h * w) ** 0.5
    (grad,) = torch.autograd.grad((images.float() * noise).sum(), ws, create_graph=True)
    lengths = grad.float().square().sum(dim=2).mean(dim=1).sqrt()
    with torch.no_grad():
        batch_mean = lengths.mean().detach().clone()
        if reduce_mean is not None:
            reduce_mean(batch_mean)
        pl_mean.lerp_(batch_mean, decay)
    penalty = (lengths - pl_mean.detach()).square().mean()
    return penalty, lengths
