"""Translate: StarGAN v2 image-to-image translation (Choi et al., CVPR 2020).

Load a StarGAN v2 ``*_nets_ema.ckpt`` (path or upload), pick a source image and a target domain, then either
copy the style of a reference image (reference-guided) or draw a style from a seed (latent-guided, with psi
truncation towards the domain's mean style). All math lives in :mod:`core.translation`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from app import models
from app.common import Timer, parse_seed, user_errors
from app.state import Shared
from core.checkpoints.stargan_v2 import load_stargan_v2
from core.images import to_pil
from core.models.stargan_v2 import StarGANv2
from core.translation import load_translation_image, translate_latent, translate_reference

MODES = ["Reference image", "Latent seed"]
PSI_MIN, PSI_MAX = 0.0, 1.0
NO_CHECKPOINT = "Load a StarGAN v2 checkpoint first (a path or an upload of *_nets_ema.ckpt)."
_MAX_CACHED = 2

_lock = threading.Lock()
_cache: dict[tuple[str, int, int, str], StarGANv2] = {}


@dataclass
class TranslateTab:
    ckpt_path: gr.Textbox
    ckpt_upload: gr.File
    load: gr.Button
    ckpt: gr.State
    ckpt_info: gr.Markdown
    domain: gr.Dropdown
    mode: gr.Radio
    source: gr.Image
    reference: gr.Image
    seed: gr.Textbox
    psi: gr.Slider
    go: gr.Button
    result: gr.Image
    info: gr.Markdown


# ---------------------------------------------------------------------------------------------- handlers
def get_bundle(path: str) -> StarGANv2:
    """The loaded model for ``path`` (process-wide cache keyed by path, size and mtime)."""
    if not path:
        raise gr.Error(NO_CHECKPOINT, print_exception=False)
    p = Path(path)
    with user_errors():
        if not p.is_file():
            raise ValueError(f"{p}: no such file")
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns, str(models.device()))
        with _lock:
            if key not in _cache:
                bundle = load_stargan_v2(p, device=models.device())
                while len(_cache) >= _MAX_CACHED:
                    _cache.pop(next(iter(_cache)))
                _cache[key] = bundle
            return _cache[key]


def load_checkpoint(path_text: str, upload):
    """Load a checkpoint (the upload wins over the path box): its path, a summary and the domain choices."""
    path = str(upload or (path_text or "").strip())
    bundle = get_bundle(path)
    cfg = bundle.config
    lines = [
        f"**StarGAN v2** · {cfg.img_size} px · {cfg.num_domains} domains · style {cfg.style_dim} · "
        f"latent {cfg.latent_dim} · w_hpf {cfg.w_hpf:g}"
    ]
    if cfg.w_hpf > 0:
        lines.append(
            "⚠ this model needs FAN face masks, which are not supported yet: translation is refused."
        )
    lines += [f"note: {n}" for n in bundle.notes]
    choices = [(f"domain {k}", k) for k in range(cfg.num_domains)]
    return path, "  \n".join(lines), gr.update(choices=choices, value=0)


def translate(ckpt: str, mode: str, source, reference, domain, seed, psi: float):
    """Translate the source image into ``domain``: the result image and a one-line summary."""
    bundle = get_bundle(ckpt)
    if not source:
        raise gr.Error("Choose a source image.", print_exception=False)
    if domain is None or domain == "":
        raise gr.Error("Choose a target domain.", print_exception=False)
    latent = mode == MODES[1]
    if not latent and not reference:
        raise gr.Error("Choose a reference image (or switch to 'Latent seed').", print_exception=False)
    s = parse_seed(seed) if latent else None
    with user_errors(), Timer() as t:
        x_src = load_translation_image(source, bundle, name="source image")
        y = int(domain)
        if latent:
            out = translate_latent(bundle, x_src, y, seed=s, psi=float(psi))
        else:
            x_ref = load_translation_image(reference, bundle, name="reference image")
            out = translate_reference(bundle, x_src, x_ref, y)
    image = to_pil(out.cpu())[0]
    spec = {"mode": "latent" if latent else "reference", "domain": y}
    if latent:
        spec.update(seed=s, psi=float(psi))
    image.info["stylescope-translate"] = json.dumps(spec)
    how = f"seed {s}, psi {float(psi):g}" if latent else "reference style"
    return image, f"domain {y} · {how} · **{t.ms:.0f} ms** on `{models.device()}`"


def on_mode(mode: str):
    latent = mode == MODES[1]
    return gr.update(visible=not latent), gr.update(visible=latent), gr.update(visible=latent)


# ---------------------------------------------------------------------------------------------- layout
def build(shared: Shared) -> TranslateTab:
    gr.Markdown(
        "**StarGAN v2** translates a source image into a target domain. *Reference-guided*: the style code "
        "comes from a reference image, `s = E_y(x_ref)`. *Latent-guided*: `s = F_y(z)` from a seed; psi < 1 "
        "pulls it towards the domain's mean style."
    )
    with gr.Row(equal_height=True):
        ckpt_path = gr.Textbox(
            label="Checkpoint path (*_nets_ema.ckpt)", scale=3, max_lines=1, elem_id="tr-path"
        )
        ckpt_upload = gr.File(label="…or upload", file_types=[".ckpt", ".pt"], type="filepath", scale=2)
        load = gr.Button("Load", scale=0, min_width=80, elem_id="tr-load")
    ckpt = gr.State("")
    ckpt_info = gr.Markdown(NO_CHECKPOINT, elem_id="tr-info")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            domain = gr.Dropdown(choices=[], label="Target domain", elem_id="tr-domain")
            mode = gr.Radio(MODES, value=MODES[0], label="Style from", elem_id="tr-mode")
            source = gr.Image(label="Source image", type="filepath", elem_id="tr-source")
            reference = gr.Image(label="Reference image", type="filepath", elem_id="tr-reference")
            seed = gr.Textbox("0", label="Seed", max_lines=1, visible=False, elem_id="tr-seed")
            psi = gr.Slider(PSI_MIN, PSI_MAX, 1.0, step=0.05, label="psi", visible=False, elem_id="tr-psi")
            go = gr.Button("Translate", variant="primary", elem_id="tr-go")
        with gr.Column(scale=1, min_width=300):
            result = gr.Image(
                label="Result", type="pil", interactive=False, format="png", elem_id="tr-result"
            )
            info = gr.Markdown(elem_id="tr-result-info")
    return TranslateTab(
        ckpt_path,
        ckpt_upload,
        load,
        ckpt,
        ckpt_info,
        domain,
        mode,
        source,
        reference,
        seed,
        psi,
        go,
        result,
        info,
    )


def wire(h: TranslateTab, shared: Shared) -> None:
    h.load.click(load_checkpoint, [h.ckpt_path, h.ckpt_upload], [h.ckpt, h.ckpt_info, h.domain])
    h.ckpt_upload.upload(load_checkpoint, [h.ckpt_path, h.ckpt_upload], [h.ckpt, h.ckpt_info, h.domain])
    h.mode.change(on_mode, h.mode, [h.reference, h.seed, h.psi])
    h.go.click(
        translate,
        [h.ckpt, h.mode, h.source, h.reference, h.domain, h.seed, h.psi],
        [h.result, h.info],
        api_name="translate",
    )
