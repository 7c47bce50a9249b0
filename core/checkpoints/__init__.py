"""Checkpoints: StyleScope's native safetensors format and safe readers for the formats users already have.

``load_generator(path)`` auto-detects native ``.safetensors``, rosinality ``.pt`` (and pSp/e4e decoders) and
NVIDIA stylegan2-ada / stylegan3-era StyleGAN2 ``.pkl`` files. Foreign pickles are read through an allow-list
unpickler (:mod:`core.checkpoints.unpickler`), so loading a hostile file never runs its code.
"""

from __future__ import annotations

from core.checkpoints.detect import describe_checkpoint, detect_format, load_generator
from core.checkpoints.native import load_native, save_generator
from core.errors import CheckpointError

__all__ = [
    "CheckpointError",
    "describe_checkpoint",
    "detect_format",
    "load_generator",
    "load_native",
    "save_generator",
]
