"""The process-wide, locked model store of the Explorer.

Models never live in ``gr.State``: sessions hold a model *path* (a short string) and every handler asks this
store for the loaded generator. The store wraps :class:`core.render.ModelCache` (an LRU keyed by path, mtime,
size and device, so an overwritten file is reloaded) and adds one lock per model, held while a handler runs
the model, so concurrent users cannot interleave on the same module even outside the Gradio queue.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from core.checkpoints.native import file_digest
from core.cli.common import resolve_device
from core.errors import CheckpointError
from core.render import ModelCache

_state_lock = threading.Lock()
_device = torch.device("cpu")
_locks: dict[str, threading.RLock] = {}
_digests: dict[tuple[str, int, int], str] = {}
_known: dict[str, str] = {}  # resolved path -> display name, for recipe look-up by content hash


def _load(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Auto-detecting loader: ``core.load_generator`` when present, the native reader otherwise."""
    try:
        from core.checkpoints import load_generator
    except ImportError:  # older core without the multi-format loader
        from core.checkpoints.native import load_native as load_generator
    try:
        return load_generator(path, device=device)
    except CheckpointError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"{Path(path).name}: not a supported generator checkpoint ({first})") from None


CACHE = ModelCache(capacity=4, loader=_load)


def configure(device: str = "auto") -> torch.device:
    """Set the device models are loaded on (``auto`` picks CUDA when available). Returns it."""
    global _device
    _device = resolve_device(device)
    if _device.type == "cpu":
        # Explorer renders are batch 1 and serialised per model, next to Gradio's own threads. Measured on the
        # 2-core reference box (128 px default model): 1 intra-op thread renders in 20 ms against 25 ms for 2,
        # and the /generate round trip drops from +49 ms to +0 ms over the no-op floor (benchmarks/results).
        # Larger hosts keep a few threads for bigger models.
        cores = os.cpu_count() or 1
        torch.set_num_threads(1 if cores <= 2 else min(4, cores // 2))
    return _device


def device() -> torch.device:
    return _device


def _key(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


def register(path: str | Path, name: str | None = None) -> str:
    """Remember a model file (shipped, uploaded, typed or a run's snapshot) so recipes can find it by hash."""
    key = _key(path)
    with _state_lock:
        _known[key] = name or Path(path).name
    return key


def known_models() -> dict[str, str]:
    with _state_lock:
        return dict(_known)


def shipped_models(models_dir: str | Path) -> dict[str, str]:
    """``{file name: path}`` of the ``.safetensors`` models in ``models_dir`` (sorted; empty if none)."""
    folder = Path(models_dir)
    if not folder.is_dir():
        return {}
    return {p.name: str(p) for p in sorted(folder.glob("*.safetensors")) if p.is_file()}


def default_model(models_dir: str | Path, preferred: tuple[str, ...] = ()) -> str | None:
    """The first preferred shipped model that exists, else the first shipped model, else None."""
    found = shipped_models(models_dir)
    for name in preferred:
        if name in found:
            return found[name]
    return next(iter(found.values()), None)


def is_pickle(path: str | Path) -> bool:
    """True for raw pickles (NVIDIA ``.pkl``), which need the restricted reader and a warning first."""
    p = Path(path)
    if p.suffix.lower() == ".pkl":
        return True
    try:
        with open(p, "rb") as f:
            return f.read(1) == b"\x80"
    except OSError:
        return False


def get(path: str | Path) -> torch.nn.Module:
    """The loaded generator of ``path`` on the configured device (loaded once, then cached).

    Raises:
        CheckpointError: unsupported or broken file.  RecipeError: no such file.
    """
    G = CACHE.get(path, _device)
    register(path)
    return G


@contextmanager
def use(path: str | Path) -> Iterator[torch.nn.Module]:
    """``with use(path) as G:`` hold the model's lock while running it, in inference mode."""
    G = get(path)
    key = _key(path)
    with _state_lock:
        lock = _locks.setdefault(key, threading.RLock())
    with lock, torch.inference_mode():
        yield G


def digest(path: str | Path) -> str:
    """Content hash of a model file (cached by path, mtime and size)."""
    p = Path(path).expanduser().resolve()
    st = p.stat()
    k = (str(p), st.st_mtime_ns, st.st_size)
    with _state_lock:
        if k in _digests:
            return _digests[k]
    value = file_digest(p)
    with _state_lock:
        _digests[k] = value
    return value


def find_by_hash(model_hash: str) -> str | None:
    """Path of a known model file whose content hash is ``model_hash``, or None."""
    for path in known_models():
        try:
            if digest(path) == model_hash:
                return path
        except OSError:
            continue
    return None
