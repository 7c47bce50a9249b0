"""CPU inference fast path: channels_last, depthwise FIR, single-weight modconv, cached frozen weights.

Everything is compared with the autograd-recording float32 path (which takes none of the shortcuts) at 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from core.models.stylegan import Generator, GeneratorConfig
from core.nn.layers import Blur, Downsample, Upsample
from core.nn.modulated import ModulatedConv2d, conv1x1


def _generator(version: int) -> Generator:
    torch.manual_seed(0)
    cfg = GeneratorConfig(
        img_resolution=32, z_dim=32, w_dim=32, n_mlp=2, channels=(64, 32, 16, 8), version=version
    )
    G = Generator(cfg).eval()
    with torch.no_grad():  # non-trivial biases and noise strengths so every epilogue term is exercised
        for name, p in G.named_parameters():
            if name.endswith("bias") or "noise.weight" in name:
                p.normal_(0, 0.3)
    return G


def _reference(G: Generator, ws: torch.Tensor, **kw) -> torch.Tensor:
    # Grad mode with trainable weights: no caches, no in-place epilogue, multiply-add FIR.
    G.requires_grad_(True)
    out = G.synthesis(ws.clone().requires_grad_(True), **kw).detach()
    G.requires_grad_(False)
    return out


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("noise_mode", ["const", "none"])
def test_inference_matches_autograd_path(version: int, noise_mode: str) -> None:
    G = _generator(version)
    ws = G.mapping(torch.randn(3, 32, generator=torch.Generator().manual_seed(1))).detach()
    ref = _reference(G, ws, noise_mode=noise_mode)
    G.requires_grad_(False)
    with torch.inference_mode():
        fast = G.synthesis(ws, noise_mode=noise_mode)
        single = torch.cat([G.synthesis(ws[i : i + 1], noise_mode=noise_mode) for i in range(3)])
        again = G.synthesis(ws[:1], noise_mode=noise_mode)  # cached weights on the second call
    assert fast.is_contiguous() or fast.is_contiguous(memory_format=torch.channels_last)
    tol = 1e-4 * max(1.0, ref.abs().max().item())  # random weights give images beyond [-1, 1]
    assert (fast - ref).abs().max().item() < tol
    assert (single - ref).abs().max().item() < tol
    assert (again - ref[:1]).abs().max().item() < tol


@pytest.mark.parametrize(
    "name", ["synthfaces128-stylegan2.safetensors", "synthfaces128-stylegan1.safetensors"]
)
def test_shipped_models_match_autograd_path(name: str) -> None:
    path = Path(__file__).resolve().parents[1] / "assets" / "models" / name
    if not path.is_file():
        pytest.skip(f"{name} not shipped in this checkout")
    from core.checkpoints import load_generator

    G = load_generator(path)
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(7)), truncation_psi=0.7)
    ref = _reference(G, ws.detach()[:1])
    with torch.inference_mode():
        fast = G.synthesis(ws[:1])
    assert (fast - ref).abs().max().item() < 1e-4


def test_batch1_reference_paths_agree() -> None:
    G = _generator(2)
    ws = G.mapping(torch.randn(1, 32, generator=torch.Generator().manual_seed(2))).detach()
    fused = _reference(G, ws, fused_modconv=True)
    scaled = _reference(G, ws, fused_modconv=False)
    assert (fused - scaled).abs().max().item() < 1e-4


def test_frozen_cache_follows_in_place_weight_updates() -> None:
    G = _generator(2).requires_grad_(False)
    ws = G.mapping(torch.randn(1, 32, generator=torch.Generator().manual_seed(3))).detach()
    with torch.inference_mode():
        before = G.synthesis(ws)
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, ModulatedConv2d):
                m.weight.mul_(torch.linspace(0.5, 1.5, m.weight.shape[2])[None, None, :, None, None])
    ref = _reference(G, ws)
    with torch.inference_mode():
        after = G.synthesis(ws)
    assert (after - before).abs().max().item() > 1e-2
    assert (after - ref).abs().max().item() < 1e-4


def test_frozen_cache_usable_for_optimising_w() -> None:
    G = _generator(2).requires_grad_(False)
    ws = G.mapping(torch.randn(1, 32, generator=torch.Generator().manual_seed(4))).detach()
    with torch.inference_mode():
        G.synthesis(ws)  # fills the caches inside inference mode
    w = ws.clone().requires_grad_(True)
    G.synthesis(w).square().mean().backward()  # must not trip over inference tensors
    assert w.grad is not None and torch.isfinite(w.grad).all()


@pytest.mark.parametrize(
    "module, shape",
    [
        (Upsample([1, 3, 3, 1]), (2, 3, 9, 9)),
        (Upsample([1, 2, 1]), (1, 2, 5, 5)),
        (Upsample([1, 3, 3, 1], factor=4), (1, 2, 5, 5)),
        (Blur([1, 3, 3, 1], pad=(2, 2), upsample_factor=2), (1, 5, 19, 19)),
        (Blur([1, 3, 3, 1], pad=(2, 1)), (1, 3, 8, 8)),
        (Downsample([1, 3, 3, 1]), (2, 4, 16, 16)),
    ],
)
def test_depthwise_fir_matches_multiply_adds(module: torch.nn.Module, shape: tuple[int, ...]) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(5))
    ref = module(x.clone().requires_grad_(True)).detach()
    with torch.no_grad():
        for xx in (x, x.contiguous(memory_format=torch.channels_last)):
            out = module(xx)
            assert out.shape == ref.shape
            assert (out - ref).abs().max().item() < 1e-5


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("per_sample", [False, True])
def test_conv1x1_matches_conv2d(channels_last: bool, per_sample: bool) -> None:
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(2, 8, 5, 7, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(2, 3, 8, generator=gen) if per_sample else torch.randn(3, 8, generator=gen)
    out = conv1x1(x, w)
    ref = torch.cat([F.conv2d(x[i : i + 1], (w[i] if per_sample else w)[:, :, None, None]) for i in range(2)])
    assert out.shape == (2, 3, 5, 7)
    assert (out - ref).abs().max().item() < 1e-5


def test_render_fast_path_setting_is_validated_and_off_the_gpu_changes_nothing() -> None:
    from core.fastpath import FAST_PRESETS, render_fast_path, set_render_fast_path
    from core.render import Recipe, render_tensor

    G = _generator(2).eval().requires_grad_(False)
    recipe = Recipe(seed=3, truncation_psi=0.7)
    ref = render_tensor(G, recipe)
    with pytest.raises(ValueError, match="fast path must be one of"):
        set_render_fast_path("turbo")
    try:
        for preset in FAST_PRESETS:
            set_render_fast_path(preset)
            assert render_fast_path(G) is None  # CPU generators always render eagerly
            assert torch.equal(render_tensor(G, recipe), ref)
    finally:
        set_render_fast_path("off")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_render_fast_path_on_gpu_matches_eager() -> None:
    from core.fastpath import psnr, render_fast_path, set_render_fast_path
    from core.render import Recipe, render_tensor

    G = _generator(2).cuda().eval().requires_grad_(False)
    try:
        for mode in ("const", "none"):
            recipe = Recipe(seed=5, truncation_psi=0.7, noise_mode=mode)
            set_render_fast_path("off")
            ref = render_tensor(G, recipe)
            set_render_fast_path("fp32")
            assert render_fast_path(G, mode) is not None
            assert (render_tensor(G, recipe) - ref).abs().max().item() < 1e-4
            set_render_fast_path("bf16")
            assert psnr(render_tensor(G, recipe), ref) > 35.0
    finally:
        set_render_fast_path("off")
