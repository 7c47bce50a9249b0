"""Shared fixtures: tiny models that run on CPU in milliseconds, and the reference fixtures folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.models.stylegan import Generator, GeneratorConfig

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "formats"


def tiny_config(**overrides) -> GeneratorConfig:
    kw = dict(img_resolution=32, z_dim=32, w_dim=32, n_mlp=2, channels=(16, 16, 16, 8))
    kw.update(overrides)
    return GeneratorConfig(**kw)


@pytest.fixture
def tiny_G() -> Generator:
    torch.manual_seed(0)  # test-only: module init uses the global RNG; library code never does
    G = Generator(tiny_config()).eval().requires_grad_(False)
    G.estimate_w_avg(2000, seed=1)
    return G


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"reference fixtures not found at {FIXTURES} (shared/ must sit beside the checkout)")
    return FIXTURES
