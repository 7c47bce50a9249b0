"""Per-session state: only small, deep-copyable values (paths, JSON text), never models or tensors.

* ``model``: path of the session's generator (``""`` when none is available); handlers look the generator up
  in the process-wide store (:mod:`app.models`).
* ``last_recipe``: JSON of the last rendered image's recipe, so the Recipe tab can pick it up.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app import models
from app.config import DEFAULT_MODEL_NAMES, AppConfig


def initial_model(config: AppConfig) -> str:
    """The model a new session opens on: ``--model`` if given, else the default shipped model, else ``""``."""
    if config.model:
        return str(config.model)
    return models.default_model(config.models_dir, DEFAULT_MODEL_NAMES) or ""


@dataclass
class Shared:
    """Components every tab may read or write."""

    config: AppConfig
    model: gr.State  # str: model path
    last_recipe: gr.State  # str: recipe JSON of the last image
    model_info: gr.Markdown
    demo: gr.Blocks
