"""Attribute classifier for SynthFaces: binary attributes, categorical factors and continuous factors.

StyleGAN (Karras et al. 2019, Sec. 4.2 "linear separability") labels generated images with an auxiliary
attribute classifier; InterFaceGAN needs one to fit its boundaries, and Frechet distance / precision-recall
(Heusel et al. 2017; Kynkaanniemi et al. 2019) need a feature space. On SynthFaces every image's factors are
known exactly, so one small CNN trained on renders serves all three: its heads predict

* ``logits [N, A]``: one logit per binary attribute (``cfg.attributes``),
* ``regression [N, F]``: every continuous factor in its natural units (``cfg.factors``, ranges in
  ``cfg.factor_ranges``); the head itself predicts the standardised value ``(v - mean) / std`` of a uniform
  factor, so the training loss (MSE) reads directly as ``1 - R^2``,
* ``categorical [N, sum K]``: logits of every categorical factor, concatenated in ``cfg.categorical`` order
  (:meth:`AttributeClassifier.split_categorical` splits them),

and :meth:`AttributeClassifier.features` exposes the penultimate layer (``cfg.feature_dim`` >= 128) used by
``core.metrics``. Inputs of any resolution are resized (anti-aliased) to ``cfg.input_resolution``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.config import from_json_dict, to_json_dict

_UNIFORM_STD = math.sqrt(1.0 / 12.0)  # std of U(0, 1): the head predicts (v - mid) / (range * this)


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything needed to rebuild an :class:`AttributeClassifier` (stored with its weights).

    Attributes:
        attributes: binary attribute names, the order of ``logits``.
        factors: continuous factor names, the order of ``regression``.
        factor_ranges: ``(low, high)`` of each continuous factor (uniform on SynthFaces).
        categorical: ``((factor, (category, ...)), ...)``, the layout of ``categorical``.
        input_resolution: images are resized to this square size before the network.
        channels: widths of the stem and of each stride-2 stage after it.
        feature_dim: width of the penultimate layer returned by ``features``.
        stem_stride: 1 (stem at ``input_resolution``) or 2 (a learned 4x4 stride-2 downsampler first, so small
            details such as brows and nose still reach the network at half the cost of a full-size stem).
        mirror_symmetric: attributes and continuous factors whose label is the same for the mirror image
            (SynthFaces draws brows, eyes and mouth as mirror copies); in eval mode their outputs are the mean
            of the image's and its horizontal mirror's predictions, which averages out part of what a single view
            gets wrong. Empty: one view for everything.
    """

    attributes: tuple[str, ...]
    factors: tuple[str, ...]
    factor_ranges: tuple[tuple[float, float], ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...] = ()
    input_resolution: int = 128
    channels: tuple[int, ...] = (24, 32, 64, 96, 128)
    feature_dim: int = 256
    stem_stride: int = 2
    mirror_symmetric: tuple[str, ...] = ()

    arch: ClassVar[str] = "attribute-classifier"

    def __post_init__(self) -> None:
        if len(self.factor_ranges) != len(self.factors):
            raise ValueError(f"{len(self.factors)} factors but {len(self.factor_ranges)} factor_ranges")
        if self.feature_dim < 1 or not self.channels:
            raise ValueError("feature_dim and channels must be positive")
        unknown = sorted(set(self.mirror_symmetric) - set(self.attributes) - set(self.factors))
        if unknown:
            raise ValueError(f"mirror_symmetric names neither attributes nor factors: {unknown}")
        if self.stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {self.stem_stride}")
        down = self.stem_stride * 2 ** (len(self.channels) - 1)
        if self.input_resolution % down or self.input_resolution < down:
            raise ValueError(
                f"input_resolution {self.input_resolution} must be a multiple of stem_stride * 2**(len(channels)-1) = {down}"
            )

    @property
    def num_attributes(self) -> int:
        return len(self.attributes)

    @property
    def num_factors(self) -> int:
        return len(self.factors)

    @property
    def num_categories(self) -> int:
        return sum(len(cats) for _, cats in self.categorical)

    @property
    def final_resolution(self) -> int:
        return self.input_resolution // (self.stem_stride * 2 ** (len(self.channels) - 1))

    def to_dict(self) -> dict:
        return to_json_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        return from_json_dict(cls, d, what="classifier")

    @classmethod
    def synthfaces(cls, **overrides) -> ClassifierConfig:
        """The config whose heads match SynthFaces' attributes and factors (names and ranges from
        ``core.data.synthfaces_factors``)."""
        from core.data import synthfaces_factors as sf

        ranges = sf._CONTINUOUS_RANGES  # the factor ranges SynthFaces samples from (uniform)
        kw: dict = dict(
            attributes=tuple(sf.BINARY_ATTRIBUTES),
            factors=tuple(sf.CONTINUOUS_FACTORS),
            factor_ranges=tuple((float(ranges[n][0]), float(ranges[n][1])) for n in sf.CONTINUOUS_FACTORS),
            categorical=tuple((name, tuple(cats)) for name, (cats, _) in sf.CATEGORICAL_FACTORS.items()),
            mirror_symmetric=sf.MIRROR_SYMMETRIC,
        )
        kw.update(overrides)
        return cls(**kw)


def tiny_classifier_config(**overrides) -> ClassifierConfig:
    """A tiny config (16 px, two attributes, one factor) for fast tests."""
    kw: dict = dict(
        attributes=("a", "b"),
        factors=("f",),
        factor_ranges=((-1.0, 1.0),),
        categorical=(("c", ("x", "y", "z")),),
        input_resolution=16,
        channels=(8, 16, 16),
        stem_stride=1,
        feature_dim=128,
    )
    kw.update(overrides)
    return ClassifierConfig(**kw)


def _conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.SiLU(inplace=True),
    )


class AttributeClassifier(nn.Module):
    """Small CNN: stem, stride-2 stages of two 3x3 convs, flatten, one hidden layer, three linear heads.

    The last feature map is flattened (not pooled) so the features keep where things are: head position and
    yaw are labels. Batch norm runs in inference mode after ``eval()``, so ``features`` of one image do not
    depend on the rest of its batch.
    """

    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        if cfg.stem_stride == 2:
            stem = nn.Sequential(
                nn.Conv2d(3, ch[0], 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(ch[0]),
                nn.SiLU(inplace=True),
            )
            layers = [stem, _conv_block(ch[0], ch[0], 1)]
        else:
            layers = [_conv_block(3, ch[0], 1)]
        for c_in, c_out in zip(ch[:-1], ch[1:], strict=True):
            layers += [_conv_block(c_in, c_out, 2), _conv_block(c_out, c_out, 1)]
        self.trunk = nn.Sequential(*layers)
        self.fc = nn.Linear(ch[-1] * cfg.final_resolution**2, cfg.feature_dim)
        self.head_logits = nn.Linear(cfg.feature_dim, cfg.num_attributes)
        self.head_regression = nn.Linear(cfg.feature_dim, cfg.num_factors)
        self.head_categorical = nn.Linear(cfg.feature_dim, max(cfg.num_categories, 1))
        ranges = torch.tensor(cfg.factor_ranges, dtype=torch.float32).view(-1, 2)
        # Persistent although derived from the config: native loading builds modules on the meta device and
        # fills them from the file, which leaves non-persistent buffers empty.
        self.register_buffer("factor_low", ranges[:, 0].clone())
        self.register_buffer("factor_span", (ranges[:, 1] - ranges[:, 0]).clone())
        sym = set(cfg.mirror_symmetric)
        self._mirror = {  # output -> which of its columns average over the mirror image (plain lists: no state)
            "logits": [a in sym for a in cfg.attributes],
            "regression": [f in sym for f in cfg.factors],
            "regression_std": [f in sym for f in cfg.factors],
        }

    def prepare(self, img: Tensor) -> Tensor:
        """Check and resize ``img [N, 3, H, W]`` in [-1, 1] to ``[N, 3, R, R]`` with ``R = input_resolution``.

        Raises:
            ValueError: if ``img`` is not a float batch of RGB images.
        """
        if img.ndim != 4 or img.shape[1] != 3 or not torch.is_floating_point(img):
            raise ValueError(
                f"expected float images [N, 3, H, W] in [-1, 1], got {tuple(img.shape)} {img.dtype}"
            )
        r = self.cfg.input_resolution
        img = img.float()
        if img.shape[-2:] != (r, r):
            # Anti-aliased: GAN samples at 256 px must look like renders at 64 px, not aliased point samples.
            down = img.shape[-1] > r or img.shape[-2] > r
            img = F.interpolate(img, size=(r, r), mode="bilinear", align_corners=False, antialias=down)
        return img

    def features(self, img: Tensor) -> Tensor:
        """Penultimate features ``[N, feature_dim]`` of images ``[N, 3, H, W]`` in [-1, 1]."""
        x = self.trunk(self.prepare(img))
        return F.silu(self.fc(x.flatten(1)))

    def heads(self, feats: Tensor) -> dict[str, Tensor]:
        """Apply the three heads to features from :meth:`features` (see :meth:`forward`)."""
        std = self.head_regression(feats)
        return {
            "logits": self.head_logits(feats),
            "regression": self.factor_low + self.factor_span * (0.5 + _UNIFORM_STD * std),
            "regression_std": std,
            "categorical": self.head_categorical(feats)[:, : self.cfg.num_categories],
        }

    def forward(self, img: Tensor) -> dict[str, Tensor]:
        """Predict everything for images ``[N, 3, H, W]`` in [-1, 1] (any H, W).

        In eval mode the outputs named by ``cfg.mirror_symmetric`` average the image and its mirror image;
        ``features`` are always those of the image as given.

        Returns:
            ``{"logits": [N, A], "regression": [N, F] (natural units), "regression_std": [N, F]
            (standardised), "categorical": [N, sum K] logits, "features": [N, feature_dim]}``.
        """
        if self.training or not any(any(cols) for cols in self._mirror.values()):
            feats = self.features(img)
            out = self.heads(feats)
            out["features"] = feats
            return out
        feats, feats_m = self.features(torch.cat([img, img.flip(-1)])).chunk(2)
        out, out_m = self.heads(feats), self.heads(feats_m)
        for key, cols in self._mirror.items():
            if any(cols):
                mask = torch.tensor(cols, device=img.device)
                out[key] = torch.where(mask, (out[key] + out_m[key]) / 2, out[key])
        out["features"] = feats
        return out

    def standardize(self, values: Tensor) -> Tensor:
        """Continuous factors ``[N, F]`` in natural units -> the standardised scale of ``regression_std``."""
        return ((values - self.factor_low) / self.factor_span - 0.5) / _UNIFORM_STD

    def split_categorical(self, cat_logits: Tensor) -> dict[str, Tensor]:
        """``[N, sum K]`` categorical logits -> ``{factor: [N, K]}``."""
        out, i = {}, 0
        for name, cats in self.cfg.categorical:
            out[name] = cat_logits[:, i : i + len(cats)]
            i += len(cats)
        return out


def save_classifier(model: AttributeClassifier, path, *, metadata: dict | None = None) -> None:
    """Write ``model`` as a native ``.safetensors`` file (config JSON in the metadata)."""
    from core.checkpoints.native import save_module

    save_module(model, path, arch=ClassifierConfig.arch, config=model.cfg.to_dict(), metadata=metadata)


def load_classifier(path, *, device: str | torch.device = "cpu") -> AttributeClassifier:
    """Load a classifier written by :func:`save_classifier` (eval mode, no grad, on ``device``).

    Raises:
        CheckpointError: unreadable file, another architecture, or mismatching tensors.
    """
    from core.checkpoints.native import load_module

    return load_module(path, device=device, expect=(ClassifierConfig.arch,))  # type: ignore[return-value]


__all__ = [
    "AttributeClassifier",
    "ClassifierConfig",
    "load_classifier",
    "save_classifier",
    "tiny_classifier_config",
]
