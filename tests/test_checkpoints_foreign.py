"""Parity of foreign checkpoints with the outputs their own code computed (fixtures README §1, §2, §3).

Tolerance: max |ours - reference| < 1e-4 in float32 on CPU (README §0).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

import core
from core.checkpoints import describe_checkpoint, detect_format, load_generator
from core.models.stylegan import mix_styles

FIX = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "formats"
TOL = 1e-4

pytestmark = pytest.mark.skipif(
    not (FIX / "ref_nvidia_64.pkl").exists(),
    reason=f"reference fixtures not found at {FIX} (shared/ beside the clone)",
)


def check(name: str, got: torch.Tensor, ref: torch.Tensor) -> float:
    assert tuple(got.shape) == tuple(ref.shape), name
    err = (got.double() - ref.double()).abs().max().item()
    assert err < TOL, f"{name}: max|diff|={err:.3e}"
    return err


def _io(name: str) -> dict:
    return torch.load(FIX / name, map_location="cpu", weights_only=True)


# ----------------------------------------------------------------------------------------------- rosinality
@pytest.fixture(scope="module")
def ros():
    return load_generator(FIX / "ref_rosinality_64.pt"), _io("ref_rosinality_64_io.pt")


def test_rosinality_detect_and_describe():
    assert detect_format(FIX / "ref_rosinality_64.pt") == "rosinality"
    d = describe_checkpoint(FIX / "ref_rosinality_64.pt")
    assert d["format"] == "rosinality" and d["resolution"] == 64 and d["num_ws"] == 10
    assert d["channels"] == [32, 32, 32, 32, 16] and d["n_mlp"] == 8 and d["has_w_avg"]
    assert d["extra"]["args"]["size"] == 64 and d["extra"]["args"]["channel_multiplier"] == 1
    json.dumps(d)


def test_rosinality_module_state(ros):
    G, io = ros
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    assert G.cfg.channels == tuple(io["config"]["channels"][str(4 * 2**i)] for i in range(5))
    check("w_avg", G.w_avg[None], io["mean_latent"])
    for i, buf in enumerate(io["noise_buffers"]):
        assert torch.equal(getattr(G.noises, f"noise_{i}"), buf)


@torch.no_grad()
def test_rosinality_parity(ros):
    G, io = ros
    noise, n = io["noise"], io["n_latent"]
    w, w2 = G.mapping(io["z"]), G.mapping(io["z2"])
    check("w", w[:, 0], io["w"])
    check("w2", w2[:, 0], io["w2"])
    check("latent_a", w, io["latent_a"])
    check("img_a_plain", G.synthesis(w, noise=noise), io["img_a_plain"])
    wt = G.mapping(io["z"], truncation_psi=io["truncation"])
    check("latent_b", wt, io["latent_b"])
    check("img_b_trunc07", G.synthesis(wt, noise=noise), io["img_b_trunc07"])
    mix = mix_styles(w, w2, range(io["inject_index"], n))
    check("latent_c", mix, io["latent_c"])
    check("img_c_mix_inject4", G.synthesis(mix, noise=noise), io["img_c_mix_inject4"])
    check("img_d_wplus", G.synthesis(io["ws_plus"], noise=noise), io["img_d_wplus"])
    check("img_d_w_equals_a", G.synthesis(io["w"], noise=noise), io["img_d_w_equals_a"])
    check("img_e_stored_noise", G.synthesis(w, noise_mode="const"), io["img_e_stored_noise"])
    check("latent_e", w, io["latent_e"])


def test_rosinality_discriminator_loads_strictly():
    from core.checkpoints.rosinality import infer_discriminator_config, load_state_dict_checked
    from core.checkpoints.unpickler import torch_load_restricted
    from core.models.stylegan import Discriminator

    ck = torch_load_restricted(str(FIX / "ref_rosinality_64.pt"))
    cfg = infer_discriminator_config(ck["d"], source="d")
    assert cfg.img_resolution == 64 and cfg.channels == (32, 32, 32, 32, 16) and cfg.mbstd_num_features == 1
    D = Discriminator(cfg)
    load_state_dict_checked(D, ck["d"], source="d")
    with torch.no_grad():
        assert D(torch.zeros(4, 3, 64, 64)).shape == (4, 1)


# ---------------------------------------------------------------------------------------------------- NVIDIA
@pytest.fixture(scope="module")
def nv():
    return load_generator(FIX / "ref_nvidia_64.pkl"), _io("ref_nvidia_64_io.pt")


def test_nvidia_detect_and_describe():
    assert detect_format(FIX / "ref_nvidia_64.pkl") == "nvidia"
    d = describe_checkpoint(FIX / "ref_nvidia_64.pkl")
    assert d["format"] == "nvidia" and d["num_ws"] == 10 and d["n_mlp"] == 2 and d["has_w_avg"]
    assert d["channels"] == [64, 64, 64, 64, 32] and d["config"]["conv_clamp"] == 256
    assert d["extra"]["network"] == "G_ema"
    json.dumps(d)


def test_nvidia_module_state(nv):
    G, io = nv
    assert G.num_ws == io["num_ws"] and G.cfg.conv_clamp == 256
    assert torch.equal(G.w_avg, io["w_avg"])
    consts = list(io["noise_const"].values())
    assert len(consts) == G.num_layers
    for key, value in io["noise_const"].items():  # b{r}.conv{j}.noise_const -> noises.noise_i
        r, j = int(key.split(".b")[1].split(".")[0]), int(key.split(".conv")[1][0])
        i = 0 if r == 4 else 2 * (r.bit_length() - 1 - 3) + 1 + j
        assert torch.equal(getattr(G.noises, f"noise_{i}")[0, 0], value), key


@torch.no_grad()
def test_nvidia_parity(nv):
    G, io = nv
    z = io["z"]
    check("ws_psi1", G.mapping(z), io["ws_psi1"])
    check("ws_psi07", G.mapping(z, truncation_psi=0.7), io["ws_psi07"])
    check("ws_psi07_cutoff4", G.mapping(z, truncation_psi=0.7, truncation_cutoff=4), io["ws_psi07_cutoff4"])
    check("img_psi1", G(z, noise_mode="const"), io["img_psi1"])
    check("img_psi07", G(z, truncation_psi=0.7, noise_mode="const"), io["img_psi07"])
    check("img_psi07_cutoff4", G(z, truncation_psi=0.7, truncation_cutoff=4), io["img_psi07_cutoff4"])
    check("img_noise_none", G(z, noise_mode="none"), io["img_noise_none"])
    check(
        "img_synthesis_ws_given",
        G.synthesis(io["ws_given"], noise_mode="const"),
        io["img_synthesis_ws_given"],
    )
    # The fp16 reference outputs are informational only: float32 must be within their fp16 error, not 1e-4.
    err = (G(z) - io["img_psi1_default_fp16_blocks"]).abs().max().item()
    assert err < 0.1


# ------------------------------------------------------------------------------------------------------ pSp
@torch.no_grad()
def test_psp_decoder_parity():
    assert detect_format(FIX / "psp_narrow.pt") == "psp"
    G = load_generator(FIX / "psp_narrow.pt")
    io = _io("psp_narrow_io.pt")
    assert G.w_dim == 48 and G.num_ws == 10
    check("w_avg", G.w_avg, io["latent_avg"][0])
    check("y_noresize", G.synthesis(io["codes"], noise_mode="const"), io["y_noresize"])
    check("mix_inject_latent", G.mapping(io["mix_z"]), io["mix_inject_latent"])
    check("y_input_code_noresize", G(io["mix_z"], noise_mode="const"), io["y_input_code_noresize"])


def test_stargan_is_detected_but_not_a_generator():
    assert detect_format(FIX / "stargan_v2_narrow.ckpt") == "stargan_v2"
    with pytest.raises(core.CheckpointError, match="StarGAN v2.*not a style-based generator"):
        load_generator(FIX / "stargan_v2_narrow.ckpt")


# ------------------------------------------------------------------------------------------------ variants
@pytest.fixture(scope="module")
def ros_ckpt():
    from core.checkpoints.unpickler import torch_load_restricted

    return torch_load_restricted(str(FIX / "ref_rosinality_64.pt"))


@torch.no_grad()
def test_rosinality_without_latent_avg_estimates_w_avg(tmp_path, ros_ckpt, ros):
    path = tmp_path / "converted.pt"
    torch.save({"g_ema": ros_ckpt["g_ema"]}, path)
    d = describe_checkpoint(path)
    assert not d["has_w_avg"] and any("estimated from 10k samples (seed 0)" in n for n in d["notes"])
    with pytest.warns(UserWarning, match="estimating w_avg"):
        G = load_generator(path)
    G2, io = ros
    # The mean rosinality computed from 4096 samples, up to sampling error (both are estimates).
    ref = io["mean_latent"][0]
    assert ((G.w_avg - ref).norm() / ref.norm()).item() < 0.05
    check("img_a_plain", G.synthesis(G.mapping(io["z"]), noise=io["noise"]), io["img_a_plain"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        G3 = load_generator(FIX / "ref_rosinality_64.pt")
    assert torch.equal(G3.w_avg, G2.w_avg)


@torch.no_grad()
def test_bare_state_dict_and_legacy_torch_file(tmp_path, ros_ckpt, ros, monkeypatch):
    import core.checkpoints.detect as detect

    monkeypatch.setattr(detect, "W_AVG_SAMPLES", 1000)  # the bare file has no latent_avg; keep the test fast
    G0, io = ros
    legacy = tmp_path / "legacy.pt"
    torch.save(
        {"g_ema": ros_ckpt["g_ema"], "latent_avg": ros_ckpt["latent_avg"]},
        legacy,
        _use_new_zipfile_serialization=False,
    )
    bare = tmp_path / "bare.pt"
    torch.save(ros_ckpt["g_ema"], bare)
    for path in (legacy, bare):
        assert detect_format(path) == "rosinality"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            G = load_generator(path)
        check(
            f"{path.name} img_a_plain", G.synthesis(G.mapping(io["z"]), noise=io["noise"]), io["img_a_plain"]
        )


def test_load_does_not_touch_global_rng():
    state = torch.random.get_rng_state()
    load_generator(FIX / "ref_rosinality_64.pt")
    assert torch.equal(state, torch.random.get_rng_state())


# ------------------------------------------------------------------------------------------- convert round trip
@torch.no_grad()
def test_convert_round_trip(tmp_path, nv, capsys):
    from core.cli import main

    out = tmp_path / "nv.safetensors"
    assert main(["convert", str(FIX / "ref_nvidia_64.pkl"), str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["format"] == "nvidia" and report["output"] == str(out) and report["resolution"] == 64
    assert detect_format(out) == "native"
    G = load_generator(out)
    _, io = nv
    check(
        "native img_psi07_cutoff4",
        G(io["z"], truncation_psi=0.7, truncation_cutoff=4),
        io["img_psi07_cutoff4"],
    )
    assert describe_checkpoint(out)["format"] == "native"


def test_convert_errors_are_one_line(tmp_path, capsys):
    from core.cli import main

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    assert main(["convert", str(bad), str(tmp_path / "x.safetensors")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.pt" in err
    assert main(["convert", str(FIX / "ref_rosinality_64.pt"), str(tmp_path / "x.pt")]) != 0
    assert ".safetensors" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


# --------------------------------------------------------------------------------------- NVIDIA variants
# Re-pickle the reference snapshot in NVIDIA's format (a stand-in torch_utils.persistence module is needed only
# to *write* such pickles), with edits that produce the variants users have.
class _Persistent:
    def __init__(self, stub, fn):
        self.stub, self.fn = stub, fn

    def __reduce__(self):
        from core.checkpoints.unpickler import PersistentStub

        def plain(obj):
            return {k: plain(v) for k, v in obj.items()} if isinstance(obj, dict) else obj

        state = dict(self.stub.state)
        state["_init_kwargs"] = plain(state.get("_init_kwargs") or {})
        state["_modules"] = {
            k: _Persistent(v, self.fn) if isinstance(v, PersistentStub) else v
            for k, v in state["_modules"].items()
        }
        meta = {
            "type": "class",
            "version": 6,
            "module_src": self.stub.module_src,
            "class_name": self.stub.class_name,
        }
        return self.fn, ({**meta, "state": state},)


@pytest.fixture
def nv_writer(monkeypatch):
    import sys
    import types

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - never called by StyleScope
        raise AssertionError("must not run")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    pkg, mod = types.ModuleType("torch_utils"), types.ModuleType("torch_utils.persistence")
    mod._reconstruct_persistent_obj = _reconstruct_persistent_obj
    pkg.persistence = mod
    monkeypatch.setitem(sys.modules, "torch_utils", pkg)
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", mod)

    def write(path, data, protocol=4):
        from core.checkpoints.unpickler import PersistentStub

        obj = {
            k: _Persistent(v, _reconstruct_persistent_obj) if isinstance(v, PersistentStub) else v
            for k, v in data.items()
        }
        path.write_bytes(__import__("pickle").dumps(obj, protocol=protocol))
        return path

    return write


def _nv_data():
    from core.checkpoints.nvidia import read_network_pickle

    return read_network_pickle(str(FIX / "ref_nvidia_64.pkl"))


@torch.no_grad()
def test_nvidia_tf_converted_numpy1_spelling(tmp_path, nv, nv_writer):
    """TF-converted pickles have only G, D, G_ema; 2021-era files spell numpy globals numpy.core.*."""
    data = _nv_data()
    path = nv_writer(tmp_path / "tf.pkl", {k: data[k] for k in ("G", "D", "G_ema")}, protocol=2)
    raw = path.read_bytes()
    assert b"cnumpy._core.multiarray\nscalar\n" in raw
    path.write_bytes(raw.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))
    d = describe_checkpoint(path)
    assert d["format"] == "nvidia" and any("no training_set_kwargs" in n for n in d["notes"])
    G = load_generator(path)
    _, io = nv
    check("img_psi07", G(io["z"], truncation_psi=0.7), io["img_psi07"])


@torch.no_grad()
def test_nvidia_without_noise_inputs(tmp_path, nv, nv_writer):
    """use_noise=False networks have no noise_const/noise_strength: same as noise_mode='none'."""
    data = _nv_data()
    for _, stub in data["G_ema"].named_modules():
        if stub.class_name == "SynthesisLayer":
            stub.state["_parameters"].pop("noise_strength")
            stub.state["_buffers"].pop("noise_const")
            stub.state["use_noise"] = False
    G = load_generator(nv_writer(tmp_path / "nonoise.pkl", data))
    _, io = nv
    check("img_noise_none", G(io["z"], noise_mode="const"), io["img_noise_none"])
    check("img_noise_none (random)", G(io["z"], noise_mode="random"), io["img_noise_none"])


@torch.no_grad()
def test_nvidia_conditional_mapping(tmp_path, nv_writer):
    """Conditional G: mapping.embed, first fc takes [normalize(z), normalize(embed(c))] (NVIDIA MappingNetwork)."""
    from core.checkpoints.unpickler import PersistentStub

    data = _nv_data()
    G_nv, c_dim, gen = data["G_ema"], 5, torch.Generator().manual_seed(0)
    G_nv.state["_init_kwargs"] = {**G_nv.init_kwargs, "c_dim": c_dim}
    mapping = G_nv.modules["mapping"]
    fc0 = mapping.modules["fc0"].state["_parameters"]
    fc0["weight"] = torch.randn(512, 1024, generator=gen) * 100  # stored as randn / lr_multiplier
    embed_state = {"_parameters": {"weight": torch.randn(512, c_dim, generator=gen), "bias": torch.randn(512, generator=gen)},
                   "_buffers": {}, "_modules": {}, "_init_kwargs": {}}  # fmt: skip
    mapping.state["_modules"]["embed"] = PersistentStub(
        {"class_name": "FullyConnectedLayer", "state": embed_state}
    )
    G = load_generator(nv_writer(tmp_path / "cond.pkl", data))
    assert G.c_dim == c_dim
    z, c = torch.randn(4, 512, generator=gen), torch.eye(c_dim)[[0, 1, 2, 4]]
    sd = G_nv.state_dict()

    def norm(x):
        return x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()

    y = c @ (sd["mapping.embed.weight"] / c_dim**0.5).T + sd["mapping.embed.bias"]
    x = torch.cat([norm(z), norm(y)], 1)
    for i in range(2):
        w, b = sd[f"mapping.fc{i}.weight"], sd[f"mapping.fc{i}.bias"]
        x = torch.nn.functional.leaky_relu(x @ (w * 0.01 / w.shape[1] ** 0.5).T + b * 0.01, 0.2) * 2**0.5
    check("conditional w", G.mapping(z, c)[:, 0], x)
    assert describe_checkpoint(tmp_path / "cond.pkl")["c_dim"] == c_dim


@torch.no_grad()
def test_nvidia_orig_architecture(tmp_path, nv, nv_writer):
    """architecture='orig': only the last block has a torgb; the image is torgb(last features)."""
    data = _nv_data()
    synth = data["G_ema"].modules["synthesis"]
    for r in (4, 8, 16, 32, 64):
        block = synth.modules[f"b{r}"]
        block.state["architecture"] = "orig"
        if r != 64:
            block.state["_modules"].pop("torgb")
    G = load_generator(nv_writer(tmp_path / "orig.pkl", data))
    assert G.cfg.architecture == "orig"
    G_skip, io = nv
    ws = io["ws_given"]
    _, feats = G_skip.synthesis(ws, capture=["convs.7"])
    expected = G_skip.to_rgbs[3](feats["convs.7"], ws[:, -1])
    check("orig image", G.synthesis(ws), expected)


def test_nvidia_unsupported_variants_are_named(tmp_path, nv_writer):
    data = _nv_data()
    data["G_ema"].state["_init_kwargs"] = {**data["G_ema"].init_kwargs, "synthesis_kwargs": {"architecture": "skip", "resample_filter": [1, 2, 1]}}  # fmt: skip
    path = nv_writer(tmp_path / "filt.pkl", data)
    with pytest.raises(core.CheckpointError, match=r"resample_filter \[1, 2, 1\] is not supported"):
        load_generator(path)
    data = _nv_data()
    data["G_ema"].modules["synthesis"].modules["b8"].state["_parameters"]["extra"] = torch.zeros(2)
    with pytest.raises(core.CheckpointError, match=r"unexpected tensor\(s\) synthesis\.b8\.extra"):
        load_generator(nv_writer(tmp_path / "extra.pkl", data))
    data = _nv_data()
    data["G_ema"].modules["mapping"].modules["fc1"].state["_parameters"].pop("bias")
    with pytest.raises(core.CheckpointError, match="missing tensor 'mapping.fc1.bias'"):
        load_generator(nv_writer(tmp_path / "missing.pkl", data))
