"""StarGAN v2 translation (Choi et al., CVPR 2020, Sec. 3.1 and the official ``translate_using_*`` utilities).

* Reference-guided: ``s = E_y(x_ref)``, ``x_fake = G(x_src, s)``.
* Latent-guided: ``s = F_y(z)`` with ``z ~ N(0, I)``, ``x_fake = G(x_src, s)``.
* Truncation (official ``translate_using_latent`` with ``psi``): ``s_avg = mean_j F_y(z_j)`` over many seeded
  latents, ``s = lerp(s_avg, s, psi)``; ``psi = 1`` is no truncation, ``psi = 0`` the domain's average style.

Images are core images: float32 ``[N,3,H,W]`` in [-1, 1]; outputs are not clamped (StarGAN v2 outputs may
overshoot; :func:`core.images.to_pil` clamps when converting). Models with ``w_hpf > 0`` (CelebA-HQ) need
face-landmark masks from the official FAN network, which StyleScope does not provide yet: they are refused
unless the caller passes ``masks``.
"""

from __future__ import annotations

import torch

from core.errors import InputError
from core.images import from_pil, load_image, square_crop
from core.models.stargan_v2 import StarGANv2

DEFAULT_NUM_AVG = 10_000
DEFAULT_AVG_SEED = 0


def _images(bundle: StarGANv2, x: torch.Tensor, what: str) -> torch.Tensor:
    size = bundle.config.img_size
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"{what} must be images [N,3,{size},{size}], got {shape}")
    if tuple(x.shape[2:]) != (size, size):
        raise InputError(f"{what} is {x.shape[3]}x{x.shape[2]} px but this model works at {size}x{size}")
    return x.to(bundle.device, torch.float32)


def _domains(bundle: StarGANv2, y, n: int) -> torch.Tensor:
    k = bundle.config.num_domains
    y = torch.as_tensor(y, dtype=torch.long).reshape(-1)
    if y.numel() == 1:
        y = y.expand(n)
    if y.numel() != n:
        raise InputError(f"got {y.numel()} target domains for {n} images")
    if y.min() < 0 or y.max() >= k:
        raise InputError(f"target domain must be in 0..{k - 1}, got {y.tolist()}")
    return y.to(bundle.device)


def _check_masks(bundle: StarGANv2, masks) -> None:
    if bundle.config.w_hpf > 0 and masks is None:
        raise InputError(
            f"this StarGAN v2 model uses face-landmark masks (w_hpf={bundle.config.w_hpf:g}, CelebA-HQ): "
            "the FAN mask network is not supported yet"
        )


def reference_style(bundle: StarGANv2, x_ref: torch.Tensor, y_trg) -> torch.Tensor:
    """Style codes ``E_y(x_ref)`` [N,style_dim] of reference images for target domains ``y_trg``.

    Raises:
        InputError: wrong image size/shape or domain out of range.
    """
    x_ref = _images(bundle, x_ref, "reference image")
    with torch.no_grad():
        return bundle.style_encoder(x_ref, _domains(bundle, y_trg, x_ref.shape[0]))


def latent_style(bundle: StarGANv2, z: torch.Tensor, y_trg) -> torch.Tensor:
    """Style codes ``F_y(z)`` [N,style_dim] of latents ``z`` [N,latent_dim]."""
    if z.ndim != 2 or z.shape[1] != bundle.config.latent_dim:
        raise InputError(f"latents must be [N,{bundle.config.latent_dim}], got {tuple(z.shape)}")
    with torch.no_grad():
        return bundle.mapping(z.to(bundle.device, torch.float32), _domains(bundle, y_trg, z.shape[0]))


def average_style(
    bundle: StarGANv2,
    y_trg,
    *,
    num_avg: int = DEFAULT_NUM_AVG,
    seed: int = DEFAULT_AVG_SEED,
    z_many: torch.Tensor | None = None,
) -> torch.Tensor:
    """The mean style of each target domain, ``mean_j F_y(z_j)`` [N,style_dim] (the psi-truncation centre).

    Args:
        bundle: the model.
        y_trg: target domain(s), an int or a sequence/tensor.
        num_avg: number of latents averaged (ignored when ``z_many`` is given).
        seed: seed of the private generator drawing those latents (on CPU, so results match across devices).
        z_many: explicit latents [M,latent_dim] instead of drawing them.

    Returns:
        One average style per entry of ``y_trg``.
    """
    if z_many is None:
        if num_avg < 1:
            raise InputError(f"num_avg must be positive, got {num_avg}")
        gen = torch.Generator().manual_seed(int(seed))
        z_many = torch.randn(int(num_avg), bundle.config.latent_dim, generator=gen)
    y = torch.as_tensor(y_trg, dtype=torch.long).reshape(-1)
    y = _domains(bundle, y, y.numel())
    with torch.no_grad():
        # All branches share the MLP trunk: one pass gives every domain's mean.
        means = bundle.mapping.all_domains(z_many.to(bundle.device, torch.float32)).mean(dim=0)
    return means[y]


def translate_reference(
    bundle: StarGANv2, x_src: torch.Tensor, x_ref: torch.Tensor, y_trg, *, masks=None
) -> torch.Tensor:
    """Reference-guided synthesis: ``G(x_src, E_y(x_ref))``.

    Args:
        bundle: a loaded model (:func:`core.checkpoints.stargan_v2.load_stargan_v2`).
        x_src: source images [N,3,S,S] in [-1,1] (S = ``config.img_size``).
        x_ref: reference images [N,3,S,S] (or [1,...], used for every source).
        y_trg: target domain of each reference (int or N ints).
        masks: FAN masks ``(mask1, mask2)`` for ``w_hpf > 0`` models.

    Returns:
        Translated images [N,3,S,S] (not clamped).

    Raises:
        InputError: wrong sizes, domain out of range, or a w_hpf > 0 model without masks.
    """
    _check_masks(bundle, masks)
    x_src = _images(bundle, x_src, "source image")
    x_ref = _images(bundle, x_ref, "reference image")
    if x_ref.shape[0] == 1 and x_src.shape[0] > 1:
        x_ref = x_ref.expand(x_src.shape[0], -1, -1, -1)
    if x_ref.shape[0] != x_src.shape[0]:
        raise InputError(f"got {x_ref.shape[0]} reference images for {x_src.shape[0]} source images")
    s = reference_style(bundle, x_ref, y_trg)
    with torch.no_grad():
        return bundle.generator(x_src, s, masks=masks)


def translate_latent(
    bundle: StarGANv2,
    x_src: torch.Tensor,
    y_trg,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    z: torch.Tensor | None = None,
    psi: float = 1.0,
    num_avg: int = DEFAULT_NUM_AVG,
    avg_seed: int = DEFAULT_AVG_SEED,
    z_many: torch.Tensor | None = None,
    masks=None,
) -> torch.Tensor:
    """Latent-guided synthesis: ``G(x_src, lerp(s_avg, F_y(z), psi))``.

    Args:
        bundle: a loaded model.
        x_src: source images [N,3,S,S] in [-1,1].
        y_trg: target domain(s).
        seed: draw ``z`` [N,latent_dim] from ``torch.Generator().manual_seed(seed)`` (CPU, device-independent).
        generator: or draw ``z`` from this CPU generator.
        z: or use these latents [N,latent_dim].
        psi: truncation; 1 = off (``s_avg`` is then not computed).
        num_avg, avg_seed, z_many: how ``s_avg`` is estimated (see :func:`average_style`).
        masks: FAN masks for ``w_hpf > 0`` models.

    Returns:
        Translated images [N,3,S,S] (not clamped).

    Raises:
        InputError: none or several of seed/generator/z, wrong sizes, domain out of range, masks needed.
    """
    _check_masks(bundle, masks)
    x_src = _images(bundle, x_src, "source image")
    n = x_src.shape[0]
    if sum(v is not None for v in (seed, generator, z)) != 1:
        raise InputError("give exactly one of seed=, generator= or z= for latent-guided translation")
    if z is None:
        gen = generator if generator is not None else torch.Generator().manual_seed(int(seed))
        z = torch.randn(n, bundle.config.latent_dim, generator=gen, device=gen.device)
    if z.shape[0] != n:
        raise InputError(f"got {z.shape[0]} latents for {n} source images")
    y = _domains(bundle, y_trg, n)
    s = latent_style(bundle, z, y)
    if float(psi) != 1.0:
        s_avg = average_style(bundle, y, num_avg=num_avg, seed=avg_seed, z_many=z_many)
        s = torch.lerp(s_avg, s, float(psi))
    with torch.no_grad():
        return bundle.generator(x_src, s, masks=masks)


def load_translation_image(source, bundle: StarGANv2, *, name: str | None = None) -> torch.Tensor:
    """Load an untrusted image file/bytes, centre-crop it to the model size: [1,3,S,S] in [-1,1].

    Raises:
        InputError: unreadable or unsupported image (see :func:`core.images.load_image`).
    """
    image = square_crop(load_image(source, name=name), size=bundle.config.img_size)
    return from_pil(image)
