"""No-grad CPU synthesis plan (core.models.cpu_synthesis) against the autograd float32 path.

The reference records autograd with trainable weights, so it takes none of the shortcuts (no caches, no folded
gains, FIR filters as multiply-adds). Tolerance 1e-4 relative to the image range.
"""

from __future__ import annotations

import pytest
import torch

from core.models.cpu_synthesis import cpu_plan, fir_upsample_matrix
from core.models.stylegan import Generator, GeneratorConfig
from core.nn.layers import Upsample


def _generator(**overrides) -> Generator:
    torch.manual_seed(0)
    # 64 px: the skip image is upsampled by dense (4..16 px) and separable (32 px) matrices; at batch 1 the
    # low resolutions scale activations and the high ones modulate weights.
    kw = dict(img_resolution=64, z_dim=16, w_dim=16, n_mlp=2, channels=(32, 16, 16, 8, 8))
    kw.update(overrides)
    G = Generator(GeneratorConfig(**kw)).eval()
    with torch.no_grad():  # non-trivial biases and noise strengths so every epilogue term is exercised
        for name, p in G.named_parameters():
            if name.endswith("bias") or "noise.weight" in name:
                p.normal_(0, 0.3)
    return G.requires_grad_(False)


def _ws(G: Generator, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    ws = G.mapping(torch.randn(n, G.z_dim, generator=gen))
    return ws + 0.5 * torch.randn(ws.shape, generator=gen)  # a different w per row, as style mixing gives


def _reference(G: Generator, ws: torch.Tensor, **kw):
    G.requires_grad_(True)
    try:
        out = G.synthesis(ws.clone().requires_grad_(True), **kw)
    finally:
        G.requires_grad_(False)
    return out


def _assert_close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    assert (a - b.detach()).abs().max().item() < 1e-4 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("noise_mode", ["const", "random", "none"])
@pytest.mark.parametrize("architecture", ["skip", "orig"])
def test_plan_matches_autograd_path(n: int, noise_mode: str, architecture: str) -> None:
    G = _generator(architecture=architecture)
    ws = _ws(G, n, seed=1)
    ref = _reference(G, ws, noise_mode=noise_mode, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        out = G.synthesis(ws, noise_mode=noise_mode, generator=torch.Generator().manual_seed(2))
        again = G.synthesis(ws, noise_mode=noise_mode, generator=torch.Generator().manual_seed(2))
    assert "_cpu_plan" in G.__dict__  # the plan ran, not the module-by-module path
    assert out.is_contiguous()
    _assert_close(out, ref)
    assert torch.equal(again, out)


@pytest.mark.parametrize("architecture", ["skip", "orig"])
def test_plan_noise_options_and_capture_match(architecture: str) -> None:
    G = _generator(architecture=architecture)
    ws = _ws(G, 2, seed=3)
    gen = torch.Generator().manual_seed(4)
    sizes = [2 ** ((i + 5) // 2) for i in range(G.num_layers)]
    noise = [
        torch.randn(r, r, generator=gen) if i % 2 else torch.randn(2, 1, r, r, generator=gen)
        for i, r in enumerate(sizes)
    ]
    noise[1] = noise[1].double()  # the module path casts explicit noise to the activations' dtype
    names = [name for name, _, _ in G.layer_names()]
    cases = [
        dict(noise_strength=[0.5 * i for i in range(G.num_layers)]),
        dict(noise_strength=1.5, noise_layers=[i % 3 != 0 for i in range(G.num_layers)]),
        dict(noise=noise),
        dict(capture=names),
    ]
    for kw in cases:
        ref = _reference(G, ws, **kw)
        with torch.no_grad():
            out = G.synthesis(ws, **kw)
        if "capture" in kw:
            (ref, ref_feats), (out, feats) = ref, out
            assert set(feats) == set(names)
            for name in names:
                _assert_close(feats[name], ref_feats[name])
        _assert_close(out, ref)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(conv_clamp=0.5),
        dict(blur_kernel=(1, 2, 1)),
        dict(img_channels=1),
        dict(architecture="orig", conv_clamp=0.5, img_channels=1),
    ],
    ids=["clamp", "3-tap-blur", "grey", "orig-clamp-grey"],
)
def test_plan_follows_the_config(overrides: dict) -> None:
    G = _generator(**overrides)  # conv_clamp=0.5: tight enough that every layer clamps
    ws = _ws(G, 2, seed=5)
    for batch in (ws[:1], ws):
        ref = _reference(G, batch)
        with torch.inference_mode():
            _assert_close(G.synthesis(batch), ref)


def test_plan_follows_in_place_updates_of_noise_maps_and_biases() -> None:
    G = _generator()
    ws = _ws(G, 1, seed=6)
    with torch.inference_mode():
        before = G.synthesis(ws)
    with torch.no_grad():
        G.noises.noise_0.mul_(-1.0)
        G.convs[-1].activate.bias.add_(0.5)
        G.to_rgbs[-1].conv.modulation.weight.mul_(2.0)
    with torch.inference_mode():
        after = G.synthesis(ws)
    assert (after - before).abs().max().item() > 1e-2
    _assert_close(after, _reference(G, ws))


@pytest.mark.parametrize("overrides", [dict(version=1), dict(architecture="resnet")])
def test_plan_only_for_frozen_float32_stylegan2_skip_or_orig_generators(overrides: dict) -> None:
    assert cpu_plan(_generator(**overrides)) is None
    assert cpu_plan(_generator(architecture="orig")) is not None
    G = _generator()
    assert cpu_plan(G) is not None
    G.convs[0].conv.weight.requires_grad_(True)
    assert cpu_plan(G) is None
    G.requires_grad_(False).double()
    assert cpu_plan(G) is None


@pytest.mark.parametrize("taps, size", [((1, 3, 3, 1), 5), ((1, 2, 1), 4), ((1, 3, 3, 1), 1)])
def test_fir_upsample_matrices_match_the_upsample_module(taps: tuple[int, ...], size: int) -> None:
    up = Upsample(list(taps))
    x = torch.randn(2, 3, size, size + 2, generator=torch.Generator().manual_seed(7))
    vert, horiz = up.taps
    a_v = fir_upsample_matrix(vert, size, up.factor, up.pad)
    a_h = fir_upsample_matrix(horiz, size + 2, up.factor, up.pad)
    ref = up(x.clone().requires_grad_(True)).detach()  # the multiply-add (autograd) path
    _assert_close(a_v @ x @ a_h.t(), ref)
