"""Discriminator augmentation for small datasets: ADA and DiffAugment, pure PyTorch, on the device.

ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data", sec. 2-3): every
image D sees, real or fake, goes through the same differentiable pipeline in which each transform is applied
with probability ``p``. ``p`` adapts to the overfitting heuristic ``r_t = E[sign(D(x_real))]`` (eq. 1): every
4 minibatches ``p += sign(r_t - target) * (batch * interval) / (ada_kimg * 1000)``, target 0.6, so ``p`` can
go from 0 to 1 in ``ada_kimg`` = 500 kimg. Our pipeline is a compact version of the paper's "bgc" set:
x-flip, integer translation (1/8 of the image), isotropic scale (lognormal, std 0.2 log2), rotation
(uniform), brightness (N(0, 0.2)), contrast (lognormal, 0.5 log2), saturation (lognormal, 1 log2), and
cutout (a square of half the image side, as in the paper's "cutout" ablation).

Geometric transforms are composed into one affine map per sample and applied by a gather-based bilinear
sampler (reflection padding) instead of ``F.grid_sample``, whose backward is not differentiable again: R1
back-propagates through the augmentation (gradient w.r.t. the un-augmented reals, then through that
gradient), which needs second derivatives. Coordinates are in centred pixel units, so identity, flips and
integer translations sample pixel centres exactly (p = 0 leaves images bit-identical). The augmentations run
with autocast off (the trainer calls them inside bf16 autocast): transform matrices and coordinates stay float32
and pixel indices int64, since bf16's 8 significant bits cannot address the pixels of a 64 px image.

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): the fixed
"color,translation,cutout" policy applied to every image with probability 1.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

_Fn = TypeVar("_Fn", bound=Callable[..., Tensor])

LOG2 = math.log(2.0)


def _rand(n: int, device, generator) -> Tensor:
    return torch.rand(n, device=device, generator=generator)


def _randn(n: int, device, generator) -> Tensor:
    return torch.randn(n, device=device, generator=generator)


def _without_autocast(fn: _Fn) -> _Fn:
    """Run ``fn(images, ...)`` with autocast off on the images' device (exact coordinates, see the module doc)."""

    @functools.wraps(fn)
    def wrapper(images: Tensor, *args, **kwargs) -> Tensor:
        with torch.autocast(images.device.type, enabled=False):
            return fn(images, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@_without_autocast
def sample_affine(images: Tensor, matrix: Tensor, *, padding: str = "reflect") -> Tensor:
    """Bilinear resampling ``out[y, x] = in[M @ (x, y, 1)]`` in centred pixel units, twice differentiable.

    Args:
        images: ``[N, C, H, W]``.
        matrix: ``[N, 3, 3]`` output -> input coordinate map (pixel units, origin at the image centre).
        padding: ``"reflect"`` (mirror at the borders) or ``"zeros"``.
    """
    n, c, h, w = images.shape
    dev, matrix = images.device, matrix.float()
    xs = torch.arange(w, device=dev, dtype=torch.float32) + 0.5 - w / 2
    ys = torch.arange(h, device=dev, dtype=torch.float32) + 0.5 - h / 2
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    coords = torch.stack([gx.reshape(-1), gy.reshape(-1), torch.ones_like(gx).reshape(-1)])  # [3, HW]
    src = matrix[:, :2] @ coords  # [N, 2, HW]
    ix = src[:, 0] + w / 2 - 0.5
    iy = src[:, 1] + h / 2 - 0.5
    if padding == "reflect":
        ix, iy = _reflect(ix, w), _reflect(iy, h)
    x0f, y0f = ix.floor(), iy.floor()
    fx, fy = ix - x0f, iy - y0f
    x0, y0 = x0f.long(), y0f.long()
    flat = images.reshape(n, c, h * w)
    out = 0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            valid = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
            idx = yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)  # [N, HW], int64: always a valid pixel
            weight = (wx * wy * valid).to(images.dtype)
            out = out + flat.gather(2, idx[:, None, :].expand(n, c, -1)) * weight[:, None, :]
    return out.reshape(n, c, h, w)


def _reflect(i: Tensor, size: int) -> Tensor:
    # Mirror about the outer pixel edges (-0.5 and size-0.5), then clamp for the bilinear neighbours.
    t = torch.remainder(i + 0.5, 2 * size)
    t = torch.where(t > size, 2 * size - t, t)
    return (t - 0.5).clamp(0, size - 1)


@_without_autocast
def ada_augment(
    images: Tensor,
    p: Tensor | float,
    *,
    generator: torch.Generator | None = None,
    xflip: bool = True,
    translate: bool = True,
    scale: bool = True,
    rotate: bool = True,
    color: bool = True,
    cutout: bool = True,
) -> Tensor:
    """Apply the ADA pipeline with per-sample, per-transform probability ``p`` (a 0-d tensor: no host sync).

    Args:
        images: ``[N, 3, H, W]`` in ``[-1, 1]``.
        p: augmentation probability (tensor on the same device, or a float).
        generator: RNG on the images' device.
        xflip, translate, scale, rotate, color, cutout: switch groups of transforms off.

    Returns:
        Augmented images, differentiable w.r.t. ``images`` (twice).
    """
    n, c, h, w = images.shape
    dev = images.device
    p = torch.as_tensor(p, device=dev, dtype=torch.float32)

    def chance() -> Tensor:
        return (_rand(n, dev, generator) < p).float()

    eye = torch.eye(3, device=dev).expand(n, 3, 3)
    m = eye
    if xflip:
        s = 1 - 2 * chance() * (_rand(n, dev, generator) < 0.5).float()
        m = m @ _diag(s, torch.ones_like(s))
    if translate:
        on = chance()
        tx = torch.round((_rand(n, dev, generator) * 2 - 1) * 0.125 * w) * on
        ty = torch.round((_rand(n, dev, generator) * 2 - 1) * 0.125 * h) * on
        m = m @ _translation(tx, ty)
    if scale:
        sc = torch.exp2(_randn(n, dev, generator) * 0.2 * chance())
        m = m @ _diag(sc, sc)
    if rotate:
        theta = (_rand(n, dev, generator) * 2 - 1) * math.pi * chance()
        m = m @ _rotation(theta)
    if xflip or translate or scale or rotate:
        images = sample_affine(images, m, padding="reflect")

    if color:
        cm = torch.eye(4, device=dev).repeat(n, 1, 1)
        b = _randn(n, dev, generator) * 0.2 * chance()
        cm = _color_translate(b) @ cm
        con = torch.exp2(_randn(n, dev, generator) * 0.5 * chance())
        cm = _diag4(con) @ cm
        v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=dev) / math.sqrt(3)
        vv = torch.outer(v, v)
        sat = torch.exp2(_randn(n, dev, generator) * 1.0 * chance())
        sat_m = vv + (torch.eye(4, device=dev) - vv) * sat[:, None, None]
        sat_m[:, 3, 3] = 1.0
        cm = sat_m @ cm
        flat = images.reshape(n, c, h * w)
        images = (cm[:, :3, :3].to(images.dtype) @ flat + cm[:, :3, 3:].to(images.dtype)).reshape(n, c, h, w)

    if cutout:
        on = chance()
        cx, cy = _rand(n, dev, generator), _rand(n, dev, generator)
        gx = (torch.arange(w, device=dev) + 0.5) / w
        gy = (torch.arange(h, device=dev) + 0.5) / h
        outside = ((gx[None, None, :] - cx[:, None, None]).abs() >= 0.25) | (
            (gy[None, :, None] - cy[:, None, None]).abs() >= 0.25
        )
        keep = 1 - on[:, None, None] * (~outside).float()
        images = images * keep[:, None].to(images.dtype)
    return images


def _diag(sx: Tensor, sy: Tensor) -> Tensor:
    m = torch.zeros(sx.shape[0], 3, 3, device=sx.device)
    m[:, 0, 0], m[:, 1, 1], m[:, 2, 2] = sx, sy, 1
    return m


def _diag4(s: Tensor) -> Tensor:
    m = torch.zeros(s.shape[0], 4, 4, device=s.device)
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = s
    m[:, 3, 3] = 1
    return m


def _translation(tx: Tensor, ty: Tensor) -> Tensor:
    m = torch.eye(3, device=tx.device).repeat(tx.shape[0], 1, 1)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _color_translate(b: Tensor) -> Tensor:
    m = torch.eye(4, device=b.device).repeat(b.shape[0], 1, 1)
    m[:, 0, 3] = m[:, 1, 3] = m[:, 2, 3] = b
    return m


def _rotation(theta: Tensor) -> Tensor:
    m = torch.eye(3, device=theta.device).repeat(theta.shape[0], 1, 1)
    cos, sin = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = cos, -sin, sin, cos
    return m


@_without_autocast
def diff_augment(images: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """DiffAugment "color,translation,cutout" (always on), as in Zhao et al. 2020's reference policy."""
    n, c, h, w = images.shape
    dev = images.device
    x = images
    # color: brightness, saturation, contrast (DiffAugment's rand_brightness/saturation/contrast)
    x = x + (_rand(n, dev, generator) - 0.5).view(n, 1, 1, 1).to(x.dtype)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(n, dev, generator) * 2).view(n, 1, 1, 1).to(x.dtype) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - mean) * (_rand(n, dev, generator) + 0.5).view(n, 1, 1, 1).to(x.dtype) + mean
    # translation: integer shift up to 1/8 of the side, zero padding
    tx = torch.round((_rand(n, dev, generator) * 2 - 1) * 0.125 * w)
    ty = torch.round((_rand(n, dev, generator) * 2 - 1) * 0.125 * h)
    x = sample_affine(x, _translation(tx, ty), padding="zeros")
    # cutout: a zeroed square of half the side
    cx, cy = _rand(n, dev, generator), _rand(n, dev, generator)
    gx = (torch.arange(w, device=dev) + 0.5) / w
    gy = (torch.arange(h, device=dev) + 0.5) / h
    inside = ((gx[None, None, :] - cx[:, None, None]).abs() < 0.25) & (
        (gy[None, :, None] - cy[:, None, None]).abs() < 0.25
    )
    return x * (~inside)[:, None].to(x.dtype)


class AdaController:
    """Holds ``p`` as a device tensor and updates it from accumulated ``sign(D(real))`` without host syncs.

    Args:
        target: desired ``r_t`` (0.6).
        ada_kimg: images (thousands) for p to move by 1.
        interval: minibatches between updates (4).
        batch: global batch size.
        p: initial probability.
        device: where ``p`` and the statistics live.
    """

    def __init__(
        self, *, target: float, ada_kimg: float, interval: int, batch: int, p: float, device
    ) -> None:
        self.target, self.ada_kimg, self.interval, self.batch = target, ada_kimg, interval, batch
        self.p = torch.tensor(float(p), device=device)
        self.sign_sum = torch.zeros((), device=device)
        self.count = torch.zeros((), device=device)
        self.last_rt = torch.zeros((), device=device)

    def accumulate(self, real_logits: Tensor) -> None:
        self.sign_sum += torch.sign(real_logits.detach().float()).sum()
        self.count += real_logits.shape[0]

    def update(self, all_reduce=None) -> None:
        """Adjust p from the statistics since the last update (``all_reduce`` sums them across ranks)."""
        stats = torch.stack([self.sign_sum, self.count])
        if all_reduce is not None:
            all_reduce(stats)
        rt = stats[0] / stats[1].clamp(min=1)
        step = self.batch * self.interval / (self.ada_kimg * 1000)
        self.p.copy_((self.p + torch.sign(rt - self.target) * step).clamp(0.0, 1.0))
        self.last_rt.copy_(rt)
        self.sign_sum.zero_()
        self.count.zero_()
