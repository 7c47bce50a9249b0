"""Training engine: losses, augmentation, EMA, config, a few real steps, checkpoints, resume, status."""

from __future__ import annotations

import json
import math

import pytest
import torch

from core.errors import CheckpointError, StyleScopeError
from core.training import TrainConfig, Trainer, TrainingDivergedError, tiny_config, train
from core.training import checkpoint as ckpt
from core.training.augment import AdaController, ada_augment, diff_augment, sample_affine
from core.training.data import make_data_source, toy_images
from core.training.ema import ema_beta, update_ema
from core.training.losses import d_logistic_loss, g_nonsaturating_loss, path_length_penalty, r1_penalty
from core.training.status import read_status, validate_status


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny convs are dominated by thread start-up; one thread is ~10x faster on a busy 2-core machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(**kw) -> TrainConfig:
    """16 px, 8 channels: a step takes a few ms on CPU."""
    base = dict(
        res=16, channels=(8, 8, 8), batch=4, kimg=0.016, snapshot_kimg=0.008, sample_kimg=0.016, sync_every=1
    )
    base.update(kw)
    return tiny_config(**base)


# ---------------------------------------------------------------- losses
def test_logistic_losses_match_formulas():
    real, fake = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5], [-3.0]])
    sp = torch.nn.functional.softplus
    assert torch.allclose(d_logistic_loss(real, fake), sp(fake).mean() + sp(-real).mean())
    assert torch.allclose(g_nonsaturating_loss(fake), sp(-fake).mean())
    # at D = 0 both losses are log 2 per term
    z = torch.zeros(4, 1)
    assert d_logistic_loss(z, z).item() == pytest.approx(2 * math.log(2))


def test_r1_of_linear_discriminator_is_squared_weight_norm():
    w = torch.randn(3 * 4 * 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x.flatten(1) @ w)[:, None]
    r1 = r1_penalty(x, logits)
    assert r1.shape == (5,)
    assert torch.allclose(r1, w.square().sum().expand(5), rtol=1e-5)
    # quadratic D: grad = 2x, R1 = 4 |x|^2, and the penalty back-propagates (create_graph)
    r1 = r1_penalty(x, x.square().flatten(1).sum(1, keepdim=True))
    assert torch.allclose(r1, 4 * x.detach().square().flatten(1).sum(1), rtol=1e-5)
    r1.sum().backward()
    assert torch.allclose(x.grad, 8 * x.detach(), rtol=1e-5)


def test_path_length_of_linear_synthesis_and_pl_mean_ema():
    torch.manual_seed(0)
    ws = torch.randn(64, 2, 8, requires_grad=True)
    A = torch.randn(8, 3 * 4 * 4, requires_grad=True)  # a "weight": the penalty must reach it
    img = (ws.sum(1) @ A).reshape(64, 3, 4, 4)
    pl_mean = torch.zeros(())
    penalty, lengths = path_length_penalty(
        img, ws, pl_mean, decay=0.01, generator=torch.Generator().manual_seed(1)
    )
    # J^T y for img = (sum_rows ws) A: every row gets A y, so |J^T y| over rows-mean of squares = |A y|^2
    assert lengths.shape == (64,)
    assert pl_mean.item() == pytest.approx(0.01 * lengths.mean().item(), rel=1e-5)
    # E|A y|^2 with y ~ N(0, I/(H*W)) is ||A||_F^2 / 16
    assert lengths.square().mean().item() == pytest.approx(A.detach().square().sum().item() / 16, rel=0.3)
    assert penalty.item() >= 0
    penalty.backward()
    assert A.grad is not None and A.grad.abs().sum() > 0


# ---------------------------------------------------------------- augmentation
def test_ada_p0_is_identity_and_p1_changes_images():
    x = toy_images(0, 8, 16, seed=0, device="cpu")
    g = torch.Generator().manual_seed(0)
    assert torch.equal(ada_augment(x, torch.tensor(0.0), generator=g), x)
    y = ada_augment(x, torch.tensor(1.0), generator=g)
    assert y.shape == x.shape and not torch.allclose(y, x)


@pytest.mark.parametrize("aug", ["ada", "diffaug"])
def test_augment_keeps_exact_coordinates_under_bf16_autocast(aug):
    # The trainer augments inside bf16 autocast. bf16 has 8 significant bits: pixel indices like 63 * 64 + 63
    # must not go through it (they would round to a neighbour or past the end, a device-side assert on CUDA).
    x = torch.randn(2, 3, 64, 64)
    shift = torch.eye(3).repeat(2, 1, 1)
    shift[:, 0, 2] = 3
    g = torch.Generator().manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(ada_augment(x, torch.tensor(0.0), generator=g), x)
        assert torch.equal(sample_affine(x, shift, padding="zeros")[..., :61], x[..., 3:])
        y = ada_augment(x, torch.tensor(1.0), generator=g) if aug == "ada" else diff_augment(x, generator=g)
    assert y.dtype == x.dtype and torch.isfinite(y).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        again = ada_augment(x, torch.tensor(1.0), generator=torch.Generator().manual_seed(0))
    plain = ada_augment(x, torch.tensor(1.0), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, plain)  # the same transforms, computed in float32 either way


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("aug", ["ada", "diffaug"])
def test_augment_at_256px_under_cuda_bf16_autocast(aug):
    # Where the bf16 index rounding used to land past the end: a device-side assert in the gather at 256 px.
    x = torch.randn(8, 3, 256, 256, device="cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y = (
            ada_augment(x, torch.tensor(1.0, device="cuda"), generator=g)
            if aug == "ada"
            else diff_augment(x, generator=g)
        )
    torch.cuda.synchronize()
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    g = torch.Generator(device="cuda").manual_seed(0)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        assert torch.equal(ada_augment(x, torch.tensor(0.0, device="cuda"), generator=g), x)


def test_affine_sampler_exact_for_flips_and_integer_shifts():
    x = torch.randn(2, 3, 8, 8)
    flip = torch.diag(torch.tensor([-1.0, 1.0, 1.0])).expand(2, 3, 3)
    assert torch.allclose(sample_affine(x, flip), x.flip(-1))
    shift = torch.eye(3).repeat(2, 1, 1)
    shift[:, 0, 2] = 2  # out[x] = in[x + 2]
    out = sample_affine(x, shift, padding="zeros")
    assert torch.allclose(out[..., :6], x[..., 2:]) and torch.all(out[..., 6:] == 0)


def test_augment_twice_differentiable_for_r1():
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    g = torch.Generator().manual_seed(0)
    for fn in (
        lambda t: ada_augment(t, torch.tensor(1.0), generator=g),
        lambda t: diff_augment(t, generator=g),
    ):
        y = fn(x)
        (grad,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        grad.square().sum().backward()  # second derivative exists


def test_ada_controller_moves_p_towards_target():
    ada = AdaController(target=0.6, ada_kimg=0.1, interval=4, batch=25, p=0.0, device="cpu")
    ada.accumulate(torch.ones(10, 1))  # r_t = 1 > 0.6: overfitting -> p grows by 4*25/100
    ada.update()
    assert ada.p.item() == pytest.approx(1.0)
    ada.accumulate(-torch.ones(10, 1))
    ada.update()
    assert ada.p.item() == pytest.approx(0.0)
    assert ada.count.item() == 0


# ---------------------------------------------------------------- EMA / config
def test_ema_beta_half_life_and_rampup():
    assert ema_beta(32, 10**9, ema_kimg=10, ema_rampup=None) == pytest.approx(0.5 ** (32 / 10_000))
    # early in training the ramp-up shortens the half-life to cur_nimg * rampup
    assert ema_beta(32, 1000, ema_kimg=10, ema_rampup=0.05) == pytest.approx(0.5 ** (32 / 50))
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    target = b.weight.detach().clone()
    update_ema(a, b, 0.0)
    assert torch.equal(a.weight, target)


def test_config_roundtrip_defaults_and_errors():
    cfg = TrainConfig(res=64, batch=16)
    assert TrainConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert cfg.gamma == pytest.approx(0.0002 * 64**2 / 16)
    assert TrainConfig(res=64, r1_gamma=10).gamma == 10
    assert TrainConfig(res=256, width="F").widths == (512, 512, 512, 512, 512, 256, 128)
    assert tiny().is_tiny() and not TrainConfig(res=256).is_tiny()
    with pytest.raises(StyleScopeError):
        TrainConfig(res=100)
    with pytest.raises(StyleScopeError):
        TrainConfig(aug="bogus")
    with pytest.raises(StyleScopeError, match="g_architecture"):
        TrainConfig(g_architecture="progressive")
    assert TrainConfig().generator_config().architecture == "skip"
    assert TrainConfig(g_architecture="orig").generator_config().architecture == "orig"
    with pytest.raises(StyleScopeError):
        TrainConfig.from_dict({"resolution": 3})


def test_data_sources_are_deterministic_and_sharded():
    a = make_data_source("toy", 16, "cpu", 0, 0, 2, batch=4)
    b = make_data_source("toy", 16, "cpu", 0, 1, 2, batch=4)
    xa, la = next(a)
    xb, _ = next(b)
    assert xa.shape == (4, 3, 16, 16) and la is None and xa.min() >= -1 and xa.max() <= 1
    assert not torch.equal(xa, xb)
    # resuming at nimg 8 (one global step of 2 x 4) continues with the second batch
    next(a)
    a2 = make_data_source("toy", 16, "cpu", 0, 0, 2, batch=4, start_nimg=8)
    assert torch.equal(next(a2)[0], toy_images(8, 4, 16, seed=0, device="cpu"))


# ---------------------------------------------------------------- training
@pytest.mark.parametrize(
    "arch,aug,g_arch",
    [
        ("stylegan2", "ada", "skip"),
        ("stylegan1", "diffaug", "skip"),
        ("stylegan1", "none", "orig"),
        ("stylegan2", "none", "resnet"),
    ],
)
def test_steps_run_with_finite_losses(tmp_path, arch, aug, g_arch):
    cfg = tiny(arch=arch, aug=aug, aug_p=0.5, g_architecture=g_arch)
    tr = Trainer(cfg, tmp_path)
    before = [p.detach().clone() for p in tr.G.parameters()]
    ema_before = [p.detach().clone() for p in tr.G_ema.parameters()]
    for _ in range(4):
        tr.train_step()
    means, stop = tr.read_stats(False)
    assert not stop
    for key in ("loss_D", "loss_G", "r1", "pl", "pl_mean", "real_logit"):
        assert math.isfinite(means[key]), key
    assert tr.cur_nimg == 16 and tr.step == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(ema_before, tr.G_ema.parameters(), strict=True))
    assert tr.G.w_avg.abs().sum() > 0 and torch.equal(tr.G_ema.w_avg, tr.G.w_avg)
    assert tr.G.cfg.architecture == g_arch and hasattr(tr.G, "to_rgb") == (g_arch != "skip")
    if aug == "ada":
        assert tr.ada.p.item() != 0.5  # adapted after ada_interval steps


def test_conditional_training_uses_labels(tmp_path):
    from core.training.data import DataSource

    def batches():
        i = 0
        while True:
            x = toy_images(i, 4, 16, seed=0, device="cpu")
            yield x, torch.nn.functional.one_hot(torch.arange(4) % 3, 3).float()
            i += 4

    data = DataSource(batches(), 3, "labelled-toy", "labelled toy")
    tr = Trainer(tiny(cond=True), tmp_path, data=data)
    assert tr.G.c_dim == 3 and tr.D.cfg.c_dim == 3
    tr.train_step()
    assert all(math.isfinite(v) for v in tr.read_stats(False)[0].values())


def test_run_writes_checkpoints_status_samples_and_resumes_exactly(tmp_path):
    run = tmp_path / "run"
    st = train(tiny(aug="ada", aug_p=0.3), run, install_signal_handlers=False)
    assert st["state"] == "finished" and st["cur_nimg"] == 16
    validate_status(read_status(run))
    assert [n for n, _ in ckpt.list_checkpoints(run)] == [8, 16]
    assert json.loads((run / "latest.json").read_text())["checkpoint"] == "ckpt-000000016.pt"
    assert (run / "network-000000016.safetensors").is_file()
    assert (run / "samples" / "fakes-000000000.png").is_file() and (
        run / "samples" / "fakes-000000016.png"
    ).is_file()
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["kimg"] == pytest.approx(0.016)
    from core.checkpoints.native import load_native

    G = load_native(run / "network-000000016.safetensors")
    assert G.img_resolution == 16

    _, state = ckpt.load_latest(run)
    assert state["cur_nimg"] == 16 and state["config"]["res"] == 16
    # Resume: everything comes back (kimg, optimiser state, augment p, pl_mean)
    tr = Trainer(TrainConfig.from_dict(state["config"]), run, resume_state=state)
    assert tr.cur_nimg == 16 and tr.step == 4
    assert tr.ada.p.item() == pytest.approx(state["augment_p"])
    assert tr.pl_mean.item() == pytest.approx(float(state["pl_mean"]))
    for a, b in zip(tr.G_opt.state_dict()["state"].values(), state["G_opt"]["state"].values(), strict=True):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
    st2 = train(None, run, resume=True, kimg=0.024, install_signal_handlers=False)
    assert st2["state"] == "finished" and st2["cur_nimg"] == 24 and st2["total_kimg"] == pytest.approx(0.024)


def test_resume_continues_the_same_trajectory(tmp_path):
    """8 steps straight == 4 steps, save, resume, 4 steps (same data, RNG, optimiser state)."""
    cfg = tiny(kimg=0.032, snapshot_kimg=0.016, sample_kimg=1.0, aug="ada", aug_p=0.2)
    train(cfg, tmp_path / "a", install_signal_handlers=False)
    train(cfg.replace(kimg=0.016), tmp_path / "b", install_signal_handlers=False)
    train(None, tmp_path / "b", resume=True, kimg=0.032, install_signal_handlers=False)
    _, sa = ckpt.load_latest(tmp_path / "a")
    _, sb = ckpt.load_latest(tmp_path / "b")
    assert sa["cur_nimg"] == sb["cur_nimg"] == 32
    for key in ("G", "D", "G_ema"):
        for name in sa[key]:
            assert torch.allclose(sa[key][name], sb[key][name], atol=1e-6), (key, name)
    assert sa["augment_p"] == pytest.approx(sb["augment_p"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_on_cuda_continues_the_same_trajectory(tmp_path):
    """On a GPU the checkpoint loads onto the device; the data generator's state must still restore."""
    cfg = tiny(kimg=0.016, snapshot_kimg=0.016, sample_kimg=1.0)
    train(cfg, tmp_path, device="cuda", install_signal_handlers=False)
    _, saved = ckpt.load_latest(tmp_path)
    st = train(None, tmp_path, resume=True, kimg=0.032, device="cuda", install_signal_handlers=False)
    assert st["state"] == "finished" and st["cur_nimg"] == 32
    _, resumed = ckpt.load_latest(tmp_path)
    assert resumed["cur_nimg"] == 32 and saved["cur_nimg"] == 16
    assert all(torch.isfinite(t).all() for t in resumed["G_ema"].values())


def test_should_stop_saves_and_reports_stopped(tmp_path):
    calls = []
    st = train(
        tiny(kimg=1.0),
        tmp_path,
        should_stop=lambda: len(calls) >= 0 and bool(calls.append(1) or len(calls) > 2),
        install_signal_handlers=False,
    )
    assert st["state"] == "stopped" and 0 < st["cur_nimg"] < 1000
    _, state = ckpt.load_latest(tmp_path)
    assert state["cur_nimg"] == st["cur_nimg"]


def test_nan_loss_stops_with_clear_message_and_keeps_last_checkpoint(tmp_path):
    cfg = tiny(kimg=0.032, snapshot_kimg=0.008)
    tr = Trainer(cfg, tmp_path)
    orig = tr.train_step

    def poisoned():
        orig()
        if tr.cur_nimg > 8:
            tr.stats[0] = float("nan")  # loss_D

    tr.train_step = poisoned
    with pytest.raises(TrainingDivergedError, match="non-finite loss.*loss_D=nan.*ckpt-000000008.pt"):
        tr.run(install_signal_handlers=False)
    assert read_status(tmp_path)["state"] == "failed"
    assert [n for n, _ in ckpt.list_checkpoints(tmp_path)] == [8]
    ckpt.load_latest(tmp_path)


def test_checkpoint_loading_is_weights_only_and_falls_back(tmp_path):
    train(tiny(), tmp_path, install_signal_handlers=False)
    newest = tmp_path / "ckpt-000000016.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    path, state = ckpt.load_latest(tmp_path)
    assert path.name == "ckpt-000000008.pt" and state["cur_nimg"] == 8
    evil = tmp_path / "ckpt-000000099.pt"
    import pickle

    evil.write_bytes(pickle.dumps({"format": ckpt.FORMAT, "x": print}))
    with pytest.raises(CheckpointError):
        ckpt.load_training_state(evil)
    with pytest.raises(CheckpointError):
        ckpt.load_latest(tmp_path / "nothing-here")


def test_cpu_refuses_large_configs(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("has CUDA")
    with pytest.raises(StyleScopeError, match="No CUDA GPU found; CPU training is limited to tiny configs"):
        train(TrainConfig(res=256), tmp_path, install_signal_handlers=False)


def test_fir_choice_is_validated_and_applied(tmp_path):
    from core.nn import get_fir_impl, set_fir_impl
    from core.training import Trainer, tiny_config

    with pytest.raises(StyleScopeError, match="fir must be one of"):
        tiny_config(fir="fft")
    before = get_fir_impl()
    try:
        tr = Trainer(tiny_config(fir="folded"), tmp_path / "run")
        tr.train_step()
        assert get_fir_impl() == "folded"
    finally:
        set_fir_impl(before)


# ---------------------------------------------------------------- warm start (--init)
def _same(a: torch.nn.Module, b: dict) -> bool:
    return all(torch.equal(v, b[k].to(v.dtype)) for k, v in a.state_dict().items())


def test_warm_start_from_a_run_copies_G_D_G_ema_and_starts_the_count_at_zero(tmp_path):
    train(tiny(), tmp_path / "a", install_signal_handlers=False)
    _, src = ckpt.load_latest(tmp_path / "a")
    tr = Trainer(tiny(seed=5, init=str(tmp_path / "a")), tmp_path / "b")
    assert tr.cur_nimg == 0 and tr.step == 0
    assert _same(tr.G, src["G"]) and _same(tr.D, src["D"]) and _same(tr.G_ema, src["G_ema"])
    assert any("G, D, G_ema" in w for w in tr.warnings)
    fresh = Trainer(tiny(seed=5), tmp_path / "c")
    assert not _same(fresh.G, src["G"])  # the copy is real, not the seeded initialisation


def test_exported_weights_are_a_compact_warm_start(tmp_path):
    from core.training.warmstart import export_weights

    train(tiny(), tmp_path / "a", install_signal_handlers=False)
    path, src = ckpt.load_latest(tmp_path / "a")
    info = export_weights(tmp_path / "a", tmp_path / "w.safetensors")
    assert info["kimg"] == pytest.approx(0.016)
    assert info["bytes"] < 0.6 * path.stat().st_size  # no optimiser moments
    tr = Trainer(tiny(init=str(tmp_path / "w.safetensors")), tmp_path / "b")
    assert _same(tr.G, src["G"]) and _same(tr.D, src["D"]) and _same(tr.G_ema, src["G_ema"])
    half = export_weights(path, tmp_path / "h.safetensors", dtype=torch.bfloat16)
    assert half["bytes"] < 0.6 * info["bytes"]
    st = train(tiny(init=str(tmp_path / "h.safetensors")), tmp_path / "c", install_signal_handlers=False)
    assert st["state"] == "finished" and st["cur_nimg"] == 16


def test_warm_start_from_a_generator_file_keeps_a_fresh_discriminator(tmp_path):
    from core.checkpoints.native import load_native, save_generator

    train(tiny(), tmp_path / "a", install_signal_handlers=False)
    net = sorted((tmp_path / "a").glob("network-*.safetensors"))[-1]
    G = load_native(net)
    save_generator(G, tmp_path / "g.safetensors")
    tr = Trainer(tiny(init=str(tmp_path / "g.safetensors")), tmp_path / "b")
    fresh = Trainer(tiny(), tmp_path / "c")
    assert _same(tr.G, G.state_dict()) and _same(tr.G_ema, G.state_dict())
    assert _same(tr.D, fresh.D.state_dict())
    assert any("D starts from its initialisation" in w for w in tr.warnings)


def test_warm_start_rejects_other_architectures_and_missing_files(tmp_path):
    train(tiny(), tmp_path / "a", install_signal_handlers=False)
    with pytest.raises(CheckpointError, match=r"G weights do not fit.*shape"):
        Trainer(tiny(channels=(8, 8, 4), init=str(tmp_path / "a")), tmp_path / "b")
    with pytest.raises(CheckpointError, match="no such file"):
        Trainer(tiny(init=str(tmp_path / "nope.safetensors")), tmp_path / "c")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError):
        Trainer(tiny(init=str(tmp_path / "junk.safetensors")), tmp_path / "d")


def test_cli_exports_weights(tmp_path, capsys):
    from core.cli import main

    train(tiny(), tmp_path / "a", install_signal_handlers=False)
    assert (
        main(
            [
                "train",
                "--export-weights",
                str(tmp_path / "a"),
                "--out",
                str(tmp_path / "w.safetensors"),
                "--json",
            ]
        )
        == 0
    )
    info = json.loads(capsys.readouterr().out)
    assert info["tensors"] > 0 and (tmp_path / "w.safetensors").is_file()


def test_cli_init_path_is_stored_absolute(tmp_path, monkeypatch):
    import argparse

    from core.cli import train as cli_train

    parser = argparse.ArgumentParser()
    cli_train.register(parser.add_subparsers())
    monkeypatch.chdir(tmp_path)
    args = parser.parse_args(["train", "--data", "toy", "--res", "16", "--init", "w.safetensors"])
    assert cli_train.build_config(args).init == str(tmp_path / "w.safetensors")


def test_cli_generator_architecture_flag():
    import argparse

    from core.cli import train as cli_train

    parser = argparse.ArgumentParser()
    cli_train.register(parser.add_subparsers())
    base = ["train", "--data", "toy", "--res", "16", "--arch", "stylegan1"]
    assert cli_train.build_config(parser.parse_args(base)).g_architecture == "skip"
    cfg = cli_train.build_config(parser.parse_args([*base, "--g-architecture", "orig"]))
    assert cfg.g_architecture == "orig" and cfg.generator_config().architecture == "orig"
    with pytest.raises(SystemExit):  # argparse refuses names outside the choices
        parser.parse_args([*base, "--g-architecture", "progressive"])
