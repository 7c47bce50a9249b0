"""Reader for official StarGAN v2 checkpoints (clovaai/stargan-v2 ``{step:06d}_nets_ema.ckpt``).

The file is ``torch.save({'generator': sd, 'mapping_network': sd, 'style_encoder': sd[, 'fan': sd]})`` with no
``module.`` prefix. It is read with ``torch.load(weights_only=True)`` (nothing is executed), the architecture
is inferred from tensor shapes, and every network is loaded strictly; any problem is one
:class:`core.CheckpointError` line naming the file and the offending keys.

Known issue handled here: the released CelebA-HQ checkpoint predates ``HighPass.filter`` being a buffer, so its
generator lacks ``hpf.filter``; the filter is rebuilt as ``[[-1,-1,-1],[-1,8,-1],[-1,-1,-1]] / w_hpf``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import CheckpointError
from core.models.stargan_v2 import HPF_KERNEL, StarGANv2, StarGANv2Config, build_stargan_v2

NETWORKS = ("generator", "mapping_network", "style_encoder")
# w_hpf of the one released w_hpf > 0 model (CelebA-HQ) when its filter is missing from the file.
DEFAULT_W_HPF = 1.0
_MAX_LISTED = 4


def _indices(sd: dict[str, Any], pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in sd if (m := rx.match(k))})


def _need(sd: dict[str, Any], key: str, net: str, p: str) -> torch.Tensor:
    t = sd.get(key)
    if not isinstance(t, torch.Tensor):
        raise CheckpointError(f"{p}: not a StarGAN v2 checkpoint: {net} has no tensor {key!r}")
    return t


def infer_config(ckpt: dict[str, Any], *, source: str = "checkpoint") -> tuple[StarGANv2Config, list[str]]:
    """The architecture of a StarGAN v2 checkpoint, from tensor shapes.

    ``dim_in`` from ``from_rgb.weight``, the channel cap from the encoder widths, ``style_dim`` from
    ``decode.0.norm1.fc.weight``, ``latent_dim`` and the mapping width from ``shared.0.weight``, ``num_domains``
    from the ``unshared.*`` heads, ``img_size = 2**(len(encode) + 2 - [hpf])`` and ``w_hpf = 8 / filter[1,1]``.
    When ``hpf.filter`` is missing, the style encoder's depth (``log2(img_size) - 2`` blocks) tells whether the
    generator has the extra w_hpf level.

    Args:
        ckpt: the loaded dict with ``generator``, ``mapping_network`` and ``style_encoder`` state dicts.
        source: name used in error messages.

    Returns:
        ``(config, notes)``; notes say what was rebuilt or ignored.

    Raises:
        CheckpointError: a network or key needed for inference is missing or inconsistent.
    """
    p = source
    notes: list[str] = []
    for net in NETWORKS:
        if not isinstance(ckpt.get(net), dict):
            raise CheckpointError(f"{p}: not a StarGAN v2 checkpoint: no {net!r} state dict")
    G, M, E = (ckpt[n] for n in NETWORKS)
    dim_in = int(_need(G, "from_rgb.weight", "generator", p).shape[0])
    enc = _indices(G, r"encode\.(\d+)\.conv2\.weight$")
    if not enc or enc != list(range(len(enc))):
        raise CheckpointError(f"{p}: generator encode blocks are missing or not numbered 0..n-1")
    widths = [int(G[f"encode.{i}.conv2.weight"].shape[0]) for i in enc]
    style_dim = int(_need(G, "decode.0.norm1.fc.weight", "generator", p).shape[1])
    hidden, latent_dim = (int(v) for v in _need(M, "shared.0.weight", "mapping_network", p).shape)
    num_domains = len(_indices(M, r"unshared\.(\d+)\."))
    e_domains = len(_indices(E, r"unshared\.(\d+)\."))
    if num_domains < 1 or num_domains != e_domains:
        raise CheckpointError(
            f"{p}: mapping network has {num_domains} domain branches but the style encoder has {e_domains}"
        )
    e_blocks = _indices(E, r"shared\.(\d+)\.conv1\.weight$")
    widths += [
        int(E[f"shared.{i}.conv2.weight"].shape[0]) for i in e_blocks if f"shared.{i}.conv2.weight" in E
    ]
    img_from_e = 2 ** (len(e_blocks) + 2)
    filt = G.get("hpf.filter")
    if isinstance(filt, torch.Tensor):
        if tuple(filt.shape) != (3, 3) or float(filt[1, 1]) == 0:
            raise CheckpointError(f"{p}: generator hpf.filter has shape {tuple(filt.shape)}, expected (3, 3)")
        w_hpf = 8.0 / float(filt[1, 1])
        img_size = 2 ** (len(enc) + 1)
    elif img_from_e == 2 ** (len(enc) + 1):
        # The generator has the extra w_hpf level but predates the buffer (released CelebA-HQ file).
        w_hpf, img_size = DEFAULT_W_HPF, img_from_e
        notes.append(f"generator hpf.filter missing: rebuilt as [[-1,-1,-1],[-1,8,-1],[-1,-1,-1]]/{w_hpf:g}")
    else:
        w_hpf, img_size = 0.0, 2 ** (len(enc) + 2)
    if img_size != img_from_e:
        raise CheckpointError(
            f"{p}: generator depth implies {img_size} px but the style encoder implies {img_from_e} px"
        )
    if "fan" in ckpt:
        notes.append("FAN (face landmark) weights present but not used: the mask path is not supported")
    try:
        cfg = StarGANv2Config(
            img_size=img_size,
            style_dim=style_dim,
            latent_dim=latent_dim,
            num_domains=num_domains,
            w_hpf=round(w_hpf, 6),
            dim_in=dim_in,
            max_conv_dim=max(widths),
            mapping_hidden_dim=hidden,
        )
    except ValueError as exc:
        raise CheckpointError(f"{p}: inconsistent StarGAN v2 shapes ({exc})") from None
    return cfg, notes


def check_state_dict(module: nn.Module, sd: dict[str, Any], *, net: str, source: str) -> None:
    """Strict key/shape comparison with a one-line message.

    Raises:
        CheckpointError: naming up to four missing, unexpected or misshapen keys of ``net``.
    """
    want = module.state_dict()
    problems: list[str] = []
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    bad = [
        f"{k} {tuple(sd[k].shape)} != {tuple(want[k].shape)}"
        for k in want
        if k in sd and (not isinstance(sd[k], torch.Tensor) or sd[k].shape != want[k].shape)
    ]
    for label, items in (("missing", missing), ("misshapen", bad), ("unexpected", unexpected)):
        if items:
            more = f" (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
            problems.append(f"{label} {', '.join(items[:_MAX_LISTED])}{more}")
    if problems:
        raise CheckpointError(
            f"{source}: {net} does not match the inferred architecture: {'; '.join(problems)}"
        )


def read_stargan_v2(path: str | os.PathLike) -> dict[str, Any]:
    """Read the raw checkpoint dict with ``torch.load(weights_only=True)`` on CPU.

    Raises:
        CheckpointError: missing, empty, truncated or non-tensor file, or not a StarGAN v2 dict.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p}: empty file")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except MemoryError:
        raise CheckpointError(f"{p}: not enough memory to read this checkpoint") from None
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError/... for damaged files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(
            f"{p}: cannot read StarGAN v2 checkpoint (truncated or corrupt? {first})"
        ) from None
    if not isinstance(ckpt, dict) or not all(isinstance(ckpt.get(n), dict) for n in NETWORKS):
        keys = list(ckpt)[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{p}: not a StarGAN v2 checkpoint (need {', '.join(NETWORKS)}; found {keys})")
    return ckpt


def load_stargan_v2(path: str | os.PathLike, device: str | torch.device = "cpu") -> StarGANv2:
    """Load a StarGAN v2 ``*_nets_ema.ckpt`` into our networks (strict, eval mode, no gradients).

    Args:
        path: the checkpoint file.
        device: where the networks live.

    Returns:
        A :class:`core.models.stargan_v2.StarGANv2` bundle (``generator``, ``mapping``, ``style_encoder``,
        ``config``, ``source``, ``notes``).

    Raises:
        CheckpointError: one line naming the file and the problem (unreadable/truncated file, missing network,
            missing/misshapen/unexpected keys).
    """
    p = str(path)
    ckpt = read_stargan_v2(path)
    cfg, notes = infer_config(ckpt, source=p)
    bundle = build_stargan_v2(cfg, "cpu")
    G_sd = dict(ckpt["generator"])
    if cfg.w_hpf > 0 and "hpf.filter" not in G_sd:
        G_sd["hpf.filter"] = torch.tensor(HPF_KERNEL) / cfg.w_hpf
    for net, module, sd in (
        ("generator", bundle.generator, G_sd),
        ("mapping_network", bundle.mapping, ckpt["mapping_network"]),
        ("style_encoder", bundle.style_encoder, ckpt["style_encoder"]),
    ):
        check_state_dict(module, sd, net=net, source=p)
        module.load_state_dict(sd, strict=True)
        module.to(device).eval().requires_grad_(False)
        for name, t in sd.items():
            if torch.is_tensor(t) and t.is_floating_point() and not torch.isfinite(t).all():
                raise CheckpointError(f"{p}: {net}.{name} holds NaN or infinite values")
    bundle.source, bundle.notes = p, tuple(notes)
    return bundle


def describe_stargan_v2(bundle: StarGANv2) -> dict[str, Any]:
    """JSON-able summary of a loaded model for UIs and the CLI."""
    cfg = bundle.config
    return {
        "path": bundle.source,
        "format": "stargan_v2",
        "config": cfg.to_dict(),
        "resolution": cfg.img_size,
        "num_domains": cfg.num_domains,
        "needs_masks": cfg.w_hpf > 0,
        "notes": list(bundle.notes),
    }
