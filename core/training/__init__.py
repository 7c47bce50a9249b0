"""Training engine for StyleGAN (v1, AdaIN) and StyleGAN2: losses, ADA/DiffAugment, EMA, DDP, checkpoints.

Entry points: :func:`train` (in-process, also what each torchrun worker runs), ``python -m core.training``
(the worker entry), :mod:`core.training.jobs` (background runs), ``stylescope train`` (CLI).
"""

from core.training.config import PRESETS, WIDTH_PRESETS, TrainConfig, tiny_config
from core.training.loop import Trainer, TrainingDivergedError, train

__all__ = [
    "PRESETS",
    "WIDTH_PRESETS",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "tiny_config",
    "train",
]
