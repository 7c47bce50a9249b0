"""StarGAN v2: parity with the official reference I/O, full-size key layout, loader errors, CLI and tab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.checkpoints.stargan_v2 import infer_config, load_stargan_v2
from core.errors import CheckpointError, InputError
from core.models.stargan_v2 import StarGANv2Config, build_stargan_v2
from core.translation import (
    average_style,
    latent_style,
    reference_style,
    translate_latent,
    translate_reference,
)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "formats"
CKPT = FIXTURES / "stargan_v2_narrow.ckpt"
IO = FIXTURES / "stargan_v2_narrow_io.pt"
MANIFEST = FIXTURES / "manifest_stargan_v2_celeba_hq.json"
TOL = 1e-4

needs_fixture = pytest.mark.skipif(
    not CKPT.is_file() or not IO.is_file(), reason="StarGAN v2 fixtures absent"
)


@pytest.fixture(scope="module")
def bundle():
    if not CKPT.is_file():
        pytest.skip("StarGAN v2 fixture absent")
    return load_stargan_v2(CKPT)


@pytest.fixture(scope="module")
def io():
    if not IO.is_file():
        pytest.skip("StarGAN v2 I/O fixture absent")
    return torch.load(IO, weights_only=True)


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


@needs_fixture
def test_inferred_config(bundle, io):
    cfg = bundle.config
    want = io["config"]
    for k in ("img_size", "style_dim", "latent_dim", "num_domains", "w_hpf", "max_conv_dim", "dim_in"):
        assert getattr(cfg, k) == want[k], k
    assert cfg.mapping_hidden_dim == want["mapping_hidden_dim"]
    assert not bundle.generator.training and not any(p.requires_grad for p in bundle.generator.parameters())
    enc = [[b.conv1.in_channels, b.conv2.out_channels] for b in bundle.generator.encode]
    dec = [[b.conv1.in_channels, b.conv2.out_channels] for b in bundle.generator.decode]
    assert enc == want["generator_encode_in_out"] and dec == want["generator_decode_in_out"]


@needs_fixture
def test_parity_styles_and_images(bundle, io):
    with torch.no_grad():
        s_lat = latent_style(bundle, io["z_trg"], io["y_trg"])
        assert _diff(s_lat, io["s_lat"]) < TOL
        assert _diff(bundle.generator(io["x_src"], s_lat), io["x_fake_lat"]) < TOL
        assert (
            _diff(translate_latent(bundle, io["x_src"], io["y_trg"], z=io["z_trg"]), io["x_fake_lat"]) < TOL
        )
        s_ref = reference_style(bundle, io["x_ref"], io["y_trg"])
        assert _diff(s_ref, io["s_ref"]) < TOL
        x_fake_ref = translate_reference(bundle, io["x_src"], io["x_ref"], io["y_trg"])
        assert _diff(x_fake_ref, io["x_fake_ref"]) < TOL
        s_src = reference_style(bundle, io["x_src"], io["y_src"])
        assert _diff(s_src, io["s_src"]) < TOL
        assert _diff(bundle.generator(x_fake_ref, s_src), io["x_rec"]) < TOL
        assert _diff(bundle.mapping.all_domains(io["z_trg"]), io["s_lat_all_domains"]) < TOL
        assert _diff(bundle.style_encoder.all_domains(io["x_ref"]), io["s_ref_all_domains"]) < TOL
    # outputs are unclamped, as in the official code
    assert io["x_fake_ref"].abs().max() > 1


@needs_fixture
def test_parity_psi(bundle, io):
    psi = float(io["psi"])
    s_avg = average_style(bundle, io["y_trg"], z_many=io["z_many"])
    assert _diff(s_avg, io["s_avg"]) < TOL
    assert _diff(torch.lerp(s_avg, io["s_lat"], psi), io["s_psi"]) < TOL
    x = translate_latent(bundle, io["x_src"], io["y_trg"], z=io["z_trg"], psi=psi, z_many=io["z_many"])
    assert _diff(x, io["x_fake_lat_psi"]) < TOL
    # psi = 0 gives the domain's average style regardless of z
    a = translate_latent(bundle, io["x_src"][:1], 1, seed=1, psi=0.0, num_avg=256)
    b = translate_latent(bundle, io["x_src"][:1], 1, seed=2, psi=0.0, num_avg=256)
    assert _diff(a, b) == 0


@needs_fixture
def test_latent_seeding(bundle, io):
    x = io["x_src"][:2]
    a = translate_latent(bundle, x, 0, seed=5)
    b = translate_latent(bundle, x, 0, generator=torch.Generator().manual_seed(5))
    c = translate_latent(bundle, x, 0, seed=6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(InputError, match="exactly one"):
        translate_latent(bundle, x, 0)
    with pytest.raises(InputError, match="domain"):
        translate_latent(bundle, x, 3, seed=0)
    with pytest.raises(InputError, match="64x64"):
        translate_reference(bundle, torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32), 0)


def _manifest_layout(net: dict) -> list[tuple[str, tuple[int, ...]]]:
    return [(e["key"], tuple(e["shape"])) for e in net["state_dict"]]


def test_full_size_layout_matches_manifest():
    if not MANIFEST.is_file():
        pytest.skip("StarGAN v2 manifest absent")
    m = json.loads(MANIFEST.read_text())
    c = m["config"]
    cfg = StarGANv2Config.official(
        c["img_size"], style_dim=c["style_dim"], latent_dim=c["latent_dim"], num_domains=c["num_domains"],
        w_hpf=c["w_hpf"],
    )  # fmt: skip
    b = build_stargan_v2(cfg, "meta")
    for name, module in (
        ("generator", b.generator),
        ("mapping_network", b.mapping),
        ("style_encoder", b.style_encoder),
    ):
        ours = [(k, tuple(v.shape)) for k, v in module.state_dict().items()]
        assert ours == _manifest_layout(m["networks"][name]), name
    assert len(b.generator.state_dict()) == m["networks"]["generator"]["num_keys"] == 125
    # inference from shapes alone recovers the config, with and without the (historically missing) hpf.filter
    sds = {n: {k: torch.empty(s, device="meta") for k, s in _manifest_layout(m["networks"][n])} for n in
           ("generator", "mapping_network", "style_encoder")}  # fmt: skip
    sds["generator"]["hpf.filter"] = torch.tensor([[-1.0, -1, -1], [-1, 8, -1], [-1, -1, -1]])
    assert infer_config(sds)[0] == cfg
    del sds["generator"]["hpf.filter"]
    cfg2, notes = infer_config({**sds, "fan": {}})
    assert cfg2 == cfg and any("hpf.filter" in n for n in notes) and any("FAN" in n for n in notes)


def test_w_hpf_model_refuses_without_masks():
    cfg = StarGANv2Config(
        img_size=32, num_domains=2, w_hpf=1.0, dim_in=8, max_conv_dim=16, mapping_hidden_dim=16
    )
    b = build_stargan_v2(cfg)
    for m in (b.generator, b.mapping, b.style_encoder):
        m.eval()
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(InputError, match="FAN"):
        translate_reference(b, x, x, 0)
    masks = (torch.ones(1, 1, 32, 32), torch.ones(1, 1, 32, 32))
    assert translate_latent(b, x, 1, seed=0, masks=masks).shape == (1, 3, 32, 32)


@needs_fixture
def test_truncated_and_broken_checkpoints(tmp_path):
    data = CKPT.read_bytes()
    cut = tmp_path / "cut_nets_ema.ckpt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as e:
        load_stargan_v2(cut)
    assert "\n" not in str(e.value) and str(cut) in str(e.value)
    ck = torch.load(CKPT, weights_only=True)
    del ck["generator"]["decode.1.conv2.weight"]
    ck["style_encoder"]["unshared.0.weight"] = torch.zeros(64, 3)
    bad = tmp_path / "bad.ckpt"
    torch.save(ck, bad)
    with pytest.raises(CheckpointError, match="generator .*missing decode.1.conv2.weight"):
        load_stargan_v2(bad)
    ck = torch.load(CKPT, weights_only=True)
    ck["style_encoder"]["unshared.0.weight"] = torch.zeros(64, 3)
    torch.save(ck, bad)
    with pytest.raises(CheckpointError, match=r"misshapen unshared.0.weight \(64, 3\)"):
        load_stargan_v2(bad)
    torch.save({"generator": {}}, bad)
    with pytest.raises(CheckpointError, match="not a StarGAN v2"):
        load_stargan_v2(bad)


def _png(tmp_path: Path, name: str, x: torch.Tensor) -> Path:
    from core.images import save_png, to_pil

    return save_png(to_pil(x)[0], tmp_path / name)


@needs_fixture
def test_cli_translate(tmp_path, io, capsys):
    from core.cli import main

    src, ref = _png(tmp_path, "src.png", io["x_src"][:1]), _png(tmp_path, "ref.png", io["x_ref"][:1])
    out = tmp_path / "out.png"
    rc = main(["translate", "--checkpoint", str(CKPT), "--source", str(src), "--reference", str(ref),
               "--domain", "2", "--out", str(out), "--json"])  # fmt: skip
    assert rc == 0 and out.is_file()
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["mode"] == "reference" and report["config"]["num_domains"] == 3
    rc = main(["translate", "--checkpoint", str(CKPT), "--source", str(src), "--seed", "3", "--psi", "0.5",
               "--num-avg", "100", "--domain", "0", "--out", str(out)])  # fmt: skip
    assert rc == 0
    rc = main(["translate", "--checkpoint", str(CKPT), "--source", str(src), "--seed", "3", "--domain", "7",
               "--out", str(out)])  # fmt: skip
    assert rc == 2 and "domain" in capsys.readouterr().err


@needs_fixture
def test_tab_handlers(tmp_path, io):
    import gradio as gr

    from app.tabs import translate as tab

    path, info, dom = tab.load_checkpoint("", str(CKPT))
    assert path == str(CKPT) and "3 domains" in info and len(dom["choices"]) == 3
    src, ref = _png(tmp_path, "src.png", io["x_src"][:1]), _png(tmp_path, "ref.png", io["x_ref"][:1])
    img, text = tab.translate(path, tab.MODES[0], str(src), str(ref), 1, "0", 1.0)
    assert img.size == (64, 64) and "domain 1" in text
    img2, _ = tab.translate(path, tab.MODES[1], str(src), None, 1, "7", 0.7)
    img3, _ = tab.translate(path, tab.MODES[1], str(src), None, 1, "7", 0.7)
    assert img2.tobytes() == img3.tobytes()
    with pytest.raises(gr.Error, match="reference image"):
        tab.translate(path, tab.MODES[0], str(src), None, 1, "0", 1.0)
    with pytest.raises(gr.Error, match="checkpoint"):
        tab.translate("", tab.MODES[0], str(src), str(ref), 1, "0", 1.0)
    bad = tmp_path / "x.ckpt"
    bad.write_bytes(b"PK\x03\x04 nope")
    with pytest.raises(gr.Error) as e:
        tab.load_checkpoint(str(bad), None)
    assert "\n" not in str(e.value)


def test_missing_hpf_filter_is_rebuilt(tmp_path):
    cfg = StarGANv2Config(
        img_size=32, num_domains=2, w_hpf=1.0, dim_in=8, max_conv_dim=16, mapping_hidden_dim=16
    )
    b = build_stargan_v2(cfg)
    g = b.generator.state_dict()
    del g["hpf.filter"]  # the released CelebA-HQ file predates the buffer
    path = tmp_path / "100000_nets_ema.ckpt"
    torch.save({"generator": g, "mapping_network": b.mapping.state_dict(),
                "style_encoder": b.style_encoder.state_dict()}, path)  # fmt: skip
    loaded = load_stargan_v2(path)
    assert loaded.config == cfg and any("hpf.filter" in n for n in loaded.notes)
    want = torch.tensor([[-1.0, -1, -1], [-1, 8, -1], [-1, -1, -1]])
    assert torch.equal(loaded.generator.hpf.filter, want)
