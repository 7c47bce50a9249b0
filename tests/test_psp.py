"""pSp encoder: checkpoint loading, parity with the official forward (psp_narrow_io.pt), full-size key layout,
style mixing, the encode API and CLI, and one-line errors for broken files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.checkpoints.psp import infer_psp_config, load_psp, psp_from_checkpoint
from core.errors import CheckpointError, InputError
from core.inversion.encode import encode, mix_latents, prepare_image, psp_forward
from core.models.psp import PSPConfig, PSPEncoder

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "formats"
TOL = 1e-4


def _need(name: str) -> Path:
    p = FIXTURES / name
    if not p.is_file():
        pytest.skip(f"reference fixture {p} not found (shared/ must sit beside the checkout)")
    return p


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert tuple(a.shape) == tuple(b.shape)
    return (a.double() - b.double()).abs().max().item()


@pytest.fixture(scope="module")
def psp():
    return load_psp(_need("psp_narrow.pt"))


@pytest.fixture(scope="module")
def io():
    return torch.load(_need("psp_narrow_io.pt"), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def outputs(psp, io):
    """Every reference call, computed once (the encoder costs a few seconds on 2 CPU cores)."""
    enc, dec, avg, _ = psp
    x, mask, inject = io["x"], io["mix_latent_mask"].tolist(), io["mix_inject_latent"]
    out = {}
    with torch.no_grad():
        out["codes_raw"] = enc(x)
        ws = encode(enc, x, latent_avg=avg)
        out["codes"] = ws
        img = dec.synthesis(ws, noise_mode="const")
        out["y_noresize"] = img
        out["y_resize"] = torch.nn.functional.adaptive_avg_pool2d(img, (256, 256))
        out["y_input_code_noresize"], out["inject"] = psp_forward(enc, dec, avg, io["mix_z"], input_code=True)
        for a, tag in ((io["mix_alpha"], "05"), (None, "None")):
            for resize in (False, True):
                # Re-encoding per call would cost seconds: the codes are deterministic, so mix them directly
                # and check psp_forward end to end once below.
                w = mix_latents(ws, mask, inject, a)
                y = dec.synthesis(w, noise_mode="const")
                if resize:
                    y = torch.nn.functional.adaptive_avg_pool2d(y, (256, 256))
                out[f"mix_alpha{tag}_{'resize' if resize else 'noresize'}"] = y
                out[f"mix_alpha{tag}_noresize_latents"] = w
    return out


def test_config_inferred_from_shapes(psp, io):
    enc, dec, avg, opts = psp
    cfg, ref = enc.cfg, io["config"]
    assert cfg.encoder_type == "GradualStyleEncoder"
    assert (cfg.n_styles, cfg.style_dim, cfg.input_nc) == (10, 48, 3)
    assert cfg.stage_widths == (16, 32, 48, 64) and cfg.input_width == ref["encoder_input_layer_width"]
    assert cfg.fpn_width == ref["style_blocks"]["in_c"]
    assert list(cfg.style_spatial) == ref["style_blocks"]["spatial_per_style"]
    assert dec.num_ws == 10 and dec.img_resolution == 64
    assert opts["device"] == "cpu" and opts["encoder_type"] == "GradualStyleEncoder"
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    assert PSPConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert _diff(avg, io["latent_avg"]) == 0.0


@pytest.mark.parametrize(
    "key",
    [
        "codes_raw",
        "codes",
        "y_noresize",
        "y_resize",
        "y_input_code_noresize",
        "mix_alpha05_noresize",
        "mix_alpha05_resize",
        "mix_alpha05_noresize_latents",
        "mix_alphaNone_noresize",
        "mix_alphaNone_resize",
        "mix_alphaNone_noresize_latents",
    ],
)
def test_parity_with_official_forward(outputs, io, key):
    assert _diff(outputs[key], io[key]) < TOL, key


def test_input_code_latents_match(outputs, io):
    assert _diff(outputs["inject"], io["mix_inject_latent"]) < TOL


def test_psp_forward_end_to_end_mix_resize(psp, io):
    enc, dec, avg, _ = psp
    x = io["x"][:1]
    with torch.no_grad():
        y, ws = psp_forward(
            enc,
            dec,
            avg,
            x,
            latent_mask=io["mix_latent_mask"].tolist(),
            inject_latent=io["mix_inject_latent"][:1],
            alpha=io["mix_alpha"],
            resize=True,
        )
    assert _diff(y, io["mix_alpha05_resize"][:1]) < TOL
    assert _diff(ws, io["mix_alpha05_noresize_latents"][:1]) < TOL


def test_mix_latents_semantics():
    ws = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(0))
    inj = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1))
    out = mix_latents(ws, [1, 3], inj, 0.25)
    assert torch.equal(out[:, [0, 2]], ws[:, [0, 2]])
    assert torch.allclose(out[:, 1], 0.25 * inj[:, 1] + 0.75 * ws[:, 1])
    assert torch.equal(mix_latents(ws, [2], inj, None)[:, 2], inj[:, 2])
    assert torch.equal(mix_latents(ws, [2], None, None)[:, 2], torch.zeros(2, 3))
    with pytest.raises(InputError, match="outside"):
        mix_latents(ws, [4], inj)


def _manifest():
    return json.loads(_need("manifest_psp_ffhq_encode.json").read_text())


def _layout(enc: torch.nn.Module) -> list[tuple[str, list[int]]]:
    return [(f"encoder.{k}", list(v.shape)) for k, v in enc.state_dict().items()]


def test_full_size_layout_matches_manifest():
    m = _manifest()
    ref = [(e["key"], e["shape"]) for e in m["state_dict"] if e["key"].startswith("encoder.")]
    with torch.device("meta"):
        enc = PSPEncoder(PSPConfig.official(m["config"]["output_size"]))
    assert enc.cfg.n_styles == m["config"]["n_styles"] == 18
    assert _layout(enc) == ref  # names, order and shapes
    assert (
        sum(t.numel() for t in enc.state_dict().values() if t.is_floating_point())
        == m["num_params"]["encoder"]
    )
    sd = {k[len("encoder.") :]: torch.empty(s, device="meta") for k, s in ref}
    assert infer_psp_config(sd, n_styles=18) == enc.cfg


@pytest.mark.parametrize(
    "variant", ["BackboneEncoderUsingLastLayerIntoW", "BackboneEncoderUsingLastLayerIntoWPlus"]
)
def test_backbone_variants_layout(variant):
    m = _manifest()
    v = m["encoder_variants"][variant]
    shared = [
        (e["key"], e["shape"])
        for e in m["state_dict"]
        if e["key"].startswith(("encoder.input_layer.", "encoder.body."))
    ]
    heads = [(e["key"], e["shape"]) for e in v["head_keys"]]
    with torch.device("meta"):
        enc = PSPEncoder(PSPConfig.official(1024, encoder_type=variant))
    assert sorted(_layout(enc)) == sorted(shared + heads)
    # The manifest counts float state-dict elements (parameters and BatchNorm running statistics).
    n = sum(t.numel() for t in enc.state_dict().values() if t.is_floating_point())
    assert n == v["num_params_encoder"]
    sd = {k[len("encoder.") :]: torch.empty(s, device="meta") for k, s in shared + heads}
    assert infer_psp_config(sd, n_styles=18) == enc.cfg


def test_backbone_variant_forward_shapes():
    torch.manual_seed(0)  # test-only: module init uses the global RNG
    base = dict(n_styles=4, style_dim=8, input_width=16, stage_widths=(16, 16, 32, 32), fpn_width=32)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    for variant, shape in (
        ("BackboneEncoderUsingLastLayerIntoW", (1, 8)),
        ("BackboneEncoderUsingLastLayerIntoWPlus", (1, 4, 8)),
    ):
        enc = PSPEncoder(PSPConfig(encoder_type=variant, **base)).eval()
        with torch.no_grad():
            assert tuple(enc(x).shape) == shape
            ws = encode(enc, x, latent_avg=torch.ones(4, 8))
        assert tuple(ws.shape) == (1, 4, 8)


def test_prepare_image():
    img = Image.new("RGB", (300, 200), (255, 0, 128))
    x = prepare_image(img)
    assert x.shape == (1, 3, 256, 256) and x.dtype == torch.float32
    assert torch.allclose(x[0, :, 10, 10], torch.tensor([1.0, -1.0, 128 / 255 * 2 - 1]), atol=1e-6)
    with pytest.raises(InputError):
        prepare_image(torch.zeros(3))


def test_bad_files_raise_checkpoint_error(tmp_path):
    src = _need("psp_narrow.pt")
    data = src.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_psp(cut)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"hello world, not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_psp(junk)
    with pytest.raises(CheckpointError, match="no such file"):
        load_psp(tmp_path / "missing.pt")


def test_missing_and_misshapen_keys(psp):
    ck = torch.load(_need("psp_narrow.pt"), map_location="cpu", weights_only=True)
    sd = dict(ck["state_dict"])
    del sd["encoder.latlayer1.bias"]
    with pytest.raises(CheckpointError, match="latlayer1.bias"):
        psp_from_checkpoint({**ck, "state_dict": sd}, source="x.pt")
    sd = dict(ck["state_dict"])
    sd["encoder.styles.3.linear.weight"] = torch.zeros(48, 47)
    with pytest.raises(CheckpointError, match="styles.3.linear.weight"):
        psp_from_checkpoint({**ck, "state_dict": sd}, source="x.pt")
    with pytest.raises(CheckpointError, match="latent_avg"):
        psp_from_checkpoint({**ck, "latent_avg": torch.zeros(10, 47)}, source="x.pt")
    with pytest.raises(CheckpointError, match="encoder"):
        psp_from_checkpoint(
            {"state_dict": {k: v for k, v in ck["state_dict"].items() if k.startswith("decoder.")}},
            source="x.pt",
        )


def test_cli_encode(tmp_path, capsys):
    from core.cli.encode import register

    src = _need("psp_narrow.pt")
    img_path = tmp_path / "face.png"
    Image.new("RGB", (64, 64), (200, 120, 90)).save(img_path)
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["encode", "--checkpoint", str(src), "--image", str(img_path), "--out", str(tmp_path / "o"), "--json"]
    )
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    ws = np.load(report["ws"])["ws"]
    assert ws.shape == (1, 10, 48)
    rec = Image.open(report["reconstruction"])
    assert rec.size == (64, 64)


def test_w_encoder_checkpoint_broadcasts_latent_avg(io):
    """A learn_in_w checkpoint (BackboneEncoderUsingLastLayerIntoW, latent_avg [1, w]) loads and broadcasts."""
    ck = torch.load(_need("psp_narrow.pt"), map_location="cpu", weights_only=True)
    cfg = PSPConfig(
        encoder_type="BackboneEncoderUsingLastLayerIntoW", n_styles=10, style_dim=48, input_width=16,
        stage_widths=(16, 32, 48, 64), fpn_width=64,
    )  # fmt: skip
    torch.manual_seed(0)  # test-only: module init uses the global RNG
    enc_sd = {f"encoder.{k}": v for k, v in PSPEncoder(cfg).state_dict().items()}
    dec_sd = {k: v for k, v in ck["state_dict"].items() if k.startswith("decoder.")}
    avg = io["latent_avg"][:1]
    loaded = psp_from_checkpoint(
        {"state_dict": {**enc_sd, **dec_sd}, "opts": {"learn_in_w": True}, "latent_avg": avg}, source="w.pt"
    )
    assert loaded.encoder.cfg == cfg and loaded.latent_avg.shape == (10, 48)
    x = io["x"][:1, :, ::4, ::4]  # the W head pools globally, so a small input keeps this test fast
    with torch.no_grad():
        ws = encode(loaded.encoder, x, latent_avg=loaded.latent_avg)
        w = loaded.encoder(x)
    assert ws.shape == (1, 10, 48)
    assert torch.allclose(ws, (w + avg)[:, None].expand(-1, 10, -1))
    with pytest.raises(InputError, match="latent_avg"):
        encode(loaded.encoder, x, latent_avg=None)
    with pytest.raises(InputError, match=r"\[N, 3"):
        encode(loaded.encoder, x[:, :2], latent_avg=avg)


@pytest.mark.gpu
def test_parity_cuda(io):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    enc, dec, avg, opts = load_psp(_need("psp_narrow.pt"), device="cuda")
    assert opts["device"] == "cuda"
    with torch.no_grad():
        y, ws = psp_forward(enc, dec, avg, io["x"].cuda())
    assert _diff(ws.cpu(), io["codes"]) < TOL
    assert _diff(y.cpu(), io["y_noresize"]) < TOL
