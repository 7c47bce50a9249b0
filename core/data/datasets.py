"""Users' image collections: safe import into a training-ready folder, and a Dataset that reads it back.

``import_dataset`` turns a folder, ``.zip`` or ``.tar`` (``.tar.gz``/``.tgz``/``.tar.bz2``/``.tar.xz``) of
images into ``DST/images/00000000.png, ...`` (square, centre-cropped, resized) plus ``DST/dataset.json``.
The JSON follows NVIDIA's ``dataset_tool.py`` (``{"labels": null}``) so their loaders read it, with our
own metadata (source, resolution, count) next to it.

Archives are never extracted: each entry is checked from its header (type, name, declared size,
compression ratio), then read into memory on its own with a byte cap, because headers can lie. Output
files are named by number, so no entry name ever becomes a path; entries whose names would escape
(``..``, absolute paths) are still refused, loudly, because such an archive is hostile or broken.
Everything that is not imported is reported with a reason; a bad entry never stops the import.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import struct
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from core.errors import InputError
from core.images import (
    DEFAULT_MAX_ASPECT,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIDE,
    from_pil,
    load_image,
    save_png,
    square_crop,
)

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_MAX_ENTRY_BYTES",
    "DEFAULT_MAX_RATIO",
    "DEFAULT_MAX_TOTAL_BYTES",
    "IMAGE_SUFFIXES",
    "ImageFolderDataset",
    "dataset_fingerprint",
    "import_dataset",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")

DEFAULT_MAX_ENTRIES = 200_000
DEFAULT_MAX_ENTRY_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 16 * 1024**3
# Compressed images barely shrink in a zip (PNG/JPEG are already compressed); 200:1 is far beyond any
# real image and typical of a bomb. Entries under _RATIO_FLOOR are exempt: they cannot hurt us (the
# per-entry cap bounds them) and flat BMPs/TIFFs legitimately compress that well.
DEFAULT_MAX_RATIO = 200.0
_RATIO_FLOOR = 1024 * 1024

ProgressFn = Callable[[int, int], None]
StopFn = Callable[[], bool]


# --------------------------------------------------------------------------------------------------------
# Entries of a source, as seen from their headers
# --------------------------------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One member of a source. ``kind`` is file/dir/symlink/hardlink/device/fifo/other."""

    name: str
    kind: str
    size: int
    compressed: int | None = None
    encrypted: bool = False
    handle: Any = None  # source-specific: a path, ZipInfo or TarInfo
    order: int = 0  # position for reading (archive offset), so compressed streams only seek forward


@dataclass
class _Limits:
    max_entries: int
    max_entry_bytes: int
    max_total_bytes: int
    max_ratio: float


@dataclass
class _Plan:
    accepted: list[_Entry] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append({"name": name, "reason": reason})


_DRIVE = re.compile(r"^[A-Za-z]:")


def _safe_name(raw: str) -> tuple[str | None, str | None]:
    """Normalise an archive member name; return ``(name, None)`` or ``(None, reason)``."""
    if "\x00" in raw:
        return None, "name contains a NUL byte"
    name = raw.replace("\\", "/")
    if name.startswith("/") or _DRIVE.match(name):
        return None, "absolute path (would land outside the destination)"
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None, "path contains '..' (would land outside the destination)"
    if not parts:
        return None, "empty name"
    return "/".join(parts), None


def _is_metadata(name: str) -> bool:
    # Hidden files and macOS "__MACOSX/._x.png" resource forks carry image names but no images.
    return any(p.startswith(".") or p == "__MACOSX" for p in name.split("/"))


class _FolderSource:
    """A folder, walked without following symlinks."""

    def __init__(self, root: Path, *, exclude: Path | None) -> None:
        self.root = root
        self.exclude = exclude

    def entries(self) -> Iterator[_Entry]:
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            here = Path(dirpath)
            # Sorted walk = deterministic report; the output folder (if nested in SRC) is not input.
            kept = []
            for d in sorted(dirnames):
                full = here / d
                rel = full.relative_to(self.root).as_posix()
                if self.exclude is not None and full.resolve() == self.exclude:
                    continue
                if full.is_symlink():
                    yield _Entry(rel, "symlink", 0)
                elif _is_metadata(rel):
                    # Not descending into .git, __MACOSX & co.: one report line instead of thousands.
                    yield _Entry(rel, "hidden_dir", 0)
                else:
                    kept.append(d)
            dirnames[:] = kept
            for f in sorted(filenames):
                full = here / f
                rel = full.relative_to(self.root).as_posix()
                try:
                    st = os.lstat(full)
                except OSError:
                    yield _Entry(rel, "other", 0)
                    continue
                yield _Entry(rel, _mode_kind(st.st_mode), st.st_size, handle=full)

    def read(self, entry: _Entry, limit: int) -> bytes:
        # O_NOFOLLOW closes the gap between listing and opening: a file swapped for a link is refused.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(entry.handle, flags)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise InputError("not a regular file")
            return f.read(limit + 1)

    def close(self) -> None:
        pass


def _mode_kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "other"


class _ZipSource:
    def __init__(self, path: Path) -> None:
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError) as e:
            raise InputError(f"{path.name}: not a readable zip archive ({e})") from None

    def entries(self) -> Iterator[_Entry]:
        for info in self.zf.infolist():
            mode = info.external_attr >> 16
            if info.is_dir():
                kind = "dir"
            elif info.create_system == 3 and stat.S_IFMT(mode):
                # Unix-made zips store the file type in the high bits; links and devices live there.
                kind = _mode_kind(mode)
            else:
                kind = "file"
            yield _Entry(
                info.filename,
                kind,
                info.file_size,
                compressed=info.compress_size,
                encrypted=bool(info.flag_bits & 0x1),
                handle=info,
                order=info.header_offset,
            )

    def read(self, entry: _Entry, limit: int) -> bytes:
        with self.zf.open(entry.handle) as f:
            return f.read(limit + 1)

    def close(self) -> None:
        self.zf.close()


_TAR_KINDS = (
    (tarfile.TarInfo.isreg, "file"),
    (tarfile.TarInfo.isdir, "dir"),
    (tarfile.TarInfo.issym, "symlink"),
    (tarfile.TarInfo.islnk, "hardlink"),
    (tarfile.TarInfo.ischr, "device"),
    (tarfile.TarInfo.isblk, "device"),
    (tarfile.TarInfo.isfifo, "fifo"),
)


def _zip_declared_entries(path: Path) -> int | None:
    """Entry count from the zip's end-of-central-directory record (zip64 aware); None if not found."""
    size = path.stat().st_size
    with path.open("rb") as f:
        tail_len = min(size, 22 + 65535)  # EOCD is 22 bytes plus an optional comment of up to 64 KiB
        f.seek(size - tail_len)
        tail = f.read(tail_len)
        pos = tail.rfind(b"PK\x05\x06")
        if pos < 0 or pos + 22 > len(tail):
            return None
        (total,) = struct.unpack("<H", tail[pos + 10 : pos + 12])
        if total == 0xFFFF and pos >= 20 and tail[pos - 20 : pos - 16] == b"PK\x06\x07":
            (offset,) = struct.unpack("<Q", tail[pos - 12 : pos - 4])
            if offset < size:
                f.seek(offset)
                record = f.read(56)
                if record[:4] == b"PK\x06\x06" and len(record) == 56:
                    (total,) = struct.unpack("<Q", record[32:40])
    return total


class _TarSource:
    def __init__(self, path: Path, *, scan_limit: int) -> None:
        self.name = path.name
        self.scan_limit = scan_limit
        try:
            self.tf = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by close()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise InputError(f"{path.name}: not a readable tar archive ({e})") from None
        self.error: str | None = None

    def entries(self) -> Iterator[_Entry]:
        while True:
            try:
                info = self.tf.next()
            except (tarfile.TarError, OSError, EOFError) as e:
                # Keep what was listed so far; the report says the archive ended badly.
                self.error = f"archive is corrupt or truncated after this point ({e})"
                return
            if info is None:
                return
            kind = next((k for test, k in _TAR_KINDS if test(info)), "other")
            yield _Entry(info.name, kind, info.size, handle=info, order=info.offset_data)
            if info.offset_data + info.size > self.scan_limit:
                self.error = f"archive stream longer than {self.scan_limit:,} bytes; the rest was not read"
                return

    def read(self, entry: _Entry, limit: int) -> bytes:
        f = self.tf.extractfile(entry.handle)
        if f is None:
            raise InputError("not a regular file")
        with f:
            return f.read(limit + 1)

    def close(self) -> None:
        self.tf.close()


def _open_source(
    src: Path, *, exclude: Path | None, limits: _Limits
) -> _FolderSource | _ZipSource | _TarSource:
    if not src.exists() and not src.is_symlink():
        raise InputError(f"source {src} not found")
    if src.is_dir():
        return _FolderSource(src, exclude=exclude)
    if not src.is_file():
        raise InputError(f"source {src} is not a folder, .zip or .tar file")
    lower = src.name.lower()
    # Known suffixes first; otherwise trust the content, not the name.
    if lower.endswith(".zip") or (not lower.endswith(TAR_SUFFIXES) and zipfile.is_zipfile(src)):
        declared = _zip_declared_entries(src)
        if declared is not None and declared > limits.max_entries:
            # zipfile parses the whole central directory into memory up front, so refuse before that.
            raise InputError(
                f"{src.name}: declares {declared:,} entries, over the limit of {limits.max_entries:,} "
                "(possible zip bomb)"
            )
        return _ZipSource(src)
    if lower.endswith(TAR_SUFFIXES) or tarfile.is_tarfile(src):
        # Skipping a member of a compressed tar still inflates it; bound how far we scan.
        return _TarSource(src, scan_limit=limits.max_total_bytes + 2 * limits.max_entry_bytes)
    raise InputError(f"source {src.name} is not a folder, .zip or .tar archive")


_REFUSED_KINDS = {
    "symlink": "symbolic link (refused)",
    "hardlink": "hard link (refused)",
    "device": "device file (refused)",
    "fifo": "FIFO / named pipe (refused)",
    "other": "not a regular file (refused)",
    "hidden_dir": "hidden or metadata folder (not read)",
}


def _plan(source: _FolderSource | _ZipSource | _TarSource, limits: _Limits, *, label: str) -> _Plan:
    """Decide from headers alone which entries to read; everything else gets a reason."""
    plan = _Plan()
    seen: set[str] = set()
    declared_total = 0
    for count, entry in enumerate(source.entries()):
        if count >= limits.max_entries:
            plan.skip(label, f"more than {limits.max_entries} entries; the rest were not read")
            break
        if entry.kind == "dir":
            continue
        name, reason = _safe_name(entry.name)
        shown = name or entry.name
        if reason is not None:
            plan.skip(shown, reason)
            continue
        assert name is not None
        if entry.kind != "file":
            plan.skip(name, _REFUSED_KINDS[entry.kind])
            continue
        if name in seen:
            plan.skip(name, "duplicate name (kept the first)")
            continue
        seen.add(name)
        if _is_metadata(name):
            plan.skip(name, "hidden or metadata file")
            continue
        suffix = posixpath.splitext(name)[1].lower()
        if suffix not in IMAGE_SUFFIXES:
            plan.skip(name, f"not an image file name ({suffix or 'no extension'})")
            continue
        if entry.encrypted:
            plan.skip(name, "encrypted entry")
            continue
        if entry.size <= 0:
            plan.skip(name, "empty file")
            continue
        if entry.size > limits.max_entry_bytes:
            plan.skip(name, f"{entry.size:,} bytes, over the {limits.max_entry_bytes:,}-byte entry limit")
            continue
        if entry.compressed is not None and entry.size > _RATIO_FLOOR:
            ratio = entry.size / max(entry.compressed, 1)
            if ratio > limits.max_ratio:
                plan.skip(
                    name, f"compression ratio {ratio:,.0f}:1 over {limits.max_ratio:g}:1 (possible zip bomb)"
                )
                continue
        if declared_total + entry.size > limits.max_total_bytes:
            plan.skip(name, f"total size limit of {limits.max_total_bytes:,} bytes reached")
            continue
        declared_total += entry.size
        entry.name = name
        plan.accepted.append(entry)
    error = getattr(source, "error", None)
    if error:
        plan.skip(label, error)
    return plan


# --------------------------------------------------------------------------------------------------------
# Import
# --------------------------------------------------------------------------------------------------------


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _prepare_dst(dst: Path, *, overwrite: bool) -> Path:
    if dst.is_symlink() and not dst.is_dir():
        raise InputError(f"destination {dst} is a broken symbolic link")
    if dst.exists() and not dst.is_dir():
        raise InputError(f"destination {dst} is a file; choose a folder")
    images = dst / "images"
    meta = dst / "dataset.json"
    if images.is_symlink() or meta.is_symlink():
        raise InputError(f"destination {dst} contains symbolic links named images/dataset.json; refusing")
    if images.exists() or meta.exists():
        if not overwrite:
            raise InputError(
                f"destination {dst} already holds a dataset; use --overwrite (overwrite=True) to replace it"
            )
        if images.exists():
            shutil.rmtree(images)
        meta.unlink(missing_ok=True)
    images.mkdir(parents=True)
    return images


def _check_resolution(resolution: int) -> None:
    if not isinstance(resolution, int) or resolution < 4 or resolution > 4096:
        raise InputError(f"resolution must be an integer from 4 to 4096, got {resolution!r}")
    if resolution & (resolution - 1):
        raise InputError(f"resolution must be a power of two (StyleGAN grows by 2x), got {resolution}")


def import_dataset(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    resolution: int = 128,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_aspect: float = DEFAULT_MAX_ASPECT,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> dict[str, Any]:
    """Import a folder or archive of images as a square, fixed-resolution PNG dataset.

    Writes ``dst/images/00000000.png ...`` (numbered in sorted order of the source names) and
    ``dst/dataset.json`` (``{"labels": null, "source", "resolution", "count"}``). Nothing is written
    outside ``dst``; archives are read entry by entry into memory, never extracted.

    Args:
        src: a folder, a ``.zip``, or a ``.tar``/``.tar.gz``/``.tgz``/``.tar.bz2``/``.tar.xz`` file.
        dst: output folder (created if missing). Must not already hold a dataset unless ``overwrite``.
        resolution: output side in pixels, a power of two from 4 to 4096. Images are centre-cropped to a
            square and resized with Lanczos filtering.
        max_entries: entry-count limit: a zip declaring more is refused outright (before its directory is
            parsed); from a folder or tar only the first ``max_entries`` are read and the report says so.
        max_total_bytes: stop accepting entries once this many uncompressed bytes were planned or read.
            A tar stream is scanned at most ``max_total_bytes + 2 * max_entry_bytes`` far.
        max_entry_bytes: skip entries larger than this (declared or actually read).
        max_ratio: skip zip entries above 1 MiB whose uncompressed/compressed ratio exceeds this.
        max_pixels: per-image pixel limit (decompression bombs), see :func:`core.images.load_image`.
        max_aspect: per-image long/short side limit.
        overwrite: replace ``dst/images`` and ``dst/dataset.json`` if they exist (nothing else is touched).
        progress: called as ``progress(done, total)`` after each candidate image.
        should_stop: polled before each image; returning True ends the import early (the images written
            so far still form a valid dataset).

    Returns:
        The report: ``{"imported": int, "skipped": [{"name": str, "reason": str}, ...],
        "resolution": int, "output": str, "stopped": bool}``.

    Raises:
        InputError: ``src`` is missing, not a folder/zip/tar, or a zip with too many entries; ``dst`` is a
            file or already holds a dataset; or ``resolution`` is invalid.
        OSError: writing under ``dst`` failed (e.g. disk full).
    """
    _check_resolution(resolution)
    src_path, dst_path = Path(src), Path(dst)
    limits = _Limits(max_entries, max_entry_bytes, max_total_bytes, max_ratio)
    source = _open_source(src_path, exclude=dst_path.resolve(), limits=limits)
    try:
        images_dir = _prepare_dst(dst_path, overwrite=overwrite)
        plan = _plan(source, limits, label=src_path.name)
        # Number by sorted name (deterministic output), but read in archive order so compressed tar
        # streams only ever seek forward.
        ranked = sorted(plan.accepted, key=lambda e: e.name)
        index = {id(e): i for i, e in enumerate(ranked)}
        written: list[int] = []
        read_total = 0
        stopped = False
        for done, entry in enumerate(sorted(plan.accepted, key=lambda e: (e.order, e.name)), start=1):
            if should_stop is not None and should_stop():
                stopped = True
                break
            budget = min(max_entry_bytes, max_total_bytes - read_total)
            reason, nbytes = _import_one(
                source,
                entry,
                images_dir / f"{index[id(entry)]:08d}.png",
                budget=budget,
                resolution=resolution,
                max_pixels=max_pixels,
                max_aspect=max_aspect,
            )
            read_total += nbytes
            if reason is None:
                written.append(index[id(entry)])
            else:
                plan.skip(entry.name, reason)
            if progress is not None:
                progress(done, len(ranked))
    finally:
        source.close()
    # Close the gaps left by skipped entries: the k-th surviving file (in name order) becomes k.png.
    # Targets are always free: survivor k sits at index >= k and survivors below it already moved.
    for k, i in enumerate(sorted(written)):
        if k != i:
            os.replace(images_dir / f"{i:08d}.png", images_dir / f"{k:08d}.png")
    _write_json_atomic(
        dst_path / "dataset.json",
        {"labels": None, "source": src_path.name, "resolution": resolution, "count": len(written)},
    )
    return {
        "imported": len(written),
        "skipped": sorted(plan.skipped, key=lambda s: s["name"]),
        "resolution": resolution,
        "output": str(dst_path),
        "stopped": stopped,
    }


def _import_one(
    source: _FolderSource | _ZipSource | _TarSource,
    entry: _Entry,
    out: Path,
    *,
    budget: int,
    resolution: int,
    max_pixels: int,
    max_aspect: float,
) -> tuple[str | None, int]:
    """Read, decode, crop and write one entry.

    Returns:
        ``(skip reason or None on success, bytes actually read)``.
    """
    if budget <= 0:
        return "total size limit reached", 0
    try:
        data = source.read(entry, budget)
    except InputError as e:
        return str(e), 0
    except Exception as e:
        # Damaged archives fail in many ways (BadZipFile on CRC mismatch, zlib/lzma errors, tar
        # ReadError, NotImplementedError for exotic zip methods); each only costs this one entry.
        return f"unreadable entry ({type(e).__name__}: {e})", 0
    if len(data) > budget:
        # The header under-declared the size (or the file grew): refuse rather than read on.
        return f"more data than the {budget:,}-byte limit", len(data)
    try:
        image = load_image(
            data,
            name=entry.name,
            max_pixels=max_pixels,
            max_side=DEFAULT_MAX_SIDE,
            max_aspect=max_aspect,
            max_bytes=budget,
        )
        image = square_crop(image, size=resolution)
    except InputError as e:
        return str(e).removeprefix(f"{entry.name}: "), len(data)
    except (ValueError, MemoryError) as e:
        return f"could not process image ({type(e).__name__}: {e})", len(data)
    save_png(image, out)
    return None, len(data)


# --------------------------------------------------------------------------------------------------------
# Reading datasets back
# --------------------------------------------------------------------------------------------------------


def _dataset_root(path: Path) -> Path:
    """A folder written by import_dataset keeps its images in ``images/``; accept either level."""
    if path.is_dir() and (path / "dataset.json").is_file() and (path / "images").is_dir():
        return path / "images"
    return path


def _folder_images(root: Path) -> list[tuple[str, Path, int]]:
    found = []
    for entry in _FolderSource(root, exclude=None).entries():
        name, reason = _safe_name(entry.name)
        if entry.kind != "file" or reason is not None or name is None or _is_metadata(name):
            continue
        if posixpath.splitext(name)[1].lower() in IMAGE_SUFFIXES:
            found.append((name, entry.handle, entry.size))
    return sorted(found)


def _zip_images(zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    found = {}
    for info in zf.infolist():
        name, reason = _safe_name(info.filename)
        mode = info.external_attr >> 16
        is_link = info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG)
        if info.is_dir() or is_link or reason is not None or name is None or _is_metadata(name):
            continue
        if posixpath.splitext(name)[1].lower() in IMAGE_SUFFIXES:
            found.setdefault(name, info)
    return [found[n] for n in sorted(found)]


class ImageFolderDataset(Dataset):
    """Images of a folder or zip as core tensors, for training.

    Reads ``DST`` of :func:`import_dataset` (its ``images/``), or any folder or ``.zip`` of PNG/JPEG/...
    files (recursively, sorted by name; links and hidden files ignored). Every item is a float32
    ``[3, R, R]`` tensor in ``[-1, 1]``; images of another size are centre-cropped and resized to ``R``.

    With ``xflip=True`` the dataset is twice as long: index ``i + len(images)`` is image ``i`` mirrored
    left-right (NVIDIA's deterministic x-flip augmentation).

    Args:
        path: folder or ``.zip`` file.
        resolution: output side ``R``. Default: ``resolution`` from ``dataset.json``, else the shorter
            side of the first image.
        xflip: append mirrored copies.

    Raises:
        InputError: ``path`` is missing, not a folder/zip, or holds no images.
    """

    def __init__(
        self, path: str | os.PathLike, *, resolution: int | None = None, xflip: bool = False
    ) -> None:
        self.path = Path(path)
        self.xflip = xflip
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        if self.path.is_dir():
            self._root = _dataset_root(self.path)
            listing = _folder_images(self._root)
            self.names = [n for n, _, _ in listing]
            self._files: list[Any] = [p for _, p, _ in listing]
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            infos = _zip_images(self._get_zip())
            self.names = [i.filename for i in infos]
            self._files = infos
        else:
            raise InputError(f"dataset {self.path} is not a folder or .zip file")
        if not self.names:
            raise InputError(f"dataset {self.path} contains no images")
        if resolution is None:
            resolution = self._meta_resolution()
        if resolution is None:
            resolution = min(self._load(0).size)
        if resolution <= 0:
            raise InputError(f"resolution must be positive, got {resolution}")
        self.resolution = int(resolution)

    # NVIDIA-style attributes the training loop reads.
    num_channels = 3
    label_dim = 0
    has_labels = False

    @property
    def image_shape(self) -> list[int]:
        """``[3, R, R]``."""
        return [3, self.resolution, self.resolution]

    def __len__(self) -> int:
        return len(self.names) * (2 if self.xflip else 1)

    def __getitem__(self, index: int) -> torch.Tensor:
        """Return image ``index`` as float32 ``[3, R, R]`` in ``[-1, 1]``.

        Raises:
            IndexError: ``index`` out of range.
            InputError: the file is not a usable image (anymore).
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index %= len(self)
        flip = index >= len(self.names)
        image = square_crop(self._load(index % len(self.names)), size=self.resolution)
        tensor = from_pil(image)[0]
        return tensor.flip(-1) if flip else tensor

    def _meta_resolution(self) -> int | None:
        meta = self.path / "dataset.json"
        if not meta.is_file():
            return None
        try:
            value = json.loads(meta.read_text(encoding="utf-8")).get("resolution")
        except (OSError, ValueError, AttributeError):
            return None
        return value if isinstance(value, int) and value > 0 else None

    def _get_zip(self) -> zipfile.ZipFile:
        # One handle per process: DataLoader workers fork, and a shared file offset would corrupt reads.
        if self._zip is None or self._zip_pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as e:
                raise InputError(f"{self.path.name}: not a readable zip archive ({e})") from None
            self._zip_pid = os.getpid()
        return self._zip

    def _load(self, i: int) -> Image.Image:
        handle = self._files[i]
        if isinstance(handle, zipfile.ZipInfo):
            if handle.file_size > DEFAULT_MAX_ENTRY_BYTES:
                raise InputError(f"{handle.filename}: entry larger than {DEFAULT_MAX_ENTRY_BYTES:,} bytes")
            with self._get_zip().open(handle) as f:
                return load_image(f, name=self.names[i])
        return load_image(handle, name=self.names[i])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_zip"] = None
        state["_zip_pid"] = None
        return state

    def close(self) -> None:
        """Close the zip handle, if any."""
        if self._zip is not None:
            self._zip.close()
            self._zip = None


def dataset_fingerprint(path: str | os.PathLike) -> str:
    """A cheap identity for a dataset: sha256 over image names and sizes (plus CRCs for zips).

    Changes when images are added, removed, renamed or resized, or when ``dataset.json`` changes; does
    not read pixel data, so it is fast for large datasets.

    Args:
        path: folder (an import_dataset ``DST`` or any image folder) or ``.zip``.

    Returns:
        Hex sha256 digest.

    Raises:
        InputError: ``path`` is not a folder or zip file.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        digest.update(b"folder\n")
        for name, _, size in _folder_images(_dataset_root(path)):
            digest.update(f"{name}\t{size}\n".encode())
        meta = path / "dataset.json"
        if meta.is_file() and not meta.is_symlink():
            digest.update(b"dataset.json\n" + hashlib.sha256(meta.read_bytes()).digest())
    elif path.is_file() and zipfile.is_zipfile(path):
        digest.update(b"zip\n")
        with zipfile.ZipFile(path) as zf:
            for info in _zip_images(zf):
                digest.update(f"{info.filename}\t{info.file_size}\t{info.CRC:08x}\n".encode())
    else:
        raise InputError(f"dataset {path} is not a folder or .zip file")
    return digest.hexdigest()
