"""Recipes: validation, JSON round trip, reproducible rendering, PNG embedding, and the generate CLI."""

from __future__ import annotations

import json

import pytest
import torch

from core.checkpoints.native import file_digest, save_generator
from core.cli import main as cli_main
from core.errors import RecipeError
from core.images import from_pil
from core.render import Recipe, recipe_from_png, render, render_tensor, seed_to_z


@pytest.fixture
def model_path(tmp_path, tiny_G):
    path = tmp_path / "tiny.safetensors"
    save_generator(tiny_G, path)
    return path


def test_recipe_json_round_trip():
    r = Recipe(
        model="m.safetensors", seed=7, truncation_psi=0.5, mix_seed=3, mix_layers=[5, 1, 1], mix_alpha=0.5
    )
    assert r.mix_layers == [1, 5]
    assert Recipe.from_json(r.to_json()) == r


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": "7"}, "seed"),
        ({"truncation_psi": float("nan")}, "truncation_psi"),
        ({"truncation_psi": 1e9}, "truncation_psi"),
        ({"noise_mode": "loud"}, "noise_mode"),
        ({"mix_layers": [1]}, "mix_seed"),
        ({"mix_seed": 1, "mix_layers": [-2]}, "mix_layers"),
        ({"noise_layers": [1, 0]}, "noise_layers"),
        ({"directions": {"smile": "lots"}}, "directions.smile"),
        ({"colour": "blue"}, "colour"),
        ({"version": 99}, "version"),
    ],
)
def test_invalid_recipes_name_the_field(fields, name):
    with pytest.raises(RecipeError, match=f"^{name}"):
        Recipe.from_dict({"seed": 1, **fields})


def test_bad_json_is_a_recipe_error():
    with pytest.raises(RecipeError, match="not valid JSON"):
        Recipe.from_json("{seed: 1")
    with pytest.raises(RecipeError, match="JSON object"):
        Recipe.from_json("[1, 2]")


def test_seed_means_the_same_z_everywhere():
    assert torch.equal(seed_to_z(5, 16), seed_to_z(5, 16))
    assert not torch.equal(seed_to_z(5, 16), seed_to_z(6, 16))


def test_render_is_reproducible_and_checks_the_model(model_path, tiny_G):
    recipe = Recipe(model=str(model_path), model_hash=file_digest(model_path), seed=3, truncation_psi=0.7)
    a, b = render(recipe), render(recipe.to_json())
    assert a.size == (32, 32) and a.tobytes() == b.tobytes()
    # Same pixels as the tensor path with the in-memory generator.
    assert torch.equal(from_pil(a), from_pil(render(recipe, G=tiny_G)))
    with pytest.raises(RecipeError, match="model_hash"):
        render(recipe.replace(model_hash="0" * 16))
    with pytest.raises(RecipeError, match="model"):
        render(recipe.replace(model=str(model_path) + ".missing", model_hash=None))
    with pytest.raises(RecipeError, match="truncation_cutoff"):
        render(recipe.replace(truncation_cutoff=40))
    with pytest.raises(RecipeError, match="directions.smile"):
        render(recipe.replace(directions={"smile": 1.0}))


def test_recipe_features_change_the_image(tiny_G):
    base = Recipe(seed=3)
    img = render_tensor(tiny_G, base)
    assert not torch.equal(img, render_tensor(tiny_G, base.replace(truncation_psi=0.0)))
    mixed = render_tensor(tiny_G, base.replace(mix_seed=9, mix_layers=[0, 1, 2, 3]))
    assert not torch.equal(img, mixed)
    for m in [tiny_G.conv1, *tiny_G.convs]:
        m.noise.weight.fill_(0.3)
    r1 = render_tensor(tiny_G, base.replace(noise_mode="random", noise_seed=1))
    assert torch.equal(r1, render_tensor(tiny_G, base.replace(noise_mode="random", noise_seed=1)))
    assert not torch.equal(r1, render_tensor(tiny_G, base.replace(noise_mode="random", noise_seed=2)))

    class Shift:
        def apply(self, ws, strength):
            return ws + strength

    edited = render_tensor(tiny_G, base.replace(directions={"shift": 0.5}), directions={"shift": Shift()})
    assert not torch.equal(img, edited)


def test_generate_cli_writes_pngs_with_recipes(model_path, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli_main(
        [
            "generate",
            "--model",
            str(model_path),
            "--seeds",
            "1-2",
            "--psi",
            "0.7",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["images"]) == 2
    recipe = recipe_from_png(report["images"][0])
    assert recipe.seed == 1 and recipe.truncation_psi == 0.7
    from PIL import Image

    with Image.open(report["images"][0]) as im:
        assert render(recipe).tobytes() == im.convert("RGB").tobytes()


def test_generate_cli_errors_are_one_line(tmp_path, capsys):
    code = cli_main(
        ["generate", "--model", str(tmp_path / "nope.pt"), "--seeds", "1", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "nope.pt" in err
    code = cli_main(
        ["generate", "--model", str(tmp_path / "nope.pt"), "--seeds", "x-y", "--out", str(tmp_path)]
    )
    assert code == 2 and "seeds" in capsys.readouterr().err


def test_per_input_noise_strengths(tiny_G):
    for m in [tiny_G.conv1, *tiny_G.convs]:
        m.noise.weight.fill_(0.5)
    base = Recipe(seed=2, noise_mode="random", noise_seed=5)
    n = tiny_G.num_layers
    assert torch.equal(
        render_tensor(tiny_G, base), render_tensor(tiny_G, base.replace(noise_strength=[1.0] * n))
    )
    assert torch.equal(
        render_tensor(tiny_G, base.replace(noise_strength=[0.0] * n)),
        render_tensor(tiny_G, base.replace(noise_mode="none")),
    )
    with pytest.raises(RecipeError, match="noise_strength"):
        render_tensor(tiny_G, base.replace(noise_strength=[1.0, 2.0]))
    with pytest.raises(RecipeError, match="noise_strength"):
        Recipe(noise_strength=[1.0, -3.0])


def test_recipes_with_ws_rows_render_those_latents(tiny_G):
    ws = tiny_G.mapping(seed_to_z(11, tiny_G.z_dim))
    recipe = Recipe(ws=ws[0].tolist())
    assert Recipe.from_json(recipe.to_json()) == recipe
    assert torch.allclose(render_tensor(tiny_G, recipe), tiny_G.synthesis(ws), atol=1e-6)
    # Truncation, mixing and edits apply on top of the given rows; the seed is not used.
    psi = render_tensor(tiny_G, recipe.replace(truncation_psi=0.0))
    assert torch.allclose(psi, tiny_G.synthesis(tiny_G.w_avg.expand_as(ws)), atol=1e-5)
    assert torch.equal(render_tensor(tiny_G, recipe.replace(seed=99)), render_tensor(tiny_G, recipe))
    with pytest.raises(RecipeError, match="^ws"):
        render_tensor(tiny_G, Recipe(ws=ws[0, :3].tolist()))
    for bad in ([], [[1.0, 2.0], [1.0]], [[float("inf")]], [["a"]], "rows"):
        with pytest.raises(RecipeError, match="^ws"):
            Recipe(ws=bad)
