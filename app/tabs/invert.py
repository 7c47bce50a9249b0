"""Invert: project an uploaded image into W or W+ (StyleGAN2 projector) and compare the two spaces."""

from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import matplotlib

matplotlib.use("Agg")  # headless servers: no display backend
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from app import models  # noqa: E402
from app.common import parse_seed, require_model, user_errors  # noqa: E402
from app.state import Shared  # noqa: E402
from core.images import from_pil, load_image, square_crop, to_pil  # noqa: E402
from core.inversion import latent_spec, project, save_latents  # noqa: E402

SPACE_CHOICES = {"W": ("w",), "W+": ("w+",), "W and W+": ("w", "w+")}
MAX_STEPS = 2000
NO_IMAGE = "Upload an image to invert first."

# Stop requests by session: the Stop button sets a flag that the running projection polls between steps,
# so a stopped run still returns its best result (cancelling the event would throw the work away).
_stop_lock = threading.Lock()
_stop_requests: set[str] = set()


@dataclass
class InvertTab:
    image: gr.Image
    space: gr.Radio
    steps: gr.Slider
    seed: gr.Textbox
    loss: gr.Radio
    go: gr.Button
    stop: gr.Button
    gallery: gr.Gallery
    plot: gr.Plot
    info: gr.Markdown
    latents: gr.Code
    files: gr.File


# ---------------------------------------------------------------------------------------------- handlers
def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or ""


def request_stop(request: gr.Request | None = None) -> None:
    """Stop button: ask this session's running projection to return its best result so far."""
    with _stop_lock:
        _stop_requests.add(_session(request))


def _stop_requested(session: str) -> bool:
    with _stop_lock:
        return session in _stop_requests


def loss_plot(curves: dict[str, list[float]]):
    """Loss per step for each space, log scale."""
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    for label, losses in curves.items():
        ax.plot(range(1, len(losses) + 1), losses, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("distance to target")
    if any(v > 0 for losses in curves.values() for v in losses):
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)  # gr.Plot renders the figure object; keep pyplot's global registry empty
    return fig


def invert(
    model: str,
    image,
    space: str,
    steps: float,
    seed,
    loss: str = "lpips",
    progress=gr.Progress(),
    request: gr.Request | None = None,
):
    """Project ``image`` into the chosen space(s); returns images, loss plot, summary, latents JSON and files."""
    require_model(model)
    if image is None or image == "":
        raise gr.Error(NO_IMAGE, print_exception=False)
    if space not in SPACE_CHOICES:
        raise gr.Error(f"Choose W, W+ or both, got {space!r}.", print_exception=False)
    seed = parse_seed(seed)
    session = _session(request)
    with _stop_lock:
        _stop_requests.discard(session)
    spaces = SPACE_CHOICES[space]
    gallery, curves, rows, specs, files = [], {}, [], [], []
    out = Path(tempfile.mkdtemp(prefix="stylescope-invert-"))
    with user_errors():
        picture = load_image(image, name="uploaded image")
        target = from_pil(square_crop(picture, size=min(picture.size)))  # centre square, no stretching
        for k, sp in enumerate(spaces):
            label = "W+" if sp == "w+" else "W"

            def on_step(i: int, n: int, value: float, label=label, k=k) -> None:
                progress((k + i / n) / len(spaces), desc=f"{label}: step {i}/{n}, loss {value:.4f}")

            with models.use(model) as G:
                result = project(
                    G,
                    target.to(G.w_avg.device),
                    num_steps=int(steps),
                    space=sp,
                    loss=loss,
                    generator=torch.Generator().manual_seed(seed),
                    progress=on_step,
                    should_stop=lambda: _stop_requested(session),
                )
            if not gallery:
                gallery.append((to_pil(result.target.cpu())[0], "target"))
            gallery.append((to_pil(result.image.cpu())[0], f"{label} reconstruction"))
            curves[label] = result.losses
            stop_note = " (stopped early)" if result.stopped else ""
            rows.append(
                f"| {label} | {result.steps}{stop_note} | {result.loss_name} | "
                f"{result.final_loss:.4f} | {result.psnr:.1f} dB |"
            )
            specs.append(latent_spec(result, model=str(model), model_hash=models.digest(model), seed=seed))
            files.append(str(save_latents(result, out / f"projected_ws_{sp.replace('+', 'plus')}.npz")))
            if result.stopped:
                break
    info = "\n".join(
        [
            "| space | steps | loss | final loss | PSNR |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "W+ usually reconstructs closer; W stays on the generator's distribution and edits better.",
        ]
    )
    if any(s["loss_name"] == "pixel" and loss == "lpips" for s in specs):
        info += "\n\nLPIPS weights are not installed here, so a multi-scale pixel loss was used."
    latents = json.dumps(specs[0] if len(specs) == 1 else specs, indent=1)
    return gallery, loss_plot(curves), info, latents, files


# ---------------------------------------------------------------------------------------------- layout
def build(shared: Shared) -> InvertTab:
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            image = gr.Image(label="Image to invert", type="filepath", sources=["upload", "clipboard"])
            space = gr.Radio(
                list(SPACE_CHOICES),
                value="W",
                label="Latent space",
                info="W: one w for all layers (edits well). W+: one w per layer (reconstructs better).",
            )
            steps = gr.Slider(1, MAX_STEPS, 200, step=1, label="Steps")
            seed = gr.Textbox("0", label="Seed", max_lines=1)
            loss = gr.Radio(
                ["lpips", "pixel"], value="lpips", label="Loss", info="lpips falls back to pixel when offline"
            )
            with gr.Row():
                go = gr.Button("Invert", variant="primary", elem_id="invert-go")
                stop = gr.Button("Stop", variant="stop", elem_id="invert-stop")
        with gr.Column(scale=2):
            gallery = gr.Gallery(
                label="Target | reconstruction", columns=3, format=shared.config.image_format
            )
            plot = gr.Plot(label="Loss curve")
            info = gr.Markdown(elem_id="invert-info")
    with gr.Accordion("Send to Explore: latents", open=False):
        latents = gr.Code(
            language="json",
            label="Projected latents; the Recipe tab's \"Use the last image's recipe\" renders and edits the reconstruction",
        )
        files = gr.File(label="ws (.npz)", file_count="multiple")
    return InvertTab(image, space, steps, seed, loss, go, stop, gallery, plot, info, latents, files)


def latents_recipe(latents: str) -> str:
    """The recipe of the last projection in the latents JSON (W+ when both ran): the Recipe tab's "last image"."""
    if not latents:
        return ""
    specs = json.loads(latents)
    spec = specs[-1] if isinstance(specs, list) else specs
    return json.dumps(spec["recipe"])


def wire(h: InvertTab, shared: Shared) -> None:
    h.go.click(
        invert,
        [shared.model, h.image, h.space, h.steps, h.seed, h.loss],
        [h.gallery, h.plot, h.info, h.latents, h.files],
        api_name="invert",
        concurrency_id="model",
        concurrency_limit=shared.config.concurrency_limit,
    ).success(latents_recipe, h.latents, shared.last_recipe, queue=False, api_visibility="private")
    h.stop.click(request_stop, None, None, queue=False, api_visibility="private")
