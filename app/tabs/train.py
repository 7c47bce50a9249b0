"""Train: start, watch, stop and resume background training runs (``core.training.jobs``), then explore them.

Runs are subprocesses that outlive the UI; this tab only reads their ``status.json`` / ``metrics.jsonl`` and
sample grids, so restarting the Explorer never stops a run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from app import models
from app.common import one_line, user_errors
from app.state import Shared
from app.tabs.model_bar import describe
from core.models.stylegan import SYNTHESIS_ARCHITECTURES

try:  # the training package may be absent in a trimmed install; the tab then says so
    from core.training import jobs
    from core.training.config import PRESETS, TrainConfig
except ImportError:  # pragma: no cover - exercised only without core.training
    jobs = None
    PRESETS, TrainConfig = {}, None

DATA_SOURCES = ["SynthFaces", "Upload archive", "Folder path"]
NO_JOBS = "Training is not available in this install (core.training.jobs is missing)."
_RUN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
NON_LOSS = {"kimg", "step", "img_per_s", "augment_p", "time", "gpu_mem_gb"}


@dataclass
class TrainTab:
    data: gr.Radio
    upload: gr.File
    folder: gr.Textbox
    preset: gr.Dropdown
    res: gr.Dropdown
    arch: gr.Radio
    g_arch: gr.Radio
    kimg: gr.Number
    batch: gr.Number
    aug: gr.Radio
    gpus: gr.Slider
    start: gr.Button
    init: gr.Textbox
    runs: gr.Dropdown
    refresh: gr.Button
    stop: gr.Button
    resume: gr.Button
    load: gr.Button
    progress: gr.Slider
    status: gr.Markdown
    plot: gr.LinePlot
    sample: gr.Image
    raw: gr.JSON
    timer: gr.Timer


def device_note() -> str:
    import torch

    if torch.cuda.is_available():
        return f"CUDA: {torch.cuda.device_count()} GPU(s) — {torch.cuda.get_device_name(0)}."
    return (
        "**No CUDA GPU found.** Only tiny configs train here, on the CPU (preset `tiny-cpu`: 32 px, 64-d latents; "
        "resolution ≤ 64 and widths ≤ 64). For real models, run StyleScope on a machine with an NVIDIA GPU."
    )


def _run_dir(runs_dir: str, run: str | None) -> Path:
    if not run or not _RUN_NAME.match(run):
        raise gr.Error("choose a run first", print_exception=False)
    path = Path(runs_dir) / run
    if not (path / "config.json").is_file():
        raise gr.Error(f"no run named {run} in {runs_dir}", print_exception=False)
    return path


def _require_jobs() -> None:
    if jobs is None:
        raise gr.Error(NO_JOBS, print_exception=False)


def prepare_data(
    source: str, upload: str | None, folder: str | None, res: int, runs_dir: str, progress
) -> str:
    """``data`` value of the TrainConfig: "synthfaces", or a dataset folder made by ``dataset import``."""
    if source == "SynthFaces":
        return "synthfaces"
    src = upload if source == "Upload archive" else (folder or "").strip()
    if not src:
        raise gr.Error("upload an archive or type a folder path first", print_exception=False)
    if not Path(src).exists():
        raise gr.Error(f"no file or folder at {src}", print_exception=False)
    from core.data.datasets import import_dataset

    stem = re.sub(r"[^A-Za-z0-9_]+", "_", Path(src).name.split(".")[0])[:40] or "data"
    dst = Path(runs_dir) / "datasets" / f"{stem}-{res}"
    with user_errors():
        if (dst / "dataset.json").is_file():
            return str(dst)
        report = import_dataset(
            src, dst, resolution=res, progress=lambda i, n: progress(i / max(n, 1), desc="import")
        )
    if not report.get("imported"):
        raise gr.Error(f"no usable images in {Path(src).name}", print_exception=False)
    if report.get("skipped"):
        gr.Warning(f"{len(report['skipped'])} files skipped (see the dataset import report)")
    return str(dst)


def train_start(
    source: str,
    upload,
    folder,
    preset: str,
    res,
    arch: str,
    kimg,
    batch,
    aug: str,
    gpus,
    runs_dir: str,
    init: str = "",
    g_arch: str = "skip",
    progress=gr.Progress(),
):
    """``/train_start``: import data if needed, start a background run. Returns (run name, status).

    ``init``: optional warm start, a run of ``runs_dir`` (by name) or a checkpoint / model file on the server.
    ``g_arch``: the generator's image output (``TrainConfig.g_architecture``: skip, orig or resnet).
    """
    _require_jobs()
    res = int(res)
    init_path = _init_path(init, runs_dir)
    data = prepare_data(source, upload, folder, res, runs_dir, progress)
    with user_errors():
        fields = dict(PRESETS.get(preset, {}))
        fields.update(data=data, arch=arch, kimg=float(kimg), batch=int(batch), aug=aug, gpus=int(gpus))
        fields["g_architecture"] = g_arch
        if init_path:
            fields["init"] = init_path
        if preset != "tiny-cpu":
            fields["res"] = res
        config = TrainConfig(**fields)
        run_dir = jobs.next_run_dir(runs_dir, config)
        jobs.start(config, run_dir)
    return gr.update(choices=list_runs(runs_dir), value=run_dir.name), jobs.status(run_dir)


def _init_path(init: str | None, runs_dir: str) -> str:
    """The absolute path a "Start from" entry names ('' when empty); a run name wins over a relative path."""
    init = (init or "").strip()
    if not init:
        return ""
    run = Path(runs_dir) / init
    if "/" not in init and run.is_dir():
        return str(run.resolve())
    path = Path(init).expanduser()
    if not path.exists():
        raise gr.Error(f"Start from: no run or file named {init!r}", print_exception=False)
    return str(path.resolve())


def list_runs(runs_dir: str) -> list[str]:
    if jobs is None:
        return []
    return [r["name"] for r in jobs.list_runs(runs_dir)]


def train_status(run: str, runs_dir: str) -> dict:
    """``/train_status``: the run's ``status.json`` plus whether its process is alive."""
    _require_jobs()
    return jobs.status(_run_dir(runs_dir, run))


def train_stop(run: str, runs_dir: str) -> dict:
    """``/train_stop``: ask the run to save a checkpoint and stop."""
    _require_jobs()
    path = _run_dir(runs_dir, run)
    if not jobs.stop(path, timeout=None):
        gr.Info("the run is not running")
    return jobs.status(path)


def train_resume(run: str, runs_dir: str) -> dict:
    """``/train_resume``: continue a stopped run from its latest checkpoint."""
    _require_jobs()
    path = _run_dir(runs_dir, run)
    with user_errors():
        jobs.resume(path)
    return jobs.status(path)


def latest_network(run_dir: Path) -> Path | None:
    try:
        name = json.loads((run_dir / "latest.json").read_text())["network"]
    except (OSError, ValueError, KeyError, TypeError):
        nets = sorted(run_dir.glob("network-*.safetensors"))
        return nets[-1] if nets else None
    path = run_dir / str(name)
    return path if path.is_file() else None


def load_into_explorer(run: str, runs_dir: str) -> tuple[str, str]:
    """The run's latest generator (G_ema) becomes this session's model."""
    path = latest_network(_run_dir(runs_dir, run))
    if path is None:
        raise gr.Error("this run has no saved model yet; wait for its first snapshot", print_exception=False)
    with user_errors():
        models.get(path)
    models.register(path, f"{run}/{path.name}")
    gr.Info(f"Loaded {run}/{path.name} — open the Explore tab")
    return str(path), describe(str(path))


def loss_frame(run_dir: Path, max_points: int = 2000):
    """Long-form DataFrame (kimg, value, series) of the losses in ``metrics.jsonl``."""
    import pandas as pd

    rows = []
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()[-max_points:]
    except OSError:
        lines = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        for k, v in rec.items():
            if k not in NON_LOSS and isinstance(v, (int, float)) and not isinstance(v, bool):
                rows.append({"kimg": float(rec.get("kimg", 0.0)), "value": float(v), "series": k})
    return pd.DataFrame(rows, columns=["kimg", "value", "series"])


def _fmt_eta(seconds) -> str:
    if seconds is None:
        return "–"
    s = int(seconds)
    return f"{s // 3600}h {s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m {s % 60:02d}s"


def status_view(run: str | None, runs_dir: str):
    """Everything the tab shows about a run: progress, a status line, loss curves, latest samples, raw JSON."""
    if not run or jobs is None:
        return 0.0, NO_JOBS if jobs is None else "No run selected.", None, None, {}
    try:
        path = _run_dir(runs_dir, run)
        st = jobs.status(path)
    except gr.Error as e:
        return 0.0, e.message, None, None, {}
    except Exception as e:  # a half-written run directory must not break the timer
        return 0.0, f"cannot read {run}: {one_line(e)}", None, None, {}
    ips = st.get("img_per_s")
    mem = st.get("gpu_mem_gb")
    line = (
        f"**{st.get('state', '?')}** · {st.get('kimg', 0):.2f} / {st.get('total_kimg', 0):g} kimg · "
        f"{f'{ips:.1f}' if ips else '–'} img/s · ETA {_fmt_eta(st.get('eta_s'))} · "
        f"augment p {st.get('augment_p', 0):.3f} · GPU memory {f'{mem:.1f} GB' if mem else '–'}"
    )
    if st.get("message"):
        line += f"\n\n{st['message']}"
    sample = st.get("last_sample")
    sample_path = None
    if sample:
        p = Path(sample) if Path(sample).is_absolute() else path / sample
        sample_path = str(p) if p.is_file() else None
    return 100.0 * float(st.get("progress") or 0.0), line, loss_frame(path), sample_path, st


def data_inputs(source: str):
    """Show the archive upload or the folder box only for the data source that uses it."""
    return gr.update(visible=source == "Upload archive"), gr.update(visible=source == "Folder path")


def refresh_runs(runs_dir: str, current: str | None):
    names = list_runs(runs_dir)
    return gr.update(choices=names, value=current if current in names else (names[-1] if names else None))


def build(shared: Shared) -> TrainTab:
    import torch

    gr.Markdown(device_note(), elem_id="train-device")
    presets = list(PRESETS) or ["tiny-cpu"]
    cuda = torch.cuda.is_available()
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            data = gr.Radio(DATA_SOURCES, value="SynthFaces", label="Data")
            upload = gr.File(
                label="Image archive (.zip / .tar)",
                file_types=[".zip", ".tar", ".tgz", ".gz", ".xz", ".bz2"],
                visible=False,
                height=120,
            )
            folder = gr.Textbox(label="Folder of images on the server", max_lines=1, visible=False)
            preset = gr.Dropdown(presets, value="small-data" if cuda else "tiny-cpu", label="Preset")
            res = gr.Dropdown([32, 64, 128, 256, 512, 1024], value=128 if cuda else 32, label="Resolution")
            arch = gr.Radio(["stylegan2", "stylegan1"], value="stylegan2", label="Architecture")
            g_arch = gr.Radio(
                list(SYNTHESIS_ARCHITECTURES),
                value="skip",
                label="Generator output",
                info="skip: an RGB output per resolution (StyleGAN2); orig: one at the end (the StyleGAN paper; "
                "on SynthFaces it moves background and light colour to the fine styles)",
            )
            with gr.Row():
                kimg = gr.Number(1000 if cuda else 1, label="Length (kimg)", minimum=0.001)
                batch = gr.Number(32 if cuda else 8, precision=0, minimum=1, label="Batch")
            aug = gr.Radio(["ada", "diffaug", "none"], value="ada", label="Augmentation")
            init = gr.Textbox(
                label="Start from (optional)",
                placeholder="a run name, or a checkpoint / model file on the server",
                info="Warm start: copies the weights (same architecture); the count and optimisers start fresh.",
                max_lines=1,
            )
            # A slider needs min < max: offer 1..8 and let jobs.check_device refuse more GPUs than exist.
            gpus = gr.Slider(1, max(8, torch.cuda.device_count()), 1, step=1, label="GPUs", interactive=cuda)
            start = gr.Button("Start training", variant="primary")
        with gr.Column(scale=2):
            with gr.Row(equal_height=True):
                runs = gr.Dropdown(list_runs(shared.config.runs_dir), label="Runs", scale=3)
                refresh = gr.Button("↻", scale=0, min_width=44)
                stop = gr.Button("Stop", scale=1)
                resume = gr.Button("Resume", scale=1)
                load = gr.Button("Load into Explorer", scale=1)
            progress = gr.Slider(0, 100, 0, label="Progress (%)", interactive=False)
            status = gr.Markdown("No run selected.")
            with gr.Row():
                plot = gr.LinePlot(x="kimg", y="value", color="series", title="Losses", height=260)
                sample = gr.Image(
                    elem_classes=["scaled"],
                    label="Latest samples",
                    type="filepath",
                    interactive=False,
                    height=260,
                )
            with gr.Accordion("Raw status", open=False):
                raw = gr.JSON()
    timer = gr.Timer(2.0)
    return TrainTab(
        data,
        upload,
        folder,
        preset,
        res,
        arch,
        g_arch,
        kimg,
        batch,
        aug,
        gpus,
        start,
        init,
        runs,
        refresh,
        stop,
        resume,
        load,
        progress,
        status,
        plot,
        sample,
        raw,
        timer,
    )


def wire(h: TrainTab, shared: Shared) -> None:
    runs_dir = gr.State(shared.config.runs_dir)
    view = [h.progress, h.status, h.plot, h.sample, h.raw]
    h.start.click(
        train_start,
        [
            h.data,
            h.upload,
            h.folder,
            h.preset,
            h.res,
            h.arch,
            h.kimg,
            h.batch,
            h.aug,
            h.gpus,
            runs_dir,
            h.init,
            h.g_arch,
        ],
        [h.runs, h.raw],
        api_name="train_start",
    )
    api_status = gr.Button(visible=False)
    api_status.click(train_status, [h.runs, runs_dir], h.raw, api_name="train_status")
    h.stop.click(train_stop, [h.runs, runs_dir], h.raw, api_name="train_stop")
    h.resume.click(train_resume, [h.runs, runs_dir], h.raw, api_name="train_resume")
    h.load.click(
        load_into_explorer,
        [h.runs, runs_dir],
        [shared.model, shared.model_info],
        api_name="train_load",
        concurrency_id="model",
    )
    h.data.change(data_inputs, h.data, [h.upload, h.folder], queue=False, api_visibility="private")
    h.refresh.click(refresh_runs, [runs_dir, h.runs], h.runs, queue=False, api_visibility="private")
    gr.on(
        [h.timer.tick, h.runs.change],
        status_view,
        [h.runs, runs_dir],
        view,
        api_visibility="private",
        show_progress="hidden",
        queue=False,
    )
