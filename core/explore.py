"""Exploration tools that reproduce the StyleGAN paper's figures on any generator.

* Seed grids and the truncation trick (Karras et al. 2019, sec. 4.1 and Figure 8:
  ``w' = w_avg + psi * (w - w_avg)`` on ws rows below the cutoff).
* The style-mixing matrix (Figure 3): ws rows of source B copied into source A, per coarse (4-8 px),
  middle (16-32 px) or fine (>= 64 px) group, optionally blended with ``alpha``.
* Stochastic variation (Figure 4): the per-pixel standard deviation of the image over K noise draws,
  and the noise presets of Figure 5 (noise in all layers, none, fine layers 64-1024 px only, coarse
  layers 4-32 px only).
* Interpolation between two seeds, linear in W or spherical (slerp) in Z, the paths that perceptual path
  length (sec. 4.2) integrates along.
* Feature maps of any synthesis layer as a channel grid, one channel or the channel mean, colour-mapped.

Everything here is a plain function of a generator and explicit seeds: no global RNG, no prints, no UI.
Single images go through :func:`core.render.render_tensor`, so every cell of a grid is reproducible from its
:class:`core.render.Recipe` (batched cells agree with batch-1 renders up to float rounding).
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from core.errors import InputError
from core.models.stylegan import noise_resolution
from core.render import Recipe, recipe_png_text, seeds_to_z

__all__ = [
    "CMAPS",
    "MIX_PRESETS",
    "NOISE_PRESETS",
    "colorize",
    "feature_grid",
    "feature_layers",
    "features",
    "interpolate",
    "interpolation_spec",
    "mixing_matrix",
    "mixing_rows",
    "noise_preset",
    "noise_std_map",
    "render_seeds",
    "row_labels",
    "save_animation",
]

NOISE_PRESETS = ("all", "none", "fine", "coarse")
MIX_PRESETS = ("coarse", "middle", "fine")
# Figure 5 of the StyleGAN paper: "coarse" noise feeds 4-32 px layers, "fine" noise 64-1024 px.
NOISE_COARSE_MAX_RES = 32
CMAPS = ("viridis", "magma", "inferno", "coolwarm", "gray")
ANIMATION_FORMATS = ("gif", "mp4", "zip")
Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------------------------- labels/presets
def row_labels(G: torch.nn.Module) -> list[str]:
    """One label per ws row, naming its synthesis resolution and group, e.g. ``"3: 8px coarse"``."""
    group_of = {r: name for name, rows in G.layer_groups.items() for r in rows}
    return [f"{r}: {res}px {group_of[r]}" for r, res in enumerate(G.row_resolutions)]


def mixing_rows(G: torch.nn.Module, preset: str) -> list[int]:
    """ws rows that a mixing preset copies from source B (``coarse`` / ``middle`` / ``fine``).

    Raises:
        InputError: unknown preset.
    """
    if preset not in MIX_PRESETS:
        raise InputError(f"unknown mixing preset {preset!r}; use one of {', '.join(MIX_PRESETS)}")
    return list(G.layer_groups[preset])


def noise_preset(G: torch.nn.Module, name: str) -> list[bool]:
    """Per-noise-input switches for a preset of the paper's Figure 5.

    Args:
        G: the generator (its ``num_layers`` noise inputs; input ``i`` works at ``noise_resolution(i)`` px).
        name: ``"all"``, ``"none"``, ``"fine"`` (64 px and up) or ``"coarse"`` (4-32 px).

    Returns:
        ``num_layers`` booleans, True where noise is on.

    Raises:
        InputError: unknown preset name.
    """
    if name not in NOISE_PRESETS:
        raise InputError(f"unknown noise preset {name!r}; use one of {', '.join(NOISE_PRESETS)}")
    res = [noise_resolution(i) for i in range(G.num_layers)]
    if name == "all":
        return [True] * len(res)
    if name == "none":
        return [False] * len(res)
    if name == "fine":
        return [r > NOISE_COARSE_MAX_RES for r in res]
    return [r <= NOISE_COARSE_MAX_RES for r in res]


def noise_labels(G: torch.nn.Module) -> list[str]:
    """One label per noise input, e.g. ``"noise 4: 16px"``."""
    return [f"noise {i}: {noise_resolution(i)}px" for i in range(G.num_layers)]


# ---------------------------------------------------------------------------------------------- seeds and grids
def _ws_for_seeds(
    G: torch.nn.Module, seeds: Sequence[int], *, psi: float, cutoff: int | None, class_idx: int | None = None
) -> Tensor:
    device = G.w_avg.device
    z = seeds_to_z(list(seeds), G.z_dim, device)
    c = None
    if G.c_dim:
        c = torch.zeros(len(seeds), G.c_dim, device=device)
        c[:, class_idx or 0] = 1
    return G.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff)


def _synthesize(G: torch.nn.Module, ws: Tensor, *, batch: int, noise_mode: str, **kwargs) -> Tensor:
    out = []
    with torch.no_grad():
        for i in range(0, ws.shape[0], batch):
            out.append(G.synthesis(ws[i : i + batch], noise_mode=noise_mode, **kwargs).float())
    return torch.cat(out)


def render_seeds(
    G: torch.nn.Module,
    seeds: Sequence[int],
    *,
    psi: float = 1.0,
    cutoff: int | None = None,
    noise_mode: str = "const",
    batch: int = 8,
) -> Tensor:
    """Images of several seeds, batched: ``[len(seeds), 3, R, R]`` float32 in nominal [-1, 1].

    ``noise_mode="random"`` is not allowed here: fresh noise in a batch would not match the seed's recipe.

    Raises:
        InputError: no seeds, or random noise.
    """
    if not seeds:
        raise InputError("no seeds given")
    if noise_mode == "random":
        raise InputError("a seed grid uses const or none noise; random noise is per-image (use its recipe)")
    with torch.no_grad():
        ws = _ws_for_seeds(G, seeds, psi=psi, cutoff=cutoff)
        return _synthesize(G, ws, batch=batch, noise_mode=noise_mode)


def mixing_matrix(
    G: torch.nn.Module,
    row_seeds: Sequence[int],
    col_seeds: Sequence[int],
    rows: Sequence[int] | Sequence[bool],
    *,
    psi: float = 1.0,
    cutoff: int | None = None,
    alpha: float = 1.0,
    noise_mode: str = "const",
    batch: int = 8,
) -> Tensor:
    """The style-mixing matrix of the StyleGAN paper's Figure 3.

    Args:
        G: generator.
        row_seeds: source A seeds, one matrix row each.
        col_seeds: source B seeds, one matrix column each.
        rows: ws rows copied from B (indices, or a boolean mask of length ``num_ws``).
        psi, cutoff: truncation applied to both sources before mixing.
        alpha: 1 copies B's rows; smaller values blend ``lerp(A, B, alpha)`` on those rows.
        noise_mode: ``"const"`` or ``"none"``.

    Returns:
        ``[(len(row_seeds) + 1) * (len(col_seeds) + 1), 3, R, R]`` images in row-major order: the top-left
        cell is black, the first row shows the B sources, the first column the A sources, and cell
        ``(i + 1, j + 1)`` is A_i with rows from B_j. Tile with ``make_grid(out, nrow=len(col_seeds) + 1)``.

    Raises:
        InputError: no seeds, alpha outside [0, 1], random noise.
    """
    from core.models.stylegan import mix_styles

    if not row_seeds or not col_seeds:
        raise InputError("the mixing matrix needs at least one source A seed and one source B seed")
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be between 0 and 1, got {alpha}")
    if noise_mode == "random":
        raise InputError("the mixing matrix uses const or none noise so that every cell has a recipe")
    na, nb = len(row_seeds), len(col_seeds)
    with torch.no_grad():
        ws_a = _ws_for_seeds(G, row_seeds, psi=psi, cutoff=cutoff)
        ws_b = _ws_for_seeds(G, col_seeds, psi=psi, cutoff=cutoff)
        mixed = mix_styles(
            ws_a.repeat_interleave(nb, dim=0), ws_b.repeat(na, 1, 1), list(rows) if rows else [], alpha
        )
        imgs = _synthesize(G, torch.cat([ws_b, ws_a, mixed]), batch=batch, noise_mode=noise_mode)
    top, left, cells = imgs[:nb], imgs[nb : nb + na], imgs[nb + na :]
    blank = torch.full_like(top[:1], -1.0)
    out = [blank, top]
    for i in range(na):
        out += [left[i : i + 1], cells[i * nb : (i + 1) * nb]]
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------- noise
def noise_std_map(
    G: torch.nn.Module,
    ws: Tensor,
    *,
    draws: int = 16,
    seed: int = 0,
    noise_layers: Sequence[bool] | None = None,
    noise_strength: float | Sequence[float] = 1.0,
    batch: int = 8,
) -> tuple[Tensor, Tensor]:
    """Stochastic variation (StyleGAN Figure 4): mean image and per-pixel std over ``draws`` noise samples.

    Args:
        G: generator.
        ws: ``[1, num_ws, w_dim]`` latents of one image (e.g. ``core.render.recipe_ws``).
        draws: number of noise samples K (2..256).
        seed: seed of the noise draws (a CPU ``torch.Generator``).
        noise_layers: per-input switches (None: all on).
        noise_strength: scales all noise, or one value per noise input.

    Returns:
        ``(mean [1, 3, R, R], std [1, 1, R, R])``: the mean over draws and the per-pixel standard deviation
        (averaged over the colour channels), both float32.

    Raises:
        InputError: ``draws`` out of range or ``ws`` not a single latent.
    """
    if not 2 <= draws <= 256:
        raise InputError(f"draws must be between 2 and 256, got {draws}")
    if ws.ndim != 3 or ws.shape[0] != 1:
        raise InputError(f"ws must be one latent [1, num_ws, w_dim], got {list(ws.shape)}")
    gen = torch.Generator().manual_seed(int(seed))
    total = None
    imgs = []
    with torch.no_grad():
        for start in range(0, draws, batch):
            n = min(batch, draws - start)
            img = G.synthesis(
                ws.expand(n, -1, -1),
                noise_mode="random",
                noise_layers=noise_layers,
                noise_strength=noise_strength,
                generator=gen,
            ).float()
            imgs.append(img)
        stack = torch.cat(imgs)  # [K, 3, R, R]
        total = stack.mean(0, keepdim=True)
        std = stack.std(0, unbiased=False).mean(0, keepdim=True)[None]
    return total, std


# ---------------------------------------------------------------------------------------------- interpolation
def _slerp(a: Tensor, b: Tensor, t: float) -> Tensor:
    na, nb = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((na * nb).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolate(
    G: torch.nn.Module,
    seed_a: int,
    seed_b: int,
    *,
    steps: int = 30,
    psi: float = 1.0,
    cutoff: int | None = None,
    space: str = "w",
    noise_mode: str = "const",
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Tensor:
    """Frames along the path between two seeds.

    ``space="w"`` interpolates linearly between the (truncated) ws of the two seeds; ``space="z"`` uses a
    spherical interpolation (slerp) between the two z, then maps and truncates every frame, as the StyleGAN
    paper's path-length metric does in Z.

    Args:
        steps: number of frames including both ends (2..1000).
        progress: called as ``progress(done, steps)`` after each frame.
        should_stop: polled before each frame; returning True ends the path early.

    Returns:
        ``[n_frames, 3, R, R]`` float32 (``n_frames == steps`` unless stopped).

    Raises:
        InputError: bad ``steps``, ``space`` or ``noise_mode``.
    """
    if not 2 <= steps <= 1000:
        raise InputError(f"steps must be between 2 and 1000, got {steps}")
    if space not in ("w", "z"):
        raise InputError(f"space must be 'w' or 'z', got {space!r}")
    if noise_mode == "random":
        raise InputError("interpolation uses const or none noise so that frames do not flicker")
    device = G.w_avg.device
    frames = []
    with torch.no_grad():
        z = seeds_to_z([seed_a, seed_b], G.z_dim, device)
        ws = G.mapping(z, None, truncation_psi=psi, truncation_cutoff=cutoff) if space == "w" else None
        for i in range(steps):
            if should_stop is not None and should_stop():
                break
            t = i / (steps - 1)
            if space == "w":
                w = torch.lerp(ws[:1], ws[1:], t)
            else:
                w = G.mapping(_slerp(z[:1], z[1:], t), None, truncation_psi=psi, truncation_cutoff=cutoff)
            frames.append(G.synthesis(w, noise_mode=noise_mode).float())
            if progress is not None:
                progress(i + 1, steps)
    if not frames:
        raise InputError("interpolation stopped before the first frame")
    return torch.cat(frames)


def interpolation_spec(
    model: str,
    model_hash: str | None,
    seed_a: int,
    seed_b: int,
    *,
    steps: int,
    psi: float,
    cutoff: int | None,
    space: str,
    noise_mode: str,
    fps: int,
) -> dict:
    """The JSON-able description of an interpolation: both end recipes plus the path settings."""
    ends = [
        Recipe(
            model=model,
            model_hash=model_hash,
            seed=s,
            truncation_psi=psi,
            truncation_cutoff=cutoff,
            noise_mode=noise_mode,
        ).to_dict()
        for s in (seed_a, seed_b)
    ]
    return {
        "kind": "interpolation",
        "start": ends[0],
        "end": ends[1],
        "steps": steps,
        "space": space,
        "fps": fps,
    }


def ffmpeg_executable() -> str:
    """The ``ffmpeg`` on PATH, else the one bundled with the ``imageio-ffmpeg`` wheel.

    Raises:
        InputError: neither exists (then GIF and PNG-zip export still work).
    """
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as exc:
        raise InputError(
            "MP4 export needs ffmpeg: none on PATH and the imageio-ffmpeg package has no binary for this "
            f"platform ({exc}); install ffmpeg, or export a GIF or PNG frames instead"
        ) from None


def save_animation(
    frames: Sequence[Image.Image], path: str | os.PathLike, *, fps: int = 15, spec: dict | None = None
) -> Path:
    """Write frames as ``.gif``, ``.mp4`` (H.264 through ffmpeg) or ``.zip`` of PNGs.

    ``spec`` (e.g. :func:`interpolation_spec`) is embedded: as the GIF comment, as ``spec.json`` in the zip
    (and a recipe text chunk in each PNG is left to the caller), and as the MP4 ``comment`` tag.

    Raises:
        InputError: unknown extension, no frames, or MP4 without ffmpeg.
    """
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    if ext not in ANIMATION_FORMATS:
        raise InputError(f"animations are written as {', '.join(ANIMATION_FORMATS)}, not {path.suffix!r}")
    if not frames:
        raise InputError("no frames to write")
    if not 1 <= fps <= 60:
        raise InputError(f"fps must be between 1 and 60, got {fps}")
    text = json.dumps(spec) if spec else ""
    if ext == "gif":
        frames[0].save(
            path,
            format="GIF",
            save_all=True,
            append_images=list(frames[1:]),
            duration=round(1000 / fps),
            loop=0,
            comment=text.encode() if text else b"",
        )
    elif ext == "zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
            for i, frame in enumerate(frames):
                buf = io.BytesIO()
                frame.save(buf, format="PNG")
                zf.writestr(f"frame{i:04d}.png", buf.getvalue())
            if text:
                zf.writestr("spec.json", text)
    else:
        ffmpeg = ffmpeg_executable()
        with tempfile.TemporaryDirectory() as tmp:
            for i, frame in enumerate(frames):
                frame.save(Path(tmp) / f"f{i:05d}.png")
            cmd = [
                ffmpeg,
                "-y",
                "-loglevel",
                "error",
                "-framerate",
                str(fps),
                "-i",
                str(Path(tmp) / "f%05d.png"),
            ]
            cmd += ["-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
            cmd += ["-metadata", f"comment={text}", str(path)]
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise InputError(f"ffmpeg failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}")
    return path


# ---------------------------------------------------------------------------------------------- feature maps
def feature_layers(G: torch.nn.Module) -> list[tuple[str, int, int]]:
    """Capturable synthesis layers as ``(name, resolution, channels)``, the image itself excluded."""
    return [entry for entry in G.layer_names() if entry[0] != "img"]


def features(G: torch.nn.Module, recipe: Recipe, layer: str) -> tuple[Tensor, Tensor]:
    """Render a recipe and capture one layer: ``(image [1, 3, R, R], features [1, C, r, r])``.

    Raises:
        InputError: unknown layer name.
    """
    from core.render import render_tensor

    names = [n for n, _, _ in G.layer_names()]
    if layer not in names:
        raise InputError(f"unknown layer {layer!r}; this model has {', '.join(names)}")
    img, feats = render_tensor(G, recipe, capture=[layer])
    return img, feats[layer]


def _colormap_lut(cmap: str) -> np.ndarray:
    if cmap not in CMAPS:
        raise InputError(f"unknown colour map {cmap!r}; use one of {', '.join(CMAPS)}")
    if cmap == "gray":
        ramp = np.linspace(0, 255, 256, dtype=np.float32)
        return np.stack([ramp] * 3, axis=1).astype(np.uint8)
    import matplotlib  # lazily: only the colour tables, never pyplot

    return (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def colorize(
    values: Tensor, *, cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """Map a 2-D tensor to colours: ``[h, w]`` -> ``[h, w, 3]`` uint8 (min..max of the values unless given)."""
    v = values.detach().float().cpu()
    if v.ndim != 2:
        raise ValueError(f"colorize needs a 2-D tensor, got shape {list(v.shape)}")
    lo = float(v.min()) if vmin is None else vmin
    hi = float(v.max()) if vmax is None else vmax
    scaled = ((v - lo) / max(hi - lo, 1e-8)).clamp(0, 1)
    idx = (scaled * 255).round().long().numpy()
    return _colormap_lut(cmap)[idx]


def _upscale(arr: np.ndarray, min_side: int) -> np.ndarray:
    factor = max(1, math.ceil(min_side / max(arr.shape[0], 1)))
    return arr.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else arr


def feature_grid(
    feats: Tensor,
    *,
    mode: str = "grid",
    channel: int = 0,
    cmap: str = "viridis",
    max_channels: int = 64,
    tile: int = 64,
    size: int = 512,
) -> np.ndarray:
    """Feature maps of one layer as a colour image.

    Args:
        feats: ``[1, C, h, w]`` (or ``[C, h, w]``) features of one image.
        mode: ``"grid"`` tiles the first ``max_channels`` channels (each scaled to its own min..max),
            ``"mean"`` shows the channel mean, ``"channel"`` a single channel.
        channel: the channel for ``mode="channel"``.
        cmap: one of ``CMAPS``.
        tile: smallest side of a grid tile in pixels (nearest-neighbour upscaling keeps pixels visible).
        size: smallest side of a single-map image.

    Returns:
        ``[H, W, 3]`` uint8 image.

    Raises:
        InputError: bad mode, channel or colour map.
    """
    f = feats.detach().float().cpu()
    if f.ndim == 4:
        f = f[0]
    if f.ndim != 3:
        raise InputError(f"features must be [1, C, h, w], got {list(feats.shape)}")
    if mode == "mean":
        return _upscale(colorize(f.mean(0), cmap=cmap), size)
    if mode == "channel":
        if not 0 <= channel < f.shape[0]:
            raise InputError(f"channel must be between 0 and {f.shape[0] - 1}, got {channel}")
        return _upscale(colorize(f[channel], cmap=cmap), size)
    if mode != "grid":
        raise InputError(f"mode must be grid, mean or channel, got {mode!r}")
    n = min(f.shape[0], max_channels)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    tiles = [_upscale(colorize(f[i], cmap=cmap), tile) for i in range(n)]
    th, tw = tiles[0].shape[:2]
    pad = 2
    out = np.full((rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), 255, dtype=np.uint8)
    for i, t in enumerate(tiles):
        y, x = pad + (i // cols) * (th + pad), pad + (i % cols) * (tw + pad)
        out[y : y + th, x : x + tw] = t
    return out


def std_image(std: Tensor, *, cmap: str = "magma", vmax: float | None = None) -> np.ndarray:
    """Colour image of a per-pixel std map ``[1, 1, R, R]`` (0..max unless ``vmax`` is given)."""
    return colorize(std[0, 0], cmap=cmap, vmin=0.0, vmax=vmax)


def recipe_png_info(image: Image.Image, recipe: Recipe) -> Image.Image:
    """Attach a recipe to a PIL image's text info, so PNG writers that keep ``info`` embed it."""
    image.info.update(recipe_png_text(recipe))
    return image
