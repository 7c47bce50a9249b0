"""Small building blocks of style-based generators and discriminators (pure PyTorch, no custom ops)."""

from core.nn.layers import (
    Blur,
    ConstantInput,
    ConvLayer,
    Downsample,
    EqualConv2d,
    EqualLinear,
    FusedLeakyReLU,
    NoiseInjection,
    PixelNorm,
    ResBlock,
    Upsample,
    fused_leaky_relu,
    make_kernel,
    minibatch_stddev,
    upfirdn2d,
)
from core.nn.modulated import AdaINConv, ModulatedConv2d, StyledConv, ToRGB

__all__ = [
    "AdaINConv",
    "Blur",
    "ConstantInput",
    "ConvLayer",
    "Downsample",
    "EqualConv2d",
    "EqualLinear",
    "FusedLeakyReLU",
    "ModulatedConv2d",
    "NoiseInjection",
    "PixelNorm",
    "ResBlock",
    "StyledConv",
    "ToRGB",
    "Upsample",
    "fused_leaky_relu",
    "make_kernel",
    "minibatch_stddev",
    "upfirdn2d",
]
