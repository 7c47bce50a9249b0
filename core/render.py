"""Recipes: a JSON description of one image, and the function that renders it.

A recipe names the model (path plus content hash) and every random and user choice: seed (or W+ rows given
directly, e.g. from inverting a photo), truncation psi and cutoff, style mixing (second seed, ws rows, blend), noise (mode, per-layer switches, seed, strength) and latent
directions with their strengths. ``render(recipe)`` on the same device gives the same pixels, and PNGs written
by StyleScope embed their recipe in a ``stylescope-recipe`` text chunk, so any image can be dropped back in.

Seeds map to latents as ``z = randn(1, z_dim)`` from a CPU ``torch.Generator`` seeded with the seed, so a
seed means the same z on every device.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image
from torch import Tensor

from core.errors import RecipeError

RECIPE_VERSION = 1
PNG_TEXT_KEY = "stylescope-recipe"
MAX_SEED = 2**32 - 1
PSI_RANGE = (-5.0, 5.0)
STRENGTH_RANGE = (-100.0, 100.0)
NOISE_MODES = ("const", "random", "none")


class Direction(Protocol):
    """Anything that edits W+ latents: ``apply(ws [N, num_ws, w_dim], strength) -> ws``."""

    def apply(self, ws: Tensor, strength: float) -> Tensor: ...


@dataclass
class Recipe:
    """Everything needed to reproduce one generated image. See the module docstring."""

    model: str = ""
    model_hash: str | None = None
    seed: int = 0
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    class_idx: int | None = None
    mix_seed: int | None = None
    mix_layers: list[int] = field(default_factory=list)
    mix_alpha: float = 1.0
    noise_mode: str = "const"
    noise_layers: list[bool] | None = None
    noise_seed: int | None = None
    noise_strength: float | list[float] = 1.0
    directions: dict[str, float] = field(default_factory=dict)
    ws: list[list[float]] | None = None
    version: int = RECIPE_VERSION

    def __post_init__(self) -> None:
        self.validate()

    # -------------------------------------------------------------- validation
    def validate(self) -> Recipe:
        """Check types and ranges of every field. Raises RecipeError naming the field."""
        _int_field("seed", self.seed, 0, MAX_SEED)
        _float_field("truncation_psi", self.truncation_psi, *PSI_RANGE)
        if self.truncation_cutoff is not None:
            _int_field("truncation_cutoff", self.truncation_cutoff, 0, 64)
        if self.class_idx is not None:
            _int_field("class_idx", self.class_idx, 0, 1_000_000)
        if self.mix_seed is not None:
            _int_field("mix_seed", self.mix_seed, 0, MAX_SEED)
        if not isinstance(self.mix_layers, (list, tuple)):
            raise RecipeError("mix_layers: must be a list of ws row indices")
        for r in self.mix_layers:
            _int_field("mix_layers", r, 0, 63)
        self.mix_layers = sorted({int(r) for r in self.mix_layers})
        if self.mix_layers and self.mix_seed is None:
            raise RecipeError("mix_seed: required when mix_layers is not empty")
        _float_field("mix_alpha", self.mix_alpha, 0.0, 1.0)
        if self.noise_mode not in NOISE_MODES:
            raise RecipeError(f"noise_mode: must be one of {', '.join(NOISE_MODES)}, got {self.noise_mode!r}")
        if self.noise_layers is not None:
            if not isinstance(self.noise_layers, (list, tuple)) or not all(
                isinstance(b, bool) for b in self.noise_layers
            ):
                raise RecipeError("noise_layers: must be a list of true/false values, one per noise input")
            self.noise_layers = list(self.noise_layers)
        if self.noise_seed is not None:
            _int_field("noise_seed", self.noise_seed, 0, MAX_SEED)
        if isinstance(self.noise_strength, (list, tuple)):
            if not self.noise_strength:
                raise RecipeError("noise_strength: give one number, or one per noise input")
            for v in self.noise_strength:
                _float_field("noise_strength", v, 0.0, 100.0)
            self.noise_strength = [float(v) for v in self.noise_strength]
        else:
            _float_field("noise_strength", self.noise_strength, 0.0, 100.0)
        if not isinstance(self.directions, dict):
            raise RecipeError("directions: must be an object {name: strength}")
        for name, strength in self.directions.items():
            if not isinstance(name, str) or not name:
                raise RecipeError("directions: names must be non-empty strings")
            _float_field(f"directions.{name}", strength, *STRENGTH_RANGE)
        if self.ws is not None:
            self.ws = _check_ws(self.ws)
        if not isinstance(self.model, str):
            raise RecipeError("model: must be a string (path or name of the model)")
        if self.model_hash is not None and not isinstance(self.model_hash, str):
            raise RecipeError("model_hash: must be a string")
        if self.version != RECIPE_VERSION:
            raise RecipeError(
                f"version: this StyleScope reads recipe version {RECIPE_VERSION}, got {self.version!r}"
            )
        return self

    # -------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        if not isinstance(data, Mapping):
            raise RecipeError("recipe: must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecipeError(f"{unknown[0]}: unknown recipe field")
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str | bytes) -> Recipe:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if len(text) > 1_000_000:
            raise RecipeError("recipe: text is larger than 1 MB")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise RecipeError(
                f"recipe: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
            ) from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)


def _check_ws(ws: Any) -> list[list[float]]:
    """W+ rows given directly (e.g. from inversion): a rectangular, finite ``[num_ws][w_dim]`` list."""
    if not isinstance(ws, (list, tuple)) or not ws or not all(isinstance(r, (list, tuple)) for r in ws):
        raise RecipeError("ws: must be a list of W+ rows (lists of numbers)")
    if len(ws) > 64 or len({len(r) for r in ws}) != 1 or not 1 <= len(ws[0]) <= 4096:
        raise RecipeError("ws: rows must all have the same length (w_dim <= 4096, at most 64 rows)")
    out = []
    for row in ws:
        for v in row:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise RecipeError(f"ws: values must be finite numbers, got {v!r}")
        out.append([float(v) for v in row])
    return out


def _int_field(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecipeError(f"{name}: must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise RecipeError(f"{name}: must be between {lo} and {hi}, got {value}")


def _float_field(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecipeError(f"{name}: must be a number, got {value!r}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise RecipeError(f"{name}: must be a finite number between {lo:g} and {hi:g}, got {value}")


# ---------------------------------------------------------------------------- latents from a recipe
def seed_to_z(seed: int, z_dim: int, device: torch.device | str = "cpu") -> Tensor:
    """The z of a seed: ``[1, z_dim]`` from a CPU generator, identical on every device."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(1, z_dim, generator=gen).to(device)


def seeds_to_z(seeds: list[int], z_dim: int, device: torch.device | str = "cpu") -> Tensor:
    return (
        torch.cat([seed_to_z(s, z_dim, device) for s in seeds])
        if seeds
        else torch.zeros(0, z_dim, device=device)
    )


def _class_vector(G: torch.nn.Module, class_idx: int | None, n: int, device) -> Tensor | None:
    if not G.c_dim:
        return None
    if class_idx is None:
        raise RecipeError(f"class_idx: this model is conditional ({G.c_dim} classes); choose a class")
    if class_idx >= G.c_dim:
        raise RecipeError(f"class_idx: must be below {G.c_dim}, got {class_idx}")
    c = torch.zeros(n, G.c_dim, device=device)
    c[:, class_idx] = 1
    return c


def recipe_ws(
    G: torch.nn.Module, recipe: Recipe, *, directions: Mapping[str, Direction] | None = None
) -> Tensor:
    """The W+ latents ``[1, num_ws, w_dim]`` a recipe describes (mapping, truncation, mixing, edits)."""
    device = G.w_avg.device
    if recipe.truncation_cutoff is not None and recipe.truncation_cutoff > G.num_ws:
        raise RecipeError(
            f"truncation_cutoff: this model has {G.num_ws} ws rows, got {recipe.truncation_cutoff}"
        )
    if recipe.mix_layers and max(recipe.mix_layers) >= G.num_ws:
        raise RecipeError(f"mix_layers: this model has ws rows 0..{G.num_ws - 1}")
    c = _class_vector(G, recipe.class_idx, 1, device)
    psi, cutoff = recipe.truncation_psi, recipe.truncation_cutoff
    if recipe.ws is not None:
        # Latents given directly (an inverted photo): the seed is not used; truncation still applies.
        ws = torch.tensor(recipe.ws, dtype=torch.float32, device=device)[None]
        if ws.shape[1:] != (G.num_ws, G.w_dim):
            raise RecipeError(
                f"ws: this model needs {G.num_ws} rows of {G.w_dim} values, got {list(ws.shape[1:])}"
            )
        ws = G.truncate(ws, psi, cutoff)
    else:
        ws = G.mapping(
            seed_to_z(recipe.seed, G.z_dim, device), c, truncation_psi=psi, truncation_cutoff=cutoff
        )
    if recipe.mix_layers:
        from core.models.stylegan import mix_styles

        ws_b = G.mapping(
            seed_to_z(recipe.mix_seed, G.z_dim, device), c, truncation_psi=psi, truncation_cutoff=cutoff
        )
        ws = mix_styles(ws, ws_b, recipe.mix_layers, recipe.mix_alpha)
    for name, strength in recipe.directions.items():
        if directions is None or name not in directions:
            raise RecipeError(f"directions.{name}: no direction of that name is loaded for this model")
        ws = directions[name].apply(ws, float(strength))
    return ws


def render_tensor(
    G: torch.nn.Module,
    recipe: Recipe,
    *,
    directions: Mapping[str, Direction] | None = None,
    **synthesis_kwargs,
) -> Tensor:
    """Render a recipe with a given generator: ``[1, C, R, R]`` float32 in nominal [-1, 1]."""
    if recipe.noise_layers is not None and len(recipe.noise_layers) != G.num_layers:
        raise RecipeError(
            f"noise_layers: this model has {G.num_layers} noise inputs, got {len(recipe.noise_layers)}"
        )
    if isinstance(recipe.noise_strength, list) and len(recipe.noise_strength) != G.num_layers:
        raise RecipeError(
            f"noise_strength: this model has {G.num_layers} noise inputs, got {len(recipe.noise_strength)} values"
        )
    gen = None
    if recipe.noise_mode == "random":
        gen = torch.Generator().manual_seed(
            recipe.noise_seed if recipe.noise_seed is not None else recipe.seed
        )
    with torch.no_grad():
        ws = recipe_ws(G, recipe, directions=directions)
        plain_noise = recipe.noise_layers is None and recipe.noise_strength == 1.0
        if not synthesis_kwargs and plain_noise and recipe.noise_mode in ("const", "none"):
            from core.fastpath import render_fast_path

            fast = render_fast_path(G, recipe.noise_mode)  # None unless enabled (--fast) and G is on a GPU
            if fast is not None:
                return fast(ws)
        return G.synthesis(
            ws,
            noise_mode=recipe.noise_mode,
            noise_layers=recipe.noise_layers,
            noise_strength=recipe.noise_strength,
            generator=gen,
            **synthesis_kwargs,
        )


# ---------------------------------------------------------------------------- model cache
class ModelCache:
    """Process-wide, thread-safe LRU of loaded generators keyed by (resolved path, mtime, size, device)."""

    def __init__(self, capacity: int = 4, loader: Callable[..., torch.nn.Module] | None = None):
        self.capacity = capacity
        self._loader = loader
        self._items: OrderedDict[tuple, torch.nn.Module] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
        p = Path(path).expanduser().resolve()
        try:
            st = p.stat()
        except OSError:
            raise RecipeError(f"model: no model file at {path}") from None
        key = (str(p), st.st_mtime_ns, st.st_size, str(device))
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            loader = self._loader
            if loader is None:
                from core.checkpoints import load_generator as loader
            G = loader(p, device=device)
            self._items[key] = G
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
            return G


MODEL_CACHE = ModelCache()


def render(
    recipe: Recipe | str,
    *,
    G: torch.nn.Module | None = None,
    device: str | torch.device = "cpu",
    directions: Mapping[str, Direction] | None = None,
    check_hash: bool = True,
) -> Image.Image:
    """Render a recipe (object or JSON text) to a PIL image.

    Args:
        recipe: the recipe; its ``model`` path is loaded (cached) unless ``G`` is given.
        G: an already loaded generator to use instead of ``recipe.model``.
        device: where to load the model when ``G`` is None.
        directions: named latent directions the recipe may refer to.
        check_hash: verify ``recipe.model_hash`` against the model file's content hash.

    Raises:
        RecipeError: invalid field, missing model, hash mismatch, unknown direction.
    """
    from core.images import to_pil

    if isinstance(recipe, str):
        recipe = Recipe.from_json(recipe)
    if G is None:
        if not recipe.model:
            raise RecipeError("model: the recipe names no model")
        if check_hash and recipe.model_hash:
            from core.checkpoints.native import file_digest

            try:
                digest = file_digest(recipe.model)
            except OSError:
                raise RecipeError(f"model: no model file at {recipe.model}") from None
            if digest != recipe.model_hash:
                raise RecipeError(
                    f"model_hash: {recipe.model} has content hash {digest}, the recipe expects {recipe.model_hash}"
                )
        G = MODEL_CACHE.get(recipe.model, device)
    return to_pil(render_tensor(G, recipe, directions=directions))[0]


def recipe_png_text(recipe: Recipe) -> dict[str, str]:
    """The PNG text chunk that embeds a recipe."""
    return {PNG_TEXT_KEY: recipe.to_json()}


def recipe_from_png(path_or_bytes: str | os.PathLike | bytes) -> Recipe:
    """Read the recipe embedded in a StyleScope PNG. Raises RecipeError if there is none."""
    from core.images import read_png_text

    text = read_png_text(path_or_bytes).get(PNG_TEXT_KEY)
    if text is None:
        raise RecipeError("recipe: this PNG carries no StyleScope recipe")
    return Recipe.from_json(text)
