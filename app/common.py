"""Small helpers shared by the tab handlers: user-error conversion, seed parsing, recipe images."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr
from PIL import Image

from app import models
from core.cli.common import parse_seeds
from core.errors import StyleScopeError
from core.images import to_pil
from core.render import MAX_SEED, Recipe, recipe_png_text

NO_MODEL = "No model found in assets/models — train one in the Train tab or pass --model."


def one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn mistakes a person can make (StyleScopeError, ValueError) into a one-line ``gr.Error``."""
    try:
        yield
    except gr.Error:
        raise
    except (StyleScopeError, ValueError) as e:
        raise gr.Error(one_line(e), print_exception=False) from None


def require_model(model: str | None) -> str:
    if not model:
        raise gr.Error(NO_MODEL, print_exception=False)
    return model


def parse_seed(text: str | int | float | None, what: str = "seed") -> int:
    """One seed from a text box (``"42"``). Raises gr.Error with a readable sentence."""
    if isinstance(text, bool):
        text = None
    if isinstance(text, float) and text.is_integer():
        text = int(text)
    if isinstance(text, int):
        if not 0 <= text <= MAX_SEED:
            raise gr.Error(f"{what} must be between 0 and {MAX_SEED}, got {text}", print_exception=False)
        return text
    s = str(text or "").strip()
    if not s.isdigit():
        raise gr.Error(
            f"{what} must be a whole number between 0 and {MAX_SEED}, got {s!r}", print_exception=False
        )
    value = int(s)
    if value > MAX_SEED:
        raise gr.Error(f"{what} must be between 0 and {MAX_SEED}, got {value}", print_exception=False)
    return value


def parse_seed_list(text: str, *, limit: int, what: str = "seeds") -> list[int]:
    """Seeds and ranges (``"1,5,10-12"``), at most ``limit``. Raises gr.Error."""
    with user_errors():
        seeds = parse_seeds(str(text or ""))
    if len(seeds) > limit:
        raise gr.Error(f"at most {limit} {what} here, got {len(seeds)}", print_exception=False)
    return seeds


def recipe_image(tensor, recipe: Recipe) -> Image.Image:
    """First image of a core tensor as PIL, carrying its recipe (PNG outputs embed it as a text chunk)."""
    img = to_pil(tensor[:1])[0]
    img.info.update(recipe_png_text(recipe))
    return img


def model_recipe(model: str, **fields) -> Recipe:
    """A recipe naming ``model`` by path and content hash."""
    return Recipe(model=str(model), model_hash=models.digest(model), **fields)


class Timer:
    """``with Timer() as t: ...; t.ms`` — wall time of a render, shown to the user."""

    def __enter__(self) -> Timer:
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.ms = (time.perf_counter() - self._t0) * 1000.0


def result_image(label: str, *, height: int = 256, fmt: str = "png", elem_id: str | None = None) -> gr.Image:
    """A read-only output image shown with scaled (crisp) pixels: the one style every tab uses."""
    return gr.Image(
        elem_classes=["scaled"],
        label=label,
        type="pil",
        interactive=False,
        format=fmt,
        height=height,
        elem_id=elem_id,
    )
