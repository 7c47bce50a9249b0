"""Per-face, classifier-guided edits: move one latent until the classifier's label flips, keeping the others.

A linear direction assumes that one vector changes an attribute everywhere in W. In a model whose W is curved
for an attribute that assumption fails: on the shipped SynthFaces model the gradient of the smile estimate with
respect to w points a different way for every face (mean pairwise cosine 0.008 over 24 faces), so no SVM normal
edits smiles reliably. A guided edit follows the classifier's gradient at each face instead, in the spirit of
latent optimisation with an attribute loss:

    minimise  softplus(margin - s * logit_a(G(w)))            (reach the target side of attribute a)
            + keep * mean_k (logit_k(G(w)) - logit_k(G(w0)))^2  (the other attributes stay)
            + pixels * mean (G(w) - G(w0))^2                    (the rest of the image stays)
            + prox * |u|^2                                      (stay close: w = w0 + L u, L L^T = cov(W))

over the whitened offset ``u`` with Adam. ``L`` (a Cholesky factor of W's covariance) makes a unit step in u
one standard deviation of the data along every axis of W, so the optimiser cannot wander into the directions W
hardly varies in (where the generator hardly responds and images break). The result is an explicit latent,
stored in the recipe's ``ws``, so the image is reproducible without re-running the optimisation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from core.directions.collect import ClassifierScorer
from core.errors import InputError


@dataclass
class GuidedEdit:
    """Result of ``guided_edit`` (CPU tensors).

    Attributes:
        ws: ``[N, num_ws, w_dim]`` edited latents.
        scores: ``[N, A]`` the scorer's probabilities of the edited images.
        before: ``[N, A]`` the same for the inputs.
        reached: ``[N]`` bool, the attribute's label is on the target side at the end.
        steps: optimiser steps taken.
    """

    ws: Tensor
    scores: Tensor
    before: Tensor
    reached: Tensor
    steps: int


def _whitening_factor(covariance: Tensor, eps: float = 1e-6) -> Tensor:
    cov = covariance.double()
    jitter = eps * float(torch.diagonal(cov).mean())
    return torch.linalg.cholesky(cov + jitter * torch.eye(cov.shape[0], dtype=cov.dtype)).float()


def guided_edit(
    G: torch.nn.Module,
    scorer: ClassifierScorer,
    ws: Tensor,
    attribute: str,
    *,
    covariance: Tensor,
    target: bool | Tensor | None = None,
    keep: Sequence[str] | None = None,
    rows: Sequence[int] | None = None,
    margin: float = 2.0,
    keep_weight: float = 0.3,
    pixel_weight: float = 100.0,
    prox_weight: float = 0.01,
    lr: float = 0.1,
    steps: int = 40,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> GuidedEdit:
    """Edit each latent of ``ws`` until ``attribute``'s label reaches ``target`` (default: the opposite label).

    Args:
        G: generator; scorer: a ``ClassifierScorer`` (differentiable); covariance: of W (``w_covariance(G)``).
        ws: ``[N, num_ws, w_dim]`` latents to edit (one optimisation each, run as a batch).
        attribute: a binary attribute of the scorer.
        target: True (make it present), False, or a ``[N]`` bool tensor; None flips each sample's label.
        keep: attributes whose probabilities should not change (default: all others).
        rows: ws rows the edit may change (default: all, moved together).
        margin: logit the edit aims past the boundary (2.0: probability 0.88 or 0.12).
        keep_weight / pixel_weight / prox_weight: weights of the keep term, of the mean squared pixel change
            (the image may change only where the attribute needs it) and of the latent proximity term.
        lr / steps: Adam settings.
        progress: ``progress(step, steps)``; should_stop: polled between steps (stops with the current latents).

    Raises:
        InputError: unknown attribute or keep names, bad rows or covariance shape.
    """
    names = list(scorer.attributes)
    if attribute not in scorer.binary:
        raise InputError(f"guided edits need a binary attribute of the classifier, got {attribute!r}")
    keep = [a for a in scorer.binary if a != attribute] if keep is None else list(keep)
    unknown = [k for k in keep if k not in scorer.binary]
    if unknown:
        raise InputError(f"unknown attribute {unknown[0]!r} to keep")
    n, num_ws, w_dim = ws.shape
    if covariance.shape != (w_dim, w_dim):
        raise InputError(f"covariance must be [{w_dim}, {w_dim}], got {list(covariance.shape)}")
    rows = list(range(num_ws)) if rows is None else [int(r) for r in rows]
    if any(not 0 <= r < num_ws for r in rows):
        raise InputError(f"rows {rows} reach outside the model's {num_ws} ws rows")
    # Callers may hold the model under torch.inference_mode (the app does): the optimisation needs autograd, and
    # tensors made outside inference mode (hence the clones).
    with torch.inference_mode(False), torch.enable_grad():
        device = G.w_avg.device
        i = names.index(attribute)
        k_idx = torch.tensor([names.index(k) for k in keep], dtype=torch.long, device=device)
        L = _whitening_factor(covariance.detach().clone()).to(device)
        w0 = ws.detach().to(device=device, dtype=torch.float32).clone()
        mask = torch.zeros(num_ws, 1, device=device)
        mask[rows] = 1.0
        with torch.no_grad():
            img0 = G.synthesis(w0, noise_mode="const")
            before = scorer.score(img0).float()
        if target is None:
            goal = before[:, i] <= 0.5
        elif isinstance(target, Tensor):
            goal = target.to(device=device, dtype=torch.bool).reshape(-1)
        else:
            goal = torch.full((n,), bool(target), device=device)
        sign = goal.float() * 2 - 1
        logit0 = torch.logit(before.clamp(1e-6, 1 - 1e-6))
        u = torch.zeros(n, w_dim, device=device, requires_grad=True)
        opt = torch.optim.Adam([u], lr=lr)
        done = 0
        for done in range(1, steps + 1):
            if should_stop is not None and should_stop():
                break
            w = w0 + mask * (u @ L.T)[:, None, :]
            img = G.synthesis(w, noise_mode="const")
            probs = scorer.score(img).float()
            logits = torch.logit(probs.clamp(1e-6, 1 - 1e-6))
            loss_target = F.softplus(margin - sign * logits[:, i])
            # Logits, not probabilities: a saturated probability has no gradient until the label has flipped.
            drift = logits[:, k_idx] - logit0[:, k_idx]
            loss_keep = drift.pow(2).mean(1) if len(keep) else torch.zeros_like(loss_target)
            loss_pixels = (img.float() - img0.float()).pow(2).mean((1, 2, 3))
            loss = (
                loss_target
                + keep_weight * loss_keep
                + pixel_weight * loss_pixels
                + prox_weight * u.pow(2).sum(1)
            )
            loss = loss.sum()
            # Gradient with respect to the offset only: the models' own parameters are left alone.
            (u.grad,) = torch.autograd.grad(loss, [u])
            opt.step()
            if progress is not None:
                progress(done, steps)
        with torch.no_grad():
            w = w0 + mask * (u @ L.T)[:, None, :]
            after = scorer.score(G.synthesis(w, noise_mode="const")).float()
    reached = (after[:, i] > 0.5) == goal
    return GuidedEdit(w.cpu(), after.cpu(), before.cpu(), reached.cpu(), done)
