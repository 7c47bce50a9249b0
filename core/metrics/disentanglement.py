"""Style-mixing disentanglement score on SynthFaces, measured the way StyleGAN argues it (Karras et al. 2019,
Sec. 3.1 and Fig. 3): copying B's styles at coarse resolutions (4-8 px) brings B's pose, face shape, hair
style and eyeglasses while A keeps its colours; middle styles (16-32 px) bring smaller facial features; fine
styles (64 px and up) bring the colour scheme.

For pairs of generated images (A, B) and each layer group g of the generator (``G.layer_groups``), the mixed
image takes B's ws rows of g and A's other rows. The SynthFaces classifier predicts every factor of A, B and
the mix. For each factor f of ``FACTOR_GROUPS`` (grouped coarse / middle / fine by the dataset) the expected
source is B when f belongs to g, else A; a (pair, factor) case *follows* when the mix's prediction is closer to
the expected source's prediction than to the other one's. Cases where A and B look alike for f (standardised
gap below ``min_gap``, or the same predicted category) or where f cannot be seen (classifier
``VISIBILITY``, e.g. frame colour without glasses) are not counted. The score of group g is the fraction of
counted cases that follow, over all factors; ``moved`` / ``kept`` split it into the factors that should come
from B and those that should stay A's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from core.data.synthfaces import FACTOR_GROUPS
from core.models.classifier import AttributeClassifier
from core.models.classifier_train import VISIBILITY

DISENTANGLEMENT_TARGET = 0.9

Predictions = dict[str, Tensor]  # factor -> [N, 1] standardised value, or [N, K] category probabilities


@torch.no_grad()
def factor_predictions(classifier: AttributeClassifier, img: Tensor) -> Predictions:
    """Predict every continuous factor (standardised, ``[N, 1]``) and categorical factor (probabilities,
    ``[N, K]``) of images ``[N, 3, H, W]`` in [-1, 1]."""
    out = classifier(img)
    preds: Predictions = {
        f: out["regression_std"][:, j : j + 1] for j, f in enumerate(classifier.cfg.factors)
    }
    for name, logits in classifier.split_categorical(out["categorical"]).items():
        preds[name] = logits.softmax(1)
    return preds


def _visible(name: str, p: Predictions, factor_units: Callable[[str, Tensor], Tensor]) -> Tensor | None:
    rule = VISIBILITY.get(name)
    if rule is None or rule[0] not in p:
        return None
    factor, op, t = rule
    v = p[factor]
    if v.shape[1] > 1:  # categorical: compare the predicted category
        return v.argmax(1) == t if op == "==" else v.argmax(1) > t
    v = factor_units(factor, v[:, 0])
    return v > t if op == ">" else v == t


def mixing_cases(
    pred_a: Predictions,
    pred_b: Predictions,
    pred_mix: Mapping[str, Predictions],
    *,
    groups: Mapping[str, tuple[str, ...]] = FACTOR_GROUPS,
    min_gap: float = 0.5,
    factor_units: Callable[[str, Tensor], Tensor] | None = None,
) -> dict:
    """Score style mixing from predictions (the testable core of :func:`style_mixing_score`).

    Args:
        pred_a, pred_b: predictions of A and B (see :func:`factor_predictions`).
        pred_mix: ``{layer group: predictions of the mix that took B's rows of that group}``.
        groups: ``{layer group: factors it should carry}``; factors without predictions are ignored.
        min_gap: smallest |A - B| (standardised units) for a continuous factor to count.
        factor_units: maps a standardised prediction back to natural units for visibility rules; default
            identity (then rules on continuous factors read standardised values).

    Returns:
        ``{"groups": {g: {"score", "moved", "kept", "cases"}}, "factors": {g: {factor: {"expected", "follows",
        "cases"}}}}``; a score is None when it has no cases.
    """
    units = factor_units or (lambda _name, v: v)
    owner = {f: g for g, fs in groups.items() for f in fs}
    result: dict = {"groups": {}, "factors": {}}
    for g, pm in pred_mix.items():
        follows_in, cases_in, follows_out, cases_out = 0, 0, 0, 0
        per_factor: dict[str, dict] = {}
        for f, fg in owner.items():
            if f not in pred_a or f not in pred_b or f not in pm:
                continue
            a, b, m = pred_a[f], pred_b[f], pm[f]
            # Continuous: a clear gap; categorical: a different predicted category.
            informative = (a - b).abs()[:, 0] >= min_gap if a.shape[1] == 1 else a.argmax(1) != b.argmax(1)
            for p in (pred_a, pred_b, pm):
                vis = _visible(f, p, units)
                if vis is not None:
                    informative &= vis
            d_a = (m - a).abs().sum(1)
            d_b = (m - b).abs().sum(1)
            expect_b = fg == g
            ok = (d_b < d_a) if expect_b else (d_a < d_b)
            n_cases = int(informative.sum())
            n_follow = int((ok & informative).sum())
            per_factor[f] = {
                "expected": "B" if expect_b else "A",
                "follows": n_follow / n_cases if n_cases else None,
                "cases": n_cases,
            }
            if expect_b:
                follows_in, cases_in = follows_in + n_follow, cases_in + n_cases
            else:
                follows_out, cases_out = follows_out + n_follow, cases_out + n_cases
        total = cases_in + cases_out
        result["groups"][g] = {
            "score": (follows_in + follows_out) / total if total else None,
            "moved": follows_in / cases_in if cases_in else None,
            "kept": follows_out / cases_out if cases_out else None,
            "cases": total,
        }
        result["factors"][g] = per_factor
    return result


@torch.no_grad()
def _mixed_predictions(
    G: torch.nn.Module,
    classifier: AttributeClassifier,
    rows: Mapping[str, list[int]],
    *,
    n_pairs: int,
    seed: int,
    batch: int,
    progress: Callable[[int, int], None] | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[Predictions, Predictions, dict[str, Predictions], int]:
    """Factor predictions of A, B and, per entry of ``rows``, of A with B's ws rows there (psi = 1, const noise)."""
    from core.models.stylegan import mix_styles

    dev = G.w_avg.device if hasattr(G, "w_avg") else next(G.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    parts_a: list[Predictions] = []
    parts_b: list[Predictions] = []
    parts_m: dict[str, list[Predictions]] = {g: [] for g in rows}
    done = 0
    while done < n_pairs:
        if should_stop is not None and should_stop() and done:
            break
        m = min(batch, n_pairs - done)
        z = torch.randn(2, m, G.cfg.z_dim, generator=gen).to(dev)
        ws_a, ws_b = G.mapping(z[0]), G.mapping(z[1])
        parts_a.append(factor_predictions(classifier, G.synthesis(ws_a, noise_mode="const").clamp(-1, 1)))
        parts_b.append(factor_predictions(classifier, G.synthesis(ws_b, noise_mode="const").clamp(-1, 1)))
        for g, r in rows.items():
            img = G.synthesis(mix_styles(ws_a, ws_b, r), noise_mode="const").clamp(-1, 1)
            parts_m[g].append(factor_predictions(classifier, img))
        done += m
        if progress is not None:
            progress(done, n_pairs)

    def cat(parts: list[Predictions]) -> Predictions:
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    return cat(parts_a), cat(parts_b), {g: cat(p) for g, p in parts_m.items()}, done


def _factor_units(classifier: AttributeClassifier) -> Callable[[str, Tensor], Tensor]:
    """Standardised classifier regression -> the factor's natural units (factors are uniform on their range)."""
    cfg = classifier.cfg
    lo = dict(zip(cfg.factors, (r[0] for r in cfg.factor_ranges), strict=True))
    hi = dict(zip(cfg.factors, (r[1] for r in cfg.factor_ranges), strict=True))

    def units(name: str, v: Tensor) -> Tensor:
        return lo[name] + (hi[name] - lo[name]) * (0.5 + v * (1 / 12) ** 0.5)

    return units


def style_mixing_score(
    G: torch.nn.Module,
    classifier: AttributeClassifier,
    *,
    n_pairs: int = 1000,
    seed: int = 0,
    batch: int = 64,
    min_gap: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Disentanglement by style mixing for a SynthFaces generator (psi = 1, constant noise).

    Args:
        G: generator with ``mapping``, ``synthesis`` and ``layer_groups`` (on any device).
        classifier: SynthFaces attribute classifier (moved to G's device by the caller).
        n_pairs: number of (A, B) pairs.
        seed: seed of the latent pairs.
        batch: pairs per forward pass.
        min_gap: see :func:`mixing_cases`.
        progress: called as ``progress(pairs_done, n_pairs)``.
        should_stop: polled per batch; True stops early and scores the pairs done so far.

    Returns:
        :func:`mixing_cases` output plus ``"n_pairs"`` (pairs scored), ``"rows"`` (ws rows per group) and
        ``"target"``; groups the generator lacks (e.g. no fine rows below 64 px) are left out.
    """
    rows = {g: list(r) for g, r in G.layer_groups.items() if len(r)}
    pred_a, pred_b, pred_mix, done = _mixed_predictions(
        G,
        classifier,
        rows,
        n_pairs=n_pairs,
        seed=seed,
        batch=batch,
        progress=progress,
        should_stop=should_stop,
    )
    res = mixing_cases(pred_a, pred_b, pred_mix, min_gap=min_gap, factor_units=_factor_units(classifier))
    res["n_pairs"] = done
    res["rows"] = rows
    res["target"] = DISENTANGLEMENT_TARGET
    return res


def row_influence(
    G: torch.nn.Module,
    classifier: AttributeClassifier,
    *,
    n_pairs: int = 200,
    seed: int = 0,
    batch: int = 64,
    min_gap: float = 0.5,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Which ws rows carry which factor: the style-mixing test with one row of B at a time.

    For every row r, the mix is A with B's row r only; a counted (pair, factor) case (as in :func:`mixing_cases`)
    *follows B* when the mix's prediction is closer to B's than to A's. A factor decided by one row shows ~1
    there and ~0 elsewhere; one spread over several rows shows a fraction on each.

    Returns:
        ``{"n_pairs", "num_ws", "layer_groups", "follows_b": {factor: [fraction or None per row]},
        "cases": {factor: [counted cases per row]}}``.
    """
    rows = {str(r): [r] for r in range(G.num_ws)}
    pred_a, pred_b, pred_mix, done = _mixed_predictions(
        G, classifier, rows, n_pairs=n_pairs, seed=seed, batch=batch, progress=progress, should_stop=None
    )
    every = tuple(f for fs in FACTOR_GROUPS.values() for f in fs)
    units = _factor_units(classifier)
    follows: dict[str, list[float | None]] = {}
    cases: dict[str, list[int]] = {}
    for r in range(G.num_ws):
        res = mixing_cases(
            pred_a,
            pred_b,
            {"row": pred_mix[str(r)]},
            groups={"row": every},
            min_gap=min_gap,
            factor_units=units,
        )
        for f, v in res["factors"]["row"].items():
            follows.setdefault(f, []).append(v["follows"])
            cases.setdefault(f, []).append(v["cases"])
    return {
        "n_pairs": done,
        "num_ws": G.num_ws,
        "layer_groups": {g: list(r) for g, r in G.layer_groups.items()},
        "follows_b": follows,
        "cases": cases,
    }


def plot_row_influence(report: Mapping, *, title: str = ""):
    """A matplotlib Figure of :func:`row_influence`: factors (rows, grouped as the dataset groups them) against
    ws rows (columns, with the generator's coarse / middle / fine boundaries), shaded by how often the factor
    follows B when only that row is B's."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    follows = report["follows_b"]
    factors = [f for fs in FACTOR_GROUPS.values() for f in fs if f in follows]
    grid = np.array([[np.nan if v is None else v for v in follows[f]] for f in factors], dtype=float)
    fig, ax = plt.subplots(figsize=(1.6 + 0.42 * grid.shape[1], 1.2 + 0.24 * len(factors)), dpi=100)
    im = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(grid.shape[1]))
    ax.set_yticks(range(len(factors)), labels=factors, fontsize=7)
    ax.set_xlabel("ws row taken from B", fontsize=8)
    bounds = 0
    for fs in FACTOR_GROUPS.values():  # dataset groups: separators between the factor blocks
        bounds += sum(f in follows for f in fs)
        if bounds < len(factors):
            ax.axhline(bounds - 0.5, color="white", linewidth=1.5)
    for g, rows in report.get("layer_groups", {}).items():  # generator groups: labels over the columns
        if rows:
            ax.axvline(max(rows) + 0.5, color="white", linewidth=1.5)
            ax.text((min(rows) + max(rows)) / 2, -0.9, g, ha="center", va="bottom", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label="fraction of cases following B")
    if title:
        ax.set_title(title, fontsize=9, pad=22)
    fig.tight_layout()
    return fig
