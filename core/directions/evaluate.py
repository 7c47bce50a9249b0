"""How good are the directions? Edit success, side effects and linear separability Z vs W.

* Edit success (InterFaceGAN, Shen et al. CVPR 2020, Sec. 3.2 "manipulation"): move fresh samples across the
  boundary to the far side (signed distance ``-sign * k * scale``, k = ``distance``) along the direction and
  count how often the classifier's label flips.
* Side effects: the mean absolute change of every other attribute's probability under the same edit. With
  conditional manipulation (Sec. 2.3) the direction is first made orthogonal to the other attributes' normals,
  which keeps their signed distances fixed. Attributes derived from the same underlying factor (smiling vs
  frowning) are "related": they must change together, so they are neither conditions nor side effects. They
  are found from the data: |label correlation| above ``related_threshold``.
* Separability: the StyleGAN paper's ``exp(sum_i H(Y_i|X_i))`` in Z and in W (Karras et al. 2019, Sec. 4.2).

``fit_all`` does everything in one call: collect, fit every attribute, evaluate, and return the direction set
and a JSON-able report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from core.directions.collect import LatentSamples, Scorer, collect, score_ws, w_covariance
from core.directions.edit import Direction, DirectionSet
from core.directions.svm import fit_attribute_direction, label_correlation, linear_separability
from core.errors import InputError

Progress = Callable[[str, int, int], None]


@dataclass
class EditReport:
    """Result of one edit evaluation (fractions and probabilities in [0, 1])."""

    success: float
    side_effects: dict[str, float] = field(default_factory=dict)
    num_samples: int = 0

    @property
    def max_side_effect(self) -> float:
        return max(self.side_effects.values(), default=0.0)

    @property
    def mean_side_effect(self) -> float:
        return sum(self.side_effects.values()) / len(self.side_effects) if self.side_effects else 0.0


def edit_to_far_side(
    ws: Tensor, boundary: Direction, move: Direction, labels: Tensor, *, distance: float
) -> Tensor:
    """Move each sample along ``move`` until ``boundary``'s signed distance is ``-+distance * boundary.scale``.

    Positive samples go to the negative side and vice versa. ``move`` may be a conditioned or row-restricted
    variant of ``boundary``; the step is ``(target - d) / (n_boundary . v_move)``.
    """
    d = boundary.distance(ws)
    target = torch.where(labels.to(ws.device), -1.0, 1.0) * distance * boundary.scale
    delta = move.apply(ws, 1.0) - ws  # the per-unit-strength change, rows mask included
    along = boundary.distance(ws + delta) - d  # n_boundary . v_move (as seen by the boundary)
    if float(along.abs().min()) < 1e-6:
        raise InputError(f"direction {move.name!r} does not move across the boundary of {boundary.name!r}")
    alpha = (target - d) / along
    return ws + alpha[:, None, None] * delta


@torch.no_grad()
def evaluate_edit(
    G: torch.nn.Module,
    scorer: Scorer,
    ws: Tensor,
    base_scores: Tensor,
    boundary: Direction,
    *,
    move: Direction | None = None,
    exclude: Sequence[str] = (),
    distance: float = 2.0,
    batch_size: int = 64,
) -> EditReport:
    """Edit success and side effects of one direction on given samples.

    Args:
        ws: ``[N, num_ws, w_dim]`` fresh samples; base_scores ``[N, A]`` their classifier probabilities.
        boundary: the attribute's SVM direction (``attribute`` must be a scorer column).
        move: the direction actually moved along (default: ``boundary``), e.g. a conditioned variant.
        exclude: attributes left out of the side effects (related ones).
        distance: how far past the boundary, in units of ``boundary.scale``.
    """
    names = list(scorer.attributes)
    if boundary.attribute not in names:
        raise InputError(f"direction {boundary.name!r} has no classifier attribute to check")
    i = names.index(boundary.attribute)
    labels = base_scores[:, i] > 0.5
    edited = edit_to_far_side(ws, boundary, move or boundary, labels, distance=distance)
    new = score_ws(G, scorer, edited, batch_size=batch_size)
    success = float(((new[:, i] > 0.5) != labels).float().mean())
    side = {
        a: float((new[:, j] - base_scores[:, j]).abs().mean())
        for j, a in enumerate(names)
        if a != boundary.attribute and a not in exclude
    }
    return EditReport(success=success, side_effects=side, num_samples=ws.shape[0])


def related_attributes(
    scores: Tensor, attributes: Sequence[str], *, threshold: float = 0.15
) -> dict[str, list[str]]:
    """Attributes whose labels correlate with each other (|r| > threshold): same factor, not side effects."""
    corr = label_correlation(scores, attributes)
    return {a: [b for b in attributes if b != a and abs(corr[(a, b)]) > threshold] for a in attributes}


def separability_z_vs_w(samples: LatentSamples, *, keep: float = 0.5, seed: int = 0) -> dict:
    """The StyleGAN paper's linear separability of the same samples in Z and in W (lower is better)."""
    out = {}
    for space in ("z", "w"):
        sep = linear_separability(
            samples.latents(space), samples.scores, samples.attributes, keep=keep, seed=seed
        )
        out[space] = {"score": sep.score, "entropies": sep.entropies, "accuracies": sep.accuracies}
    return out


def fit_all(
    G: torch.nn.Module,
    scorer: Scorer,
    *,
    samples: int = 10_000,
    eval_samples: int = 1000,
    seed: int = 0,
    ratio: float = 0.25,
    truncation_psi: float = 1.0,
    distance: float = 2.0,
    related_threshold: float = 0.15,
    attributes: Sequence[str] | None = None,
    batch_size: int = 64,
    model_hash: str | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[DirectionSet, dict]:
    """Fit, evaluate and package a direction for every attribute of ``scorer``.

    Args:
        G: generator; scorer: attribute classifier (probabilities).
        samples: latents collected for fitting (recipe seeds ``seed..seed+samples-1``).
        eval_samples: fresh latents for edit success and side effects (seeds after the fitting ones).
        ratio: InterFaceGAN top/bottom fraction.
        distance: how far past the boundary the evaluation edits go (units of the direction's scale).
        related_threshold: |label correlation| above which two attributes count as related.
        attributes: subset of the scorer's attributes (default: all).
        progress: ``progress(stage, done, total)``; should_stop: polled between stages and batches.

    Returns:
        ``(DirectionSet, report)``; the report is JSON-able: per-attribute val_accuracy, edit_success,
        edit_success_conditional, side effects (plain and conditional), related attributes, separability
        in Z and W and a summary of the targets.

    Raises:
        InputError: stopped by ``should_stop`` before anything was fitted, or unknown attributes.
    """
    timings: dict[str, float] = {}
    names = list(attributes or scorer.attributes)
    unknown = [a for a in names if a not in scorer.attributes]
    if unknown:
        raise InputError(
            f"unknown attribute {unknown[0]!r}; the classifier knows {', '.join(scorer.attributes)}"
        )

    def report(stage: str) -> Callable[[int, int], None] | None:
        return None if progress is None else (lambda d, t: progress(stage, d, t))

    t0 = time.perf_counter()
    data = collect(
        G, scorer, samples, seed=seed, space="w", truncation_psi=truncation_psi, batch_size=batch_size,
        progress=report("collect"), should_stop=should_stop,
    )  # fmt: skip
    timings["collect_s"] = time.perf_counter() - t0
    if len(data) < samples:
        raise InputError(f"stopped after collecting {len(data)} of {samples} samples")
    related = related_attributes(data.scores, scorer.attributes, threshold=related_threshold)

    t0 = time.perf_counter()
    dirs = DirectionSet(
        model_hash=model_hash,
        num_ws=G.num_ws,
        layer_groups=G.layer_groups,
        meta={"samples": samples, "ratio": ratio, "truncation_psi": truncation_psi, "seed": seed},
    )
    per: dict[str, dict] = {}
    cov = w_covariance(G, seed=seed)
    for k, a in enumerate(names):
        try:
            d = fit_attribute_direction(data, a, space="w", ratio=ratio, seed=seed, covariance=cov)
        except InputError as e:
            per[a] = {"error": str(e)}
            continue
        dirs.add(d)
        per[a] = {"val_accuracy": d.accuracy, "positive_rate": float((data.column(a) > 0.5).float().mean())}
        if progress is not None:
            progress("fit", k + 1, len(names))
    timings["fit_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sep = separability_z_vs_w(data, seed=seed)
    timings["separability_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ev = collect(G, scorer, eval_samples, seed=seed + samples, space="w", truncation_psi=truncation_psi,
                 batch_size=batch_size)  # fmt: skip
    ws = ev.ws(G.num_ws)
    fitted = [a for a in names if a in dirs]
    conditions: dict[str, list[str]] = {}
    for k, a in enumerate(fitted):
        if should_stop is not None and should_stop():
            break
        d = dirs[a]
        rel = [r for r in related[a] if r in scorer.attributes]
        conds = [c for c in fitted if c != a and c not in rel]
        conditions[a] = conds
        plain = evaluate_edit(
            G, scorer, ws, ev.scores, d, exclude=rel, distance=distance, batch_size=batch_size
        )
        per[a].update(edit_success=plain.success, side_effect_max=plain.max_side_effect,
                      side_effect_mean=plain.mean_side_effect, related=rel)  # fmt: skip
        d.meta["edit_success"] = plain.success  # travels with the direction: the UI shows how well it edits
        try:
            cd = d.conditioned([dirs[c] for c in conds])
            cond = evaluate_edit(
                G, scorer, ws, ev.scores, d, move=cd, exclude=rel, distance=distance, batch_size=batch_size
            )
            per[a].update(
                edit_success_conditional=cond.success,
                side_effect_conditional_max=cond.max_side_effect,
                side_effect_conditional_mean=cond.mean_side_effect,
                side_effects_conditional=cond.side_effects,
                conditioned_on=conds,
            )
            d.meta["edit_success_conditional"] = cond.success
        except InputError as e:
            per[a]["conditional_error"] = str(e)
        if progress is not None:
            progress("evaluate", k + 1, len(fitted))
    timings["evaluate_s"] = time.perf_counter() - t0
    dirs.meta["conditions"] = conditions
    dirs.meta["related"] = {a: related[a] for a in fitted}

    ok = [p for p in per.values() if "edit_success" in p]
    summary = {
        "val_accuracy_min": min((p["val_accuracy"] for p in ok), default=None),
        "edit_success_min": min((p["edit_success"] for p in ok), default=None),
        "edit_success_conditional_min": min(
            (p.get("edit_success_conditional", 0.0) for p in ok), default=None
        ),
        "side_effect_conditional_max": max(
            (p.get("side_effect_conditional_max", 1.0) for p in ok), default=None
        ),
        "separability_z": sep["z"]["score"],
        "separability_w": sep["w"]["score"],
    }
    summary["targets_met"] = {
        "val_accuracy>=0.9": summary["val_accuracy_min"] is not None and summary["val_accuracy_min"] >= 0.9,
        "edit_success>=0.9": summary["edit_success_min"] is not None and summary["edit_success_min"] >= 0.9,
        "side_effects_conditional<=0.1": summary["side_effect_conditional_max"] is not None
        and summary["side_effect_conditional_max"] <= 0.1,
        "separability_w<z": sep["w"]["score"] < sep["z"]["score"],
        "all_attributes_fitted": len(ok) == len(names),
    }
    result = {
        "samples": samples,
        "eval_samples": eval_samples,
        "space": "w",
        "ratio": ratio,
        "distance": distance,
        "attributes": per,
        "separability": sep,
        "summary": summary,
        "timings": timings,
    }
    return dirs, result
