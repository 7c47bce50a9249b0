"""core.metrics: Frechet distance, precision/recall, style-mixing disentanglement, noise stability, evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.data.synthfaces import FACTOR_GROUPS
from core.errors import InputError
from core.metrics import (
    evaluate_model,
    feature_statistics,
    frechet_distance,
    frechet_distance_features,
    knn_radii,
    mixing_cases,
    noise_label_stability,
    precision_recall,
    real_detail_stability,
    row_influence,
    style_mixing_score,
)
from core.models.classifier import AttributeClassifier, ClassifierConfig, save_classifier


def _rot(d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return q


@pytest.fixture
def tiny_classifier() -> AttributeClassifier:
    cfg = ClassifierConfig.synthfaces(
        input_resolution=32, channels=(8, 16, 16), feature_dim=128, stem_stride=1
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return AttributeClassifier(cfg).eval().requires_grad_(False)


# --- Frechet distance ----------------------------------------------------------------------------------


def test_fd_identical_sets_is_zero():
    x = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    assert frechet_distance_features(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fd_matches_closed_form_for_commuting_gaussians():
    d = 8
    q = _rot(d, 1)
    a = torch.linspace(0.5, 3.0, d, dtype=torch.float64)
    b = torch.linspace(2.0, 0.1, d, dtype=torch.float64)
    s1, s2 = q @ torch.diag(a) @ q.T, q @ torch.diag(b) @ q.T
    mu1, mu2 = torch.zeros(d, dtype=torch.float64), torch.full((d,), 0.5, dtype=torch.float64)
    expected = float((mu1 - mu2).square().sum() + (a.sqrt() - b.sqrt()).square().sum())
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_fd_matches_scipy_sqrtm_for_general_covariances():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(2)
    a = torch.randn(12, 12, generator=g, dtype=torch.float64)
    b = torch.randn(12, 12, generator=g, dtype=torch.float64)
    s1, s2 = a @ a.T + 0.1 * torch.eye(12, dtype=torch.float64), b @ b.T
    mu1, mu2 = (
        torch.randn(12, generator=g, dtype=torch.float64),
        torch.randn(12, generator=g, dtype=torch.float64),
    )
    covmean = scipy_linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = float(((mu1 - mu2) ** 2).sum()) + float(np.trace(s1.numpy() + s2.numpy() - 2 * covmean))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7)


def test_fd_of_shifted_samples_is_the_squared_shift():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(20_000, 4, generator=g, dtype=torch.float64)
    shift = torch.tensor([1.0, -2.0, 0.0, 0.5], dtype=torch.float64)
    # Same samples shifted: covariances identical, so FD is exactly |shift|^2.
    assert frechet_distance_features(x, x + shift) == pytest.approx(float(shift.square().sum()), rel=1e-6)
    mu, sigma = feature_statistics(x)
    assert sigma.dtype == torch.float64 and torch.allclose(
        sigma, torch.eye(4, dtype=torch.float64), atol=0.05
    )
    with pytest.raises(ValueError):
        feature_statistics(x[:1])


# --- precision / recall --------------------------------------------------------------------------------


def test_knn_radii_exclude_self():
    x = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    assert torch.allclose(knn_radii(x, k=1), torch.tensor([1.0, 1.0, 2.0, 3.0]))
    with pytest.raises(ValueError):
        knn_radii(x, k=4)


def test_precision_recall_toy_manifolds():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(2000, 2, generator=g)
    same = torch.rand(2000, 2, generator=g)
    pr = precision_recall(real, same, k=3, block=300)
    assert pr["precision"] > 0.95 and pr["recall"] > 0.95
    far = same + 10
    pr = precision_recall(real, far, k=3)
    assert pr["precision"] == 0.0 and pr["recall"] == 0.0
    collapsed = 0.45 + 0.1 * torch.rand(2000, 2, generator=g)  # a small corner of the real square
    pr = precision_recall(real, collapsed, k=3)
    assert pr["precision"] > 0.95 and pr["recall"] < 0.1


# --- disentanglement -----------------------------------------------------------------------------------


def _oracle_predictions(n: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    cats = {"hair_style": 4, "eyeglasses": 2, "beard": 3, "hair_color": 5, "iris_color": 4}
    preds = {}
    for f in sum(FACTOR_GROUPS.values(), ()):
        if f in cats:
            preds[f] = torch.nn.functional.one_hot(torch.randint(cats[f], (n,), generator=g), cats[f]).float()
        else:
            preds[f] = torch.randn(n, 1, generator=g) * 2
    return preds


def test_disentanglement_perfect_oracle_scores_one():
    a, b = _oracle_predictions(200, 0), _oracle_predictions(200, 1)
    mix = {g: {f: (b[f] if f in fs else a[f]) for f in a} for g, fs in FACTOR_GROUPS.items()}
    res = mixing_cases(a, b, mix)
    for g in FACTOR_GROUPS:
        assert res["groups"][g]["score"] == 1.0
        assert res["groups"][g]["moved"] == 1.0 and res["groups"][g]["kept"] == 1.0
        assert res["groups"][g]["cases"] > 100
    assert res["factors"]["coarse"]["yaw"]["expected"] == "B"
    assert res["factors"]["coarse"]["skin_tone"]["expected"] == "A"


def test_disentanglement_entangled_generator_scores_low():
    a, b = _oracle_predictions(200, 0), _oracle_predictions(200, 1)
    # Mixing any group copies everything from B: nothing is kept, so the scores drop to the moved share.
    mix = {g: dict(b) for g in FACTOR_GROUPS}
    res = mixing_cases(a, b, mix)
    for g in FACTOR_GROUPS:
        assert res["groups"][g]["moved"] == 1.0 and res["groups"][g]["kept"] == 0.0
        assert res["groups"][g]["score"] < 0.5


def test_disentanglement_ignores_lookalike_and_invisible_cases():
    a = _oracle_predictions(50, 0)
    b = {f: v.clone() for f, v in a.items()}  # B looks exactly like A: no informative case
    res = mixing_cases(a, b, {"coarse": a})
    assert res["groups"]["coarse"]["cases"] == 0 and res["groups"]["coarse"]["score"] is None
    a, b = _oracle_predictions(50, 0), _oracle_predictions(50, 1)
    for p in (a, b):
        p["eyeglasses"] = torch.tensor([[1.0, 0.0]]).repeat(50, 1)  # nobody wears glasses
    res = mixing_cases(a, b, {"fine": b})
    assert res["factors"]["fine"]["glasses_color"]["cases"] == 0


def test_style_mixing_score_runs_on_tiny_generator(tiny_G, tiny_classifier):
    res = style_mixing_score(tiny_G, tiny_classifier, n_pairs=6, batch=4, seed=0)
    assert res["n_pairs"] == 6
    assert set(res["groups"]) == {g for g, r in tiny_G.layer_groups.items() if r}
    again = style_mixing_score(tiny_G, tiny_classifier, n_pairs=6, batch=4, seed=0)
    assert again["groups"] == res["groups"]  # reproducible from the seed


def test_row_influence_finds_the_only_row_that_styles_the_image(tiny_G, tiny_classifier):
    # Styles become constants (their biases) everywhere but conv1, which reads ws row 0: the image depends on
    # row 0 alone, so a mix with B's row 0 is B's image and a mix with any other row of B is A's.
    with torch.no_grad():
        for layer in [tiny_G.to_rgb1, *tiny_G.convs, *tiny_G.to_rgbs]:
            layer.conv.modulation.weight.zero_()
    rep = row_influence(tiny_G, tiny_classifier, n_pairs=12, batch=6, seed=3, min_gap=0.0)
    assert rep["n_pairs"] == 12 and rep["num_ws"] == tiny_G.num_ws
    counted = [f for f, c in rep["cases"].items() if c[0] > 0]
    assert counted  # min_gap 0: every factor with a visible, differing prediction counts
    for f in counted:
        assert rep["follows_b"][f][0] == 1.0
        assert all(v in (0.0, None) for v in rep["follows_b"][f][1:])


# --- noise ---------------------------------------------------------------------------------------------


def test_noise_label_stability(tiny_G, tiny_classifier):
    with torch.no_grad():  # fresh generators scale their noise by 0 (StyleGAN2 init); give it some weight
        for name, p in tiny_G.named_parameters():
            if name.endswith("noise.weight"):
                p.fill_(0.3)
    res = noise_label_stability(tiny_G, tiny_classifier, n=6, draws=3, batch=4, seed=0)
    assert res["n"] == 6 and 0.0 <= res["stable_fraction"] <= 1.0
    assert res["std_map"].shape == (32, 32) and res["pixel_std_mean"] > 0  # noise changes pixels
    assert min(res["per_attribute"].values()) >= res["stable_fraction"]
    with pytest.raises(ValueError):
        noise_label_stability(tiny_G, tiny_classifier, n=2, draws=1)


def test_real_detail_stability_measures_the_classifier_on_redrawn_detail(tiny_classifier):
    from core.data.synthfaces import render
    from core.data.synthfaces_factors import sample_factors

    # Put face 0 (with its first detail draw) exactly on every attribute's threshold: any other detail moves
    # its logits, so some of its labels flip...
    with torch.no_grad():
        img = render(sample_factors(1, seed=5), resolution=32, detail_seed=6)
        tiny_classifier.head_logits.bias -= tiny_classifier(img)["logits"][0]
    a = real_detail_stability(tiny_classifier, n=6, draws=3, batch=4, seed=5, resolution=32)
    assert a == real_detail_stability(tiny_classifier, n=6, draws=3, batch=4, seed=5, resolution=32)
    assert a["n"] == 6 and min(a["per_attribute"].values()) >= a["stable_fraction"]
    assert a["stable_fraction"] <= 5 / 6
    # ...while a classifier that ignores the image keeps every label.
    with torch.no_grad():
        tiny_classifier.head_logits.weight.zero_()
        tiny_classifier.head_logits.bias.fill_(1.0)
    assert (
        real_detail_stability(tiny_classifier, n=6, draws=3, batch=4, resolution=32)["stable_fraction"] == 1.0
    )
    with pytest.raises(ValueError):
        real_detail_stability(tiny_classifier, n=2, draws=1)


# --- evaluate -----------------------------------------------------------------------------------------


def test_evaluate_model_end_to_end(tiny_G, tiny_classifier):
    calls = []
    rep = evaluate_model(
        tiny_G, tiny_classifier, n=16, seed=0, batch=8, n_pairs=4, noise_n=4, noise_draws=2,
        progress=lambda d, t: calls.append((d, t)),
    )  # fmt: skip
    assert not rep["cancelled"]
    q = rep["quality"]
    assert q["fd"] >= 0 and q["fd_floor"] >= 0 and 0 <= q["precision"] <= 1 and 0 <= q["recall"] <= 1
    assert set(q["attribute_frequency"]) == set(tiny_classifier.cfg.attributes)
    assert "disentanglement" in rep and "noise" in rep and "std_map" not in rep["noise"]
    assert set(rep["checks"]) >= {"fd_ratio", "precision", "recall", "attribute_frequency", "noise_stability"}
    assert isinstance(rep["pass"], bool)
    assert calls[-1] == (3 * 16 + 4 + 2 * 4, 3 * 16 + 4 + 2 * 4)
    real = rep["noise"]["real_reference"]
    assert real["n"] == 4 and real["draws"] == 2 and 0.0 <= real["stable_fraction"] <= 1.0
    json.dumps(rep)  # JSON-able


def test_evaluate_model_can_be_stopped_and_checks_inputs(tiny_G, tiny_classifier):
    rep = evaluate_model(tiny_G, tiny_classifier, n=16, batch=8, should_stop=lambda: True)
    assert rep["cancelled"] and not rep["pass"] and "quality" not in rep
    with pytest.raises(InputError):
        evaluate_model(tiny_G, tiny_classifier, n=4)


def test_evaluate_cli(tmp_path, tiny_G, tiny_classifier, capsys):
    from core.checkpoints.native import save_generator
    from core.cli import main

    save_generator(tiny_G, tmp_path / "g.safetensors")
    save_classifier(tiny_classifier, tmp_path / "c.safetensors")
    argv = [
        "evaluate",
        "--model",
        str(tmp_path / "g.safetensors"),
        "--classifier",
        str(tmp_path / "c.safetensors"),
    ]
    argv += ["--n", "8", "--pairs", "2", "--noise-n", "2", "--noise-draws", "2", "--device", "cpu", "--json"]
    assert main(argv) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["n"] == 8 and "quality" in rep and "row_influence" not in rep
    assert main([*argv, "--row-pairs", "2"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(next(iter(rep["row_influence"]["follows_b"].values()))) == tiny_G.num_ws
    assert main([*argv, "--row-pairs", "-1"]) == 2
    assert main([*argv, "--row-pairs", "2", "--rows-only"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "row_influence" in rep and "quality" not in rep
    assert main([*argv, "--rows-only"]) == 2
    assert main(["evaluate", "--model", str(tmp_path / "missing.safetensors"), "--json"]) == 2
