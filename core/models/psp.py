"""pixel2style2pixel (pSp) encoders: images -> StyleGAN2 W+ codes.

Richardson et al. 2021, "Encoding in Style: a StyleGAN Encoder for Image-to-Image Translation" (CVPR), Sec. 3:
an IR-SE50 ResNet backbone (Deng et al. 2019, ArcFace, "improved residual" units with squeeze-excitation) feeds a
feature pyramid (Lin et al. 2017, FPN); each W+ row ``i`` is predicted by a ``map2style`` head
(:class:`GradualStyleBlock`) from the coarse (rows 0-2), medium (3-6) or fine (7+) pyramid level. The pSp forward
(Eq. 1) is ``G(E(x) + w_avg)``; that composition lives in :mod:`core.inversion.encode`.

Module and parameter names follow the official code (``eladrich/pixel2style2pixel`` @ 5cfff38,
``models/encoders/psp_encoders.py`` and ``helpers.py``) so a checkpoint's ``encoder.*`` tensors load with
``strict=True`` after the prefix is stripped. All widths come from :class:`PSPConfig`, which
:mod:`core.checkpoints.psp` infers from tensor shapes (narrow-width checkpoints exist).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ENCODER_TYPES = (
    "GradualStyleEncoder",
    "BackboneEncoderUsingLastLayerIntoW",
    "BackboneEncoderUsingLastLayerIntoWPlus",
)
# IR-SE50: units per stage (helpers.get_blocks(50)). The official GradualStyleEncoder taps the body after these
# unit indices (the ends of stages 2, 3 and 4), hard-coded there, so only the 50-layer body is supported.
IR50_UNITS = (3, 4, 14, 3)
FEATURE_TAPS = (6, 20, 23)
COARSE_IND, MIDDLE_IND = 3, 7


@dataclass(frozen=True)
class PSPConfig:
    """Shape of a pSp encoder (everything needed to rebuild it; stored with the weights).

    Attributes:
        encoder_type: one of :data:`ENCODER_TYPES`.
        n_styles: W+ rows predicted (``2*log2(output_size) - 2``).
        style_dim: W width (512 for official models).
        input_nc: input image channels.
        input_width: ``input_layer`` conv width (official 64).
        stage_widths: IR-SE stage depths (official 64, 128, 256, 512).
        stage_units: units per stage (IR-SE50: 3, 4, 14, 3).
        fpn_width: pyramid width = style-block input width (official 512 = last stage width).
        style_spatial: per-row input resolution of each GradualStyleBlock (16, 32 or 64 at 256 px input).
        se_reduction: squeeze-excitation channel reduction.
        input_size: encoder input resolution (256 for pSp).
    """

    encoder_type: str = "GradualStyleEncoder"
    n_styles: int = 18
    style_dim: int = 512
    input_nc: int = 3
    input_width: int = 64
    stage_widths: tuple[int, ...] = (64, 128, 256, 512)
    stage_units: tuple[int, ...] = IR50_UNITS
    fpn_width: int = 512
    style_spatial: tuple[int, ...] = ()
    se_reduction: int = 16
    input_size: int = 256

    def __post_init__(self) -> None:
        if self.encoder_type not in ENCODER_TYPES:
            raise ValueError(f"encoder_type must be one of {ENCODER_TYPES}, got {self.encoder_type!r}")
        if tuple(self.stage_units) != IR50_UNITS or len(self.stage_widths) != 4:
            raise ValueError(f"only the IR-SE50 backbone is supported (units {IR50_UNITS})")
        object.__setattr__(self, "stage_widths", tuple(int(w) for w in self.stage_widths))
        object.__setattr__(self, "stage_units", tuple(int(u) for u in self.stage_units))
        if not self.style_spatial and self.encoder_type == "GradualStyleEncoder":
            spatial = tuple(
                16 if i < COARSE_IND else 32 if i < MIDDLE_IND else 64 for i in range(self.n_styles)
            )
            object.__setattr__(self, "style_spatial", spatial)
        object.__setattr__(self, "style_spatial", tuple(int(s) for s in self.style_spatial))

    @property
    def learn_in_w(self) -> bool:
        """True when the encoder predicts one w (broadcast to all rows) instead of W+."""
        return self.encoder_type == "BackboneEncoderUsingLastLayerIntoW"

    @classmethod
    def official(cls, output_size: int = 1024, encoder_type: str = "GradualStyleEncoder") -> PSPConfig:
        """The official full-width configuration for a ``output_size`` px decoder."""
        return cls(encoder_type=encoder_type, n_styles=int(math.log2(output_size)) * 2 - 2)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PSPConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        for k in ("stage_widths", "stage_units", "style_spatial"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


class EqualLinear(nn.Module):
    """rosinality's EqualLinear without activation: ``x @ (W / sqrt(in) * lr)^T + b * lr``."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.scale = 1.0 / math.sqrt(in_dim) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class SEModule(nn.Module):
    """Squeeze-excitation: channel gates from globally pooled features (Hu et al. 2018)."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, padding=0, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, padding=0, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))
        return x * s


class bottleneck_IR_SE(nn.Module):  # noqa: N801 - official class name, kept so the layout is recognisable
    """IR-SE unit: ``shortcut(x) + [BN, conv3x3, PReLU, conv3x3(stride), BN, SE](x)``."""

    def __init__(self, in_channel: int, depth: int, stride: int, reduction: int = 16) -> None:
        super().__init__()
        if in_channel == depth:
            # A 1x1 max-pool with stride is plain subsampling; no tensors.
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channel, depth, (1, 1), stride, bias=False), nn.BatchNorm2d(depth)
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channel),
            nn.Conv2d(in_channel, depth, (3, 3), (1, 1), 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, (3, 3), stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SEModule(depth, reduction),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut_layer(x) + self.res_layer(x)


class GradualStyleBlock(nn.Module):
    """map2style head: log2(spatial) stride-2 convs (LeakyReLU 0.01) down to 1x1, then an EqualLinear."""

    def __init__(self, in_c: int, out_c: int, spatial: int) -> None:
        super().__init__()
        self.out_c = out_c
        num_pools = int(math.log2(spatial))
        layers: list[nn.Module] = [nn.Conv2d(in_c, out_c, 3, stride=2, padding=1), nn.LeakyReLU()]
        for _ in range(num_pools - 1):
            layers += [nn.Conv2d(out_c, out_c, 3, stride=2, padding=1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.convs(x).reshape(-1, self.out_c))


def _upsample_add(x: Tensor, y: Tensor) -> Tensor:
    """FPN top-down step: bilinear (align_corners=True, as the official code) upsample of x to y's size, + y."""
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


class PSPEncoder(nn.Module):
    """pSp encoder (GradualStyleEncoder or one of the two BackboneEncoderUsingLastLayerInto* variants).

    ``forward(x [N, input_nc, 256, 256] in [-1, 1])`` returns codes ``[N, n_styles, style_dim]`` for W+
    encoders and ``[N, style_dim]`` for ``BackboneEncoderUsingLastLayerIntoW`` (without ``latent_avg``).
    BatchNorm layers use running statistics only in ``eval()`` mode, as the reference outputs assume.
    """

    def __init__(self, cfg: PSPConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.input_layer = nn.Sequential(
            nn.Conv2d(cfg.input_nc, cfg.input_width, (3, 3), 1, 1, bias=False),
            nn.BatchNorm2d(cfg.input_width),
            nn.PReLU(cfg.input_width),
        )
        units: list[nn.Module] = []
        in_c = cfg.input_width
        for depth, n in zip(cfg.stage_widths, cfg.stage_units, strict=True):
            for j in range(n):
                units.append(bottleneck_IR_SE(in_c, depth, 2 if j == 0 else 1, cfg.se_reduction))
                in_c = depth
        self.body = nn.Sequential(*units)
        last, d = cfg.stage_widths[-1], cfg.style_dim
        if cfg.encoder_type == "GradualStyleEncoder":
            self.styles = nn.ModuleList(GradualStyleBlock(cfg.fpn_width, d, s) for s in cfg.style_spatial)
            self.latlayer1 = nn.Conv2d(cfg.stage_widths[2], cfg.fpn_width, 1, 1, 0)
            self.latlayer2 = nn.Conv2d(cfg.stage_widths[1], cfg.fpn_width, 1, 1, 0)
        elif cfg.encoder_type == "BackboneEncoderUsingLastLayerIntoW":
            self.output_pool = nn.AdaptiveAvgPool2d((1, 1))
            self.linear = EqualLinear(last, d, lr_mul=1)
        else:
            self.output_layer_2 = nn.Sequential(
                nn.BatchNorm2d(last), nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(), nn.Linear(last * 7 * 7, d)
            )
            self.linear = EqualLinear(d, d * cfg.n_styles, lr_mul=1)

    def features(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Backbone pyramid taps (c1, c2, c3) after body units 6, 20 and 23 (strides 4, 8 and 16)."""
        x = self.input_layer(x)
        taps = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in FEATURE_TAPS:
                taps.append(x)
        return taps[0], taps[1], taps[2]

    def forward(self, x: Tensor) -> Tensor:
        cfg = self.cfg
        if x.ndim != 4 or x.shape[1] != cfg.input_nc:
            raise ValueError(f"x must be [N, {cfg.input_nc}, H, W], got {list(x.shape)}")
        if cfg.encoder_type == "GradualStyleEncoder":
            c1, c2, c3 = self.features(x)
            rows = [self.styles[j](c3) for j in range(min(COARSE_IND, cfg.n_styles))]
            p2 = _upsample_add(c3, self.latlayer1(c2))
            rows += [self.styles[j](p2) for j in range(COARSE_IND, min(MIDDLE_IND, cfg.n_styles))]
            p1 = _upsample_add(p2, self.latlayer2(c1))
            rows += [self.styles[j](p1) for j in range(MIDDLE_IND, cfg.n_styles)]
            return torch.stack(rows, dim=1)
        x = self.body(self.input_layer(x))
        if cfg.encoder_type == "BackboneEncoderUsingLastLayerIntoW":
            return self.linear(self.output_pool(x).flatten(1))
        return self.linear(self.output_layer_2(x)).view(-1, cfg.n_styles, cfg.style_dim)
