"""StyleScope Explorer: a Gradio interface over the public core API (STYLE.md rule 10).

``build_app(config) -> gr.Blocks``. Each tab lives in ``app/tabs/<name>.py`` with ``build(shared)`` (layout,
returns a dataclass of components) and ``wire(handles, shared)`` (events to module-level handlers).
``TABS`` is the registry, in display order: a new tab (e.g. ``directions``) is one import and one entry.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from app import models  # noqa: E402
from app.config import AppConfig  # noqa: E402
from app.state import Shared, initial_model  # noqa: E402
from app.tabs import (  # noqa: E402
    about,
    directions,
    explore,
    invert,
    layers,
    mixing,
    model_bar,
    noise,
    recipe,
    train,
    translate,
)

# (tab title, element id, module): the order of the tabs in the UI.
TABS = [
    ("Explore", "explore", explore),
    ("Style mixing", "mixing", mixing),
    ("Noise", "noise", noise),
    ("Layers", "layers", layers),
    ("Recipe", "recipe", recipe),
    ("Directions", "directions", directions),
    ("Invert", "invert", invert),
    ("Translate", "translate", translate),
    ("Train", "train", train),
    ("About / Help", "about", about),
]

CSS = """
.scaled img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; }
#render-info p { margin: 0; font-size: 0.9em; opacity: 0.8; }
footer { display: none !important; }
"""


def build_app(config: AppConfig | None = None) -> gr.Blocks:
    """Build the Explorer. Loads the session's default model once (process-wide cache), never per request.

    Raises:
        core.CheckpointError / core.RecipeError: ``config.model`` is missing or not a supported generator.
    """
    config = config or AppConfig()
    models.configure(config.device)
    for name, path in models.shipped_models(config.models_dir).items():
        models.register(path, name)
    model = initial_model(config)
    if model:
        models.get(model)  # fail at start-up, not on the first click, if --model is broken
    with gr.Blocks(title="StyleScope", analytics_enabled=False) as demo:
        gr.Markdown("## StyleScope — explore style-based GANs")
        model_state = gr.State(model)
        last_recipe = gr.State("")
        info = gr.Markdown(model_bar.describe(model), elem_id="model-info", render=False)
        shared = Shared(config, model_state, last_recipe, info, demo)
        bar = model_bar.build(shared)
        built = []
        with gr.Tabs():
            for title, tab_id, module in TABS:
                with gr.Tab(title, id=tab_id, elem_id=f"tab-{tab_id}"):
                    built.append((module, module.build(shared)))
        model_bar.wire(bar, shared)
        for module, handles in built:
            module.wire(handles, shared)
    demo.queue(max_size=config.max_queue, default_concurrency_limit=config.concurrency_limit)
    return demo


def launch_kwargs(config: AppConfig) -> dict:
    """Arguments for ``demo.launch``: local bind, no share link, upload size limit, quiet API docs."""
    return dict(
        server_name=config.host,
        server_port=config.port,
        share=False,
        max_file_size=config.max_file_size,
        show_error=True,
        css=CSS,
    )
