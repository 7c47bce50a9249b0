"""The one place where StyleScope converts images between PIL, uint8 pixels and tensors.

Contract (ARCHITECTURE.md): images inside core are ``float32`` tensors ``[N, 3, H, W]`` with nominal range
``[-1, 1]``, never clamped. Conversion to pixels follows NVIDIA's StyleGAN2-ADA convention
``(x * 127.5 + 128).clamp(0, 255)`` truncated to uint8 (the ``+128`` instead of ``+127.5`` rounds to
nearest), and pixels come back as ``u8 / 127.5 - 1``, so uint8 -> tensor -> uint8 is exact.

Everything a user hands us goes through :func:`load_image`, which turns every kind of broken or hostile
file into a one-line :class:`core.errors.InputError` instead of a traceback from deep inside PIL.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin

from core.errors import InputError

__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_MAX_ASPECT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SIDE",
    "ImageSource",
    "from_pil",
    "load_image",
    "make_grid",
    "read_png_text",
    "save_png",
    "square_crop",
    "to_pil",
    "to_uint8",
]

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

# 40 MP covers every camera and scanner image people train GANs on, while a decoded RGBA copy stays
# under ~160 MB. PIL's own limit (~89 MP warning, ~179 MP error) is higher; we check first.
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_SIDE = 16_384
# Panoramas reach ~8:1; anything beyond 16:1 is a strip, a bomb or a mistake, and would crop to nothing.
DEFAULT_MAX_ASPECT = 16.0
# Compressed size limit for in-memory inputs and files (a 40 MP PNG at worst-case entropy is ~120 MB).
DEFAULT_MAX_BYTES = 128 * 1024 * 1024

# Formats PIL may try. An allow-list keeps exotic decoders (EPS runs Ghostscript, ...) out of reach of
# uploaded bytes. PIL's JPEG opener also covers MPO (multi-picture JPEGs from many phones and cameras).
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")

# Transparent pixels are composited on white: most transparent inputs are logos, cut-outs and icons drawn
# for white pages, and black would darken their anti-aliased edges.
_ALPHA_BACKGROUND = (255, 255, 255)

# warnings.catch_warnings() swaps process-global filters; serialising our own use keeps two threads
# (e.g. concurrent Gradio requests) from restoring each other's copies and leaving a filter behind.
_WARNINGS_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------------------
# Tensor <-> pixels
# --------------------------------------------------------------------------------------------------------


def _check_images(images: torch.Tensor) -> torch.Tensor:
    """Return ``images`` as ``[N, 3, H, W]``, accepting a single ``[3, H, W]`` image for convenience."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of images, got {type(images).__name__}")
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape [N, 3, H, W], got {list(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"expected floating-point images in [-1, 1], got dtype {images.dtype}")
    return images


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Convert core images to pixels.

    Args:
        images: ``[N, 3, H, W]`` (or ``[3, H, W]``) float tensor, nominal range ``[-1, 1]``.

    Returns:
        ``[N, H, W, 3]`` uint8 tensor on the CPU.

    Raises:
        ValueError: ``images`` does not have 3 channels in dim 1 or is not floating point.
    """
    images = _check_images(images).detach()
    pixels = (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().cpu()


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Convert core images to a list of RGB PIL images.

    Args:
        images: ``[N, 3, H, W]`` (or ``[3, H, W]``) float tensor, nominal range ``[-1, 1]``.

    Returns:
        ``N`` RGB images.

    Raises:
        ValueError: see :func:`to_uint8`.
    """
    pixels = to_uint8(images).numpy()
    return [Image.fromarray(p) for p in pixels]


def _size_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    height, width = (int(s) for s in size)
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return height, width


def square_crop(image: Image.Image, *, size: int) -> Image.Image:
    """Centre-crop ``image`` to a square and resize it to ``size x size`` with Lanczos filtering.

    Args:
        image: any PIL image (converted to RGB).
        size: output side in pixels.

    Returns:
        An RGB ``size x size`` image (``image`` itself if it already is one).

    Raises:
        ValueError: ``size`` is not positive or the image is empty.
    """
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    width, height = image.size
    if width == 0 or height == 0:
        raise ValueError("cannot crop an empty image")
    if image.mode != "RGB":
        image = image.convert("RGB")
    if (width, height) == (size, size):
        return image
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    # One resize call with a box crops and filters in a single pass (no intermediate copy).
    return image.resize((size, size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side))


def from_pil(
    images: Image.Image | Sequence[Image.Image], *, size: int | tuple[int, int] | None = None
) -> torch.Tensor:
    """Convert PIL image(s) to core images.

    Args:
        images: one PIL image or a sequence of them (any mode; converted to RGB).
        size: if given, resize every image to this size with Lanczos filtering: an ``int`` for a square
            or ``(height, width)``. No cropping happens here; use :func:`square_crop` for that.

    Returns:
        ``[N, 3, H, W]`` float32 tensor in ``[-1, 1]`` (``u8 / 127.5 - 1``).

    Raises:
        ValueError: no images, or images of different sizes without ``size``.
    """
    if isinstance(images, Image.Image):
        images = [images]
    if len(images) == 0:
        raise ValueError("from_pil needs at least one image")
    hw = _size_hw(size) if size is not None else None
    arrays = []
    for image in images:
        if image.mode != "RGB":
            image = image.convert("RGB")
        if hw is not None and image.size != (hw[1], hw[0]):
            image = image.resize((hw[1], hw[0]), Image.Resampling.LANCZOS)
        arrays.append(np.asarray(image, dtype=np.uint8))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"images have different sizes {sorted(shapes)}; pass size= to resize them")
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
    return pixels.to(torch.float32) / 127.5 - 1


def make_grid(images: torch.Tensor, *, nrow: int, padding: int = 0, pad_value: float = -1.0) -> torch.Tensor:
    """Tile images into one image, row by row.

    Args:
        images: ``[N, 3, H, W]`` float tensor.
        nrow: images per row (the last row may be partly filled with ``pad_value``).
        padding: pixels between and around tiles.
        pad_value: value for padding and empty cells (``-1`` is black in core's range).

    Returns:
        ``[1, 3, rows * (H + padding) + padding, nrow * (W + padding) + padding]`` tensor, so the result
        is itself a core image batch (``to_pil(grid)[0]``).

    Raises:
        ValueError: bad shape, no images, ``nrow < 1`` or ``padding < 0``.
    """
    images = _check_images(images)
    if images.shape[0] == 0:
        raise ValueError("make_grid needs at least one image")
    if nrow < 1 or padding < 0:
        raise ValueError(f"need nrow >= 1 and padding >= 0, got nrow={nrow}, padding={padding}")
    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = images.new_full((1, c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value)
    for i in range(n):
        y = padding + (i // cols) * (h + padding)
        x = padding + (i % cols) * (w + padding)
        grid[0, :, y : y + h, x : x + w] = images[i]
    return grid


# --------------------------------------------------------------------------------------------------------
# Loading untrusted images
# --------------------------------------------------------------------------------------------------------


def _describe(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.path.basename(os.fspath(source)) or os.fspath(source)
    name = getattr(source, "name", None)
    if isinstance(name, str):
        return os.path.basename(name)
    return "image"


def _read_bytes(source: ImageSource, *, max_bytes: int, label: str) -> bytes:
    """Read a source fully into memory, never more than ``max_bytes + 1`` bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            if not path.is_file():
                raise InputError(f"{label}: not a file ({'missing' if not path.exists() else 'a folder'})")
            with path.open("rb") as f:
                data = f.read(max_bytes + 1)
        except OSError as e:
            raise InputError(f"{label}: cannot read file ({e.strerror or e})") from None
    elif hasattr(source, "read"):
        try:
            data = source.read(max_bytes + 1)
        except OSError as e:
            raise InputError(f"{label}: cannot read stream ({e})") from None
        if not isinstance(data, (bytes, bytearray)):
            raise InputError(f"{label}: stream must be opened in binary mode")
        data = bytes(data)
    else:
        raise InputError(f"expected a path, bytes or a binary file object, got {type(source).__name__}")
    if len(data) == 0:
        raise InputError(f"{label}: empty file")
    if len(data) > max_bytes:
        raise InputError(f"{label}: file larger than the {max_bytes // (1024 * 1024)} MiB limit")
    return data


def _available(formats: Sequence[str]) -> list[str]:
    """The subset of ``formats`` this PIL build can open (WebP, for one, is an optional plugin)."""
    Image.init()
    return [f for f in formats if f in Image.OPEN]


def _open_checked(
    data: bytes,
    *,
    label: str,
    max_pixels: int,
    max_side: int,
    max_aspect: float,
    formats: Sequence[str] = ALLOWED_FORMATS,
) -> Image.Image:
    """``Image.open`` (header only) plus our size checks, before any pixel is decoded."""
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            # We enforce our own (lower) pixel limit right below; PIL's warning would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError as e:
        raise InputError(f"{label}: refused as a possible decompression bomb ({e})") from None
    except Image.UnidentifiedImageError:
        kinds = ", ".join(formats)
        raise InputError(f"{label}: not a readable image (supported: {kinds})") from None
    except Exception as e:  # PIL plugins raise many types; all mean "bad header"
        raise InputError(f"{label}: corrupt image header ({type(e).__name__}: {e})") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InputError(f"{label}: image has zero size ({width}x{height})")
    if width * height > max_pixels:
        raise InputError(
            f"{label}: {width}x{height} has {width * height:,} pixels, over the {max_pixels:,} limit "
            "(possible decompression bomb)"
        )
    if max(width, height) > max_side:
        raise InputError(f"{label}: {width}x{height} exceeds the {max_side} px side limit")
    if max(width, height) / min(width, height) > max_aspect:
        raise InputError(f"{label}: aspect ratio of {width}x{height} exceeds {max_aspect:g}:1")
    return image


def _to_rgb(image: Image.Image, *, label: str) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB (see module notes on alpha and high bit depths)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        # Palette images may carry transparency in the palette or a tRNS chunk; RGBA keeps it either way.
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
        mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # Integer modes from 16-bit PNG/TIFF hold 0..65535; PIL's own convert("L") would clip at 255.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        if mode == "F" and values.max(initial=0) <= 1.0:
            peak = 1.0
        scaled = np.clip(np.rint(values * (255.0 / peak)), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*_ALPHA_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    try:
        # 1, L, CMYK, YCbCr, RGBX, ...: PIL's converters are right for these.
        return image.convert("RGB")
    except (ValueError, OSError) as e:
        raise InputError(f"{label}: unsupported colour mode {mode} ({e})") from None


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int = DEFAULT_MAX_SIDE,
    max_aspect: float = DEFAULT_MAX_ASPECT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    name: str | None = None,
) -> Image.Image:
    """Load an untrusted image as a sane 8-bit RGB PIL image.

    Dimensions are checked from the header before any pixel is decoded. EXIF orientation is applied.
    Animated files (GIF, APNG, WebP) give their first frame. Transparent images are composited on white;
    16-bit images are scaled (not clipped) to 8 bits; palette, CMYK, grey and other modes become RGB.

    Args:
        source: a path (``str``/``Path``), ``bytes``/``bytearray``/``memoryview``, or a binary file object
            (``BytesIO``, an open file, an archive member).
        max_pixels: refuse images with more pixels than this (decompression bombs).
        max_side: refuse images whose longer side exceeds this.
        max_aspect: refuse images whose long/short side ratio exceeds this.
        max_bytes: refuse inputs larger than this many (compressed) bytes.
        name: what to call the image in error messages (defaults to the file name).

    Returns:
        A fully loaded ``RGB`` image, independent of ``source``.

    Raises:
        InputError: empty, missing, unreadable, corrupt, truncated, non-image, unsupported, too large or
            absurdly shaped input. The message is one line and starts with the image's name.
    """
    label = name or _describe(source)
    data = _read_bytes(source, max_bytes=max_bytes, label=label)
    image = _open_checked(data, label=label, max_pixels=max_pixels, max_side=max_side, max_aspect=max_aspect)
    try:
        # Opening leaves frame 0 current for animated formats; load() decodes only that frame.
        image.load()
    except Exception as e:  # decoders raise OSError, SyntaxError, ValueError, struct.error...
        reason = "truncated" if "truncated" in str(e).lower() else "corrupt"
        raise InputError(f"{label}: {reason} image data ({type(e).__name__}: {e})") from None
    # A malformed EXIF block should not cost the user the picture: keep it unrotated then.
    with contextlib.suppress(Exception):
        image = ImageOps.exif_transpose(image) or image
    return _to_rgb(image, label=label)


# --------------------------------------------------------------------------------------------------------
# PNG with text chunks (recipes travel inside the PNGs StyleScope writes)
# --------------------------------------------------------------------------------------------------------


def save_png(image: Image.Image, path: str | os.PathLike, *, text: dict[str, str] | None = None) -> Path:
    """Write ``image`` as PNG atomically, with optional text chunks.

    The file is written to a temporary name in the same folder and moved into place with ``os.replace``,
    so readers never see a half-written PNG and a crash leaves the old file intact.

    Args:
        image: PIL image in a mode PNG can store (RGB, RGBA, L, ...).
        path: destination file; its folder must exist.
        text: ``{keyword: value}`` stored as tEXt (Latin-1) or iTXt (other text); long values compressed.

    Returns:
        The destination path.

    Raises:
        ValueError: a keyword is not 1-79 Latin-1 characters.
        OSError: the file cannot be written.
    """
    path = Path(path)
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        try:
            key.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"PNG text keyword {key!r} must be Latin-1") from None
        if not 1 <= len(key) <= 79:
            raise ValueError(f"PNG text keyword {key!r} must be 1-79 characters")
        # Recipes can be a few KB of JSON; compress those, keep short values human-readable in the file.
        info.add_text(key, str(value), zip=len(value) > 1024)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format="PNG", pnginfo=info)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def read_png_text(source: ImageSource, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, str]:
    """Read the text chunks (tEXt, zTXt, iTXt) of a PNG.

    Args:
        source: path, bytes or binary file object of a PNG.
        max_bytes: refuse inputs larger than this.

    Returns:
        ``{keyword: value}``; empty if the PNG has no text.

    Raises:
        InputError: not a readable PNG.
    """
    label = _describe(source)
    data = _read_bytes(source, max_bytes=max_bytes, label=label)
    image = _open_checked(
        data,
        label=label,
        max_pixels=DEFAULT_MAX_PIXELS,
        max_side=DEFAULT_MAX_SIDE,
        max_aspect=float("inf"),
        formats=("PNG",),
    )
    try:
        # .text decodes the image to reach chunks stored after the pixel data.
        return {str(k): str(v) for k, v in image.text.items()}
    except Exception as e:  # see load_image
        raise InputError(f"{label}: corrupt PNG ({type(e).__name__}: {e})") from None
