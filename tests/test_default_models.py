"""The shipped default SynthFaces generators and their direction set (skipped where the files are absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import core
from core.checkpoints.native import file_digest
from core.render import seeds_to_z

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "stylegan2": (ROOT / "assets/models/synthfaces128-stylegan2.safetensors", 2),
    "stylegan1": (ROOT / "assets/models/synthfaces128-stylegan1.safetensors", 1),
}
G_W_DIM = 256
DIRECTIONS = ROOT / "assets/directions/synthfaces128-stylegan2.safetensors"


def _load(name: str):
    path, _ = MODELS[name]
    if not path.is_file():
        pytest.skip(f"{path.name} not present")
    return core.load_generator(str(path), device="cpu").eval()


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    return request.param, _load(request.param)


def test_config(model):
    name, G = model
    cfg = G.cfg
    assert cfg.img_resolution == 128
    assert cfg.num_ws == 12 and G.num_ws == 12
    assert cfg.version == MODELS[name][1]
    # v2: StyleGAN2's skip outputs; v1: one RGB output at the end, as in the StyleGAN paper.
    assert cfg.architecture == ("skip" if cfg.version == 2 else "orig")
    assert (cfg.z_dim, cfg.w_dim, cfg.n_mlp, cfg.c_dim) == (256, 256, 8, 0)
    assert tuple(cfg.channels) == (256, 256, 256, 128, 64, 32)
    assert G.layer_groups == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7], "fine": [8, 9, 10, 11]}
    assert torch.isfinite(G.w_avg).all() and G.w_avg.abs().sum() > 0  # w_avg was tracked during training


def test_fixed_seed_renders_deterministically(model):
    _, G = model
    with torch.no_grad():
        z = seeds_to_z([0, 1], G.z_dim, "cpu")
        ws = G.mapping(z, truncation_psi=0.7)
        a = G.synthesis(ws, noise_mode="const")
        b = G.synthesis(ws.clone(), noise_mode="const")
    assert a.shape == (2, 3, 128, 128)
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    # Not constant: real structure within each image and a difference between the two seeds.
    assert float(a[0].std()) > 0.05 and float(a[1].std()) > 0.05
    assert float((a[0] - a[1]).abs().mean()) > 0.01
    # Mostly inside the nominal range (a diverged model saturates far outside it).
    assert float(a.abs().mean()) < 1.0


def test_random_noise_changes_less_than_the_seed():
    G = _load("stylegan2")
    with torch.no_grad():
        ws = G.mapping(seeds_to_z([3, 4], G.z_dim, "cpu"), truncation_psi=0.7)
        gen = torch.Generator().manual_seed(0)
        noisy = G.synthesis(ws[:1].expand(2, -1, -1), noise_mode="random", generator=gen)
        const = G.synthesis(ws, noise_mode="const")
    noise_diff = float((noisy[0] - noisy[1]).abs().mean())
    seed_diff = float((const[0] - const[1]).abs().mean())
    assert 0 < noise_diff < seed_diff


def test_shipped_directions_belong_to_shipped_model():
    from core.directions import load_directions

    path, _ = MODELS["stylegan2"]
    if not path.is_file() or not DIRECTIONS.is_file():
        pytest.skip("shipped model or direction set not present")
    assert DIRECTIONS.stat().st_size < 5_000_000
    digest = file_digest(path)
    dirs = load_directions(DIRECTIONS, model_hash=digest)
    assert dirs.model_hash == digest
    assert dirs.num_ws == 12
    assert len(dirs) >= 10
    assert any(d.method == "svm" and d.attribute for d in dirs.values())
    for d in dirs.values():
        assert torch.isfinite(d.vector).all()
        if d.space == "w":
            assert d.vector.shape == (G_W_DIM,)
            if d.normal is None:  # PCA / SeFa: unit vectors
                assert abs(float(d.vector.norm()) - 1.0) < 1e-3
            else:  # SVM: covariance edit vector, scaled so that a strength is a change of signed distance
                assert abs(float(d.normal.norm()) - 1.0) < 1e-3
                assert abs(float(d.normal @ d.vector) - 1.0) < 1e-3
                assert d.meta["edit"] == "covariance"
    report = DIRECTIONS.with_suffix(".report.json")
    assert report.is_file()
