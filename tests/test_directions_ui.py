"""Directions tab: the layout builds and wires, and the handlers work on a tiny model (no browser)."""

from __future__ import annotations

import json

import gradio as gr
import pytest
import torch

from app import models
from app.tabs import directions as tab
from core.directions import Direction, DirectionSet, save_directions


@pytest.fixture
def model_and_set(tmp_path, tiny_G):
    from core.checkpoints.native import file_digest, save_generator

    models.configure("cpu")
    path = tmp_path / "tiny.safetensors"
    save_generator(tiny_G, path)
    g = torch.Generator().manual_seed(0)
    dirs = DirectionSet(
        [
            Direction("smiling", torch.nn.functional.normalize(torch.randn(32, generator=g), dim=0), method="svm",
                      attribute="smiling", accuracy=0.95, scale=2.0),
            Direction("pca_0", torch.nn.functional.normalize(torch.randn(32, generator=g), dim=0), method="pca"),
            Direction("sefa_0", torch.nn.functional.normalize(torch.randn(32, generator=g), dim=0), method="sefa"),
        ],
        model_hash=file_digest(path), num_ws=tiny_G.num_ws, layer_groups=tiny_G.layer_groups,
    )  # fmt: skip
    set_path = tmp_path / "dirs.safetensors"
    save_directions(dirs, set_path)
    return str(path), str(set_path)


def test_tab_builds_and_wires():
    from app.config import AppConfig
    from app.state import Shared

    with gr.Blocks() as demo:
        shared = Shared(AppConfig(), gr.State(""), gr.State(""), gr.Markdown(), demo)
        handles = tab.build(shared)
        tab.wire(handles, shared)
    assert len(handles.slots) == tab.N_SLOTS


def test_handlers_edit_compare_and_label(model_and_set, tmp_path):
    model, set_path = model_and_set
    out = tab.load_set(set_path, None, model)
    assert out[0] == set_path and "3 directions" in out[1]
    slots = ["smiling", 1.5, "middle", ["pca_0"]] + [None, 0, "all", []] * (tab.N_SLOTS - 1)
    img, recipe = tab.render_edit(model, set_path, "3", 0.7, *slots)
    rec = json.loads(recipe)
    assert rec["directions"] == {"smiling@middle~pca_0": 3.0}  # 1.5 std x scale 2.0
    assert img.size == (32, 32) and "stylescope-recipe" in img.info
    grid = tab.compare(model, set_path, "3", 0.7, "smiling", "pca_0", "sefa_0")
    assert grid.size[1] > grid.size[0] / len(tab.STEPS)  # three rows
    # label your own: clicks toggle, then fit a 'user' direction into a new session set
    assert tab.toggle_label("0-3", [1], gr.SelectData(None, {"index": 2, "value": None})) == [1, 2]
    res = tab.fit_labels(model, set_path, "0-7", [0, 2, 4, 6], "even", None, 1.0)
    new_path, info = res[0], res[-1]
    assert new_path != set_path and "even" in info
    assert tab.get_set(new_path)["even"].method == "user"
    with pytest.raises(gr.Error, match="need at least"):
        tab.fit_labels(model, set_path, "0-7", [0], "even", None, 1.0)


def test_shipped_sets_load_only_for_their_own_model(tmp_path):
    """On page load the Directions tab opens the shipped set of the current model, and stays quiet otherwise."""
    import torch

    from app import models
    from app.tabs import directions as tab
    from core.checkpoints.native import save_generator
    from core.models.stylegan import Generator, GeneratorConfig

    torch.manual_seed(0)
    path = tmp_path / "other.safetensors"
    save_generator(
        Generator(GeneratorConfig(img_resolution=32, z_dim=32, w_dim=32, n_mlp=2, channels=(8,) * 4)), path
    )
    other = models.register(path)
    assert tab.matching_set(other) == ""
    assert tab.load_matching_set(other)[0] == ""  # no error, no set
    shipped = tab.REPO_ROOT / "assets" / "models" / "synthfaces128-stylegan2.safetensors"
    if shipped.is_file() and tab.shipped_sets():
        own = models.register(shipped)
        assert tab.matching_set(own).endswith("synthfaces128-stylegan2.safetensors")


def test_continuous_factors_are_offered_and_fitted(model_and_set):
    # The shipped classifier regresses SynthFaces' continuous factors: "roll" gives the tilt slider that the
    # symmetric tilted_head attribute (|roll| > 0.5) cannot.
    model, set_path = model_and_set
    choices = tab.attributes_of(str(tab.DEFAULT_CLASSIFIER))["choices"]
    names = [c[0] if isinstance(c, tuple) else c for c in choices]
    assert "tilted_head" in names and "roll" in names and names.index("roll") > names.index("tilted_head")
    out = tab.fit_classifier(model, set_path, str(tab.DEFAULT_CLASSIFIER), "roll", 80, "w")
    assert "**roll**" in out[-1]
    new_set = next(o for o in out if isinstance(o, str) and o.endswith(".safetensors"))
    d = tab.get_set(new_set)["roll"]
    assert d.attribute == "roll" and d.meta.get("threshold") == "median"
    fig = tab.plot_path(model, new_set, str(tab.DEFAULT_CLASSIFIER), "roll", "3", 0.7)
    assert fig is not None


def test_guided_edit_handler_returns_a_reproducible_recipe(model_and_set):
    model, _ = model_and_set
    attr, free = tab.binary_attributes_of(str(tab.DEFAULT_CLASSIFIER))
    assert "smiling" in attr["choices"] or ("smiling", "smiling") in attr["choices"]
    img, recipe_json, info = tab.guided(
        model, str(tab.DEFAULT_CLASSIFIER), "smiling", "flip", ["frowning"], 10, 100, "3", 0.7
    )
    rec = json.loads(recipe_json)
    assert (
        rec["seed"] == 3
        and len(rec["ws"]) == models.get(model).num_ws
        and "**smiling**" in info
        and "10 steps" in info
    )
    assert img.size == (32, 32) and "stylescope-recipe" in img.info
    with pytest.raises(gr.Error, match="choose an attribute"):
        tab.guided(model, str(tab.DEFAULT_CLASSIFIER), None, "flip", [], 10, 100, "3", 0.7)
