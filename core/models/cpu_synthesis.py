"""No-grad CPU synthesis of StyleGAN2 generators with frozen weights (the explorer's batch-1 renders).

The same function as ``Generator.synthesis`` (Karras et al. 2020, "Analyzing and Improving the Image Quality
of StyleGAN": modulation and demodulation, eq. 1-3; the skip generator of fig. 7, or the "orig" one with a
single RGB output), with its products regrouped
into fewer operators. On a CPU every operator costs a dispatch and, with two or more threads, a wake-up of the
sleeping OpenMP workers (about 0.1 ms on a 2-core VM with ``OMP_WAIT_POLICY=PASSIVE``: more than most of
these operators compute). So:

* the styles of all layers are one batched product, the demodulation coefficients of all styled convs another
  (each layer zero-padded to the widest);
* conv1 reads the constant input: its convolution is precomputed per input channel, and the style-weighted
  sum of those maps is one vector-matrix product;
* the activation gain sqrt(2) moves into bias, noise strength and demodulation (``lrelu(g v) = g lrelu(v)``
  for ``g > 0``), so a layer ends in one multiply-add and one in-place leaky ReLU; layers that modulate the
  weight (batch 1, resolutions where the activations outgrow the weight) pass the bias to the convolution;
* the 3-channel skip image is upsampled by products with the FIR filter's banded matrices instead of a
  depthwise transposed convolution, whose fixed cost in oneDNN dominates such small images.

The constants (about the size of the synthesis weights again) are built once per generator and rebuilt when a
synthesis parameter or buffer changes (storage address or version counter), as ``ModulatedConv2d._frozen``
does for single weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.nn.layers import SQRT2

# The dense (kron) upsampling matrix of the skip image is used up to this input size: [r^2, 4 r^2] floats.
_DENSE_UPSAMPLE_MAX = 16


def fir_upsample_matrix(taps: Sequence[float], size: int, factor: int, pad: tuple[int, int]) -> Tensor:
    """``A [n_out, size]`` with ``A @ x`` the 1-D ``upfirdn`` of ``x``: zero insertion by ``factor``, ``pad``,
    true convolution with ``taps`` (the convention of ``core.nn.layers.upfirdn2d``)."""
    k = len(taps)
    n_out = size * factor + pad[0] + pad[1] - k + 1
    a = torch.zeros(n_out, size, dtype=torch.float64)
    for o in range(n_out):
        for i in range(size):
            j = factor * i + pad[0] - o  # tap of the flipped kernel that meets input i at output o
            if 0 <= j < k:
                a[o, i] = taps[k - 1 - j]
    return a.float()


@dataclass
class _ConvStep:
    """One styled convolution: its module, the style columns it reads and its folded epilogue."""

    layer: nn.Module  # StyledConv
    name: str  # capture name
    slot: int  # row of the style and demodulation tables
    in_ch: int
    out_ch: int
    base: Tensor  # the weight cached by ``ModulatedConv2d._frozen``, channel axis innermost
    scaled: bool  # batch 1 scales activations (low resolutions, conv1) rather than the weight
    gain_bias: Tensor  # sqrt2 * bias, [O]
    gain_noise: float  # sqrt2 * noise strength
    noise_buffer: Tensor  # the generator's stored noise map of this layer
    const: Tensor | None  # scaled layers: gain_bias + gain_noise * noise_buffer, channels_last [1, O, r, r]
    blur_weight: Tensor | None  # up-sampling layers: flipped FIR kernel per channel, [O, 1, kh, kw]
    input_table: Tensor | None  # conv1: the convolution of each constant input channel, [I, r * r * O]


@dataclass
class _RgbStep:
    """One ToRGB: modulated 1x1 conv, bias, and the upsampled skip image added to it."""

    slot: int  # row of the style table
    in_ch: int
    weight: Tensor  # [C, I], scaled
    bias: Tensor  # [C, 1]
    # Skip-image upsampling: () for the first ToRGB, (U^T [r^2, 4 r^2],) dense, (A_v [2r, r], A_h^T [r, 2r]).
    up: tuple[Tensor, ...]


class CpuSynthesisPlan:
    """Constants of one generator for ``synthesize``; build with ``cpu_plan(G)``."""

    def __init__(self, G: nn.Module, key: tuple):
        self.key = key
        self.num_ws = G.num_ws
        convs = [G.conv1, *G.convs]
        names = ["conv1", *(f"convs.{j}" for j in range(len(G.convs)))]
        conv_rows = list(range(len(convs)))  # conv j of the list reads ws row j (conv1: 0, convs.j: j + 1)
        self.skip = G.cfg.architecture == "skip"
        if self.skip:  # an RGB output per resolution, summed
            rgbs = [G.to_rgb1, *G.to_rgbs]
            rgb_rows = [1] + [2 * b + 3 for b in range(len(G.to_rgbs))]
        else:  # "orig": one RGB output after the last conv, styled by the last ws row
            rgbs, rgb_rows = [G.to_rgb], [G.num_ws - 1]
        omax = max(c.conv.out_ch for c in convs)

        # Styles: the modulations of all layers as one batched product, [M, N, w_dim] @ [M, w_dim, smax] (each
        # layer's weight zero-padded to the widest), so the demodulation is one batched product as well.
        mods = [c.conv.modulation for c in convs] + [r.conv.modulation for r in rgbs]
        self.smax = max(m.weight.shape[0] for m in mods)
        self.style_rows = torch.tensor(conv_rows + rgb_rows)
        self.style_weight = torch.zeros(len(mods), G.w_dim, self.smax)
        self.style_bias = torch.zeros(len(mods), 1, self.smax)
        for i, m in enumerate(mods):
            width = m.weight.shape[0]
            self.style_weight[i, :, :width] = (m.weight * m.scale).t()
            self.style_bias[i, 0, :width] = m.bias * m.lr_mul

        w2t = torch.zeros(len(convs), self.smax, omax)
        self.steps: list[_ConvStep] = []
        for j, (c, name) in enumerate(zip(convs, names, strict=True)):
            mc = c.conv
            w2, base = mc._frozen()
            w2t[j, : mc.in_ch, : mc.out_ch] = w2.t()
            res = 4 * 2 ** ((j + 1) // 2 - (1 if mc.upsample else 0))  # input resolution
            gain_bias = SQRT2 * c.activate.bias
            gain_noise = SQRT2 * float(c.noise.weight)
            noise = getattr(G.noises, f"noise_{j}")
            # Batch 1 scales the activations where they are smaller than the weight (low resolutions; conv1 reads
            # its table). Larger batches always do: one shared weight for all samples.
            scaled = j == 0 or base.numel() > mc.in_ch * res * res
            const = None
            if scaled:
                const = (gain_bias.view(1, -1, 1, 1) + gain_noise * noise).contiguous(
                    memory_format=torch.channels_last
                )
            blur_weight = None
            if mc.upsample:
                kernel = mc.blur.kernel
                blur_weight = kernel.flip([0, 1])[None, None].expand(mc.out_ch, 1, *kernel.shape).contiguous()
            table = None
            if j == 0:
                # conv(s * x, W) = sum_i s_i conv(x_i, W[:, i]) for the constant x: one product with this table.
                x = G.input.input
                per_channel = F.conv2d(
                    x.view(mc.in_ch, 1, *x.shape[2:]).transpose(0, 1),
                    mc.weight[0].transpose(0, 1).reshape(mc.in_ch * mc.out_ch, 1, *mc.weight.shape[3:])
                    * mc.scale,
                    padding=mc.padding,
                    groups=mc.in_ch,
                )  # [1, I * O, r, r]
                table = per_channel.view(mc.in_ch, mc.out_ch, -1).transpose(1, 2).reshape(mc.in_ch, -1)
            self.steps.append(
                _ConvStep(
                    layer=c,
                    name=name,
                    slot=j,
                    in_ch=mc.in_ch,
                    out_ch=mc.out_ch,
                    base=base,
                    scaled=scaled,
                    gain_bias=gain_bias,
                    gain_noise=gain_noise,
                    noise_buffer=noise,
                    const=const,
                    blur_weight=blur_weight,
                    input_table=table,
                )
            )
        self.demod_w2t = w2t  # [L, smax, Omax]

        self.rgbs: list[_RgbStep] = []
        for b, m in enumerate(rgbs):
            conv = m.conv
            up: tuple[Tensor, ...] = ()
            if b > 0 and self.skip:
                r = 4 * 2 ** (b - 1)  # resolution of the incoming skip image
                vert, horiz = m.upsample.taps
                a_v = fir_upsample_matrix(vert, r, m.upsample.factor, m.upsample.pad)
                a_h = fir_upsample_matrix(horiz, r, m.upsample.factor, m.upsample.pad)
                up = (torch.kron(a_v, a_h).t().contiguous(),) if r <= _DENSE_UPSAMPLE_MAX else (a_v, a_h.t())
            self.rgbs.append(
                _RgbStep(
                    slot=len(convs) + b,
                    in_ch=conv.in_ch,
                    weight=conv.weight[0, :, :, 0, 0] * conv.scale,
                    bias=m.bias.view(-1, 1).clone(),
                    up=up,
                )
            )
        self.conv_clamp = G.cfg.conv_clamp
        self._eps = torch.full((1, 1, 1), 1e-8)
        self.input = G.input.input

    def styles(self, ws: Tensor) -> tuple[Tensor, Tensor]:
        """``ws [N, num_ws, w_dim]`` -> (styles ``[M, N, smax]`` of the M modulated layers, styled convs
        first; sqrt2 * demodulation ``[L, N, Omax]`` of the L styled convs)."""
        rows = ws.index_select(1, self.style_rows).transpose(0, 1)  # [M, N, w_dim]
        styles = torch.baddbmm(self.style_bias, rows, self.style_weight)
        s2 = styles[: len(self.steps)].square()
        demod = torch.baddbmm(self._eps, s2, self.demod_w2t).rsqrt_().mul_(SQRT2)
        return styles, demod


def cpu_plan(G: nn.Module) -> CpuSynthesisPlan | None:
    """The cached plan of ``G``, rebuilt when a synthesis parameter or buffer changed; None where ``synthesize``
    does not apply (StyleGAN v1, the resnet architecture, trainable or non-float32 synthesis weights)."""
    cfg = G.cfg
    if cfg.version != 2 or cfg.architecture not in ("skip", "orig"):
        return None
    tensors: list[Tensor] = []
    rgb = (G.to_rgb1, G.to_rgbs) if cfg.architecture == "skip" else (G.to_rgb,)
    for module in (G.input, G.conv1, *rgb, G.convs, G.noises):
        _collect(module, tensors)
    key = []
    for t in tensors:
        if t.requires_grad:
            return None
        key.append((t.data_ptr(), t._version))
    key = tuple(key)
    plan = G.__dict__.get("_cpu_plan")
    if plan is None or plan.key != key:
        if any(t.dtype != torch.float32 or not t.is_cpu for t in tensors):  # a move or cast changes the key
            return None
        # Normal tensors even inside inference_mode: a later no-grad (not inference) call reuses them.
        with torch.inference_mode(False), torch.no_grad():
            plan = CpuSynthesisPlan(G, key)
        G.__dict__["_cpu_plan"] = plan  # a plain attribute: never saved, not a buffer
    return plan


def _collect(module: nn.Module, out: list[Tensor]) -> None:
    # Module.parameters() walks named_modules with memo sets: about 5x slower, measurable per render.
    out.extend(t for t in module._parameters.values() if t is not None)
    out.extend(t for t in module._buffers.values() if t is not None)
    for child in module._modules.values():
        _collect(child, out)


def synthesize(
    plan: CpuSynthesisPlan,
    ws: Tensor,
    noises: Sequence[Tensor | None],
    keep: Callable[[str, Tensor], None] | None = None,
) -> Tensor:
    """``ws [N, num_ws, w_dim]`` float32 -> image ``[N, C, R, R]`` float32 (contiguous).

    ``noises`` holds one noise map (``[1|N, 1, r, r]``) or None per styled conv, as ``Generator.make_noise``
    returns them; ``keep(name, features)``, when given, receives every capturable layer's output
    (``Generator.layer_names``).
    """
    n = ws.shape[0]
    styles, demod = plan.styles(ws)
    x = plan.input.expand(n, -1, -1, -1)  # conv1 reads its table, not x
    if keep is None:
        keep = _discard
    else:
        keep("input", x.contiguous(memory_format=torch.channels_last))
    img = None
    if not plan.skip:
        for step in plan.steps:
            x = _styled_conv(plan, step, x, styles, demod, noises[step.slot])
            keep(step.name, x)
        img = _to_rgb(plan, plan.rgbs[0], x, styles, None)
    for b, rgb in enumerate(plan.rgbs if plan.skip else ()):
        for step in plan.steps[max(0, 2 * b - 1) : 2 * b + 1]:
            x = _styled_conv(plan, step, x, styles, demod, noises[step.slot])
            keep(step.name, x)
        img = _to_rgb(plan, rgb, x, styles, img)
    keep("img", img)
    return img


def _discard(name: str, features: Tensor) -> None:
    pass


def _styled_conv(
    plan: CpuSynthesisPlan, step: _ConvStep, x: Tensor, styles: Tensor, demod: Tensor, noise: Tensor | None
) -> Tensor:
    mc = step.layer.conv
    n, _, h, w = x.shape
    s = styles[step.slot, :, : step.in_ch]  # [N, I]
    d = demod[step.slot, :, : step.out_ch]  # [N, O], times sqrt2
    base = step.base
    if noise is not None:
        noise = noise.to(torch.float32)  # explicit noise maps may come in another dtype
    if n > 1 or step.scaled:
        # Scale the activations by s, run the shared weight, scale the outputs by d (the same sum, regrouped).
        if noise is None:
            const = step.gain_bias.view(1, -1, 1, 1)
        elif noise is step.noise_buffer and step.const is not None:
            const = step.const
        else:
            const = torch.add(step.gain_bias.view(1, -1, 1, 1), noise, alpha=step.gain_noise)
        if step.input_table is not None:
            y = (s @ step.input_table).view(n, h, w, -1).permute(0, 3, 1, 2)
        else:
            xs = x * s.view(n, -1, 1, 1)
            wgt = base.permute(0, 3, 1, 2)  # channels_last view: [O, I, k, k] or, up-sampling, [I, O, k, k]
            y = _upsample_conv(step, xs, wgt) if mc.upsample else F.conv2d(xs, wgt, padding=mc.padding)
        y = torch.addcmul(const, y, d.view(n, -1, 1, 1), out=y)
    else:
        # Batch 1, activations larger than the weight: modulate and demodulate the weight itself.
        coef = d[0][:, None] * s[0][None, :]  # [O, I]
        if mc.upsample:
            y = _upsample_conv(
                step, x, (base * coef.t()[:, None, None, :]).permute(0, 3, 1, 2), step.gain_bias
            )
        else:
            wgt = (base * coef[:, None, None, :]).permute(0, 3, 1, 2)
            y = F.conv2d(x, wgt, step.gain_bias, padding=mc.padding)
        if noise is not None:
            y.add_(noise, alpha=step.gain_noise)
    y = F.leaky_relu_(y, 0.2)
    if plan.conv_clamp is not None:
        y.clamp_(-plan.conv_clamp, plan.conv_clamp)
    return y


def _upsample_conv(step: _ConvStep, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Stride-2 transposed conv with ``weight [I, O, k, k]``, then the FIR blur as a depthwise conv (+ bias)."""
    y = F.conv_transpose2d(x, weight, stride=2)
    p0, p1 = step.layer.conv.blur.pad
    if p0 != p1:
        y, p0 = F.pad(y, [p0, p1, p0, p1]), 0
    return F.conv2d(y, step.blur_weight, bias, padding=p0, groups=step.out_ch)


def _to_rgb(plan: CpuSynthesisPlan, rgb: _RgbStep, x: Tensor, styles: Tensor, img: Tensor | None) -> Tensor:
    n, i, h, w = x.shape
    s = styles[rgb.slot, :, : rgb.in_ch]  # [N, I]
    c = rgb.weight.shape[0]
    rows = x.permute(0, 2, 3, 1).reshape(n, h * w, i)  # a view for channels_last x
    if n == 1:
        out = torch.addmm(rgb.bias, rgb.weight * s, rows[0].t())  # [C, HW]
    else:
        out = torch.baddbmm(rgb.bias, rgb.weight * s[:, None, :], rows.transpose(1, 2))  # [N, C, HW]
    if plan.conv_clamp is not None:
        out = out.clamp_(-plan.conv_clamp, plan.conv_clamp)
    out = out.reshape(n * c, h * w)
    if img is not None:
        r = img.shape[2]
        if len(rgb.up) == 1:  # dense: upsampling and addition in one product
            out = torch.addmm(out, img.reshape(n * c, r * r), rgb.up[0])
        else:  # separable: horizontal, then vertical (which adds the ToRGB output)
            a_v, a_h_t = rgb.up
            z = (img.reshape(n * c * r, r) @ a_h_t).view(n * c, r, w)
            out = torch.baddbmm(out.view(n * c, h, w), a_v.expand(n * c, h, r), z)
    return out.view(n, c, h, w)
