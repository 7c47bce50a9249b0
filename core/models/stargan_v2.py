"""StarGAN v2 networks (Choi et al., "StarGAN v2: Diverse Image Synthesis for Multiple Domains", CVPR 2020).

Three networks with the official module names, so that released ``*_nets_ema.ckpt`` files load strictly:

* :class:`Generator` ``G(x, s)`` (Sec. 3.1): an encoder of ``ResBlk`` (InstanceNorm with affine parameters,
  average-pool downsampling) and a decoder of ``AdainResBlk`` where the style code ``s`` enters through
  AdaIN, ``(1 + gamma(s)) * IN(x) + beta(s)``, with nearest-neighbour x2 upsampling. With ``w_hpf = 0`` every
  block returns ``(residual + shortcut) / sqrt(2)`` (unit-variance residual sum); with ``w_hpf > 0`` (the
  CelebA-HQ face model) decoder blocks return the residual only, there is one more down/up level, and
  high-frequency encoder features masked by face-landmark heatmaps are added back through the high-pass
  filter ``hpf`` (Sec. 4 / appendix, "skip connections with high-pass filter").
* :class:`MappingNetwork` ``F_y(z)``: a shared MLP and one output branch per domain (Eq. 1, latent-guided style).
* :class:`StyleEncoder` ``E_y(x)``: a shared CNN and one linear head per domain (reference-guided style).

Widths are configurable (:class:`StarGANv2Config`) so that narrow test checkpoints use the same code; the
official widths are ``dim_in = 2**14 // img_size``, ``max_conv_dim = 512`` and a mapping width of 512.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

# The 3x3 Laplacian-like kernel of the official HighPass module (divided by w_hpf).
HPF_KERNEL = ((-1.0, -1.0, -1.0), (-1.0, 8.0, -1.0), (-1.0, -1.0, -1.0))
# Feature sizes at which the w_hpf > 0 generator re-injects masked encoder features (official code).
HPF_SIZES = (32, 64, 128)


@dataclass(frozen=True)
class StarGANv2Config:
    """Architecture of a StarGAN v2 model (stored with the weights).

    Attributes:
        img_size: square image size in pixels (a power of two, >= 16).
        style_dim: length of a style code ``s``.
        latent_dim: length of a latent code ``z`` for the mapping network.
        num_domains: number of domains (output branches of the mapping network and style encoder).
        w_hpf: high-pass weight; 0 disables the face-mask skip path (AFHQ), 1 for CelebA-HQ.
        dim_in: width of the first conv of the generator and the style encoder (official ``2**14 // img_size``).
        max_conv_dim: channel cap (official 512).
        mapping_hidden_dim: MappingNetwork hidden width (official 512).
    """

    img_size: int = 256
    style_dim: int = 64
    latent_dim: int = 16
    num_domains: int = 2
    w_hpf: float = 1.0
    dim_in: int = 64
    max_conv_dim: int = 512
    mapping_hidden_dim: int = 512

    def __post_init__(self) -> None:
        if self.img_size < 16 or self.img_size & (self.img_size - 1):
            raise ValueError(f"img_size must be a power of two >= 16, got {self.img_size}")
        for name in (
            "style_dim",
            "latent_dim",
            "num_domains",
            "dim_in",
            "max_conv_dim",
            "mapping_hidden_dim",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.w_hpf < 0:
            raise ValueError(f"w_hpf must be >= 0, got {self.w_hpf}")

    @classmethod
    def official(
        cls,
        img_size: int = 256,
        *,
        style_dim: int = 64,
        latent_dim: int = 16,
        num_domains: int = 2,
        w_hpf=1.0,
    ) -> StarGANv2Config:
        """The widths of the official ``build_model`` for this image size."""
        return cls(img_size, style_dim, latent_dim, num_domains, float(w_hpf), 2**14 // img_size, 512, 512)

    @property
    def generator_repeat_num(self) -> int:
        """Number of down/up-sampling levels of the generator."""
        return int(math.log2(self.img_size)) - 4 + (1 if self.w_hpf > 0 else 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> StarGANv2Config:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class ResBlk(nn.Module):
    """Pre-activation residual block of the encoder / style encoder (official ``ResBlk``)."""

    def __init__(self, dim_in: int, dim_out: int, *, normalize: bool = False, downsample: bool = False):
        super().__init__()
        self.normalize, self.downsample = normalize, downsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.learned_sc:
            x = self.conv1x1(x)
        return F.avg_pool2d(x, 2) if self.downsample else x

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = self.conv1(F.leaky_relu(x, 0.2))
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(F.leaky_relu(x, 0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Dividing by sqrt(2) keeps the sum of two unit-variance branches at unit variance.
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)


class AdaIN(nn.Module):
    """Adaptive instance normalisation: ``(1 + gamma) * IN(x) + beta`` with ``[gamma, beta] = fc(s)``."""

    def __init__(self, style_dim: int, num_features: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features, affine=False)
        self.fc = nn.Linear(style_dim, num_features * 2)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = self.fc(s).view(s.shape[0], -1, 1, 1)
        gamma, beta = torch.chunk(h, chunks=2, dim=1)
        # 1 + gamma: a zero-initialised gamma starts as the identity scale.
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    """Decoder block with AdaIN and optional nearest x2 upsampling (official ``AdainResBlk``)."""

    def __init__(
        self, dim_in: int, dim_out: int, style_dim: int, *, w_hpf: float = 0.0, upsample: bool = False
    ):
        super().__init__()
        self.w_hpf, self.upsample = w_hpf, upsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        if self.learned_sc:
            # Present (and in the state_dict) even when w_hpf > 0 makes the shortcut unused.
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv1x1(x) if self.learned_sc else x

    def _residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.norm1(x, s), 0.2)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv1(x)
        x = F.leaky_relu(self.norm2(x, s), 0.2)
        return self.conv2(x)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = self._residual(x, s)
        if self.w_hpf == 0:
            out = (out + self._shortcut(x)) / math.sqrt(2)
        return out


class HighPass(nn.Module):
    """Depthwise 3x3 high-pass filter ``HPF_KERNEL / w_hpf`` (buffer ``filter``, as in the official code)."""

    def __init__(self, w_hpf: float):
        super().__init__()
        self.register_buffer("filter", torch.tensor(HPF_KERNEL) / w_hpf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.filter.to(x.dtype).view(1, 1, 3, 3).repeat(x.shape[1], 1, 1, 1)
        return F.conv2d(x, weight, padding=1, groups=x.shape[1])


class Generator(nn.Module):
    """``G(x, s, masks=None) -> image``: translate ``x`` [N,3,H,W] in [-1,1] to carry style ``s`` [N,style_dim].

    Output images are not clamped (they may leave [-1, 1]).
    """

    def __init__(self, cfg: StarGANv2Config):
        super().__init__()
        self.cfg = cfg
        dim_in = cfg.dim_in
        self.from_rgb = nn.Conv2d(3, dim_in, 3, 1, 1)
        self.encode = nn.ModuleList()
        self.decode = nn.ModuleList()
        self.to_rgb = nn.Sequential(
            nn.InstanceNorm2d(dim_in, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(dim_in, 3, 1, 1, 0)
        )
        dim_out = dim_in
        for _ in range(cfg.generator_repeat_num):
            dim_out = min(dim_in * 2, cfg.max_conv_dim)
            self.encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_in, cfg.style_dim, w_hpf=cfg.w_hpf, upsample=True))
            dim_in = dim_out
        for _ in range(2):  # bottleneck
            self.encode.append(ResBlk(dim_out, dim_out, normalize=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_out, cfg.style_dim, w_hpf=cfg.w_hpf))
        if cfg.w_hpf > 0:
            self.hpf = HighPass(cfg.w_hpf)

    def forward(self, x: torch.Tensor, s: torch.Tensor, masks=None) -> torch.Tensor:
        """Translate.

        Args:
            x: source images [N,3,img_size,img_size] in [-1,1].
            s: style codes [N,style_dim].
            masks: ``(mask1, mask2)`` face masks [N,1,H,W] in [0,1] for ``w_hpf > 0`` models, or None.

        Returns:
            Images [N,3,img_size,img_size].
        """
        x = self.from_rgb(x)
        cache: dict[int, torch.Tensor] = {}
        for block in self.encode:
            if masks is not None and x.shape[2] in HPF_SIZES:
                cache[x.shape[2]] = x
            x = block(x)
        for block in self.decode:
            x = block(x, s)
            size = x.shape[2]
            if masks is not None and size in HPF_SIZES:
                mask = masks[0] if size == 32 else masks[1]
                mask = F.interpolate(mask, size=size, mode="bilinear")
                x = x + self.hpf(mask * cache[size])
        return self.to_rgb(x)


def _select(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pick the branch of each sample's domain: ``out[arange(N), y]``."""
    return out[torch.arange(y.shape[0], device=y.device), y]


class MappingNetwork(nn.Module):
    """``F(z, y) -> s``: shared 4-layer MLP, then a 4-layer branch per domain."""

    def __init__(self, cfg: StarGANv2Config):
        super().__init__()
        self.cfg = cfg
        h = cfg.mapping_hidden_dim
        layers: list[nn.Module] = [nn.Linear(cfg.latent_dim, h), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(h, h), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(
            nn.Sequential(
                nn.Linear(h, h),
                nn.ReLU(),
                nn.Linear(h, h),
                nn.ReLU(),
                nn.Linear(h, h),
                nn.ReLU(),
                nn.Linear(h, cfg.style_dim),
            )  # fmt: skip
            for _ in range(cfg.num_domains)
        )

    def all_domains(self, z: torch.Tensor) -> torch.Tensor:
        """Style codes of every domain branch, [N,num_domains,style_dim]."""
        h = self.shared(z)
        return torch.stack([branch(h) for branch in self.unshared], dim=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _select(self.all_domains(z), y)


class StyleEncoder(nn.Module):
    """``E(x, y) -> s``: shared CNN (ResBlk without normalisation) down to 1x1, then a linear head per domain."""

    def __init__(self, cfg: StarGANv2Config):
        super().__init__()
        self.cfg = cfg
        dim_in = dim_out = cfg.dim_in
        blocks: list[nn.Module] = [nn.Conv2d(3, dim_in, 3, 1, 1)]
        for _ in range(int(math.log2(cfg.img_size)) - 2):
            dim_out = min(dim_in * 2, cfg.max_conv_dim)
            blocks.append(ResBlk(dim_in, dim_out, downsample=True))
            dim_in = dim_out
        blocks += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2)]
        self.shared = nn.Sequential(*blocks)
        self.unshared = nn.ModuleList(nn.Linear(dim_out, cfg.style_dim) for _ in range(cfg.num_domains))

    def all_domains(self, x: torch.Tensor) -> torch.Tensor:
        """Style codes of every domain head, [N,num_domains,style_dim]."""
        h = self.shared(x).flatten(1)
        return torch.stack([head(h) for head in self.unshared], dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _select(self.all_domains(x), y)


@dataclass
class StarGANv2:
    """A loaded StarGAN v2 model: the three EMA networks and their config (FAN is not included)."""

    generator: Generator
    mapping: MappingNetwork
    style_encoder: StyleEncoder
    config: StarGANv2Config
    source: str = ""
    notes: tuple[str, ...] = ()

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device


def build_stargan_v2(cfg: StarGANv2Config, device: str | torch.device = "cpu") -> StarGANv2:
    """Build untrained networks for ``cfg`` (use ``device="meta"`` to inspect key sets without memory).

    Building does not disturb the caller's global RNG state.
    """
    with torch.random.fork_rng(devices=[]), torch.device(device):
        return StarGANv2(Generator(cfg), MappingNetwork(cfg), StyleEncoder(cfg), cfg)
