"""StyleScope's native checkpoint: one ``.safetensors`` file, tensors plus JSON metadata.

Metadata keys: ``arch`` (a key of ``core.models.ARCHITECTURES``), ``config`` (the model's frozen config as
JSON), ``format_version``. Any extra string metadata (provenance, training kimg, ...) may be added. Files are
written atomically (temporary file in the same folder, fsync, rename), so a crash never leaves half a model.
Loading never executes code: safetensors holds raw tensors only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from core.errors import CheckpointError

FORMAT_VERSION = "1"
GENERATOR_ARCHS = ("stylegan2", "stylegan1")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)``, fsync, then atomically rename the temporary file onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_module(
    module: nn.Module,
    path: str | os.PathLike,
    *,
    arch: str,
    config: dict,
    metadata: dict | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Save any registered model as native safetensors (atomically).

    Args:
        dtype: store floating tensors in this dtype (e.g. ``torch.float16`` halves shipped files); loading
            always restores the module's own dtype.
    """
    tensors = {}
    for k, v in module.state_dict().items():
        v = v.detach().to("cpu", copy=True)
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous()
    meta = {"arch": arch, "config": json.dumps(config, sort_keys=True), "format_version": FORMAT_VERSION}
    for k, v in (metadata or {}).items():
        meta[str(k)] = v if isinstance(v, str) else json.dumps(v)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def save_generator(
    G: nn.Module, path: str | os.PathLike, *, metadata: dict | None = None, dtype: torch.dtype | None = None
) -> None:
    """Write a generator as one native ``.safetensors`` file (config JSON and the ``w_avg`` tensor included)."""
    save_module(G, path, arch=G.cfg.arch, config=G.cfg.to_dict(), metadata=metadata, dtype=dtype)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The string metadata of a native file, without reading its tensors.

    Raises:
        CheckpointError: the file is missing or is not safetensors.
    """
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({_first_line(e)})") from None


def load_module(
    path: str | os.PathLike, *, device: str | torch.device = "cpu", expect: tuple[str, ...] = ()
) -> nn.Module:
    """Rebuild a model from a native file: config from metadata, tensors checked by name and shape.

    Args:
        path: a ``.safetensors`` file written by ``save_module``.
        device: where the returned module lives (eval mode, no grad).
        expect: accepted ``arch`` names (empty: any registered one).

    Raises:
        CheckpointError: unreadable file, unknown ``arch``, bad config, missing/unexpected/misshapen tensors.
    """
    from core.models import ARCHITECTURES

    meta = read_metadata(path)
    arch = meta.get("arch")
    if arch is None or "config" not in meta:
        raise CheckpointError(
            f"{path}: safetensors file without StyleScope metadata (need 'arch' and 'config')"
        )
    if arch not in ARCHITECTURES:
        raise CheckpointError(f"{path}: unknown arch {arch!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    if expect and arch not in expect:
        raise CheckpointError(f"{path}: holds a {arch!r} model, expected one of {', '.join(expect)}")
    cfg_cls, module_cls = ARCHITECTURES[arch]
    try:
        cfg = cfg_cls.from_dict(json.loads(meta["config"]))
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: invalid {arch} config ({_first_line(e)})") from None
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, RuntimeError) as e:
        raise CheckpointError(f"{path}: corrupt safetensors file ({_first_line(e)})") from None
    with torch.device("meta"):
        module = module_cls(cfg)
    load_state_dict_checked(module, tensors, path)
    return module.to(device).eval().requires_grad_(False)


def load_native(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """Load a native generator file (StyleGAN2 or StyleGAN v1)."""
    return load_module(path, device=device, expect=GENERATOR_ARCHS)


def load_state_dict_checked(
    module: nn.Module, tensors: dict[str, torch.Tensor], source: str | os.PathLike
) -> None:
    """Strictly load ``tensors`` into ``module`` (which may live on the meta device), with one-line errors.

    Raises:
        CheckpointError: naming the first missing, unexpected, misshapen or non-finite tensor.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    for what, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
            raise CheckpointError(f"{source}: {what} tensors {', '.join(keys[:3])}{more}")
    for k, v in expected.items():
        t = tensors[k]
        if tuple(t.shape) != tuple(v.shape):
            raise CheckpointError(f"{source}: tensor {k} has shape {list(t.shape)}, expected {list(v.shape)}")
        if torch.is_floating_point(v) and not torch.is_floating_point(t):
            raise CheckpointError(f"{source}: tensor {k} has dtype {t.dtype}, expected a float tensor")
        if torch.is_floating_point(t) and not torch.isfinite(t).all():
            raise CheckpointError(f"{source}: tensor {k} contains NaN or inf values")
    module.load_state_dict({k: t.to(expected[k].dtype) for k, t in tensors.items()}, strict=True, assign=True)


def file_digest(path: str | os.PathLike, *, length: int = 16) -> str:
    """Short sha256 of a file's bytes: the content hash recipes use to name a model exactly."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
