"""Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture", Sec. 4.1, Eq. 2-3).

PPL measures how much the image changes, perceptually, for a tiny step along a latent interpolation:

    l = E[ d(G(slerp(z0, z1; t)), G(slerp(z0, z1; t + eps))) / eps^2 ]     in Z (spherical interpolation)
    l = E[ d(g(lerp(w0, w1; t)), g(lerp(w0, w1; t + eps))) / eps^2 ]       in W (linear; w = f(z))

with ``eps = 1e-4`` and ``d`` the LPIPS distance (VGG16). ``t ~ U(0, 1)`` gives the "full" path length, ``t = 0``
the "end" variant (at the endpoints, where the latents are sampled from the model's distribution; StyleGAN2
reports W-end). A smooth, disentangled mapping has a short path in W, shorter than in Z (the StyleGAN paper's
argument for the mapping network). As in the reference evaluation, both images of a pair share their noise,
images wider than 256 px are area-downsampled to 256 before the distance, an optional crop keeps the central
face region of aligned portraits, and the mean is taken over the samples between the 1st and 99th percentiles.
On GPUs TF32 is switched off for the measurement (its rounding is larger than the step's effect).

LPIPS needs torchvision's VGG16 checkpoint, which is never downloaded here (see ``core.inversion.losses``); without
it the distance falls back to the mean squared difference of the images at 64 px, with a warning, and the result
names the distance it used: the two scales are not comparable with each other, only within one distance.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from core.errors import InputError, StyleScopeError

SPACES = ("w", "z")
SAMPLINGS = ("end", "full")
DISTANCES = ("auto", "lpips", "pixel")
LPIPS_SIDE = 256  # the reference evaluation compares at most 256 px images
PIXEL_SIDE = 64

DistanceFn = Callable[[Tensor, Tensor], Tensor]


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between the directions of ``a`` and ``b`` ``[N, D]`` at ``t`` ``[N]``.

    Returns unit vectors (the mapping network normalises z anyway), as in the reference PPL code.
    """
    a = F.normalize(a, dim=-1)
    b = F.normalize(b, dim=-1)
    d = (a * b).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    p = t[:, None] * torch.acos(d)
    c = F.normalize(b - d * a, dim=-1)
    return F.normalize(a * torch.cos(p) + c * torch.sin(p), dim=-1)


def face_crop(img: Tensor) -> Tensor:
    """The central face region of an aligned portrait (rows 3/8-7/8, columns 2/8-6/8), as for FFHQ."""
    c = img.shape[-1] // 8
    return img[..., 3 * c : 7 * c, 2 * c : 6 * c]


def _area(img: Tensor, side: int) -> Tensor:
    return F.interpolate(img, size=(side, side), mode="area") if img.shape[-1] > side else img


def pixel_distance(x: Tensor, y: Tensor) -> Tensor:
    """Per-sample mean squared difference of the images area-downsampled to 64 px (values in [-1, 1])."""
    return (_area(x, PIXEL_SIDE) - _area(y, PIXEL_SIDE)).square().flatten(1).mean(dim=1)


def make_distance(name: str = "auto", *, device: torch.device | str = "cpu") -> tuple[DistanceFn, str]:
    """The per-sample image distance for PPL and its name (``"lpips-vgg"`` or ``"pixel"``).

    ``"auto"`` takes LPIPS when its weights are on disk and otherwise the pixel distance, with a warning;
    ``"lpips"`` refuses to fall back.

    Raises:
        InputError: unknown name, or ``"lpips"`` without its weights.
    """
    if name not in DISTANCES:
        raise InputError(f"distance must be one of {', '.join(DISTANCES)}, got {name!r}")
    if name in ("auto", "lpips"):
        from core.inversion.losses import backbone_checkpoint, lpips_weights_present

        if lpips_weights_present("vgg"):
            import lpips

            model = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=False, verbose=False)
            model = model.to(device).eval().requires_grad_(False)

            def lpips_distance(x: Tensor, y: Tensor) -> Tensor:
                return model(_area(x, LPIPS_SIDE), _area(y, LPIPS_SIDE)).flatten()

            return lpips_distance, "lpips-vgg"
        where = (
            f"{torch.hub.get_dir()}/checkpoints" if backbone_checkpoint("vgg") is None else "lpips package"
        )
        if name == "lpips":
            raise InputError(f"LPIPS VGG16 weights not found ({where}); use distance 'pixel' or 'auto'")
        warnings.warn(
            f"LPIPS VGG16 weights not found ({where}): path length measured with the 64 px pixel distance",
            stacklevel=2,
        )
    return pixel_distance, "pixel"


@contextlib.contextmanager
def _ieee_fp32() -> Iterator[None]:
    """TF32 off for convolutions and matmuls while measuring: its ~1e-3 relative rounding would swamp the
    image change of an epsilon = 1e-4 step (PyTorch enables TF32 for cuDNN convolutions by default)."""
    conv, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, matmul


def perceptual_path_length(
    G: torch.nn.Module,
    *,
    n: int = 10_000,
    space: str = "w",
    sampling: str = "end",
    epsilon: float = 1e-4,
    distance: str | DistanceFn = "auto",
    truncation_psi: float = 1.0,
    crop: bool = False,
    batch: int = 16,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Perceptual path length of generator ``G`` (see the module docstring).

    Args:
        G: a StyleScope generator (``mapping`` / ``synthesis``); runs on its device. Conditional generators
            get one uniformly drawn class per pair.
        n: number of interpolation pairs (the papers use 100k; 10k gives about 1% standard error).
        space: ``"w"`` (lerp of mapped latents, every row the same w) or ``"z"`` (slerp before the mapping).
        sampling: ``"end"`` (t = 0) or ``"full"`` (t ~ U(0, 1)).
        epsilon: the step; distances are divided by ``epsilon ** 2``.
        distance: ``"auto"``, ``"lpips"``, ``"pixel"`` or a callable ``(x, y) -> [N]`` distances.
        truncation_psi: applied to w (1.0 = the paper's setting).
        crop: evaluate the central face region only (aligned portraits such as FFHQ or SynthFaces).
        batch: pairs per forward pass.
        seed: seeds latents and t; the same seed gives the same value.
        progress: called as ``progress(done, n)`` after each batch.
        should_stop: polled between batches; stopping returns the pairs measured so far (``"cancelled": True``).

    Returns:
        ``{"ppl", "median", "space", "sampling", "epsilon", "n", "distance", "crop", "truncation_psi", "seed",
        "cancelled"}``: ``ppl`` is the mean between the 1st and 99th percentile of the per-pair values.

    Raises:
        InputError: bad space, sampling, n, epsilon or batch.
    """
    if space not in SPACES:
        raise InputError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    if sampling not in SAMPLINGS:
        raise InputError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    if not 1 <= int(n) <= 1_000_000 or not 1 <= int(batch) <= 4096:
        raise InputError(f"n must be in 1..1000000 and batch in 1..4096, got n={n}, batch={batch}")
    if not (math.isfinite(epsilon) and 0 < epsilon <= 0.1):
        raise InputError(f"epsilon must be in (0, 0.1], got {epsilon}")
    device = G.w_avg.device
    if callable(distance):
        dist_fn, dist_name = distance, getattr(distance, "__name__", "custom")
    else:
        dist_fn, dist_name = make_distance(distance, device=device)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    values: list[Tensor] = []
    done, cancelled = 0, False
    with torch.inference_mode(), _ieee_fp32():
        while done < n:
            if should_stop is not None and should_stop():
                cancelled = True
                break
            b = min(int(batch), n - done)
            z = torch.randn(2 * b, G.z_dim, generator=gen)
            t = torch.rand(b, generator=gen) if sampling == "full" else torch.zeros(b)
            z, t = z.to(device), t.to(device)
            z0, z1 = z[:b], z[b:]
            c = None
            if c_dim:  # conditional: one random class per pair, the same at both ends of its path
                c = (
                    F.one_hot(torch.randint(c_dim, (b,), generator=gen), c_dim)
                    .float()
                    .to(device)
                    .repeat(2, 1)
                )
            if space == "z":
                zt = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
                ws = G.mapping(zt, c, truncation_psi=truncation_psi)
            else:
                w = G.mapping(z, c, truncation_psi=truncation_psi)[:, 0]  # one w per latent, every row equal
                w0, w1 = w[:b], w[b:]
                wt = torch.cat([torch.lerp(w0, w1, t[:, None]), torch.lerp(w0, w1, (t + epsilon)[:, None])])
                ws = wt[:, None].expand(-1, G.num_ws, -1)
            img = G.synthesis(ws, noise_mode="const").float()  # one noise for both images of a pair
            if crop:
                img = face_crop(img)
            d = dist_fn(img[:b], img[b:]).float().flatten() / epsilon**2
            values.append(d.cpu())
            done += b
            if progress is not None:
                progress(done, n)
    if not values:
        raise StyleScopeError("path length cancelled before any pair was measured")
    v = torch.cat(values).double().numpy()
    lo, hi = np.percentile(v, 1, method="lower"), np.percentile(v, 99, method="higher")
    kept = v[(v >= lo) & (v <= hi)]
    return {
        "ppl": float(kept.mean()),
        "median": float(np.median(v)),
        "space": space,
        "sampling": sampling,
        "epsilon": float(epsilon),
        "n": int(v.size),
        "distance": dist_name,
        "crop": bool(crop),
        "truncation_psi": float(truncation_psi),
        "seed": int(seed),
        "cancelled": cancelled,
    }


__all__ = [
    "DISTANCES",
    "SAMPLINGS",
    "SPACES",
    "face_crop",
    "make_distance",
    "perceptual_path_length",
    "pixel_distance",
    "slerp",
]
