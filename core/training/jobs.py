"""Background training runs: start / stop / resume / list, as subprocesses independent of their starter.

A run is a directory. :func:`start` writes ``config.json`` and launches ``python -m core.training`` (or
``torchrun --standalone --nproc_per_node N -m core.training`` for several GPUs) in a new session, with
stdout/stderr going to ``stdout.log`` / ``stderr.log`` and the process id in ``train.pid``. The UI or CLI that
started it can exit or restart; :func:`status` and :func:`list_runs` read ``status.json`` plus whether the
process is still alive, and :func:`stop` sends SIGTERM to the run's process group (the trainer saves a
checkpoint and exits 0).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import core
from core.errors import StyleScopeError
from core.training.checkpoint import atomic_write_json, latest_checkpoint
from core.training.config import TrainConfig
from core.training.status import read_status

PID_FILE = "train.pid"
_children: dict[
    int, subprocess.Popen
] = {}  # reaped by status() so finished children do not linger as zombies


@dataclass
class RunHandle:
    """A launched run: its directory, process id and command line."""

    run_dir: Path
    pid: int
    command: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"run_dir": str(self.run_dir), "pid": self.pid, "command": self.command}


def cuda_available() -> bool:
    return torch.cuda.is_available()


def check_device(config: TrainConfig, device: str | None = None) -> str:
    """``"cuda"`` or ``"cpu"`` for this config on this machine.

    On CPU, ``config.gpus > 1`` means that many CPU processes (gloo), which tests use.

    Raises:
        StyleScopeError: no CUDA GPU and the config is not tiny, or more GPUs asked for than present.
    """
    from core.training.loop import no_cuda_message

    want_cpu = device == "cpu"
    if want_cpu or not cuda_available():
        if not config.is_tiny():
            raise StyleScopeError(no_cuda_message(config))
        return "cpu"
    if config.gpus > torch.cuda.device_count():
        raise StyleScopeError(
            f"--gpus {config.gpus} but this machine has {torch.cuda.device_count()} CUDA GPU(s)"
        )
    return "cuda"


def next_run_dir(runs_dir: str | os.PathLike, config: TrainConfig) -> Path:
    """``RUNS_DIR/00003-synthfaces-128-stylegan2``: the next free numbered name (``...-stylegan1-orig`` when the
    generator output is not the default skip)."""
    runs = Path(runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    ids = [int(m.group(1)) for p in runs.iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    data = re.sub(r"[^A-Za-z0-9_.]+", "_", Path(config.data).name or "data")[:40]
    arch = config.arch if config.g_architecture == "skip" else f"{config.arch}-{config.g_architecture}"
    return runs / f"{max(ids, default=-1) + 1:05d}-{data}-{config.res}-{arch}"


def _command(run_dir: Path, nproc: int, device: str, extra: list[str]) -> list[str]:
    worker = ["-m", "core.training", "--run-dir", str(run_dir), "--device", device, *extra]
    if nproc > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            *worker,
        ]
    return [sys.executable, *worker]


def _launch(run_dir: Path, cmd: list[str], env: dict | None) -> RunHandle:
    root = str(Path(core.__file__).resolve().parent.parent)
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONPATH"] = root + (
        os.pathsep + full_env["PYTHONPATH"] if full_env.get("PYTHONPATH") else ""
    )
    full_env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) // 2)))
    with open(run_dir / "stdout.log", "ab") as out, open(run_dir / "stderr.log", "ab") as err:
        proc = subprocess.Popen(
            cmd,
            cwd=root,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    atomic_write_json(run_dir / PID_FILE, {"pid": proc.pid, "command": cmd, "started": time.time()})
    return RunHandle(run_dir, proc.pid, cmd)


def start(
    config: TrainConfig, run_dir: str | os.PathLike, *, device: str | None = None, env: dict | None = None
) -> RunHandle:
    """Start a new run in the background.

    Args:
        config: the run's config (``config.gpus`` processes; torchrun when more than one).
        run_dir: an empty or new directory.
        device: force ``"cpu"`` or ``"cuda"`` (default: cuda when present).
        env: environment for the child (default: this process's).

    Returns:
        A :class:`RunHandle`.

    Raises:
        StyleScopeError: the directory already holds a run, or the machine cannot train this config.
    """
    run_dir = Path(run_dir)
    dev = check_device(config, device)
    if latest_checkpoint(run_dir) is not None or (run_dir / "status.json").exists():
        raise StyleScopeError(f"{run_dir} already holds a run; resume it or choose another directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", config.to_dict())
    return _launch(run_dir, _command(run_dir, config.gpus, dev, []), env)


def resume(
    run_dir: str | os.PathLike,
    *,
    kimg: float | None = None,
    gpus: int | None = None,
    device: str | None = None,
    env: dict | None = None,
) -> RunHandle:
    """Continue a run from its latest checkpoint in the background (optionally with a longer ``kimg``).

    Raises:
        StyleScopeError: no checkpoint, or the run is still alive.
    """
    run_dir = Path(run_dir)
    if latest_checkpoint(run_dir) is None:
        raise StyleScopeError(f"{run_dir} has no checkpoint to resume from")
    if is_running(run_dir):
        raise StyleScopeError(f"{run_dir} is still running (pid {_read_pid(run_dir)})")
    config = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    if gpus is not None:
        config = config.replace(gpus=gpus)
    dev = check_device(config, device)
    extra = ["--resume"] + (["--kimg", str(kimg)] if kimg is not None else [])
    return _launch(run_dir, _command(run_dir, config.gpus, dev, extra), env)


def _read_pid(run_dir: Path) -> int | None:
    try:
        return int(json.loads((Path(run_dir) / PID_FILE).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid_alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def is_running(run_dir: str | os.PathLike) -> bool:
    pid = _read_pid(Path(run_dir))
    return pid is not None and _pid_alive(pid)


def stop(run_dir: str | os.PathLike, *, timeout: float | None = None) -> bool:
    """Ask a run to save and stop (SIGTERM to its process group).

    Args:
        run_dir: the run.
        timeout: wait up to this many seconds for it to exit (None: do not wait).

    Returns:
        True if the process was running when signalled (and, with a timeout, has exited).
    """
    pid = _read_pid(Path(run_dir))
    if pid is None or not _pid_alive(pid):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)  # the run is its own session/group leader (start_new_session)
    except (ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    if timeout is None:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.1)
    return not _pid_alive(pid)


def status(run_dir: str | os.PathLike) -> dict:
    """``status.json`` plus ``alive`` (process running) and ``pid``; a dead "running" run reads "crashed"."""
    run_dir = Path(run_dir)
    st = read_status(run_dir)
    pid = _read_pid(run_dir)
    alive = pid is not None and _pid_alive(pid)
    st["alive"] = alive
    st["launcher_pid"] = pid
    if not alive and st.get("state") in ("starting", "running", "stopping"):
        st["state"] = "crashed"
        tail = _tail(run_dir / "stderr.log")
        st["message"] = (st.get("message") or "") + (
            f" process exited unexpectedly: {tail}" if tail else " process exited unexpectedly"
        )
    return st


def _tail(path: Path, n: int = 400) -> str:
    try:
        return path.read_text(errors="replace")[-n:].strip()
    except OSError:
        return ""


def list_runs(runs_dir: str | os.PathLike) -> list[dict]:
    """Status of every run under ``runs_dir`` (directories holding a config.json), newest name last."""
    runs = Path(runs_dir)
    if not runs.is_dir():
        return []
    out = []
    for d in sorted(runs.iterdir()):
        if d.is_dir() and (d / "config.json").is_file():
            st = status(d)
            st["name"] = d.name
            out.append(st)
    return out


def wait(run_dir: str | os.PathLike, *, timeout: float | None = None, poll: float = 0.2) -> dict:
    """Block until the run's process exits (or ``timeout``); returns :func:`status`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pid = _read_pid(Path(run_dir))
    while pid is not None and _pid_alive(pid):
        if deadline is not None and time.monotonic() > deadline:
            break
        time.sleep(poll)
    return status(run_dir)
