"""Checkpoint format detection and the one generator loader for every supported format.

Formats: StyleScope native ``.safetensors`` (:mod:`core.checkpoints.native`), rosinality ``.pt``
(:mod:`core.checkpoints.rosinality`, also pSp/e4e decoders) and NVIDIA network pickles
(:mod:`core.checkpoints.nvidia`). Detection looks at the file signature first (zip / legacy torch / pickle /
safetensors header) and then at top-level keys; nothing from a file is ever executed (see
:mod:`core.checkpoints.unpickler`). Every failure is a one-line :class:`core.CheckpointError` naming the file.
"""

from __future__ import annotations

import json
import os
import struct
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.checkpoints.rosinality import ForeignGenerator, from_rosinality_checkpoint, load_state_dict_checked
from core.checkpoints.unpickler import (
    ALLOWED_GLOBALS,
    _first_line,
    refusal_message,
    scan_pickle,
    torch_load_restricted,
    torch_zip_pickle,
)
from core.errors import CheckpointError

W_AVG_SAMPLES, W_AVG_SEED = 10_000, 0
# torch.save's legacy (non-zip) format starts with pickle.dump(0x1950a86a20f9469cfc6c, protocol=2).
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_PERSISTENCE = "torch_utils.persistence._reconstruct_persistent_obj"
_STARGAN_KEYS = ("generator", "mapping_network", "style_encoder")


def _check_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such file")
    if p.is_dir():
        raise CheckpointError(f"{p}: is a directory, not a checkpoint file")
    if not p.is_file():
        raise CheckpointError(f"{p}: not a regular file")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p}: empty file")
    return p


def _signature(p: Path) -> str:
    """'zip' | 'torch_legacy' | 'pickle' | 'safetensors'; raises for anything else."""
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(16)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        if not zipfile.is_zipfile(p):
            raise CheckpointError(f"{p}: truncated or corrupt zip archive (no central directory)")
        return "zip"
    if head.startswith(_TORCH_LEGACY_MAGIC):
        return "torch_legacy"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if len(head) >= 9:
        (n,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 8 + n <= size:
            return "safetensors"
        if head[8:9] == b"{":
            raise CheckpointError(f"{p}: truncated safetensors file (header says {n} bytes)")
    hint = ""
    if head[:2] == b"\x1f\x8b":
        hint = " (gzip data: unpack it first)"
    elif p.suffix.lower() in (".pkl", ".pt", ".pth", ".ckpt", ".safetensors"):
        hint = f" although it is named {p.suffix}"
    raise CheckpointError(f"{p}: not a checkpoint: unrecognised file signature{hint}")


def _torch_kind(ckpt: Any, p: Path) -> str:
    from core.checkpoints.rosinality import is_rosinality_state_dict

    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{p}: unknown format: a PyTorch file holding a {type(ckpt).__name__}")
    if "g_ema" in ckpt or is_rosinality_state_dict(ckpt):
        return "rosinality"
    if isinstance(ckpt.get("state_dict"), dict) and any(
        str(k).startswith("decoder.") for k in ckpt["state_dict"]
    ):
        return "psp"
    if all(k in ckpt for k in _STARGAN_KEYS):
        return "stargan_v2"
    keys = ", ".join(str(k) for k in list(ckpt)[:8])
    raise CheckpointError(f"{p}: unknown format: a PyTorch file with keys [{keys}]")


def _pickle_kind(p: Path) -> str:
    with open(p, "rb") as f:
        names, error = scan_pickle(f)
    for name in names:
        if name not in ALLOWED_GLOBALS:
            module, _, attr = name.rpartition(".")
            raise CheckpointError(refusal_message(str(p), module, attr))
    if error:
        raise CheckpointError(f"{p}: truncated or corrupt pickle ({error})")
    if _PERSISTENCE in names:
        return "nvidia"
    raise CheckpointError(f"{p}: unknown format: a pickle without NVIDIA networks")


def _load_torch(p: Path, sig: str) -> Any:
    if sig == "zip" and torch_zip_pickle(str(p)) is None:
        raise CheckpointError(f"{p}: a zip archive, but not a PyTorch checkpoint (no data.pkl)")
    return torch_load_restricted(str(p), mmap=sig == "zip")


def _guard(fn):
    """Turn any stray exception from deep inside torch/pickle into a one-line CheckpointError."""

    def wrapper(path, *args, **kwargs):
        try:
            return fn(path, *args, **kwargs)
        except CheckpointError:
            raise
        except MemoryError:
            raise CheckpointError(f"{path}: not enough memory to read this checkpoint") from None
        except Exception as exc:
            raise CheckpointError(f"{path}: cannot read checkpoint ({_first_line(exc)})") from None

    wrapper.__name__, wrapper.__doc__, wrapper.__wrapped__ = fn.__name__, fn.__doc__, fn
    return wrapper


@_guard
def detect_format(path: str | os.PathLike) -> str:
    """The format of a checkpoint file, from its signature and top-level keys (nothing is executed).

    Args:
        path: the file.

    Returns:
        ``"native"``, ``"rosinality"``, ``"psp"``, ``"nvidia"`` or ``"stargan_v2"``.

    Raises:
        CheckpointError: missing/empty/corrupt file, unknown format, or a pickle global outside the allow-list.
    """
    p = _check_path(path)
    sig = _signature(p)
    if sig == "safetensors":
        from core.checkpoints.native import read_metadata

        meta = read_metadata(p)
        if "arch" not in meta or "config" not in meta:
            raise CheckpointError(
                f"{p}: safetensors file without StyleScope metadata (need 'arch' and 'config')"
            )
        return "native"
    if sig == "pickle":
        return _pickle_kind(p)
    return _torch_kind(_load_torch(p, sig), p)


def read_foreign(path: str | os.PathLike) -> ForeignGenerator | None:
    """Read a foreign generator checkpoint into our layout (None for native files).

    Raises:
        CheckpointError: see :func:`load_generator`.
    """
    p = _check_path(path)
    sig = _signature(p)
    if sig == "safetensors":
        return None
    if sig == "pickle":
        from core.checkpoints.nvidia import from_network_pickle, read_network_pickle

        if _pickle_kind(p) == "nvidia":
            return from_network_pickle(read_network_pickle(str(p)), source=str(p))
    ckpt = _load_torch(p, sig)
    kind = _torch_kind(ckpt, p)
    if kind == "stargan_v2":
        raise CheckpointError(
            f"{p}: a StarGAN v2 checkpoint is an image-to-image translator, not a style-based generator; "
            "open it in the Translate tab or with `stylescope translate`"
        )
    fg = from_rosinality_checkpoint(ckpt, source=str(p))
    if fg.w_avg is None:
        fg.notes.append(f"w_avg estimated from {W_AVG_SAMPLES // 1000}k samples (seed {W_AVG_SEED})")
    return fg


def build_generator(fg: ForeignGenerator, *, source: str, device: str | torch.device = "cpu") -> nn.Module:
    """Build our Generator for ``fg`` and load its tensors (strict, with named errors).

    Building does not disturb the caller's global RNG state.
    """
    from core.models.stylegan import Generator

    with torch.random.fork_rng(devices=[]):
        G = Generator(fg.config)
    sd = dict(fg.state_dict)
    if fg.w_avg is not None:
        sd["w_avg"] = fg.w_avg
    load_state_dict_checked(
        G, sd, source=source, fill=lambda k: fg.fill(k) or (k == "w_avg" and fg.w_avg is None)
    )
    G = G.to(device).eval().requires_grad_(False)
    if fg.w_avg is None:
        warnings.warn(
            f"{source}: the checkpoint has no latent_avg; estimating w_avg from {W_AVG_SAMPLES} samples "
            f"(seed {W_AVG_SEED})",
            stacklevel=3,
        )
        G.estimate_w_avg(W_AVG_SAMPLES, seed=W_AVG_SEED)
    return G


@_guard
def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Load a generator from any supported checkpoint, auto-detecting the format.

    Args:
        path: native ``.safetensors``, rosinality/pSp ``.pt`` or NVIDIA ``.pkl``.
        device: where the generator lives.

    Returns:
        A :class:`core.models.stylegan.Generator` in eval mode with ``requires_grad`` off. Provenance (format,
        notes such as an estimated ``w_avg``) is available from :func:`describe_checkpoint`.

    Raises:
        CheckpointError: one line naming the file and the problem: unknown format, missing/misshapen tensors,
            truncated/corrupt data, a pickle global outside the allow-list, unsupported networks (StyleGAN3).
    """
    p = _check_path(path)
    fg = read_foreign(p)
    if fg is None:
        from core.checkpoints.native import load_native

        return load_native(p, device=device)
    return build_generator(fg, source=str(p), device=device)


@_guard
def describe_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """What a checkpoint holds, for UIs and the CLI (JSON-able), without building the model.

    Returns:
        ``{"path", "format", "arch", "resolution", "num_ws", "z_dim", "w_dim", "c_dim", "channels", "n_mlp",
        "architecture", "has_w_avg", "config", "notes": [...], "extra": {...}}``. ``has_w_avg`` is False when
        the average w will be estimated on load (``notes`` says so).

    Raises:
        CheckpointError: as :func:`load_generator`.
    """
    from core.models.stylegan import GeneratorConfig

    p = _check_path(path)
    fg = read_foreign(p)
    if fg is None:
        from core.checkpoints.native import read_metadata

        meta = read_metadata(p)
        if "config" not in meta:
            raise CheckpointError(
                f"{p}: safetensors file without StyleScope metadata (need 'arch' and 'config')"
            )
        try:
            cfg = GeneratorConfig.from_dict(json.loads(meta["config"]))
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{p}: invalid generator config ({_first_line(exc)})") from None
        fmt, notes, extra, has_w_avg = "native", [], {k: v for k, v in meta.items() if k != "config"}, True
    else:
        cfg, fmt, notes, extra, has_w_avg = fg.config, fg.fmt, list(fg.notes), fg.extra, fg.w_avg is not None
    return {
        "path": str(p),
        "format": fmt,
        "arch": cfg.arch,
        "resolution": cfg.img_resolution,
        "num_ws": cfg.num_ws,
        "z_dim": cfg.z_dim,
        "w_dim": cfg.w_dim,
        "c_dim": cfg.c_dim,
        "channels": list(cfg.channels),
        "n_mlp": cfg.n_mlp,
        "architecture": cfg.architecture,
        "has_w_avg": has_w_avg,
        "config": cfg.to_dict(),
        "notes": notes,
        "extra": extra,
    }
