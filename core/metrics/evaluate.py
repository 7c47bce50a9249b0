"""``evaluate_model``: every SynthFaces metric of a generator, with targets and pass/fail.

* Quality, in the SynthFaces classifier's feature space: ``n`` generated images (psi = 1, random noise) against
  ``n`` held-out SynthFaces renders: Frechet distance (Heusel et al. 2017) with the real-vs-real floor from a
  second independent set of ``n`` renders (target: FD <= 3x floor), improved precision / recall with k = 3
  (Kynkaanniemi et al. 2019; targets 0.8 / 0.6), and the classifier's attribute frequencies on generated vs
  real images (target: every difference <= 0.05; both sides are labelled by the same classifier, so its own
  small bias cancels).
* Disentanglement by style mixing (:mod:`core.metrics.disentanglement`; target >= 0.9 per layer group).
* Noise (:mod:`core.metrics.noise`): classifier labels unchanged across noise draws for >= 99% of samples,
  reported beside the same fraction for real renders whose stochastic detail is redrawn (the data's ceiling).

The real renders come from streams no generator trains on (``REAL_SEED_A`` / ``REAL_SEED_B``, offset by
``seed``), at the generator's resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from core.errors import InputError
from core.metrics.disentanglement import DISENTANGLEMENT_TARGET, style_mixing_score
from core.metrics.fd import frechet_distance_features
from core.metrics.noise import NOISE_STABILITY_TARGET, noise_label_stability, real_detail_stability
from core.metrics.precision_recall import precision_recall
from core.models.classifier import AttributeClassifier
from core.models.classifier_train import render_batch

REAL_SEED_A = 2_000_003
REAL_SEED_B = 3_000_017
TARGETS = {
    "fd_ratio_max": 3.0,
    "precision_min": 0.8,
    "recall_min": 0.6,
    "attribute_freq_diff_max": 0.05,
    "disentanglement_min": DISENTANGLEMENT_TARGET,
    "noise_stability_min": NOISE_STABILITY_TARGET,
}


class EvaluationCancelled(Exception):
    """Raised inside :func:`evaluate_model` when ``should_stop`` returns True (caught there)."""


class _Ticker:
    """One progress scale across all stages; polls ``should_stop`` at every tick."""

    def __init__(self, total: int, progress, should_stop) -> None:
        self.total, self.done, self.progress, self.should_stop = total, 0, progress, should_stop

    def tick(self, k: int) -> None:
        self.done += k
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)
        if self.should_stop is not None and self.should_stop():
            raise EvaluationCancelled

    def stage(self, base: int) -> Callable[[int, int], None]:
        last = [0]

        def cb(done: int, _total: int) -> None:
            self.tick(done - last[0])
            last[0] = done

        self.done = base
        return cb


@torch.no_grad()
def _generated(G, classifier, n: int, seed: int, batch: int, ticker: _Ticker) -> tuple[Tensor, Tensor]:
    dev = G.w_avg.device
    gen_z = torch.Generator(device="cpu").manual_seed(seed)
    gen_noise = torch.Generator(device=dev).manual_seed(seed + 1)
    feats, labels = [], []
    for i in range(0, n, batch):
        m = min(batch, n - i)
        z = torch.randn(m, G.cfg.z_dim, generator=gen_z).to(dev)
        img = G.synthesis(G.mapping(z, truncation_psi=1.0), noise_mode="random", generator=gen_noise)
        out = classifier(img.clamp(-1, 1))
        feats.append(out["features"])
        labels.append(out["logits"] > 0)
        ticker.tick(m)
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def _real(
    classifier, n: int, seed: int, resolution: int, batch: int, ticker: _Ticker
) -> tuple[Tensor, Tensor]:
    dev = next(classifier.parameters()).device
    feats, labels = [], []
    for i in range(0, n, batch):
        m = min(batch, n - i)
        img, _ = render_batch(seed, i, m, resolution=resolution, device=dev)
        out = classifier(img)
        feats.append(out["features"])
        labels.append(out["logits"] > 0)
        ticker.tick(m)
    return torch.cat(feats), torch.cat(labels)


def _ok(value, cond: Callable[[float], bool]) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(cond(value))


def evaluate_model(
    G: torch.nn.Module,
    classifier: AttributeClassifier,
    *,
    n: int = 10_000,
    seed: int = 0,
    device: str | torch.device | None = None,
    batch: int = 128,
    n_pairs: int | None = None,
    noise_n: int | None = None,
    noise_draws: int = 8,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Quality, disentanglement and noise metrics of a SynthFaces generator, with targets and pass/fail.

    Args:
        G: an unconditional generator (``c_dim == 0``) of SynthFaces-like images.
        classifier: the SynthFaces attribute classifier.
        n: images per set for FD / precision / recall / frequencies (generated, real, second real).
        seed: seeds the latents and noise; real sets use streams ``REAL_SEED_A + seed`` and ``REAL_SEED_B + seed``.
        device: where to run (both models are moved there); default: G's device.
        batch: images per forward pass.
        n_pairs: style-mixing pairs; default ``min(n, 1000)``.
        noise_n: latents for the noise test; default ``min(n, 500)``.
        noise_draws: noise draws per latent.
        progress: called as ``progress(done, total)`` in image units over all stages.
        should_stop: polled throughout; True ends early with ``"cancelled": True`` and the finished sections.

    Returns:
        ``{"n", "seed", "resolution", "quality": {...}, "disentanglement": {...}, "noise": {...},
        "targets": TARGETS, "checks": {name: bool | None}, "pass": bool, "cancelled": bool}``.

    Raises:
        InputError: a conditional generator or ``n`` too small for k-NN statistics.
    """
    if getattr(G.cfg, "c_dim", 0):
        raise InputError("evaluate supports unconditional generators only (this one has c_dim > 0)")
    if n < 8:
        raise InputError(f"n must be at least 8, got {n}")
    dev = torch.device(device) if device is not None else G.w_avg.device
    G = G.to(dev).eval()
    classifier = classifier.to(dev).eval()
    res = int(G.cfg.img_resolution)
    n_pairs = min(n, 1000) if n_pairs is None else n_pairs
    noise_n = min(n, 500) if noise_n is None else noise_n
    ticker = _Ticker(3 * n + n_pairs + 2 * noise_n, progress, should_stop)
    report: dict = {"n": n, "seed": seed, "resolution": res, "targets": dict(TARGETS), "cancelled": False}
    checks: dict[str, bool | None] = {}
    try:
        f_gen, l_gen = _generated(G, classifier, n, seed, batch, ticker)
        f_real, l_real = _real(classifier, n, REAL_SEED_A + seed, res, batch, ticker)
        f_real2, _ = _real(classifier, n, REAL_SEED_B + seed, res, batch, ticker)
        fd = frechet_distance_features(f_gen, f_real)
        floor = frechet_distance_features(f_real2, f_real)
        pr = precision_recall(f_real, f_gen, k=3)
        freq_gen = l_gen.float().mean(0)
        freq_real = l_real.float().mean(0)
        diff = (freq_gen - freq_real).abs()
        attrs = classifier.cfg.attributes
        report["quality"] = {
            "fd": fd,
            "fd_floor": floor,
            "fd_ratio": fd / floor if floor > 0 else float("inf"),
            "precision": pr["precision"],
            "recall": pr["recall"],
            "k": 3,
            "attribute_frequency": {
                a: {"generated": float(g), "real": float(r), "diff": float(d)}
                for a, g, r, d in zip(attrs, freq_gen, freq_real, diff, strict=True)
            },
            "max_frequency_diff": float(diff.max()),
        }
        q = report["quality"]
        checks["fd_ratio"] = _ok(q["fd_ratio"], lambda v: v <= TARGETS["fd_ratio_max"])
        checks["precision"] = _ok(q["precision"], lambda v: v >= TARGETS["precision_min"])
        checks["recall"] = _ok(q["recall"], lambda v: v >= TARGETS["recall_min"])
        checks["attribute_frequency"] = _ok(
            q["max_frequency_diff"], lambda v: v <= TARGETS["attribute_freq_diff_max"]
        )

        dis = style_mixing_score(
            G, classifier, n_pairs=n_pairs, seed=seed + 7, batch=batch, progress=ticker.stage(3 * n)
        )
        report["disentanglement"] = dis
        for g, v in dis["groups"].items():
            checks[f"disentanglement_{g}"] = _ok(v["score"], lambda s: s >= TARGETS["disentanglement_min"])

        noise = noise_label_stability(
            G,
            classifier,
            n=noise_n,
            draws=noise_draws,
            seed=seed + 11,
            batch=max(1, batch // 2),
            progress=ticker.stage(3 * n + n_pairs),
        )
        noise.pop("std_map")
        real = real_detail_stability(
            classifier, n=noise_n, draws=noise_draws, seed=REAL_SEED_A + seed, resolution=res, batch=batch
        )
        ticker.tick(noise_n)
        noise["real_reference"] = real
        report["noise"] = noise
        checks["noise_stability"] = _ok(
            noise["stable_fraction"], lambda v: v >= TARGETS["noise_stability_min"]
        )
    except EvaluationCancelled:
        report["cancelled"] = True
    report["checks"] = checks
    report["pass"] = bool(checks) and not report["cancelled"] and all(v is True for v in checks.values())
    return report
