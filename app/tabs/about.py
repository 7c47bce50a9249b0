"""About / Help: what every control does and which paper figure it reproduces, one sentence each."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app.state import Shared

HELP = """
### What each control does

| Tab | Control | What it does | Paper |
|---|---|---|---|
| Explore | Seed, Random ◀ ▶ | A seed fixes the latent z (`randn` from a seeded CPU generator), so the same seed gives the same image on every machine. | — |
| Explore | Truncation psi | Pulls w towards the average latent: `w' = w_avg + psi (w - w_avg)`; 1 is off, 0 the average image, negative values the "anti-face". | StyleGAN Fig. 8 |
| Explore | Truncation cutoff | Truncates only the first ws rows (coarse layers), keeping fine detail varied. | StyleGAN Sec. 4.1 |
| Explore | Noise | `const` uses the model's stored noise, `random` fresh noise, `none` switches it off. | StyleGAN Sec. 3.2 |
| Explore | Grid | Renders this seed and the next N-1 seeds with the same settings. | StyleGAN Fig. 1 style grids |
| Explore | Interpolate | Frames between two seeds, linear in W or spherical in Z; W paths are smoother. | StyleGAN Sec. 4.2 (path length) |
| Style mixing | Matrix, ws rows | Copies the ticked ws rows of source B (columns) into source A (rows). | StyleGAN Fig. 3 |
| Style mixing | Coarse / Middle / Fine | Selects the rows at 4-8 px (pose, shape), 16-32 px (features, hair) or 64 px and up (colours, micro-structure). | StyleGAN Fig. 3 |
| Style mixing | Blend alpha | Blends B's rows into A's instead of copying them. | pSp Sec. 4 (multi-modal synthesis) |
| Noise | Inputs, presets | Switches single noise inputs on/off; presets: all, none, fine (64 px+), coarse (4-32 px). | StyleGAN Fig. 5 |
| Noise | Std map | Per-pixel standard deviation over K noise draws: where noise changes the image. | StyleGAN Fig. 4 |
| Noise | Noise seed, Resample | Draws a different noise sample (reproducible from its seed). | StyleGAN Fig. 4 |
| Layers | Layer, show, colour map | Feature maps of one layer: a grid of channels, one channel or their mean. | StyleGAN2 Fig. 1 (droplets) |
| Layers | Compare | The same seed and layer in a second model, e.g. StyleGAN v1 (AdaIN) vs StyleGAN2. | StyleGAN2 Sec. 2 |
| Layers | Perceptual path length | Mean image change (LPIPS, or a pixel distance offline) for a tiny step between random latents, in W and Z, for both models; lower = smoother. | StyleGAN Sec. 4.1, StyleGAN2 Sec. 3.2 |
| Recipe | Recipe JSON, PNG | Every image has a JSON recipe, also embedded in its PNG; rendering it gives the same pixels. | — |
| Train | Start, Stop, Resume | Trains in a background process (survives UI restarts); stop saves a checkpoint; resume continues it. | StyleGAN2 / ADA |
| Train | Generator output | `skip` sums an RGB image from every resolution (StyleGAN2); `orig` has one at the end (StyleGAN), which moves scene colour to the fine styles. | StyleGAN2 Fig. 7 |
| Train | Augmentation | ADA adapts the augmentation strength p to keep the discriminator from overfitting small datasets. | StyleGAN2-ADA |

### API
Every main action has a stable `api_name` (see "Use via API" at the bottom of the page and the README):
`/generate`, `/explore`, `/interpolate`, `/mix`, `/noise`, `/layers`, `/ppl`, `/render_recipe`, `/recipe_from_png`,
`/load_model`, `/choose_model`, `/train_start`, `/train_status`, `/train_stop`, `/train_resume`, `/train_load`.
"""


@dataclass
class AboutTab:
    text: gr.Markdown


def build(shared: Shared) -> AboutTab:
    return AboutTab(gr.Markdown(HELP))


def wire(h: AboutTab, shared: Shared) -> None:
    """Nothing to wire: a static page."""
