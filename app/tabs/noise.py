"""Noise: per-input switches, the presets of StyleGAN Fig. 5, resampling, and Fig. 4's stochastic variation."""

from __future__ import annotations

import random
from dataclasses import dataclass

import gradio as gr
from PIL import Image

from app import models
from app.common import Timer, model_recipe, parse_seed, recipe_image, require_model, result_image, user_errors
from app.state import Shared
from core import explore
from core.render import recipe_ws, render_tensor

MAX_DRAWS = 64
EXPLAIN = (
    "Noise adds stochastic detail (hair strands, skin pores, background texture) without changing identity. "
    "The right image is the per-pixel standard deviation over K noise draws (StyleGAN Fig. 4): bright where "
    "noise changes the image. Presets follow Fig. 5: noise everywhere, nowhere, only in fine layers "
    "(64 px and up) or only in coarse layers (4-32 px)."
)


@dataclass
class NoiseTab:
    seed: gr.Textbox
    psi: gr.Slider
    preset: gr.Radio
    layers: gr.CheckboxGroup
    strength: gr.Slider
    strengths: gr.Textbox
    noise_seed: gr.Number
    resample: gr.Button
    draws: gr.Slider
    go: gr.Button
    image: gr.Image
    std: gr.Image
    info: gr.Markdown


def layer_choices(model: str) -> list[tuple[str, int]]:
    G = models.get(model)
    return list(zip(explore.noise_labels(G), range(G.num_layers), strict=True))


def preset_layers(model: str, name: str) -> list[int]:
    """Noise inputs switched on by a preset (all / none / fine / coarse)."""
    require_model(model)
    with user_errors():
        mask = explore.noise_preset(models.get(model), name)
    return [i for i, on in enumerate(mask) if on]


def noise(
    seed,
    truncation_psi: float,
    noise_layers: list,
    noise_strength: float,
    noise_seed,
    draws: float,
    model: str,
    strengths: str = "",
) -> tuple[Image.Image, Image.Image]:
    """``/noise``: the image with the chosen noise inputs and seed, and its per-pixel std over K draws.

    ``strengths`` (optional): one factor per noise input, comma separated, multiplied by ``noise_strength``.
    """
    require_model(model)
    seed = parse_seed(seed)
    nseed = parse_seed(noise_seed, "noise seed")
    draws = int(draws)
    if not 2 <= draws <= MAX_DRAWS:
        raise gr.Error(f"draws must be between 2 and {MAX_DRAWS}, got {draws}", print_exception=False)
    with user_errors():
        G = models.get(model)
        on = {int(i) for i in noise_layers or []}
        if on and max(on) >= G.num_layers:
            raise gr.Error(f"this model has noise inputs 0..{G.num_layers - 1}", print_exception=False)
        mask = [i in on for i in range(G.num_layers)]
        strength = per_input_strengths(strengths, G.num_layers, float(noise_strength))
        recipe = model_recipe(
            model,
            seed=seed,
            truncation_psi=float(truncation_psi),
            noise_mode="random",
            noise_layers=mask,
            noise_seed=nseed,
            noise_strength=strength,
        )
        with models.use(model) as G:
            image = recipe_image(render_tensor(G, recipe), recipe)
            _, std = explore.noise_std_map(
                G,
                recipe_ws(G, recipe),
                draws=draws,
                seed=nseed,
                noise_layers=mask,
                noise_strength=strength,
            )
    std_img = Image.fromarray(explore.std_image(std))
    std_img.info["stylescope-std"] = f"max {float(std.max()):.4f} mean {float(std.mean()):.4f} draws {draws}"
    return image, std_img


def per_input_strengths(text: str, count: int, scale: float) -> float | list[float]:
    """``"1, 0.5, ..."`` (one value per noise input) times ``scale``; empty text means ``scale`` everywhere."""
    text = (text or "").strip()
    if not text:
        return scale
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise gr.Error(
            "per-input strengths must be numbers separated by commas", print_exception=False
        ) from None
    if len(values) != count:
        raise gr.Error(
            f"give {count} per-input strengths (one per noise input), got {len(values)}",
            print_exception=False,
        )
    return [v * scale for v in values]


def noise_with_info(model, seed, psi, layers, strength, noise_seed, draws, strengths=""):
    with Timer() as t:
        image, std = noise(seed, psi, layers, strength, noise_seed, draws, model, strengths)
    return image, std, f"{std.info['stylescope-std']} · **{t.ms:.0f} ms**", image.info["stylescope-recipe"]


def new_noise_seed() -> int:
    # A seed for the user to try, not model randomness: a private RNG, never the global one.
    return random.SystemRandom().randrange(0, 100_000)


def on_model(model: str):
    if not model:
        return gr.update(choices=[], value=[])
    with user_errors():
        return gr.update(choices=layer_choices(model), value=list(range(models.get(model).num_layers)))


def build(shared: Shared) -> NoiseTab:
    model = shared.model.value
    choices = layer_choices(model) if model else []
    gr.Markdown(EXPLAIN)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            seed = gr.Textbox("42", label="Seed", max_lines=1)
            psi = gr.Slider(-1, 2, 0.7, step=0.05, label="Truncation psi")
            preset = gr.Radio(list(explore.NOISE_PRESETS), value="all", label="Preset (StyleGAN Fig. 5)")
            layers = gr.CheckboxGroup(
                choices,
                value=[c[1] for c in choices],
                label="Noise inputs switched on",
                elem_id="noise-layers",
            )
            strength = gr.Slider(0, 3, 1, step=0.05, label="Noise strength (all inputs)")
            strengths = gr.Textbox(
                "",
                label="Per-input strengths (optional)",
                placeholder=f"one factor per input, comma separated ({len(choices)} values), e.g. 1, 1, 0.5, ...",
                max_lines=1,
            )
            with gr.Row(equal_height=True):
                noise_seed = gr.Number(0, precision=0, minimum=0, label="Noise seed", scale=3)
                resample = gr.Button("Resample", scale=1)
            draws = gr.Slider(2, MAX_DRAWS, 16, step=1, label="Draws K for the std map")
            go = gr.Button("Render", variant="primary", elem_id="noise-go")
        with gr.Column(scale=2):
            with gr.Row():
                image = result_image(
                    "Image", height=320, fmt=shared.config.image_format, elem_id="noise-image"
                )
                std = result_image("Per-pixel std over K draws", height=320)
            info = gr.Markdown()
    return NoiseTab(
        seed, psi, preset, layers, strength, strengths, noise_seed, resample, draws, go, image, std, info
    )


def wire(h: NoiseTab, shared: Shared) -> None:
    model_events = dict(concurrency_id="model", concurrency_limit=shared.config.concurrency_limit)
    inputs = [shared.model, h.seed, h.psi, h.layers, h.strength, h.noise_seed, h.draws, h.strengths]
    outputs = [h.image, h.std, h.info, shared.last_recipe]
    ui = dict(api_visibility="private", trigger_mode="always_last", **model_events)
    h.preset.input(
        preset_layers, [shared.model, h.preset], h.layers, queue=False, api_visibility="private"
    ).then(noise_with_info, inputs, outputs, **ui)
    h.resample.click(new_noise_seed, None, h.noise_seed, queue=False, api_visibility="private").then(
        noise_with_info, inputs, outputs, **ui
    )
    gr.on(
        [
            h.go.click,
            h.seed.submit,
            h.psi.release,
            h.strength.release,
            h.draws.release,
            h.layers.input,
            h.strengths.submit,
        ],
        noise_with_info,
        inputs,
        outputs,
        **ui,
    )
    api = gr.Button(visible=False)
    api.click(
        noise,
        [h.seed, h.psi, h.layers, h.strength, h.noise_seed, h.draws, shared.model, h.strengths],
        [h.image, h.std],
        api_name="noise",
        **model_events,
    )
    shared.model.change(on_model, shared.model, h.layers, api_visibility="private")
