"""StyleScope core: pure PyTorch models, checkpoints, rendering, directions, inversion and training.

Public API (see CONTRACT.md): ``load_generator``, ``save_generator``, ``Recipe``, ``render``, ``load_image``,
``CheckpointError``, ``InputError``, ``RecipeError``. Names are resolved lazily (PEP 562) so that importing a
small part of core (``core.errors``, ``core.images``) stays cheap.
"""

from __future__ import annotations

import importlib

from core.errors import CheckpointError, InputError, RecipeError, StyleScopeError

__version__ = "0.1.0"

_LAZY = {
    "load_generator": "core.checkpoints",
    "describe_checkpoint": "core.checkpoints",
    "save_generator": "core.checkpoints.native",
    "file_digest": "core.checkpoints.native",
    "Recipe": "core.render",
    "render": "core.render",
    "render_tensor": "core.render",
    "recipe_from_png": "core.render",
    "load_image": "core.images",
    "to_pil": "core.images",
    "Generator": "core.models.stylegan",
    "GeneratorConfig": "core.models.stylegan",
    "mix_styles": "core.models.stylegan",
}

__all__ = ["CheckpointError", "InputError", "RecipeError", "StyleScopeError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'core' has no attribute {name!r}")
