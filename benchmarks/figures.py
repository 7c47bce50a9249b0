"""Model-card figures of the default SynthFaces generators, written as PNGs to ``assets/examples/``.

Every figure is a StyleGAN-paper figure rebuilt from :mod:`core.explore` (Karras et al. 2019, "A Style-Based
Generator Architecture for GANs"):

* ``sample-grid.png``: 4 x 8 seeds at truncation psi = 0.7 (sec. 4.1, ``w' = w_avg + psi (w - w_avg)``).
* ``truncation-sweep.png``: a few seeds (rows) at psi = -1 .. 1 in 9 steps (columns; Figure 8).
* ``mixing-coarse.png`` / ``mixing-middle.png`` / ``mixing-fine.png``: style-mixing matrices (Figure 3),
  rows = source A, columns = source B, cell = A with B's coarse (4-8 px) / middle (16-32 px) / fine (>= 64 px)
  ws rows (:func:`core.explore.mixing_matrix`).
* ``noise.png``: one noise draw with noise in all layers / none / fine layers only / coarse layers only
  (Figure 5), and the per-pixel std over 16 noise draws (Figure 4, :func:`core.explore.noise_std_map`).
* ``row-influence.png``: which ws rows carry which SynthFaces factor -- the mixing test with one row of B at a
  time, scored by the attribute classifier (:func:`core.metrics.row_influence`, ``ROW_PAIRS`` pairs).
* ``v1-vs-v2.png``: the same seeds through the AdaIN StyleGAN v1 and the StyleGAN2 model, each with the
  channel mean of |features| at the 32 px layer, where v1's droplet artifacts (StyleGAN2 paper, Figure 1)
  would show.
* ``v1-mixing-fine.png``: the fine-styles mixing matrix of the v1 model, whose single RGB output ("orig") leaves
  the scene colours to the fine rows (Figure 3's bottom rows: "colour scheme").

Every cell is reproducible from ``(model, seed, psi, noise)``; the seeds are fixed below.

    python benchmarks/figures.py                       # both default models -> assets/examples/
    python benchmarks/figures.py --v2 M2 --v1 M1 --out DIR --only sample-grid,noise
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core  # noqa: E402
from core.explore import (  # noqa: E402
    MIX_PRESETS,
    NOISE_PRESETS,
    mixing_matrix,
    mixing_rows,
    noise_preset,
    noise_std_map,
    render_seeds,
    std_image,
)
from core.images import make_grid, save_png, to_uint8  # noqa: E402
from core.render import seeds_to_z  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_V2 = ROOT / "assets/models/synthfaces128-stylegan2.safetensors"
DEFAULT_V1 = ROOT / "assets/models/synthfaces128-stylegan1.safetensors"
DEFAULT_CLASSIFIER = ROOT / "assets/models/synthfaces-classifier.safetensors"
FIGURES = ("sample-grid", "truncation-sweep", "mixing", "noise", "row-influence", "v1-vs-v2", "v1-mixing")
GRID_SEEDS = list(range(32))
SWEEP_SEEDS = [1, 5, 9, 13]
SWEEP_PSI = [round(-1 + 0.25 * i, 2) for i in range(9)]
MIX_A = [101, 102, 103, 104]
MIX_B = [201, 202, 203, 204, 205, 206]
NOISE_SEEDS = [3, 7, 11]
COMPARE_SEEDS = list(range(300, 308))
FIG_PSI = 0.7
NOISE_DRAWS = 16
ROW_PAIRS = 200
MAX_PNG_BYTES = 2_000_000


# ---------------------------------------------------------------------------------------------- layout helpers
def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def _tile_array(images: torch.Tensor, nrow: int, pad: int = 2) -> np.ndarray:
    """``[N, 3, H, W]`` in [-1, 1] -> ``[H', W', 3]`` uint8 grid with white padding."""
    grid = make_grid(images.clamp(-1, 1), nrow=nrow, padding=pad, pad_value=1.0)
    return to_uint8(grid)[0].numpy()


def _labelled(
    body: np.ndarray,
    *,
    title: str,
    col_labels: Sequence[str] = (),
    row_labels: Sequence[str] = (),
    cell: int = 128,
    pad: int = 2,
    left: int = 0,
) -> Image.Image:
    """Add a title line, column labels above and row labels left of a tiled body."""
    font = _font()
    top = 18 + (16 if col_labels else 0)
    lw = left or (max((len(s) for s in row_labels), default=0) * 7 + 8 if row_labels else 0)
    h, w = body.shape[:2]
    canvas = Image.new("RGB", (w + lw, h + top), "white")
    canvas.paste(Image.fromarray(body), (lw, top))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), title, fill="black", font=font)
    for j, s in enumerate(col_labels):
        draw.text((lw + pad + j * (cell + pad) + 2, 19), s, fill="black", font=font)
    for i, s in enumerate(row_labels):
        draw.text((3, top + pad + i * (cell + pad) + cell // 2 - 6), s, fill="black", font=font)
    return canvas


def _save(img: Image.Image, path: Path, meta: dict) -> dict:
    save_png(img, path, text={"stylescope-figure": json.dumps(meta)})
    size = path.stat().st_size
    if size > MAX_PNG_BYTES:
        raise RuntimeError(f"{path} is {size} bytes, over the {MAX_PNG_BYTES} byte budget")
    return {"path": str(path), "bytes": size, "width": img.width, "height": img.height}


# ---------------------------------------------------------------------------------------------- figures
def sample_grid(G, *, psi: float = FIG_PSI, seeds: Sequence[int] = GRID_SEEDS, cols: int = 8) -> Image.Image:
    """Seeds ``seeds`` at truncation ``psi``, ``cols`` per row (const noise)."""
    imgs = render_seeds(G, list(seeds), psi=psi)
    body = _tile_array(imgs, cols)
    return _labelled(body, title=f"seeds {seeds[0]}-{seeds[-1]}, psi {psi}, const noise")


def truncation_sweep(
    G, *, seeds: Sequence[int] = SWEEP_SEEDS, psis: Sequence[float] = SWEEP_PSI
) -> Image.Image:
    """One row per seed, one column per psi (truncation on all rows; psi < 0 gives the 'anti-face')."""
    with torch.no_grad():
        z = seeds_to_z(list(seeds), G.z_dim, G.w_avg.device)
        w = G.mapping(z, truncation_psi=1.0)
        ws = w.repeat_interleave(len(psis), dim=0)
        psi_t = torch.tensor(list(psis) * len(seeds), dtype=ws.dtype, device=ws.device)[:, None, None]
        avg = G.w_avg.to(ws.dtype)[None, None, :]
        ws = avg + psi_t * (ws - avg)
        imgs = torch.cat([G.synthesis(ws[i : i + 9], noise_mode="const") for i in range(0, len(ws), 9)])
    body = _tile_array(imgs, len(psis))
    return _labelled(
        body,
        title="truncation sweep: w' = w_avg + psi (w - w_avg) on all rows",
        col_labels=[f"psi {p:+.2f}" for p in psis],
        row_labels=[f"seed {s}" for s in seeds],
    )


def mixing_figure(G, preset: str, *, psi: float = FIG_PSI) -> Image.Image:
    """Style-mixing matrix: rows = A (MIX_A), columns = B (MIX_B), cells take B's ``preset`` rows."""
    rows = mixing_rows(G, preset)
    imgs = mixing_matrix(G, MIX_A, MIX_B, rows, psi=psi)
    body = _tile_array(imgs, len(MIX_B) + 1)
    res = sorted({G.row_resolutions[r] for r in rows})
    return _labelled(
        body,
        title=f"{preset} styles (ws rows {rows[0]}-{rows[-1]}, {res[0]}-{res[-1]} px) from B into A, psi {psi}",
        col_labels=["A \\ B"] + [f"B seed {s}" for s in MIX_B],
        row_labels=[""] + [f"A {s}" for s in MIX_A],
        left=42,
    )


def noise_figure(G, *, psi: float = FIG_PSI, draws: int = NOISE_DRAWS, noise_seed: int = 0) -> Image.Image:
    """Per seed: one noise draw under each preset of NOISE_PRESETS, then the std over ``draws`` draws."""
    cells = []
    with torch.no_grad():
        ws_all = G.mapping(seeds_to_z(NOISE_SEEDS, G.z_dim, G.w_avg.device), truncation_psi=psi)
        for i in range(len(NOISE_SEEDS)):
            ws = ws_all[i : i + 1]
            for name in NOISE_PRESETS:
                # The same noise seed in every column: the presets differ only in which inputs are switched on.
                gen = torch.Generator(device=ws.device).manual_seed(noise_seed)
                img = G.synthesis(ws, noise_mode="random", noise_layers=noise_preset(G, name), generator=gen)
                cells.append(img.float())
            _, std = noise_std_map(G, ws, draws=draws, seed=noise_seed)
            cells.append(
                torch.from_numpy(std_image(std, vmax=0.25)).permute(2, 0, 1)[None].float() / 127.5 - 1
            )
    body = _tile_array(torch.cat(cells), len(NOISE_PRESETS) + 1)
    return _labelled(
        body,
        title=f"noise: one draw per preset (psi {psi}); last column = per-pixel std over {draws} draws "
        "(all noise, magma, 0..0.25)",
        col_labels=["all", "none", "fine only (64+ px)", "coarse (4-32 px)", f"std, {draws} draws"],
        row_labels=[f"seed {s}" for s in NOISE_SEEDS],
    )


def _feature_mean_cells(G, ws: torch.Tensor, layer: str) -> torch.Tensor:
    from core.explore import colorize

    _, feats = G.synthesis(ws, noise_mode="const", capture=[layer])
    f = feats[layer].float().abs().mean(1)  # [N, r, r]
    out = []
    for m in f:
        arr = colorize(m, cmap="viridis")
        t = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 127.5 - 1
        out.append(torch.nn.functional.interpolate(t, size=G.cfg.img_resolution, mode="nearest"))
    return torch.cat(out)


def v1_vs_v2(G1, G2, *, psi: float = FIG_PSI, seeds: Sequence[int] = COMPARE_SEEDS) -> Image.Image:
    """Rows: v1 images, v1 |features| at 32 px, v2 images, v2 |features| (each latent space is its own)."""
    layer = "convs.5"  # second 32 px conv layer
    rows = []
    with torch.no_grad():
        for G in (G1, G2):
            ws = G.mapping(seeds_to_z(list(seeds), G.z_dim, G.w_avg.device), truncation_psi=psi)
            rows.append(G.synthesis(ws, noise_mode="const").float())
            rows.append(_feature_mean_cells(G, ws, layer))
    body = _tile_array(torch.cat(rows), len(seeds))
    return _labelled(
        body,
        title=f"StyleGAN v1 (AdaIN) vs StyleGAN2, seeds {seeds[0]}-{seeds[-1]}, psi {psi} "
        f"(different models: a seed is not the same face); |features| mean at {layer} (32 px)",
        row_labels=["v1 image", "v1 feats", "v2 image", "v2 feats"],
    )


# ---------------------------------------------------------------------------------------------- main
def make_figures(
    v2_path: str | Path, v1_path: str | Path | None, out: str | Path, only: Sequence[str] = FIGURES
) -> list[dict]:
    """Render the selected figures of the model card into ``out``; returns one record per PNG.

    Raises:
        RuntimeError: a PNG over ``MAX_PNG_BYTES``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    G2 = core.load_generator(str(v2_path), device="cpu").eval()
    meta = {"model": Path(v2_path).name, "psi": FIG_PSI}
    written = []
    if "sample-grid" in only:
        written.append(_save(sample_grid(G2), out / "sample-grid.png", {**meta, "seeds": GRID_SEEDS}))
    if "truncation-sweep" in only:
        written.append(
            _save(truncation_sweep(G2), out / "truncation-sweep.png",
                  {**meta, "seeds": SWEEP_SEEDS, "psi": SWEEP_PSI})
        )  # fmt: skip
    if "mixing" in only:
        for preset in MIX_PRESETS:
            written.append(
                _save(mixing_figure(G2, preset), out / f"mixing-{preset}.png",
                      {**meta, "preset": preset, "a": MIX_A, "b": MIX_B})
            )  # fmt: skip
    if "noise" in only:
        written.append(
            _save(noise_figure(G2), out / "noise.png", {**meta, "seeds": NOISE_SEEDS, "draws": NOISE_DRAWS})
        )
    if "row-influence" in only and DEFAULT_CLASSIFIER.is_file():
        from core.metrics.disentanglement import plot_row_influence, row_influence
        from core.models.classifier import load_classifier

        report = row_influence(G2, load_classifier(DEFAULT_CLASSIFIER), n_pairs=ROW_PAIRS, seed=7)
        fig = plot_row_influence(
            report, title=f"{Path(v2_path).name}: {ROW_PAIRS} pairs, one ws row of B each"
        )
        fig.canvas.draw()
        img = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])
        written.append(
            _save(img, out / "row-influence.png", {**meta, "psi": 1.0, "pairs": ROW_PAIRS, "seed": 7})
        )
    if "v1-vs-v2" in only and v1_path is not None and Path(v1_path).is_file():
        G1 = core.load_generator(str(v1_path), device="cpu").eval()
        written.append(
            _save(v1_vs_v2(G1, G2), out / "v1-vs-v2.png",
                  {**meta, "model_v1": Path(v1_path).name, "seeds": COMPARE_SEEDS})
        )  # fmt: skip
    if "v1-mixing" in only and v1_path is not None and Path(v1_path).is_file():
        G1 = core.load_generator(str(v1_path), device="cpu").eval()
        written.append(
            _save(mixing_figure(G1, "fine"), out / "v1-mixing-fine.png",
                  {**meta, "model": Path(v1_path).name, "preset": "fine", "a": MIX_A, "b": MIX_B})
        )  # fmt: skip
    return written


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--v2", default=str(DEFAULT_V2), help="StyleGAN2 model (all single-model figures)")
    p.add_argument("--v1", default=str(DEFAULT_V1), help="StyleGAN v1 model (comparison figure)")
    p.add_argument("--out", default=str(ROOT / "assets/examples"))
    p.add_argument("--only", default=",".join(FIGURES), help=f"comma list of {', '.join(FIGURES)}")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = sorted(set(only) - set(FIGURES))
    if bad:
        p.error(f"unknown figure(s) {bad}; use {', '.join(FIGURES)}")
    torch.set_grad_enabled(False)
    print(json.dumps(make_figures(args.v2, args.v1, args.out, only), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
