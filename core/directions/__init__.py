"""Latent directions: InterFaceGAN linear-SVM boundaries with conditional editing, GANSpace PCA and SeFa.

* ``collect``: sample latents (Z, W, W+), render and score them, or read user labels (``read_label_csv``).
* ``svm``: ``fit_svm`` / ``fit_attribute_direction`` (InterFaceGAN), ``linear_separability`` (StyleGAN paper).
* ``edit``: ``Direction`` (``apply(ws, strength)``, rows, ``conditioned``) and ``DirectionSet`` (recipe names,
  ``name@rows~cond1,cond2`` variants).
* ``pca`` / ``sefa``: unsupervised directions (GANSpace, Harkonen et al. 2020; SeFa, Shen & Zhou 2021).
* ``evaluate``: edit success, side effects, separability Z vs W, the one-call ``fit_all``.
* ``guided``: ``guided_edit``, per-face edits along the classifier's gradient (where W has no global direction).
* ``io``: ``save_directions`` / ``load_directions`` (one safetensors file per set).
"""

from __future__ import annotations

from core.directions.collect import (
    ClassifierScorer,
    LatentSamples,
    Scorer,
    collect,
    load_scorer,
    read_label_csv,
    sample_latents,
    samples_from_labels,
    score_ws,
    w_covariance,
)
from core.directions.edit import (
    Direction,
    DirectionSet,
    format_rows,
    orthogonal_complement,
    parse_rows,
    split_variant,
    variant_name,
)
from core.directions.io import export_json, load_directions, save_directions
from core.directions.svm import (
    Separability,
    SvmFit,
    conditional_entropy,
    covariance_edit_vector,
    direction_from_fit,
    fit_attribute,
    fit_attribute_direction,
    fit_svm,
    linear_separability,
    select_confident,
)

__all__ = [
    "ClassifierScorer",
    "Direction",
    "DirectionSet",
    "LatentSamples",
    "Scorer",
    "Separability",
    "SvmFit",
    "collect",
    "conditional_entropy",
    "covariance_edit_vector",
    "direction_from_fit",
    "export_json",
    "fit_attribute",
    "fit_attribute_direction",
    "fit_svm",
    "format_rows",
    "linear_separability",
    "load_directions",
    "load_scorer",
    "orthogonal_complement",
    "parse_rows",
    "read_label_csv",
    "sample_latents",
    "w_covariance",
    "samples_from_labels",
    "save_directions",
    "score_ws",
    "select_confident",
    "split_variant",
    "variant_name",
]
