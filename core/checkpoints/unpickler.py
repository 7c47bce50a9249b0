"""Restricted unpickling: read foreign checkpoints without ever running code from the file.

A pickle is a small program: each ``GLOBAL``/``STACK_GLOBAL`` opcode imports an arbitrary ``module.name`` and
``REDUCE`` calls it, so ``pickle.load`` on a downloaded file can run ``os.system`` (Python docs, "pickle —
Restricting globals"). Every global a pickle references goes through ``Unpickler.find_class``; this module
answers only from an explicit allow-list and refuses everything else *before* it is imported or called.

What is on the list, and why:

* NVIDIA network pickles (stylegan2-ada-pytorch / stylegan3, ``torch_utils.persistence``): each network is
  pickled as ``_reconstruct_persistent_obj(meta)`` where ``meta`` carries the module's ``__dict__`` *and the
  full source text of ``training/networks.py``*, which NVIDIA's loader ``exec``-utes. We map it to
  :class:`PersistentStub`, which keeps the source as an inert string and exposes the parameters, buffers and
  init kwargs. Tensor storages arrive as ``torch.storage._load_from_bytes(blob)``; the original uses
  an unrestricted ``torch.load`` on the blob, ours uses ``weights_only=True``.
* numpy scalars / dtypes / arrays under both spellings, ``numpy.core`` (numpy < 2, 2021-era files) and
  ``numpy._core`` (numpy >= 2).
* ``argparse.Namespace`` (rosinality training files store their ``args``) becomes :class:`NamespaceDict`.

Torch zip/legacy files (``.pt``) are read with torch's own restricted unpickler (``weights_only=True``); when
it refuses a file, :func:`scan_globals` lists the file's globals without executing anything so that the
error can name the offending one.
"""

from __future__ import annotations

import argparse
import collections
import io
import pickle
import zipfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import torch

from core.errors import CheckpointError

# Globals that torch's weights_only unpickler accepts in ordinary checkpoints, plus argparse.Namespace; used
# to find the first *offending* global when torch refuses a file.
_TORCH_FILE_SAFE_PREFIXES = ("torch._utils.", "torch.storage.", "torch.serialization.")
_TORCH_FILE_SAFE = {
    "collections.OrderedDict",
    "argparse.Namespace",
    "builtins.set",
    "builtins.frozenset",
    "builtins.bytearray",
    "torch.Size",
    "torch.device",
    "torch.nn.parameter.Parameter",
    "_codecs.encode",
}


def refusal_message(source: str, module: str, name: str) -> str:
    """The one-line error for a global that is not on the allow-list."""
    if module.startswith("dnnlib.tflib"):
        return (
            f"{source}: refusing to load: this is a TensorFlow StyleGAN pickle ({module}.{name}); convert it to a "
            "PyTorch network pickle with stylegan2-ada-pytorch's legacy.py first"
        )
    return f"{source}: refusing to load: the pickle references {module}.{name}, which is not on StyleScope's allow-list"


# ----------------------------------------------------------------------------------------------- stand-ins
class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a dict whose items are also attributes."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __setstate__(self, state: Any) -> None:  # BUILD with a plain __dict__ (defensive)
        if isinstance(state, dict):
            self.update(state)


class NamespaceDict(dict):
    """Stand-in for ``argparse.Namespace``: the attributes become dict items (``ns["size"]``, ``ns.size``)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setstate__(self, state: Any) -> None:
        # Namespace pickles as NEWOBJ + BUILD(state=__dict__); route the state into the dict.
        if isinstance(state, tuple) and len(state) == 2:  # (dict_state, slot_state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if isinstance(state, dict):
            self.update(state)


def namespace_to_dict(obj: Any) -> dict:
    """``argparse.Namespace`` / :class:`NamespaceDict` / dict -> plain dict (anything else -> ``{}``)."""
    if isinstance(obj, argparse.Namespace):
        return dict(vars(obj))
    if isinstance(obj, dict):
        return dict(obj)
    return {}


class PersistentStub:
    """Inert stand-in for one ``torch_utils.persistence`` object (an NVIDIA network module).

    Attributes:
        class_name: e.g. ``"Generator"``, ``"SynthesisLayer"``, ``"SynthesisInput"`` (StyleGAN3).
        version: persistence format version (6 for all released code).
        module_src: the embedded source text. Kept as data, never compiled or executed.
        state: the module's pickled ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``,
            ``_init_kwargs``, plain attributes such as ``architecture``).
    """

    def __init__(self, meta: Any):
        if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
            raise pickle.UnpicklingError("malformed torch_utils.persistence record")
        self.class_name = str(meta.get("class_name", "?"))
        self.version = meta.get("version")
        self.module_src = meta.get("module_src", "")
        self.state = meta["state"]

    @property
    def init_kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})

    @property
    def modules(self) -> dict[str, Any]:
        return dict(self.state.get("_modules") or {})

    def __getattr__(self, key: str) -> Any:
        state = self.__dict__.get("state")
        if state is not None:
            if key in state:
                return state[key]
            mods = state.get("_modules") or {}
            if key in mods:
                return mods[key]
        raise AttributeError(key)

    def __repr__(self) -> str:
        return f"<PersistentStub {self.class_name}>"

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, PersistentStub]]:
        """This module and every persistent submodule, depth first, with dotted names."""
        yield prefix.rstrip("."), self
        for key, mod in self.modules.items():
            if isinstance(mod, PersistentStub):
                yield from mod.named_modules(prefix + key + ".")

    def named_tensors(self, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
        """(key, tensor) in ``state_dict`` order: parameters, persistent buffers, then submodules."""
        skip = self.state.get("_non_persistent_buffers_set") or set()
        for key, value in (self.state.get("_parameters") or {}).items():
            if value is not None:
                yield prefix + key, value
        for key, value in (self.state.get("_buffers") or {}).items():
            if value is not None and key not in skip:
                yield prefix + key, value
        for key, mod in self.modules.items():
            if isinstance(mod, PersistentStub):
                yield from mod.named_tensors(prefix + key + ".")
            elif mod is not None:
                raise pickle.UnpicklingError(
                    f"submodule {prefix + key} is a {type(mod).__name__}, not a network"
                )

    def state_dict(self) -> collections.OrderedDict[str, torch.Tensor]:
        """Equals ``module.state_dict()`` of the original network."""
        return collections.OrderedDict((k, v.detach()) for k, v in self.named_tensors())


def _load_storage_blob(blob: bytes) -> Any:
    """Replacement for ``torch.storage._load_from_bytes``, with torch's restricted unpickler."""
    if not isinstance(blob, (bytes, bytearray)):
        raise pickle.UnpicklingError("tensor storage record is not bytes")
    try:
        return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:
        bad = first_disallowed(_scan_stream(io.BytesIO(blob), max_pickles=6))
        if bad:
            raise _Disallowed(*bad.rsplit(".", 1)) from None
        raise pickle.UnpicklingError(f"corrupt tensor storage ({_first_line(exc)})") from None


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Protocol-2 pickles spell ``bytes`` as _codecs.encode(str, "latin1"); allow that and nothing else.
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is only allowed for latin-1 bytes")
    return text.encode("latin-1")


def _numpy_attr(name: str) -> Callable:
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    return getattr(core.multiarray, name)


def _allowed() -> dict[tuple[str, str], Callable[[], Any]]:
    """(module, name) -> thunk returning the object to use. Thunks keep numpy import lazy."""
    import numpy as np

    table: dict[tuple[str, str], Callable[[], Any]] = {
        ("collections", "OrderedDict"): lambda: collections.OrderedDict,
        ("builtins", "set"): lambda: set,
        ("builtins", "frozenset"): lambda: frozenset,
        ("_codecs", "encode"): lambda: _codecs_encode,
        ("argparse", "Namespace"): lambda: NamespaceDict,
        ("dnnlib.util", "EasyDict"): lambda: EasyDict,
        ("dnnlib", "EasyDict"): lambda: EasyDict,
        ("torch_utils.persistence", "_reconstruct_persistent_obj"): lambda: PersistentStub,
        ("torch.storage", "_load_from_bytes"): lambda: _load_storage_blob,
        ("torch._utils", "_rebuild_tensor_v2"): lambda: torch._utils._rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): lambda: torch._utils._rebuild_parameter,
        ("torch", "Size"): lambda: torch.Size,
        ("torch", "device"): lambda: torch.device,
        ("numpy", "dtype"): lambda: np.dtype,
        ("numpy", "ndarray"): lambda: np.ndarray,
    }
    if hasattr(torch._utils, "_rebuild_parameter_with_state"):
        table[("torch._utils", "_rebuild_parameter_with_state")] = lambda: (
            torch._utils._rebuild_parameter_with_state
        )
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        for name in ("scalar", "_reconstruct"):
            table[(mod, name)] = lambda name=name: _numpy_attr(name)
    # numpy dtype classes (numpy >= 1.25 pickles dtypes as e.g. numpy.dtypes.Float64DType).
    for mod in ("numpy.dtypes",):
        for name in ("Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType", "BoolDType"):
            table[(mod, name)] = lambda name=name: getattr(np.dtypes, name)
    return table


ALLOWED_GLOBALS: frozenset[str] = frozenset(f"{m}.{n}" for m, n in _allowed())


def _py3_name(module: str, name: str) -> tuple[str, str]:
    """Protocol 0-2 pickles may spell Python 2 names (``__builtin__.set``); map them as pickle itself does."""
    import _compat_pickle

    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _Disallowed(pickle.UnpicklingError):
    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.module, self.name = module, name


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals in :data:`ALLOWED_GLOBALS`.

    Anything else raises before it is imported, so ``REDUCE`` can never call it. Persistent ids (raw torch
    storages outside a torch file) are refused too.
    """

    def __init__(self, file: BinaryIO):
        super().__init__(file)
        self._table = _allowed()

    def find_class(self, module: str, name: str) -> Any:
        module, name = _py3_name(module, name)
        thunk = self._table.get((module, name))
        if thunk is None:
            raise _Disallowed(module, name)
        return thunk()

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("unexpected persistent id (a raw torch storage outside a torch file)")


def restricted_load(file: BinaryIO, source: str) -> Any:
    """Unpickle ``file`` with :class:`RestrictedUnpickler`; every failure becomes a one-line CheckpointError.

    Args:
        file: an open binary file positioned at the pickle.
        source: the file name used in error messages.

    Raises:
        CheckpointError: a disallowed global (named), a truncated stream or any other corruption.
    """
    try:
        return RestrictedUnpickler(file).load()
    except _Disallowed as exc:
        raise CheckpointError(refusal_message(source, exc.module, exc.name)) from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            RuntimeError, OverflowError, MemoryError, UnicodeDecodeError) as exc:  # fmt: skip
        raise CheckpointError(f"{source}: truncated or corrupt pickle ({_first_line(exc)})") from None


# ---------------------------------------------------------------------------------- scanning (no execution)
class _Anything:
    """Absorbs every operation a pickle can apply to an object, so a scan never stops early."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Anything:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Anything:
        return _Anything()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass

    def __hash__(self) -> int:
        return id(self)


class _ScanUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, seen: list[str]):
        super().__init__(file)
        self.seen = seen

    def find_class(self, module: str, name: str) -> Any:
        module, name = _py3_name(module, name)
        self.seen.append(f"{module}.{name}")
        return _Anything

    def persistent_load(self, pid: Any) -> Any:
        return _Anything()


def _scan_stream(file: BinaryIO, max_pickles: int = 1) -> list[str]:
    return scan_pickle(file, max_pickles=max_pickles)[0]


def scan_pickle(file: BinaryIO, *, max_pickles: int = 1) -> tuple[list[str], str | None]:
    """(globals referenced, error) for up to ``max_pickles`` consecutive pickles; nothing is executed.

    ``error`` is None when the first pickle parsed completely, else a one-line reason (truncated, corrupt).
    """
    seen: list[str] = []
    error = None
    for i in range(max_pickles):
        try:
            _ScanUnpickler(file, seen).load()
        except Exception as exc:
            if i == 0:
                error = _first_line(exc)
            break
    return seen, error


def scan_globals(data: bytes | BinaryIO, *, max_pickles: int = 1) -> list[str]:
    """Every global (``module.name``) referenced by a pickle stream, in order, without executing any of them.

    Each global resolves to an inert placeholder, so the scan is safe on hostile data.
    """
    file = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    return _scan_stream(file, max_pickles=max_pickles)


def torch_zip_pickle(path: str) -> bytes | None:
    """The ``data.pkl`` record of a torch zip checkpoint (None when there is none)."""
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
        return zf.read(min(names, key=len)) if names else None


def first_disallowed(names: list[str]) -> str | None:
    """The first global that neither torch's weights_only loader nor StyleScope accepts in a torch file."""
    for name in names:
        if name in _TORCH_FILE_SAFE or name.startswith(_TORCH_FILE_SAFE_PREFIXES):
            continue
        if name.startswith("torch.") and name.endswith("Storage"):
            continue
        return name
    return None


def torch_load_restricted(path: str, *, mmap: bool = False) -> Any:
    """``torch.load(weights_only=True)`` that also accepts ``argparse.Namespace`` (rosinality's ``args``).

    The Namespace is allowed through a context manager, never registered process-wide. Failures become
    CheckpointErrors; a refused global is named.

    Raises:
        CheckpointError: disallowed global, truncated or corrupt file.
    """
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:
        bad = None
        try:
            if zipfile.is_zipfile(path):
                data = torch_zip_pickle(path)
                bad = first_disallowed(scan_globals(data)) if data else None
            else:
                with open(path, "rb") as f:
                    bad = first_disallowed(scan_globals(f, max_pickles=6))
        except Exception:
            bad = None
        if bad is None:
            bad = _global_from_torch_message(str(exc))
        if bad:
            module, _, name = bad.rpartition(".")
            raise CheckpointError(refusal_message(path, module, name)) from None
        raise CheckpointError(f"{path}: truncated or corrupt PyTorch file ({_first_line(exc)})") from None


def _global_from_torch_message(msg: str) -> str | None:
    import re

    m = re.search(r"GLOBAL ([\w.]+)", msg)
    return m.group(1) if m else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    line = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return line[:200]
