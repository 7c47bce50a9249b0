"""pixel2style2pixel (pSp) checkpoints: the encoder, its StyleGAN2 decoder and ``latent_avg``.

Richardson et al. 2021, "Encoding in Style" (CVPR). ``training/coach.py`` saves
``{'state_dict': pSp.state_dict() ('encoder.*', 'decoder.*'), 'opts': vars(opts), 'latent_avg': [n_styles, w]}``;
the official loader strips the prefixes and loads both halves strictly. The file is read with
``torch.load(weights_only=True)`` (no code runs). Widths are inferred from tensor shapes, never from ``opts``
(which does not describe them; narrow-width checkpoints exist):

* ``style_dim = latent_avg.shape[-1]`` (or the head's shapes), ``n_styles`` = number of ``styles.*`` heads;
* ``input_layer.0.weight [W0, input_nc, 3, 3]``; stage depths from ``body.{i}.res_layer.1.weight [depth, in, 3, 3]``
  at the first unit of each stage; the pyramid width from ``styles.0.convs.0.weight.shape[1]``;
* each head's input resolution from its number of stride-2 convs;
* the decoder through :mod:`core.checkpoints.rosinality` (``decoder.input.input``, ``decoder.convs.{2k}``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from core.checkpoints.rosinality import from_rosinality_checkpoint, load_state_dict_checked, require_tensor
from core.errors import CheckpointError
from core.models.psp import IR50_UNITS, PSPConfig, PSPEncoder


class PSPCheckpoint(NamedTuple):
    """A loaded pSp checkpoint (unpacks as ``encoder, decoder, latent_avg, opts``).

    Attributes:
        encoder: :class:`PSPEncoder` in eval mode, ``requires_grad`` off.
        decoder: :class:`core.models.stylegan.Generator` (the file's StyleGAN2), eval mode.
        latent_avg: ``[n_styles, style_dim]`` W+ average added to the codes, or None when the file has none.
        opts: the saved training options (a dict), ``device`` overridden with the load device.
    """

    encoder: PSPEncoder
    decoder: nn.Module
    latent_avg: Tensor | None
    opts: dict[str, Any]


def _tensor(sd: Mapping[str, Any], key: str, ndim: int, source: str) -> Tensor:
    return require_tensor(sd, key, ndim, source, name=f"encoder.{key}")  # keys as they appear in the file


def infer_psp_config(
    sd: Mapping[str, Any],
    *,
    latent_avg: Tensor | None = None,
    n_styles: int | None = None,
    source: str = "checkpoint",
) -> PSPConfig:
    """Infer a :class:`PSPConfig` from an encoder state dict (``encoder.`` prefix already stripped).

    Args:
        sd: encoder tensors.
        latent_avg: the file's ``latent_avg`` (gives ``style_dim``), if any.
        n_styles: W+ rows of the decoder (needed for ``BackboneEncoderUsingLastLayerIntoW``, checked otherwise).
        source: file name for messages.

    Returns:
        The configuration.

    Raises:
        CheckpointError: missing or misshapen tensors, an unsupported backbone depth.
    """
    w0 = _tensor(sd, "input_layer.0.weight", 4, source)
    input_width, input_nc = int(w0.shape[0]), int(w0.shape[1])
    units = {int(m.group(1)) for k in sd if (m := re.match(r"body\.(\d+)\.", k))}
    if len(units) != sum(IR50_UNITS) or max(units) != sum(IR50_UNITS) - 1:
        raise CheckpointError(
            f"{source}: encoder body has {len(units)} units; only IR-SE50 (24 units) is supported"
        )
    firsts = [sum(IR50_UNITS[:s]) for s in range(4)]
    stage_widths = tuple(int(_tensor(sd, f"body.{i}.res_layer.1.weight", 4, source).shape[0]) for i in firsts)
    if any(isinstance(k, str) and k.startswith("styles.") for k in sd):
        encoder_type = "GradualStyleEncoder"
    elif "output_layer_2.3.weight" in sd:
        encoder_type = "BackboneEncoderUsingLastLayerIntoWPlus"
    elif "linear.weight" in sd:
        encoder_type = "BackboneEncoderUsingLastLayerIntoW"
    else:
        raise CheckpointError(
            f"{source}: encoder has no style heads (styles.*, linear.*): unknown pSp encoder"
        )
    fpn_width, spatial = stage_widths[-1], ()
    if encoder_type == "GradualStyleEncoder":
        heads = sorted({int(m.group(1)) for k in sd if (m := re.match(r"styles\.(\d+)\.", k))})
        if heads != list(range(len(heads))):
            raise CheckpointError(f"{source}: style heads are not numbered 0..{len(heads) - 1}")
        lin = _tensor(sd, "styles.0.linear.weight", 2, source)
        style_dim = int(lin.shape[0])
        fpn_width = int(_tensor(sd, "styles.0.convs.0.weight", 4, source).shape[1])
        spatial = tuple(
            2 ** sum(1 for k in sd if re.fullmatch(rf"styles\.{i}\.convs\.\d+\.weight", k)) for i in heads
        )
        found_styles = len(heads)
    elif encoder_type == "BackboneEncoderUsingLastLayerIntoWPlus":
        style_dim = int(_tensor(sd, "output_layer_2.3.weight", 2, source).shape[0])
        found_styles = int(_tensor(sd, "linear.weight", 2, source).shape[0]) // max(style_dim, 1)
    else:
        style_dim = int(_tensor(sd, "linear.weight", 2, source).shape[0])
        found_styles = n_styles
        if found_styles is None:
            raise CheckpointError(f"{source}: a W encoder needs the decoder's number of styles")
    if latent_avg is not None and int(latent_avg.shape[-1]) != style_dim:
        raise CheckpointError(
            f"{source}: 'latent_avg' has shape {list(latent_avg.shape)}, but the encoder predicts {style_dim}-d codes"
        )
    if n_styles is not None and found_styles != n_styles:
        raise CheckpointError(
            f"{source}: the encoder predicts {found_styles} styles but the decoder takes {n_styles}"
        )
    try:
        return PSPConfig(
            encoder_type=encoder_type,
            n_styles=int(found_styles),
            style_dim=style_dim,
            input_nc=input_nc,
            input_width=input_width,
            stage_widths=stage_widths,
            fpn_width=fpn_width,
            style_spatial=spatial,
        )
    except ValueError as exc:
        raise CheckpointError(f"{source}: unsupported pSp encoder ({exc})") from None


def build_encoder(cfg: PSPConfig, sd: Mapping[str, Tensor], *, source: str) -> PSPEncoder:
    """Build a :class:`PSPEncoder` and load ``sd`` strictly (one-line CheckpointErrors), in eval mode.

    Building does not disturb the caller's global RNG state.
    """
    with torch.random.fork_rng(devices=[]):
        enc = PSPEncoder(cfg)
    load_state_dict_checked(enc, {k: v for k, v in sd.items()}, source=source)
    return enc.eval().requires_grad_(False)


def _latent_avg(value: Any, cfg: PSPConfig, source: str) -> Tensor | None:
    if value is None:
        return None
    if not isinstance(value, Tensor) or value.ndim not in (1, 2) or value.shape[-1] != cfg.style_dim:
        shape = list(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise CheckpointError(
            f"{source}: 'latent_avg' has shape {shape}, expected [{cfg.n_styles}, {cfg.style_dim}]"
        )
    value = value.detach().float()
    if value.ndim == 1:  # Coach's fallback estimate [w] and learn_in_w's [1, w] broadcast to every row
        value = value[None]
    if value.shape[0] == 1:
        value = value.expand(cfg.n_styles, -1)
    if value.shape[0] != cfg.n_styles:
        raise CheckpointError(
            f"{source}: 'latent_avg' has shape {list(value.shape)}, expected [{cfg.n_styles}, {cfg.style_dim}]"
        )
    return value.contiguous()


def psp_from_checkpoint(
    ckpt: Any, *, source: str = "checkpoint", device: str | torch.device = "cpu"
) -> PSPCheckpoint:
    """Build the encoder, decoder and ``latent_avg`` from an already loaded pSp checkpoint dict.

    Args:
        ckpt: ``{'state_dict': {'encoder.*', 'decoder.*'}, 'opts': dict, 'latent_avg': Tensor}``.
        source: file name for messages.
        device: where the modules and ``latent_avg`` live; also written to ``opts['device']``.

    Returns:
        A :class:`PSPCheckpoint`.

    Raises:
        CheckpointError: not a pSp checkpoint, missing/misshapen tensors.
    """
    from core.checkpoints.detect import build_generator

    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("state_dict"), Mapping):
        found = list(ckpt)[:8] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise CheckpointError(f"{source}: not a pSp checkpoint (need a 'state_dict' entry; found {found})")
    full = ckpt["state_dict"]
    enc_sd = {
        k[len("encoder.") :]: v for k, v in full.items() if isinstance(k, str) and k.startswith("encoder.")
    }
    if not enc_sd:
        raise CheckpointError(f"{source}: the state_dict has no 'encoder.*' tensors (not a pSp checkpoint)")
    fg = from_rosinality_checkpoint(
        {"state_dict": full, "latent_avg": ckpt.get("latent_avg"), "opts": ckpt.get("opts")}, source=source
    )
    raw_avg = ckpt.get("latent_avg")
    cfg = infer_psp_config(
        enc_sd,
        latent_avg=raw_avg if isinstance(raw_avg, Tensor) else None,
        n_styles=fg.config.num_ws,
        source=source,
    )
    encoder = build_encoder(cfg, enc_sd, source=source).to(device)
    decoder = build_generator(fg, source=source, device=device)
    latent_avg = _latent_avg(raw_avg, cfg, source)
    if latent_avg is not None:
        latent_avg = latent_avg.to(device)
    opts = dict(ckpt["opts"]) if isinstance(ckpt.get("opts"), Mapping) else {}
    opts["device"] = str(device)  # the file says 'cuda:0' (Coach's device)
    opts.setdefault("n_styles", cfg.n_styles)
    return PSPCheckpoint(encoder, decoder, latent_avg, opts)


def load_psp(path: str | os.PathLike, device: str | torch.device = "cpu") -> PSPCheckpoint:
    """Read a pSp ``.pt`` training checkpoint (``torch.load(weights_only=True)``).

    Args:
        path: the ``psp_*.pt`` file.
        device: where to put the modules.

    Returns:
        A :class:`PSPCheckpoint` ``(encoder, decoder, latent_avg, opts)``.

    Raises:
        CheckpointError: one line naming the file: missing/empty/truncated/corrupt file, not a pSp checkpoint,
            missing or misshapen tensors.
    """
    from core.checkpoints.detect import _check_path, _guard, _load_torch, _signature

    @_guard
    def _read(p: str | os.PathLike) -> PSPCheckpoint:
        p = _check_path(p)
        sig = _signature(p)
        if sig not in ("zip", "torch_legacy"):
            raise CheckpointError(f"{p}: not a PyTorch checkpoint (a {sig} file); pSp files are .pt")
        return psp_from_checkpoint(_load_torch(p, sig), source=str(p), device=device)

    return _read(path)
