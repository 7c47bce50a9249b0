"""core.explore: paper-figure tools on a tiny generator (shapes, layouts, presets, reproducibility)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from core import explore
from core.errors import InputError
from core.images import to_pil
from core.models.stylegan import Generator
from core.render import Recipe, render_tensor
from tests.conftest import tiny_config


@pytest.fixture
def G() -> Generator:
    torch.manual_seed(0)  # test-only: module init uses the global RNG
    G = Generator(tiny_config(img_resolution=64, channels=(16, 16, 16, 8, 8))).eval().requires_grad_(False)
    for name, p in G.named_parameters():
        if name.endswith("noise.weight"):
            p.fill_(0.5)
    G.estimate_w_avg(500, seed=1)
    return G


def test_labels_and_presets_follow_resolution(G):
    assert explore.row_labels(G)[:2] == ["0: 4px coarse", "1: 4px coarse"]
    assert explore.row_labels(G)[-1] == "9: 64px fine" and len(explore.row_labels(G)) == G.num_ws == 10
    assert explore.mixing_rows(G, "fine") == [8, 9]
    # Figure 5: coarse noise = 4-32 px, fine noise = 64 px and up
    fine = explore.noise_preset(G, "fine")
    assert fine == [False] * 7 + [True, True] and explore.noise_preset(G, "coarse") == [not f for f in fine]
    assert all(explore.noise_preset(G, "all")) and not any(explore.noise_preset(G, "none"))
    with pytest.raises(InputError):
        explore.noise_preset(G, "medium")


def test_render_seeds_matches_single_recipes(G):
    imgs = explore.render_seeds(G, [3, 4], psi=0.7)
    one = render_tensor(G, Recipe(seed=4, truncation_psi=0.7))
    assert imgs.shape == (2, 3, 64, 64)
    assert torch.allclose(imgs[1:], one, atol=1e-4)


def test_mixing_matrix_layout(G):
    out = explore.mixing_matrix(G, [1, 2], [5, 6, 7], [0, 1, 2], psi=0.7)
    assert out.shape == (12, 3, 64, 64)
    assert (out[0] == -1).all()  # blank corner
    b = render_tensor(G, Recipe(seed=6, truncation_psi=0.7))
    a = render_tensor(G, Recipe(seed=2, truncation_psi=0.7))
    cell = render_tensor(G, Recipe(seed=2, mix_seed=7, mix_layers=[0, 1, 2], truncation_psi=0.7))
    assert torch.allclose(out[2], b[0], atol=1e-4)  # top row: B sources
    assert torch.allclose(out[8], a[0], atol=1e-4)  # left column: A sources
    assert torch.allclose(out[11], cell[0], atol=1e-4)  # cell (A=2, B=7)
    same = explore.mixing_matrix(G, [1], [5], [0, 1, 2], psi=0.7, alpha=0.0)
    assert torch.allclose(same[3], same[2], atol=1e-5)
    with pytest.raises(InputError):
        explore.mixing_matrix(G, [], [1], [0])


def test_noise_std_map(G):
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0)))
    mean, std = explore.noise_std_map(G, ws, draws=6, seed=1)
    assert mean.shape == (1, 3, 64, 64) and std.shape == (1, 1, 64, 64) and float(std.min()) >= 0
    assert float(std.mean()) > 0
    _, std2 = explore.noise_std_map(G, ws, draws=6, seed=1)
    assert torch.equal(std, std2)
    _, off = explore.noise_std_map(G, ws, draws=4, seed=1, noise_layers=[False] * G.num_layers)
    assert float(off.max()) == 0.0
    # fine-only noise varies the image less than noise everywhere
    _, fine = explore.noise_std_map(G, ws, draws=6, seed=1, noise_layers=explore.noise_preset(G, "fine"))
    assert 0 < float(fine.mean()) < float(std.mean())
    with pytest.raises(InputError):
        explore.noise_std_map(G, ws, draws=1)


def test_interpolate_ends_are_the_seeds(G):
    steps = []
    frames = explore.interpolate(G, 1, 2, steps=5, psi=0.7, progress=lambda i, n: steps.append((i, n)))
    assert frames.shape == (5, 3, 64, 64) and steps[-1] == (5, 5)
    a = render_tensor(G, Recipe(seed=1, truncation_psi=0.7))
    b = render_tensor(G, Recipe(seed=2, truncation_psi=0.7))
    assert torch.allclose(frames[0], a[0], atol=1e-4) and torch.allclose(frames[-1], b[0], atol=1e-4)
    zf = explore.interpolate(G, 1, 2, steps=3, psi=0.7, space="z")
    assert torch.allclose(zf[0], a[0], atol=1e-4) and torch.allclose(zf[2], b[0], atol=1e-4)
    done = []
    stopped = explore.interpolate(
        G, 1, 2, steps=10, progress=lambda i, n: done.append(i), should_stop=lambda: len(done) >= 2
    )
    assert stopped.shape[0] == 2
    with pytest.raises(InputError):
        explore.interpolate(G, 1, 2, steps=1)


def test_save_animation_formats(G, tmp_path):
    frames = to_pil(explore.interpolate(G, 1, 2, steps=3))
    spec = explore.interpolation_spec(
        "m.safetensors", "abc", 1, 2, steps=3, psi=1.0, cutoff=None, space="w", noise_mode="const", fps=10
    )
    assert Recipe.from_dict(spec["start"]).seed == 1
    gif = explore.save_animation(frames, tmp_path / "a.gif", fps=10, spec=spec)
    with Image.open(gif) as im:
        assert im.n_frames == 3 and json.loads(im.info["comment"])["end"]["seed"] == 2
    z = explore.save_animation(frames, tmp_path / "a.zip", spec=spec)
    with zipfile.ZipFile(z) as zf:
        assert len([n for n in zf.namelist() if n.endswith(".png")]) == 3
    with pytest.raises(InputError):
        explore.save_animation(frames, tmp_path / "a.avi")


def test_save_animation_mp4_has_every_frame(G, tmp_path):
    """MP4 export works out of the box (bundled ffmpeg) and the video holds exactly the frames given."""
    import imageio_ffmpeg

    frames = to_pil(explore.interpolate(G, 1, 2, steps=5))
    mp4 = explore.save_animation(frames, tmp_path / "a.mp4", fps=10, spec={"steps": 5})
    assert mp4.read_bytes()[4:8] == b"ftyp"
    n_frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(mp4))
    assert n_frames == 5 and seconds == pytest.approx(0.5, abs=0.05)


def test_feature_grid_modes(G):
    _, f = explore.features(G, Recipe(seed=1), "convs.1")
    assert f.shape == (1, 16, 8, 8)
    grid = explore.feature_grid(f, tile=32)
    assert grid.dtype == np.uint8 and grid.shape == (4 * 34 + 2, 4 * 34 + 2, 3)
    one = explore.feature_grid(f, mode="channel", channel=3, cmap="gray", size=64)
    assert one.shape == (64, 64, 3) and np.array_equal(one[..., 0], one[..., 2])
    assert explore.feature_grid(f, mode="mean", size=16).shape == (16, 16, 3)
    lo_hi = explore.colorize(torch.tensor([[0.0, 1.0]]), cmap="gray")
    assert lo_hi[0, 0].tolist() == [0, 0, 0] and lo_hi[0, 1].tolist() == [255, 255, 255]
    for bad in (dict(mode="fft"), dict(mode="channel", channel=99), dict(cmap="jet")):
        with pytest.raises(InputError):
            explore.feature_grid(f, **bad)
    with pytest.raises(InputError):
        explore.features(G, Recipe(seed=1), "convs.42")
