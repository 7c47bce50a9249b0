"""AppConfig: everything the GUI needs to know about where it runs and what it may accept."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL_NAMES = ("synthfaces128-stylegan2.safetensors", "synthfaces128-stylegan1.safetensors")


@dataclass(frozen=True)
class AppConfig:
    """Settings of one Explorer process (frozen; pass a new one to ``build_app`` to change them).

    Args (fields):
        host, port: where to bind; localhost unless told otherwise.
        device: ``"cpu"``, ``"cuda"`` (``"cuda:N"``) or ``"auto"``.
        model: the model to open on; None = the default shipped model if it exists.
        models_dir: folder of shipped models (``*.safetensors``) offered in the model picker.
        runs_dir: folder of training runs (Train tab).
        upload_dir: where uploaded checkpoints are kept for the life of the process.
        max_file_size: largest upload Gradio accepts (checkpoints of 1024 px config F are ~380 MB).
        concurrency_limit: model events that run at once (one queue slot per limit, shared by all tabs).
        max_queue: requests that may wait in the queue before new ones are refused.
        max_grid, max_mix_seeds, max_draws, max_steps: upper bounds on per-request work.
        image_format: format of images sent to the browser (``png`` keeps pixels and the embedded recipe).
    """

    host: str = "127.0.0.1"
    port: int = 7860
    device: str = "auto"
    model: str | None = None
    models_dir: str = str(REPO_ROOT / "assets" / "models")
    runs_dir: str = str(REPO_ROOT / "runs")
    upload_dir: str | None = None
    max_file_size: str = "1gb"
    concurrency_limit: int = 1
    max_queue: int = 64
    max_grid: int = 16
    max_mix_seeds: int = 8
    max_draws: int = 64
    max_steps: int = 240
    image_format: str = "png"

    def replace(self, **changes) -> AppConfig:
        return dataclasses.replace(self, **changes)
