"""Image-to-image translation (StarGAN v2, Choi et al. CVPR 2020): reference- and latent-guided synthesis."""

from core.translation.stargan import (
    average_style,
    latent_style,
    load_translation_image,
    reference_style,
    translate_latent,
    translate_reference,
)

__all__ = [
    "average_style",
    "latent_style",
    "load_translation_image",
    "reference_style",
    "translate_latent",
    "translate_reference",
]
