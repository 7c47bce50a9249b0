"""Distances for GAN inversion: LPIPS when its backbone weights are on disk, else a multi-scale pixel loss.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (CVPR 2020), Sec. 5 / Appendix D:
projection minimises the LPIPS distance (Zhang et al., CVPR 2018, Eq. 1: unit-normalised VGG16 features,
weighted by learned per-channel linear layers, averaged over space and summed over layers).

The ``lpips`` package ships only its linear layers; the VGG16 backbone comes from torchvision, which would
download it at run time. We never download: LPIPS is built only when the torchvision checkpoint already sits
in the torch hub cache. Otherwise :func:`make_loss` falls back to an image-pyramid L2 + L1 distance, warns in
one line, and reports the loss it actually used (``loss_name``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from core.errors import InputError

LOSSES = ("lpips", "pixel")
# torchvision's file names for the ImageNet weights LPIPS builds on (torchvision.models.*_Weights.IMAGENET1K_V1).
BACKBONE_FILES = {"vgg": "vgg16-397923af.pth", "alex": "alexnet-owt-7be5be79.pth"}
LPIPS_MAX_SIDE = 256  # NVIDIA's projector compares at 256 px: LPIPS was calibrated on 64-256 px patches
PYRAMID_MIN_SIDE = 8

LossFn = Callable[[Tensor, Tensor], Tensor]


def backbone_checkpoint(net: str = "vgg") -> Path | None:
    """Path of the torchvision backbone checkpoint LPIPS needs, if it is already cached; never downloads."""
    name = BACKBONE_FILES.get(net)
    if name is None:
        return None
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    return path if path.is_file() else None


def lpips_weights_present(net: str = "vgg") -> bool:
    """Whether both LPIPS parts are on disk: the package's linear layers and torchvision's backbone."""
    try:
        import lpips
    except ImportError:
        return False
    linear = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
    return linear.is_file() and backbone_checkpoint(net) is not None


def pyramid_loss(x: Tensor, y: Tensor) -> Tensor:
    """Mean over pyramid levels (full size, halved, ... down to 8 px) of MSE + L1; images in [-1, 1].

    Coarse levels give the optimiser a smooth signal about layout and colour early on; the full-resolution
    level keeps detail. Returns a scalar (mean over the batch).
    """
    total, levels = x.new_zeros(()), 0
    while True:
        diff = x - y
        total = total + diff.square().mean() + diff.abs().mean()
        levels += 1
        if min(x.shape[-2:]) < 2 * PYRAMID_MIN_SIDE:
            break
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return total / levels


def _downscale(img: Tensor, max_side: int) -> Tensor:
    if img.shape[-1] <= max_side:
        return img
    return F.interpolate(img, size=(max_side, max_side), mode="area")


def make_loss(
    name: str = "lpips", *, device: torch.device | str = "cpu", net: str = "vgg"
) -> tuple[LossFn, str]:
    """Build the distance used by the projector.

    Args:
        name: ``"lpips"`` (perceptual; falls back to ``"pixel"`` with a warning when weights are missing) or
            ``"pixel"`` (image-pyramid MSE + L1).
        device: where the LPIPS network lives.
        net: LPIPS backbone, ``"vgg"`` (as in the StyleGAN2 projector) or ``"alex"``.

    Returns:
        ``(loss_fn(synth, target) -> scalar, loss_name)``; ``loss_name`` is the loss actually used:
        ``"lpips-vgg"``, ``"lpips-alex"`` or ``"pixel"``.

    Raises:
        InputError: unknown loss name.
    """
    if name not in LOSSES:
        raise InputError(f"loss must be one of {', '.join(LOSSES)}, got {name!r}")
    if name == "lpips":
        if lpips_weights_present(net):
            import lpips

            # pnet_rand=False makes torchvision load the backbone, found in the hub cache (checked above).
            model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=False, verbose=False)
            model = model.to(device).eval().requires_grad_(False)

            def lpips_loss(x: Tensor, y: Tensor) -> Tensor:
                return model(_downscale(x, LPIPS_MAX_SIDE), _downscale(y, LPIPS_MAX_SIDE)).mean()

            return lpips_loss, f"lpips-{net}"
        warnings.warn(
            f"LPIPS {net} backbone weights not found in {torch.hub.get_dir()}/checkpoints; "
            "projecting with the multi-scale pixel loss instead",
            stacklevel=2,
        )
    return pyramid_loss, "pixel"


def psnr(x: Tensor, y: Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [-1, 1] (peak-to-peak 2), over the whole batch."""
    mse = (x.detach().float() - y.detach().float()).square().mean().item()
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(4.0 / mse)).item()
