"""SynthFaces: StyleScope's procedural, attribute-labelled face dataset.

No face photographs or pretrained weights are needed: every image is a stylised portrait rendered on the fly
(CPU or GPU) from a known set of factors of variation, so disentanglement can be shown *and* measured against
ground truth. The factors are grouped the way a StyleGAN generator's layers split the work (Karras et al.,
"A Style-Based Generator Architecture for GANs", CVPR 2019, Sec. 3.1: coarse styles control pose and face
shape, middle styles facial features, fine styles colour):

* ``coarse``: yaw, roll, face_length, jaw_width, hair_style, eyeglasses, head_scale, head_x, head_y;
* ``middle``: eye_open, smile, mouth_open, brow_raise, brow_tilt, nose_size, beard;
* ``fine``: skin_tone, hair_color, iris_color, lip_color, glasses_color, bg_hue, bg_brightness, bg_gradient,
  light_tint, clothes_hue;

plus unlabelled stochastic detail (hair strands, freckles, skin blotches, background speckle, stray hairs)
for the generator's noise inputs to learn. Image ``i`` of stream ``seed`` is a pure function of
``(seed, i)`` (see :mod:`core.data.synthfaces_factors`), drawn with :mod:`core.data.synthfaces_render`.

Typical use::

    factors = sample_factors(64, seed=0)
    images = render(factors, resolution=128, detail_seed=0)      # [64, 3, 128, 128] in [-1, 1]
    labels = binary_attributes(factors)                          # {"smiling": bool [64], ...}
    ds = SynthFaces(resolution=128, seed=0)                      # endless; ds.batch(0, 4096, "cuda")
    export("data/synthfaces", n=10_000, resolution=128, seed=0)  # PNGs + dataset.json
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from core.data.synthfaces_factors import (
    _CONTINUOUS_RANGES,
    BINARY_ATTRIBUTES,
    CATEGORICAL_FACTORS,
    CONTINUOUS_FACTORS,
    FACTOR_GROUPS,
    FACTORS,
    MIRROR_SYMMETRIC,
    attribute_matrix,
    binary_attributes,
    sample_factors,
)
from core.data.synthfaces_render import HIDEABLE_PARTS, render_chunk
from core.errors import InputError

__all__ = [
    "BINARY_ATTRIBUTES",
    "CATEGORICAL_FACTORS",
    "CONTINUOUS_FACTORS",
    "FACTORS",
    "FACTOR_GROUPS",
    "MIRROR_SYMMETRIC",
    "SynthFaces",
    "SynthFacesConfig",
    "attribute_matrix",
    "binary_attributes",
    "contact_sheet",
    "export",
    "factor_sweep_sheet",
    "neutral_factors",
    "part_signal",
    "render",
    "sample_factors",
]

MIN_RESOLUTION, MAX_RESOLUTION = 32, 256
FORMAT_VERSION = 1
# Bumped whenever a renderer change alters pixels of the same (seed, index): it is part of every training
# run's dataset fingerprint and of dataset.json, so models and exports say which SynthFaces they saw.
# 2: brows readable on every face (higher hairline, wider tilt/raise range), stronger nose shading.
RENDER_VERSION = 2


@dataclass(frozen=True)
class SynthFacesConfig:
    """What defines a SynthFaces stream.

    Attributes:
        resolution: image side in pixels, 32..256.
        seed: stream seed; image ``i`` depends only on ``(seed, i)``.
        length: number of images, or None for an endless stream.
        detail: draw the unlabelled stochastic detail (keyed by ``seed`` and the image index).
    """

    resolution: int = 128
    seed: int = 0
    length: int | None = None
    detail: bool = True


def _check_resolution(resolution: int) -> None:
    if not isinstance(resolution, int) or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise ValueError(
            f"resolution must be an integer in {MIN_RESOLUTION}..{MAX_RESOLUTION}, got {resolution!r}"
        )


def _default_chunk(device: torch.device, resolution: int) -> int:
    # CPU: small chunks keep the ~40 live [N, H, W] temporaries inside the caches. GPU: big enough to fill
    # the device, bounded so that 256 px stays around 2 GB of temporaries.
    base = 16 if device.type == "cpu" else 2048
    return max(1, int(base * (128 / resolution) ** 2))


def render(
    factors: dict[str, Tensor],
    *,
    resolution: int = 128,
    detail_seed: int | None = None,
    device: str | torch.device | None = None,
    index: Tensor | None = None,
    chunk: int | None = None,
    hide: Iterable[str] = (),
) -> Tensor:
    """Render portraits from factors.

    Args:
        factors: ``{factor: Tensor [N]}`` with every name in ``FACTORS`` (extra keys are ignored), as from
            :func:`sample_factors`; continuous values are clamped to their ranges.
        resolution: output side, 32..256.
        detail_seed: seed of the unlabelled stochastic detail (strands, freckles, speckle, stray hairs),
            or None to render without it. The detail of an image depends only on ``(detail_seed, index)``.
        device: where to render; default: the device of ``factors``.
        index: int64 ``[N]`` image indices that key the detail; default ``0..N-1``.
        chunk: images rendered at once (memory bound); default depends on the device.
        hide: parts to leave out (``"brows"``), to measure what a part adds to the image (see
            :func:`part_signal`); the dataset never hides anything.

    Returns:
        ``[N, 3, resolution, resolution]`` float32 in [-1, 1] on ``device``.

    Raises:
        ValueError: bad resolution, a missing factor, factors of different lengths, or an unknown part.
    """
    _check_resolution(resolution)
    hidden = frozenset((hide,) if isinstance(hide, str) else hide)
    if not hidden <= HIDEABLE_PARTS:
        raise ValueError(f"cannot hide {sorted(hidden - HIDEABLE_PARTS)}; hideable: {sorted(HIDEABLE_PARTS)}")
    missing = [name for name in FACTORS if name not in factors]
    if missing:
        raise ValueError(f"factors are missing {missing}")
    n = factors["yaw"].shape[0]
    if any(factors[name].shape != (n,) for name in FACTORS):
        raise ValueError(f"every factor must be a 1-D tensor of length {n}")
    dev = torch.device(device) if device is not None else factors["yaw"].device
    f: dict[str, Tensor] = {}
    for name in FACTORS:
        v = factors[name].to(dev)
        if name in _CONTINUOUS_RANGES:
            lo, hi = _CONTINUOUS_RANGES[name]
            f[name] = v.to(torch.float32).clamp(lo, hi)
        else:
            f[name] = v.to(torch.int64).clamp(0, len(CATEGORICAL_FACTORS[name][0]) - 1)
    index = torch.arange(n, device=dev) if index is None else index.to(device=dev, dtype=torch.int64)
    if index.shape != (n,):
        raise ValueError(f"index must have shape [{n}], got {list(index.shape)}")
    step = chunk or _default_chunk(dev, resolution)
    out = torch.empty(n, 3, resolution, resolution, device=dev)
    for s in range(0, n, step):
        part = {name: v[s : s + step] for name, v in f.items()}
        out[s : s + step] = render_chunk(
            part, index[s : s + step], resolution=resolution, detail_seed=detail_seed, hide=hidden
        )
    return out


def part_signal(
    factors: dict[str, Tensor],
    part: str,
    *,
    resolution: int = 128,
    detail_seed: int | None = None,
    index: Tensor | None = None,
    images: Tensor | None = None,
) -> Tensor:
    """How much ``part`` shows in each image: the summed absolute pixel change (mean over RGB, colour units
    in [0, 1]) between the image and the same image rendered without ``part``, in pixels of a 128 px image.

    A part can be drawn and still be unreadable: blond brows on pale skin, red brows over a red fringe,
    brows under a spectacle frame. About 3 is the change of three pixels going from black to white; a
    clearly visible pair of brows scores 10-30. Labels of such a part are unobservable where the signal is
    near zero (the classifier's evaluation uses it, see ``core.models.classifier_train.VISIBILITY``).

    Args:
        factors, resolution, detail_seed, index: as for :func:`render`.
        part: one of ``HIDEABLE_PARTS``.
        images: the full render of the same arguments if already at hand (saves one render).

    Returns:
        float32 ``[N]`` on the device of ``factors``.
    """
    kw: dict[str, Any] = dict(resolution=resolution, detail_seed=detail_seed, index=index)
    full = render(factors, **kw) if images is None else images
    without = render(factors, hide=(part,), **kw)
    change = (full - without.to(full.device)).abs_().mean(1).mul_(0.5)  # [-1, 1] -> [0, 1] colour units
    return change.sum((1, 2)).mul_((128 / resolution) ** 2)


class SynthFaces(torch.utils.data.Dataset):
    """SynthFaces as a torch dataset that renders on the fly (no disk).

    Map-style: ``ds[i]`` is ``(image [3, R, R] float32 in [-1, 1], labels [A] float32 0/1)`` with ``A =
    len(BINARY_ATTRIBUTES)``; any ``i >= 0`` works for an endless stream (``length=None``), where ``len()``
    raises ``TypeError``. Iterating yields the same pairs in index order, rendered in chunks. For training,
    :meth:`batch` renders a whole batch on the GPU in one call, and :meth:`stream` yields such batches.
    """

    def __init__(
        self,
        cfg: SynthFacesConfig | None = None,
        *,
        resolution: int | None = None,
        seed: int | None = None,
        length: int | None = None,
        detail: bool | None = None,
    ) -> None:
        """Args:
        cfg: the stream's config; the keyword knobs below override its fields when given.
        resolution, seed, length, detail: see :class:`SynthFacesConfig`.
        """
        cfg = cfg or SynthFacesConfig()
        self.cfg = SynthFacesConfig(
            resolution=cfg.resolution if resolution is None else resolution,
            seed=cfg.seed if seed is None else seed,
            length=cfg.length if length is None else length,
            detail=cfg.detail if detail is None else detail,
        )
        _check_resolution(self.cfg.resolution)
        if self.cfg.seed < 0 or (self.cfg.length is not None and self.cfg.length < 0):
            raise ValueError(f"seed and length must be non-negative, got {self.cfg}")

    @property
    def resolution(self) -> int:
        return self.cfg.resolution

    @property
    def attributes(self) -> tuple[str, ...]:
        return BINARY_ATTRIBUTES

    def __len__(self) -> int:
        if self.cfg.length is None:
            raise TypeError("an endless SynthFaces stream has no length (pass length=N)")
        return self.cfg.length

    def batch(
        self, start: int, n: int, device: str | torch.device = "cpu"
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Render images ``start .. start + n - 1`` on ``device``.

        Args:
            start: first image index.
            n: number of images.
            device: where to sample and render.

        Returns:
            ``(images [n, 3, R, R] float32 in [-1, 1], factors {name: Tensor [n]})``, both on ``device``;
            labels are ``attribute_matrix(factors)``.
        """
        factors = sample_factors(n, seed=self.cfg.seed, start=start, device=device)
        index = torch.arange(start, start + n, device=device)
        detail_seed = self.cfg.seed if self.cfg.detail else None
        images = render(factors, resolution=self.cfg.resolution, detail_seed=detail_seed, index=index)
        return images, factors

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        i = int(i)
        if i < 0 or (self.cfg.length is not None and i >= self.cfg.length):
            raise IndexError(f"SynthFaces index {i} out of range")
        images, factors = self.batch(i, 1)
        return images[0], attribute_matrix(factors)[0]

    def stream(
        self, batch_size: int, *, device: str | torch.device = "cpu", start: int = 0
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield ``(images [B, 3, R, R], labels [B, A])`` batches of consecutive images from ``start``.

        Stops at ``length`` (the last batch may be short); endless otherwise.
        """
        i = start
        while self.cfg.length is None or i < self.cfg.length:
            n = batch_size if self.cfg.length is None else min(batch_size, self.cfg.length - i)
            images, factors = self.batch(i, n, device)
            yield images, attribute_matrix(factors)
            i += n

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for images, labels in self.stream(_default_chunk(torch.device("cpu"), self.cfg.resolution)):
            yield from zip(images, labels, strict=True)


def _to_uint8(images: Tensor) -> Tensor:
    # The same mapping as core.images.to_uint8, kept local so the data package stays import-light.
    return (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()


def _save_png(pixels: Any, path: Path) -> None:
    Image.fromarray(pixels).save(path, compress_level=6)


def export(
    dst: str | os.PathLike,
    *,
    n: int,
    resolution: int = 128,
    seed: int = 0,
    detail: bool = True,
    overwrite: bool = False,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Write images ``0 .. n-1`` of a SynthFaces stream as a training-ready folder.

    Layout (the one NVIDIA's ``dataset_tool.py`` writes and its trainer reads): ``dst/images/00000000.png``
    ... and ``dst/dataset.json`` with ``{"labels": [["images/00000000.png", [0/1 per attribute]], ...],
    "attributes": [...], "factors": {name: [value per image]}, "categories": {...}, "factor_groups": ...,
    "synthfaces": {"seed", "resolution", "detail", "count", "format_version", "render_version"}}``.

    Images go to a hidden partial folder that is renamed into place only when complete, and the JSON is
    written last through a temporary file, so an interrupted export never looks like a finished one.

    Args:
        dst: output folder (created).
        n: number of images.
        resolution: image side, 32..256.
        seed: stream seed (also keys the stochastic detail).
        detail: draw the unlabelled stochastic detail.
        overwrite: replace an existing ``dst/images`` and ``dst/dataset.json``.
        batch_size: images rendered per step.
        device: where to render.
        progress: called as ``progress(done, n)`` after every batch.
        should_stop: polled between batches; returning True stops early and removes the partial output.

    Returns:
        Report ``{"output", "images", "resolution", "seed", "attributes": {name: positive rate},
        "seconds", "stopped"}``.

    Raises:
        InputError: bad ``n``/``resolution``/``seed``, ``dst`` is a file or already holds a dataset.
    """
    if n < 1 or seed < 0:
        raise InputError(f"need n >= 1 and seed >= 0, got n={n}, seed={seed}")
    try:
        _check_resolution(resolution)
    except ValueError as e:
        raise InputError(str(e)) from None
    dst = Path(dst)
    if dst.exists() and not dst.is_dir():
        raise InputError(f"destination {dst} is a file, not a folder")
    images_dir, meta = dst / "images", dst / "dataset.json"
    if (images_dir.exists() or meta.exists()) and not overwrite:
        raise InputError(
            f"destination {dst} already holds a dataset (images/ or dataset.json); use --overwrite"
        )
    dst.mkdir(parents=True, exist_ok=True)
    partial = dst / f".images.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()

    t0 = time.perf_counter()
    ds = SynthFaces(resolution=resolution, seed=seed, length=n, detail=detail)
    names: list[str] = []
    labels: list[Tensor] = []
    factors: dict[str, list[Tensor]] = {name: [] for name in FACTORS}
    done = 0
    pool = ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)))
    try:
        while done < n:
            if should_stop is not None and should_stop():
                shutil.rmtree(partial, ignore_errors=True)
                return {"output": str(dst), "images": 0, "resolution": resolution, "seed": seed,
                        "attributes": {}, "seconds": round(time.perf_counter() - t0, 3), "stopped": True}  # fmt: skip
            m = min(batch_size, n - done)
            images, f = ds.batch(done, m, device)
            batch_names = [f"{done + j:08d}.png" for j in range(m)]
            # PNG encoding dominates an export; zlib releases the GIL, so threads overlap it.
            list(pool.map(_save_png, _to_uint8(images).numpy(), [partial / nm for nm in batch_names]))
            names += [f"images/{nm}" for nm in batch_names]
            labels.append(attribute_matrix(f).cpu().to(torch.int64))
            for name in FACTORS:
                factors[name].append(f[name].cpu())
            done += m
            if progress is not None:
                progress(done, n)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        pool.shutdown()

    label_rows = torch.cat(labels).tolist()
    factor_lists = {}
    for name, parts in factors.items():
        v = torch.cat(parts)
        factor_lists[name] = [round(x, 6) for x in v.tolist()] if v.is_floating_point() else v.tolist()
    payload = {
        "labels": [[fn, row] for fn, row in zip(names, label_rows, strict=True)],
        "attributes": list(BINARY_ATTRIBUTES),
        "factors": factor_lists,
        "categories": {name: list(cats) for name, (cats, _) in CATEGORICAL_FACTORS.items()},
        "factor_groups": {g: list(v) for g, v in FACTOR_GROUPS.items()},
        "synthfaces": {"seed": seed, "resolution": resolution, "detail": detail, "count": n,
                       "format_version": FORMAT_VERSION, "render_version": RENDER_VERSION},
    }  # fmt: skip
    if images_dir.exists():
        shutil.rmtree(images_dir)
    os.replace(partial, images_dir)
    tmp = dst / f".dataset.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(payload, separators=(",", ":")))
    os.replace(tmp, meta)
    rates = torch.tensor(label_rows, dtype=torch.float64).mean(0).tolist()
    return {
        "output": str(dst),
        "images": n,
        "resolution": resolution,
        "seed": seed,
        "attributes": {a: round(r, 4) for a, r in zip(BINARY_ATTRIBUTES, rates, strict=True)},
        "seconds": round(time.perf_counter() - t0, 3),
        "stopped": False,
    }


def neutral_factors(n: int = 1, *, device: str | torch.device = "cpu") -> dict[str, Tensor]:
    """A plain reference face (frontal, open eyes, slight smile, short hair, no glasses or beard).

    Args:
        n: number of copies.
        device: where the tensors live.

    Returns:
        ``{factor: Tensor [n]}`` usable with :func:`render`; edit single factors to make controlled pairs.
    """
    values = {"yaw": 0.0, "roll": 0.0, "face_length": 0.5, "jaw_width": 0.5, "head_scale": 0.5, "head_x": 0.0,
              "head_y": 0.0, "eye_open": 0.8, "smile": 0.4, "mouth_open": 0.1, "brow_raise": 0.0,
              "brow_tilt": 0.0, "nose_size": 0.4, "skin_tone": 0.35, "lip_color": 0.4, "glasses_color": 0.0,
              "bg_hue": 0.55, "bg_brightness": 0.6, "bg_gradient": 0.0, "light_tint": 0.0, "clothes_hue": 0.3,
              "hair_style": 1, "eyeglasses": 0, "beard": 0, "hair_color": 1, "iris_color": 1}  # fmt: skip
    return {
        name: torch.full(
            (n,),
            values[name],
            device=device,
            dtype=torch.float32 if name in _CONTINUOUS_RANGES else torch.int64,
        )
        for name in FACTORS
    }


def contact_sheet(*, rows: int = 8, cols: int = 8, resolution: int = 128, seed: int = 0) -> Image.Image:
    """Images ``0 .. rows*cols-1`` of stream ``seed`` tiled into one picture (with their detail).

    Returns:
        RGB image of ``rows * resolution`` by ``cols * resolution`` pixels.
    """
    images, _ = SynthFaces(resolution=resolution, seed=seed).batch(0, rows * cols)
    px = _to_uint8(images).view(rows, cols, resolution, resolution, 3)
    return Image.fromarray(px.permute(0, 2, 1, 3, 4).reshape(rows * resolution, cols * resolution, 3).numpy())


def factor_sweep_sheet(*, cols: int = 8, resolution: int = 96, label_width: int = 112) -> Image.Image:
    """One row per factor: the neutral face with that factor swept from its low to its high end.

    Categorical factors step through their categories. Rendered without stochastic detail so that only the
    swept factor changes along a row.

    Returns:
        RGB image with the factor names in a left margin.
    """
    order = [name for names in FACTOR_GROUPS.values() for name in names]
    tiles = []
    for name in order:
        f = neutral_factors(cols)
        if name in _CONTINUOUS_RANGES:
            lo, hi = _CONTINUOUS_RANGES[name]
            f[name] = torch.linspace(lo, hi, cols)
        else:
            k = len(CATEGORICAL_FACTORS[name][0])
            f[name] = torch.arange(cols) * k // cols
        if name == "glasses_color":
            f["eyeglasses"][:] = 1
        tiles.append(render(f, resolution=resolution))
    nf = len(FACTORS)
    px = _to_uint8(torch.cat(tiles)).view(nf, cols, resolution, resolution, 3)
    grid = px.permute(0, 2, 1, 3, 4).reshape(nf * resolution, cols * resolution, 3).numpy()
    sheet = Image.new("RGB", (label_width + cols * resolution, nf * resolution), (255, 255, 255))
    sheet.paste(Image.fromarray(grid), (label_width, 0))
    draw = ImageDraw.Draw(sheet)
    group = {name: g for g, names in FACTOR_GROUPS.items() for name in names}
    for i, name in enumerate(order):
        draw.text((6, i * resolution + resolution // 2 - 12), name, fill=(0, 0, 0))
        draw.text((6, i * resolution + resolution // 2 + 2), f"({group[name]})", fill=(110, 110, 110))
    return sheet
