"""Model families. ``ARCHITECTURES`` maps the ``arch`` name stored in a native checkpoint to (config class,
module class): a plain dict, extended by each family that can be saved natively."""

from __future__ import annotations

from core.models.classifier import AttributeClassifier, ClassifierConfig
from core.models.stylegan import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig

ARCHITECTURES: dict[str, tuple[type, type]] = {
    "stylegan2": (GeneratorConfig, Generator),
    "stylegan1": (GeneratorConfig, Generator),
    "stylegan-discriminator": (DiscriminatorConfig, Discriminator),
    "attribute-classifier": (ClassifierConfig, AttributeClassifier),
}

__all__ = ["ARCHITECTURES", "Discriminator", "DiscriminatorConfig", "Generator", "GeneratorConfig"]
