"""Style mixing: the StyleGAN paper's Figure 3 matrix (source A seeds as rows, source B seeds as columns)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from app import models
from app.common import Timer, model_recipe, parse_seed_list, require_model, result_image, user_errors
from app.state import Shared
from core import explore
from core.images import make_grid, to_pil

MAX_SOURCES = 8
MAX_MEASURE_PAIRS = 512
EXPLAIN = (
    "Each cell takes the ws rows ticked below from **source B** (top row) and all other rows from **source A** "
    "(left column). Coarse rows (4-8 px) carry pose, face shape and glasses; middle rows (16-32 px) smaller "
    "features and hair style; fine rows (64 px and up) the colour scheme and micro-structure (StyleGAN, Fig. 3). "
    "How well a model follows this is measurable below. On the shipped SynthFaces models, the StyleGAN v1 model "
    "(one RGB output) shows the fine rows repainting background and light; the StyleGAN2 model (skip outputs) "
    "decides nearly everything in its coarse rows."
)


@dataclass
class MixingTab:
    row_seeds: gr.Textbox
    col_seeds: gr.Textbox
    coarse: gr.Button
    middle: gr.Button
    fine: gr.Button
    rows: gr.CheckboxGroup
    alpha: gr.Slider
    psi: gr.Slider
    noise_mode: gr.Radio
    go: gr.Button
    image: gr.Image
    info: gr.Markdown
    measure_pairs: gr.Slider
    measure: gr.Button
    measure_plot: gr.Plot
    measure_info: gr.Markdown


def row_choices(model: str) -> list[tuple[str, int]]:
    """(label, row index) per ws row, labelled with its resolution; computed from the model."""
    return list(zip(explore.row_labels(models.get(model)), range(models.get(model).num_ws), strict=True))


def preset(model: str, name: str) -> list[int]:
    """ws rows of a Coarse / Middle / Fine preset for this model."""
    require_model(model)
    with user_errors():
        return explore.mixing_rows(models.get(model), name)


def mix(
    row_seeds: str,
    col_seeds: str,
    rows: list,
    alpha: float,
    truncation_psi: float,
    noise_mode: str,
    model: str,
):
    """``/mix``: the mixing matrix as one image; the PNG embeds the matrix spec and every cell's recipe."""
    require_model(model)
    a = parse_seed_list(row_seeds, limit=MAX_SOURCES, what="source A seeds")
    b = parse_seed_list(col_seeds, limit=MAX_SOURCES, what="source B seeds")
    with user_errors():
        rows = sorted({int(r) for r in rows or []})
        with models.use(model) as G:
            if rows and max(rows) >= G.num_ws:
                raise gr.Error(f"this model has ws rows 0..{G.num_ws - 1}", print_exception=False)
            grid = explore.mixing_matrix(
                G, a, b, rows, psi=float(truncation_psi), alpha=float(alpha), noise_mode=noise_mode
            )
        image = to_pil(make_grid(grid, nrow=len(b) + 1, padding=2, pad_value=1.0))[0]
        first = (
            model_recipe(
                model,
                seed=a[0],
                mix_seed=b[0],
                mix_layers=rows,
                mix_alpha=float(alpha),
                truncation_psi=float(truncation_psi),
                noise_mode=noise_mode,
            )
            if rows
            else model_recipe(model, seed=a[0], truncation_psi=float(truncation_psi), noise_mode=noise_mode)
        )
    spec = {"kind": "mixing_matrix", "row_seeds": a, "col_seeds": b, "cell_recipe": first.to_dict()}
    image.info["stylescope-mix"] = json.dumps(spec)
    image.info["stylescope-recipe"] = first.to_json()
    return image


def mix_with_info(model, row_seeds, col_seeds, rows, alpha, psi, noise_mode):
    with Timer() as t:
        image = mix(row_seeds, col_seeds, rows, alpha, psi, noise_mode, model)
    n = len(json.loads(image.info["stylescope-mix"])["row_seeds"]) * len(
        json.loads(image.info["stylescope-mix"])["col_seeds"]
    )
    return image, f"{n} mixed images in **{t.ms:.0f} ms**", image.info["stylescope-recipe"]


def measure_rows(model: str, pairs: float, progress=gr.Progress()):
    """Which ws rows carry which SynthFaces factor (``core.metrics.row_influence``), as a heatmap."""
    require_model(model)
    from app.tabs.directions import DEFAULT_CLASSIFIER, get_scorer
    from core.metrics.disentanglement import plot_row_influence, row_influence

    n = int(pairs)
    if not 8 <= n <= MAX_MEASURE_PAIRS:
        raise gr.Error(f"pairs must be between 8 and {MAX_MEASURE_PAIRS}", print_exception=False)
    with user_errors(), Timer() as t:
        classifier = get_scorer(str(DEFAULT_CLASSIFIER)).classifier
        with models.use(model) as G:
            report = row_influence(
                G, classifier, n_pairs=n, progress=lambda d, total: progress((d, total), desc="pairs")
            )
        fig = plot_row_influence(report, title=f"{Path(model).name}: {n} pairs")
    return fig, (
        f"{n} pairs in **{t.ms / 1000:.1f} s**. Each cell: how often a factor follows B when the mix takes only "
        "that ws row from B (1 = this row alone decides it). The CLI gives the same numbers: `stylescope "
        f"evaluate --model {Path(model).name} --row-pairs {n} --rows-only`."
    )


def on_model(model: str):
    if not model:
        return gr.update(choices=[], value=[])
    with user_errors():
        return gr.update(choices=row_choices(model), value=explore.mixing_rows(models.get(model), "coarse"))


def build(shared: Shared) -> MixingTab:
    model = shared.model.value
    choices = row_choices(model) if model else []
    coarse_rows = explore.mixing_rows(models.get(model), "coarse") if model else []
    gr.Markdown(EXPLAIN)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            row_seeds = gr.Textbox("1,2,3", label="Source A seeds (rows)", max_lines=1, elem_id="mix-a")
            col_seeds = gr.Textbox(
                "10,11,12,13", label="Source B seeds (columns)", max_lines=1, elem_id="mix-b"
            )
            with gr.Row():
                coarse = gr.Button("Coarse", size="sm")
                middle = gr.Button("Middle", size="sm")
                fine = gr.Button("Fine", size="sm")
            rows = gr.CheckboxGroup(
                choices, value=coarse_rows, label="ws rows taken from B", elem_id="mix-rows"
            )
            alpha = gr.Slider(
                0, 1, 1, step=0.05, label="Blend alpha", info="1 copies B's rows; 0.5 blends halfway"
            )
            psi = gr.Slider(-1, 2, 0.7, step=0.05, label="Truncation psi")
            noise_mode = gr.Radio(["const", "none"], value="const", label="Noise")
            go = gr.Button("Mix", variant="primary", elem_id="mix-go")
        with gr.Column(scale=2):
            image = result_image(
                "Mixing matrix", height=480, fmt=shared.config.image_format, elem_id="mix-image"
            )
            info = gr.Markdown()
    with gr.Accordion("Measure which rows carry which attribute (SynthFaces models)", open=False):
        gr.Markdown(
            "Mixes pairs of random faces one ws row at a time and asks the SynthFaces attribute classifier which "
            "factors followed B. Rows that decide a factor light up; the StyleGAN paper expects pose and shape in "
            "the coarse rows, smaller features in the middle rows and colours in the fine rows."
        )
        with gr.Row():
            measure_pairs = gr.Slider(8, MAX_MEASURE_PAIRS, 64, step=8, label="Pairs", scale=3)
            measure = gr.Button("Measure", scale=1, elem_id="mix-measure")
        measure_plot = gr.Plot(label="Row influence", elem_id="mix-measure-plot")
        measure_info = gr.Markdown()
    return MixingTab(
        row_seeds,
        col_seeds,
        coarse,
        middle,
        fine,
        rows,
        alpha,
        psi,
        noise_mode,
        go,
        image,
        info,
        measure_pairs,
        measure,
        measure_plot,
        measure_info,
    )


def wire(h: MixingTab, shared: Shared) -> None:
    model_events = dict(concurrency_id="model", concurrency_limit=shared.config.concurrency_limit)
    for button, name in ((h.coarse, "coarse"), (h.middle, "middle"), (h.fine, "fine")):
        button.click(
            functools.partial(preset, name=name), shared.model, h.rows, queue=False, api_visibility="private"
        ).then(
            mix_with_info,
            [shared.model, h.row_seeds, h.col_seeds, h.rows, h.alpha, h.psi, h.noise_mode],
            [h.image, h.info, shared.last_recipe],
            api_visibility="private",
            **model_events,
        )
    gr.on(
        [h.go.click, h.row_seeds.submit, h.col_seeds.submit, h.alpha.release, h.rows.input],
        mix_with_info,
        [shared.model, h.row_seeds, h.col_seeds, h.rows, h.alpha, h.psi, h.noise_mode],
        [h.image, h.info, shared.last_recipe],
        api_visibility="private",
        trigger_mode="always_last",
        **model_events,
    )
    api = gr.Button(visible=False)
    api.click(
        mix,
        [h.row_seeds, h.col_seeds, h.rows, h.alpha, h.psi, h.noise_mode, shared.model],
        h.image,
        api_name="mix",
        **model_events,
    )
    h.measure.click(
        measure_rows,
        [shared.model, h.measure_pairs],
        [h.measure_plot, h.measure_info],
        api_visibility="private",
        **model_events,
    )
    shared.model.change(on_model, shared.model, h.rows, api_visibility="private")
