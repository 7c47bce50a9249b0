"""Generator / discriminator behaviour on tiny configs: the latent-control contract of CONTRACT.md."""

from __future__ import annotations

import pytest
import torch

from core.checkpoints.native import load_native, save_generator
from core.errors import CheckpointError
from core.models.stylegan import (
    Discriminator,
    DiscriminatorConfig,
    Generator,
    GeneratorConfig,
    channel_table,
    layer_groups,
    mix_styles,
)
from tests.conftest import tiny_config


def z_of(seed: int, n: int = 3, dim: int = 32) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("architecture", ["skip", "orig", "resnet"])
def test_save_load_round_trip_is_identical(tmp_path, version, architecture):
    torch.manual_seed(0)
    # Frozen like the loaded copy, so that both run the same (CPU inference) path.
    G = Generator(tiny_config(version=version, architecture=architecture)).eval().requires_grad_(False)
    G.estimate_w_avg(500, seed=0)
    path = tmp_path / "g.safetensors"
    save_generator(G, path)
    G2 = load_native(path)
    z = z_of(1)
    with torch.no_grad():
        assert torch.equal(G(z, truncation_psi=0.7), G2(z, truncation_psi=0.7))
    assert G2.cfg == G.cfg
    assert not list(tmp_path.glob("*.tmp"))


def test_outputs_are_deterministic_and_contract_shaped(tiny_G):
    z = z_of(3)
    a, b = tiny_G(z), tiny_G(z)
    assert torch.equal(a, b)
    assert a.shape == (3, 3, 32, 32) and a.dtype == torch.float32
    ws = tiny_G.mapping(z)
    assert ws.shape == (3, tiny_G.num_ws, 32)


def test_psi_zero_maps_every_sample_to_w_avg(tiny_G):
    ws = tiny_G.mapping(z_of(4, 5), truncation_psi=0.0)
    assert torch.allclose(ws, tiny_G.w_avg.expand_as(ws), atol=1e-6)


def test_truncation_cutoff_leaves_later_rows_untouched(tiny_G):
    z = z_of(5)
    full = tiny_G.mapping(z)
    cut = tiny_G.mapping(z, truncation_psi=0.5, truncation_cutoff=3)
    assert torch.equal(cut[:, 3:], full[:, 3:])
    expected = tiny_G.w_avg + 0.5 * (full[:, :3] - tiny_G.w_avg)
    assert torch.allclose(cut[:, :3], expected, atol=1e-6)
    with pytest.raises(ValueError, match="truncation_cutoff"):
        tiny_G.mapping(z, truncation_psi=0.5, truncation_cutoff=99)


def test_mixing_mask_takes_exactly_the_masked_rows(tiny_G):
    a, b = tiny_G.mapping(z_of(6)), tiny_G.mapping(z_of(7))
    rows = [1, 4, 5]
    mixed = mix_styles(a, b, rows)
    for r in range(tiny_G.num_ws):
        assert torch.equal(mixed[:, r], b[:, r] if r in rows else a[:, r])
    half = mix_styles(a, b, rows, alpha=0.5)
    assert torch.allclose(half[:, 4], 0.5 * (a[:, 4] + b[:, 4]), atol=1e-6)
    mask = torch.zeros(tiny_G.num_ws, dtype=torch.bool)
    mask[rows] = True
    assert torch.equal(mix_styles(a, b, mask), mixed)
    with pytest.raises(ValueError):
        mix_styles(a, b, [tiny_G.num_ws])


def test_layer_groups_follow_resolution():
    assert layer_groups(1024) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": list(range(8, 18))}
    g = layer_groups(128)
    assert g["coarse"] == [0, 1, 2, 3] and g["middle"] == [4, 5, 6, 7] and g["fine"] == [8, 9, 10, 11]
    assert layer_groups(32) == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": []}
    assert channel_table(1024) == (512, 512, 512, 512, 512, 256, 128, 64, 32)


def test_noise_modes(tiny_G):
    ws = tiny_G.mapping(z_of(8, 2))
    gen = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    none_a = tiny_G.synthesis(ws, noise_mode="none")
    none_b = tiny_G.synthesis(ws, noise_mode="none", generator=gen(1))
    assert torch.equal(none_a, none_b)  # "none" ignores noise seeds
    assert torch.equal(tiny_G.synthesis(ws, noise_mode="const"), tiny_G.synthesis(ws, noise_mode="const"))
    # Give noise a visible effect (random init has zero noise strength).
    for m in [tiny_G.conv1, *tiny_G.convs]:
        m.noise.weight.fill_(0.5)
    r1 = tiny_G.synthesis(ws, noise_mode="random", generator=gen(1))
    r1b = tiny_G.synthesis(ws, noise_mode="random", generator=gen(1))
    r2 = tiny_G.synthesis(ws, noise_mode="random", generator=gen(2))
    assert torch.equal(r1, r1b) and not torch.equal(r1, r2)
    # "random" differs only where noise is switched on: all layers off == none.
    off = [False] * tiny_G.num_layers
    assert torch.equal(tiny_G.synthesis(ws, noise_mode="random", noise_layers=off, generator=gen(3)), none_a)
    # Only the last layer on: the change is limited to what the last conv can reach.
    only_last = off[:-1] + [True]
    _, f1 = tiny_G.synthesis(ws, "random", noise_layers=only_last, generator=gen(4), capture=["convs.4"])
    _, f0 = tiny_G.synthesis(ws, "none", capture=["convs.4"])
    assert torch.equal(f1["convs.4"], f0["convs.4"])  # layers before the noisy one are untouched
    assert torch.equal(tiny_G.synthesis(ws, "random", noise_strength=0.0, generator=gen(5)), none_a)
    explicit = [torch.zeros(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range(tiny_G.num_layers)]
    assert torch.equal(tiny_G.synthesis(ws, noise=explicit), none_a)
    with pytest.raises(ValueError, match="noise_mode"):
        tiny_G.synthesis(ws, noise_mode="loud")


def test_capture_returns_requested_feature_maps(tiny_G):
    ws = tiny_G.mapping(z_of(9, 2))
    img, feats = tiny_G.synthesis(ws, capture=["conv1", "convs.3", "img"])
    assert set(feats) == {"conv1", "convs.3", "img"}
    assert feats["conv1"].shape == (2, 16, 4, 4) and feats["convs.3"].shape == (2, 16, 16, 16)
    assert torch.equal(feats["img"], img)
    names = [n for n, _, _ in tiny_G.layer_names()]
    assert names[:2] == ["input", "conv1"] and "convs.5" in names


def test_fused_and_batched_modconv_agree(tiny_G):
    ws = tiny_G.mapping(z_of(10, 3))
    a = tiny_G.synthesis(ws, fused_modconv=True)
    b = tiny_G.synthesis(ws, fused_modconv=False)
    assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("version", [1, 2])
def test_train_step_forward_backward(version):
    torch.manual_seed(0)
    G = Generator(tiny_config(version=version)).train()
    D = Discriminator(DiscriminatorConfig(img_resolution=32, channels=(16, 16, 16, 8)))
    opt = torch.optim.Adam([*G.parameters(), *D.parameters()], lr=1e-3)
    z = z_of(11, 4)
    loss = torch.nn.functional.softplus(-D(G(z, noise_mode="random"))).mean()
    loss.backward()
    grads = [p.grad for p in G.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    opt.step()


def test_conditional_generator_and_discriminator():
    torch.manual_seed(0)
    G = Generator(tiny_config(c_dim=3))
    D = Discriminator(DiscriminatorConfig(img_resolution=32, channels=(16, 16, 16, 8), c_dim=3))
    c = torch.eye(3)
    img = G(z_of(12), c)
    assert D(img, c).shape == (3, 1)
    with pytest.raises(ValueError, match="conditional"):
        G(z_of(12))


def test_config_validation():
    with pytest.raises(ValueError, match="power of two"):
        GeneratorConfig(img_resolution=100)
    with pytest.raises(ValueError, match="channels"):
        GeneratorConfig(img_resolution=32, channels=(8, 8))
    with pytest.raises(ValueError, match="version"):
        GeneratorConfig(version=3)


def test_native_loader_rejects_bad_files(tmp_path, tiny_G):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_native(bad)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="metadata"):
        load_native(tmp_path / "plain.safetensors")
    path = tmp_path / "g.safetensors"
    save_generator(tiny_G, path)
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    tensors["conv1.conv.weight"] = tensors["conv1.conv.weight"][:, :, :8].contiguous()
    save_file(tensors, str(tmp_path / "shape.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match=r"conv1\.conv\.weight has shape"):
        load_native(tmp_path / "shape.safetensors")
    del tensors["conv1.conv.weight"]
    save_file(tensors, str(tmp_path / "missing.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match=r"missing tensors conv1\.conv\.weight"):
        load_native(tmp_path / "missing.safetensors")


@pytest.mark.parametrize("layer", ["up", "down", "blur_up"])
def test_fir_implementations_agree_through_double_backward(layer):
    """taps / depthwise / folded FIR paths: same output, same gradient, same R1-style second derivative."""
    from core.nn import Blur, Downsample, Upsample, get_fir_impl, set_fir_impl

    module = {
        "up": Upsample((1, 3, 3, 1)),
        "down": Downsample((1, 3, 3, 1)),
        "blur_up": Blur((1, 3, 3, 1), pad=(2, 1), upsample_factor=2),
    }[layer]
    x0 = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    scale = torch.linspace(0.5, 1.5, 3, dtype=torch.float64)[None, :, None, None]
    results = {}
    before = get_fir_impl()
    try:
        for impl in ("taps", "depthwise", "folded", "fused"):
            set_fir_impl(impl)
            x = x0.clone().requires_grad_(True)
            s = scale.clone().requires_grad_(True)
            y = module(x * s)
            (g,) = torch.autograd.grad((y * y.detach().sin()).sum(), x, create_graph=True)
            (gs,) = torch.autograd.grad(g.square().sum(), s)  # derivative of a gradient norm, as in R1
            results[impl] = (y.detach(), g.detach(), gs)
    finally:
        set_fir_impl(before)
    for impl in ("depthwise", "folded", "fused"):
        for a, b in zip(results["taps"], results[impl], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="FIR implementation"):
        set_fir_impl("fft")


def test_fold_choice_per_module_overrides_the_process_setting():
    """A module's ``fold_fir`` decides GPU inference folding (FastSynthesis sets it on its private copy);
    CPU never folds, "fused" training always does."""
    from core.nn import fold_active, get_fir_impl, set_fir_impl

    gpu_like = torch.empty(1, device="meta")  # any non-CPU device, no GPU needed
    before = get_fir_impl()
    try:
        set_fir_impl("taps", fold_inference=True)
        assert fold_active(gpu_like) and not fold_active(gpu_like, False)
        set_fir_impl("taps", fold_inference=False)
        assert not fold_active(gpu_like) and fold_active(gpu_like, True)
        assert not fold_active(torch.empty(1), True)
        set_fir_impl("fused")
        assert fold_active(gpu_like, False)
    finally:
        set_fir_impl(before, fold_inference=True)


@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize("length", [4, 5, 6])
def test_polyphase_weights_regroup_strided_convolutions_exactly(groups, length):
    """A stride-2 transposed conv (any crop) is pixel_shuffle of a stride-1 conv; a stride-2 conv is a stride-1
    conv over pixel_unshuffle -- to float64 rounding, for grouped weights and odd kernel lengths."""
    import torch.nn.functional as F

    from core.nn.layers import polyphase_down_weight, polyphase_up_weight, set_fold_form

    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, groups * 4, 7, 9, generator=gen, dtype=torch.float64)
    w = torch.randn(groups * 4, 5, length, length, generator=gen, dtype=torch.float64)
    full = F.conv_transpose2d(x, w, stride=2, groups=groups)
    for crop in range(length - 1):
        wp, before, after = polyphase_up_weight(w, crop, groups)
        out = F.pixel_shuffle(F.conv2d(F.pad(x, [before, after, before, after]), wp, groups=groups), 2)
        ref = full[:, :, crop:, crop:]
        n = min(ref.shape[2], out.shape[2]), min(ref.shape[3], out.shape[3])
        assert n[0] >= 2 * x.shape[2] - 2 and n[1] >= 2 * x.shape[3] - 2
        torch.testing.assert_close(out[:, :, : n[0], : n[1]], ref[:, :, : n[0], : n[1]], rtol=0, atol=1e-12)
    wd = torch.randn(5, 4, length, length, generator=gen, dtype=torch.float64)
    xd = torch.randn(2, 4, 12, 14, generator=gen, dtype=torch.float64)
    ref = F.conv2d(xd, wd, stride=2)
    out = F.conv2d(F.pixel_unshuffle(xd, 2), polyphase_down_weight(wd))
    torch.testing.assert_close(out[:, :, : ref.shape[2], : ref.shape[3]], ref, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="fold form"):
        set_fold_form("winograd")


@pytest.mark.parametrize("form", ["transposed", "polyphase"])
@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("fused_modconv", [None, True, False])
def test_fir_folded_into_convs_matches_separate_filters(version, fused_modconv, form):
    """ "fused" FIR: the generator's up-sampling convs and the discriminator's down-sampling convs run as one
    convolution with the filter folded into the weights (as a strided / transposed conv, or regrouped by
    phase around pixel_shuffle / pixel_unshuffle) -- same images, same D outputs, same gradients (also the
    R1-style second derivative), for batch 1 and the batched evaluation orders."""
    from core.models.stylegan import Discriminator, DiscriminatorConfig
    from core.nn import get_fir_impl, set_fir_impl
    from core.nn.layers import get_fold_form, set_fold_form

    gen = torch.Generator().manual_seed(11)
    G = Generator(
        GeneratorConfig(
            img_resolution=32, z_dim=16, w_dim=16, n_mlp=2, channels=(16, 16, 8, 8), version=version
        )
    )
    D = Discriminator(DiscriminatorConfig(img_resolution=32, channels=(16, 16, 8, 8))).double()
    with torch.no_grad():
        for p in [*G.parameters(), *D.parameters()]:
            p.copy_(torch.randn(p.shape, generator=gen))  # untrained zeros would hide noise / bias paths
    ws = torch.randn(3, G.num_ws, 16, generator=gen)
    img = torch.randn(4, 3, 32, 32, generator=gen, dtype=torch.float64)
    before, form_before = get_fir_impl(), get_fold_form()
    out = {}
    try:
        set_fold_form(form)
        for impl in ("taps", "fused"):
            set_fir_impl(impl)
            w = ws.clone().requires_grad_(True)
            y = torch.cat(
                [G.synthesis(b, noise_mode="const", fused_modconv=fused_modconv) for b in (w[:1], w[1:])]
            )
            (gw,) = torch.autograd.grad(y.square().mean(), w)
            x = img.clone().requires_grad_(True)
            logits = D(x)
            (gx,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
            (gp,) = torch.autograd.grad(
                gx.square().sum(), D.convs[1].conv1[0].weight
            )  # R1's parameter gradient
            out[impl] = (y.detach(), gw, logits.detach(), gx.detach(), gp)
    finally:
        set_fir_impl(before)
        set_fold_form(form_before)
    for name, a, b in zip(
        ("image", "d image/d w", "D", "d D/d x", "d|dD/dx|^2/d theta"), *out.values(), strict=True
    ):
        tol = (1e-10 if a.dtype == torch.float64 else 2e-6) * max(1.0, a.abs().max().item())
        assert (a - b).abs().max().item() < tol, name


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("down", [1, 2])
def test_fir_1d_gradients_pass_gradcheck_and_gradgradcheck(dim, down):
    """The hand-written adjoint of the elementwise FIR is the true derivative, to second order."""
    from core.nn.layers import _fir

    x = torch.randn(2, 3, 9, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(dim + down))
    x.requires_grad_(True)
    taps = (0.1, 0.4, 0.3, 0.2)  # asymmetric, so a flipped adjoint would fail
    assert torch.autograd.gradcheck(lambda t: _fir(t, taps, dim, down), (x,))
    assert torch.autograd.gradgradcheck(lambda t: _fir(t, taps, dim, down), (x,))


def test_adain_block_is_instance_norm_then_style_affine():
    """StyleGAN eq. 1: AdaIN(x, y) = y_s (x - mu(x)) / sigma(x) + y_b, per sample and feature map."""
    from core.nn.modulated import AdaINConv

    torch.manual_seed(0)
    block = AdaINConv(4, 6, 3, 8, upsample=True)
    with torch.no_grad():
        block.style.bias.normal_(0, 0.5)  # a non-trivial scale and bias
    x, w, noise = torch.randn(2, 4, 5, 5), torch.randn(2, 8), torch.randn(2, 1, 10, 10)
    with torch.no_grad():
        h = block.activate(block.noise(block.conv(block.upsample(x)), noise))
        s = block.style(w)
        ref = torch.nn.functional.instance_norm(h, eps=1e-8) * s[:, :6, None, None] + s[:, 6:, None, None]
        out = block(x, w, noise)
    assert out.shape == (2, 6, 10, 10)
    assert (out - ref).abs().max().item() < 1e-4
