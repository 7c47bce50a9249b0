"""Recipe: paste a recipe (or drop a StyleScope PNG) and get exactly the same image back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from app import models
from app.common import recipe_image, result_image, user_errors
from app.state import Shared
from core.render import Recipe, recipe_from_png, render_tensor


@dataclass
class RecipeTab:
    text: gr.Code
    png: gr.File
    from_last: gr.Button
    go: gr.Button
    image: gr.Image
    info: gr.Markdown


def resolve_model(recipe: Recipe, current: str) -> str:
    """The model a recipe names: by content hash among known models, else by path, else the session's model."""
    if recipe.model_hash:
        found = models.find_by_hash(recipe.model_hash)
        if found:
            return found
        if recipe.model and Path(recipe.model).is_file() and models.digest(recipe.model) == recipe.model_hash:
            return recipe.model
        raise gr.Error(
            f"this recipe needs model {Path(recipe.model).name or '?'} (hash {recipe.model_hash}), which is not "
            "loaded here; load it with the model picker first",
            print_exception=False,
        )
    if recipe.model and Path(recipe.model).is_file():
        return recipe.model
    if current:
        return current
    raise gr.Error(
        "this recipe names no model that exists here; load one with the model picker", print_exception=False
    )


def render_recipe(recipe_json: str, model: str = ""):
    """``/render_recipe``: the image a recipe describes, bit for bit what the recipe's author saw."""
    if not (recipe_json or "").strip():
        raise gr.Error("paste a recipe (JSON) first", print_exception=False)
    with user_errors():
        recipe = Recipe.from_json(recipe_json)
    path = resolve_model(recipe, model)
    with user_errors(), models.use(path) as G:
        return recipe_image(render_tensor(G, recipe), recipe)


def read_png(png: str | None) -> str:
    """``/recipe_from_png``: the recipe JSON embedded in a StyleScope PNG."""
    if not png:
        raise gr.Error("drop a PNG written by StyleScope", print_exception=False)
    with user_errors():
        return recipe_from_png(png).to_json(indent=2)


def render_with_info(recipe_json: str, model: str):
    image = render_recipe(recipe_json, model)
    recipe = Recipe.from_json(recipe_json)
    return (
        image,
        f"seed {recipe.seed}, psi {recipe.truncation_psi:g}, model `{Path(recipe.model).name or model}`",
    )


def last_recipe(text: str) -> str:
    if not text:
        raise gr.Error("render an image first (Explore, Style mixing or Noise tab)", print_exception=False)
    return Recipe.from_json(text).to_json(indent=2)


def build(shared: Shared) -> RecipeTab:
    gr.Markdown(
        "Every image StyleScope renders has a recipe: model (path + content hash), seed, truncation, mixing and "
        "noise settings. Paste one here, or drop a PNG downloaded from StyleScope, to render the same pixels."
    )
    with gr.Row():
        with gr.Column():
            text = gr.Code(language="json", label="Recipe JSON", interactive=True, elem_id="recipe-text")
            with gr.Row():
                from_last = gr.Button("Use the last image's recipe")
                go = gr.Button("Render recipe", variant="primary", elem_id="render-recipe")
            png = gr.File(label="…or drop a StyleScope PNG", file_types=[".png"], type="filepath")
        with gr.Column():
            image = result_image("Rendered from the recipe", height=400, fmt=shared.config.image_format)
            info = gr.Markdown()
    return RecipeTab(text, png, from_last, go, image, info)


def wire(h: RecipeTab, shared: Shared) -> None:
    model_events = dict(concurrency_id="model", concurrency_limit=shared.config.concurrency_limit)
    h.go.click(
        render_with_info, [h.text, shared.model], [h.image, h.info], api_visibility="private", **model_events
    )
    # The API endpoint: recipe JSON in, image out (the hidden session model is the fallback model).
    api = gr.Button(visible=False)
    api.click(render_recipe, [h.text, shared.model], h.image, api_name="render_recipe", **model_events)
    h.png.upload(read_png, h.png, h.text, api_name="recipe_from_png").success(
        render_with_info, [h.text, shared.model], [h.image, h.info], api_visibility="private", **model_events
    )
    h.from_last.click(last_recipe, shared.last_recipe, h.text, queue=False, api_visibility="private")
