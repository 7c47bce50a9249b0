"""Start a new run from trained weights (transfer, or continuing on another machine without optimiser state).

A warm start copies network weights only: image count, schedule, optimisers, augment p and RNG start fresh,
as NVIDIA's trainer does when it resumes from a network pickle. Adam's moments rebuild within a few hundred
steps (StyleGAN2 uses beta1 = 0, so only the second moment carries history); G_ema keeps its weights and
follows G from there.

Sources, by what they hold:

* a run directory or one of its ``ckpt-*.pt``: G, D and G_ema;
* a weights snapshot written by :func:`export_weights` (``stylescope train --export-weights``): G, D, G_ema
  in one ``.safetensors`` (a fraction of a full checkpoint: no optimiser state);
* any generator file :func:`core.load_generator` reads (native, rosinality, NVIDIA pickle): G and G_ema;
  the discriminator then starts from its initialisation (said in the run's warnings).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from core.checkpoints.native import atomic_write
from core.errors import CheckpointError
from core.training import checkpoint as ckpt

WEIGHTS_FORMAT = "stylescope-train-weights"
_NETS = ("G", "D", "G_ema")


@dataclass
class InitWeights:
    """State dicts to start from (``D`` / ``G_ema`` may be missing) and where they came from."""

    G: dict[str, torch.Tensor]
    D: dict[str, torch.Tensor] | None = None
    G_ema: dict[str, torch.Tensor] | None = None
    kimg: float | None = None
    notes: list[str] = field(default_factory=list)


def export_weights(
    source: str | os.PathLike, out: str | os.PathLike, *, dtype: torch.dtype = torch.float32
) -> dict:
    """Write G, D and G_ema of a run (its latest checkpoint) or of one ``ckpt-*.pt`` to one safetensors file.

    Args:
        source: run directory or checkpoint file.
        out: destination ``.safetensors`` (written atomically).
        dtype: storage dtype of floating tensors (``torch.bfloat16`` halves the file).

    Returns:
        ``{"out", "kimg", "bytes", "tensors"}``.
    """
    state = _training_state(Path(source))
    tensors: dict[str, torch.Tensor] = {}
    for net in _NETS:
        for k, v in state[net].items():
            v = v.detach().to("cpu", copy=True)
            tensors[f"{net}.{k}"] = (v.to(dtype) if v.is_floating_point() else v).contiguous()
    meta = {
        "format": WEIGHTS_FORMAT,
        "config": json.dumps(state.get("config", {}), sort_keys=True),
        "kimg": str(float(state.get("kimg", 0.0))),
        "label_dim": str(int(state.get("label_dim", 0))),
    }
    atomic_write(out, lambda tmp: save_file(tensors, tmp, metadata=meta))
    return {
        "out": str(out),
        "kimg": float(meta["kimg"]),
        "bytes": Path(out).stat().st_size,
        "tensors": len(tensors),
    }


def load_init_weights(path: str | os.PathLike) -> InitWeights:
    """Read the weights a new run starts from (see the module docstring for the accepted sources).

    Raises:
        CheckpointError: missing path, unreadable file, or nothing usable in it.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"--init {p}: no such file or directory")
    state = None
    if p.is_dir():
        state = _training_state(p)
    elif p.suffix == ".pt":
        try:
            state = _training_state(p)
        except CheckpointError:
            state = None  # not ours: a rosinality / pSp file, read below as a generator
    if state is not None:
        kimg = float(state.get("kimg", 0.0))
        return InitWeights(
            G=state["G"],
            D=state["D"],
            G_ema=state["G_ema"],
            kimg=kimg,
            notes=[f"weights from {p.name} ({kimg:.1f} kimg): G, D, G_ema"],
        )
    if p.suffix == ".safetensors" and _safetensors_format(p) == WEIGHTS_FORMAT:
        try:
            flat = load_file(str(p))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{p.name}: unreadable weights snapshot ({e})") from None
        nets: dict[str, dict[str, torch.Tensor]] = {n: {} for n in _NETS}
        for k, v in flat.items():
            net, _, name = k.partition(".")
            if net not in nets:
                raise CheckpointError(f"{p.name}: unexpected tensor {k!r} in a weights snapshot")
            nets[net][name] = v
        if not nets["G"]:
            raise CheckpointError(f"{p.name}: the weights snapshot holds no generator")
        with safe_open(str(p), "pt") as f:
            kimg = float((f.metadata() or {}).get("kimg", 0.0))
        return InitWeights(
            G=nets["G"],
            D=nets["D"] or None,
            G_ema=nets["G_ema"] or None,
            kimg=kimg,
            notes=[f"weights from {p.name} ({kimg:.1f} kimg): " + ", ".join(n for n in _NETS if nets[n])],
        )
    from core.checkpoints.detect import load_generator

    G = load_generator(p)
    sd = {k: v.detach().clone() for k, v in G.state_dict().items()}
    return InitWeights(
        G=sd,
        G_ema=sd,
        notes=[f"generator from {p.name}; it holds no discriminator, so D starts from its initialisation"],
    )


def apply_init_weights(init: InitWeights, G: nn.Module, D: nn.Module, G_ema: nn.Module) -> None:
    """Copy ``init`` into the freshly built networks (G_ema falls back to G's weights).

    Raises:
        CheckpointError: the weights do not fit the run's architecture (names the first differences).
    """
    _load_strict(G, init.G, "G")
    _load_strict(G_ema, init.G_ema if init.G_ema is not None else init.G, "G_ema")
    if init.D is not None:
        _load_strict(D, init.D, "D")


def _load_strict(module: nn.Module, sd: dict[str, torch.Tensor], name: str) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    extra = [k for k in sd if k not in own]
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in sd and sd[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    if extra:
        problems.append(f"unexpected {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}")
    if shapes:
        problems.append(f"shape {'; '.join(shapes[:3])}{' ...' if len(shapes) > 3 else ''}")
    if problems:
        raise CheckpointError(
            f"--init: the {name} weights do not fit this run's architecture ({'; '.join(problems)}); "
            "use the same --arch, --res, widths and latent sizes as the source"
        )
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(sd[k].to(v.dtype))


def _training_state(p: Path) -> dict:
    if p.is_dir():
        _, state = ckpt.load_latest(p)
    else:
        state = ckpt.load_training_state(p)
    for net in _NETS:
        if not isinstance(state.get(net), dict):
            raise CheckpointError(f"{p.name}: the training state has no {net} weights")
    return state


def _safetensors_format(p: Path) -> str | None:
    try:
        with safe_open(str(p), "pt") as f:
            return (f.metadata() or {}).get("format")
    except (SafetensorError, OSError):
        return None
