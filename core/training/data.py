"""Training data sources: one abstraction, an infinite iterator of ``(images, labels)`` batches on the device.

``images`` are float32 ``[B, 3, R, R]`` in ``[-1, 1]``; ``labels`` are float32 ``[B, c_dim]`` or None.

* ``synthfaces``: rendered on the training device by :class:`core.data.synthfaces.SynthFaces` (no disk, no
  host->device copies); each rank draws disjoint, deterministic index ranges, so a resumed run continues
  the same stream.
* ``toy``: procedural coloured blobs, also on the device; for tests and throughput benchmarks.
* a folder or ``.zip``: :class:`core.data.datasets.ImageFolderDataset` behind a prefetching ``DataLoader``
  (worker processes, pinned memory, non-blocking copies), sharded across ranks by a seeded permutation.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from core.errors import InputError

Batch = tuple[Tensor, Tensor | None]


@dataclass
class DataSource:
    """An infinite batch iterator plus what the loop needs to know about the dataset.

    Attributes:
        batches: yields ``(images [B,3,R,R] in [-1,1], labels [B,c_dim] | None)`` on the device.
        label_dim: label width (0 = unlabelled).
        fingerprint: identity of the dataset, stored in checkpoints to catch a changed dataset on resume.
        description: one line for status / logs.
        length: number of distinct images (None = unbounded/procedural).
    """

    batches: Iterator[Batch]
    label_dim: int
    fingerprint: str
    description: str
    length: int | None = None

    def __iter__(self) -> Iterator[Batch]:
        return self.batches

    def __next__(self) -> Batch:
        return next(self.batches)


def toy_images(start: int, n: int, resolution: int, *, seed: int, device: torch.device | str) -> Tensor:
    """Deterministic procedural images (2 soft coloured blobs on a tinted background), index ``start..start+n``.

    Cheap enough to render at benchmark throughput on the GPU; every index is a fixed image.
    """
    gen = torch.Generator(device="cpu").manual_seed(int(seed) * 1_000_003 + int(start))
    params = torch.rand(n, 14, generator=gen).to(device)
    lin = (torch.arange(resolution, device=device, dtype=torch.float32) + 0.5) / resolution
    yy, xx = lin[:, None], lin[None, :]
    img = params[:, 0:3, None, None].expand(n, 3, resolution, resolution) * 0.6 - 0.8
    for k in range(2):
        p = params[:, 3 + 5 * k : 8 + 5 * k]
        cx, cy, rad = p[:, 0, None, None], p[:, 1, None, None], 0.1 + 0.25 * p[:, 2, None, None]
        mask = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * rad**2))  # [n, R, R]
        color = torch.stack([p[:, 3], p[:, 4], 1 - p[:, 3]], dim=1) * 2 - 1  # [n, 3]
        img = img + mask[:, None] * (color[:, :, None, None] - img)
    return img.clamp(-1, 1).contiguous()


def _rank_batches(fn, batch: int, *, rank: int, world: int, start_nimg: int) -> Iterator[Batch]:
    """Global step s covers indices ``[s*B*world + rank*B, ... + B)``: disjoint across ranks, resumable."""
    step = start_nimg // max(batch * world, 1)
    while True:
        yield fn(step * batch * world + rank * batch, batch)
        step += 1


def _synthfaces_source(res, batch, device, seed, rank, world, start_nimg, cond) -> DataSource:
    try:
        from core.data.synthfaces import RENDER_VERSION, SynthFaces
    except ImportError as e:  # pragma: no cover - depends on the other module being present
        raise InputError(f"SynthFaces is not available in this installation ({e})") from None
    ds = SynthFaces(resolution=res, seed=seed, length=None)
    label_dim = 0
    attribute_matrix = None
    if cond:
        from core.data.synthfaces_factors import attribute_matrix

        _, f = ds.batch(0, 1, device)
        label_dim = int(attribute_matrix(f).shape[1])

    def fetch(start: int, n: int) -> Batch:
        images, factors = ds.batch(start, n, device)
        labels = attribute_matrix(factors).float().to(device) if attribute_matrix is not None else None
        return images.float(), labels

    return DataSource(
        _rank_batches(fetch, batch, rank=rank, world=world, start_nimg=start_nimg),
        label_dim,
        fingerprint=f"synthfaces-r{RENDER_VERSION}:res={res}:seed={seed}",
        description=f"SynthFaces {res}px (rendered on {device})",
    )


def _toy_source(res, batch, device, seed, rank, world, start_nimg) -> DataSource:
    def fetch(start: int, n: int) -> Batch:
        return toy_images(start, n, res, seed=seed, device=device), None

    return DataSource(
        _rank_batches(fetch, batch, rank=rank, world=world, start_nimg=start_nimg),
        0,
        fingerprint=f"toy:res={res}:seed={seed}",
        description=f"toy blobs {res}px",
    )


class _ShardSampler(torch.utils.data.Sampler[int]):
    """Infinite sampler: a fresh seeded permutation per epoch, this rank's slice of it (no padding needed)."""

    def __init__(self, n: int, *, seed: int, rank: int, world: int, start_index: int) -> None:
        self.n, self.seed, self.rank, self.world, self.start = n, seed, rank, world, start_index

    def __iter__(self) -> Iterator[int]:
        # start_index counts this rank's samples already consumed, so a resumed run continues the stream.
        per_epoch = math.ceil(self.n / self.world)
        epoch, offset = divmod(self.start, per_epoch)
        while True:
            gen = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            order = torch.randperm(self.n, generator=gen)[self.rank :: self.world].tolist()
            # ranks may get one fewer index; wrap so every rank yields per_epoch items
            order = (order * 2)[:per_epoch]
            yield from order[offset:]
            offset = 0
            epoch += 1


class _LabelledFolder(torch.utils.data.Dataset):
    """ImageFolderDataset wrapped to yield ``(image, label)`` with an empty label when unlabelled."""

    def __init__(self, ds) -> None:
        self.ds = ds
        self.label_dim = int(getattr(ds, "label_dim", 0) or 0)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        item = self.ds[i]
        img, label = (item[0], item[1]) if isinstance(item, tuple) else (item, None)
        if img.dtype == torch.uint8:
            img = img.float() / 127.5 - 1
        if label is None or not self.label_dim:
            label = torch.zeros(0)
        return img, torch.as_tensor(label, dtype=torch.float32).reshape(-1)


def _folder_source(path, res, batch, device, seed, rank, world, start_nimg, num_workers, cond) -> DataSource:
    from core.data.datasets import ImageFolderDataset, dataset_fingerprint

    ds = _LabelledFolder(ImageFolderDataset(path, resolution=res, xflip=False))
    label_dim = ds.label_dim if cond else 0
    sampler = _ShardSampler(len(ds), seed=seed, rank=rank, world=world, start_index=start_nimg // world)
    on_cuda = torch.device(device).type == "cuda"
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=batch,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=on_cuda,
        drop_last=True,
        persistent_workers=num_workers > 0,
        prefetch_factor=4 if num_workers > 0 else None,
    )

    def gen() -> Iterator[Batch]:
        for img, label in loader:
            img = img.to(device, non_blocking=True)
            lab = label.to(device, non_blocking=True) if label_dim else None
            yield img, lab

    return DataSource(
        gen(),
        label_dim,
        fingerprint="folder:" + dataset_fingerprint(path),
        description=f"{Path(path).name}: {len(ds)} images at {res}px",
        length=len(ds),
    )


def make_data_source(
    spec: str,
    resolution: int,
    device: torch.device | str,
    seed: int,
    rank: int = 0,
    world: int = 1,
    *,
    batch: int,
    start_nimg: int = 0,
    num_workers: int = 4,
    cond: bool = False,
) -> DataSource:
    """Build the per-rank batch stream for ``spec``.

    Args:
        spec: ``"synthfaces"``, ``"toy"``, or a folder / ``.zip`` path.
        resolution: image side in pixels.
        device: where batches live.
        seed: dataset / shuffling seed (shared by all ranks).
        rank, world: this process's shard.
        batch: per-rank batch size.
        start_nimg: global images already consumed (resume continues the stream from there).
        num_workers: loader worker processes (folders only).
        cond: return labels when the dataset has them.

    Returns:
        A :class:`DataSource`.

    Raises:
        InputError: unknown spec, missing path, or a dataset without images.
    """
    device = torch.device(device)
    if spec == "synthfaces":
        return _synthfaces_source(resolution, batch, device, seed, rank, world, start_nimg, cond)
    if spec == "toy":
        return _toy_source(resolution, batch, device, seed, rank, world, start_nimg)
    path = Path(spec).expanduser()
    if not path.exists():
        raise InputError(f"--data {spec!r}: not 'synthfaces', 'toy', or an existing folder / .zip")
    return _folder_source(path, resolution, batch, device, seed, rank, world, start_nimg, num_workers, cond)


def fingerprint_text(text: str) -> str:
    """Short digest of a fingerprint (for status lines)."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]
