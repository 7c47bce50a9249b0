"""Style blocks: StyleGAN2's modulated convolution and StyleGAN's AdaIN convolution.

Modulated convolution (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", eq. 1-3):
``w'_ijk = s_i * w_ijk`` (modulate input channel i by the style), then ``w''_ijk = w'_ijk / sqrt(sum_ik
w'_ijk^2 + eps)`` (demodulate each output channel j). Two equivalent evaluation orders are implemented:

* *fused*: build one modulated weight per sample and run a grouped convolution (best for batch 1);
* *activation scaling*: scale input activations by ``s``, run one shared convolution, scale outputs by the
  demodulation coefficients (best for batches: one dense conv, cuDNN-friendly, channels_last friendly).

AdaIN (Karras et al. 2019, "A Style-Based Generator Architecture", eq. 1): instance-normalise every feature
map, then scale and bias it with a per-layer affine transform of w.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.nn.layers import (
    SQRT2,
    Blur,
    EqualConv2d,
    EqualLinear,
    FusedLeakyReLU,
    NoiseInjection,
    Upsample,
    fir_fold,
    fold_active,
    fused_leaky_relu,
    get_fold_form,
    polyphase_up_weight,
)


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are modulated (and optionally demodulated) per sample by a style vector.

    Parameters (rosinality names): ``weight [1, O, I, k, k]``, ``modulation`` (EqualLinear w_dim -> I, bias
    initialised to 1), and ``blur.kernel`` when upsampling.
    """

    fold_fir: bool | None = None  # per-module choice for GPU inference (see ``core.nn.layers.fold_active``)

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.upsample = upsample
        self.demodulate = demodulate
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)

    def forward(self, x: Tensor, w: Tensor, fused: bool | None = None) -> Tensor:
        """Args: x ``[N, I, H, W]``; w ``[N, w_dim]``; fused: force an evaluation order (None = by batch)."""
        n = x.shape[0]
        styles = self.modulation(w)  # [N, I]
        if fused is None:
            fused = n == 1
        if fused and n == 1:
            return self._forward_single(x, styles)
        weight = self.weight[0] * self.scale  # [O, I, k, k]
        if fused:
            return self._forward_fused(x, styles, weight)
        if self.kernel_size == 1 and not self.upsample:
            # 1x1 (toRGB): per-sample weights are tiny, so modulate them and run one batched matrix product
            # instead of scaling (reading and writing) the whole activation tensor first.
            wgt = weight[None, :, :, 0, 0].float() * styles.float()[:, None, :]  # [N, O, I]
            if self.demodulate:
                wgt = wgt * (wgt.square().sum(dim=2, keepdim=True) + 1e-8).rsqrt()
            return conv1x1(x, wgt.to(x.dtype))
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        if self.upsample:
            x = self._up(x, weight.transpose(0, 1).to(x.dtype))
        else:
            x = F.conv2d(x, weight.to(x.dtype), padding=self.padding)
        if self.demodulate:
            x = x * self._demod_coefficients(styles, weight).to(x.dtype).reshape(n, -1, 1, 1)
        return x

    def _demod_coefficients(self, styles: Tensor, weight: Tensor) -> Tensor:
        # sum_{i,k} (s_i w_ijk)^2 = sum_i s_i^2 * sum_k w_ijk^2; elementwise in fp32 so autocast cannot round it.
        w2 = weight.float().square().sum(dim=[2, 3])  # [O, I]
        return ((styles.float().square()[:, None, :] * w2[None]).sum(dim=2) + 1e-8).rsqrt()  # [N, O]

    def _frozen(self) -> tuple[Tensor, Tensor] | None:
        """Cached ``(w2, base)`` for a frozen weight on CPU, or None when the weight may train.

        ``w2[o, i] = sum_k (scale * w_oik)^2`` (for demodulation) and ``base`` = ``scale * w`` laid out so its
        channel axis is innermost: ``[O, k, k, I]`` (conv) or ``[I, k, k, O]`` (transposed conv), which
        makes both the style multiply and oneDNN's channels_last weight read contiguous. Only used when the
        weight does not require grad (loaded models are frozen); the key holds the weight's storage address and
        version counter, so in-place updates (``copy_``, ``load_state_dict``, EMA ``lerp_``) invalidate it.
        """
        w = self.weight
        if w.requires_grad or w.device.type != "cpu":
            return None
        key = (w.data_ptr(), w._version, w.dtype)
        cached = self.__dict__.get("_frozen_cache")
        if cached is None or cached[0] != key:
            # Normal tensors even inside inference_mode: a later autograd pass (e.g. optimising w) may save them.
            with torch.inference_mode(False), torch.no_grad():
                ws = w[0] * self.scale  # [O, I, k, k]
                w2 = ws.float().square().sum(dim=[2, 3])
                base = ws.permute(1, 2, 3, 0) if self.upsample else ws.permute(0, 2, 3, 1)
                cached = (key, w2, base.contiguous())
            self.__dict__["_frozen_cache"] = cached  # a plain attribute: never saved, not a buffer
        return cached[1], cached[2]

    def _forward_single(self, x: Tensor, styles: Tensor) -> Tensor:
        """Batch 1: fold style and demodulation into one coefficient per (out, in) channel pair.

        ``w''_oik = w_oik * d_o * s_i`` with ``d_o = rsqrt(sum_i s_i^2 sum_k w_oik^2)``: the weight is read once
        instead of modulated, squared, summed and rescaled. For a frozen weight on CPU it may instead scale the
        (smaller) activations by ``s`` and ``d`` around the shared, cached weight -- the same sum, reordered.
        """
        k = self.kernel_size
        s = styles[0]
        frozen = self._frozen()
        if frozen is None:
            w2 = (self.weight[0].float() * self.scale).square().sum(dim=[2, 3])
        else:
            w2, base = frozen
        d = (w2 @ s.float().square() + 1e-8).rsqrt().to(s.dtype) if self.demodulate else None
        if frozen is None:
            coef = s[None, :] if d is None else d[:, None] * s[None, :]
            wgt = (self.weight[0] * (coef * self.scale)[:, :, None, None]).to(x.dtype)  # [O, I, k, k]
            if k == 1 and not self.upsample:
                return conv1x1(x, wgt[:, :, 0, 0])
            if self.upsample:
                return self._up(x, wgt.transpose(0, 1))
            return F.conv2d(x, wgt, padding=self.padding)
        h, w_ = x.shape[2], x.shape[3]
        out_px = h * w_ * (4 if self.upsample else 1)
        if base.numel() > self.in_ch * h * w_ + self.out_ch * out_px:
            # Activation scaling: the activations are smaller than the weight (low resolutions).
            xs = x * s.to(x.dtype)[None, :, None, None]
            wgt = base.permute(0, 3, 1, 2).to(x.dtype)  # channels_last view of the cached weight
            if self.upsample:
                out = self._up(xs, wgt)
            elif k == 1:
                out = conv1x1(xs, wgt[:, :, 0, 0])
            else:
                out = F.conv2d(xs, wgt, padding=self.padding)
            return out if d is None else out * d.to(out.dtype)[None, :, None, None]
        coef = s[None, :].expand(self.out_ch, -1) if d is None else d[:, None] * s[None, :]  # [O, I]
        if self.upsample:
            wgt = (base * coef.t()[:, None, None, :]).to(x.dtype).permute(0, 3, 1, 2)  # [I, O, k, k]
            return self._up(x, wgt)
        wgt = (base * coef[:, None, None, :]).to(x.dtype).permute(0, 3, 1, 2)  # [O, I, k, k]
        if k == 1:
            return conv1x1(x, wgt[:, :, 0, 0])
        return F.conv2d(x, wgt, padding=self.padding)

    def _up(self, x: Tensor, weight: Tensor, groups: int = 1) -> Tensor:
        """Transposed stride-2 convolution with ``weight [I, O, k, k]`` followed by the blur.

        With folding active the blur is folded into the weight: ``(x conv^T w) * K == x conv^T (w * K)``,
        one dense transposed convolution with a ``k + 3`` kernel, cropped by the transposed conv's padding.
        """
        if not fold_active(x, self.fold_fir):
            return self.blur(F.conv_transpose2d(x, weight, stride=2, groups=groups))
        kernel = self.blur.kernel
        folded = fir_fold(weight, kernel)
        if get_fold_form() == "polyphase":
            crop0, crop1 = kernel.shape[0] - 1 - self.blur.pad[0], kernel.shape[0] - 1 - self.blur.pad[1]
            wgt, before, after = polyphase_up_weight(folded, crop0, groups)
            if 2 * (x.shape[2] - 1) + folded.shape[-1] - crop0 - crop1 == 2 * x.shape[2]:  # no ragged edge
                if before != after:
                    x, before = F.pad(x, [before, after, before, after]), 0
                return F.pixel_shuffle(F.conv2d(x, wgt.to(x.dtype), padding=before, groups=groups), 2)
        return _conv_transpose_folded(x, folded, kernel.shape[0], self.blur.pad, groups)

    def _forward_fused(self, x: Tensor, styles: Tensor, weight: Tensor) -> Tensor:
        n, _, h, w_ = x.shape
        k = self.kernel_size
        wgt = weight[None] * styles[:, None, :, None, None]  # [N, O, I, k, k]
        if self.demodulate:
            wgt = (
                wgt
                * (wgt.float().square().sum(dim=[2, 3, 4]) + 1e-8)
                .rsqrt()
                .to(wgt.dtype)[..., None, None, None]
            )
        wgt = wgt.to(x.dtype)
        if self.upsample:
            # Transposed conv wants [in, out, k, k] per group.
            wgt = wgt.transpose(1, 2).reshape(n * self.in_ch, self.out_ch, k, k)
            out = self._up(x.reshape(1, n * self.in_ch, h, w_), wgt, groups=n)
            return out.reshape(n, self.out_ch, out.shape[2], out.shape[3])
        if k == 1:
            return conv1x1(x, wgt[:, :, :, 0, 0])
        out = F.conv2d(
            x.reshape(1, n * self.in_ch, h, w_),
            wgt.reshape(n * self.out_ch, self.in_ch, k, k),
            padding=self.padding,
            groups=n,
        )
        return out.reshape(n, self.out_ch, h, w_)


def _conv_transpose_folded(
    x: Tensor, weight: Tensor, fir_len: int, pad: tuple[int, int], groups: int = 1
) -> Tensor:
    """Stride-2 transposed convolution with a FIR-folded ``weight``, cropped as ``upfirdn2d(pad=pad)`` crops.

    Output ``o`` of the filter is element ``o + fir_len - 1 - pad[0]`` of the full transposed convolution;
    equal crops on both sides are the transposed convolution's own ``padding``.
    """
    crop0, crop1 = fir_len - 1 - pad[0], fir_len - 1 - pad[1]
    weight = weight.to(x.dtype)
    if crop0 == crop1 and crop0 >= 0:
        return F.conv_transpose2d(x, weight, stride=2, padding=crop0, groups=groups)
    out = F.conv_transpose2d(x, weight, stride=2, groups=groups)
    return F.pad(out, [-crop0, -crop1, -crop0, -crop1])


def conv1x1(x: Tensor, weight: Tensor) -> Tensor:
    """1x1 convolution as a matrix product (CPU convolutions take a slow path for few output channels).

    Args:
        x: ``[N, I, H, W]`` (NCHW or channels_last; the output keeps the layout).
        weight: ``[O, I]`` shared, or ``[N, O, I]`` per sample.

    Returns:
        ``[N, O, H, W]``.
    """
    n, i, h, w = x.shape
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        rows = x.permute(0, 2, 3, 1).reshape(n, h * w, i)  # a view: NHWC is [N, HW, I] row-major
        o = weight.shape[-2]
        if x.is_cuda and o % 8:
            # GEMMs with a ragged output width (3 for RGB) fall back to slow unaligned kernels on GPUs: pad the
            # weight with zero rows to a multiple of 8 and keep the first o columns (a strided view).
            weight = F.pad(weight, [0, 0, 0, 8 - o % 8])
        out = (rows @ weight.transpose(-1, -2))[..., :o]  # [N, HW, O]
        return out.reshape(n, h, w, -1).permute(0, 3, 1, 2)
    out = weight @ x.reshape(n, i, h * w)  # [N, O, HW]
    return out.reshape(n, -1, h, w)


def gain_clamp(x: Tensor, gain: float, conv_clamp: float | None) -> Tensor:
    """Scale a layer's output (resnet generators use gain sqrt(1/2)) and clamp it to ``+-conv_clamp * gain``
    as NVIDIA's mixed-precision models do (a no-op for rosinality-style models, ``conv_clamp=None``)."""
    if gain != 1.0:
        x = x * gain
    if conv_clamp is not None:
        x = x.clamp(-conv_clamp * gain, conv_clamp * gain)
    return x


class StyledConv(nn.Module):
    """StyleGAN2 style block: modulated conv -> noise -> bias + leaky ReLU (``conv``, ``noise``, ``activate``)."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        demodulate: bool = True,
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, demodulate, upsample, blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)
        self.conv_clamp = conv_clamp

    def forward(
        self, x: Tensor, w: Tensor, noise: Tensor | None = None, gain: float = 1.0, fused: bool | None = None
    ) -> Tensor:
        return gain_clamp(
            self.activate(self.noise(self.conv(x, w, fused=fused), noise)), gain, self.conv_clamp
        )


class AdaINConv(nn.Module):
    """StyleGAN (v1) style block: [FIR upsample] -> conv -> noise -> bias + leaky ReLU -> AdaIN(w).

    ``style`` maps w to a per-channel scale (bias initialised to 1) and bias (initialised to 0). Noise uses a
    learned per-channel strength, as in the StyleGAN paper.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        conv_clamp: float | None = None,
    ):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = EqualConv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False)
        self.noise = NoiseInjection(out_ch)
        self.activate = FusedLeakyReLU(out_ch)
        self.style = EqualLinear(style_dim, 2 * out_ch, bias_init=0.0)
        with torch.no_grad():
            self.style.bias[:out_ch] = 1.0
        self.out_ch = out_ch
        self.conv_clamp = conv_clamp

    def forward(
        self, x: Tensor, w: Tensor, noise: Tensor | None = None, gain: float = 1.0, fused: bool | None = None
    ) -> Tensor:
        # ``fused`` (the modulated-conv evaluation order) has no meaning here; accepted for a uniform call.
        # No folding here: the conv zero-pads the cropped filter output, which a folded kernel would not.
        if hasattr(self, "upsample"):
            x = self.upsample(x)
        # The activation's sqrt(2) gain is left out: the instance norm below divides any scale out again.
        x = fused_leaky_relu(self.noise(self.conv(x), noise), self.activate.bias, scale=1.0)
        # AdaIN: s * (x - mean) / std + b == (x - mean) * a + b with a = s / std, per sample and channel, the
        # statistics and coefficients in fp32 (under autocast too). Two-pass statistics (centre, then mean
        # square): as exact as var_mean and several times faster on CPUs.
        x32 = x.float()
        centred = x32 - x32.mean(dim=[2, 3], keepdim=True)
        var = centred.square().mean(dim=[2, 3], keepdim=True)
        s = self.style(w).float()
        a = s[:, : self.out_ch, None, None] * torch.rsqrt(var + 1e-8)
        x = torch.addcmul(s[:, self.out_ch :, None, None], centred, a).to(x.dtype)
        return gain_clamp(x, gain, self.conv_clamp)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB (no demodulation) plus bias; adds the upsampled skip image when given."""

    def __init__(
        self,
        in_ch: int,
        style_dim: int,
        upsample: bool = True,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        out_ch: int = 3,
        conv_clamp: float | None = None,
    ):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, out_ch, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))
        self.conv_clamp = conv_clamp

    def forward(self, x: Tensor, w: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x, w) + self.bias.to(x.dtype)
        if self.conv_clamp is not None:
            out = out.clamp(-self.conv_clamp, self.conv_clamp)
        if skip is not None:
            out = out + self.upsample(skip).to(out.dtype)
        return out


__all__ = ["SQRT2", "AdaINConv", "ModulatedConv2d", "StyledConv", "ToRGB", "conv1x1"]
