"""Full-size checkpoint layouts (fixtures README §5): our modules accept exactly the official keys and shapes.

Models are built on the meta device (no memory, no init cost) from configs inferred from the manifests' shapes,
the same way the loaders infer them from real files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.checkpoints.nvidia import nvidia_config, nvidia_to_rosinality
from core.checkpoints.rosinality import (
    infer_discriminator_config,
    infer_generator_config,
    load_state_dict_checked,
)
from core.models.stylegan import Discriminator, Generator

FIX = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "formats"
pytestmark = pytest.mark.skipif(
    not (FIX / "manifest_nvidia_ada_1024.json").exists(),
    reason=f"manifests not found at {FIX} (shared/ beside the clone)",
)


def _manifest(name: str) -> dict:
    return json.loads((FIX / name).read_text())


def _meta_tensors(entries: list[dict], prefix: str = "") -> dict[str, torch.Tensor]:
    out = {}
    for e in entries:
        if e["key"].startswith(prefix):
            assert e["dtype"] in ("float32", "int64"), e
            dtype = torch.float32 if e["dtype"] == "float32" else torch.int64
            out[e["key"][len(prefix) :]] = torch.empty(e["shape"], dtype=dtype, device="meta")
    return out


def _shapes(sd: dict) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


@pytest.mark.parametrize(
    ("name", "res"), [("manifest_rosinality_256.json", 256), ("manifest_rosinality_1024_f.json", 1024)]
)
def test_rosinality_generator_layout(name, res):
    m = _manifest(name)
    sd = _meta_tensors(m["generator"]["state_dict"])
    assert len(sd) == m["generator"]["n_tensors"]
    cfg = infer_generator_config(sd, source=name)
    derived = m["derived"]
    assert cfg.img_resolution == res and cfg.num_ws == derived["n_latent"]
    assert cfg.num_layers == derived["num_layers (noise buffers / styled convs)"]
    assert cfg.channels == tuple(derived["channels"][str(4 * 2**i)] for i in range(len(cfg.channels)))
    assert (cfg.n_mlp, cfg.z_dim, cfg.w_dim) == (8, 512, 512)
    with torch.device("meta"):
        G = Generator(cfg)
    ours = _shapes(G.state_dict())
    assert ours.pop("w_avg") == (512,)
    assert ours == _shapes(sd)  # exactly the same keys and shapes
    load_state_dict_checked(G, {**sd, "w_avg": torch.empty(512, device="meta")}, source=name, assign=True)
    # Same parameter order, so rosinality's optimizer states (indices into parameters()) line up.
    assert [k for k, _ in G.named_parameters()] == m["generator"]["parameter_order_for_optimizer"]


@pytest.mark.parametrize("name", ["manifest_rosinality_256.json", "manifest_rosinality_1024_f.json"])
def test_rosinality_discriminator_layout(name):
    m = _manifest(name)
    sd = _meta_tensors(m["discriminator"]["state_dict"])
    cfg = infer_discriminator_config(sd, source=name)
    assert cfg.channels == tuple(m["derived"]["channels"][str(4 * 2**i)] for i in range(len(cfg.channels)))
    with torch.device("meta"):
        D = Discriminator(cfg)
    assert _shapes(D.state_dict()) == _shapes(sd)
    assert [k for k, _ in D.named_parameters()] == m["discriminator"]["parameter_order_for_optimizer"]
    load_state_dict_checked(D, sd, source=name, assign=True)


def test_psp_decoder_layout():
    m = _manifest("manifest_psp_ffhq_encode.json")
    sd = _meta_tensors(m["state_dict"], prefix="decoder.")
    cfg = infer_generator_config(sd, source="psp")
    assert cfg.img_resolution == 1024 and cfg.num_ws == m["config"]["n_styles"] == 18
    with torch.device("meta"):
        G = Generator(cfg)
    ours = _shapes(G.state_dict())
    ours.pop("w_avg")
    assert ours == _shapes(sd)


def _nvidia_root(m: dict) -> tuple[dict, str]:
    mods = {x["module"]: x for x in m["G_ema_persistent_modules"]}
    root = mods["<root>"]["attrs"]["_init_kwargs"]
    arch = mods["synthesis.b4"]["attrs"]["architecture"]["value"]
    return root, arch


def test_nvidia_generator_layout():
    m = _manifest("manifest_nvidia_ada_1024.json")
    sd = _meta_tensors(m["G_ema_state_dict"]["state_dict"])
    assert len(sd) == m["G_ema_state_dict"]["n_tensors"] == 182
    init_kwargs, arch = _nvidia_root(m)
    cfg, facts = nvidia_config(sd, init_kwargs, source="nvidia", architecture=arch)
    assert facts["use_noise"]
    derived = m["derived"]
    assert cfg.num_ws == derived["num_ws"] == 18 and cfg.conv_clamp == derived["conv_clamp"] == 256
    assert cfg.channels == tuple(derived["channels"][str(r)] for r in derived["block_resolutions"])
    assert (cfg.n_mlp, cfg.architecture, cfg.c_dim, cfg.img_channels) == (8, "skip", 0, 3)
    mapped = nvidia_to_rosinality(sd, cfg, source="nvidia")
    with torch.device("meta"):
        G = Generator(cfg)
    ours = _shapes(G.state_dict())
    kernels = {k for k in ours if k.endswith(".kernel")}
    # Every tensor of ours comes from the pickle except the FIR kernels (fixed by the config; NVIDIA's
    # resample_filter buffers are the same [1,3,3,1] filter, checked below).
    assert {k: v for k, v in ours.items() if k not in kernels} == _shapes(mapped)
    load_state_dict_checked(G, mapped, source="nvidia", fill=lambda k: k in kernels, assign=True)
    filters = [e for e in m["G_ema_state_dict"]["state_dict"] if e["key"].endswith("resample_filter")]
    ref = torch.tensor([1.0, 3.0, 3.0, 1.0])
    ref = torch.outer(ref, ref) / 64
    assert filters and all(torch.allclose(torch.tensor(e["value"]), ref) for e in filters)
    # And the rosinality 1024 config-F layout is the same model: identical key sets and shapes.
    ros = _shapes(_meta_tensors(_manifest("manifest_rosinality_1024_f.json")["generator"]["state_dict"]))
    assert {k: v for k, v in ours.items() if k != "w_avg"} == ros
