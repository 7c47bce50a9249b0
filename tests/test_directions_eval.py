"""Directions: PCA, SeFa, fit_all on a planted linear world, and the ``stylescope directions`` CLI."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from core.cli import main
from core.directions import load_directions
from core.directions.collect import ClassifierScorer
from core.directions.evaluate import fit_all
from core.directions.pca import pca_directions
from core.directions.sefa import sefa_directions, style_affines
from core.errors import InputError


class PlantedG(nn.Module):
    """A stand-in generator whose 'image' is the mean W+ row: attributes are exactly linear in W.

    The mapping is nonlinear (signed square), so the same attributes are not linear in Z.
    """

    z_dim = w_dim = 12
    num_ws = 4
    img_resolution = 2
    layer_groups = {"coarse": [0, 1], "middle": [2], "fine": [3]}

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("M", torch.linalg.qr(torch.randn(12, 12, generator=g))[0])
        self.register_buffer("M2", torch.linalg.qr(torch.randn(12, 12, generator=g))[0])
        self.register_buffer("w_avg", torch.zeros(12))

    def mapping(self, z, c=None, truncation_psi=1.0, truncation_cutoff=None):
        u = z @ self.M
        w = (u.sign() * u**2) @ self.M2
        return w[:, None].repeat(1, self.num_ws, 1)

    def synthesis(self, ws, noise_mode="const", **kw):
        return ws.mean(1).reshape(-1, 3, 2, 2)


class PlantedScorer:
    attributes = ("a", "b", "c")

    def __init__(self):
        n = torch.zeros(3, 12)
        n[0, 0] = 1.0
        n[1, 0], n[1, 1] = 0.3, (1 - 0.09) ** 0.5  # overlaps a's normal: plain edits of a move b
        n[2, 2] = 1.0
        self.normals = n

    def __call__(self, images):
        return torch.sigmoid(8 * (images.flatten(1) @ self.normals.T - 0.2))


def test_fit_all_on_planted_world_meets_targets():
    G, scorer = PlantedG(), PlantedScorer()
    stages = set()
    dirs, rep = fit_all(
        G, scorer, samples=1500, eval_samples=300, batch_size=500, related_threshold=0.5,
        progress=lambda s, d, t: stages.add(s),
    )  # fmt: skip
    assert stages == {"collect", "fit", "evaluate"}
    assert set(dirs) == {"a", "b", "c"} and dirs.num_ws == 4
    for name, r in rep["attributes"].items():
        assert r["val_accuracy"] > 0.95, name
        assert r["edit_success"] > 0.95, name
        assert r["edit_success_conditional"] > 0.95, name
        assert r["side_effect_conditional_max"] < 0.05, name
        assert dirs[name].meta["edit_success"] == r["edit_success"]  # saved with the direction
    # the plain edit of a drags b along; conditioning on b removes that
    assert rep["attributes"]["a"]["side_effect_max"] > 0.1
    assert rep["attributes"]["a"]["conditioned_on"] == ["b", "c"]
    sep = rep["summary"]
    assert sep["separability_w"] < sep["separability_z"]
    assert all(sep["targets_met"].values())
    json.dumps(rep)  # JSON-able


def test_pca_directions_are_orthonormal_and_ordered(tiny_G):
    dirs = pca_directions(tiny_G, num_components=4, samples=400, rows=[0, 1])
    V = torch.stack([d.vector for d in dirs])
    assert torch.allclose(V @ V.T, torch.eye(4), atol=1e-4)
    var = [d.meta["variance"] for d in dirs]
    assert var == sorted(var, reverse=True) and dirs[0].rows == (0, 1) and dirs[0].method == "pca"
    assert [d.name for d in dirs] == ["pca_0", "pca_1", "pca_2", "pca_3"]
    again = pca_directions(tiny_G, num_components=4, samples=400, rows=[0, 1])
    assert torch.equal(again[0].vector, dirs[0].vector)  # seeded and sign-fixed


def test_sefa_top_direction_maximises_style_change(tiny_G):
    rows = tiny_G.layer_groups["coarse"]
    d = sefa_directions(tiny_G, num_components=3, rows=rows, scale_samples=0)
    A = torch.cat([w for r, _, w in style_affines(tiny_G) if r in rows])
    top = (A @ d[0].vector).norm()
    g = torch.Generator().manual_seed(0)
    rand = torch.nn.functional.normalize(torch.randn(50, tiny_G.w_dim, generator=g), dim=1)
    assert top >= (rand @ A.T).norm(dim=1).max()
    assert d[0].rows == tuple(rows) and d[0].meta["eigenvalue"] >= d[1].meta["eigenvalue"]
    rows_seen = sorted({r for r, _, _ in style_affines(tiny_G)})
    assert rows_seen == list(range(tiny_G.num_ws))


# ---------------------------------------------------------------------------- CLI
@pytest.fixture
def model_file(tmp_path, tiny_G):
    from core.checkpoints.native import save_generator

    path = tmp_path / "tiny.safetensors"
    save_generator(tiny_G, path)
    return path


@pytest.fixture
def classifier_file(tmp_path):
    from core.checkpoints.native import save_module
    from core.models.classifier import AttributeClassifier, tiny_classifier_config

    torch.manual_seed(0)  # test-only: module init uses the global RNG
    cfg = tiny_classifier_config()
    path = tmp_path / "clf.safetensors"
    clf = AttributeClassifier(cfg).eval()
    with torch.no_grad():  # spread the untrained logits so both classes occur
        clf.head_logits.weight.mul_(300.0)
        clf.head_logits.bias.zero_()
        x = torch.randn(64, 3, 16, 16)
        clf.head_logits.bias.sub_(clf(x)["logits"].median(0).values)
    save_module(clf, path, arch="attribute-classifier", config=cfg.to_dict())
    return path


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_cli_fit_from_labels_then_apply_and_list(tmp_path, capsys, model_file):
    labels = tmp_path / "labels.csv"
    labels.write_text("seed,label\n" + "".join(f"{s},{'yes' if s % 2 else 'no'}\n" for s in range(40)))
    out = tmp_path / "dirs.safetensors"
    rep = run_json(capsys, ["directions", "fit", "--model", str(model_file), "--labels", str(labels),
                            "--name", "odd", "--device", "cpu", "--out", str(out), "--json"])  # fmt: skip
    assert rep["name"] == "odd" and rep["samples"] == 40 and 0 <= rep["val_accuracy"] <= 1
    rep = run_json(capsys, ["directions", "pca", "--model", str(model_file), "--components", "2", "--samples", "200",
                            "--device", "cpu", "--out", str(out), "--json"])  # fmt: skip
    rep = run_json(capsys, ["directions", "sefa", "--model", str(model_file), "--components", "2", "--rows",
                            "coarse", "--device", "cpu", "--out", str(out), "--json"])  # fmt: skip
    listing = run_json(capsys, ["directions", "list", str(out), "--json"])
    assert [d["name"] for d in listing["directions"]] == ["odd", "pca_0", "pca_1", "sefa_0", "sefa_1"]
    rep = run_json(capsys, ["directions", "apply", "--model", str(model_file), "--directions", str(out),
                            "--seeds", "0-1", "--edit", "odd=2", "--rows", "middle", "--condition", "pca_0",
                            "--device", "cpu", "--out", str(tmp_path / "img"), "--json"])  # fmt: skip
    assert rep["directions"] == {"odd@middle~pca_0": 2.0} and len(rep["images"]) == 2
    from core.render import recipe_from_png, render_tensor

    recipe = recipe_from_png(rep["images"][0])
    assert recipe.directions == {"odd@middle~pca_0": 2.0}
    import core

    G = core.load_generator(model_file)
    assert render_tensor(G, recipe, directions=load_directions(out)).shape == (1, 3, 32, 32)


def test_cli_fit_with_classifier(tmp_path, capsys, model_file, classifier_file):
    out = tmp_path / "d.safetensors"
    rep = run_json(capsys, ["directions", "fit", "--model", str(model_file), "--classifier", str(classifier_file),
                            "--attribute", "a", "--samples", "60", "--ratio", "0.5", "--device", "cpu",
                            "--out", str(out), "--json"])  # fmt: skip
    assert rep["attribute"] == "a" and rep["samples"] == 60 and "val_accuracy" in rep
    assert load_directions(out)["a"].attribute == "a"


def test_factor_columns_score_the_regressed_value_as_a_fraction_of_its_range(classifier_file):
    from core.directions import load_scorer

    scorer = load_scorer(classifier_file)
    factor = scorer.available_factors[0]
    named_alike = ClassifierScorer(scorer.classifier, ("a", "f"))  # a binary attribute named like the factor
    assert named_alike.available_factors == ("f_value",)
    assert named_alike.with_factors(["f_value"]).attributes == ("a", "f", "f_value")
    with pytest.raises(InputError, match="unknown continuous factor 'nope'"):
        scorer.with_factors(["nope"])
    with_factor = scorer.with_factors([factor])
    assert with_factor.attributes == (*scorer.attributes, factor)
    assert scorer.for_column("a") is scorer and scorer.threshold_of("a") == 0.5
    assert scorer.for_column(factor).attributes == with_factor.attributes
    assert with_factor.threshold_of(factor) == "median"
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    got = with_factor(x)
    torch.testing.assert_close(got[:, :-1], scorer(x))  # the binary columns are unchanged
    clf = scorer.classifier
    value = clf(x)["regression"][:, 0]
    expected = ((value - clf.factor_low[0]) / clf.factor_span[0]).clamp(0, 1)
    torch.testing.assert_close(got[:, -1], expected)
    assert got[:, -1].min() >= 0 and got[:, -1].max() <= 1


def test_cli_fits_a_continuous_factor_direction(tmp_path, capsys, model_file, classifier_file):
    from core.directions import load_scorer

    factor = load_scorer(classifier_file).available_factors[0]
    out = tmp_path / "d.safetensors"
    rep = run_json(capsys, ["directions", "fit", "--model", str(model_file), "--classifier", str(classifier_file),
                            "--attribute", factor, "--samples", "60", "--ratio", "0.25", "--device", "cpu",
                            "--out", str(out), "--json"])  # fmt: skip
    # split at the samples' median: the two ends of the range, whatever side of its middle they lie on
    assert rep["attribute"] == factor and rep["num_pos"] == rep["num_neg"] == 15
    assert load_directions(out)[factor].attribute == factor


def test_cli_errors_are_one_line(tmp_path, capsys, model_file, classifier_file):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,yes\n2,perhaps\n")
    out = str(tmp_path / "x.safetensors")
    assert main(["directions", "fit", "--model", str(model_file), "--labels", str(bad), "--out", out]) == 2
    assert "line 2: label 'perhaps'" in capsys.readouterr().err
    assert main(["directions", "fit", "--model", str(model_file), "--classifier", str(classifier_file),
                 "--attribute", "nope", "--out", out]) == 2  # fmt: skip
    assert "unknown attribute 'nope'" in capsys.readouterr().err


# ---------------------------------------------------------------------------- guided edits
def test_guided_edit_moves_the_attribute_and_only_the_chosen_rows(tiny_G, classifier_file):
    from core.directions import load_scorer, w_covariance
    from core.directions.collect import sample_latents
    from core.directions.guided import guided_edit

    scorer = load_scorer(classifier_file)
    ws = sample_latents(tiny_G, 6, seed=3).ws(tiny_G.num_ws)
    cov = w_covariance(tiny_G, 2000)
    before_params = [p.detach().clone() for p in tiny_G.parameters()]
    r = guided_edit(
        tiny_G, scorer, ws, "a", covariance=cov, keep=["b"], rows=[0, 1], steps=15, pixel_weight=0.0
    )
    assert r.ws.shape == ws.shape and r.scores.shape == r.before.shape == (6, 2) and r.steps == 15
    assert torch.equal(r.ws[:, 2:], ws[:, 2:]) and not torch.equal(r.ws[:, :2], ws[:, :2])
    goal = r.before[:, 0] <= 0.5  # flip by default
    logit = lambda p: torch.logit(p.clamp(1e-6, 1 - 1e-6))  # noqa: E731
    sign = goal.float() * 2 - 1
    assert (sign * (logit(r.scores[:, 0]) - logit(r.before[:, 0]))).mean() > 0  # towards the target
    torch.testing.assert_close(r.reached, (r.scores[:, 0] > 0.5) == goal)
    assert all(torch.equal(p, q) for p, q in zip(before_params, tiny_G.parameters(), strict=True))
    assert all(p.grad is None for p in tiny_G.parameters())
    # the pixel term holds the image: a heavy weight changes it less than none
    held = guided_edit(tiny_G, scorer, ws, "a", covariance=cov, keep=["b"], steps=15, pixel_weight=1e4)
    free = guided_edit(tiny_G, scorer, ws, "a", covariance=cov, keep=["b"], steps=15, pixel_weight=0.0)
    with torch.no_grad():
        img0 = tiny_G.synthesis(ws, noise_mode="const")
        change = [(tiny_G.synthesis(e.ws, noise_mode="const") - img0).pow(2).mean() for e in (held, free)]
    assert change[0] < change[1]


def test_guided_edit_rejects_bad_requests(tiny_G, classifier_file):
    from core.directions import load_scorer, w_covariance
    from core.directions.collect import sample_latents
    from core.directions.guided import guided_edit

    scorer = load_scorer(classifier_file)
    ws = sample_latents(tiny_G, 2, seed=0).ws(tiny_G.num_ws)
    cov = w_covariance(tiny_G, 500)
    with pytest.raises(InputError, match="binary attribute"):
        guided_edit(tiny_G, scorer, ws, "nope", covariance=cov)
    with pytest.raises(InputError, match="unknown attribute 'zz' to keep"):
        guided_edit(tiny_G, scorer, ws, "a", covariance=cov, keep=["zz"])
    with pytest.raises(InputError, match="outside"):
        guided_edit(tiny_G, scorer, ws, "a", covariance=cov, rows=[99])
    with pytest.raises(InputError, match="covariance"):
        guided_edit(tiny_G, scorer, ws, "a", covariance=torch.eye(3))


def test_cli_guided_writes_reproducible_images(tmp_path, capsys, model_file, classifier_file):
    import numpy as np
    from PIL import Image

    import core
    from core.images import to_pil
    from core.render import recipe_from_png, render_tensor

    rep = run_json(capsys, ["directions", "guided", "--model", str(model_file), "--classifier", str(classifier_file),
                            "--attribute", "a", "--seeds", "0-1", "--steps", "5", "--keep", "b",
                            "--device", "cpu", "--out", str(tmp_path / "g"), "--json"])  # fmt: skip
    assert rep["attribute"] == "a" and rep["steps"] == 5 and len(rep["images"]) == 2
    assert 0 <= rep["reached"] <= 1 and 0 <= rep["side_effect_mean"] <= 1
    first = rep["images"][0]["path"]
    recipe = recipe_from_png(first)
    assert recipe.ws is not None and recipe.seed == 0
    again = to_pil(render_tensor(core.load_generator(model_file), recipe))[0]
    assert np.array_equal(np.asarray(Image.open(first).convert("RGB")), np.asarray(again.convert("RGB")))
    assert main(["directions", "guided", "--model", str(model_file), "--classifier", str(classifier_file),
                 "--attribute", "a", "--steps", "0", "--out", str(tmp_path / "x")]) == 2  # fmt: skip
    assert "--steps must be in 1..1000" in capsys.readouterr().err
