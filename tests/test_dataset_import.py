"""Tests for core.data.datasets (import, ImageFolderDataset, fingerprint) and the `dataset import` CLI.

Every hostile folder and archive is built here under tmp_path. Each import test also checks that nothing
was written outside DST.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pickle
import stat
import struct
import tarfile
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.cli.dataset_import import register
from core.data.datasets import ImageFolderDataset, dataset_fingerprint, import_dataset
from core.errors import InputError

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


# ---------------------------------------------------------------------------------------------------------
# Builders and checks
# ---------------------------------------------------------------------------------------------------------


def _png(color: tuple[int, int, int] = RED, size: tuple[int, int] = (24, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(color: tuple[int, int, int] = GREEN, size: tuple[int, int] = (20, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _noisy_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def _bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """Header claims width x height 1-bit pixels; the file is a few dozen bytes."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _centre_blue() -> bytes:
    """A wide image whose centre square is blue: the square crop must keep only blue."""
    image = Image.new("RGB", (60, 20), RED)
    image.paste(BLUE, (20, 0, 40, 20))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


GOOD = {"b/photo.jpg": _jpeg(GREEN), "a.png": _png(RED), "c_wide.png": _centre_blue()}
# Sorted names -> output order: a.png (red), b/photo.jpg (green), c_wide.png (blue).
GOOD_COLORS = [RED, GREEN, BLUE]


def _snapshot(root: Path) -> set[str]:
    return {
        os.path.relpath(os.path.join(d, n), root)
        for d, dirs, files in os.walk(root, followlinks=False)
        for n in dirs + files
    }


def _assert_nothing_outside(root: Path, before: set[str], dst: Path) -> None:
    dst_rel = os.path.relpath(dst, root)
    new = _snapshot(root) - before
    # DST itself, its contents, and the parent folders created to hold it are fine.
    parents = {os.path.relpath(p, root) for p in dst.parents if p != root and root in p.parents}
    outside = [p for p in new if p != dst_rel and not p.startswith(dst_rel + os.sep) and p not in parents]
    assert outside == [], f"written outside DST: {outside}"


def _check_report(report: dict) -> dict[str, str]:
    """Assert the report schema; return {name: reason} of skipped entries."""
    json.loads(json.dumps(report))  # JSON-able
    assert isinstance(report["imported"], int) and report["imported"] >= 0
    assert isinstance(report["skipped"], list)
    for item in report["skipped"]:
        assert set(item) == {"name", "reason"}
        assert isinstance(item["name"], str) and isinstance(item["reason"], str) and item["reason"]
        assert "\n" not in item["reason"]
    assert isinstance(report["resolution"], int)
    assert isinstance(report["stopped"], bool)
    return {item["name"]: item["reason"] for item in report["skipped"]}


def _outputs(dst: Path) -> list[Image.Image]:
    files = sorted((dst / "images").iterdir())
    assert [f.name for f in files] == [f"{i:08d}.png" for i in range(len(files))]
    return [Image.open(f) for f in files]


def _assert_dataset(dst: Path, *, count: int, res: int, colors: list | None = None) -> None:
    meta = json.loads((dst / "dataset.json").read_text())
    assert meta["labels"] is None
    assert meta["resolution"] == res and meta["count"] == count
    images = _outputs(dst)
    assert len(images) == count
    for i, image in enumerate(images):
        assert image.format == "PNG" and image.mode == "RGB" and image.size == (res, res)
        if colors is not None:
            centre = image.getpixel((res // 2, res // 2))
            assert max(abs(a - b) for a, b in zip(centre, colors[i], strict=True)) < 40, (i, centre)
    # No temporary files left behind by the atomic writes.
    assert not [p for p in dst.rglob(".*")]


def _write_zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name" is what we want here
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for info, data in members:
                zf.writestr(info, data)
    return path


def _mark_encrypted(path: Path, name: bytes) -> Path:
    """Set the 'encrypted' flag of member ``name`` (zipfile cannot write encrypted entries itself)."""
    data = bytearray(path.read_bytes())
    for signature, flag_offset, name_offset in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_offset : start + name_offset + len(name)] == name:
                data[start + flag_offset] |= 0x1
            start += 4
    path.write_bytes(bytes(data))
    return path


def _tar_member(name: str, data: bytes = b"", **attrs: object) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def _write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


# ---------------------------------------------------------------------------------------------------------
# Good sources
# ---------------------------------------------------------------------------------------------------------


def _good_folder(root: Path) -> Path:
    for name, data in GOOD.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_good_folder_imports_cropped_resized_in_name_order(tmp_path: Path) -> None:
    src = _good_folder(tmp_path / "src")
    dst = tmp_path / "out" / "ds"
    before = _snapshot(tmp_path)
    report = import_dataset(src, dst, resolution=16)
    assert _check_report(report) == {}
    assert report["imported"] == 3 and report["stopped"] is False
    _assert_dataset(dst, count=3, res=16, colors=GOOD_COLORS)
    # The wide image kept only its blue centre square.
    blue = np.asarray(_outputs(dst)[2])
    assert blue[..., 2].min() > 200 and blue[..., 0].max() < 40
    _assert_nothing_outside(tmp_path, before, dst)


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz", "tgz", "tar.bz2"])
def test_good_archives_import_like_the_folder(tmp_path: Path, kind: str) -> None:
    folder_dst = tmp_path / "from_folder"
    import_dataset(_good_folder(tmp_path / "src"), folder_dst, resolution=8)
    archive = tmp_path / f"src.{kind}"
    if kind == "zip":
        _write_zip(archive, list(GOOD.items()))
    else:
        mode = {"tar": "w", "tar.gz": "w:gz", "tgz": "w:gz", "tar.bz2": "w:bz2"}[kind]
        _write_tar(archive, [_tar_member(n, d) for n, d in GOOD.items()], mode)
    dst = tmp_path / "from_archive"
    before = _snapshot(tmp_path)
    report = import_dataset(archive, dst, resolution=8)
    assert _check_report(report) == {} and report["imported"] == 3
    _assert_dataset(dst, count=3, res=8, colors=GOOD_COLORS)
    for a, b in zip(_outputs(folder_dst), _outputs(dst), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    _assert_nothing_outside(tmp_path, before, dst)


def test_archive_with_unusual_suffix_is_sniffed(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "upload.bin", [("a.png", _png())])
    assert import_dataset(archive, tmp_path / "dst", resolution=4)["imported"] == 1


# ---------------------------------------------------------------------------------------------------------
# Hostile and broken entries
# ---------------------------------------------------------------------------------------------------------

BAD_IMAGES = {
    "text.png": b"I am not a PNG\n" * 4,
    "text_named.jpg": b"neither a JPEG\n",
    "corrupt.png": _png()[:8] + b"\x00\x01garbage" * 30,
    "truncated.jpg": _noisy_jpeg()[: len(_noisy_jpeg()) // 2],
    "bomb.png": _bomb_png(),
    "bomb_small.png": _bomb_png(9000, 9000),
    "strip.png": _png(size=(2000, 1)),
    "empty.png": b"",
    "notes.txt": b"hello",
}
BAD_REASONS = {
    "text.png": "not a readable image",
    "text_named.jpg": "not a readable image",
    "corrupt.png": "corrupt",
    "truncated.jpg": "truncated",
    "bomb.png": "decompression bomb",
    "bomb_small.png": "decompression bomb",
    "strip.png": "aspect ratio",
    "empty.png": "empty",
    "notes.txt": "not an image file name",
}


def _assert_reasons(reasons: dict[str, str], expected: dict[str, str]) -> None:
    for name, fragment in expected.items():
        assert name in reasons, f"{name} not reported; got {sorted(reasons)}"
        assert fragment in reasons[name], (name, reasons[name])


def test_hostile_zip_entries_are_skipped_with_reasons(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("link.png")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    device = zipfile.ZipInfo("dev.png")
    device.create_system = 3
    device.external_attr = (stat.S_IFCHR | 0o644) << 16
    members: list[tuple[zipfile.ZipInfo | str, bytes]] = [
        ("good.png", _png(RED)),
        ("../evil.png", _png()),
        ("a/../../evil2.png", _png()),
        ("/tmp/evil.png", _png()),
        ("C:\\evil.png", _png()),
        ("..\\evil3.png", _png()),
        (link, b"/etc/passwd"),
        (device, b""),
        ("secret.png", _png()),
        ("dup.png", _png(GREEN)),
        ("dup.png", _png(BLUE)),
        ("__MACOSX/._good.png", b"\x00\x05\x16\x07"),
        ("folder/", b""),
        *BAD_IMAGES.items(),
    ]
    archive = _mark_encrypted(_write_zip(tmp_path / "hostile.zip", members), b"secret.png")
    evil_existed = Path("/tmp/evil.png").exists()
    dst = tmp_path / "dst"
    before = _snapshot(tmp_path)
    report = import_dataset(archive, dst, resolution=8)
    reasons = _check_report(report)
    assert report["imported"] == 2  # good.png, first dup.png
    _assert_dataset(dst, count=2, res=8, colors=[GREEN, RED])  # dup.png < good.png
    _assert_reasons(
        reasons,
        {
            "../evil.png": "..",
            "a/../../evil2.png": "..",
            "/tmp/evil.png": "absolute path",
            "C:\\evil.png": "absolute path",
            "..\\evil3.png": "..",
            "link.png": "symbolic link",
            "dev.png": "device",
            "secret.png": "encrypted",
            "dup.png": "duplicate",
            "__MACOSX/._good.png": "metadata",
            **BAD_REASONS,
        },
    )
    assert "folder" not in reasons and "folder/" not in reasons
    _assert_nothing_outside(tmp_path, before, dst)
    assert Path("/tmp/evil.png").exists() == evil_existed


def test_hostile_tar_entries_are_skipped_with_reasons(tmp_path: Path) -> None:
    members = [
        _tar_member("good.png", _png(RED)),
        _tar_member("../evil.png", _png()),
        _tar_member("/abs/evil.png", _png()),
        _tar_member("sym.png", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
        _tar_member("escape.png", type=tarfile.SYMTYPE, linkname="../../../../outside.png"),
        _tar_member("hard.png", type=tarfile.LNKTYPE, linkname="good.png"),
        _tar_member("chr.png", type=tarfile.CHRTYPE, devmajor=1, devminor=3),
        _tar_member("blk.png", type=tarfile.BLKTYPE, devmajor=8, devminor=0),
        _tar_member("fifo.png", type=tarfile.FIFOTYPE),
        _tar_member("dup.png", _png(GREEN)),
        _tar_member("dup.png", _png(BLUE)),
        _tar_member("dir", type=tarfile.DIRTYPE),
        *(_tar_member(n, d) for n, d in BAD_IMAGES.items()),
    ]
    archive = _write_tar(tmp_path / "hostile.tar.gz", members, "w:gz")
    dst = tmp_path / "dst"
    before = _snapshot(tmp_path)
    report = import_dataset(archive, dst, resolution=8)
    reasons = _check_report(report)
    assert report["imported"] == 2
    _assert_dataset(dst, count=2, res=8, colors=[GREEN, RED])
    _assert_reasons(
        reasons,
        {
            "../evil.png": "..",
            "/abs/evil.png": "absolute path",
            "sym.png": "symbolic link",
            "escape.png": "symbolic link",
            "hard.png": "hard link",
            "chr.png": "device",
            "blk.png": "device",
            "fifo.png": "FIFO",
            "dup.png": "duplicate",
            **BAD_REASONS,
        },
    )
    _assert_nothing_outside(tmp_path, before, dst)


def test_truncated_tar_keeps_what_it_can(tmp_path: Path) -> None:
    full = _write_tar(
        tmp_path / "full.tar", [_tar_member("a.png", _png()), _tar_member("b.png", _noisy_png())]
    )
    data = full.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: 512 + len(_png()) + 512 + 700])  # a.png whole, b.png's data cut short
    report = import_dataset(cut, tmp_path / "dst", resolution=4)
    reasons = _check_report(report)
    assert report["imported"] == 1
    assert "b.png" in reasons


def _noisy_png() -> bytes:
    rng = np.random.default_rng(2)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_zip_bombs_are_refused(tmp_path: Path) -> None:
    zeros = b"\0" * (48 * 1024 * 1024)  # compresses ~1000:1 to ~48 KB
    archive = _write_zip(tmp_path / "bomb.zip", [("a_good.png", _png()), ("huge.png", zeros)])
    assert archive.stat().st_size < 1024 * 1024
    dst = tmp_path / "dst"
    before = _snapshot(tmp_path)
    report = import_dataset(archive, dst, resolution=4)
    reasons = _check_report(report)
    assert report["imported"] == 1
    assert "compression ratio" in reasons["huge.png"] and "zip bomb" in reasons["huge.png"]
    _assert_nothing_outside(tmp_path, before, dst)
    # The declared size alone is refused too, before any byte is inflated.
    report = import_dataset(archive, tmp_path / "dst2", resolution=4, max_entry_bytes=1024 * 1024)
    assert "entry limit" in _check_report(report)["huge.png"]


def test_total_size_and_entry_count_limits(tmp_path: Path) -> None:
    members = [(f"{i:03d}.png", _png()) for i in range(30)]
    archive = _write_zip(tmp_path / "many.zip", members)
    # zipfile would parse every central-directory record into memory: refuse before that.
    with pytest.raises(InputError, match="declares 30 entries"):
        import_dataset(archive, tmp_path / "d0", resolution=4, max_entries=10)
    tar = _write_tar(tmp_path / "many.tar", [_tar_member(n, d) for n, d in members])
    src = tmp_path / "many"
    src.mkdir()
    for name, data in members:
        (src / name).write_bytes(data)
    for source in (tar, src):
        report = import_dataset(source, tmp_path / f"d_{source.name}", resolution=4, max_entries=10)
        reasons = _check_report(report)
        assert report["imported"] == 10
        assert "more than 10 entries" in reasons[source.name]
        assert len(report["skipped"]) == 1  # one line, not one per extra entry

    per_entry = len(_png())
    report = import_dataset(archive, tmp_path / "d2", resolution=4, max_total_bytes=per_entry * 5 + 1)
    reasons = _check_report(report)
    assert report["imported"] == 5
    assert sum("total size limit" in r for r in reasons.values()) == 25


def test_compressed_tar_bomb_is_not_scanned_to_the_end(tmp_path: Path) -> None:
    members = [
        _tar_member("a.png", _png()),
        _tar_member("huge.png", b"\0" * (3 * 1024 * 1024)),
        _tar_member("z.png", _png()),
    ]
    archive = _write_tar(tmp_path / "bomb.tar.gz", members, "w:gz")
    limit = 1024 * 1024
    report = import_dataset(
        archive, tmp_path / "dst", resolution=4, max_entry_bytes=limit, max_total_bytes=limit
    )
    reasons = _check_report(report)
    assert report["imported"] == 1
    assert "entry limit" in reasons["huge.png"]
    assert "the rest was not read" in reasons["bomb.tar.gz"]
    assert "z.png" not in reasons


def test_zip_with_lying_size_header_is_skipped_not_crashed(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "liar.zip", [("a.png", _png()), ("b.png", _noisy_png())])
    data = bytearray(archive.read_bytes())
    # Patch b.png's uncompressed size in the central directory (offset 24 in its record) to 100 bytes.
    cd = data.rfind(b"PK\x01\x02")
    assert data[cd + 46 : cd + 51] == b"b.png"
    data[cd + 24 : cd + 28] = struct.pack("<I", 100)
    archive.write_bytes(bytes(data))
    report = import_dataset(archive, tmp_path / "dst", resolution=4)
    reasons = _check_report(report)
    assert report["imported"] == 1
    assert "b.png" in reasons


def test_hostile_folder_entries(tmp_path: Path) -> None:
    src = _good_folder(tmp_path / "src")
    outside = tmp_path / "secret.png"
    outside.write_bytes(_png(BLUE))
    (src / "link.png").symlink_to(outside)
    (src / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(src / "pipe.png")  # opening it for reading would block forever
    (src / ".git").mkdir()
    (src / ".git" / "x.png").write_bytes(_png())
    (src / ".hidden.png").write_bytes(_png())
    for name, data in BAD_IMAGES.items():
        (src / name).write_bytes(data)
    dst = tmp_path / "dst"
    before = _snapshot(tmp_path)
    report = import_dataset(src, dst, resolution=16)
    reasons = _check_report(report)
    assert report["imported"] == 3
    _assert_dataset(dst, count=3, res=16, colors=GOOD_COLORS)
    _assert_reasons(
        reasons,
        {
            "link.png": "symbolic link",
            "linkdir": "symbolic link",
            "pipe.png": "FIFO",
            ".git": "hidden",
            ".hidden.png": "hidden",
            **BAD_REASONS,
        },
    )
    assert ".git/x.png" not in reasons
    _assert_nothing_outside(tmp_path, before, dst)


# ---------------------------------------------------------------------------------------------------------
# Fatal errors, destination handling, progress and stopping
# ---------------------------------------------------------------------------------------------------------


def test_fatal_errors_are_input_errors(tmp_path: Path) -> None:
    src = _good_folder(tmp_path / "src")
    (tmp_path / "file").write_text("x")
    (tmp_path / "notes.txt").write_text("not an archive")
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 broken")
    cases = [
        (tmp_path / "missing", tmp_path / "d", 16, "not found"),
        (src, tmp_path / "file", 16, "is a file"),
        (tmp_path / "notes.txt", tmp_path / "d", 16, "not a folder"),
        (tmp_path / "broken.zip", tmp_path / "d", 16, "zip"),
        (src, tmp_path / "d", 100, "power of two"),
        (src, tmp_path / "d", 0, "resolution"),
    ]
    for s, d, res, match in cases:
        with pytest.raises(InputError, match=match):
            import_dataset(s, d, resolution=res)
    assert not (tmp_path / "d").exists()


def test_existing_dataset_needs_overwrite(tmp_path: Path) -> None:
    src = _good_folder(tmp_path / "src")
    dst = tmp_path / "dst"
    import_dataset(src, dst, resolution=4)
    (dst / "notes.md").write_text("mine")
    with pytest.raises(InputError, match="already holds a dataset"):
        import_dataset(src, dst, resolution=4)
    (src / "a.png").unlink()
    report = import_dataset(src, dst, resolution=8, overwrite=True)
    assert report["imported"] == 2
    _assert_dataset(dst, count=2, res=8, colors=[GREEN, BLUE])
    assert (dst / "notes.md").read_text() == "mine"


def test_dst_inside_src_is_not_imported_again(tmp_path: Path) -> None:
    src = _good_folder(tmp_path / "src")
    for _ in range(2):
        report = import_dataset(src, src / "out", resolution=4, overwrite=True)
        assert report["imported"] == 3 and _check_report(report) == {}


def test_progress_and_should_stop(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"{i}.png").write_bytes(_png())
    calls: list[tuple[int, int]] = []
    report = import_dataset(src, tmp_path / "d1", resolution=4, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 6) for i in range(1, 7)]
    assert report["imported"] == 6

    calls.clear()
    report = import_dataset(
        src,
        tmp_path / "d2",
        resolution=4,
        progress=lambda d, t: calls.append((d, t)),
        should_stop=lambda: len(calls) >= 2,
    )
    assert report["stopped"] is True and report["imported"] == 2
    _assert_dataset(tmp_path / "d2", count=2, res=4)


# ---------------------------------------------------------------------------------------------------------
# Reading datasets back
# ---------------------------------------------------------------------------------------------------------


def test_image_folder_dataset_reads_imported_folder(tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    import_dataset(_good_folder(tmp_path / "src"), dst, resolution=8)
    ds = ImageFolderDataset(dst)
    assert len(ds) == 3 and ds.resolution == 8 and ds.image_shape == [3, 8, 8]
    item = ds[0]
    assert item.dtype == torch.float32 and item.shape == (3, 8, 8)
    assert item.min() >= -1 and item.max() <= 1
    assert item[0].mean() > 0.9 and item[1].mean() < -0.9  # red
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch.shape == (3, 3, 8, 8)

    flipped = ImageFolderDataset(dst, xflip=True, resolution=4)
    assert len(flipped) == 6 and flipped[0].shape == (3, 4, 4)
    assert torch.equal(flipped[3 + 2], flipped[2].flip(-1))
    with pytest.raises(IndexError):
        flipped[6]


def test_image_folder_dataset_reads_zip_and_plain_folders(tmp_path: Path) -> None:
    wide = Image.new("RGB", (8, 4), RED)
    wide.paste(BLUE, (4, 0, 8, 4))
    buf = io.BytesIO()
    wide.save(buf, format="PNG")
    archive = _write_zip(
        tmp_path / "ds.zip", [("x/b.png", buf.getvalue()), ("a.jpg", _jpeg()), ("n.txt", b"")]
    )
    ds = ImageFolderDataset(archive, resolution=4, xflip=True)
    assert ds.names == ["a.jpg", "x/b.png"]
    assert ds[1].shape == (3, 4, 4)
    # Flip maps the left (red|blue boundary in the centre crop) to the right.
    assert torch.equal(ds[3], ds[1].flip(-1))
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[0], ds[0])

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "one.png").write_bytes(_png(size=(10, 6)))
    assert ImageFolderDataset(plain).resolution == 6

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        ImageFolderDataset(tmp_path / "empty")
    with pytest.raises(InputError):
        ImageFolderDataset(tmp_path / "missing")


def test_dataset_fingerprint(tmp_path: Path) -> None:
    a = _good_folder(tmp_path / "a")
    b = _good_folder(tmp_path / "b")
    assert dataset_fingerprint(a) == dataset_fingerprint(b)
    assert len(dataset_fingerprint(a)) == 64
    (b / "extra.png").write_bytes(_png())
    assert dataset_fingerprint(a) != dataset_fingerprint(b)
    z1 = _write_zip(tmp_path / "1.zip", list(GOOD.items()))
    z2 = _write_zip(tmp_path / "2.zip", [*GOOD.items(), ("more.png", _png())])
    assert dataset_fingerprint(z1) != dataset_fingerprint(z2)
    assert dataset_fingerprint(z1) == dataset_fingerprint(z1)
    with pytest.raises(InputError):
        dataset_fingerprint(tmp_path / "missing")


# ---------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylescope dataset")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_cli_import_prints_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _good_folder(tmp_path / "src")
    (src / "bad.png").write_bytes(b"nope")
    args = _parser().parse_args(["import", str(src), str(tmp_path / "dst"), "--res", "8", "--json"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["imported"] == 3
    assert _check_report(report)["bad.png"].startswith("not a readable image")

    args = _parser().parse_args(["import", str(src), str(tmp_path / "dst2"), "--res", "8"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["imported"] == 3
    assert "imported 3 images" in captured.err


def test_cli_fatal_errors_raise_input_error(tmp_path: Path) -> None:
    # Fatal errors surface as InputError, which core.cli.main prints as one line with a nonzero status.
    args = _parser().parse_args(["import", str(tmp_path / "missing"), str(tmp_path / "dst")])
    with pytest.raises(InputError, match="not found") as info:
        args.func(args)
    assert "\n" not in str(info.value)
    (tmp_path / "file").write_text("x")
    args = _parser().parse_args(["import", str(_good_folder(tmp_path / "src")), str(tmp_path / "file")])
    with pytest.raises(InputError, match="is a file"):
        args.func(args)
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["import", "--help"])
    assert info.value.code == 0
