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
    # Deterministic (seed 0), and equal to the mean rosinality computed from 4096 samples up to sampling error.
    est = G.w_avg.clone()
    assert torch.equal(G.estimate_w_avg(10_000, seed=0), est)
    ref = io["mean_latent"][0]
    assert ((est - ref).norm() / ref.norm()).item() < 0.05
    check("img_a_plain", G.synthesis(G.mapping(io["z"]), noise=io["noise"]), io["img_a_plain"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        G3 = load_generator(FIX / "ref_rosinality_64.pt")
    assert torch.equal(G3.w_avg, G2.w_avg)


@torch.no_grad()
def test_bare_state_dict_and_legacy_torch_file(tmp_path, ros_ckpt, ros):
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
