"""Layers: feature maps of any synthesis layer, to show what coarse and fine layers carry; v1 vs v2 side by side."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from PIL import Image

from app import models
from app.common import model_recipe, parse_seed, require_model, result_image, user_errors
from app.state import Shared
from core import explore

EXPLAIN = (
    "Feature maps after each synthesis layer (each channel scaled to its own range). Coarse layers (4-8 px) "
    "hold the layout: pose and face shape; fine layers (64 px and up) hold texture and colour detail. Pick a "
    "second model to compare StyleGAN (v1, AdaIN) with StyleGAN2 on the same seed: v1's AdaIN normalises each "
    "map separately, which StyleGAN2 (Sec. 2) blames for its 'droplet' artifacts."
)
NONE = "(none)"
MAX_PPL_PAIRS = 2000
PPL_EXPLAIN = (
    "Perceptual path length (StyleGAN paper, Sec. 4.1): how much the image changes for a tiny step between two "
    "random latents, averaged over many pairs. Lower means smoother, better-disentangled latents; the paper "
    "finds paths in W shorter than in Z, and StyleGAN2's path-length regularisation shortens them further. "
    "Distances are LPIPS when its VGG16 weights are installed, otherwise a pixel distance (the result says "
    "which): compare numbers of one distance only."
)


@dataclass
class LayersTab:
    seed: gr.Textbox
    psi: gr.Slider
    layer: gr.Dropdown
    mode: gr.Radio
    channel: gr.Slider
    cmap: gr.Dropdown
    compare: gr.Dropdown
    go: gr.Button
    image: gr.Image
    feats: gr.Image
    image2: gr.Image
    feats2: gr.Image
    info: gr.Markdown
    ppl_pairs: gr.Slider
    ppl_sampling: gr.Radio
    ppl_go: gr.Button
    ppl_info: gr.Markdown


def layer_choices(model: str) -> list[tuple[str, str]]:
    return [
        (f"{name} ({res}px, {ch} ch)", name) for name, res, ch in explore.feature_layers(models.get(model))
    ]


def counterpart(model: str) -> str | None:
    """The v1 model of a v2 shipped model (``...-stylegan2`` <-> ``...-stylegan1``), if it exists."""
    p = Path(model)
    for a, b in (("stylegan2", "stylegan1"), ("stylegan1", "stylegan2")):
        if a in p.name:
            other = p.with_name(p.name.replace(a, b))
            if other.is_file():
                return str(other)
    return None


def compare_choices(model: str) -> list[tuple[str, str]]:
    """(file name, path) of every other known model, after a "(none)" entry."""
    known = sorted(set(models.known_models()) - {str(Path(model).resolve())}) if model else []
    return [(NONE, NONE), *[(Path(p).name, p) for p in known]]


def render_layer(model: str, seed, psi: float, layer: str, mode: str, channel: float, cmap: str):
    """Image and colour-mapped feature maps of one layer for one model."""
    with user_errors():
        recipe = model_recipe(model, seed=parse_seed(seed), truncation_psi=float(psi))
        with models.use(model) as G:
            img, f = explore.features(G, recipe, layer)
        fimg = explore.feature_grid(f, mode=mode, channel=min(int(channel), f.shape[1] - 1), cmap=cmap)
    from core.images import to_pil

    return to_pil(img)[0], Image.fromarray(fimg), f.shape[1]


def layers(
    seed, truncation_psi: float, layer: str, mode: str, channel: float, cmap: str, compare: str, model: str
):
    """``/layers``: (image, feature maps, compare image, compare feature maps)."""
    require_model(model)
    img, fimg, nch = render_layer(model, seed, truncation_psi, layer, mode, channel, cmap)
    img2 = fimg2 = None
    info = f"`{layer}`: {nch} channels"
    if compare and compare != NONE:
        img2, fimg2, nch2 = render_layer(compare, seed, truncation_psi, layer, mode, channel, cmap)
        info += f" · compare `{Path(compare).name}` {nch2} channels"
    return img, fimg, img2, fimg2, info


def path_lengths(model: str, compare: str, pairs: float, sampling: str, progress=gr.Progress()) -> str:
    """``/ppl``: perceptual path length in W and Z of the model (and the compared one) as a Markdown table."""
    require_model(model)
    from core.metrics.ppl import SAMPLINGS, make_distance, perceptual_path_length

    n = int(pairs)
    if not 8 <= n <= MAX_PPL_PAIRS:
        raise gr.Error(f"pairs must be between 8 and {MAX_PPL_PAIRS}", print_exception=False)
    if sampling not in SAMPLINGS:
        raise gr.Error(f"sampling must be one of {', '.join(SAMPLINGS)}", print_exception=False)
    paths = [model] + ([compare] if compare and compare != NONE else [])
    rows, jobs = [], [(p, space) for p in paths for space in ("w", "z")]
    with user_errors(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fallback is named in the table instead
        distance, dist_name = make_distance("auto")
        for i, (path, space) in enumerate(jobs):
            with models.use(path) as G:
                r = perceptual_path_length(
                    G,
                    n=n,
                    space=space,
                    sampling=sampling,
                    distance=distance,
                    crop=True,
                    progress=lambda d, total, i=i, desc=f"{Path(path).name} {space.upper()}": progress(
                        (i * total + d, len(jobs) * total), desc=desc
                    ),
                )
            rows.append(
                f"| {Path(path).name} | {space.upper()}-{sampling} | {r['ppl']:.2f} | {r['median']:.2f} |"
            )
    return "\n".join(
        [
            f"{n} pairs per row, face crop, distance **{dist_name}**, psi 1, seed 0 "
            f"(CLI: `stylescope ppl --model M --n {n} --sampling {sampling} --crop`).",
            "",
            "| model | space | PPL (1-99% mean) | median |",
            "|---|---|---|---|",
            *rows,
        ]
    )


def on_model(model: str):
    if not model:
        return gr.update(choices=[]), gr.update(choices=[NONE], value=NONE)
    with user_errors():
        choices = layer_choices(model)
    other = counterpart(model)
    if other:
        models.register(other)
    return (
        gr.update(choices=choices, value=choices[min(3, len(choices) - 1)][1]),
        gr.update(choices=compare_choices(model), value=str(Path(other).resolve()) if other else NONE),
    )


def build(shared: Shared) -> LayersTab:
    model = shared.model.value
    choices = layer_choices(model) if model else []
    other = counterpart(model) if model else None
    if other:
        models.register(other)
    gr.Markdown(EXPLAIN)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            seed = gr.Textbox("42", label="Seed", max_lines=1)
            psi = gr.Slider(-1, 2, 0.7, step=0.05, label="Truncation psi")
            layer = gr.Dropdown(
                choices, value=choices[min(3, len(choices) - 1)][1] if choices else None, label="Layer"
            )
            mode = gr.Radio(["grid", "mean", "channel"], value="grid", label="Show")
            channel = gr.Slider(0, 511, 0, step=1, label="Channel (for 'channel')")
            cmap = gr.Dropdown(list(explore.CMAPS), value="viridis", label="Colour map")
            compare = gr.Dropdown(
                compare_choices(model),
                value=str(Path(other).resolve()) if other else NONE,
                label="Compare with model (e.g. StyleGAN v1 vs v2)",
            )
            go = gr.Button("Show layer", variant="primary", elem_id="layers-go")
        with gr.Column(scale=2):
            with gr.Row():
                image = result_image("Image")
                feats = result_image("Feature maps")
            with gr.Row():
                image2 = result_image("Compare: image")
                feats2 = result_image("Compare: feature maps")
            info = gr.Markdown()
    with gr.Accordion("Perceptual path length (this model and the compared one)", open=False):
        gr.Markdown(PPL_EXPLAIN)
        with gr.Row():
            ppl_pairs = gr.Slider(8, MAX_PPL_PAIRS, 200, step=8, label="Pairs", scale=3)
            ppl_sampling = gr.Radio(["end", "full"], value="end", label="Sampling", scale=2)
            ppl_go = gr.Button("Measure", scale=1, elem_id="layers-ppl")
        ppl_info = gr.Markdown()
    return LayersTab(
        seed,
        psi,
        layer,
        mode,
        channel,
        cmap,
        compare,
        go,
        image,
        feats,
        image2,
        feats2,
        info,
        ppl_pairs,
        ppl_sampling,
        ppl_go,
        ppl_info,
    )


def wire(h: LayersTab, shared: Shared) -> None:
    gr.on(
        [
            h.go.click,
            h.seed.submit,
            h.layer.input,
            h.mode.input,
            h.channel.release,
            h.cmap.input,
            h.compare.input,
        ],
        layers,
        [h.seed, h.psi, h.layer, h.mode, h.channel, h.cmap, h.compare, shared.model],
        [h.image, h.feats, h.image2, h.feats2, h.info],
        api_name="layers",
        trigger_mode="always_last",
        concurrency_id="model",
        concurrency_limit=shared.config.concurrency_limit,
    )
    h.ppl_go.click(
        path_lengths,
        [shared.model, h.compare, h.ppl_pairs, h.ppl_sampling],
        h.ppl_info,
        api_name="ppl",
        concurrency_id="model",
        concurrency_limit=shared.config.concurrency_limit,
    )
    shared.model.change(on_model, shared.model, [h.layer, h.compare], api_visibility="private")
