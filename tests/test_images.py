"""Tests for core.images: tensor <-> pixel conversion and loading of broken or hostile images.

Every hostile file is built here, in memory or under tmp_path.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import InputError
from core.images import (
    from_pil,
    load_image,
    make_grid,
    read_png_text,
    save_png,
    square_crop,
    to_pil,
    to_uint8,
)


def _encode(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_with_header(width: int, height: int, *, bit_depth: int = 1, color_type: int = 0) -> bytes:
    """A PNG whose IHDR claims ``width x height`` but whose pixel data is a few bytes (a 'bomb')."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------------------------------------
# Tensor <-> pixels
# ---------------------------------------------------------------------------------------------------------


def test_to_uint8_uses_nvidia_convention_and_clamps() -> None:
    values = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 5).expand(2, 3, 1, 5)
    pixels = to_uint8(values)
    assert pixels.shape == (2, 1, 5, 3)
    assert pixels.dtype == torch.uint8
    assert pixels[0, 0, :, 0].tolist() == [0, 0, 128, 255, 255]


def test_uint8_round_trip_is_exact() -> None:
    rng = np.random.default_rng(0)
    arrays = rng.integers(0, 256, size=(3, 7, 5, 3), dtype=np.uint8)
    images = from_pil([Image.fromarray(a) for a in arrays])
    assert images.dtype == torch.float32
    assert images.shape == (3, 3, 7, 5)
    assert images.min() >= -1 and images.max() <= 1
    assert np.array_equal(to_uint8(images).numpy(), arrays)
    assert all(np.array_equal(np.asarray(p), a) for p, a in zip(to_pil(images), arrays, strict=True))


def test_to_pil_accepts_single_image_and_checks_shape() -> None:
    (image,) = to_pil(torch.zeros(3, 4, 6))
    assert image.mode == "RGB" and image.size == (6, 4)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        to_uint8(torch.zeros(1, 4, 4, 4))
    with pytest.raises(ValueError, match="floating"):
        to_uint8(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))


def test_from_pil_resizes_and_converts_modes() -> None:
    grey = Image.new("L", (10, 20), 255)
    rgba = Image.new("RGBA", (5, 5), (0, 0, 0, 255))
    images = from_pil([grey, rgba], size=8)
    assert images.shape == (2, 3, 8, 8)
    assert torch.allclose(images[0], torch.ones(3, 8, 8))
    assert torch.allclose(images[1], -torch.ones(3, 8, 8))
    assert from_pil(grey, size=(4, 6)).shape == (1, 3, 4, 6)
    with pytest.raises(ValueError, match="different sizes"):
        from_pil([grey, rgba])
    with pytest.raises(ValueError):
        from_pil([])


def test_make_grid_places_images_row_major() -> None:
    images = torch.stack([torch.full((3, 2, 3), float(i) / 10) for i in range(5)])
    grid = make_grid(images, nrow=2, padding=1, pad_value=-1.0)
    assert grid.shape == (1, 3, 3 * 3 + 1, 2 * 4 + 1)
    assert grid[0, 0, 1, 1] == 0.0  # image 0, top-left cell
    assert grid[0, 0, 1, 5] == pytest.approx(0.1)  # image 1, right of it
    assert grid[0, 0, 4, 1] == pytest.approx(0.2)  # image 2, second row
    assert grid[0, 0, 7, 5] == -1.0  # empty last cell
    assert grid[0, 0, 0, 0] == -1.0  # padding
    assert make_grid(images, nrow=8).shape == (1, 3, 2, 15)
    with pytest.raises(ValueError):
        make_grid(images, nrow=0)


def test_square_crop_takes_the_centre() -> None:
    image = Image.new("RGB", (30, 10), (255, 0, 0))
    image.paste((0, 0, 255), (10, 0, 20, 10))  # blue centre square
    out = square_crop(image, size=4)
    assert out.size == (4, 4)
    assert all(out.getpixel((x, y))[2] > 200 for x in range(4) for y in range(4))


# ---------------------------------------------------------------------------------------------------------
# load_image: good inputs
# ---------------------------------------------------------------------------------------------------------


def test_load_image_accepts_paths_bytes_and_streams(tmp_path: Path) -> None:
    data = _encode(Image.new("RGB", (6, 4), (10, 20, 30)))
    path = tmp_path / "a.png"
    path.write_bytes(data)
    sources = [path, str(path), data, bytearray(data), memoryview(data), io.BytesIO(data)]
    with path.open("rb") as f:
        sources.append(f)
        for source in sources:
            image = load_image(source)
            assert image.mode == "RGB" and image.size == (6, 4)
            assert image.getpixel((0, 0)) == (10, 20, 30)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the left edge becomes the top
    loaded = load_image(_encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert loaded.size == (20, 40)
    top, bottom = loaded.getpixel((10, 5)), loaded.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 50
    assert bottom[2] > 200 and bottom[0] < 50


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    values = np.array([[0, 32896, 65535]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    loaded = load_image(_encode(image))
    assert [loaded.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


def test_palette_with_transparency_and_rgba_composite_on_white() -> None:
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * (254 * 3))
    palette.putpixel((0, 0), 1)
    loaded = load_image(_encode(palette, transparency=0))
    assert loaded.getpixel((0, 0)) == (255, 0, 0)
    assert loaded.getpixel((3, 3)) == (255, 255, 255)  # transparent index -> white

    rgba = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (0, 0, 0, 255))
    loaded = load_image(_encode(rgba))
    assert loaded.getpixel((0, 0)) == (255, 255, 255)
    assert loaded.getpixel((1, 0)) == (0, 0, 0)

    la = Image.new("LA", (1, 1), (0, 128))
    assert 120 <= load_image(_encode(la)).getpixel((0, 0))[0] <= 135


def test_cmyk_grey_and_bilevel_become_rgb() -> None:
    cmyk = load_image(_encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95))
    r, g, b = cmyk.getpixel((4, 4))
    assert cmyk.mode == "RGB" and r > 200 and g < 60 and b < 60
    assert load_image(_encode(Image.new("L", (3, 3), 7))).getpixel((1, 1)) == (7, 7, 7)
    assert load_image(_encode(Image.new("1", (3, 3), 1))).getpixel((1, 1)) == (255, 255, 255)


def test_animated_gif_gives_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    r, g, b = load_image(data).getpixel((4, 4))
    assert r > 200 and g < 50 and b < 50


# ---------------------------------------------------------------------------------------------------------
# load_image: hostile and broken inputs
# ---------------------------------------------------------------------------------------------------------


def _good_png() -> bytes:
    return _encode(Image.new("RGB", (64, 64), (1, 2, 3)))


def _good_jpeg() -> bytes:
    rng = np.random.default_rng(1)
    return _encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), "JPEG")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"hello, I am a text file\n" * 10, "not a readable image"),
        (_good_png()[:8] + b"\x00garbage" * 20, "corrupt|not a readable"),
        (_good_png()[:60], "truncated|corrupt"),
        (_good_jpeg()[: len(_good_jpeg()) // 2], "truncated"),
        (_png_with_header(20000, 20000), "decompression bomb"),
        (_png_with_header(8000, 8000), "possible decompression bomb"),
        (_png_with_header(0, 10), "zero size|corrupt|not a readable"),
        (_png_with_header(1, 10000), "aspect ratio"),
        (_png_with_header(20000, 2000), "side limit"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not a readable image"),
    ],
    ids=[
        "empty",
        "text",
        "corrupt-png",
        "truncated-png",
        "truncated-jpeg",
        "bomb-pil-limit",
        "bomb-our-limit",
        "zero-size",
        "aspect",
        "side",
        "eps-not-allowed",
    ],
)
def test_bad_inputs_raise_input_error(data: bytes, match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        load_image(data)
    message = str(info.value)
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_text_file_named_jpg_and_missing_paths(tmp_path: Path) -> None:
    fake = tmp_path / "photo.jpg"
    fake.write_text("definitely not a jpeg")
    with pytest.raises(InputError, match=r"^photo\.jpg: not a readable image"):
        load_image(fake)
    with pytest.raises(InputError, match="missing"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path)
    with pytest.raises(InputError, match="expected a path"):
        load_image(42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="binary"):
        load_image(io.StringIO("text"))  # type: ignore[arg-type]


def test_size_limits_are_keywords() -> None:
    data = _encode(Image.new("RGB", (100, 10)))
    assert load_image(data).size == (100, 10)
    with pytest.raises(InputError, match="aspect"):
        load_image(data, max_aspect=5)
    with pytest.raises(InputError, match="pixels"):
        load_image(data, max_pixels=999)
    with pytest.raises(InputError, match="side"):
        load_image(data, max_side=99)
    with pytest.raises(InputError, match="MiB"):
        load_image(data, max_bytes=10)


def test_load_image_leaves_global_state_alone() -> None:
    before_limit = Image.MAX_IMAGE_PIXELS
    before_filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for data in [_png_with_header(20000, 20000), _png_with_header(10000, 10000)]:
            with pytest.raises(InputError):
                load_image(data)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert before_limit == Image.MAX_IMAGE_PIXELS
    assert list(warnings.filters) == before_filters


# ---------------------------------------------------------------------------------------------------------
# PNG text chunks
# ---------------------------------------------------------------------------------------------------------


def test_save_png_round_trips_text_atomically(tmp_path: Path) -> None:
    image = Image.new("RGB", (5, 5), (9, 8, 7))
    text = {"recipe": '{"seed": 1}', "unicode": "Grüße ✓ 東京", "long": "x" * 5000}
    path = save_png(image, tmp_path / "out.png", text=text)
    assert path == tmp_path / "out.png"
    assert read_png_text(path) == text
    assert read_png_text(path.read_bytes()) == text
    assert load_image(path).getpixel((0, 0)) == (9, 8, 7)
    # Overwriting replaces the file; no temporary files are left behind.
    save_png(Image.new("RGB", (2, 2)), path)
    assert read_png_text(path) == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_save_png_rejects_bad_keywords_without_leaving_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keyword"):
        save_png(Image.new("RGB", (2, 2)), tmp_path / "a.png", text={"": "x"})
    with pytest.raises(ValueError, match="Latin-1"):
        save_png(Image.new("RGB", (2, 2)), tmp_path / "a.png", text={"ключ": "x"})
    assert list(tmp_path.iterdir()) == []


def test_read_png_text_refuses_non_png() -> None:
    with pytest.raises(InputError):
        read_png_text(_good_jpeg())
    with pytest.raises(InputError, match="empty"):
        read_png_text(b"")
