"""GAN inversion (core.inversion.project): recovery of generated images, W vs W+, stop/progress, errors, CLI, tab."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.inversion import make_loss, noise_regularization, project, psnr, resize_target
from core.models.stylegan import Generator
from tests.conftest import tiny_config

STEPS = 150


@pytest.fixture(scope="module")
def G() -> Generator:
    torch.manual_seed(0)  # test-only: module init uses the global RNG
    G = Generator(tiny_config()).eval().requires_grad_(False)
    G.estimate_w_avg(2000, seed=1)
    return G


@pytest.fixture(scope="module")
def w_target(G):
    """Image of a known w: exactly reachable in W."""
    g = torch.Generator().manual_seed(5)
    w = G.mapping(torch.randn(1, G.cfg.z_dim, generator=g))
    return G.synthesis(w, noise_mode="const")


@pytest.fixture(scope="module")
def mixed_target(G):
    """Coarse rows from one w, fine rows from another: reachable in W+, not in W."""
    g = torch.Generator().manual_seed(5)
    ws = G.mapping(torch.randn(2, G.cfg.z_dim, generator=g))
    mixed = ws[:1].clone()
    mixed[:, G.num_ws // 2 :] = ws[1, G.num_ws // 2 :]
    return G.synthesis(mixed, noise_mode="const")


def run(G, target, **kw):
    kw = {
        "num_steps": STEPS,
        "loss": "pixel",
        "w_avg_samples": 2000,
        "generator": torch.Generator().manual_seed(0),
        **kw,
    }
    return project(G, target, **kw)


@pytest.fixture(scope="module")
def w_result(G, w_target):
    return run(G, w_target, space="w")


def test_recovers_generated_image_in_w(G, w_target, w_result):
    r = w_result
    assert r.ws.shape == (1, G.num_ws, G.cfg.w_dim)
    assert torch.equal(r.ws[:, 0], r.ws[:, -1])  # W: every row the same
    assert len(r.losses) == STEPS == r.steps and not r.stopped
    assert r.loss_name == "pixel" and r.space == "w"
    # measured: 5.71 -> 0.14 (pixel pyramid), PSNR 21.7 dB after 150 steps on this tiny model
    assert r.final_loss < r.losses[0] / 20
    assert r.psnr > 20.0
    assert r.psnr == pytest.approx(psnr(r.image, w_target), abs=1e-4)
    assert len(r.noise) == G.num_layers
    # the generator is untouched
    assert all(not p.requires_grad for p in G.parameters())


def test_deterministic_with_seed(G, w_target):
    a, b = run(G, w_target, num_steps=20), run(G, w_target, num_steps=20)
    assert torch.equal(a.ws, b.ws) and a.losses == b.losses
    assert all(torch.equal(x, y) for x, y in zip(a.noise, b.noise, strict=True))
    other = run(G, w_target, num_steps=20, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(other.ws, a.ws)


def test_w_plus_reconstructs_at_least_as_well_as_w(G, mixed_target):
    w = run(G, mixed_target, space="w")
    wp = run(G, mixed_target, space="w+")
    # measured: W 0.163 (20.6 dB), W+ 0.127 (22.7 dB)
    assert wp.final_loss <= w.final_loss
    assert wp.psnr >= w.psnr
    assert not torch.equal(wp.ws[:, 0], wp.ws[:, -1])  # W+ rows differ


def test_should_stop_returns_best_so_far_and_progress_is_called(G, w_target):
    calls = []
    r = run(
        G,
        w_target,
        num_steps=100,
        progress=lambda i, n, loss: calls.append((i, n, loss)),
        should_stop=lambda: len(calls) >= 7,
    )
    assert r.stopped and r.steps == 7 and len(r.losses) == 7
    assert [c[0] for c in calls] == list(range(1, 8)) and all(c[1] == 100 for c in calls)
    assert calls[-1][2] == r.losses[-1]
    # the best step's latents are returned: their clean loss is close to the best noisy one seen
    assert r.final_loss <= r.losses[0]
    immediate = run(G, w_target, num_steps=5, should_stop=lambda: True)
    assert immediate.stopped and immediate.steps == 0 and immediate.ws.shape == (1, G.num_ws, G.cfg.w_dim)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"target": torch.zeros(1, 4, 32, 32)}, "3 colour channels"),
        ({"target": torch.zeros(3, 32, 32)}, "one image"),
        ({"space": "q"}, "space"),
        ({"num_steps": 0}, "steps"),
        ({"loss": "l2"}, "loss"),
        ({"noise_mode": "bogus"}, "noise_mode"),
    ],
)
def test_bad_inputs_raise_one_line_input_error(G, w_target, kw, match):
    target = kw.pop("target", w_target)
    with pytest.raises(InputError, match=match) as e:
        project(G, target, **{"num_steps": 3, **kw})
    assert "\n" not in str(e.value)


def test_target_is_resized_and_noise_regularisation_is_zero_for_smooth_noise(G, w_target):
    big = torch.nn.functional.interpolate(w_target, scale_factor=4, mode="nearest")
    assert torch.allclose(resize_target(big, 32), w_target, atol=1e-6)
    r = run(G, big, num_steps=3)
    assert r.image.shape == w_target.shape
    small = resize_target(w_target[:, :, :16, :20], 32)
    assert small.shape == (1, 3, 32, 32)
    g = torch.Generator().manual_seed(0)
    white = [torch.randn(1, 1, 64, 64, generator=g)]
    smooth = [torch.ones(1, 1, 64, 64)]
    assert noise_regularization(white) < 1e-3 < noise_regularization(smooth)


def test_lpips_falls_back_to_pixel_with_a_warning_when_weights_are_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty hub cache
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn, name = make_loss("lpips")
    assert name == "pixel"
    assert any("LPIPS" in str(w.message) and "pixel" in str(w.message) for w in caught)
    x = torch.zeros(1, 3, 32, 32)
    assert float(fn(x, x)) == 0.0 and float(fn(x, x + 1)) > 0


# ---------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def model_file(G, tmp_path_factory):
    from core.checkpoints.native import save_generator

    path = tmp_path_factory.mktemp("inv") / "tiny32.safetensors"
    save_generator(G, path)
    return path


@pytest.fixture(scope="module")
def target_png(w_target, tmp_path_factory):
    from core.images import save_png, to_pil

    return save_png(to_pil(w_target)[0], tmp_path_factory.mktemp("inv") / "target.png")


def test_cli_writes_png_latents_and_json_report(model_file, target_png, tmp_path, capsys):
    from core.cli import main

    out = tmp_path / "proj"
    argv = ["project", "--model", str(model_file), "--target", str(target_png), "--steps", "20"]
    argv += [
        "--space",
        "w+",
        "--loss",
        "pixel",
        "--seed",
        "3",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--json",
    ]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"loss_name", "final_loss", "psnr", "steps", "space"} <= set(report)
    assert report["steps"] == 20 and report["space"] == "w+" and report["loss_name"] == "pixel"
    with np.load(out / "projected_ws.npz") as z:
        assert z["ws"].shape == (1, 8, 32) and z["ws"].dtype == np.float32
    from core.images import load_image, read_png_text

    assert load_image(out / "projected.png").size == (32, 32)
    spec = json.loads(read_png_text(out / "projected.png")["stylescope-projection"])
    assert spec["kind"] == "projection" and len(spec["ws"]) == 8
    assert main([*argv[:6], "0", *argv[7:]]) == 2  # --steps 0: one-line error, exit status 2
    assert "steps" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- tab
def test_invert_tab_handler_on_tiny_model(model_file, target_png, tmp_path):
    import gradio as gr

    from app import models
    from app.tabs import invert

    models.configure("cpu")
    gallery, fig, info, latents, files = invert.invert(
        str(model_file), str(target_png), "W and W+", 15, "0", "pixel", progress=lambda *a, **k: None
    )
    assert [label for _, label in gallery] == ["target", "W reconstruction", "W+ reconstruction"]
    assert gallery[0][0].size == (32, 32)
    assert "| W |" in info and "| W+ |" in info
    specs = json.loads(latents)
    assert [s["space"] for s in specs] == ["w", "w+"]
    assert len(files) == 2 and all(f.endswith(".npz") for f in files)
    assert len(fig.axes[0].lines) == 2
    # The W+ reconstruction becomes the Recipe tab's "last image": rendering it gives the reconstruction back
    from app.tabs import recipe as recipe_tab

    last = invert.latents_recipe(latents)
    assert json.loads(last)["ws"] == specs[1]["recipe"]["ws"]
    rendered = recipe_tab.render_recipe(recipe_tab.last_recipe(last), str(model_file))
    diff = np.abs(
        np.asarray(rendered.convert("RGB"), np.int16) - np.asarray(gallery[2][0].convert("RGB"), np.int16)
    )
    assert diff.max() <= 1  # the same latents; the projection's own forward may round a pixel differently
    with pytest.raises(gr.Error, match="Upload"):
        invert.invert(str(model_file), None, "W", 5, "0", progress=lambda *a, **k: None)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(gr.Error, match="uploaded image"):
        invert.invert(str(model_file), str(bad), "W", 5, "0", progress=lambda *a, **k: None)
    # Stop: a stop request for this session ends the run at once with a (stopped) result
    invert.request_stop(None)
    orig = invert._stop_requested
    invert._stop_requested = lambda s: True
    try:
        _, _, info, _, _ = invert.invert(
            str(model_file), str(target_png), "W", 50, "0", "pixel", progress=lambda *a, **k: None
        )
    finally:
        invert._stop_requested = orig
    assert "stopped early" in info


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_projection_on_gpu_matches_its_own_seed(G, w_target):
    import copy

    Gc = copy.deepcopy(G).cuda()
    # Other tests in the session may switch on cuDNN autotuning and TF32 process-wide (the training engine's
    # backend set-up); bit-for-bit repeats need deterministic kernels.
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
        a = run(Gc, w_target.cuda(), num_steps=50)
        b = run(Gc, w_target.cuda(), num_steps=50)
    assert a.ws.device.type == "cuda" and a.image.device.type == "cuda"
    assert a.final_loss < a.losses[0] / 5
    torch.testing.assert_close(a.ws, b.ws, rtol=1e-4, atol=1e-4)


def test_cli_centre_crops_a_non_square_target(model_file, w_target, tmp_path):
    from PIL import Image

    from core.cli import main
    from core.images import save_png, to_pil

    wide = Image.new("RGB", (96, 32), (255, 255, 255))
    wide.paste(to_pil(w_target)[0], (32, 0))
    path = save_png(wide, tmp_path / "wide.png")
    out = tmp_path / "o"
    argv = ["project", "--model", str(model_file), "--target", str(path), "--steps", "2", "--loss", "pixel"]
    assert main([*argv, "--device", "cpu", "--out", str(out)]) == 0
    from core.images import from_pil, load_image

    torch.testing.assert_close(from_pil(load_image(out / "target.png")), to_pil_roundtrip(w_target))


def to_pil_roundtrip(images):
    from core.images import from_pil, to_pil

    return from_pil(to_pil(images))
