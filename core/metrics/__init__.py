"""Metrics for SynthFaces generators, computed in the SynthFaces classifier's feature and label space.

* :mod:`core.metrics.fd`: Frechet distance (Heusel et al. 2017).
* :mod:`core.metrics.precision_recall`: improved precision / recall (Kynkaanniemi et al. 2019), k = 3.
* :mod:`core.metrics.disentanglement`: style-mixing disentanglement score (Karras et al. 2019, Sec. 3.1).
* :mod:`core.metrics.noise`: label stability across noise draws (Karras et al. 2019, Sec. 3.2).
* :mod:`core.metrics.ppl`: perceptual path length in W and Z (Karras et al. 2019, Sec. 4.1); any generator.
* :mod:`core.metrics.evaluate`: all of them with targets (``stylescope evaluate``).
"""

from __future__ import annotations

from core.metrics.disentanglement import factor_predictions, mixing_cases, row_influence, style_mixing_score
from core.metrics.evaluate import TARGETS, evaluate_model
from core.metrics.fd import feature_statistics, frechet_distance, frechet_distance_features
from core.metrics.noise import noise_label_stability, real_detail_stability
from core.metrics.ppl import perceptual_path_length
from core.metrics.precision_recall import knn_radii, manifold_coverage, precision_recall

__all__ = [
    "TARGETS",
    "evaluate_model",
    "factor_predictions",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_features",
    "knn_radii",
    "manifold_coverage",
    "mixing_cases",
    "noise_label_stability",
    "perceptual_path_length",
    "precision_recall",
    "real_detail_stability",
    "row_influence",
    "style_mixing_score",
]
