"""Encoder-based inversion: one forward pass of a pSp encoder from an image to W+ (and back through G).

Richardson et al. 2021, "Encoding in Style" (CVPR), Eq. 1: ``pSp(x) = G(E(x) + w_avg)``; Sec. 4.2 style mixing
replaces (``alpha=None``) or blends (``w = alpha * w_inject + (1 - alpha) * w``) chosen W+ rows with another
latent's. This module reproduces the official ``pSp.forward`` (``eladrich/pixel2style2pixel`` @ 5cfff38) with
``randomize_noise=False``, i.e. the decoder's stored noise buffers (our ``noise_mode="const"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from core.errors import InputError

ENCODER_INPUT = 256  # pSp encoders see 256x256 RGB, whatever the decoder's resolution
FACE_POOL = 256  # the official face_pool (AdaptiveAvgPool2d((256, 256))) output size


def prepare_image(image: Image.Image, *, size: int = ENCODER_INPUT) -> Tensor:
    """A PIL image -> encoder input ``[1, 3, size, size]`` in [-1, 1] (pSp's Resize, ToTensor, Normalize(0.5)).

    The image is converted to RGB and resized (bilinear) to ``size x size``; non-square images are squashed,
    as the official ``transforms.Resize((256, 256))`` does; crop faces beforehand.

    Raises:
        InputError: ``image`` is not a PIL image.
    """
    if not isinstance(image, Image.Image):
        raise InputError(f"expected a PIL image, got {type(image).__name__}")
    img = image.convert("RGB").resize((size, size), Image.BILINEAR)
    x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3)
    return (x.permute(2, 0, 1).float().div(255.0).sub(0.5).div(0.5))[None].contiguous()


def _check_input(encoder: nn.Module, x: Tensor) -> None:
    nc = encoder.cfg.input_nc
    if not isinstance(x, Tensor) or x.ndim != 4 or x.shape[1] != nc:
        shape = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise InputError(f"encoder input must be [N, {nc}, H, W] in [-1, 1], got {shape}")


def encode(
    encoder: nn.Module, image: Tensor, *, latent_avg: Tensor | None, start_from_latent_avg: bool = True
) -> Tensor:
    """Encode images to W+ codes: ``E(x) (+ latent_avg)``.

    Args:
        encoder: a :class:`core.models.psp.PSPEncoder` (use ``eval()`` mode: BatchNorm running statistics).
        image: ``[N, input_nc, 256, 256]`` in [-1, 1] (see :func:`prepare_image`).
        latent_avg: ``[n_styles, style_dim]`` (or ``[style_dim]``) average added when ``start_from_latent_avg``.
        start_from_latent_avg: add ``latent_avg`` (the pSp default for FFHQ encoders).

    Returns:
        ws ``[N, n_styles, style_dim]`` (a W encoder's single code is broadcast to every row).

    Raises:
        InputError: wrong input shape, or ``start_from_latent_avg`` without a ``latent_avg``.
    """
    _check_input(encoder, image)
    codes = encoder(image)
    cfg = encoder.cfg
    if codes.ndim == 2:  # BackboneEncoderUsingLastLayerIntoW: one w, broadcast (decoder input_is_latent)
        codes = codes[:, None, :].expand(-1, cfg.n_styles, -1)
    if start_from_latent_avg:
        if latent_avg is None:
            raise InputError("start_from_latent_avg=True needs a latent_avg (this checkpoint has none)")
        codes = codes + latent_avg.to(codes)
    return codes


def mix_latents(
    ws: Tensor, latent_mask: Sequence[int], inject_latent: Tensor | None, alpha: float | None = None
) -> Tensor:
    """Official pSp style mixing on W+ rows ``latent_mask``.

    ``alpha=None`` replaces the rows with ``inject_latent``'s (zeros when ``inject_latent`` is None);
    otherwise ``alpha * inject + (1 - alpha) * ws``.

    Raises:
        InputError: a row index outside ``0..n_styles-1`` or a mis-shaped ``inject_latent``.
    """
    n = ws.shape[1]
    bad = [int(i) for i in latent_mask if not 0 <= int(i) < n]
    if bad:
        raise InputError(f"latent_mask rows {bad} are outside 0..{n - 1}")
    if inject_latent is not None and (inject_latent.ndim != 3 or inject_latent.shape[1:] != ws.shape[1:]):
        raise InputError(f"inject_latent must be [N, {n}, {ws.shape[2]}], got {list(inject_latent.shape)}")
    out = ws.clone()
    for i in latent_mask:
        i = int(i)
        if inject_latent is None:
            out[:, i] = 0
        elif alpha is None:
            out[:, i] = inject_latent[:, i].to(out)
        else:
            out[:, i] = alpha * inject_latent[:, i].to(out) + (1 - alpha) * out[:, i]
    return out


def psp_forward(
    encoder: nn.Module,
    decoder: nn.Module,
    latent_avg: Tensor | None,
    x: Tensor,
    *,
    latent_mask: Sequence[int] | None = None,
    inject_latent: Tensor | None = None,
    alpha: float | None = None,
    resize: bool = False,
    start_from_latent_avg: bool = True,
    input_code: bool = False,
) -> tuple[Tensor, Tensor]:
    """The official pSp forward with ``randomize_noise=False``: reconstruction and its W+ codes.

    Args:
        encoder: :class:`core.models.psp.PSPEncoder` in eval mode.
        decoder: :class:`core.models.stylegan.Generator` (the checkpoint's decoder).
        latent_avg: ``[n_styles, style_dim]`` or None.
        x: ``[N, 3, 256, 256]`` images in [-1, 1]; with ``input_code=True``, z ``[N, z_dim]`` instead (mapped by
            the decoder and broadcast; ``latent_avg`` is not added, as in the official code).
        latent_mask: W+ rows to mix with ``inject_latent`` (see :func:`mix_latents`).
        inject_latent: ``[N, n_styles, style_dim]`` codes to mix in.
        alpha: blend weight; None replaces the masked rows.
        resize: average-pool the output to 256x256 (official ``face_pool``; upsamples smaller outputs by
            replication).
        start_from_latent_avg: add ``latent_avg`` to the codes.
        input_code: treat ``x`` as z codes.

    Returns:
        ``(img [N, 3, R, R] (or 256), ws [N, n_styles, style_dim])``; images are not clamped.

    Raises:
        InputError: bad shapes or mask rows.
    """
    if input_code:
        ws = decoder.mapping(x)
    else:
        ws = encode(encoder, x, latent_avg=latent_avg, start_from_latent_avg=start_from_latent_avg)
    if latent_mask is not None:
        ws = mix_latents(ws, latent_mask, inject_latent, alpha)
    img = decoder.synthesis(ws, noise_mode="const")
    if resize:
        img = F.adaptive_avg_pool2d(img, (FACE_POOL, FACE_POOL))
    return img, ws


@torch.no_grad()
def encode_image(
    encoder: nn.Module,
    decoder: nn.Module,
    latent_avg: Tensor | None,
    image: Image.Image,
    *,
    start_from_latent_avg: bool = True,
) -> tuple[Tensor, Tensor]:
    """Encode one PIL image: ``(reconstruction [1, 3, R, R], ws [1, n_styles, style_dim])`` on CPU.

    Raises:
        InputError: not an image.
    """
    dev = next(encoder.parameters()).device
    x = prepare_image(image).to(dev)
    img, ws = psp_forward(
        encoder,
        decoder,
        latent_avg,
        x,
        start_from_latent_avg=start_from_latent_avg and latent_avg is not None,
    )
    return img.cpu(), ws.cpu()
