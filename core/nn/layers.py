"""Equalised-learning-rate layers, FIR resampling and the other small pieces of StyleGAN networks.

Equalised learning rate (Karras et al. 2018, "Progressive Growing of GANs", sec. 4.1): weights are stored as
N(0, 1 / lr_mul) and scaled at run time by ``lr_mul / sqrt(fan_in)``, so Adam sees every layer at the same
dynamic range. FIR resampling uses the separable [1, 3, 3, 1] binomial filter of StyleGAN2 (Karras et al.
2020, appendix B). Module and parameter names follow the widely used rosinality layout so that existing
checkpoints load without conversion tables.

Everything here is pure PyTorch: no compiled extensions, works on CPU, CUDA and MPS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SQRT2 = math.sqrt(2.0)


def make_kernel(taps: Sequence[float]) -> Tensor:
    """Outer product of a 1-D FIR filter with itself, normalised to sum to one."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None] if k.ndim == 1 else k
    return k / k.sum()


def separable_taps(taps: Sequence[float], gain: float = 1.0) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Vertical and horizontal taps (Python floats) of ``make_kernel(taps) * gain`` for a 1-D ``taps``."""
    total = float(sum(taps))
    row = tuple(float(t) / total for t in taps)
    return tuple(t * gain for t in row), row


def _correlate(x: Tensor, coeffs: tuple[float, ...], dim: int, down: int) -> Tensor:
    """``out[i] = sum_j coeffs[j] * x[i*down + j]`` along ``dim`` (2 or 3), as shifted multiply-adds.

    One kernel per tap (``torch.add(acc, part, alpha=c)`` multiplies and accumulates at once), no convolution.
    """
    n_out = (x.shape[dim] - len(coeffs)) // down + 1
    span = (n_out - 1) * down + 1
    acc = None
    for j, c in enumerate(coeffs):
        part = x.narrow(dim, j, span)
        if down > 1:
            part = part[:, :, ::down] if dim == 2 else part[:, :, :, ::down]
        acc = part * c if acc is None else torch.add(acc, part, alpha=c)
    return acc


class _Fir1d(torch.autograd.Function):
    """1-D FIR correlation along one axis whose backward is again a (padded) FIR correlation.

    Autograd's own derivative of the shifted slices costs a zero-filled tensor, a copy and a multiply per tap;
    the adjoint written out is ``zero-insert (down) -> pad -> correlate with the reversed taps``: about a third
    of the kernels, nothing saved for backward (the filter is linear), and differentiable again for R1 / path
    length (the backward calls this same function).
    """

    @staticmethod
    def forward(ctx, x: Tensor, coeffs: tuple[float, ...], dim: int, down: int) -> Tensor:
        ctx.coeffs, ctx.dim, ctx.down, ctx.length = coeffs, dim, down, x.shape[dim]
        return _correlate(x, coeffs, dim, down)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _fir1d_adjoint(grad, ctx.coeffs, ctx.dim, ctx.down, ctx.length), None, None, None


def _fir1d_adjoint(grad: Tensor, coeffs: tuple[float, ...], dim: int, down: int, length: int) -> Tensor:
    k, n_out = len(coeffs), grad.shape[dim]
    span = (n_out - 1) * down + 1
    if down > 1:  # zero insertion: grad[i] lands at position i * down
        g = grad.unsqueeze(dim + 1)
        g = F.pad(g, [0, 0, 0, down - 1] if dim == 2 else [0, down - 1])
        shape = list(grad.shape)
        shape[dim] = n_out * down
        grad = g.reshape(shape).narrow(dim, 0, span)
    pads = (k - 1, length - span)
    grad = F.pad(grad, [0, 0, *pads] if dim == 2 else list(pads))
    return _Fir1d.apply(grad, coeffs[::-1], dim, 1)


def _fir(x: Tensor, taps: tuple[float, ...], dim: int, down: int) -> Tensor:
    # A true convolution with ``taps`` along ``dim``: correlation with the reversed taps. Elementwise work only,
    # so first and second derivatives (R1, path length) stay cheap on every device.
    return _Fir1d.apply(x, taps[::-1], dim, down)


FIR_IMPLS = ("taps", "depthwise", "folded", "fused")
_fir_impl = "taps"


_fold_inference = True


def set_fir_impl(impl: str, *, fold_inference: bool | None = None) -> None:
    """Choose how FIR resampling runs when gradients flow (training, projection). CPU inference always takes
    the depthwise path (fastest there); ``"depthwise"`` also forces it everywhere else.

    ``"taps"``: separable multiply-adds (elementwise kernels only; many small launches). ``"depthwise"``: one
    grouped (groups=C) convolution / transposed convolution per filter. ``"folded"``: zero insertion, padding
    and one single-channel convolution over ``N*C`` maps. ``"fused"``: where a filter sits next to a
    convolution (the up-sampling style conv, the discriminator's down-sampling convs) it is folded into that
    convolution's weights (``fir_fold``): filter and conv become ONE dense (transposed) convolution with a
    larger kernel (more FLOPs, far fewer memory passes); stand-alone filters (the 3-channel skip image,
    StyleGAN v1's up-sampling) run as ``"taps"``. All compute the same function; they differ in speed per
    device and in the cost of double backward (R1, path length). Measured on an H100 (config-F, bf16):
    ``"taps"`` trains fastest of those timed; a ``"fused"`` training step had not finished warming up after
    150 s there, so it is not a training default. GPU inference without gradients folds unless
    ``fold_inference=False`` (then it runs the transposed 3x3 conv and the filter separately: a quarter of the
    up-sampling FLOPs, one more memory pass, which ``torch.compile`` can fuse with the bias / noise / activation).
    """
    global _fir_impl, _fold_inference
    if impl not in FIR_IMPLS:
        raise ValueError(f"FIR implementation must be one of {FIR_IMPLS}, got {impl!r}")
    _fir_impl = impl
    if fold_inference is not None:
        _fold_inference = bool(fold_inference)


def get_fir_impl() -> str:
    return _fir_impl


FOLD_FORMS = ("transposed", "polyphase")
_fold_form = "polyphase"


def set_fold_form(form: str) -> None:
    """How a convolution with a FIR filter folded into it runs (wherever folding is active).

    ``"transposed"``: the generator's up-sampling conv as one stride-2 transposed convolution with a ``k + 3``
    kernel, the discriminator's down-sampling conv as one stride-2 convolution with it. ``"polyphase"``: the
    same sums regrouped by output phase -- up-sampling becomes a stride-1 ``k x k`` convolution to ``4 * O``
    channels followed by ``pixel_shuffle``; down-sampling is ``pixel_unshuffle`` followed by a stride-1
    convolution over ``4 * I`` channels. Same FLOPs, but dense stride-1 GEMM shapes (wide outputs where the
    up-sampling conv had 32 channels at 1024 px) instead of cuDNN's strided / transposed kernels.
    """
    global _fold_form
    if form not in FOLD_FORMS:
        raise ValueError(f"fold form must be one of {FOLD_FORMS}, got {form!r}")
    _fold_form = form


def get_fold_form() -> str:
    return _fold_form


def polyphase_up_weight(weight: Tensor, crop: int, groups: int = 1) -> tuple[Tensor, int, int]:
    """Turn a stride-2 transposed-conv weight into the equivalent stride-1 conv weight of its 4 output phases.

    ``F.conv_transpose2d(x, weight, stride=2)`` cropped by ``crop`` pixels at the start of each axis equals
    ``pixel_shuffle(F.conv2d(pad(x, before, after), W), 2)``: output pixel ``2m + p`` of the transposed
    conv is ``sum_i x[i] g[2(m - i) + p + crop]``, a ``K``-tap correlation of ``x`` for each phase ``p``.

    Args:
        weight: ``[groups * I, O, L, L]`` (``conv_transpose2d`` layout).
        crop: leading crop of the full transposed-conv output.

    Returns:
        ``(W [groups * 4 * O, I, K, K], before, after)``: the conv weight (channel ``4 * o + 2 * py + px``
        holds phase ``(py, px)`` of output channel ``o``, ``pixel_shuffle``'s order) and the padding of ``x``.
    """
    gi, o, length, _ = weight.shape
    before = (length - 1 - crop) // 2  # the largest j = m - i that reaches a tap
    after = (crop + 1) // 2  # -(smallest j)
    k = before + after + 1
    # Phase p reads taps t_u = 2 * (before - u) + p + crop, u = 0..K-1: a reversed stride-2 slice of the
    # weight (slices only: no index tensor, so it runs inside CUDA graph capture); out-of-range taps are zero.
    first = [p + crop - 2 * after for p in (0, 1)]  # the smallest tap of each phase
    lo = max(0, -min(first))
    hi = max(0, max(first) + 2 * (k - 1) - (length - 1))
    padded = F.pad(weight, [lo, hi, lo, hi]) if lo or hi else weight

    def phases(t: Tensor, dim: int) -> Tensor:  # [.., L, ..] -> [.., 2, K, ..] (phase, tap u)
        parts = [
            t.narrow(dim, f + lo, 2 * k - 1)[(slice(None),) * dim + (slice(None, None, 2),)] for f in first
        ]
        return torch.stack([part.flip(dim) for part in parts], dim)

    w = phases(phases(padded, 2), 4)  # [gI, O, 2, K, 2, K]
    w = w.reshape(groups, gi // groups, o, 2, k, 2, k).permute(0, 2, 3, 5, 1, 4, 6)
    return w.reshape(groups * o * 4, gi // groups, k, k), before, after


def polyphase_down_weight(weight: Tensor) -> Tensor:
    """The stride-1 weight over ``pixel_unshuffle(x, 2)`` equal to a stride-2 correlation with ``weight``.

    ``out[m] = sum_t x[2m + t] g[t] = sum_{a, q} unshuffled_q[m + a] g[2a + q]``; ``weight [O, I, L, L]``
    becomes ``[O, 4 * I, ceil(L / 2), ceil(L / 2)]`` with input channel ``4 * i + 2 * qy + qx``.
    """
    o, i, length, _ = weight.shape
    k = (length + 1) // 2
    if length % 2:
        weight = F.pad(weight, [0, 1, 0, 1])
    w = weight.reshape(o, i, k, 2, k, 2).permute(0, 1, 3, 5, 2, 4)  # [O, I, qy, qx, a, b]
    return w.reshape(o, 4 * i, k, k)


def fold_active(x: Tensor, prefer: bool | None = None) -> bool:
    """Whether convolutions adjacent to a FIR filter fold it into their weights for input ``x``.

    ``prefer`` (a module's ``fold_fir``; None = the process-wide setting) chooses for GPU inference without
    gradients; ``"fused"`` training folds regardless, CPU and ``"depthwise"`` never do.
    """
    if _fir_impl == "fused":
        return True
    return (
        (_fold_inference if prefer is None else prefer)
        and x.device.type != "cpu"
        and _fir_impl != "depthwise"
        and not (x.requires_grad and torch.is_grad_enabled())
    )


def fir_fold(weight: Tensor, kernel: Tensor) -> Tensor:
    """Full 2-D convolution of every ``k x k`` slice of ``weight [A, B, k, k]`` with ``kernel [kh, kw]``.

    A FIR filter applied before or after a convolution is a convolution too, and the two compose into one
    convolution with a ``(k + kh - 1)`` kernel (associativity). Computed in (at least) float32 outside autocast:
    the weights are small, the result is cast back to ``weight.dtype``.
    """
    a, b, k1, k2 = weight.shape
    kh, kw = kernel.shape
    dtype = torch.promote_types(weight.dtype, torch.float32)
    with torch.autocast(weight.device.type, enabled=False):
        out = F.conv2d(
            weight.to(dtype).reshape(a * b, 1, k1, k2),
            kernel.to(dtype).flip([0, 1])[None, None],
            padding=(kh - 1, kw - 1),
        )
    return out.reshape(a, b, k1 + kh - 1, k2 + kw - 1).to(weight.dtype)


def upfirdn2d(
    x: Tensor,
    kernel: Tensor,
    *,
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int] = (0, 0),
    taps: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
) -> Tensor:
    """Upsample by zero insertion, pad, filter with ``kernel`` (true convolution), downsample by striding.

    Args:
        x: ``[N, C, H, W]`` feature maps.
        kernel: ``[kh, kw]`` FIR filter.
        up, down: integer factors (same on both axes).
        pad: ``(before, after)`` padding applied on both axes after upsampling; negative values crop.
        taps: the kernel's separable (vertical, horizontal) taps when known; then the filter runs as
            elementwise multiply-adds instead of a convolution.

    Returns:
        ``[N, C, (H*up + pad0 + pad1 - kh) // down + 1, ...]``.
    """
    if _fir_impl == "depthwise" or (
        x.device.type == "cpu" and not (x.requires_grad and torch.is_grad_enabled())
    ):
        return _upfirdn2d_depthwise(x, kernel, up=up, down=down, pad=pad)
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if p0 < 0 or p1 < 0:
        x = x[:, :, max(-p0, 0) : x.shape[2] - max(-p1, 0), max(-p0, 0) : x.shape[3] - max(-p1, 0)]
    if taps is not None and _fir_impl in ("taps", "fused"):
        return _fir(_fir(x, taps[0], 2, down), taps[1], 3, down)
    # General kernel: fold channels into the batch and run ONE single-channel convolution (a depthwise conv
    # with groups=C would differentiate twice one group at a time).
    hp, wp = x.shape[2], x.shape[3]
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None]
    x = F.conv2d(x.reshape(n * c, 1, hp, wp), weight, stride=down)
    return x.reshape(n, c, x.shape[2], x.shape[3])


def _upfirdn2d_depthwise(x: Tensor, kernel: Tensor, *, up: int, down: int, pad: tuple[int, int]) -> Tensor:
    # Inference on CPU: one depthwise (groups=C) oneDNN convolution, about 25x faster than the multiply-adds
    # and channels_last friendly. Upsampling is a transposed convolution (polyphase: no zero insertion); its
    # output is the full convolution of the zero-inserted input minus up-1 trailing zeros, cropped to `pad`.
    c = x.shape[1]
    kh, kw = kernel.shape
    p0, p1 = pad
    if up > 1:
        weight = kernel.to(x.dtype)[None, None].expand(c, 1, kh, kw)
        before, after = p0 - (kh - 1), p1 - (kh - up)  # F.pad amounts relative to the transposed conv output
        if before == after and before <= 0:
            out = F.conv_transpose2d(x, weight, stride=up, padding=-before, groups=c)
        else:
            out = F.pad(F.conv_transpose2d(x, weight, stride=up, groups=c), [before, after, before, after])
        return out if down == 1 else out[:, :, ::down, ::down]
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(c, 1, kh, kw)
    if p0 == p1 and p0 >= 0:
        return F.conv2d(x, weight, stride=down, padding=p0, groups=c)
    return F.conv2d(F.pad(x, [p0, p1, p0, p1]), weight, stride=down, groups=c)


class Blur(nn.Module):
    """FIR low-pass filter with padding; ``upsample_factor`` rescales the kernel to keep DC gain."""

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * upsample_factor**2
        self.register_buffer("kernel", k)
        self.taps = separable_taps(kernel, upsample_factor**2) if len(kernel) == k.shape[0] else None
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad, taps=self.taps)


class Upsample(nn.Module):
    """2x FIR upsampling (zero insertion + [1,3,3,1] filter)."""

    def __init__(self, kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * factor**2)
        self.taps = separable_taps(kernel, factor**2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad, taps=self.taps)


class Downsample(nn.Module):
    """2x FIR downsampling."""

    def __init__(self, kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel))
        self.taps = separable_taps(kernel)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, down=self.factor, pad=self.pad, taps=self.taps)


def fused_leaky_relu(
    x: Tensor, bias: Tensor | None, negative_slope: float = 0.2, scale: float = SQRT2
) -> Tensor:
    """``leaky_relu(x + bias) * sqrt(2)``: bias-add and activation with StyleGAN's gain."""
    if bias is not None:
        shape = [1, -1] + [1] * (x.ndim - 2)
        x = x + bias.to(x.dtype).view(shape)
    x = F.leaky_relu(x, negative_slope)
    return x if scale == 1.0 else x * scale


class FusedLeakyReLU(nn.Module):
    """Per-channel bias followed by scaled leaky ReLU (parameter ``bias`` as in rosinality)."""

    def __init__(self, channels: int, bias: bool = True):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias)


class PixelNorm(nn.Module):
    """Normalise each vector to unit second moment (StyleGAN's z normalisation)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate and optional fused leaky ReLU.

    ``weight`` is stored as N(0, 1/lr_mul) and used as ``weight * lr_mul / sqrt(in_dim)``; ``bias`` is used
    as ``bias * lr_mul``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: str | None = None,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, activation={self.activation}"


class EqualConv2d(nn.Module):
    """2-D convolution with equalised learning rate."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0, bias: bool = True
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d -> [FusedLeakyReLU], the discriminator's conv unit (rosinality layout).

    When folding is active (``fold_active``) a down-sampling unit runs blur + strided conv as one strided
    convolution with the filter folded into the weights.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        downsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        bias: bool = True,
        activate: bool = True,
    ):
        layers: list[nn.Module] = []
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_ch, out_ch, kernel_size, stride, padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_ch, bias=bias))
        super().__init__(*layers)
        self.downsample = downsample

    fold_fir: bool | None = None  # per-module choice for GPU inference (see ``fold_active``)

    def forward(self, x: Tensor) -> Tensor:
        if not (self.downsample and fold_active(x, self.fold_fir)):
            return super().forward(x)
        blur, conv = self[0], self[1]
        # blur then correlate with w == correlate with (w * flipped blur kernel), the full convolution.
        weight = fir_fold(conv.weight * conv.scale, blur.kernel.flip([0, 1]))
        p0, p1 = blur.pad
        if _fold_form == "polyphase" and (x.shape[2] + p0 + p1) % 2 == 0 and (x.shape[3] + p0 + p1) % 2 == 0:
            x = F.pixel_unshuffle(F.pad(x, [p0, p1, p0, p1]), 2)
            x = F.conv2d(x, polyphase_down_weight(weight).to(x.dtype), conv.bias)
        else:
            if p0 != p1:
                x, p0 = F.pad(x, [p0, p1, p0, p1]), 0
            x = F.conv2d(x, weight.to(x.dtype), conv.bias, stride=conv.stride, padding=p0)
        for layer in list(self)[2:]:
            x = layer(x)
        return x


class ResBlock(nn.Module):
    """Residual discriminator block: two 3x3 convs (second one downsamples) plus a 1x1 skip, scaled 1/sqrt2."""

    def __init__(self, in_ch: int, out_ch: int, blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(
            in_ch, out_ch, 1, downsample=True, blur_kernel=blur_kernel, activate=False, bias=False
        )

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) * (1 / SQRT2)


def minibatch_stddev(x: Tensor, group_size: int = 4, num_features: int = 1) -> Tensor:
    """Append the per-group standard deviation of features as extra channel(s) (Karras et al. 2018).

    The group is the largest divisor of the batch not above ``group_size``, so any batch size works.
    """
    n, c, h, w = x.shape
    g = min(group_size, n)
    while n % g:
        g -= 1
    y = x.reshape(g, -1, num_features, c // num_features, h, w).float()
    y = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8)  # [N/g, F, C/F, H, W]
    y = y.mean(dim=[2, 3, 4]).to(x.dtype)  # [N/g, F]
    y = y.reshape(-1, num_features, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class ConstantInput(nn.Module):
    """The learned 4x4 constant that starts synthesis (parameter ``input``)."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.input.expand(batch, -1, -1, -1)


class NoiseInjection(nn.Module):
    """Adds a single-channel noise image scaled by a learned strength ``weight``.

    StyleGAN2 learns one scalar per layer (``channels=1``, rosinality/NVIDIA layout); StyleGAN v1 learns one
    factor per feature map ("B" in the paper), ``channels=C``.
    """

    def __init__(self, channels: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor, noise: Tensor | None) -> Tensor:
        if noise is None:
            return x
        weight = self.weight.to(x.dtype)
        if weight.numel() > 1:
            weight = weight.view(1, -1, 1, 1)
        return torch.addcmul(x, weight, noise.to(x.dtype))  # x + weight * noise in one pass
