"""GAN inversion: find latents whose image matches a given picture (StyleGAN2 projector, Karras et al. 2020)."""

from core.inversion.losses import make_loss, psnr, pyramid_loss
from core.inversion.project import (
    SPACES,
    ProjectionResult,
    latent_spec,
    noise_regularization,
    project,
    resize_target,
    save_latents,
)

__all__ = [
    "SPACES",
    "ProjectionResult",
    "latent_spec",
    "make_loss",
    "noise_regularization",
    "project",
    "psnr",
    "pyramid_loss",
    "resize_target",
    "save_latents",
]
