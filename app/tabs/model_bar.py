"""The model picker above the tabs: shipped models, any checkpoint by path or upload, and the model summary.

NVIDIA pickles get a visible warning as soon as one is chosen and are read only after the user ticks the
box; even then the restricted reader in core rebuilds tensors and never executes code from the file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from app import models
from app.common import NO_MODEL, one_line, user_errors
from app.state import Shared

PICKLE_WARNING = (
    "⚠️ **This is a Python pickle (NVIDIA StyleGAN2-ADA / StyleGAN3 format).** Pickles can carry code. "
    "StyleScope reads them with a restricted reader that rebuilds tensors and settings only and never runs "
    "code from the file. Tick the box below to read it."
)


@dataclass
class ModelBar:
    shipped: gr.Dropdown
    path: gr.Textbox
    upload: gr.File
    allow_pickle: gr.Checkbox
    load: gr.Button
    warning: gr.Markdown


def describe(model: str) -> str:
    """One-paragraph Markdown summary of a model: architecture, resolution, ws rows per group, noise inputs."""
    if not model:
        return f"**{NO_MODEL}**"
    with user_errors():
        G = models.get(model)
    cfg = G.cfg
    groups = ", ".join(f"{name} {rows[0]}-{rows[-1]}" for name, rows in G.layer_groups.items() if rows)
    output = {"skip": "skip outputs", "orig": "one RGB output", "resnet": "residual blocks"}[cfg.architecture]
    return (
        f"**{Path(model).name}** — {'StyleGAN2' if cfg.version == 2 else 'StyleGAN (v1, AdaIN)'} ({output}), "
        f"{G.img_resolution} px, z {G.z_dim} / w {G.w_dim}, {G.num_ws} ws rows ({groups}), "
        f"{G.num_layers} noise inputs, on `{models.device()}`"
    )


def choose_shipped(name: str | None, models_dir: str) -> tuple[str, str]:
    """Switch to a shipped model by file name. Returns (model path, summary)."""
    path = models.shipped_models(models_dir).get(name or "")
    if path is None:
        raise gr.Error(f"no shipped model named {name!r} in {models_dir}", print_exception=False)
    return path, describe(path)


def pickle_notice(path_text: str | None, upload: str | None) -> dict:
    """Show the pickle warning as soon as a pickle is typed or uploaded."""
    target = upload or (path_text or "").strip()
    return gr.update(value=PICKLE_WARNING, visible=bool(target) and models.is_pickle(target))


def load_other(path_text: str | None, upload: str | None, allow_pickle: bool) -> tuple[str, str]:
    """Load a checkpoint from an upload (preferred) or a server path. Returns (model path, summary)."""
    target = upload or (path_text or "").strip()
    if not target:
        raise gr.Error("type a checkpoint path or upload a file first", print_exception=False)
    p = Path(target).expanduser()
    if not p.is_file():
        raise gr.Error(f"no checkpoint file at {target}", print_exception=False)
    if models.is_pickle(p):
        if not allow_pickle:
            raise gr.Error(
                "this is a pickle: tick 'Read pickles with the restricted reader' to load it",
                print_exception=False,
            )
        gr.Warning("Reading a pickle with the restricted reader: no code from the file is executed.")
    try:
        G = models.get(p)
    except gr.Error:
        raise
    except Exception as e:  # any failure of a foreign file is the file's fault: one line, keep serving
        raise gr.Error(
            f"{p.name}: cannot load this checkpoint ({one_line(e)})", print_exception=False
        ) from None
    if not hasattr(G, "synthesis"):
        raise gr.Error(f"{p.name}: this checkpoint is not a generator", print_exception=False)
    models.register(p, p.name)
    return str(p), describe(str(p))


def build(shared: Shared) -> ModelBar:
    shipped = models.shipped_models(shared.config.models_dir)
    current = shared.model.value
    choices = list(shipped)
    value = Path(current).name if current and Path(current).name in shipped else None
    with gr.Row(equal_height=True):
        dd = gr.Dropdown(
            choices,
            value=value,
            label="Model",
            scale=1,
            interactive=bool(choices),
            info="shipped models in assets/models" if choices else "no shipped models yet",
        )
        with gr.Column(scale=3):
            shared.model_info.render()
    with gr.Accordion("Load another checkpoint (server path or upload)", open=False, elem_id="other-ckpt"):
        with gr.Row(equal_height=True):
            path = gr.Textbox(
                label="Checkpoint path on the server", placeholder="/path/to/model.safetensors", scale=2
            )
            upload = gr.File(
                label="…or upload",
                file_types=[".safetensors", ".pt", ".pth", ".pkl", ".ckpt"],
                type="filepath",
                height=120,
                scale=2,
            )
            with gr.Column(scale=1):
                allow = gr.Checkbox(
                    False, label="Read pickles with the restricted reader (never executes code)"
                )
                load = gr.Button("Load checkpoint", variant="secondary")
        warning = gr.Markdown(PICKLE_WARNING, visible=False)
    return ModelBar(dd, path, upload, allow, load, warning)


def wire(h: ModelBar, shared: Shared) -> None:
    h.shipped.input(
        functools.partial(choose_shipped, models_dir=shared.config.models_dir),
        h.shipped,
        [shared.model, shared.model_info],
        api_name="choose_model",
    )
    for trigger in (h.path.change, h.upload.change):
        trigger(pickle_notice, [h.path, h.upload], h.warning, queue=False, api_visibility="private")
    gr.on(
        [h.load.click, h.path.submit],
        load_other,
        [h.path, h.upload, h.allow_pickle],
        [shared.model, shared.model_info],
        api_name="load_model",
        concurrency_id="model",
    )
