"""What the noise inputs control (Karras et al. 2019, Sec. 3.2 and Fig. 4): per-pixel Gaussian noise should
only change stochastic detail (hair strands, freckles, background speckle), never identity.

For ``n`` latents and ``draws`` independent noise draws each, we measure

* label stability: the SynthFaces classifier's binary labels of one latent are identical across all draws
  (per sample: all attributes; per attribute: fraction of samples);
* the per-pixel standard deviation over draws (Fig. 4 of the paper) and how its mass splits between the
  image centre (the face) and the border (background, hair outline): detail noise on SynthFaces mostly lives
  on hair, skin texture and background, so this is descriptive rather than a target.

The reference for the stability is the data itself (like the FD's real-vs-real floor): SynthFaces renders the
same faces with different stochastic detail (``detail_seed``), which changes nothing its labels describe, yet a
classifier whose decision for a face near an attribute's threshold moves with detail flips some labels there
too. :func:`real_detail_stability` measures that ceiling with the same protocol.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from core.data.synthfaces import render
from core.data.synthfaces_factors import sample_factors
from core.models.classifier import AttributeClassifier

NOISE_STABILITY_TARGET = 0.99


def _centre_mask(res: int, device: torch.device) -> Tensor:
    """Ellipse covering the inner face of a SynthFaces portrait (head centre slightly above the middle)."""
    c = (torch.arange(res, device=device) + 0.5) / res * 2 - 1
    y, x = c.view(-1, 1), c.view(1, -1)
    return ((x / 0.42) ** 2 + ((y + 0.12) / 0.5) ** 2) <= 1


def _check_draws(draws: int) -> None:
    if draws < 2:
        raise ValueError(f"need at least 2 noise draws, got {draws}")


def _stability(labels: list[Tensor]) -> tuple[Tensor, Tensor]:
    """``[draws] x [m, A]`` boolean labels -> (per sample all unchanged ``[m]``, per attribute ``[m, A]``)."""
    stacked = torch.stack(labels)
    same = (stacked == stacked[:1]).all(0)
    return same.all(1), same


@torch.no_grad()
def noise_label_stability(
    G: torch.nn.Module,
    classifier: AttributeClassifier,
    *,
    n: int = 1000,
    draws: int = 8,
    seed: int = 0,
    batch: int = 64,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Label stability of generated images across noise draws (psi = 1).

    Args:
        G: generator (``mapping``, ``synthesis(noise_mode="random", generator=...)``).
        classifier: SynthFaces attribute classifier on G's device.
        n: number of latents.
        draws: noise draws per latent (>= 2).
        seed: seeds the latents and the noise draws.
        batch: latents per forward pass.
        progress: called as ``progress(latents_done, n)``.
        should_stop: polled per batch; True stops early (the latents done so far are scored).

    Returns:
        ``{"n", "draws", "stable_fraction" (all labels unchanged), "per_attribute" {attr: fraction},
        "pixel_std_mean", "std_centre_fraction", "area_centre_fraction", "std_map" (Tensor [H, W] on the CPU:
        mean per-pixel std over draws, RGB-averaged), "target", "pass"}``.

    Raises:
        ValueError: if ``draws < 2``.
    """
    _check_draws(draws)
    dev = G.w_avg.device if hasattr(G, "w_avg") else next(G.parameters()).device
    gen_z = torch.Generator(device="cpu").manual_seed(seed)
    gen_noise = torch.Generator(device=dev).manual_seed(seed + 1)
    stable_all: list[Tensor] = []
    stable_attr: list[Tensor] = []
    std_sum: Tensor | None = None
    done = 0
    while done < n:
        if should_stop is not None and should_stop() and done:
            break
        m = min(batch, n - done)
        ws = G.mapping(torch.randn(m, G.cfg.z_dim, generator=gen_z).to(dev))
        imgs = [G.synthesis(ws, noise_mode="random", generator=gen_noise).clamp(-1, 1) for _ in range(draws)]
        every, same = _stability([classifier(img)["logits"] > 0 for img in imgs])
        stable_attr.append(same)
        stable_all.append(every)
        std = torch.stack(imgs).float().std(0).mean(1).sum(0)  # [H, W], summed over the batch
        std_sum = std if std_sum is None else std_sum + std
        done += m
        if progress is not None:
            progress(done, n)
    stable_all_t = torch.cat(stable_all).float()
    stable_attr_t = torch.cat(stable_attr).float().mean(0)
    std_map = std_sum / done
    mask = _centre_mask(std_map.shape[-1], std_map.device)
    total = float(std_map.sum())
    stable = float(stable_all_t.mean())
    return {
        "n": done,
        "draws": draws,
        "stable_fraction": stable,
        "per_attribute": {a: float(v) for a, v in zip(classifier.cfg.attributes, stable_attr_t, strict=True)},
        "pixel_std_mean": float(std_map.mean()),
        "std_centre_fraction": float(std_map[mask].sum()) / total if total > 0 else None,
        "area_centre_fraction": float(mask.float().mean()),
        "std_map": std_map.cpu(),
        "target": NOISE_STABILITY_TARGET,
        "pass": stable >= NOISE_STABILITY_TARGET,
    }


@torch.no_grad()
def real_detail_stability(
    classifier: AttributeClassifier,
    *,
    n: int = 500,
    draws: int = 8,
    seed: int = 0,
    resolution: int = 128,
    batch: int = 64,
) -> dict:
    """The same label-stability protocol on SynthFaces renders: each face drawn ``draws`` times with new detail.

    Args:
        classifier: SynthFaces attribute classifier (renders go to its device).
        n: faces (factors of stream ``seed``).
        draws: detail seeds per face (>= 2).
        seed: factor stream; the detail seeds are ``seed + 1 .. seed + draws``.
        resolution: render size (the generator's).
        batch: faces per forward pass.

    Returns:
        ``{"n", "draws", "stable_fraction", "per_attribute" {attr: fraction}}``.

    Raises:
        ValueError: if ``draws < 2``.
    """
    _check_draws(draws)
    dev = next(classifier.parameters()).device
    stable_all: list[Tensor] = []
    stable_attr: list[Tensor] = []
    for start in range(0, n, batch):
        m = min(batch, n - start)
        factors = sample_factors(m, seed=seed, start=start, device=dev)
        index = torch.arange(start, start + m, device=dev)
        labels = [
            classifier(render(factors, resolution=resolution, detail_seed=seed + 1 + d, index=index))[
                "logits"
            ]
            > 0
            for d in range(draws)
        ]
        every, same = _stability(labels)
        stable_all.append(every)
        stable_attr.append(same)
    per_attr = torch.cat(stable_attr).float().mean(0)
    return {
        "n": n,
        "draws": draws,
        "stable_fraction": float(torch.cat(stable_all).float().mean()),
        "per_attribute": {a: float(v) for a, v in zip(classifier.cfg.attributes, per_attr, strict=True)},
    }
