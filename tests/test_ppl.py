"""Perceptual path length: interpolation, the exact value for a linear generator, sampling, errors, cancel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.errors import InputError, StyleScopeError
from core.inversion.losses import lpips_weights_present
from core.metrics.ppl import face_crop, make_distance, perceptual_path_length, pixel_distance, slerp
from core.models.stylegan import Generator, GeneratorConfig


class LinearG(torch.nn.Module):
    """mapping = identity (broadcast to rows), synthesis = a fixed linear map of row 0 to a 3 x 8 x 8 image."""

    z_dim = 4
    num_ws = 3

    def __init__(self):
        super().__init__()
        self.register_buffer("w_avg", torch.zeros(4))
        self.register_buffer("A", torch.randn(3 * 8 * 8, 4, generator=torch.Generator().manual_seed(0)))

    def mapping(self, z, c=None, truncation_psi=1.0):
        return z[:, None].expand(-1, self.num_ws, -1)

    def synthesis(self, ws, noise_mode="const"):
        assert torch.equal(ws[:, 0], ws[:, -1])  # W-space paths set every row to the same w
        return (ws[:, 0] @ self.A.T).reshape(-1, 3, 8, 8)


def test_slerp_endpoints_unit_norm_and_constant_speed():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(5, 16, generator=g), torch.randn(5, 16, generator=g)
    ua, ub = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    assert torch.allclose(slerp(a, b, torch.zeros(5)), ua, atol=1e-6)
    assert torch.allclose(slerp(a, b, torch.ones(5)), ub, atol=1e-5)
    mid = slerp(a, b, torch.full((5,), 0.5))
    assert torch.allclose(mid.norm(dim=1), torch.ones(5), atol=1e-6)
    # Equal angles to both ends at t = 0.5.
    assert torch.allclose((mid * ua).sum(1), (mid * ub).sum(1), atol=1e-5)


def test_linear_generator_path_length_is_exact_in_w():
    """For img = A w the pixel PPL is mean((A (w1 - w0))^2) whatever t and epsilon are."""
    G = LinearG()
    n = 64
    gen = torch.Generator().manual_seed(7)
    z = torch.randn(2 * n, 4, generator=gen)  # the same draws perceptual_path_length makes for seed 7
    expected = ((z[n:] - z[:n]) @ G.A.T).square().mean(dim=1).double()
    # The reference filter: keep values between the "lower" 1st and the "higher" 99th percentile.
    lo = float(np.percentile(expected.numpy(), 1, method="lower"))
    hi = float(np.percentile(expected.numpy(), 99, method="higher"))
    r_end = perceptual_path_length(G, n=n, space="w", sampling="end", distance="pixel", seed=7, batch=n)
    assert r_end["distance"] == "pixel" and r_end["n"] == n and not r_end["cancelled"]
    assert r_end["ppl"] == pytest.approx(
        float(expected[(expected >= lo) & (expected <= hi)].mean()), rel=1e-2
    )
    assert r_end["median"] == pytest.approx(float(expected.median()), rel=2e-2)
    # A linear map has the same path length everywhere along the path and for any step.
    r_full = perceptual_path_length(G, n=n, space="w", sampling="full", distance="pixel", seed=7, batch=n)
    r_eps = perceptual_path_length(G, n=n, sampling="end", epsilon=1e-2, distance="pixel", seed=7, batch=n)
    assert r_full["ppl"] == pytest.approx(r_end["ppl"], rel=2e-2)
    assert r_eps["ppl"] == pytest.approx(r_end["ppl"], rel=1e-3)


def test_tiny_generator_is_deterministic_and_batch_independent():
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(img_resolution=16, z_dim=16, w_dim=16, n_mlp=2, channels=(8, 8, 8))).eval()
    calls = []
    a = perceptual_path_length(G, n=24, space="z", sampling="full", distance="pixel", seed=3, batch=8)
    b = perceptual_path_length(
        G,
        n=24,
        space="z",
        sampling="full",
        distance="pixel",
        seed=3,
        batch=8,
        progress=lambda d, n: calls.append(d),
    )
    c = perceptual_path_length(G, n=24, space="z", sampling="full", distance="pixel", seed=4, batch=8)
    assert a == b and a["ppl"] != c["ppl"] and calls == [8, 16, 24]
    assert math.isfinite(a["ppl"]) and a["ppl"] > 0
    w = perceptual_path_length(G, n=24, space="w", distance=pixel_distance, seed=3, batch=8, crop=True)
    assert w["distance"] == "pixel_distance" and w["crop"] and w["space"] == "w"
    cond = Generator(
        GeneratorConfig(img_resolution=16, z_dim=16, w_dim=16, c_dim=3, n_mlp=2, channels=(8, 8, 8))
    ).eval()
    for space in ("w", "z"):
        r = perceptual_path_length(cond, n=8, space=space, distance="pixel", batch=4)
        assert math.isfinite(r["ppl"]) and r["n"] == 8


def test_tf32_is_off_while_measuring_and_restored():
    seen = []

    def distance(x, y):
        seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        return pixel_distance(x, y)

    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        perceptual_path_length(LinearG(), n=4, distance=distance)
        assert seen == [(False, False)]
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (True, True)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_cancel_keeps_what_was_measured_and_bad_input_is_refused():
    G = LinearG()
    stops = iter([False, True])
    r = perceptual_path_length(G, n=100, batch=10, distance="pixel", should_stop=lambda: next(stops))
    assert r["cancelled"] and r["n"] == 10
    with pytest.raises(StyleScopeError, match="cancelled"):
        perceptual_path_length(G, n=10, distance="pixel", should_stop=lambda: True)
    for kwargs, match in (
        ({"space": "s"}, "space"),
        ({"sampling": "middle"}, "sampling"),
        ({"n": 0}, "n must be"),
        ({"epsilon": 0.0}, "epsilon"),
        ({"epsilon": float("nan")}, "epsilon"),
        ({"distance": "ssim"}, "distance"),
    ):
        with pytest.raises(InputError, match=match):
            perceptual_path_length(G, **{"distance": "pixel", **kwargs})


def test_face_crop_and_distance_fallback():
    img = torch.arange(64.0).reshape(1, 1, 8, 8)
    assert face_crop(img).shape == (1, 1, 4, 4) and face_crop(img)[0, 0, 0, 0] == 3 * 8 + 2
    if lpips_weights_present("vgg"):
        pytest.skip("LPIPS weights are installed here: no fallback to test")
    with pytest.raises(InputError, match="LPIPS VGG16 weights not found"):
        make_distance("lpips")
    with pytest.warns(UserWarning, match="pixel distance"):
        fn, name = make_distance("auto")
    assert name == "pixel" and fn is pixel_distance


def test_cli_reports_w_and_z_and_refuses_bad_input(tmp_path, capsys):
    import json

    from core.checkpoints.native import save_generator
    from core.cli import main

    torch.manual_seed(0)
    G = Generator(GeneratorConfig(img_resolution=16, z_dim=16, w_dim=16, n_mlp=2, channels=(8, 8, 8)))
    path = tmp_path / "g.safetensors"
    save_generator(G, path)
    out = tmp_path / "ppl.json"
    args = ["ppl", "--model", str(path), "--n", "16", "--distance", "pixel", "--device", "cpu"]
    assert main([*args, "--sampling", "end", "full", "--json", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(r["space"], r["sampling"]) for r in report["results"]] == [
        ("w", "end"),
        ("w", "full"),
        ("z", "end"),
        ("z", "full"),
    ]
    assert json.loads(out.read_text()) == report and all(r["ppl"] > 0 for r in report["results"])
    assert main([*args, "--epsilon", "0"]) != 0
    assert "epsilon" in capsys.readouterr().err
    assert main(["ppl", "--model", str(tmp_path / "missing.safetensors")]) != 0
    assert "no such file" in capsys.readouterr().err
