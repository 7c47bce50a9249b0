"""NVIDIA network pickles (stylegan2-ada-pytorch, and StyleGAN2 networks saved by the stylegan3 code).

A snapshot is ``pickle.dump({training_set_kwargs, G, D, G_ema, augment_pipe})`` in which every network is a
``torch_utils.persistence`` object carrying its source code (TF-converted pickles hold only ``G, D, G_ema``).
:mod:`core.checkpoints.unpickler` rebuilds parameters, buffers and init kwargs without executing anything.
This module maps ``G_ema`` (Karras et al. 2020, StyleGAN2 config F; the ADA code of Karras et al. 2020,
"Training Generative Adversarial Networks with Limited Data") onto StyleScope's rosinality-layout modules:

```
mapping.fc{i}.{weight,bias}      -> style.{i+1}.*          mapping.embed.* -> embed.*   mapping.w_avg -> w_avg
synthesis.b4.const [C,4,4]       -> input.input [1,C,4,4]
<L>.weight [O,I,3,3]             -> <R>.conv.weight [1,O,I,3,3]      <L>.affine.* -> <R>.conv.modulation.*
<L>.noise_strength []            -> <R>.noise.weight [1]             <L>.bias     -> <R>.activate.bias
b4.conv1 -> conv1;  b{r}.conv0 -> convs.{2k};  b{r}.conv1 -> convs.{2k+1}           (k = log2(r) - 3)
b4.torgb -> to_rgb1; b{r}.torgb -> to_rgbs.{k}   (architecture "skip"; the last torgb -> to_rgb otherwise)
torgb weight [C,I,1,1] -> [1,C,I,1,1];  bias [C] -> [1,C,1,1]      b{r}.skip.weight -> skips.{k}.1.weight
b4.conv1.noise_const [4,4] -> noises.noise_0 [1,1,4,4];  b{r}.conv0 -> noise_{2k+1};  b{r}.conv1 -> noise_{2k+2}
```

StyleScope always computes in float32, which equals NVIDIA's ``force_fp32=True`` (their default runs the top
``num_fp16_res`` blocks in float16 and differs by ~1e-2).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from core.checkpoints.rosinality import ForeignGenerator, _is_kernel, _jsonable
from core.checkpoints.unpickler import PersistentStub, restricted_load
from core.errors import CheckpointError
from core.models.stylegan import GeneratorConfig

STYLEGAN3_MESSAGE = "StyleGAN3 networks are not supported yet"
_STYLEGAN3_CLASSES = {"SynthesisInput"}


def read_network_pickle(path: str) -> Any:
    """Unpickle an NVIDIA network pickle with the restricted unpickler (nothing from the file runs)."""
    with open(path, "rb") as f:
        return restricted_load(f, path)


def find_generator(data: Any, *, source: str) -> tuple[str, PersistentStub]:
    """Pick the generator to use from a network pickle: ``G_ema``, else ``G``, else a bare Generator.

    Raises:
        CheckpointError: when the pickle holds no generator (says what it holds instead).
    """
    if isinstance(data, PersistentStub):
        data = {"network": data}
    if not isinstance(data, Mapping):
        raise CheckpointError(
            f"{source}: unknown format: a pickle holding a {type(data).__name__}, not networks"
        )
    for key in ("G_ema", "G"):
        if isinstance(data.get(key), PersistentStub):
            return key, data[key]
    for key, value in data.items():
        if isinstance(value, PersistentStub) and value.class_name == "Generator":
            return str(key), value
    found = ", ".join(
        f"{k}={v.class_name}" if isinstance(v, PersistentStub) else f"{k}={type(v).__name__}"
        for k, v in data.items()
    )
    raise CheckpointError(f"{source}: the pickle holds no generator network (found {found or 'nothing'})")


def is_stylegan3(G: PersistentStub) -> bool:
    """StyleGAN3 generators: a ``SynthesisInput`` / ``L0_36_512``-style layers and no ``b4`` block."""
    names = {stub.class_name for _, stub in G.named_modules()}
    if names & _STYLEGAN3_CLASSES:
        return True
    synth = G.modules.get("synthesis")
    if isinstance(synth, PersistentStub):
        sub = synth.modules
        if "b4" not in sub and any(re.fullmatch(r"L\d+_\d+_\d+", k) for k in sub):
            return True
    skw = G.init_kwargs.get("synthesis_kwargs") or {}
    return "magnitude_ema_beta" in skw and "b4" not in (
        synth.modules if isinstance(synth, PersistentStub) else {}
    )


def _kw(d: Any, key: str, default: Any) -> Any:
    if isinstance(d, Mapping) and d.get(key) is not None:
        return d[key]
    return default


def nvidia_config(
    sd: Mapping[str, Tensor], init_kwargs: Mapping[str, Any], *, source: str, architecture: str | None = None
) -> tuple[GeneratorConfig, dict[str, Any]]:
    """Our :class:`GeneratorConfig` for an NVIDIA StyleGAN2 ``G_ema`` (shapes win over kwargs for widths).

    Args:
        sd: the NVIDIA state dict (any device, including meta).
        init_kwargs: ``G_ema.init_kwargs`` (``z_dim, w_dim, c_dim, img_resolution, img_channels,
            mapping_kwargs, synthesis_kwargs``).
        source: file name for messages.
        architecture: the synthesis blocks' ``architecture`` attribute when known.

    Returns:
        (config, facts) where facts holds mapping details needed by :func:`nvidia_to_rosinality`.

    Raises:
        CheckpointError: for layouts StyleScope cannot reproduce (named).
    """
    mkw = init_kwargs.get("mapping_kwargs") or {}
    skw = init_kwargs.get("synthesis_kwargs") or {}
    try:
        z_dim, w_dim = int(init_kwargs["z_dim"]), int(init_kwargs["w_dim"])
        c_dim, res = int(init_kwargs.get("c_dim") or 0), int(init_kwargs["img_resolution"])
        img_channels = int(init_kwargs.get("img_channels") or 3)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{source}: generator init kwargs lack {exc} (not a StyleGAN2 generator?)"
        ) from None
    arch = architecture or _kw(skw, "architecture", "skip")
    if arch not in ("skip", "orig", "resnet"):
        raise CheckpointError(
            f"{source}: synthesis architecture {arch!r} is not supported (skip, orig, resnet are)"
        )
    filt = _kw(skw, "resample_filter", [1, 3, 3, 1])
    if [float(x) for x in filt] != [1.0, 3.0, 3.0, 1.0]:
        raise CheckpointError(f"{source}: resample_filter {list(filt)} is not supported (only [1,3,3,1])")
    if _kw(mkw, "activation", "lrelu") != "lrelu":
        raise CheckpointError(
            f"{source}: mapping activation {mkw['activation']!r} is not supported (only lrelu)"
        )
    n_mlp = 0
    while f"mapping.fc{n_mlp}.weight" in sd:
        n_mlp += 1
    if n_mlp == 0:
        raise CheckpointError(f"{source}: missing tensor 'mapping.fc0.weight'")
    for i in range(n_mlp):
        out_f = sd[f"mapping.fc{i}.weight"].shape[0]
        if out_f != w_dim:
            raise CheckpointError(
                f"{source}: mapping layer width {out_f} (mapping.fc{i}.weight) differs from w_dim={w_dim}; "
                "only layer_features == w_dim is supported"
            )
    embed = sd.get("mapping.embed.weight")
    if c_dim and embed is not None and embed.shape[0] != w_dim:
        raise CheckpointError(
            f"{source}: conditional mapping with embed_features={embed.shape[0]} != w_dim={w_dim} is not supported"
        )
    if "synthesis.b4.const" not in sd:
        raise CheckpointError(f"{source}: missing tensor 'synthesis.b4.const'")
    channels = [int(sd["synthesis.b4.const"].shape[0])]
    log = int(math.log2(res)) if res > 0 else 0
    for lg in range(3, log + 1):
        key = f"synthesis.b{2**lg}.conv0.weight"
        if key not in sd:
            raise CheckpointError(f"{source}: missing tensor {key!r}")
        channels.append(int(sd[key].shape[0]))
    clamp = _kw(skw, "conv_clamp", None)
    try:
        cfg = GeneratorConfig(
            img_resolution=res,
            z_dim=z_dim,
            w_dim=w_dim,
            c_dim=c_dim,
            n_mlp=n_mlp,
            lr_mlp=float(_kw(mkw, "lr_multiplier", 0.01)),
            channels=tuple(channels),
            architecture=arch,
            conv_clamp=None if clamp is None else float(clamp),
            img_channels=img_channels,
        )
    except ValueError as exc:
        raise CheckpointError(f"{source}: unsupported generator layout ({exc})") from None
    return cfg, {"use_noise": "synthesis.b4.conv1.noise_const" in sd}


def nvidia_to_rosinality(sd: Mapping[str, Tensor], cfg: GeneratorConfig, *, source: str) -> dict[str, Tensor]:
    """Rename and reshape an NVIDIA StyleGAN2 ``G_ema`` state dict into StyleScope's layout (incl. ``w_avg``).

    Every NVIDIA tensor must be consumed: leftovers raise, so unknown variants never load silently.
    FIR ``resample_filter`` buffers are dropped (ours come from the config).
    """
    src = dict(sd)
    out: dict[str, Tensor] = {}

    def take(key: str) -> Tensor:
        if key not in src:
            raise CheckpointError(f"{source}: missing tensor {key!r}")
        return src.pop(key)

    def take_opt(key: str) -> Tensor | None:
        return src.pop(key, None)

    for i in range(cfg.n_mlp):
        out[f"style.{i + 1}.weight"] = take(f"mapping.fc{i}.weight")
        out[f"style.{i + 1}.bias"] = take(f"mapping.fc{i}.bias")
    if cfg.c_dim:
        out["embed.weight"] = take("mapping.embed.weight")
        out["embed.bias"] = take("mapping.embed.bias")
    out["w_avg"] = take("mapping.w_avg")
    out["input.input"] = take("synthesis.b4.const")[None]

    def layer(nv: str, ours: str, noise_index: int) -> None:
        out[f"{ours}.conv.weight"] = take(f"{nv}.weight")[None]
        out[f"{ours}.conv.modulation.weight"] = take(f"{nv}.affine.weight")
        out[f"{ours}.conv.modulation.bias"] = take(f"{nv}.affine.bias")
        out[f"{ours}.activate.bias"] = take(f"{nv}.bias")
        strength = take_opt(f"{nv}.noise_strength")
        const = take_opt(f"{nv}.noise_const")
        if strength is None or const is None:  # use_noise=False: same network with zero noise strength
            w = out[f"{ours}.conv.weight"]
            strength = torch.zeros((), device=w.device, dtype=w.dtype)
            r = 2 ** ((noise_index + 5) // 2)
            const = torch.zeros(r, r, device=w.device, dtype=w.dtype)
        out[f"{ours}.noise.weight"] = strength.reshape(1)
        out[f"noises.noise_{noise_index}"] = const[None, None]

    def torgb(nv: str, ours: str) -> None:
        out[f"{ours}.conv.weight"] = take(f"{nv}.weight")[None]
        out[f"{ours}.conv.modulation.weight"] = take(f"{nv}.affine.weight")
        out[f"{ours}.conv.modulation.bias"] = take(f"{nv}.affine.bias")
        out[f"{ours}.bias"] = take(f"{nv}.bias")[None, :, None, None]

    layer("synthesis.b4.conv1", "conv1", 0)
    skip = cfg.architecture == "skip"
    if skip:
        torgb("synthesis.b4.torgb", "to_rgb1")
    for lg in range(3, cfg.log_size + 1):
        k, b = lg - 3, f"synthesis.b{2**lg}"
        layer(f"{b}.conv0", f"convs.{2 * k}", 2 * k + 1)
        layer(f"{b}.conv1", f"convs.{2 * k + 1}", 2 * k + 2)
        if skip:
            torgb(f"{b}.torgb", f"to_rgbs.{k}")
        if cfg.architecture == "resnet":
            out[f"skips.{k}.1.weight"] = take(f"{b}.skip.weight")
    if not skip:
        torgb(f"synthesis.b{cfg.img_resolution}.torgb", "to_rgb")
    leftovers = [k for k in src if not k.endswith("resample_filter")]
    if leftovers:
        more = f" (+{len(leftovers) - 3} more)" if len(leftovers) > 3 else ""
        raise CheckpointError(f"{source}: unexpected tensor(s) {', '.join(leftovers[:3])}{more}")
    return out


def _block_architecture(G: PersistentStub) -> str | None:
    synth = G.modules.get("synthesis")
    if isinstance(synth, PersistentStub):
        b4 = synth.modules.get("b4")
        if isinstance(b4, PersistentStub):
            arch = b4.state.get("architecture")
            return str(arch) if arch is not None else None
    return None


def from_network_pickle(data: Any, *, source: str) -> ForeignGenerator:
    """Turn an unpickled NVIDIA snapshot into a :class:`ForeignGenerator` (G_ema preferred).

    Raises:
        CheckpointError: no generator, a StyleGAN3 network, or a layout StyleScope cannot map.
    """
    key, G = find_generator(data, source=source)
    if is_stylegan3(G):
        raise CheckpointError(f"{source}: this pickle holds a StyleGAN3 generator; {STYLEGAN3_MESSAGE}")
    if G.class_name != "Generator":
        raise CheckpointError(f"{source}: {key} is a {G.class_name} network, not a StyleGAN2 Generator")
    try:
        sd = G.state_dict()
    except Exception as exc:
        raise CheckpointError(f"{source}: malformed network {key} ({exc})") from None
    init_kwargs = G.init_kwargs
    cfg, facts = nvidia_config(sd, init_kwargs, source=source, architecture=_block_architecture(G))
    ours = nvidia_to_rosinality(sd, cfg, source=source)
    w_avg = ours.pop("w_avg")
    notes = [f"NVIDIA network pickle: using {key}"]
    if key != "G_ema":
        notes.append(f"{key} used because the pickle has no G_ema")
    if not facts["use_noise"]:
        notes.append("the network has no noise inputs (use_noise=False): noise strength set to 0")
    if isinstance(data, Mapping) and "training_set_kwargs" not in data:
        notes.append("no training_set_kwargs (TF-converted or hand-made pickle)")
    nfp16 = _kw(init_kwargs.get("synthesis_kwargs"), "num_fp16_res", 0)
    if nfp16:
        notes.append(
            f"computed in float32 (NVIDIA's default runs {nfp16} top blocks in float16; equals force_fp32)"
        )
    extra = {
        "pickle_keys": [str(k) for k in data] if isinstance(data, Mapping) else [],
        "network": key,
        "class_name": G.class_name,
        "init_kwargs": _jsonable(init_kwargs),
    }
    return ForeignGenerator("nvidia", cfg, ours, w_avg, notes, extra, fill=_is_kernel)
