"""rosinality/stylegan2-pytorch checkpoints (``.pt``) and the pSp / e4e decoders that vendor its model.

The StyleGAN2 generator (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN") in
rosinality's layout is StyleScope's own module layout, so its ``g_ema`` state dict loads one to one. What the
file does not store (image size, channel widths, mapping depth, style dimension) is inferred from tensor shapes,
never from ``args.channel_multiplier`` (checkpoints with non-standard widths exist):

* ``style.{1..n_mlp}.weight [w_dim, z_dim]``: mapping depth and dimensions;
* ``input.input [1, C4, 4, 4]`` and ``convs.{2k}.conv.weight [1, O, I, 3, 3]``: width ``O`` at ``2**(k+3)`` px;
* the number of ``convs`` gives the resolution; ``to_rgb1.conv.weight [1, C, I, 1, 1]`` the image channels.

File shapes handled: ``train.py`` checkpoints ``{g, d, g_ema, g_optim, d_optim, args, ada_aug_p}``,
``convert_weight.py`` files ``{g_ema, latent_avg}``, bare ``g_ema`` state dicts, and pSp/e4e checkpoints
``{state_dict: {encoder.*, decoder.*}, opts, latent_avg [n_styles, w_dim]}`` (decoder only).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from core.errors import CheckpointError
from core.models.stylegan import DiscriminatorConfig, GeneratorConfig, noise_resolution

ROSINALITY_MARKERS = ("style.1.weight", "input.input", "conv1.conv.weight")


@dataclass
class ForeignGenerator:
    """A foreign generator checkpoint turned into our layout, before any module is built.

    Attributes:
        fmt: detected format name.
        config: the inferred :class:`GeneratorConfig`.
        state_dict: tensors in StyleScope's key layout (without ``w_avg`` and FIR kernels).
        w_avg: the file's average w, or None (to be estimated).
        notes: provenance notes for :func:`core.checkpoints.describe_checkpoint`.
        extra: JSON-able facts about the file (args, init kwargs, top-level keys, ...).
        fill: keys our module may keep from its own initialisation (with a note already recorded).
    """

    fmt: str
    config: GeneratorConfig
    state_dict: dict[str, Tensor]
    w_avg: Tensor | None
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    fill: Callable[[str], bool] = lambda key: False


def is_rosinality_state_dict(sd: Any, prefix: str = "") -> bool:
    """True when ``sd`` looks like a rosinality StyleGAN2 generator state dict (with key ``prefix``)."""
    return isinstance(sd, Mapping) and all(isinstance(sd.get(prefix + k), Tensor) for k in ROSINALITY_MARKERS)


def require_tensor(
    sd: Mapping[str, Any], key: str, ndim: int, source: str, *, name: str | None = None
) -> Tensor:
    """``sd[key]`` if it is a tensor of ``ndim`` dimensions, else a CheckpointError naming it (as ``name``)."""
    name = key if name is None else name
    t = sd.get(key)
    if not isinstance(t, Tensor):
        raise CheckpointError(f"{source}: missing tensor {name!r}")
    if t.ndim != ndim:
        raise CheckpointError(
            f"{source}: tensor {name!r} has shape {list(t.shape)}, expected {ndim} dimensions"
        )
    return t


def _shape(sd: Mapping[str, Any], key: str, ndim: int, source: str) -> tuple[int, ...]:
    return tuple(require_tensor(sd, key, ndim, source).shape)


def infer_generator_config(sd: Mapping[str, Any], *, source: str, lr_mlp: float = 0.01) -> GeneratorConfig:
    """Infer a :class:`GeneratorConfig` from a rosinality StyleGAN2 generator state dict's shapes.

    Args:
        sd: the ``g_ema`` state dict (any device, including meta).
        source: file name for error messages.
        lr_mlp: the mapping learning-rate multiplier (not recoverable from shapes; rosinality's default).

    Raises:
        CheckpointError: a missing or misshapen key, named.
    """
    n_mlp = 0
    while isinstance(sd.get(f"style.{n_mlp + 1}.weight"), Tensor):
        n_mlp += 1
    if n_mlp == 0:
        raise CheckpointError(f"{source}: missing tensor 'style.1.weight' (no mapping network)")
    w_dim, z_dim = _shape(sd, "style.1.weight", 2, source)
    c4 = _shape(sd, "input.input", 4, source)[1]
    conv_ids = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"convs\.(\d+)\.conv\.weight", k)))
    n_blocks = len(conv_ids) // 2
    if n_blocks < 1 or conv_ids != list(range(2 * n_blocks)):
        raise CheckpointError(
            f"{source}: expected convs.0..convs.{{2k-1}} conv weights, found ids {conv_ids[:12]}"
        )
    channels = [c4]
    for b in range(n_blocks):
        shape = _shape(sd, f"convs.{2 * b}.conv.weight", 5, source)
        channels.append(shape[1])
    img_channels = _shape(sd, "to_rgb1.conv.weight", 5, source)[1]
    kernel = sd.get("convs.0.conv.blur.kernel")
    if isinstance(kernel, Tensor) and tuple(kernel.shape) != (4, 4):
        raise CheckpointError(
            f"{source}: blur kernel 'convs.0.conv.blur.kernel' is {list(kernel.shape)}; only the 4-tap "
            "[1,3,3,1] filter is supported"
        )
    try:
        return GeneratorConfig(
            img_resolution=4 * 2**n_blocks,
            z_dim=z_dim,
            w_dim=w_dim,
            n_mlp=n_mlp,
            lr_mlp=lr_mlp,
            channels=tuple(channels),
            img_channels=img_channels,
        )
    except ValueError as exc:
        raise CheckpointError(f"{source}: unsupported generator layout ({exc})") from None


def infer_discriminator_config(sd: Mapping[str, Any], *, source: str) -> DiscriminatorConfig:
    """Infer a :class:`DiscriminatorConfig` from a rosinality discriminator state dict (``ckpt['d']``)."""
    c_top, img_channels = _shape(sd, "convs.0.0.weight", 4, source)[:2]
    blocks = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"convs\.(\d+)\.conv2\.1\.weight", k)))
    if not blocks or blocks != list(range(1, len(blocks) + 1)):
        raise CheckpointError(f"{source}: discriminator residual blocks convs.1..convs.N not found")
    widths = [c_top]  # top resolution first
    for i in blocks:
        widths.append(_shape(sd, f"convs.{i}.conv2.1.weight", 4, source)[0])
    c4 = widths[-1]
    mbstd = _shape(sd, "final_conv.0.weight", 4, source)[1] - c4
    try:
        return DiscriminatorConfig(
            img_resolution=4 * 2 ** len(blocks),
            channels=tuple(reversed(widths)),
            img_channels=img_channels,
            mbstd_num_features=mbstd,
        )
    except ValueError as exc:
        raise CheckpointError(f"{source}: unsupported discriminator layout ({exc})") from None


def load_state_dict_checked(
    module: nn.Module,
    sd: Mapping[str, Tensor],
    *,
    source: str,
    fill: Callable[[str], bool] = lambda key: False,
    assign: bool = False,
) -> None:
    """Strict ``load_state_dict`` whose errors are one-line CheckpointErrors naming the keys.

    Args:
        module: the freshly built module.
        sd: tensors in the module's layout.
        source: file name for messages.
        fill: predicate for keys that may be absent from ``sd`` (the module keeps its own values).
        assign: pass ``assign=True`` (meta-device modules).

    Raises:
        CheckpointError: missing keys, unexpected keys, or a shape mismatch (key and both shapes).
    """
    own = module.state_dict()
    missing = [k for k in own if k not in sd and not fill(k)]
    unexpected = [k for k in sd if k not in own]
    if missing:
        more = f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""
        raise CheckpointError(f"{source}: missing tensor(s) {', '.join(missing[:3])}{more}")
    if unexpected:
        more = f" (+{len(unexpected) - 3} more)" if len(unexpected) > 3 else ""
        raise CheckpointError(f"{source}: unexpected tensor(s) {', '.join(unexpected[:3])}{more}")
    for k, v in sd.items():
        if not isinstance(v, Tensor):
            raise CheckpointError(f"{source}: entry {k!r} is a {type(v).__name__}, not a tensor")
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(
                f"{source}: tensor {k!r} has shape {list(v.shape)}, expected {list(own[k].shape)}"
            )
        if not v.is_floating_point() and own[k].is_floating_point():
            raise CheckpointError(f"{source}: tensor {k!r} has dtype {v.dtype}, expected floating point")
    full = dict(own) if not assign else {k: own[k] for k in own if k not in sd}
    full.update({k: v.to(own[k].dtype) for k, v in sd.items()})
    module.load_state_dict(full, strict=True, assign=assign)


def _is_kernel(key: str) -> bool:
    # FIR filters are fixed by the config; rosinality stores them, NVIDIA stores its own copies elsewhere.
    return key.endswith(".kernel")


def _w_avg_from(latent_avg: Any, w_dim: int, source: str, notes: list[str]) -> Tensor | None:
    if latent_avg is None:
        return None
    if not isinstance(latent_avg, Tensor) or latent_avg.shape[-1] != w_dim or latent_avg.ndim > 2:
        shape = list(latent_avg.shape) if isinstance(latent_avg, Tensor) else type(latent_avg).__name__
        raise CheckpointError(f"{source}: 'latent_avg' has shape {shape}, expected [{w_dim}] or [n, {w_dim}]")
    if latent_avg.ndim == 2:
        if latent_avg.shape[0] > 1 and not torch.allclose(latent_avg, latent_avg[:1].expand_as(latent_avg)):
            notes.append("latent_avg rows differ; row 0 used as w_avg")
        latent_avg = latent_avg[0]
    return latent_avg.detach().float()


def from_rosinality_checkpoint(ckpt: Any, *, source: str) -> ForeignGenerator:
    """Turn a loaded rosinality or pSp/e4e checkpoint object into a :class:`ForeignGenerator`.

    Accepts ``{g_ema, ...}`` (train.py / convert_weight.py), a bare generator state dict, or a pSp/e4e
    ``{state_dict: {decoder.*}, latent_avg}`` checkpoint.

    Raises:
        CheckpointError: when none of those layouts matches, or tensors are missing/misshapen.
    """
    notes: list[str] = []
    extra: dict[str, Any] = {}
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"{source}: unknown format: a PyTorch file holding a {type(ckpt).__name__}")
    extra["top_level_keys"] = [str(k) for k in ckpt][:32]
    latent_avg = None
    if "g_ema" in ckpt:
        fmt, sd = "rosinality", ckpt["g_ema"]
        latent_avg = ckpt.get("latent_avg")
        if "args" in ckpt:
            from core.checkpoints.unpickler import namespace_to_dict

            extra["args"] = _jsonable(namespace_to_dict(ckpt["args"]))
            notes.append("rosinality training checkpoint: using g_ema (g, d and optimiser states ignored)")
    elif isinstance(ckpt.get("state_dict"), Mapping) and is_rosinality_state_dict(
        ckpt["state_dict"], "decoder."
    ):
        fmt = "psp"
        sd = {k[len("decoder.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("decoder.")}
        latent_avg = ckpt.get("latent_avg")
        opts = ckpt.get("opts")
        if isinstance(opts, Mapping):
            extra["opts"] = _jsonable(
                {k: opts[k] for k in ("encoder_type", "output_size", "n_styles") if k in opts}
            )
        notes.append(
            "pSp/e4e checkpoint: loaded its StyleGAN2 decoder (the encoder is not part of a generator)"
        )
    elif is_rosinality_state_dict(ckpt):
        fmt, sd = "rosinality", ckpt
        notes.append("bare generator state dict")
    else:
        keys = ", ".join(str(k) for k in list(ckpt)[:8])
        raise CheckpointError(
            f"{source}: unknown format: a PyTorch file with keys [{keys}] and no StyleGAN2 generator"
        )
    if not isinstance(sd, Mapping):
        raise CheckpointError(f"{source}: the generator entry is a {type(sd).__name__}, not a state dict")
    cfg = infer_generator_config(sd, source=source)
    sd = dict(sd)
    w_avg = _w_avg_from(latent_avg, cfg.w_dim, source, notes)
    args = extra.get("args") or {}
    if isinstance(args.get("size"), int) and args["size"] != cfg.img_resolution:
        notes.append(
            f"args.size={args['size']} disagrees with the tensors ({cfg.img_resolution} px); tensors win"
        )
    missing_noise = [i for i in range(cfg.num_layers) if f"noises.noise_{i}" not in sd]
    if missing_noise:
        # Early rosinality versions did not store noise buffers: make deterministic ones (seed 0).
        gen = torch.Generator().manual_seed(0)
        for i in range(cfg.num_layers):
            r = noise_resolution(i)
            noise = torch.randn(1, 1, r, r, generator=gen)
            if i in missing_noise:
                sd[f"noises.noise_{i}"] = noise
        notes.append("the file stores no constant noise buffers: drew them from seed 0")
    return ForeignGenerator(fmt, cfg, sd, w_avg, notes, extra, fill=_is_kernel)


def _jsonable(obj: Any) -> Any:
    """Plain JSON types only (numbers, strings, lists, dicts); tensors and other objects become strings."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Tensor):
        return obj.item() if obj.numel() == 1 else f"tensor{list(obj.shape)}"
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist() if obj.size <= 16 else f"array{list(obj.shape)}"
    except ImportError:  # pragma: no cover
        pass
    return str(obj)
