"""Directions core: SVM recovery, conditional projection, row edits, save/load, label files, collection."""

from __future__ import annotations

import math

import pytest
import torch

from core.directions import (
    Direction,
    DirectionSet,
    collect,
    conditional_entropy,
    covariance_edit_vector,
    fit_attribute_direction,
    fit_svm,
    linear_separability,
    load_directions,
    orthogonal_complement,
    parse_rows,
    read_label_csv,
    sample_latents,
    samples_from_labels,
    save_directions,
    select_confident,
    w_covariance,
)
from core.errors import CheckpointError, InputError
from core.render import Recipe, render_tensor, seed_to_z


def planted(n=3000, d=32, seed=0, noise=0.0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    normal = torch.randn(d, generator=g)
    normal /= normal.norm()
    s = X @ normal + 0.3 + noise * torch.randn(n, generator=g)
    return X, normal, s


class MeanColourScorer:
    """Test scorer: attribute 'red' = sigmoid of the centred mean red channel, 'bright' of mean brightness."""

    attributes = ("red", "bright")

    def __call__(self, images):
        r = images[:, 0].mean((1, 2))
        b = images.mean((1, 2, 3))
        return torch.sigmoid(torch.stack([r * 20, b * 20], 1))


# ---------------------------------------------------------------------------- SVM
def test_svm_recovers_planted_direction():
    X, normal, s = planted()
    fit = fit_svm(X, s > 0, seed=0)
    assert torch.dot(fit.normal, normal) > 0.98
    assert fit.val_accuracy > 0.97
    assert abs(fit.normal.norm().item() - 1) < 1e-5
    # offset in latent units: the boundary n.x + 0.3 = 0 has offset 0.3
    assert abs(fit.offset - 0.3) < 0.1
    assert fit.num_train + fit.num_val == len(X)


def test_select_confident_top_bottom():
    scores = torch.linspace(0, 1, 101)
    idx, labels = select_confident(scores, ratio=0.1)
    assert labels.sum() == 10 and (~labels).sum() == 10
    assert scores[idx[labels]].min() > 0.85 and scores[idx[~labels]].max() < 0.15
    # a rare attribute: top 40% would include negatives; they are dropped
    rare = torch.cat([torch.full((10,), 0.9), torch.full((90,), 0.1)])
    idx, labels = select_confident(rare, ratio=0.4)
    assert labels.sum() == 10 and (~labels).sum() == 40
    with pytest.raises(InputError):
        select_confident(scores, ratio=0.7)


def test_fit_svm_rejects_single_class():
    X, _, _ = planted(n=50)
    with pytest.raises(InputError, match="positive"):
        fit_svm(X, torch.ones(50, dtype=torch.bool))


def test_conditional_entropy_and_separability_prefers_linear_space():
    assert conditional_entropy([0, 1, 0, 1], [0, 1, 0, 1]) == pytest.approx(0.0)
    assert conditional_entropy([0, 1, 0, 1], [0, 0, 0, 0]) == pytest.approx(math.log(2))
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(2000, 8, generator=g)
    W = torch.cat([Z[:, :2] ** 2, Z[:, 2:]], 1)  # the attribute is linear in "W", quadratic in "Z"
    scores = torch.sigmoid(8 * (W[:, :2].sum(1, keepdim=True) - 1.4))
    sep_z = linear_separability(Z, scores, ["a"], keep=0.5)
    sep_w = linear_separability(W, scores, ["a"], keep=0.5)
    assert sep_w.score < sep_z.score
    assert sep_w.accuracies["a"] > 0.95


# ---------------------------------------------------------------------------- editing
def test_conditional_projection_is_orthogonal_to_conditions():
    g = torch.Generator().manual_seed(1)
    n = torch.randn(16, generator=g)
    conds = torch.randn(3, 16, generator=g)
    v = orthogonal_complement(n, conds)
    assert abs(v.norm().item() - 1) < 1e-5
    assert (conds @ v).abs().max() < 1e-5
    # the result still points the same way as n (positive overlap)
    assert torch.dot(v, n) > 0
    with pytest.raises(InputError, match="span"):
        orthogonal_complement(conds[0] + 2 * conds[1], conds)
    dirs = DirectionSet(
        [Direction("a", n / n.norm(), method="svm")]
        + [Direction(f"c{i}", c / c.norm(), method="svm") for i, c in enumerate(conds)],
        num_ws=4,
    )
    d = dirs["a~c0,c2"]
    assert d.name == "a~c0,c2" and d.conditions == ("c0", "c2")
    assert abs(torch.dot(d.vector, dirs["c0"].vector)) < 1e-5
    assert abs(torch.dot(d.vector, dirs["c2"].vector)) < 1e-5
    # moving along the conditioned direction keeps the conditions' signed distances fixed
    ws = torch.randn(5, 4, 16, generator=g)
    out = d.apply(ws, 3.0)
    assert torch.allclose(dirs["c0"].distance(out), dirs["c0"].distance(ws), atol=1e-4)


def test_covariance_edit_moves_the_factor_and_nothing_else():
    # Anisotropic latents x = A u (u: independent factors, like W after a mapping network); the attribute is
    # the sign of factor 0. The SVM normal in x is A^-T e0, which drags the other factors along when followed;
    # S n / (n^T S n) with S = A A^T is A e0 up to scale: it changes factor 0 alone.
    g = torch.Generator().manual_seed(3)
    d = 12
    A = torch.randn(d, d, generator=g) @ torch.diag(torch.logspace(1, -2, d))
    u = torch.randn(6000, d, generator=g)
    X = u @ A.T
    fit = fit_svm(X, u[:, 0] > 0, seed=0)
    S = torch.cov(X.T)
    v = covariance_edit_vector(fit.normal, S)
    assert abs(float(fit.normal @ v) - 1) < 1e-4  # strength = change of the signed distance, as with v = n
    u_step = torch.linalg.solve(A, v.double().to(A.dtype))
    assert u_step[1:].abs().max() < 0.05 * u_step[0].abs()
    u_naive = torch.linalg.solve(A, fit.normal)
    assert u_naive[1:].abs().max() > 0.5 * u_naive[0].abs()  # the plain normal would not have done it
    # isotropic latents: the edit is the normal itself
    assert torch.allclose(covariance_edit_vector(fit.normal, torch.eye(d)), fit.normal, atol=1e-6)
    with pytest.raises(InputError, match="does not fit"):
        covariance_edit_vector(fit.normal, torch.eye(d + 1))


def test_direction_with_normal_conditions_on_normals_and_round_trips(tmp_path, tiny_G):
    g = torch.Generator().manual_seed(4)
    w_dim = 32
    M = torch.randn(w_dim, w_dim, generator=g)
    S = M @ M.T / w_dim + 0.01 * torch.eye(w_dim)
    normals = torch.nn.functional.normalize(torch.randn(3, w_dim, generator=g), dim=1)
    dirs = DirectionSet(
        [
            Direction(f"a{i}", covariance_edit_vector(n, S), method="svm", normal=n, offset=0.1 * i)
            for i, n in enumerate(normals)
        ],
        num_ws=tiny_G.num_ws,
        layer_groups=tiny_G.layer_groups,
    )
    ws = tiny_G.mapping(torch.randn(4, 32, generator=g))
    a0 = dirs["a0"]
    assert torch.allclose(a0.distance(a0.apply(ws, 1.5)), a0.distance(ws) + 1.5, atol=1e-4)
    c = dirs["a0~a1,a2"]
    out = c.apply(ws, 2.0)
    for other in ("a1", "a2"):  # the conditions' signed distances stay put, their normals (not edits) count
        assert torch.allclose(dirs[other].distance(out), dirs[other].distance(ws), atol=1e-4)
    assert torch.allclose(a0.distance(out), a0.distance(ws) + 2.0, atol=1e-4)
    path = tmp_path / "cov.safetensors"
    save_directions(dirs, path)
    back = load_directions(path)
    for name in dirs:
        assert torch.equal(back[name].vector, dirs[name].vector)
        assert torch.equal(back[name].normal, dirs[name].normal)
    assert torch.equal(back["a0~a1,a2"].apply(ws, 2.0), out)
    with pytest.raises(InputError, match="normal"):
        Direction("bad", normals[0], normal=torch.ones(w_dim + 1))


def test_w_covariance_is_the_models_and_feeds_fits(tiny_G):
    S = w_covariance(tiny_G, 512, seed=0)
    assert S.shape == (tiny_G.w_dim, tiny_G.w_dim) and torch.allclose(S, S.T)
    assert torch.equal(S, w_covariance(tiny_G, 512, seed=0))
    s = sample_latents(tiny_G, 100, seed=5)  # fewer than 4 * w_dim rows
    s.scores = torch.sigmoid(s.w[:, :2] * 5)
    s.attributes = ("p", "q")
    d = fit_attribute_direction(s, "p", ratio=0.5, covariance=S)
    assert d.normal is not None and d.meta["edit"] == "covariance"
    assert abs(float(d.normal @ d.vector) - 1) < 1e-4
    # too few samples to estimate a covariance of their own: the plain normal, and the direction says so
    plain = fit_attribute_direction(s, "p", ratio=0.5)
    assert plain.normal is None and plain.meta["edit"] == "normal"
    # W+ (one w per row): the W covariance applies row by row; Z is isotropic: the normal is the edit
    wp = sample_latents(tiny_G, 100, seed=6, space="w+")
    wp.scores, wp.attributes = torch.sigmoid(wp.w[:, 0, :1] * 5), ("p",)
    dp = fit_attribute_direction(wp, "p", ratio=0.5, covariance=S)
    assert dp.vector.shape == dp.normal.shape == (tiny_G.num_ws, tiny_G.w_dim)
    assert abs(float((dp.normal * dp.vector).sum()) - 1) < 1e-4
    wz = fit_attribute_direction(s, "p", ratio=0.5, space="z", covariance=S)
    assert wz.normal is None and wz.meta["edit"] == "normal"


def test_row_restricted_edit_changes_only_those_rows(tiny_G):
    rows = parse_rows("middle", tiny_G.num_ws, tiny_G.layer_groups)
    assert rows == tuple(tiny_G.layer_groups["middle"])
    v = torch.randn(tiny_G.w_dim)
    d = Direction("x", v / v.norm(), rows=rows)
    ws = tiny_G.mapping(torch.randn(3, tiny_G.z_dim))
    out = d.apply(ws, 2.5)
    for r in range(tiny_G.num_ws):
        if r in rows:
            assert torch.allclose(out[:, r] - ws[:, r], 2.5 * d.vector.expand(3, -1), atol=1e-5)
        else:
            assert torch.equal(out[:, r], ws[:, r])
    # through a recipe: name@rows variant, strength 0 is a no-op
    dirs = DirectionSet(
        [Direction("x", v / v.norm())], num_ws=tiny_G.num_ws, layer_groups=tiny_G.layer_groups
    )
    base = render_tensor(tiny_G, Recipe(seed=3))
    same = render_tensor(tiny_G, Recipe(seed=3, directions={"x@coarse": 0.0}), directions=dirs)
    edited = render_tensor(tiny_G, Recipe(seed=3, directions={"x@coarse": 3.0}), directions=dirs)
    assert torch.equal(base, same)
    assert (edited - base).abs().max() > 1e-3
    assert parse_rows("0-2,5", 8) == (0, 1, 2, 5) and parse_rows("all", 8) is None
    for bad in ("9", "a-b", "3-1"):
        with pytest.raises(InputError):
            parse_rows(bad, 8)


def test_wplus_direction_and_z_direction_shapes():
    v = torch.zeros(4, 8)
    v[2, 0] = 1.0
    d = Direction("p", v, space="w+")
    ws = torch.zeros(2, 4, 8)
    out = d.apply(ws, 1.5)
    assert out[:, 2, 0].eq(1.5).all() and out.abs().sum() == 3.0
    z = Direction("zz", torch.ones(8) / 8**0.5, space="z")
    with pytest.raises(InputError, match="Z"):
        z.apply(ws, 1.0)
    assert z.apply_z(torch.zeros(1, 8), 8**0.5).allclose(torch.ones(1, 8))
    with pytest.raises(InputError):
        Direction("bad", torch.zeros(8))


# ---------------------------------------------------------------------------- save / load
def test_saved_directions_reload_identically(tmp_path, tiny_G):
    g = torch.Generator().manual_seed(2)
    a = Direction(
        "smiling",
        torch.nn.functional.normalize(torch.randn(32, generator=g), dim=0),
        method="svm",
        offset=0.25,
        accuracy=0.93,
        scale=1.7,
        attribute="smiling",
        rows=(2, 3),
        meta={"samples": 10},
    )
    b = Direction("pca_0", torch.nn.functional.normalize(torch.randn(32, generator=g), dim=0), method="pca")
    c = Direction("plus", torch.randn(tiny_G.num_ws, 32, generator=g), space="w+", method="svm")
    dirs = DirectionSet(
        [a, b, c],
        model_hash="abc123",
        num_ws=tiny_G.num_ws,
        layer_groups=tiny_G.layer_groups,
        meta={"classifier": "x"},
    )
    path = tmp_path / "dirs.safetensors"
    save_directions(dirs, path)
    back = load_directions(path)
    assert back.base_names() == dirs.base_names()
    assert back.model_hash == "abc123" and back.num_ws == tiny_G.num_ws and back.meta == {"classifier": "x"}
    for name in dirs:
        assert torch.equal(back[name].vector, dirs[name].vector)
        assert back[name].metadata() == dirs[name].metadata()
    ws = tiny_G.mapping(torch.randn(2, 32))
    assert torch.equal(
        back["smiling@middle~pca_0"].apply(ws, 2.0), dirs["smiling@middle~pca_0"].apply(ws, 2.0)
    )
    with pytest.raises(CheckpointError, match="fitted on model"):
        load_directions(path, model_hash="other")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(CheckpointError):
        load_directions(tmp_path / "junk.safetensors")


# ---------------------------------------------------------------------------- labels from people
@pytest.mark.parametrize(
    ("text", "match"),
    [
        (b"seed,label\n1,yes\n2\n", "line 3: expected 2 columns"),
        (b"1,yes\nabc,no\n", "line 2: seed 'abc'"),
        (b"1,yes\n2,maybe\n", "line 2: label 'maybe'"),
        (b"1,yes\n1,no\n", "labelled both"),
        (b"1,1\n2,1\n3,1\n", "0 no"),
        (b"-5,1\n", "outside"),
        (b"\xff\xfe\x00bad", "UTF-8"),
        (b"", "need at least"),
    ],
)
def test_bad_label_files_give_clear_errors(text, match):
    with pytest.raises(InputError, match=match):
        read_label_csv(text)


def test_label_file_reads(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("seed,label\n# comment\n10,yes\n11,no\n12,1\n13,0\n10,+\n")
    seeds, labels = read_label_csv(p)
    assert seeds == [10, 11, 12, 13] and labels == [True, False, True, False]
    with pytest.raises(InputError, match="cannot read"):
        read_label_csv(tmp_path / "missing.csv")


# ---------------------------------------------------------------------------- collection
def test_sample_latents_follow_recipe_seeds(tiny_G):
    s = sample_latents(tiny_G, 4, seed=7, space="w")
    assert s.seeds.tolist() == [7, 8, 9, 10]
    assert torch.equal(s.z[2:3], seed_to_z(9, tiny_G.z_dim))
    assert torch.allclose(s.w[2], tiny_G.mapping(seed_to_z(9, tiny_G.z_dim))[0, 0])
    p = sample_latents(tiny_G, 3, seed=1, space="w+")
    assert p.w.shape == (3, tiny_G.num_ws, tiny_G.w_dim) and p.latents().shape == (3, tiny_G.num_ws * 32)
    assert not torch.equal(p.w[:, 0], p.w[:, 1])  # one z per row


def test_collect_scores_and_stops(tiny_G):
    calls = []
    s = collect(
        tiny_G, MeanColourScorer(), 40, seed=0, batch_size=16, progress=lambda d, t: calls.append((d, t))
    )
    assert s.scores.shape == (40, 2) and s.attributes == ("red", "bright")
    assert calls[-1] == (40, 40)
    again = collect(tiny_G, MeanColourScorer(), 40, seed=0, batch_size=8)
    assert torch.allclose(s.scores, again.scores, atol=1e-5)
    seen = []
    partial = collect(
        tiny_G,
        MeanColourScorer(),
        40,
        batch_size=16,
        progress=lambda d, t: seen.append(d),
        should_stop=lambda: bool(seen),
    )
    assert len(partial) == 16 and partial.scores.shape == (16, 2)


def test_fit_direction_from_rendered_samples_moves_the_score(tiny_G):
    s = collect(tiny_G, MeanColourScorer(), 240, seed=0, batch_size=120)
    d = fit_attribute_direction(s, "red", ratio=0.3)
    assert d.method == "svm" and d.attribute == "red" and d.accuracy > 0.7
    ws = s.ws(tiny_G.num_ws)[:50]
    before = MeanColourScorer()(tiny_G.synthesis(ws))[:, 0]
    after = MeanColourScorer()(tiny_G.synthesis(d.apply(ws, 2 * d.scale)))[:, 0]
    assert (after > before).float().mean() > 0.8


def test_user_labels_make_a_direction(tiny_G):
    g = torch.Generator().manual_seed(0)
    v = torch.nn.functional.normalize(torch.randn(tiny_G.w_dim, generator=g), dim=0)
    probe = sample_latents(tiny_G, 300, seed=100)
    labels = (probe.w @ v > (probe.w @ v).median()).tolist()
    s = samples_from_labels(tiny_G, probe.seeds.tolist(), labels, name="mine")
    d = fit_attribute_direction(s, "mine", ratio=0.5, method="user")
    assert torch.dot(d.vector, v) > 0.8 and d.method == "user"
