"""Explore: seeds, truncation (StyleGAN Fig. 8), noise mode, seed grids and interpolation videos."""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from app import models
from app.common import Timer, model_recipe, parse_seed, recipe_image, require_model, result_image, user_errors
from app.state import Shared
from core import explore
from core.images import to_pil
from core.render import MAX_SEED, Recipe, render_tensor

PSI_MIN, PSI_MAX, PSI_DEFAULT = -1.0, 2.0, 0.7
NOISE_MODES = ["const", "random", "none"]


@dataclass
class ExploreTab:
    seed: gr.Textbox
    rand: gr.Button
    prev: gr.Button
    next: gr.Button
    psi: gr.Slider
    cutoff: gr.Slider
    noise_mode: gr.Radio
    grid_n: gr.Slider
    go: gr.Button
    image: gr.Image
    info: gr.Markdown
    gallery: gr.Gallery
    recipe: gr.Code
    # interpolation
    seed_a: gr.Textbox
    seed_b: gr.Textbox
    steps: gr.Slider
    space: gr.Radio
    fps: gr.Slider
    fmt: gr.Radio
    interp_go: gr.Button
    interp_preview: gr.Image
    interp_file: gr.File
    # hidden API inputs: /generate takes a cutoff that may be None ("all rows"), which a slider cannot
    api_cutoff: gr.Number
    api_go: gr.Button


# ---------------------------------------------------------------------------------------------- handlers
def cutoff_value(cutoff: float | None, model: str) -> int | None:
    """Slider value -> recipe cutoff: the slider's maximum (num_ws) means all rows, i.e. None."""
    if cutoff is None:
        return None
    value = int(cutoff)
    return None if value >= models.get(model).num_ws else value


def generate(seed, truncation_psi: float, truncation_cutoff, noise_mode: str, model: str):
    """``/generate``: one image of a seed; the PNG embeds its recipe."""
    require_model(model)
    seed = parse_seed(seed)
    with user_errors():
        recipe = model_recipe(
            model,
            seed=seed,
            truncation_psi=float(truncation_psi),
            truncation_cutoff=None if truncation_cutoff is None else int(truncation_cutoff),
            noise_mode=noise_mode,
        )
        with models.use(model) as G:
            return recipe_image(render_tensor(G, recipe), recipe)


def explore_render(model: str, seed, psi: float, cutoff: float, noise_mode: str, grid_n: float):
    """The Explore view: the seed's image, render time, recipe, and a grid of the next N seeds."""
    require_model(model)
    cut = cutoff_value(cutoff, model)
    with Timer() as t:
        image = generate(seed, psi, cut, noise_mode, model)
    s, n = parse_seed(seed), int(grid_n)
    gallery = gr.update(visible=n > 1, value=None)
    grid_ms = 0.0
    if n > 1:
        seeds = [(s + i) % (MAX_SEED + 1) for i in range(n)]
        mode = "const" if noise_mode == "random" else noise_mode
        with user_errors(), Timer() as tg, models.use(model) as G:
            imgs = to_pil(explore.render_seeds(G, seeds, psi=psi, cutoff=cut, noise_mode=mode))
        grid_ms = tg.ms
        gallery = gr.update(
            visible=True, value=[(im, f"seed {sd}") for im, sd in zip(imgs, seeds, strict=True)]
        )
    recipe = image.info.get("stylescope-recipe", "")
    info = f"render **{t.ms:.0f} ms** on `{models.device()}`" + (
        f" · grid of {n}: {grid_ms:.0f} ms" if n > 1 else ""
    )
    return image, info, gallery, Recipe.from_json(recipe).to_json(indent=2), recipe


def random_seed() -> str:
    # Seeds for the user to try, not model randomness: a private RNG, never the global one.
    return str(random.SystemRandom().randrange(0, 100_000))


def step_seed(seed, delta: int) -> str:
    return str((parse_seed(seed) + delta) % (MAX_SEED + 1))


def prev_seed(seed) -> str:
    return step_seed(seed, -1)


def next_seed(seed) -> str:
    return step_seed(seed, 1)


def on_model(model: str):
    """Fit the cutoff slider to the model's number of ws rows."""
    if not model:
        return gr.update()
    with user_errors():
        num_ws = models.get(model).num_ws
    return gr.update(
        maximum=num_ws, value=num_ws, label=f"Truncation cutoff (ws rows truncated; {num_ws} = all)"
    )


def interpolate(
    model: str,
    seed_a,
    seed_b,
    steps: float,
    psi: float,
    cutoff: float,
    space: str,
    fps: float,
    fmt: str,
    progress=gr.Progress(),
):
    """Frames between two seeds (linear in W or slerp in Z) written as GIF, MP4 or a zip of PNG frames."""
    require_model(model)
    a, b = parse_seed(seed_a, "seed A"), parse_seed(seed_b, "seed B")
    cut = cutoff_value(cutoff, model)
    steps = int(steps)
    with user_errors():
        with models.use(model) as G:
            frames = explore.interpolate(
                G,
                a,
                b,
                steps=steps,
                psi=psi,
                cutoff=cut,
                space=space,
                progress=lambda i, n: progress(i / n, desc=f"frame {i}/{n}"),
            )
        spec = explore.interpolation_spec(
            str(model),
            models.digest(model),
            a,
            b,
            steps=steps,
            psi=psi,
            cutoff=cut,
            space=space,
            noise_mode="const",
            fps=int(fps),
        )
        out = Path(tempfile.mkdtemp(prefix="stylescope-interp-")) / f"interp_{a}_{b}_{space}.{fmt}"
        pil = to_pil(frames)
        explore.save_animation(pil, out, fps=int(fps), spec=spec)
        preview = out
        if fmt != "gif":
            preview = out.with_suffix(".gif")
            explore.save_animation(pil, preview, fps=int(fps), spec=spec)
    return str(preview), str(out)


# ---------------------------------------------------------------------------------------------- layout
def build(shared: Shared) -> ExploreTab:
    num_ws = models.get(shared.model.value).num_ws if shared.model.value else 18
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            with gr.Row(equal_height=True):
                seed = gr.Textbox("42", label="Seed", scale=3, elem_id="seed", max_lines=1)
                rand = gr.Button("Random", scale=0, min_width=70, elem_id="seed-random")
                prev = gr.Button("◀", scale=0, min_width=44, elem_id="seed-prev")
                nxt = gr.Button("▶", scale=0, min_width=44, elem_id="seed-next")
            psi = gr.Slider(
                PSI_MIN,
                PSI_MAX,
                PSI_DEFAULT,
                step=0.05,
                label="Truncation psi",
                elem_id="psi",
                info="1 = off, 0 = the average image, < 0 = the 'anti-face'",
            )
            cutoff = gr.Slider(
                0,
                num_ws,
                num_ws,
                step=1,
                label=f"Truncation cutoff (ws rows truncated; {num_ws} = all)",
                elem_id="cutoff",
            )
            noise_mode = gr.Radio(
                NOISE_MODES, value="const", label="Noise", info="const: stored noise; random: fresh"
            )
            grid_n = gr.Slider(1, shared.config.max_grid, 1, step=1, label="Grid: this seed and the next N-1")
            go = gr.Button("Generate", variant="primary", elem_id="generate")
        with gr.Column(scale=2):
            image = result_image(
                "Image (PNG download embeds its recipe)",
                height=400,
                fmt=shared.config.image_format,
                elem_id="explore-image",
            )
            info = gr.Markdown(elem_id="render-info")
            gallery = gr.Gallery(
                label="Seed grid", columns=4, visible=False, format=shared.config.image_format
            )
    with gr.Accordion("Recipe of this image", open=False):
        recipe = gr.Code(language="json", label="Recipe (paste it into the Recipe tab to reproduce)")
    with gr.Accordion("Interpolate between two seeds", open=False):
        with gr.Row():
            seed_a = gr.Textbox("1", label="Seed A", max_lines=1)
            seed_b = gr.Textbox("2", label="Seed B", max_lines=1)
            steps = gr.Slider(2, shared.config.max_steps, 30, step=1, label="Frames")
            fps = gr.Slider(1, 60, 15, step=1, label="Frames per second")
        with gr.Row():
            space = gr.Radio(["w", "z"], value="w", label="Space", info="w: linear in W; z: slerp in Z")
            fmt = gr.Radio(["gif", "mp4", "zip"], value="gif", label="Export", info="zip = PNG frames")
            interp_go = gr.Button("Render interpolation", variant="secondary")
        with gr.Row():
            interp_preview = gr.Image(
                elem_classes=["scaled"], label="Preview", type="filepath", interactive=False, height=256
            )
            interp_file = gr.File(label="Download")
    api_cutoff = gr.Number(None, precision=0, label="truncation_cutoff", visible=False)
    api_go = gr.Button(visible=False)
    return ExploreTab(
        seed,
        rand,
        prev,
        nxt,
        psi,
        cutoff,
        noise_mode,
        grid_n,
        go,
        image,
        info,
        gallery,
        recipe,
        seed_a,
        seed_b,
        steps,
        space,
        fps,
        fmt,
        interp_go,
        interp_preview,
        interp_file,
        api_cutoff,
        api_go,
    )


def wire(h: ExploreTab, shared: Shared) -> None:
    render_inputs = [shared.model, h.seed, h.psi, h.cutoff, h.noise_mode, h.grid_n]
    render_outputs = [h.image, h.info, h.gallery, h.recipe, shared.last_recipe]
    model_events = dict(concurrency_id="model", concurrency_limit=shared.config.concurrency_limit)
    gr.on(
        [h.go.click, h.seed.submit, h.psi.release, h.cutoff.release, h.noise_mode.input, h.grid_n.release],
        explore_render,
        render_inputs,
        render_outputs,
        api_name="explore",
        trigger_mode="always_last",
        show_progress="minimal",
        **model_events,
    )
    for button, fn in ((h.rand, random_seed), (h.prev, prev_seed), (h.next, next_seed)):
        inputs = [] if fn is random_seed else [h.seed]
        button.click(fn, inputs, h.seed, queue=False, api_visibility="private").then(
            explore_render,
            render_inputs,
            render_outputs,
            api_visibility="private",
            show_progress="minimal",
            trigger_mode="always_last",
            **model_events,
        )
    h.api_go.click(
        generate,
        [h.seed, h.psi, h.api_cutoff, h.noise_mode, shared.model],
        h.image,
        api_name="generate",
        **model_events,
    )
    h.interp_go.click(
        interpolate,
        [shared.model, h.seed_a, h.seed_b, h.steps, h.psi, h.cutoff, h.space, h.fps, h.fmt],
        [h.interp_preview, h.interp_file],
        api_name="interpolate",
        **model_events,
    )
    shared.demo.load(explore_render, render_inputs, render_outputs, api_visibility="private", **model_events)
    shared.model.change(on_model, shared.model, h.cutoff, api_visibility="private").then(
        explore_render, render_inputs, render_outputs, api_visibility="private", **model_events
    )
