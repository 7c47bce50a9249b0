"""Explorer handlers called directly on a tiny model: behaviour, recipes, and one-line user errors."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
import pytest
import torch

from core.checkpoints.native import save_generator
from core.images import read_png_text
from core.models.stylegan import Generator, GeneratorConfig
from core.render import PNG_TEXT_KEY, Recipe


def make_tiny_model(path, **overrides):
    """A 32 px generator with visible noise (noise strengths are zero at init), saved natively."""
    kw = dict(img_resolution=32, z_dim=32, w_dim=32, n_mlp=2, channels=(16, 16, 16, 8))
    kw.update(overrides)
    torch.manual_seed(0)  # test-only: module init uses the global RNG
    G = Generator(GeneratorConfig(**kw)).eval().requires_grad_(False)
    for name, p in G.named_parameters():
        if name.endswith("noise.weight"):
            p.fill_(0.3)
    G.estimate_w_avg(500, seed=1)
    save_generator(G, path)
    return str(path)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from app import models

    models.configure("cpu")
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny32.safetensors")


def pixels(img) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


# ---------------------------------------------------------------------------------------------- explore
def test_generate_embeds_recipe_and_is_deterministic(model):
    from app.tabs import explore

    a = explore.generate("7", 0.7, None, "const", model)
    b = explore.generate(7, 0.7, None, "const", model)
    assert a.size == (32, 32)
    assert np.array_equal(pixels(a), pixels(b))
    recipe = Recipe.from_json(a.info[PNG_TEXT_KEY])
    assert (recipe.seed, recipe.truncation_psi, recipe.truncation_cutoff) == (7, 0.7, None)
    assert recipe.model_hash and recipe.model.endswith("tiny32.safetensors")
    c = explore.generate("8", 0.7, None, "const", model)
    assert not np.array_equal(pixels(a), pixels(c))


def test_psi_zero_gives_the_average_image_for_every_seed(model):
    from app.tabs import explore

    a = explore.generate("1", 0.0, None, "none", model)
    b = explore.generate("2", 0.0, None, "none", model)
    assert np.array_equal(pixels(a), pixels(b))


def test_cutoff_slider_max_means_all_rows(model):
    from app import models
    from app.tabs import explore

    num_ws = models.get(model).num_ws
    assert explore.cutoff_value(num_ws, model) is None
    assert explore.cutoff_value(3, model) == 3
    full = explore.generate("5", 0.5, None, "const", model)
    partial = explore.generate("5", 0.5, 2, "const", model)
    assert not np.array_equal(pixels(full), pixels(partial))


def test_explore_render_returns_grid_info_and_recipe(model):
    from app.tabs import explore

    image, info, gallery, recipe_text, last = explore.explore_render(model, "10", 0.7, 8, "const", 4)
    assert "ms" in info
    assert gallery["visible"] is True and len(gallery["value"]) == 4
    assert [c for _, c in gallery["value"]] == ["seed 10", "seed 11", "seed 12", "seed 13"]
    assert json.loads(recipe_text)["seed"] == 10 and Recipe.from_json(last).seed == 10
    # the first grid cell is the same seed: equal up to float rounding of the batched render
    diff = np.abs(pixels(image).astype(int) - pixels(gallery["value"][0][0]).astype(int))
    assert diff.max() <= 2


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "", "99999999999"])
def test_bad_seed_text_is_a_one_line_gr_error(model, bad):
    from app.tabs import explore

    with pytest.raises(gr.Error) as e:
        explore.generate(bad, 0.7, None, "const", model)
    assert "\n" not in str(e.value.message) and "seed" in e.value.message


def test_psi_out_of_recipe_range_is_gr_error(model):
    from app.tabs import explore

    with pytest.raises(gr.Error, match="truncation_psi"):
        explore.generate("1", 9.0, None, "const", model)


def test_no_model_gives_clear_message():
    from app.tabs import explore

    with pytest.raises(gr.Error, match="No model found in assets/models"):
        explore.generate("1", 0.7, None, "const", "")


def test_seed_buttons():
    from app.tabs import explore

    assert explore.next_seed("41") == "42" and explore.prev_seed("0") == str(2**32 - 1)
    assert explore.random_seed().isdigit()


def test_interpolation_gif_and_frames(model):
    from PIL import Image

    from app.tabs import explore

    calls = []

    class Progress:  # stands in for gr.Progress
        def __call__(self, frac, desc=None):
            calls.append(frac)

    preview, out = explore.interpolate(model, "1", "2", 5, 0.7, 8, "w", 10, "gif", progress=Progress())
    assert out.endswith(".gif") and preview == out and calls[-1] == 1.0 and len(calls) == 5
    with Image.open(out) as im:
        assert im.n_frames == 5
        assert json.loads(im.info["comment"])["steps"] == 5
    _, zpath = explore.interpolate(model, "1", "2", 3, 0.7, 8, "z", 10, "zip", progress=Progress())
    import zipfile

    with zipfile.ZipFile(zpath) as zf:
        assert sorted(zf.namelist()) == ["frame0000.png", "frame0001.png", "frame0002.png", "spec.json"]


# ---------------------------------------------------------------------------------------------- recipe
def test_render_recipe_is_bit_exact_with_generate(model):
    from app.tabs import explore, recipe

    a = explore.generate("3", 0.6, 4, "random", model)
    text = a.info[PNG_TEXT_KEY]
    b = recipe.render_recipe(text, "")
    assert np.array_equal(pixels(a), pixels(b))


def test_recipe_png_round_trip(model, tmp_path):
    from app.tabs import explore, recipe

    a = explore.generate("11", 0.5, None, "const", model)
    from core.images import save_png
    from core.render import recipe_png_text

    path = tmp_path / "x.png"
    save_png(a, path, text=recipe_png_text(Recipe.from_json(a.info[PNG_TEXT_KEY])))
    assert PNG_TEXT_KEY in read_png_text(path)
    text = recipe.read_png(str(path))
    assert Recipe.from_json(text).seed == 11
    assert np.array_equal(pixels(recipe.render_recipe(text, "")), pixels(a))


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        ('{"seed": -4}', "seed"),
        ('{"seed": 1, "colour": 3}', "colour"),
        ('{"seed": 1, "model": "x.safetensors", "model_hash": "00ff"}', "not loaded here"),
    ],
)
def test_broken_recipes_are_gr_errors(model, text, match):
    from app.tabs import recipe

    with pytest.raises(gr.Error, match=match):
        recipe.render_recipe(text, model)


def test_png_without_recipe_is_gr_error(tmp_path):
    from PIL import Image

    from app.tabs import recipe

    p = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(p)
    with pytest.raises(gr.Error, match="no StyleScope recipe"):
        recipe.read_png(str(p))
    q = tmp_path / "broken.png"
    q.write_bytes(b"\x89PNG\r\n\x1a\nrubbish")
    with pytest.raises(gr.Error):
        recipe.read_png(str(q))


# ---------------------------------------------------------------------------------------------- model picker
def test_load_other_refuses_pickles_until_allowed_and_rejects_junk(model, tmp_path):
    from app.tabs import model_bar

    pkl = tmp_path / "network.pkl"
    pkl.write_bytes(b"\x80\x04K\x01.")
    notice = model_bar.pickle_notice(str(pkl), None)
    assert notice["visible"] is True
    with pytest.raises(gr.Error, match="pickle"):
        model_bar.load_other(str(pkl), None, False)
    with pytest.raises(gr.Error):
        model_bar.load_other(str(pkl), None, True)  # allowed, but not a generator: one line, no crash
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(gr.Error, match="junk.safetensors"):
        model_bar.load_other(str(junk), None, False)
    with pytest.raises(gr.Error, match="no checkpoint file"):
        model_bar.load_other(str(tmp_path / "missing.pt"), None, False)
    path, info = model_bar.load_other(model, None, False)
    assert path == model and "32 px" in info and "noise inputs" in info and "(skip outputs)" in info
    orig = make_tiny_model(tmp_path / "orig.safetensors", version=1, architecture="orig")
    assert "StyleGAN (v1, AdaIN) (one RGB output)" in model_bar.load_other(orig, None, False)[1]


def test_build_app_without_models_shows_message(tmp_path):
    from app import build_app
    from app.config import AppConfig
    from app.state import initial_model

    cfg = AppConfig(models_dir=str(tmp_path / "none"), device="cpu")
    assert initial_model(cfg) == ""
    demo = build_app(cfg)
    names = {d.get("api_name") for d in demo.config["dependencies"]}
    assert {"generate", "render_recipe", "explore"} <= names


# ---------------------------------------------------------------------------------------------- mixing
def test_mixing_rows_labelled_by_resolution_and_presets(model):
    from app.tabs import mixing

    choices = mixing.row_choices(model)
    assert len(choices) == 8  # 32 px: num_ws = 2 * log2(32) - 2, computed, not 18
    assert choices[0] == ("0: 4px coarse", 0) and choices[-1] == ("7: 32px middle", 7)
    assert mixing.preset(model, "coarse") == [0, 1, 2, 3]
    assert mixing.preset(model, "middle") == [4, 5, 6, 7]
    assert mixing.preset(model, "fine") == []


def test_mix_matrix_layout_and_recipe(model):
    from app.tabs import explore, mixing

    img = mixing.mix("1,2", "3,4,5", [0, 1, 2, 3], 1.0, 0.7, "const", model)
    assert img.size == (4 * 32 + 5 * 2, 3 * 32 + 4 * 2)  # (1 + B) x (1 + A) tiles with 2 px padding
    spec = json.loads(img.info["stylescope-mix"])
    assert spec["row_seeds"] == [1, 2] and spec["col_seeds"] == [3, 4, 5]
    a = pixels(img)
    tile = lambda r, c: a[2 + r * 34 : 2 + r * 34 + 32, 2 + c * 34 : 2 + c * 34 + 32].astype(int)  # noqa: E731
    assert (tile(0, 0) == 0).all()  # empty corner
    src_a = pixels(explore.generate("1", 0.7, None, "const", model)).astype(int)
    assert np.abs(tile(1, 0) - src_a).max() <= 2  # left column shows source A
    assert np.abs(tile(1, 1) - src_a).max() > 2  # mixed cell differs from A
    # the embedded cell recipe renders that cell
    from app.tabs import recipe

    cell = pixels(recipe.render_recipe(img.info[PNG_TEXT_KEY], "")).astype(int)
    assert np.abs(cell - tile(1, 1)).max() <= 2
    # alpha 0 keeps A in every cell
    keep = pixels(mixing.mix("1", "3", [0, 1, 2, 3], 0.0, 0.7, "const", model))
    t = lambda r, c: keep[2 + r * 34 : 2 + r * 34 + 32, 2 + c * 34 : 2 + c * 34 + 32].astype(int)  # noqa: E731
    assert np.abs(t(1, 1) - t(1, 0)).max() <= 2


@pytest.mark.parametrize(
    "args, match",
    [
        (("x", "3", [0], 1.0, 0.7, "const"), "seeds"),
        (("1-20", "3", [0], 1.0, 0.7, "const"), "at most 8"),
        (("1", "3", [99], 1.0, 0.7, "const"), "ws rows"),
        (("1", "3", [0], 1.0, 0.7, "random"), "const or none"),
    ],
)
def test_mix_user_errors(model, args, match):
    from app.tabs import mixing

    with pytest.raises(gr.Error, match=match):
        mixing.mix(*args, model)


def test_measure_rows_plots_the_row_influence(model):
    from matplotlib.figure import Figure

    from app.tabs import mixing

    calls = []
    fig, info = mixing.measure_rows(model, 8, progress=lambda frac, desc=None: calls.append(frac))
    assert isinstance(fig, Figure) and "8 pairs" in info and "--rows-only" in info
    assert calls[-1] == (8, 8)
    # one heatmap column per ws row of the tiny model
    assert fig.axes[0].images[0].get_array().shape[1] == mixing.models.get(model).num_ws
    for bad in (0, 10_000):
        with pytest.raises(gr.Error, match="pairs"):
            mixing.measure_rows(model, bad, progress=lambda *a, **k: None)


# ---------------------------------------------------------------------------------------------- noise
def test_noise_presets_and_std_map(model):
    from app.tabs import noise

    assert noise.preset_layers(model, "all") == list(range(7))
    assert noise.preset_layers(model, "none") == []
    assert noise.preset_layers(model, "coarse") == list(range(7))  # every input of a 32 px model is <= 32 px
    assert noise.preset_layers(model, "fine") == []
    img, std = noise.noise("4", 0.7, list(range(7)), 1.0, 3, 8, model)
    assert img.size == std.size == (32, 32)
    assert Recipe.from_json(img.info[PNG_TEXT_KEY]).noise_seed == 3
    assert float(std.info["stylescope-std"].split()[1]) > 0  # noise changes pixels
    off, std_off = noise.noise("4", 0.7, [], 1.0, 3, 8, model)
    assert float(std_off.info["stylescope-std"].split()[1]) == 0.0
    # resampling the noise changes the image, the same noise seed reproduces it
    again, _ = noise.noise("4", 0.7, list(range(7)), 1.0, 3, 8, model)
    other, _ = noise.noise("4", 0.7, list(range(7)), 1.0, 4, 8, model)
    assert np.array_equal(pixels(img), pixels(again)) and not np.array_equal(pixels(img), pixels(other))


def test_noise_recipe_reproduces_bit_for_bit(model):
    from app.tabs import noise, recipe

    img, _ = noise.noise("9", 0.5, [0, 2, 4], 2.0, 17, 4, model)
    assert np.array_equal(pixels(recipe.render_recipe(img.info[PNG_TEXT_KEY], "")), pixels(img))


def test_noise_user_errors(model):
    from app.tabs import noise

    with pytest.raises(gr.Error, match="draws"):
        noise.noise("1", 0.7, [], 1.0, 0, 1000, model)
    with pytest.raises(gr.Error, match="noise inputs"):
        noise.noise("1", 0.7, [50], 1.0, 0, 4, model)
    with pytest.raises(gr.Error, match="noise seed"):
        noise.noise("1", 0.7, [], 1.0, -3, 4, model)


# ---------------------------------------------------------------------------------------------- layers
def test_layers_feature_maps_and_compare(model, tmp_path):
    from app.tabs import layers

    names = [v for _, v in layers.layer_choices(model)]
    assert names[:3] == ["input", "conv1", "convs.0"] and "img" not in names
    img, feats, img2, feats2, info = layers.layers(
        "3", 0.7, "convs.1", "grid", 0, "viridis", layers.NONE, model
    )
    assert img.size == (32, 32) and feats.size[0] > 64 and img2 is None and "16 channels" in info
    _, mean, *_ = layers.layers("3", 0.7, "convs.1", "mean", 0, "gray", layers.NONE, model)
    a = np.asarray(mean)
    assert a.shape[0] >= 256 and np.array_equal(a[..., 0], a[..., 1])  # gray map
    v1 = make_tiny_model(tmp_path / "tiny32-stylegan1.safetensors", version=1)
    v2 = make_tiny_model(tmp_path / "tiny32-stylegan2.safetensors")
    assert layers.counterpart(v2) == v1
    _, _, img2, feats2, info = layers.layers("3", 0.7, "conv1", "channel", 2, "magma", v1, v2)
    assert img2.size == (32, 32) and feats2 is not None and "compare" in info
    with pytest.raises(gr.Error, match="unknown layer"):
        layers.layers("3", 0.7, "convs.99", "grid", 0, "viridis", layers.NONE, model)


def test_layers_path_lengths_table(tmp_path):
    from app.tabs import layers

    v1 = make_tiny_model(tmp_path / "tiny32-stylegan1.safetensors", version=1)
    v2 = make_tiny_model(tmp_path / "tiny32-stylegan2.safetensors")
    table = layers.path_lengths(v2, v1, 8, "end", progress=lambda *a, **k: None)
    rows = [line for line in table.splitlines() if line.startswith("| tiny32")]
    assert [r.split(" | ")[1] for r in rows] == ["W-end", "Z-end", "W-end", "Z-end"]
    assert all(float(r.split(" | ")[2]) > 0 for r in rows) and "distance **" in table
    alone = layers.path_lengths(v2, layers.NONE, 8, "full", progress=lambda *a, **k: None)
    assert alone.count("| tiny32") == 2 and "Z-full" in alone
    for pairs, sampling in ((4, "end"), (8, "middle")):
        with pytest.raises(gr.Error):
            layers.path_lengths(v2, layers.NONE, pairs, sampling, progress=lambda *a, **k: None)


# ---------------------------------------------------------------------------------------------- train
def test_train_tab_reads_runs_and_refuses_bad_requests(tmp_path, monkeypatch):
    from app.tabs import train

    runs = tmp_path / "runs"
    run = runs / "00000-synthfaces-32-stylegan2"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "metrics.jsonl").write_text(
        '{"kimg": 0.1, "step": 1, "img_per_s": 5.0, "augment_p": 0.0, "loss_G": 1.5, "loss_D": 0.7}\n'
        '{"kimg": 0.2, "step": 2, "img_per_s": 5.0, "augment_p": 0.01, "loss_G": 1.2, "loss_D": 0.8}\n'
    )
    assert train.list_runs(str(runs)) == [run.name]
    frame = train.loss_frame(run)
    assert sorted(set(frame["series"])) == ["loss_D", "loss_G"] and len(frame) == 4
    progress, line, plot, sample, raw = train.status_view(run.name, str(runs))
    assert progress == 0.0 and isinstance(raw, dict) and len(plot) == 4
    for bad in ("", "../etc", "missing"):
        with pytest.raises(gr.Error):
            train.train_status(bad, str(runs))
    with pytest.raises(gr.Error, match="no saved model"):
        train.load_into_explorer(run.name, str(runs))
    with pytest.raises(gr.Error, match="folder"):
        train.train_start("Folder path", None, "", "tiny-cpu", 32, "stylegan2", 1, 8, "ada", 1, str(runs))
    # "Start from": a run of the folder by name, or a file on the server; anything else is refused up front.
    assert train._init_path(run.name, str(runs)) == str(run.resolve())
    assert train._init_path("  ", str(runs)) == ""
    with pytest.raises(gr.Error, match="Start from: no run or file named 'nowhere.pt'"):
        train.train_start(
            "SynthFaces", None, "", "tiny-cpu", 32, "stylegan2", 1, 8, "ada", 1, str(runs), "nowhere.pt"
        )
    import torch

    with pytest.raises(gr.Error, match="g_architecture must be one of"):
        train.train_start(
            "SynthFaces", None, "", "tiny-cpu", 32, "stylegan2", 1, 8, "ada", 1, str(runs), "", "progressive"
        )
    if not torch.cuda.is_available():
        with pytest.raises(gr.Error, match="No CUDA GPU"):
            train.train_start(
                "SynthFaces", None, "", "paper-F", 256, "stylegan2", 100, 32, "ada", 1, str(runs)
            )
    assert "CUDA" in train.device_note()
    # The generator output choice reaches the run's config (jobs.start replaced: no process is started).
    started = []
    monkeypatch.setattr(train.jobs, "start", lambda config, run_dir: started.append(config))
    monkeypatch.setattr(train.jobs, "status", lambda run_dir: {"state": "starting"})
    train.train_start(
        "SynthFaces", None, "", "tiny-cpu", 32, "stylegan1", 1, 8, "none", 1, str(runs), "", "orig"
    )
    assert started[0].arch == "stylegan1" and started[0].generator_config().architecture == "orig"


def test_load_into_explorer_uses_latest_network(model, tmp_path):
    import shutil

    from app.tabs import train

    run = tmp_path / "runs" / "00001-x-32-stylegan2"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    shutil.copy(model, run / "network-000000064.safetensors")
    (run / "latest.json").write_text(json.dumps({"network": "network-000000064.safetensors"}))
    path, info = train.load_into_explorer(run.name, str(tmp_path / "runs"))
    assert path.endswith("network-000000064.safetensors") and "32 px" in info


def test_per_input_noise_strengths(model):
    from app.tabs import noise

    everything = list(range(7))
    base, _ = noise.noise("5", 0.7, everything, 1.0, 3, 2, model)
    same, _ = noise.noise("5", 0.7, everything, 1.0, 3, 2, model, ", ".join(["1"] * 7))
    quiet, _ = noise.noise("5", 0.7, everything, 1.0, 3, 2, model, ", ".join(["0"] * 7))
    none, _ = noise.noise("5", 0.7, [], 1.0, 3, 2, model)
    assert np.array_equal(pixels(base), pixels(same))
    assert np.array_equal(pixels(quiet), pixels(none))
    assert json.loads(same.info[PNG_TEXT_KEY])["noise_strength"] == [1.0] * 7
    for bad in ("1, 2", "a, b"):
        with pytest.raises(gr.Error):
            noise.noise("5", 0.7, everything, 1.0, 3, 2, model, bad)


def test_render_recipe_accepts_ws_rows(model):
    """An inverted photo's recipe (W+ rows instead of a seed) renders in the Recipe tab like any other."""
    from app import models
    from app.tabs import recipe as recipe_tab

    G = models.get(model)
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3)))
    text = Recipe(model=str(model), model_hash=models.digest(model), ws=ws[0].tolist()).to_json()
    img = recipe_tab.render_recipe(text, model)
    assert img.size == (32, 32)
    assert Recipe.from_json(img.info[PNG_TEXT_KEY]).ws is not None
