"""Linear SVM boundaries in latent space (InterFaceGAN, Shen et al. CVPR 2020, Sec. 2.1 and 3.1) and the linear
separability metric (StyleGAN, Karras et al. CVPR 2019, Sec. 4.2).

InterFaceGAN: a binary attribute is (approximately) separated by a hyperplane ``n . x + b = 0`` in latent
space; fit it with a linear SVM on the most confidently labelled samples (the top and bottom ``ratio`` by
classifier score) and edit along the unit normal ``n`` (in Z; in W along ``covariance_edit_vector``, see
``core.directions.edit`` for why).

Linear separability: for each attribute i, fit a linear SVM on latents X to the classifier labels Y_i, let
X_i be the SVM's predicted class and report ``exp(sum_i H(Y_i | X_i))``. H is the conditional entropy (in nats,
so exp is its inverse), i.e. how much information about the true label a linear cut in the space misses.
1 is perfectly separable; lower is better; the StyleGAN paper finds W lower than Z.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from core.errors import InputError

MIN_PER_CLASS = 2


@dataclass(frozen=True)
class SvmFit:
    """A fitted boundary ``n . x + offset = 0`` (x in the space it was fitted in).

    Attributes:
        normal: unit normal ``[D]`` pointing to the positive class.
        offset: intercept in latent units (signed distance = ``n . x + offset``).
        val_accuracy: accuracy on the held-out split.
        train_accuracy: accuracy on the training split.
        num_train / num_val: split sizes; num_pos / num_neg: class counts used.
        scale: standard deviation of ``n . x`` over the fitted latents.
    """

    normal: Tensor
    offset: float
    val_accuracy: float
    train_accuracy: float
    num_train: int
    num_val: int
    num_pos: int
    num_neg: int
    scale: float


def select_confident(scores: Tensor, *, ratio: float = 0.25, threshold: float = 0.5) -> tuple[Tensor, Tensor]:
    """InterFaceGAN's top/bottom selection: the ``ratio`` highest scores as positives, the lowest as negatives.

    Samples on the wrong side of ``threshold`` are dropped from each end, so an attribute rarer than
    ``ratio`` never gets ambiguous samples labelled positive.

    Args:
        scores: ``[N]`` probabilities (or any score where larger means positive).
        ratio: fraction of N taken from each end (0 < ratio <= 0.5; 0.5 keeps everything).
        threshold: decision threshold of the scores.

    Returns:
        ``(indices [M] int64, labels [M] bool)``.

    Raises:
        InputError: ratio out of range.
    """
    if not 0.0 < ratio <= 0.5:
        raise InputError(f"ratio must be in (0, 0.5], got {ratio}")
    s = torch.as_tensor(scores).reshape(-1).float().cpu()
    n = s.numel()
    k = max(1, int(round(ratio * n)))
    order = torch.argsort(s, descending=True, stable=True)
    top = order[:k]
    bottom = order[n - k :] if ratio < 0.5 else order[k:]
    top = top[s[top] > threshold]
    bottom = bottom[s[bottom] <= threshold]
    idx = torch.cat([top, bottom])
    labels = torch.cat(
        [torch.ones(top.numel(), dtype=torch.bool), torch.zeros(bottom.numel(), dtype=torch.bool)]
    )
    return idx, labels


def _as_numpy(x: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float32)


def _check_xy(latents, labels) -> tuple[np.ndarray, np.ndarray]:
    X = _as_numpy(latents)
    X = X.reshape(X.shape[0], -1) if X.ndim > 1 else X
    y = np.asarray(labels.detach().cpu().numpy() if isinstance(labels, Tensor) else labels).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise InputError(f"latents {list(X.shape)} and labels [{y.shape[0]}] do not match")
    if not np.isfinite(X).all():
        raise InputError("latents contain NaN or inf")
    y = y.astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos < MIN_PER_CLASS or neg < MIN_PER_CLASS:
        raise InputError(
            f"need at least {MIN_PER_CLASS} positive and {MIN_PER_CLASS} negative samples, got {pos} and {neg}"
        )
    return X, y


def _linear_svc(C: float, max_iter: int, seed: int):
    from sklearn.svm import LinearSVC

    return LinearSVC(C=C, dual="auto", max_iter=max_iter, random_state=seed)


def fit_svm(
    latents: Tensor | np.ndarray,
    labels: Tensor | np.ndarray | Sequence[bool],
    *,
    val_fraction: float = 0.2,
    C: float = 1.0,
    seed: int = 0,
    max_iter: int = 2000,
) -> SvmFit:
    """Fit a linear SVM boundary on a stratified train/validation split.

    Latents are centred and divided by one global standard deviation before fitting (an isotropic rescale, so
    the max-margin geometry is that of the latent space itself) and the boundary is mapped back to latent
    units.

    Args:
        latents: ``[N, D]`` (or ``[N, ...]``, flattened).
        labels: ``[N]`` booleans (True = attribute present).
        val_fraction: held-out fraction per class (0 = no validation; val_accuracy is then train accuracy).
        C: SVM regularisation (sklearn ``LinearSVC``).
        seed: shuffling seed of the split.
        max_iter: solver iterations.

    Returns:
        ``SvmFit`` with the unit normal, offset and accuracies.

    Raises:
        InputError: mismatched shapes, non-finite latents, fewer than 2 samples of a class.
    """
    X, y = _check_xy(latents, labels)
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    val_mask = np.zeros(len(y), dtype=bool)
    if val_fraction > 0:
        for cls in (True, False):
            idx = np.flatnonzero(y == cls)
            rng.shuffle(idx)
            k = min(len(idx) - 1, int(round(val_fraction * len(idx))))
            val_mask[idx[:k]] = True
    Xtr, ytr = X[~val_mask], y[~val_mask]
    mu = Xtr.mean(0)
    sd = float(Xtr.std()) or 1.0
    clf = _linear_svc(C, max_iter, seed)
    with warnings.catch_warnings():
        # Not converging within max_iter still gives a usable boundary; the accuracies tell how good it is.
        warnings.simplefilter("ignore")
        clf.fit((Xtr - mu) / sd, ytr)
    w = clf.coef_.reshape(-1).astype(np.float64)
    b = float(clf.intercept_[0])
    wn = float(np.linalg.norm(w))
    if wn == 0.0:
        raise InputError("the SVM found no boundary (all weights zero): the labels carry no linear signal")
    # f(x) = w . (x - mu) / sd + b  ->  unit normal n = w/|w|, offset in latent units = (b*sd - w . mu)/|w|
    normal = w / wn
    offset = (b * sd - float(w @ mu)) / wn

    def acc(Xs: np.ndarray, ys: np.ndarray) -> float:
        return float(((Xs @ normal + offset > 0) == ys).mean()) if len(ys) else float("nan")

    train_acc = acc(Xtr, ytr)
    val_acc = acc(X[val_mask], y[val_mask]) if val_mask.any() else train_acc
    return SvmFit(
        normal=torch.from_numpy(normal.astype(np.float32)),
        offset=float(offset),
        val_accuracy=val_acc,
        train_accuracy=train_acc,
        num_train=int((~val_mask).sum()),
        num_val=int(val_mask.sum()),
        num_pos=int(y.sum()),
        num_neg=int((~y).sum()),
        scale=float((X @ normal).std()),
    )


def conditional_entropy(y: np.ndarray | Tensor, x: np.ndarray | Tensor) -> float:
    """H(Y | X) in nats for two binary (or small-integer) label vectors of equal length."""
    y = np.asarray(y.cpu() if isinstance(y, Tensor) else y).astype(np.int64).reshape(-1)
    x = np.asarray(x.cpu() if isinstance(x, Tensor) else x).astype(np.int64).reshape(-1)
    if y.shape != x.shape or not len(y):
        raise InputError("conditional_entropy: y and x must be non-empty and of equal length")
    h = 0.0
    for xv in np.unique(x):
        sel = y[x == xv]
        px = len(sel) / len(y)
        _, counts = np.unique(sel, return_counts=True)
        p = counts / counts.sum()
        h += px * float(-(p * np.log(p)).sum())
    return h


@dataclass(frozen=True)
class Separability:
    """Linear separability of one latent space: ``score = exp(sum of per-attribute H(Y|X))``."""

    score: float
    entropies: dict[str, float]
    accuracies: dict[str, float]


def linear_separability(
    latents: Tensor | np.ndarray,
    scores: Tensor | np.ndarray,
    attributes: Sequence[str],
    *,
    keep: float = 0.5,
    C: float = 1.0,
    seed: int = 0,
    max_iter: int = 2000,
    progress: Callable[[int, int, str], None] | None = None,
) -> Separability:
    """The StyleGAN paper's separability metric for one space.

    Per attribute: keep the ``keep`` fraction of samples with the most confident classifier scores (the paper
    keeps the best 100k of 200k), label them by score > 0.5, fit a linear SVM on the latents and compare its
    predictions to the labels through H(Y|X). Attributes with fewer than 2 samples of a class after selection
    get H(Y)=0 (nothing to separate) and are reported with accuracy 1.

    Args:
        latents: ``[N, D]`` latents in the space to measure (z, or w).
        scores: ``[N, A]`` classifier probabilities, columns in ``attributes`` order.
        attributes: attribute names.
        keep: fraction of most confident samples kept per attribute.
        progress: ``progress(done, total, attribute)``.

    Returns:
        ``Separability`` with the score and per-attribute conditional entropies and SVM accuracies.
    """
    X = _as_numpy(latents).reshape(len(latents), -1)
    S = _as_numpy(scores)
    if S.ndim != 2 or S.shape != (X.shape[0], len(attributes)):
        raise InputError(f"scores must be [{X.shape[0]}, {len(attributes)}], got {list(S.shape)}")
    if not 0.0 < keep <= 1.0:
        raise InputError(f"keep must be in (0, 1], got {keep}")
    k = max(2, int(round(keep * X.shape[0])))
    mu, sd = X.mean(0), float(X.std()) or 1.0
    Xn = (X - mu) / sd
    ents: dict[str, float] = {}
    accs: dict[str, float] = {}
    for i, name in enumerate(attributes):
        conf = np.abs(S[:, i] - 0.5)
        idx = np.argsort(-conf, kind="stable")[:k]
        y = S[idx, i] > 0.5
        if y.sum() < MIN_PER_CLASS or (~y).sum() < MIN_PER_CLASS:
            ents[name], accs[name] = 0.0, 1.0
        else:
            clf = _linear_svc(C, max_iter, seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.fit(Xn[idx], y)
            pred = clf.predict(Xn[idx]).astype(bool)
            ents[name] = conditional_entropy(y, pred)
            accs[name] = float((pred == y).mean())
        if progress is not None:
            progress(i + 1, len(attributes), name)
    return Separability(score=float(math.exp(sum(ents.values()))), entropies=ents, accuracies=accs)


def fit_attribute(
    latents: Tensor,
    scores: Tensor,
    *,
    ratio: float = 0.25,
    val_fraction: float = 0.2,
    C: float = 1.0,
    seed: int = 0,
    threshold: float | str = 0.5,
) -> SvmFit:
    """``select_confident`` then ``fit_svm``: the InterFaceGAN recipe for one attribute column ``scores [N]``.

    ``threshold``: the score that separates the classes, 0.5 for probabilities; ``"median"`` splits a
    continuous score (a factor's value) at the median of the samples, so its two ends are kept whatever the
    generator's distribution of it.
    """
    if threshold == "median":
        threshold = float(torch.as_tensor(scores).float().median())
    elif isinstance(threshold, str):
        raise InputError(f"threshold must be a number or 'median', got {threshold!r}")
    idx, labels = select_confident(scores, ratio=ratio, threshold=threshold)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos < MIN_PER_CLASS or neg < MIN_PER_CLASS:
        n = int(torch.as_tensor(scores).numel())
        raise InputError(
            f"only {pos} confident positive and {neg} negative samples among {n} (score above / below "
            f"{threshold:.3g}): sample more, raise the ratio, or check the classifier"
        )
    return fit_svm(latents[idx], labels, val_fraction=val_fraction, C=C, seed=seed)


def label_correlation(scores: Tensor, attributes: Sequence[str]) -> Mapping[tuple[str, str], float]:
    """Pearson correlation of binarised labels for every attribute pair (used to find related attributes)."""
    Y = (torch.as_tensor(scores).float() > 0.5).double()
    Y = Y - Y.mean(0)
    sd = Y.norm(dim=0).clamp_min(1e-12)
    corr = (Y.T @ Y) / (sd[:, None] * sd[None, :])
    return {
        (a, b): float(corr[i, j])
        for i, a in enumerate(attributes)
        for j, b in enumerate(attributes)
        if i != j
    }


def covariance_edit_vector(normal: Tensor, covariance: Tensor) -> Tensor:
    """The edit direction ``S n / (n^T S n)`` of a boundary normal ``n`` under latent covariance ``S``.

    Of all steps that change the signed distance ``n . x`` by one, it is the shortest in the Mahalanobis
    metric of the latent distribution (the "most typical" way across the boundary); for isotropic latents it is
    ``n`` itself. ``normal`` is ``[D]`` or ``[num_ws, D]`` (W+: the covariance of one row, applied per row);
    ``covariance`` is ``[D, D]``.

    Raises:
        InputError: shapes do not match, or the covariance is not positive along ``n``.
    """
    n = torch.as_tensor(normal).double()
    S = torch.as_tensor(covariance).double()
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] != n.shape[-1]:
        raise InputError(f"covariance {list(S.shape)} does not fit a normal of shape {list(n.shape)}")
    v = n @ S  # S is symmetric: row-wise S n
    along = float((v * n).sum())
    if not math.isfinite(along) or along <= 1e-12 * float(S.diagonal().sum()):
        raise InputError("the latent covariance has no variance along this normal")
    return (v / along).to(torch.float32)


def latent_covariance(latents: Tensor) -> Tensor:
    """Covariance ``[D, D]`` (float64) of latent rows ``[N, D]`` (W+ samples: pass ``w.reshape(-1, w_dim)``)."""
    X = torch.as_tensor(latents).double().reshape(-1, latents.shape[-1])
    if X.shape[0] < 2:
        raise InputError("a covariance needs at least 2 latents")
    return torch.cov(X.T).reshape(X.shape[1], X.shape[1])


def direction_from_fit(
    fit: SvmFit,
    name: str,
    *,
    space: str = "w",
    num_ws: int | None = None,
    method: str = "svm",
    attribute: str | None = None,
    rows: Sequence[int] | None = None,
    meta: Mapping | None = None,
    covariance: Tensor | None = None,
):
    """Wrap an ``SvmFit`` as an editing ``Direction`` (W+ normals are reshaped to ``[num_ws, w_dim]``).

    With ``covariance`` (of the W rows; ignored in Z, which is isotropic) the direction edits along
    ``covariance_edit_vector`` and keeps the SVM normal as its boundary.
    """
    from core.directions.edit import Direction

    vec = fit.normal
    if space == "w+":
        if not num_ws:
            raise InputError("a W+ direction needs num_ws")
        vec = vec.reshape(num_ws, -1)
    normal = None
    if covariance is not None and space != "z":
        normal, vec = vec, covariance_edit_vector(vec, covariance)
    info = {
        "train_accuracy": fit.train_accuracy,
        "num_train": fit.num_train,
        "num_val": fit.num_val,
        "num_pos": fit.num_pos,
        "num_neg": fit.num_neg,
        "edit": "covariance" if normal is not None else "normal",
    }
    info.update(meta or {})
    return Direction(
        name=name,
        vector=vec,
        space=space,
        rows=None if rows is None else tuple(rows),
        method=method,
        offset=fit.offset,
        accuracy=fit.val_accuracy,
        scale=fit.scale,
        attribute=attribute,
        meta=info,
        normal=normal,
    )


def fit_attribute_direction(
    samples,
    attribute: str,
    *,
    space: str | None = None,
    name: str | None = None,
    ratio: float = 0.25,
    val_fraction: float = 0.2,
    C: float = 1.0,
    seed: int = 0,
    num_ws: int | None = None,
    method: str = "svm",
    covariance: Tensor | str | None = "samples",
    threshold: float | str = 0.5,
):
    """Fit the InterFaceGAN direction of one attribute column of ``LatentSamples``.

    Args:
        samples: ``core.directions.collect.LatentSamples`` with scores.
        attribute: column name.
        space: "z", "w" or "w+" (default: the space the samples were drawn in).
        ratio: top/bottom fraction used (``select_confident``).
        num_ws: model rows (needed for "w+").
        threshold: class boundary of the scores (``fit_attribute``; "median" for continuous factors).
        covariance: of W, for the edit vector (``covariance_edit_vector``): a ``[w_dim, w_dim]`` tensor (e.g.
            ``core.directions.collect.w_covariance(G)``), "samples" to estimate it from ``samples`` when they hold
            at least ``4 * w_dim`` W rows (else the edit is the normal), or None for the plain normal.

    Returns:
        ``Direction`` named ``name`` (default: the attribute), with val accuracy and offset.
    """
    space = space or samples.space
    if space == "w+" and num_ws is None:
        num_ws = samples.w.shape[1]
    X = samples.latents(space)
    scores = samples.column(attribute)
    fit = fit_attribute(
        X, scores, ratio=ratio, val_fraction=val_fraction, C=C, seed=seed, threshold=threshold
    )
    if isinstance(covariance, str):
        if covariance != "samples":
            raise InputError(f"covariance must be a tensor, 'samples' or None, got {covariance!r}")
        rows = samples.w.reshape(-1, samples.w.shape[-1])
        covariance = latent_covariance(rows) if rows.shape[0] >= 4 * rows.shape[1] else None
    return direction_from_fit(
        fit,
        name or attribute,
        space=space,
        num_ws=num_ws,
        method=method,
        attribute=attribute,
        meta={"samples": len(samples), "ratio": ratio, "truncation_psi": samples.truncation_psi}
        | ({} if threshold == 0.5 else {"threshold": threshold}),
        covariance=covariance,
    )
