"""StyleGAN (v1, AdaIN) and StyleGAN2 (modulated convolution) generators and the residual discriminator.

References: Karras et al. 2019 "A Style-Based Generator Architecture for GANs" (mapping network, constant
input, AdaIN, noise, style mixing, truncation); Karras et al. 2020 "Analyzing and Improving the Image Quality
of StyleGAN" (weight demodulation, skip generator, residual discriminator).

Module names follow rosinality/stylegan2-pytorch (``style``, ``input``, ``conv1``, ``to_rgb1``, ``convs``,
``to_rgbs``, ``noises``), so its checkpoints and the pSp/e4e decoders load as they are; the call API follows
NVIDIA's (``G.mapping``, ``G.synthesis``, ``truncation_psi``, ``noise_mode``).

W+ row layout (``num_ws = 2 * log2(img_resolution) - 2``): row 0 feeds ``conv1`` (4 px); row 1 feeds
``to_rgb1`` and ``convs.0``; row ``2k+1`` feeds ``to_rgbs.{k-1}`` and ``convs.{2k}``; row ``2k+2`` feeds
``convs.{2k+1}``; the last row feeds the last ``to_rgbs``. Rows ``2r`` and ``2r+1`` therefore belong to the
``4 * 2**r`` px block, the convention of the StyleGAN paper's coarse / middle / fine split.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from core.config import from_json_dict, to_json_dict
from core.models import cpu_synthesis
from core.nn import (
    AdaINConv,
    ConstantInput,
    ConvLayer,
    EqualConv2d,
    EqualLinear,
    PixelNorm,
    ResBlock,
    StyledConv,
    ToRGB,
    Upsample,
    minibatch_stddev,
)
from core.nn.layers import SQRT2

NOISE_MODES = ("const", "random", "none")
SYNTHESIS_ARCHITECTURES = ("skip", "orig", "resnet")
# Layer-group boundaries of the StyleGAN paper (sec. 3.1): coarse 4-8 px, middle 16-32 px, fine >= 64 px.
GROUP_MAX_RESOLUTION = {"coarse": 8, "middle": 32, "fine": 1 << 30}


def channel_table(
    img_resolution: int, *, channel_base: int = 32768, channel_max: int = 512
) -> tuple[int, ...]:
    """Widths for 4, 8, ..., img_resolution px as NVIDIA computes them: ``min(channel_base // res, channel_max)``.

    ``channel_base=32768, channel_max=512`` is config F (rosinality ``channel_multiplier=2``).
    """
    log = int(math.log2(img_resolution))
    return tuple(min(channel_base // (2**i), channel_max) for i in range(2, log + 1))


def _normalise_widths(cfg) -> None:
    """Fill in config-F widths when none are given and check there is one width per resolution 4..R px."""
    log = _check_resolution(cfg.img_resolution)
    channels = cfg.channels or channel_table(cfg.img_resolution)
    object.__setattr__(cfg, "channels", tuple(int(c) for c in channels))
    object.__setattr__(cfg, "blur_kernel", tuple(cfg.blur_kernel))
    if len(cfg.channels) != log - 1:
        raise ValueError(
            f"channels needs {log - 1} widths (4..{cfg.img_resolution} px), got {len(cfg.channels)}"
        )


def _check_resolution(res: int) -> int:
    if res < 8 or res > 4096 or res & (res - 1):
        raise ValueError(f"img_resolution must be a power of two between 8 and 4096, got {res}")
    return int(math.log2(res))


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to rebuild a generator; stored as JSON next to its weights.

    ``channels`` lists the widths at 4, 8, ..., img_resolution px (empty: config-F table). ``version`` 2 is
    StyleGAN2 (modulated convs, weight demodulation); 1 is StyleGAN's AdaIN style block on the same skip
    skeleton, so the two can be compared layer for layer.
    """

    img_resolution: int = 128
    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0
    n_mlp: int = 8
    lr_mlp: float = 0.01
    channels: tuple[int, ...] = ()
    version: int = 2
    architecture: str = "skip"
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)
    conv_clamp: float | None = None
    img_channels: int = 3

    def __post_init__(self) -> None:
        _normalise_widths(self)
        if self.version not in (1, 2):
            raise ValueError(f"version must be 1 (StyleGAN, AdaIN) or 2 (StyleGAN2), got {self.version}")
        if self.architecture not in SYNTHESIS_ARCHITECTURES:
            raise ValueError(
                f"architecture must be one of {SYNTHESIS_ARCHITECTURES}, got {self.architecture!r}"
            )
        for name in ("z_dim", "w_dim", "n_mlp", "img_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if self.c_dim < 0 or min(self.channels) < 1:
            raise ValueError("c_dim must be >= 0 and every channel width >= 1")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.img_resolution))

    @property
    def num_ws(self) -> int:
        return 2 * self.log_size - 2

    @property
    def num_layers(self) -> int:
        """Number of styled convolutions, which is also the number of noise inputs."""
        return 2 * self.log_size - 3

    @property
    def arch(self) -> str:
        return "stylegan2" if self.version == 2 else "stylegan1"

    def to_dict(self) -> dict:
        return to_json_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        return from_json_dict(cls, d, what="generator")


def noise_resolution(index: int) -> int:
    """Resolution of noise input ``index`` (0 = conv1 at 4 px, then two per resolution)."""
    return 2 ** ((index + 5) // 2)


def row_resolution(row: int) -> int:
    """Resolution of the synthesis block that ws row ``row`` belongs to."""
    return 4 * 2 ** (row // 2)


def layer_groups(img_resolution: int) -> dict[str, list[int]]:
    """ws rows per group: coarse (4-8 px), middle (16-32 px), fine (>= 64 px), computed from the resolution."""
    num_ws = 2 * _check_resolution(img_resolution) - 2
    groups: dict[str, list[int]] = {"coarse": [], "middle": [], "fine": []}
    for row in range(num_ws):
        res = row_resolution(row)
        name = next(g for g, top in GROUP_MAX_RESOLUTION.items() if res <= top)
        groups[name].append(row)
    return groups


def mix_styles(ws_a: Tensor, ws_b: Tensor, rows: Sequence[int] | Tensor, alpha: float = 1.0) -> Tensor:
    """Style mixing: take ``rows`` of W+ from ``ws_b`` (blended by ``alpha``), the rest from ``ws_a``.

    Args:
        ws_a, ws_b: ``[N, num_ws, w_dim]`` (``ws_b`` may have batch 1 and broadcasts).
        rows: row indices, or a boolean mask of length num_ws.
        alpha: 1 copies B's rows; 0 keeps A; values between blend linearly.
    """
    num_ws = ws_a.shape[1]
    mask = torch.zeros(num_ws, dtype=torch.bool, device=ws_a.device)
    rows_t = torch.as_tensor(rows, device=ws_a.device)
    if rows_t.dtype == torch.bool:
        if rows_t.numel() != num_ws:
            raise ValueError(f"mixing mask needs {num_ws} entries, got {rows_t.numel()}")
        mask = rows_t
    elif rows_t.numel():
        if int(rows_t.min()) < 0 or int(rows_t.max()) >= num_ws:
            raise ValueError(f"mixing rows must be in 0..{num_ws - 1}")
        mask[rows_t.long()] = True
    ws_b = ws_b.expand_as(ws_a)
    mixed = ws_b if alpha == 1.0 else torch.lerp(ws_a, ws_b, alpha)
    return torch.where(mask[None, :, None], mixed, ws_a)


class Generator(nn.Module):
    """Style-based generator: ``G(z) = synthesis(mapping(z))``.

    Contract: ``mapping(z [N, z_dim], c) -> ws [N, num_ws, w_dim]``;
    ``synthesis(ws) -> img [N, img_channels, R, R]`` float32, nominal range [-1, 1], not clamped.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.w_dim, self.c_dim = cfg.z_dim, cfg.w_dim, cfg.c_dim
        self.num_ws, self.num_layers, self.img_resolution = cfg.num_ws, cfg.num_layers, cfg.img_resolution
        self.img_channels = cfg.img_channels
        ch = {4 * 2**i: c for i, c in enumerate(cfg.channels)}
        bk, clamp = cfg.blur_kernel, cfg.conv_clamp

        # Mapping network: pixel norm, then n_mlp equalised-lr layers at lr_mlp (0.01) learning rate.
        in_dim = cfg.z_dim + (cfg.w_dim if cfg.c_dim else 0)
        layers: list[nn.Module] = [PixelNorm()]
        for i in range(cfg.n_mlp):
            layers.append(
                EqualLinear(
                    in_dim if i == 0 else cfg.w_dim, cfg.w_dim, lr_mul=cfg.lr_mlp, activation="fused_lrelu"
                )
            )
        self.style = nn.Sequential(*layers)
        if cfg.c_dim:
            self.embed = EqualLinear(cfg.c_dim, cfg.w_dim)

        def block(i: int, o: int, up: bool) -> nn.Module:
            if cfg.version == 2:
                return StyledConv(i, o, 3, cfg.w_dim, upsample=up, blur_kernel=bk, conv_clamp=clamp)
            return AdaINConv(i, o, 3, cfg.w_dim, upsample=up, blur_kernel=bk, conv_clamp=clamp)

        skip = cfg.architecture == "skip"
        rgb = dict(out_ch=cfg.img_channels, conv_clamp=clamp, blur_kernel=bk)
        self.input = ConstantInput(ch[4])
        self.conv1 = block(ch[4], ch[4], False)
        if skip:
            self.to_rgb1 = ToRGB(ch[4], cfg.w_dim, upsample=False, **rgb)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(cfg.num_layers):
            r = noise_resolution(i)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        if cfg.architecture == "resnet":
            self.skips = nn.ModuleList()
        in_ch = ch[4]
        for log in range(3, cfg.log_size + 1):
            out_ch = ch[2**log]
            self.convs.append(block(in_ch, out_ch, True))
            self.convs.append(block(out_ch, out_ch, False))
            if skip:
                self.to_rgbs.append(ToRGB(out_ch, cfg.w_dim, **rgb))
            if cfg.architecture == "resnet":
                self.skips.append(nn.Sequential(Upsample(bk), EqualConv2d(in_ch, out_ch, 1, bias=False)))
            in_ch = out_ch
        if not skip:
            self.to_rgb = ToRGB(in_ch, cfg.w_dim, upsample=False, **rgb)
        # Running mean of w, the centre of the truncation trick.
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        # Layout of synthesis activations; core.fastpath switches it to channels_last on GPUs.
        self.memory_format = torch.contiguous_format

    # ------------------------------------------------------------------ introspection
    @property
    def layer_groups(self) -> dict[str, list[int]]:
        return layer_groups(self.img_resolution)

    @property
    def row_resolutions(self) -> list[int]:
        return [row_resolution(r) for r in range(self.num_ws)]

    def layer_names(self) -> list[tuple[str, int, int]]:
        """(name, resolution, channels) of every capturable layer, in forward order."""
        ch = self.cfg.channels
        out = [("input", 4, ch[0]), ("conv1", 4, ch[0])]
        for j in range(len(self.convs)):
            res = 2 ** (j // 2 + 3)
            out.append((f"convs.{j}", res, ch[j // 2 + 1]))
        out.append(("img", self.img_resolution, self.img_channels))
        return out

    # ------------------------------------------------------------------ mapping
    def mapping(
        self,
        z: Tensor,
        c: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> Tensor:
        """z ``[N, z_dim]`` (and labels c ``[N, c_dim]``) -> ws ``[N, num_ws, w_dim]`` with truncation.

        Truncation: ``w' = w_avg + psi * (w - w_avg)`` on rows ``< truncation_cutoff`` (all rows if None).
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be [N, {self.z_dim}], got {list(z.shape)}")
        x = self.style[0](z)
        if self.c_dim:
            if c is None or c.shape != (z.shape[0], self.c_dim):
                raise ValueError(f"this generator is conditional: c must be [N, {self.c_dim}]")
            x = torch.cat([x, self.style[0](self.embed(c.to(x.dtype)))], dim=1)
        for layer in self.style[1:]:
            x = layer(x)
        ws = x[:, None, :].repeat(1, self.num_ws, 1)
        return self.truncate(ws, truncation_psi, truncation_cutoff)

    def truncate(
        self, ws: Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None
    ) -> Tensor:
        """Apply the truncation trick to W+ rows ``< truncation_cutoff`` (all if None); psi=1 is a no-op."""
        if truncation_psi == 1.0:
            return ws
        cutoff = self.num_ws if truncation_cutoff is None else int(truncation_cutoff)
        if not 0 <= cutoff <= self.num_ws:
            raise ValueError(f"truncation_cutoff must be in 0..{self.num_ws}, got {truncation_cutoff}")
        ws = ws.clone()
        head = ws[:, :cutoff]
        ws[:, :cutoff] = torch.lerp(self.w_avg.to(ws.dtype).expand_as(head), head, float(truncation_psi))
        return ws

    @torch.no_grad()
    def estimate_w_avg(self, num_samples: int = 10_000, *, seed: int = 0, c: Tensor | None = None) -> Tensor:
        """Mean of w over ``num_samples`` seeded z; stores it in ``w_avg`` and returns it."""
        gen = torch.Generator().manual_seed(seed)
        device = self.w_avg.device
        total = torch.zeros(self.w_dim, dtype=torch.float64, device=device)
        for start in range(0, num_samples, 1000):
            n = min(1000, num_samples - start)
            z = torch.randn(n, self.z_dim, generator=gen).to(device)
            cc = (
                None
                if not self.c_dim
                else (c if c is not None else torch.zeros(n, self.c_dim)).to(device)[:n]
            )
            total += self.mapping(z, cc)[:, 0].double().sum(0)
        self.w_avg.copy_((total / num_samples).float())
        return self.w_avg

    # ------------------------------------------------------------------ synthesis
    def make_noise(
        self,
        batch: int,
        noise_mode: str = "const",
        noise: Sequence[Tensor | None] | None = None,
        noise_layers: Sequence[bool] | None = None,
        noise_strength: float | Sequence[float] = 1.0,
        *,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
    ) -> list[Tensor | None]:
        """The noise image for every styled conv (None where it is off), following the contract's rules."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if noise_layers is not None and len(noise_layers) != self.num_layers:
            raise ValueError(f"noise_layers needs {self.num_layers} entries, got {len(noise_layers)}")
        if noise is not None and len(noise) != self.num_layers:
            raise ValueError(f"noise needs {self.num_layers} tensors, got {len(noise)}")
        strengths = None
        if isinstance(noise_strength, Sequence):
            if len(noise_strength) != self.num_layers:
                raise ValueError(
                    f"noise_strength needs 1 or {self.num_layers} values, got {len(noise_strength)}"
                )
            strengths = [float(v) for v in noise_strength]
        device = device or self.w_avg.device
        out: list[Tensor | None] = []
        for i in range(self.num_layers):
            r = noise_resolution(i)
            if noise is not None:
                n = noise[i]
                if n is not None:
                    n = n.to(device)
                    n = n.reshape(1, 1, r, r) if n.ndim == 2 else n
            elif noise_mode == "const":
                n = getattr(self.noises, f"noise_{i}")
            elif noise_mode == "random":
                if generator is not None:
                    n = torch.randn(batch, 1, r, r, generator=generator, device=generator.device).to(device)
                else:
                    n = torch.randn(batch, 1, r, r, device=device)
            else:
                n = None
            if n is not None and noise_layers is not None and not noise_layers[i]:
                n = None
            strength = strengths[i] if strengths is not None else noise_strength
            if n is not None and strength != 1.0:
                n = n * strength
            out.append(n)
        return out

    def synthesis(
        self,
        ws: Tensor,
        noise_mode: str = "const",
        noise: Sequence[Tensor | None] | None = None,
        noise_layers: Sequence[bool] | None = None,
        noise_strength: float | Sequence[float] = 1.0,
        *,
        generator: torch.Generator | None = None,
        capture: Collection[str] | None = None,
        fused_modconv: bool | None = None,
    ) -> Tensor | tuple[Tensor, dict[str, Tensor]]:
        """ws ``[N, num_ws, w_dim]`` (or w ``[N, w_dim]``, broadcast) -> img ``[N, C, R, R]``.

        Without gradients on the CPU, a frozen float32 StyleGAN2 skip generator runs the regrouped plan of
        ``core.models.cpu_synthesis`` (same images to float32 rounding) unless ``fused_modconv`` is given.

        Args:
            noise_mode: "const" (stored buffers), "random" (fresh, from ``generator`` when given), "none".
            noise: explicit noise tensors, one per noise input (``[r, r]`` or ``[1|N, 1, r, r]``).
            noise_layers: one bool per noise input; False switches that input off.
            noise_strength: scales every noise input, or one value per noise input.
            capture: layer names (see ``layer_names``) whose outputs to return; no cost when None.
            fused_modconv: force the modulated-conv evaluation order (None: fused for batch 1) and the
                module-by-module path.

        Returns:
            The image, or ``(image, {name: features})`` when ``capture`` is given.
        """
        if ws.ndim == 2:
            ws = ws[:, None, :].expand(-1, self.num_ws, -1)
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        n = ws.shape[0]
        noises = self.make_noise(
            n, noise_mode, noise, noise_layers, noise_strength, generator=generator, device=ws.device
        )
        feats: dict[str, Tensor] = {}
        want = set(capture) if capture else None
        fm = fused_modconv

        def keep(name: str, t: Tensor) -> None:
            if want is not None and name in want:
                feats[name] = t

        # No-grad CPU inference of a frozen StyleGAN2 skip or orig generator (cpu_plan is None otherwise).
        cpu_inference = ws.device.type == "cpu" and ws.dtype == torch.float32 and not torch.is_grad_enabled()
        plan = cpu_synthesis.cpu_plan(self) if cpu_inference and fm is None else None
        if plan is not None:
            img = cpu_synthesis.synthesize(plan, ws, noises, keep if want is not None else None)
            return (img, feats) if want is not None else img

        def run(layer: nn.Module, x: Tensor, row: int, k: int, gain: float = 1.0) -> Tensor:
            if self.cfg.version == 2 and not torch.is_grad_enabled():
                # Inference: the same epilogue in place on the fresh conv output (no temporaries: allocating
                # them costs more than the arithmetic at 128 px on CPU).
                y = layer.conv(x, ws[:, row], fused=fm)
                if noises[k] is not None:
                    y.add_(layer.noise.weight.to(y.dtype) * noises[k].to(y.dtype))
                if layer.activate.bias is not None:
                    y.add_(layer.activate.bias.to(y.dtype)[None, :, None, None])
                x = torch.nn.functional.leaky_relu_(y, 0.2).mul_(SQRT2 * gain)
                if layer.conv_clamp is not None:
                    x.clamp_(-layer.conv_clamp * gain, layer.conv_clamp * gain)
                return x
            return layer(x, ws[:, row], noises[k], gain, fused=fm)

        # channels_last on CPU too: oneDNN's NHWC kernels are 1.1-2x faster there, and NCHW conv_transpose2d
        # falls back to a slow non-oneDNN kernel.
        fmt = torch.channels_last if ws.device.type == "cpu" else self.memory_format
        x = self.input(n).to(ws.dtype).contiguous(memory_format=fmt)
        keep("input", x)
        x = run(self.conv1, x, 0, 0)
        keep("conv1", x)
        arch = self.cfg.architecture
        img = self.to_rgb1(x, ws[:, 1]) if arch == "skip" else None
        for b in range(len(self.convs) // 2):
            row = 2 * b + 1
            y = self.skips[b](x) if arch == "resnet" else None
            x = run(self.convs[2 * b], x, row, row)
            keep(f"convs.{2 * b}", x)
            x = run(self.convs[2 * b + 1], x, row + 1, row + 1, gain=math.sqrt(0.5) if y is not None else 1.0)
            if y is not None:
                x = x + y * math.sqrt(0.5)
            keep(f"convs.{2 * b + 1}", x)
            if arch == "skip":
                img = self.to_rgbs[b](x, ws[:, row + 2], img)
        if arch != "skip":
            img = self.to_rgb(x, ws[:, self.num_ws - 1])
        img = img.float()
        keep("img", img)
        return (img, feats) if want is not None else img

    def forward(
        self,
        z: Tensor,
        c: Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        **synthesis_kwargs,
    ) -> Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Residual discriminator (StyleGAN2 fig. 7) with minibatch stddev and optional projection conditioning."""

    img_resolution: int = 128
    channels: tuple[int, ...] = ()
    c_dim: int = 0
    mbstd_group_size: int = 4
    mbstd_num_features: int = 1
    blur_kernel: tuple[int, ...] = (1, 3, 3, 1)
    img_channels: int = 3
    cmap_dim: int = field(default=0)

    def __post_init__(self) -> None:
        _normalise_widths(self)
        if self.c_dim and not self.cmap_dim:
            object.__setattr__(self, "cmap_dim", self.channels[0])

    def to_dict(self) -> dict:
        return to_json_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DiscriminatorConfig:
        return from_json_dict(cls, d, what="discriminator")


class Discriminator(nn.Module):
    """Residual discriminator in rosinality's layout (``convs``, ``final_conv``, ``final_linear``).

    Returns logits ``[N, 1]``. With ``c_dim > 0`` the last layer outputs a ``cmap_dim`` feature that is
    projected onto an embedding of the label (Miyato & Koyama 2018), as in NVIDIA's conditional models.
    """

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        ch = {4 * 2**i: c for i, c in enumerate(cfg.channels)}
        log = int(math.log2(cfg.img_resolution))
        convs: list[nn.Module] = [ConvLayer(cfg.img_channels, ch[cfg.img_resolution], 1)]
        in_ch = ch[cfg.img_resolution]
        for i in range(log, 2, -1):
            out_ch = ch[2 ** (i - 1)]
            convs.append(ResBlock(in_ch, out_ch, cfg.blur_kernel))
            in_ch = out_ch
        self.convs = nn.Sequential(*convs)
        self.final_conv = ConvLayer(in_ch + cfg.mbstd_num_features, ch[4], 3)
        out_dim = cfg.cmap_dim if cfg.c_dim else 1
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 16, ch[4], activation="fused_lrelu"), EqualLinear(ch[4], out_dim)
        )
        if cfg.c_dim:
            self.embed = EqualLinear(cfg.c_dim, cfg.cmap_dim)

    def forward(self, img: Tensor, c: Tensor | None = None) -> Tensor:
        x = self.convs(img)
        x = minibatch_stddev(x, self.cfg.mbstd_group_size, self.cfg.mbstd_num_features)
        x = self.final_conv(x)
        x = self.final_linear(x.flatten(1))
        if self.cfg.c_dim:
            if c is None:
                raise ValueError(f"this discriminator is conditional: c must be [N, {self.cfg.c_dim}]")
            cmap = self.embed(c.to(x.dtype))
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cfg.cmap_dim)
        return x.float()
