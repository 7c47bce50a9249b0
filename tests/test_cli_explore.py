"""The exploration subcommands (render, mix, noise, interpolate, layers) on a tiny model."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from core.checkpoints.native import save_generator
from core.cli import main
from core.render import recipe_from_png


@pytest.fixture
def model(tmp_path, tiny_G):
    path = tmp_path / "tiny.safetensors"
    save_generator(tiny_G, path)
    return str(path)


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_mix_matrix_has_one_cell_per_seed_pair(model, tmp_path, capsys):
    out = tmp_path / "mix.png"
    r = run_json(
        capsys,
        [
            "mix",
            "--model",
            model,
            "--rows-seeds",
            "0-1",
            "--cols-seeds",
            "5-7",
            "--group",
            "coarse",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert r["rows"] == [0, 1, 2, 3]
    with Image.open(out) as im:  # (1 + 2 rows) x (1 + 3 columns) cells of 32 px: sources A and B as headers
        assert im.size == (4 * 32, 3 * 32)


def test_noise_layers_interpolate_and_render(model, tmp_path, capsys):
    r = run_json(
        capsys, ["noise", "--model", model, "--draws", "3", "--out", str(tmp_path / "n.png"), "--json"]
    )
    assert r["draws"] == 3
    r = run_json(
        capsys,
        [
            "interpolate",
            "--model",
            model,
            "--seeds",
            "1,2",
            "--steps",
            "3",
            "--out",
            str(tmp_path / "i.gif"),
            "--json",
        ],
    )
    assert r["frames"] == 3 and (tmp_path / "i.gif").stat().st_size > 0
    r = run_json(
        capsys, ["layers", "--model", model, "--layer", "convs.1", "--out", str(tmp_path / "l.png"), "--json"]
    )
    assert r["channels"] == 16
    # A generated PNG renders back to the same pixels through `stylescope render`.
    assert main(["generate", "--model", model, "--seeds", "4", "--out", str(tmp_path / "g"), "--json"]) == 0
    png = json.loads(capsys.readouterr().out)["images"][0]
    assert main(["render", png, "--out", str(tmp_path / "back.png")]) == 0
    with Image.open(png) as a, Image.open(tmp_path / "back.png") as b:
        assert a.tobytes() == b.tobytes()
    assert recipe_from_png(tmp_path / "back.png").seed == 4


def test_bad_input_is_one_line(model, tmp_path, capsys):
    assert (
        main(
            [
                "mix",
                "--model",
                model,
                "--rows-seeds",
                "0",
                "--cols-seeds",
                "1",
                "--layers",
                "99",
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )
    assert "ws row 99" in capsys.readouterr().err
    assert main(["interpolate", "--model", model, "--seeds", "1", "--out", str(tmp_path / "x.gif")]) == 2
    assert main(["render", "{not json", "--out", str(tmp_path / "x.png")]) == 2
    assert "recipe" in capsys.readouterr().err
