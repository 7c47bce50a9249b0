"""Training as a process: SIGKILL mid-save, SIGTERM, background jobs, 2-process gloo DDP, the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from core.training import checkpoint as ckpt
from core.training import jobs, tiny_config
from core.training.status import read_status, validate_status

ROOT = Path(__file__).resolve().parent.parent
# Every test here starts Python subprocesses (2-10 s each on 2 cores).
pytestmark = pytest.mark.slow


def tiny(**kw):
    base = dict(
        res=16, channels=(8, 8, 8), batch=4, kimg=0.016, snapshot_kimg=0.008, sample_kimg=1.0, sync_every=1
    )
    base.update(kw)
    return tiny_config(**base)


def child_env(**extra) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("STYLESCOPE_TEST_SAVE_PAUSE", None)
    env.update(extra)
    return env


def wait_for(pred, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _stderr(run: Path) -> str:
    p = run / "stderr.log"
    return p.read_text()[-2000:] if p.exists() else ""


def test_sigkill_during_save_keeps_previous_checkpoint_and_resume_works(tmp_path):
    run = tmp_path / "run"
    # the 2nd save pauses after writing ckpt-...16.pt.tmp and before renaming it: kill -9 lands there
    h = jobs.start(tiny(kimg=1.0), run, device="cpu", env=child_env(STYLESCOPE_TEST_SAVE_PAUSE="60@2"))
    wait_for(
        lambda: (run / ".saving").exists() or not jobs.is_running(run), what=f"the paused save {_stderr(run)}"
    )
    assert (run / "ckpt-000000016.pt.tmp").exists(), _stderr(run)
    os.kill(h.pid, signal.SIGKILL)
    wait_for(lambda: not jobs.is_running(run), what="the killed process to exit")
    assert jobs.status(run)["state"] == "crashed"
    path, state = ckpt.load_latest(run)
    assert path.name == "ckpt-000000008.pt" and state["cur_nimg"] == 8

    h2 = jobs.resume(run, kimg=0.024, device="cpu", env=child_env())
    st = jobs.wait(run, timeout=120)
    assert st["state"] == "finished", _stderr(run)
    assert st["cur_nimg"] == 24 and h2.pid != h.pid
    assert not list(run.glob("*.tmp"))  # the torn temporary was cleaned up on restart
    assert ckpt.load_latest(run)[1]["cur_nimg"] == 24


def test_sigterm_saves_and_exits_zero(tmp_path):
    run = tmp_path / "run"
    h = jobs.start(tiny(kimg=1000.0, snapshot_kimg=1000.0), run, device="cpu", env=child_env())
    wait_for(
        lambda: read_status(run).get("cur_nimg", 0) >= 8 or not jobs.is_running(run),
        what=f"progress {_stderr(run)}",
    )
    assert jobs.stop(run, timeout=60)
    assert jobs._children.get(h.pid) is None or jobs._children[h.pid].returncode == 0
    st = validate_status(read_status(run))
    assert st["state"] == "stopped" and "SIGTERM" in st["message"], _stderr(run)
    _, state = ckpt.load_latest(run)
    assert state["cur_nimg"] == st["cur_nimg"] > 0  # a checkpoint at the current kimg


def test_sigterm_exit_status_is_zero(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(tiny(kimg=1000.0, snapshot_kimg=1000.0).to_dict()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.training", "--run-dir", str(run), "--device", "cpu"],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: read_status(run).get("cur_nimg", 0) >= 4 or proc.poll() is not None, what="progress")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert json.loads(out.decode().strip().splitlines()[-1])["state"] == "stopped"


def test_jobs_list_status_and_refusals(tmp_path):
    runs = tmp_path / "runs"
    cfg = tiny()
    run = jobs.next_run_dir(runs, cfg)
    assert run.name == "00000-toy-16-stylegan2"
    jobs.start(cfg, run, device="cpu", env=child_env())
    st = jobs.wait(run, timeout=120)
    assert st["state"] == "finished" and st["alive"] is False, _stderr(run)
    listed = jobs.list_runs(runs)
    assert [r["name"] for r in listed] == [run.name] and listed[0]["kimg"] == pytest.approx(0.016)
    assert jobs.next_run_dir(runs, cfg).name.startswith("00001-")
    orig = cfg.replace(arch="stylegan1", g_architecture="orig")
    assert jobs.next_run_dir(runs, orig).name == "00001-toy-16-stylegan1-orig"
    with pytest.raises(ValueError, match="already holds a run"):
        jobs.start(cfg, run, device="cpu")
    with pytest.raises(ValueError, match="no checkpoint"):
        jobs.resume(tmp_path / "empty")
    if not torch.cuda.is_available():
        from core.training import TrainConfig

        with pytest.raises(ValueError, match="No CUDA GPU found"):
            jobs.start(TrainConfig(res=256), tmp_path / "big")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DDP_SCRIPT = r"""
import json, sys, torch
torch.set_num_threads(1)
from core.training import Trainer, tiny_config
from core.training import distributed as D_
ctx = D_.init_distributed("cpu")
cfg = tiny_config(res=16, channels=(8, 8, 8), batch=8, aug="ada", aug_p=0.3, ada_interval=2, sync_every=1)
tr = Trainer(cfg, sys.argv[1], ctx=ctx)
for _ in range(5):
    tr.train_step()
means, _ = tr.read_stats(False)
def sums(m):
    return {k: float(v.double().sum()) + float(v.double().abs().sum()) for k, v in m.state_dict().items()}
out = {"G": sums(tr.G), "D": sums(tr.D), "G_ema": sums(tr.G_ema), "p": float(tr.ada.p),
       "pl_mean": float(tr.pl_mean), "means": means, "world": ctx.world, "batch": tr.batch}
json.dump(out, open(sys.argv[2], "w"))
D_.shutdown()
"""


def test_two_process_gloo_ddp_keeps_ranks_identical(tmp_path):
    port = _free_port()
    procs = []
    for rank in range(2):
        env = child_env(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", DDP_SCRIPT, str(tmp_path / "run"), str(tmp_path / f"rank{rank}.json")],
                cwd=ROOT,
                env=env,
                stderr=subprocess.PIPE,
            )
        )
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["world"] == 2 and r0["batch"] == 4  # global batch 8 split in two
    for key in ("G", "D", "G_ema"):
        assert r0[key] == r1[key], key  # bit-identical parameters and buffers (incl. w_avg) on both ranks
    assert r0["p"] == r1["p"] != 0.3 and r0["pl_mean"] == r1["pl_mean"]
    assert r0["means"] == r1["means"]  # reduced statistics agree


def test_torchrun_two_processes_end_to_end(tmp_path):
    run = tmp_path / "run"
    jobs.start(tiny(gpus=2, batch=8, kimg=0.032, snapshot_kimg=0.016), run, device="cpu", env=child_env())
    st = jobs.wait(run, timeout=180)
    assert st["state"] == "finished" and st["world_size"] == 2, _stderr(run)
    _, state = ckpt.load_latest(run)
    assert state["cur_nimg"] == 32 and state["world_size"] == 2 and len(state["rng"]["generators"]) == 2


def test_cli_train_status_and_resume(tmp_path):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "core.cli", "train", *args],
            cwd=ROOT,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    r = cli(
        "--data",
        "toy",
        "--preset",
        "tiny-cpu",
        "--res",
        "16",
        "--width",
        "tiny",
        "--batch",
        "4",
        "--kimg",
        "0.008",
        "--snapshot-kimg",
        "0.008",
        "--sample-kimg",
        "1",
        "--device",
        "cpu",
        "--out",
        str(tmp_path),
        "--json",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    run = tmp_path / "00000-toy-16-stylegan2"
    assert json.loads(r.stdout.strip().splitlines()[-1])["state"] == "finished"
    r = cli("--status", str(run), "--json")
    st = json.loads(r.stdout)
    validate_status({k: v for k, v in st.items() if k not in ("alive", "launcher_pid")})
    assert st["kimg"] == pytest.approx(0.008)
    r = cli("--resume", str(run), "--kimg", "0.016", "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["cur_nimg"] == 16
    r = cli("--data", "toy", "--res", "256", "--kimg", "1", "--device", "cpu", "--out", str(tmp_path))
    assert r.returncode == 2 and "No CUDA GPU found" in r.stderr
