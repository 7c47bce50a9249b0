"""Collecting labelled latents for direction fitting (InterFaceGAN, Shen et al. CVPR 2020, Sec. 3.1).

Sample N latents from seeds, map them to W (or W+ with an independent z per ws row), render them and score
every image with an attribute classifier; or take labels from a person (clicked images in the UI, or a CSV of
``seed,label``). Seeds follow ``core.render.seed_to_z``, so sample i of a W collection with base seed s is
exactly the image of recipe seed ``s + i``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from core.errors import InputError

MAX_LABEL_FILE_BYTES = 10 * 1024 * 1024
MAX_LABEL_ROWS = 1_000_000
_POSITIVE = {"1", "yes", "y", "true", "t", "pos", "positive", "+"}
_NEGATIVE = {"0", "no", "n", "false", "f", "neg", "negative", "-", "-1"}


class Scorer(Protocol):
    """Anything that scores images: ``scorer(images [N, 3, H, W] in [-1, 1]) -> probabilities [N, A]``."""

    attributes: tuple[str, ...]

    def __call__(self, images: Tensor) -> Tensor: ...


def _first_attr(obj, names: Sequence[str]):
    for n in names:
        v = getattr(obj, n, None)
        if v is not None:
            return v
    return None


class ClassifierScorer:
    """Wraps ``core.models.classifier.AttributeClassifier``: sigmoid of its binary-attribute logits.

    ``factors`` adds columns for continuous factors the classifier regresses (``roll``, ``smile``, ...): the
    predicted value as a fraction of the factor's range, clipped to [0, 1], so 0.5 is the middle of the range
    (``roll`` 0: an upright head). InterFaceGAN's top/bottom selection then keeps the two ends of the range,
    and the SVM finds a direction along the factor -- the way to edit a factor that a binary attribute
    describes only by its magnitude (``tilted_head`` is ``|roll| > 0.5``: both ends are positive, so no single
    hyperplane separates it, while ``roll`` is linear).

    Images are resized (bilinear, antialiased) to the classifier's input resolution when it differs.
    """

    def __init__(
        self,
        classifier: torch.nn.Module,
        attributes: Sequence[str] | None = None,
        *,
        factors: Sequence[str] = (),
    ):
        self.classifier = classifier
        cfg = getattr(classifier, "cfg", None)
        names = attributes or _first_attr(cfg, ("attributes", "binary_attributes", "attribute_names"))
        names = names or _first_attr(classifier, ("attributes", "binary_attributes", "attribute_names"))
        if not names:
            raise InputError("the attribute classifier does not list its attribute names")
        self.binary = tuple(str(a) for a in names)
        known = self.available_factors
        bad = [f for f in factors if f not in known]
        if bad:
            raise InputError(
                f"unknown continuous factor {bad[0]!r}; the classifier regresses "
                f"{', '.join(known) if known else 'no factors'}"
            )
        self.factors = tuple(dict.fromkeys(factors))
        self.attributes = self.binary + self.factors
        res = _first_attr(cfg, ("img_resolution", "resolution", "input_resolution"))
        self.resolution = int(res) if res else None

    @property
    def available_factors(self) -> tuple[str, ...]:
        """Column names of the continuous factors the classifier regresses (usable as ``factors``).

        A factor named like a binary attribute (SynthFaces' ``mouth_open`` is both) gets the suffix ``_value``.
        """
        cfg = getattr(self.classifier, "cfg", None)
        if not hasattr(self.classifier, "factor_low"):
            return ()
        return tuple(
            f"{f}_value" if f in self.binary else str(f) for f in (getattr(cfg, "factors", None) or ())
        )

    def with_factors(self, factors: Sequence[str]) -> ClassifierScorer:
        """The same classifier, scoring the binary attributes plus the given continuous factors."""
        return ClassifierScorer(self.classifier, self.binary, factors=factors)

    def for_column(self, name: str | None) -> ClassifierScorer:
        """This scorer, or one with ``name`` added when it is a continuous factor it does not score yet."""
        if name and name not in self.attributes and name in self.available_factors:
            return self.with_factors([*self.factors, name])
        return self

    def threshold_of(self, name: str) -> float | str:
        """Where ``fit_attribute_direction`` splits the column: 0.5 for probabilities, the median for factors."""
        return "median" if name in self.factors else 0.5

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        return self.score(images)

    def score(self, images: Tensor) -> Tensor:
        """``self(images)`` with autograd left on (gradient-guided edits differentiate through it)."""
        p = next(self.classifier.parameters(), None)
        x = images.to(p.device if p is not None else images.device).float()
        if self.resolution and x.shape[-1] != self.resolution and not hasattr(self.classifier, "prepare"):
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", antialias=True)
        out = self.classifier(x)
        logits = out["logits"] if isinstance(out, dict) else out
        if logits.shape[1] != len(self.binary):
            raise InputError(
                f"the classifier returns {logits.shape[1]} logits but lists {len(self.binary)} attributes"
            )
        probs = torch.sigmoid(logits.float())
        if not self.factors:
            return probs
        idx = [self.available_factors.index(f) for f in self.factors]
        c = self.classifier
        fraction = (out["regression"].float()[:, idx] - c.factor_low[idx]) / c.factor_span[idx]
        return torch.cat([probs, fraction.clamp(0.0, 1.0)], dim=1)


def load_scorer(
    path: str | os.PathLike, *, device: str | torch.device = "cpu", factors: Sequence[str] = ()
) -> ClassifierScorer:
    """Load an attribute classifier checkpoint (native safetensors) as a scorer (``factors``: see ClassifierScorer).

    Raises:
        CheckpointError: not an attribute-classifier file.
    """
    from core.checkpoints.native import load_module, load_state_dict_checked, read_metadata
    from core.models import ARCHITECTURES

    if "attribute-classifier" in ARCHITECTURES:
        return ClassifierScorer(
            load_module(path, device=device, expect=("attribute-classifier",)), factors=factors
        )
    # The classifier is not registered in core.models yet: rebuild it the same way load_module would.
    import json

    from safetensors.torch import load_file

    from core.errors import CheckpointError
    from core.models.classifier import AttributeClassifier, ClassifierConfig

    meta = read_metadata(path)
    if meta.get("arch") != "attribute-classifier":
        raise CheckpointError(f"{path}: holds a {meta.get('arch')!r} model, expected an attribute-classifier")
    try:
        cfg = ClassifierConfig.from_dict(json.loads(meta["config"]))
        tensors = load_file(str(path), device="cpu")
    except (KeyError, ValueError, TypeError, OSError, RuntimeError) as e:
        raise CheckpointError(f"{path}: invalid attribute-classifier file ({e})") from None
    module = AttributeClassifier(cfg)  # not on "meta": its non-persistent buffers come from the config
    load_state_dict_checked(module, tensors, path)
    return ClassifierScorer(module.to(device).eval().requires_grad_(False), factors=factors)


@dataclass
class LatentSamples:
    """Sampled latents and their labels.

    Attributes:
        space: "z", "w" or "w+" (how they were sampled; "z" and "w" hold the same z and w).
        z: ``[N, z_dim]``, or ``[N, num_ws, z_dim]`` for "w+" (one z per ws row).
        w: ``[N, w_dim]``, or ``[N, num_ws, w_dim]`` for "w+".
        scores: ``[N, A]`` classifier probabilities (or 0/1 user labels, A = 1), or None.
        attributes: names of the score columns.
        seeds: ``[N]`` int64 recipe seeds (None for "w+").
        truncation_psi: truncation used when mapping.
    """

    space: str
    z: Tensor
    w: Tensor
    scores: Tensor | None = None
    attributes: tuple[str, ...] = ()
    seeds: Tensor | None = None
    truncation_psi: float = 1.0

    def __len__(self) -> int:
        return self.z.shape[0]

    def latents(self, space: str | None = None) -> Tensor:
        """Features for an SVM: ``[N, D]`` in ``space`` (default: the sampled one; "w+" is flattened)."""
        space = space or self.space
        if space == "z":
            return self.z.reshape(len(self), -1) if self.space != "w+" else self.z[:, 0]
        if space == "w":
            return self.w if self.w.ndim == 2 else self.w[:, 0]
        if space == "w+":
            if self.w.ndim != 3:
                raise InputError("these samples were drawn in W; sample in W+ to fit W+ directions")
            return self.w.reshape(len(self), -1)
        raise InputError(f"unknown space {space!r}")

    def ws(self, num_ws: int) -> Tensor:
        """``[N, num_ws, w_dim]`` latents for synthesis."""
        return self.w if self.w.ndim == 3 else self.w[:, None].expand(-1, num_ws, -1)

    def column(self, attribute: str) -> Tensor:
        """Scores ``[N]`` of one attribute. Raises InputError for unknown names."""
        if self.scores is None:
            raise InputError("these samples have no labels yet")
        if attribute not in self.attributes:
            raise InputError(f"unknown attribute {attribute!r}; known: {', '.join(self.attributes)}")
        return self.scores[:, self.attributes.index(attribute)]

    def subset(self, idx: Tensor) -> LatentSamples:
        return LatentSamples(
            self.space,
            self.z[idx],
            self.w[idx],
            None if self.scores is None else self.scores[idx],
            self.attributes,
            None if self.seeds is None else self.seeds[idx],
            self.truncation_psi,
        )


@torch.no_grad()
def sample_latents(
    G: torch.nn.Module,
    n: int,
    *,
    seed: int = 0,
    seeds: Sequence[int] | None = None,
    space: str = "w",
    truncation_psi: float = 1.0,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> LatentSamples:
    """Sample latents without rendering.

    Args:
        G: generator (``mapping``, ``z_dim``, ``num_ws``).
        n: number of samples (ignored when ``seeds`` is given).
        seed: base seed; sample i uses recipe seed ``seed + i`` ("z"/"w") or a generator seeded with ``seed``.
        seeds: explicit recipe seeds ("z"/"w" only).
        space: "z", "w" or "w+" (W+ with an independent z for every ws row).
        truncation_psi: truncation in W (towards ``G.w_avg``).
        device: where mapping runs (default: the generator's device). Latents are returned on the CPU.

    Raises:
        InputError: unknown space, bad n.
    """
    from core.render import seed_to_z

    if space not in ("z", "w", "w+"):
        raise InputError(f"space must be z, w or w+, got {space!r}")
    device = torch.device(device) if device is not None else G.w_avg.device
    if seeds is not None:
        if space == "w+":
            raise InputError("W+ samples draw one z per row and cannot be given as recipe seeds")
        seed_list = [int(s) for s in seeds]
    else:
        if n < 1:
            raise InputError(f"number of samples must be positive, got {n}")
        seed_list = list(range(seed, seed + n)) if space != "w+" else []
    if space == "w+":
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(n, G.num_ws, G.z_dim, generator=gen)
    else:
        z = torch.cat([seed_to_z(s, G.z_dim) for s in seed_list]) if seed_list else torch.zeros(0, G.z_dim)
    flat = z.reshape(-1, G.z_dim)
    w = torch.cat(
        [
            G.mapping(flat[i : i + batch_size].to(device), None, truncation_psi=truncation_psi)[:, 0].cpu()
            for i in range(0, flat.shape[0], batch_size)
        ]
    )
    w = w.reshape(*z.shape[:-1], G.w_dim)
    return LatentSamples(
        space=space,
        z=z,
        w=w,
        seeds=torch.tensor(seed_list, dtype=torch.int64) if seed_list else None,
        truncation_psi=truncation_psi,
    )


@torch.no_grad()
def w_covariance(
    G: torch.nn.Module, n: int = 10000, *, seed: int = 0, device: str | torch.device | None = None
) -> Tensor:
    """Covariance ``[w_dim, w_dim]`` (float64, CPU) of the model's W from ``n`` mapped samples (no rendering).

    The edit vectors of SVM directions need it (``core.directions.svm.covariance_edit_vector``); estimating it
    from the model keeps a direction fitted on a handful of user-labelled seeds on the same footing.
    """
    from core.directions.svm import latent_covariance

    return latent_covariance(sample_latents(G, n, seed=seed, device=device).w)


@torch.no_grad()
def score_ws(
    G: torch.nn.Module,
    scorer: Scorer,
    ws: Tensor,
    *,
    batch_size: int = 64,
    noise_mode: str = "const",
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Tensor:
    """Render ``ws [N, num_ws, w_dim]`` in batches and score the images: ``[M, A]`` probabilities on the CPU.

    M = N unless ``should_stop`` returned True, in which case the scores of the finished batches are returned.
    """
    device = G.w_avg.device
    out: list[Tensor] = []
    done = 0
    for i in range(0, ws.shape[0], batch_size):
        if should_stop is not None and should_stop():
            break
        img = G.synthesis(ws[i : i + batch_size].to(device), noise_mode=noise_mode)
        out.append(scorer(img).float().cpu())
        done += img.shape[0]
        if progress is not None:
            progress(done, ws.shape[0])
    return torch.cat(out) if out else torch.zeros(0, len(scorer.attributes))


def collect(
    G: torch.nn.Module,
    scorer: Scorer,
    n: int,
    *,
    seed: int = 0,
    space: str = "w",
    truncation_psi: float = 1.0,
    batch_size: int = 64,
    noise_mode: str = "const",
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> LatentSamples:
    """Sample ``n`` latents, render them and label them with ``scorer`` (InterFaceGAN's data collection).

    Args:
        G: generator; rendering runs on its device.
        scorer: e.g. ``ClassifierScorer`` or ``load_scorer(path)``.
        n: number of samples.
        seed: base seed (sample i = recipe seed ``seed + i`` in "z"/"w").
        space: "z", "w" or "w+".
        truncation_psi: truncation used for sampling (1 = none, as InterFaceGAN).
        batch_size: images rendered per batch.
        progress: ``progress(done, total)`` after every batch.
        should_stop: polled before every batch; when it returns True the samples scored so far are returned.

    Returns:
        ``LatentSamples`` with ``scores [N, A]`` and ``attributes = scorer.attributes``.
    """
    samples = sample_latents(G, n, seed=seed, space=space, truncation_psi=truncation_psi)
    scores = score_ws(
        G,
        scorer,
        samples.ws(G.num_ws),
        batch_size=batch_size,
        noise_mode=noise_mode,
        progress=progress,
        should_stop=should_stop,
    )
    if scores.shape[0] < len(samples):
        samples = samples.subset(torch.arange(scores.shape[0]))
    samples.scores = scores
    samples.attributes = tuple(scorer.attributes)
    return samples


# ---------------------------------------------------------------------------- labels from people
def parse_label(text: str) -> bool:
    """``"yes"/"1"/"true"/"+" -> True``, ``"no"/"0"/"false"/"-" -> False``; InputError otherwise."""
    t = str(text).strip().lower()
    if t in _POSITIVE:
        return True
    if t in _NEGATIVE:
        return False
    raise InputError(f"label {text!r}: use 1/0, yes/no, true/false or +/-")


def read_label_csv(source: str | os.PathLike | bytes) -> tuple[list[int], list[bool]]:
    """Read ``seed,label`` rows (a header row is optional; blank lines and ``#`` comments are skipped).

    Args:
        source: a path, or the file's bytes.

    Returns:
        ``(seeds, labels)`` with duplicates removed (a repeated seed must repeat its label).

    Raises:
        InputError: unreadable/oversized file, wrong column count, bad seed or label (with the line number),
            conflicting duplicates, or fewer than 2 positive and 2 negative examples.
    """
    if isinstance(source, bytes):
        data, where = source, "label file"
    else:
        where = str(source)
        p = Path(source)
        try:
            if p.stat().st_size > MAX_LABEL_FILE_BYTES:
                raise InputError(f"{where}: label file is larger than {MAX_LABEL_FILE_BYTES // 2**20} MB")
            data = p.read_bytes()
        except OSError as e:
            raise InputError(f"{where}: cannot read the label file ({e.strerror or e})") from None
    if len(data) > MAX_LABEL_FILE_BYTES:
        raise InputError(f"{where}: label file is larger than {MAX_LABEL_FILE_BYTES // 2**20} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{where}: not a UTF-8 text file (expected CSV rows 'seed,label')") from None
    seen: dict[int, bool] = {}
    rows = 0
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) != 2:
            raise InputError(f"{where}: line {lineno}: expected 2 columns 'seed,label', got {len(cells)}")
        if rows == 0 and cells[0].lower() in ("seed", "seeds"):
            continue
        rows += 1
        if rows > MAX_LABEL_ROWS:
            raise InputError(f"{where}: more than {MAX_LABEL_ROWS} rows")
        try:
            seed = int(cells[0])
        except ValueError:
            raise InputError(f"{where}: line {lineno}: seed {cells[0]!r} is not an integer") from None
        if not 0 <= seed < 2**32:
            raise InputError(f"{where}: line {lineno}: seed {seed} is outside 0..4294967295")
        try:
            label = parse_label(cells[1])
        except InputError as e:
            raise InputError(f"{where}: line {lineno}: {e}") from None
        if seen.get(seed, label) != label:
            raise InputError(f"{where}: line {lineno}: seed {seed} is labelled both yes and no")
        seen[seed] = label
    check_labels(list(seen.values()), where=where)
    return list(seen), list(seen.values())


def check_labels(labels: Sequence[bool], *, where: str = "labels", minimum: int = 2) -> None:
    """Raise InputError unless there are at least ``minimum`` positive and negative labels."""
    pos = sum(bool(x) for x in labels)
    neg = len(labels) - pos
    if pos < minimum or neg < minimum:
        raise InputError(
            f"{where}: need at least {minimum} 'yes' and {minimum} 'no' examples, got {pos} yes and {neg} no"
        )


def samples_from_labels(
    G: torch.nn.Module,
    seeds: Sequence[int],
    labels: Sequence[bool],
    *,
    name: str = "label",
    space: str = "w",
    truncation_psi: float = 1.0,
) -> LatentSamples:
    """Latents for user-labelled seeds, with ``scores`` = the 0/1 labels (one column named ``name``)."""
    if len(seeds) != len(labels):
        raise InputError(f"{len(seeds)} seeds but {len(labels)} labels")
    check_labels(labels)
    s = sample_latents(G, len(seeds), seeds=seeds, space=space, truncation_psi=truncation_psi)
    s.scores = torch.tensor([[1.0 if x else 0.0] for x in labels])
    s.attributes = (name,)
    return s
