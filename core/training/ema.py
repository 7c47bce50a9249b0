"""Generator exponential moving average and the running mean of w.

G_ema (Karras et al. 2018, PGGAN sec. 4; StyleGAN2-ADA ``training_loop``): after every step,
``G_ema = lerp(G, G_ema, beta)`` with ``beta = 0.5 ** (batch / ema_nimg)`` (a half-life of ``ema_kimg``
thousand images), where ``ema_nimg`` ramps up as ``min(ema_nimg, cur_nimg * ema_rampup)`` early in training.
Buffers (noise constants, ``w_avg``) are copied. ``w_avg`` itself tracks the mean mapped w with beta 0.995,
as NVIDIA's mapping network does while training, so exported models truncate around the right centre.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

W_AVG_BETA = 0.995


def ema_beta(batch: int, cur_nimg: int, *, ema_kimg: float, ema_rampup: float | None) -> float:
    """EMA decay for one step of ``batch`` (global) images at ``cur_nimg``."""
    ema_nimg = ema_kimg * 1000.0
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """``G_ema <- G + beta * (G_ema - G)`` for parameters (fused foreach), copy of buffers. No host sync."""
    ema_p = [p for p in G_ema.parameters()]
    src_p = [p.detach() for p in G.parameters()]
    if ema_p:
        torch._foreach_lerp_(ema_p, src_p, 1.0 - beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b)


@torch.no_grad()
def update_w_avg(G: nn.Module, ws: Tensor, beta: float = W_AVG_BETA) -> None:
    """Track the mean of mapped w (first ws row, before mixing) in ``G.w_avg``."""
    G.w_avg.copy_(ws[:, 0].detach().float().mean(dim=0).lerp(G.w_avg, beta))
