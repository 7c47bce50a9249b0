"""SynthFaces: determinism, faithful labels, attribute rates, factor independence, dataset, export, CLI."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

import core.data.synthfaces_render as sfr
from core.data.synthfaces import (
    BINARY_ATTRIBUTES,
    CATEGORICAL_FACTORS,
    CONTINUOUS_FACTORS,
    FACTOR_GROUPS,
    FACTORS,
    SynthFaces,
    SynthFacesConfig,
    attribute_matrix,
    binary_attributes,
    export,
    neutral_factors,
    part_signal,
    render,
    sample_factors,
)
from core.errors import InputError

RES = 64


def _rgb(images: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] in [-1, 1] -> [N, H, W, 3] in [0, 1]."""
    return ((images + 1) / 2).permute(0, 2, 3, 1)


def _neutral(n: int = 2, **changes: list) -> dict[str, torch.Tensor]:
    f = neutral_factors(n)
    for name, values in changes.items():
        f[name] = torch.tensor(values, dtype=f[name].dtype)
    return f


# --- factors --------------------------------------------------------------------------------------------


def test_factor_names_and_groups() -> None:
    assert set(FACTORS) == set(CONTINUOUS_FACTORS) | set(CATEGORICAL_FACTORS)
    grouped = [name for names in FACTOR_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(FACTORS)  # every factor in exactly one group
    assert set(FACTOR_GROUPS) == {"coarse", "middle", "fine"}
    assert len(set(BINARY_ATTRIBUTES)) == len(BINARY_ATTRIBUTES)
    for name in (
        "smiling",
        "eyeglasses",
        "eyes_closed",
        "beard",
        "long_hair",
        "bald",
        "dark_hair",
        "facing_left",
    ):
        assert name in BINARY_ATTRIBUTES


def test_sample_factors_is_counter_based() -> None:
    a = sample_factors(64, seed=3)
    b = sample_factors(10, seed=3, start=20)
    c = sample_factors(64, seed=4)
    for name in FACTORS:
        assert a[name].shape == (64,)
        assert torch.equal(a[name][20:30], b[name])
    assert not torch.equal(a["yaw"], c["yaw"])
    for name in CONTINUOUS_FACTORS:
        assert a[name].dtype == torch.float32
    for name, (cats, _) in CATEGORICAL_FACTORS.items():
        assert a[name].dtype == torch.int64
        assert int(a[name].min()) >= 0 and int(a[name].max()) < len(cats)


def test_attribute_rates_within_bounds() -> None:
    attrs = binary_attributes(sample_factors(4000, seed=0))
    for name in BINARY_ATTRIBUTES:
        rate = attrs[name].float().mean().item()
        assert 0.15 <= rate <= 0.85, (name, rate)


def _max_cross_correlation(f: dict[str, torch.Tensor], *, one_hot: bool) -> tuple[float, str, str]:
    cols, names = [], []
    for name in FACTORS:
        if one_hot and name in CATEGORICAL_FACTORS:
            for c in range(len(CATEGORICAL_FACTORS[name][0])):
                cols.append((f[name] == c).double())
                names.append(name)
        else:
            cols.append(f[name].double())
            names.append(name)
    corr = torch.corrcoef(torch.stack(cols)).abs()
    same = torch.tensor([[a == b for b in names] for a in names])
    corr[same] = 0  # one-hot columns of one factor are dependent by construction
    i, j = divmod(int(corr.argmax()), len(names))
    return corr[i, j].item(), names[i], names[j]


def test_factors_are_independent() -> None:
    # Raw values (category codes for categorical factors) over 4000 samples: 325 pairs, sd of r = 0.016.
    r, a, b = _max_cross_correlation(sample_factors(4000, seed=0), one_hot=False)
    assert r < 0.05, (a, b, r)
    # Every category against every other factor (741 pairs) needs more samples for the same bound.
    r, a, b = _max_cross_correlation(sample_factors(20000, seed=0), one_hot=True)
    assert r < 0.04, (a, b, r)


# --- rendering ------------------------------------------------------------------------------------------


def test_render_contract_and_determinism() -> None:
    f = sample_factors(6, seed=1)
    a = render(f, resolution=RES, detail_seed=7)
    b = render(f, resolution=RES, detail_seed=7)
    assert a.shape == (6, 3, RES, RES) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert a.min() >= -1.0001 and a.max() <= 1.0001
    # Image i is the same alone as in a batch, and its detail is keyed by its index.
    one = render(sample_factors(1, seed=1, start=4), resolution=RES, detail_seed=7, index=torch.tensor([4]))
    torch.testing.assert_close(one[0], a[4], atol=1e-5, rtol=0)
    chunked = render(f, resolution=RES, detail_seed=7, chunk=4)
    torch.testing.assert_close(chunked, a, atol=1e-5, rtol=0)
    # Detail changes pixels but no factor; None renders without detail.
    assert not torch.equal(render(f, resolution=RES, detail_seed=8), a)
    assert not torch.equal(render(f, resolution=RES), a)


@pytest.mark.parametrize("res", [32, 100, 256])
def test_resolutions(res: int) -> None:
    img = render(sample_factors(2, seed=0), resolution=res, detail_seed=0)
    assert img.shape == (2, 3, res, res)
    assert torch.isfinite(img).all()


def test_bad_arguments() -> None:
    f = sample_factors(2, seed=0)
    with pytest.raises(ValueError):
        render(f, resolution=16)
    with pytest.raises(ValueError):
        render({k: v for k, v in f.items() if k != "smile"})
    with pytest.raises(ValueError):
        sample_factors(2, seed=-1)


def test_windows_hold_every_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixed evaluation windows must never cut a shape: compare with a full-frame render."""
    n = 32
    f = sample_factors(n, seed=11)
    # Push geometry to the corners of its ranges, where shapes reach furthest.
    corner = torch.Generator().manual_seed(0)
    for name in ("yaw", "roll", "head_x", "head_y", "brow_raise", "brow_tilt", "smile"):
        f[name] = torch.randint(0, 2, (n,), generator=corner).float() * 2 - 1
    for name in ("head_scale", "face_length", "mouth_open", "nose_size", "jaw_width"):
        f[name] = torch.randint(0, 2, (n,), generator=corner).float()
    f["eyeglasses"][::2] = 1
    f["beard"][1::2] = 2
    f["hair_style"] = torch.arange(n) % 4
    windowed = render(f, resolution=48, detail_seed=0)
    monkeypatch.setattr(sfr, "_HEAD_WINDOW", (-1.0, 1.0, -1.0, 1.0))
    monkeypatch.setattr(sfr, "_FACE_WINDOW", (-1.0, 1.0, -1.0, 1.0))
    full = render(f, resolution=48, detail_seed=0)
    torch.testing.assert_close(windowed, full, atol=1e-4, rtol=0)


def test_eyeglasses_label_is_faithful() -> None:
    # eyeglasses=0: the frame colour has no effect at all; eyeglasses=1: frame pixels appear.
    off = render(_neutral(2, eyeglasses=[0, 0], glasses_color=[0.0, 0.6]), resolution=RES)
    assert torch.equal(off[0], off[1])
    on = render(_neutral(2, eyeglasses=[1, 1], glasses_color=[0.0, 0.6]), resolution=RES)
    changed = (on[0] - off[0]).abs().amax(0) > 0.2
    assert changed.sum() > 40
    assert not torch.equal(on[0], on[1])  # the colour shows once there are frames


def test_hiding_the_brows_changes_only_the_brow_region() -> None:
    f = _neutral(2, hair_color=[0, 2], skin_tone=[0.0, 0.0])  # black brows / blond brows, both on pale skin
    full = render(f, resolution=RES, detail_seed=3)
    assert torch.equal(render(f, resolution=RES, detail_seed=3, hide=()), full)
    bare = render(f, resolution=RES, detail_seed=3, hide=["brows"])
    changed = (full - bare).abs().amax(1) > 0.02  # [N, H, W]
    rows = changed.any(2).nonzero()[:, 1]
    # Brows sit above the eyes, in a band well inside the upper half of the face.
    assert changed[0].sum() > 10 and int(rows.min()) > RES * 0.25 and int(rows.max()) < RES * 0.55
    assert torch.equal(render(f, resolution=RES, detail_seed=3, hide="brows"), bare)  # one name as a string
    with pytest.raises(ValueError, match="cannot hide"):
        render(f, resolution=RES, hide=["nose"])


def test_part_signal_measures_how_much_brows_show() -> None:
    # Black brows on pale skin read best, blond ones on pale skin about half as well, black ones on the darkest
    # skin a quarter; the value does not depend on the resolution (pixels of a 128 px image) beyond sampling.
    f = _neutral(3, hair_color=[0, 2, 0], skin_tone=[0.0, 0.0, 1.0])
    s128 = part_signal(f, "brows", resolution=128)
    s64 = part_signal(f, "brows", resolution=64)
    assert s128[0] > 30 and 0.3 * s128[0] < s128[1] < 0.7 * s128[0] and s128[2] < 0.35 * s128[0]
    torch.testing.assert_close(s64, s128, rtol=0.2, atol=0.5)
    images = render(f, resolution=64)
    torch.testing.assert_close(part_signal(f, "brows", resolution=64, images=images), s64)


def test_eyes_closed_hides_the_iris() -> None:
    img = _rgb(render(_neutral(2, eye_open=[0.95, 0.1], iris_color=[1, 1]), resolution=128))
    blue = (img[..., 2] > img[..., 0] + 0.25) & (img[..., 2] > 0.45)  # blue irises on a non-blue background
    open_px, closed_px = blue[0].sum().item(), blue[1].sum().item()
    assert open_px > 30
    assert closed_px < 0.1 * open_px


def _centroid_x(mask: torch.Tensor) -> float:
    xs = torch.arange(mask.shape[-1], dtype=torch.float32)
    return ((mask.float().sum(0) * xs).sum() / mask.float().sum()).item()


def test_yaw_sign_moves_features() -> None:
    # Facing right (yaw > 0) moves the irises and the nose to the right of the image, facing left to the left.
    yaws = [-0.9, 0.0, 0.9]
    img = _rgb(render(_neutral(3, yaw=yaws, iris_color=[1, 1, 1]), resolution=128))
    blue = (img[..., 2] > img[..., 0] + 0.25) & (img[..., 2] > 0.45)
    iris_x = [_centroid_x(blue[i]) for i in range(3)]
    assert iris_x[0] < iris_x[1] - 4 and iris_x[2] > iris_x[1] + 4
    small = render(_neutral(3, yaw=yaws, nose_size=[0.0] * 3), resolution=128)
    big = render(_neutral(3, yaw=yaws, nose_size=[1.0] * 3), resolution=128)
    nose = (big - small).abs().amax(1) > 0.02
    nose_x = [_centroid_x(nose[i]) for i in range(3)]
    assert nose_x[0] < nose_x[1] - 4 and nose_x[2] > nose_x[1] + 4
    assert abs(nose_x[1] - 63.5) < 2
    # The outline changes too: the attribute is faithful to the picture, not only to the label.
    attrs = binary_attributes(_neutral(3, yaw=yaws))
    assert attrs["facing_left"].tolist() == [True, False, False]
    assert attrs["facing_right"].tolist() == [False, False, True]


def test_smile_bends_the_mouth() -> None:
    # The lip mask comes from changing only the lip colour; compare corner rows with the centre row.
    def corners_minus_centre(smile: float) -> float:
        f0 = _neutral(1, smile=[smile], mouth_open=[0.0], lip_color=[0.0])
        f1 = _neutral(1, smile=[smile], mouth_open=[0.0], lip_color=[1.0])
        lips = (render(f1, resolution=128) - render(f0, resolution=128)).abs().amax(1)[0] > 0.05
        ys = torch.arange(128, dtype=torch.float32)
        cols = lips.any(0).nonzero().flatten()
        centre_y = (lips[:, 64].float() * ys).sum() / lips[:, 64].sum()
        edge = torch.cat([cols[:3], cols[-3:]])
        edge_y = (lips[:, edge].float() * ys[:, None]).sum() / lips[:, edge].sum()
        return (edge_y - centre_y).item()

    assert corners_minus_centre(1.0) < -1.0  # corners above the centre
    assert corners_minus_centre(-1.0) > 1.0  # corners below the centre
    assert binary_attributes(_neutral(1, smile=[1.0]))["smiling"].item()


def test_mouth_open_shows_teeth() -> None:
    img = _rgb(render(_neutral(2, mouth_open=[0.0, 1.0]), resolution=128))
    white = (img.min(-1).values > 0.85)[:, 64:100]  # lower half of the image: only teeth are this white
    assert white[0].sum() == 0 and white[1].sum() > 10


def test_hair_colour_matches_label() -> None:
    cats = CATEGORICAL_FACTORS["hair_color"][0]
    img = _rgb(render(_neutral(len(cats), hair_color=list(range(len(cats)))), resolution=128))
    crown = img[:, 14:20, 56:72].reshape(len(cats), -1, 3).mean(1)  # top of the head: hair
    palette = torch.tensor(sfr._HAIR_COLORS)
    assert (crown - palette).abs().max() < 0.2
    brightness = crown.mean(1)
    assert brightness[cats.index("black")] < brightness[cats.index("brown")] < brightness[cats.index("blond")]
    # Bald: the crown shows skin, not hair.
    bald = _rgb(render(_neutral(1, hair_style=[0], hair_color=[0]), resolution=128))[:, 14:20, 56:72]
    assert bald.mean() > 0.4


def test_beard_and_moustache_are_drawn() -> None:
    imgs = render(_neutral(3, beard=[0, 1, 2], hair_color=[0, 0, 0]), resolution=128)
    dark = _rgb(imgs).mean(-1) < 0.2
    assert dark[0].sum() < dark[1].sum() < dark[2].sum()
    chin = dark[:, 90:104, 48:80].sum((1, 2))
    assert chin[2] > 50 and chin[0] == 0


# --- dataset, export, CLI ---------------------------------------------------------------------------------


def test_dataset_items_match_batch() -> None:
    ds = SynthFaces(resolution=RES, seed=5, length=6)
    assert len(ds) == 6 and ds.cfg == SynthFacesConfig(resolution=RES, seed=5, length=6)
    images, factors = ds.batch(0, 6)
    labels = attribute_matrix(factors)
    img2, lab2 = ds[2]
    assert img2.shape == (3, RES, RES) and lab2.shape == (len(BINARY_ATTRIBUTES),)
    torch.testing.assert_close(img2, images[2], atol=1e-5, rtol=0)
    assert torch.equal(lab2, labels[2])
    items = list(ds)
    assert len(items) == 6 and torch.equal(items[5][1], labels[5])
    with pytest.raises(IndexError):
        ds[6]
    with pytest.raises(TypeError):
        len(SynthFaces(resolution=RES))
    batches = list(SynthFaces(resolution=32, length=5).stream(2))
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]


def test_export_writes_nvidia_layout(tmp_path) -> None:
    seen = []
    report = export(
        tmp_path / "ds", n=5, resolution=32, seed=2, batch_size=2, progress=lambda d, t: seen.append(d)
    )
    assert seen == [2, 4, 5]
    meta = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert meta["attributes"] == list(BINARY_ATTRIBUTES)
    assert [row[0] for row in meta["labels"]] == [f"images/{i:08d}.png" for i in range(5)]
    factors = sample_factors(5, seed=2)
    assert [row[1] for row in meta["labels"]] == attribute_matrix(factors).long().tolist()
    assert meta["factors"]["hair_style"] == factors["hair_style"].tolist()
    assert sorted(p.name for p in (tmp_path / "ds" / "images").iterdir()) == [
        f"{i:08d}.png" for i in range(5)
    ]
    assert report["images"] == 5 and set(report["attributes"]) == set(BINARY_ATTRIBUTES)
    assert not list((tmp_path / "ds").glob(".*"))  # no partial leftovers
    with pytest.raises(InputError):
        export(tmp_path / "ds", n=5, resolution=32)
    export(tmp_path / "ds", n=2, resolution=32, overwrite=True)
    assert len(list((tmp_path / "ds" / "images").iterdir())) == 2


def test_cli_registers_and_runs(tmp_path, capsys) -> None:
    from core.cli.synthfaces import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="dataset_command"))
    args = parser.parse_args(
        ["synthfaces", "--n", "3", "--res", "32", "--seed", "1", str(tmp_path / "o"), "--json"]
    )
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 3 and report["resolution"] == 32
    assert (tmp_path / "o" / "images" / "00000002.png").is_file()
    with pytest.raises(InputError):
        args.func(args)  # DST already holds a dataset
