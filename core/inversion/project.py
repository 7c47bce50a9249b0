"""Project an image into a generator's latent space by optimisation (GAN inversion).

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (CVPR 2020), Sec. 5 and Appendix D:
optimise a latent w (starting at the mean w) together with the per-layer noise maps to minimise the LPIPS
distance to the target. Three tricks make it work:

* latent noise: Gaussian noise of std ``sigma_w * initial_noise_factor * max(0, 1 - t / 0.75)^2`` is added to w
  during the first 75% of steps, exploring the space before settling (``sigma_w`` = std of W around its mean);
* learning rate with a short ramp-up and a cosine ramp-down over the last 25% of steps (Adam, lr 0.1);
* noise regularisation (Eq. 5): the squared autocorrelation of every noise map at offsets of one pixel in x
  and y, summed over a pyramid down to 8x8, weighted 1e5 — without it the noise maps learn the picture.
  Noise maps are renormalised to zero mean and unit variance after every step.

W (one row shared by all layers) edits well; W+ (one row per layer; Abdal et al., Image2StyleGAN, ICCV 2019)
reconstructs better but lands off the generator's distribution, so edits degrade. Both are offered.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from core.errors import InputError
from core.inversion.losses import make_loss, psnr

SPACES = ("w", "w+")
INITS = ("w_avg",)
NOISE_MODES = ("optimise", "const", "none")
MAX_STEPS = 100_000


@dataclass
class ProjectionResult:
    """Outcome of :func:`project`.

    Attributes:
        ws: ``[1, num_ws, w_dim]`` latents of the best step (W: all rows equal).
        noise: one ``[1, 1, r, r]`` tensor per noise input (the optimised maps; the generator's own buffers
            for ``noise_mode="const"``; empty for ``"none"``).
        losses: distance to the target at every step taken (with latent noise; see ``final_loss``).
        image: ``[1, C, R, R]`` reconstruction in [-1, 1] from ``ws`` and ``noise``.
        loss_name: the distance actually used (``"lpips-vgg"`` or ``"pixel"``).
        final_loss: distance of ``image`` to the (resized) target, without latent noise.
        psnr: PSNR of ``image`` against the resized target in dB.
        space, steps: the latent space and the number of steps taken (fewer than asked when stopped).
        stopped: True when ``should_stop`` ended the run early.
        target: the resized target ``[1, C, R, R]``.
    """

    ws: Tensor
    noise: list[Tensor]
    losses: list[float]
    image: Tensor
    loss_name: str
    final_loss: float
    psnr: float
    space: str
    steps: int
    stopped: bool = False
    target: Tensor | None = field(default=None, repr=False)

    def report(self) -> dict:
        """The JSON summary the CLI prints: loss name, final loss, PSNR, steps, space."""
        return {
            "loss_name": self.loss_name,
            "final_loss": self.final_loss,
            "psnr": self.psnr,
            "steps": self.steps,
            "space": self.space,
        }


def _check(
    G: torch.nn.Module, target: Tensor, space: str, num_steps: int, init: str, noise_mode: str
) -> None:
    if space not in SPACES:
        raise InputError(f"space must be 'w' or 'w+', got {space!r}")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or not 1 <= num_steps <= MAX_STEPS:
        raise InputError(f"steps must be a whole number from 1 to {MAX_STEPS}, got {num_steps!r}")
    if init not in INITS:
        raise InputError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if noise_mode not in NOISE_MODES:
        raise InputError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
    if not isinstance(target, Tensor) or target.ndim != 4 or target.shape[0] != 1:
        shape = list(target.shape) if isinstance(target, Tensor) else type(target).__name__
        raise InputError(f"target must be one image [1, C, H, W], got {shape}")
    channels = G.cfg.img_channels
    if target.shape[1] != channels:
        raise InputError(f"target must have {channels} colour channels, got {target.shape[1]}")
    if min(target.shape[-2:]) < 4:
        raise InputError(f"target is too small ({target.shape[-2]}x{target.shape[-1]} px)")
    if not torch.isfinite(target).all():
        raise InputError("target contains NaN or infinite values")


def resize_target(target: Tensor, resolution: int) -> Tensor:
    """Resize ``[1, C, H, W]`` to the generator's square resolution: area averaging down, antialiased bicubic up."""
    if target.shape[-2:] == (resolution, resolution):
        return target
    if target.shape[-1] >= resolution and target.shape[-2] >= resolution:
        return F.interpolate(target, size=(resolution, resolution), mode="area")
    return F.interpolate(target, size=(resolution, resolution), mode="bicubic", antialias=True).clamp(-1, 1)


@torch.no_grad()
def w_stats(
    G: torch.nn.Module, *, num_samples: int = 10_000, generator: torch.Generator | None = None
) -> tuple[Tensor, float]:
    """Mean ``[1, w_dim]`` and scalar std ``sqrt(E|w - mean|^2)`` of W from ``num_samples`` mapped z."""
    device = G.w_avg.device
    gen_device = generator.device if generator is not None else device
    z = torch.randn(num_samples, G.cfg.z_dim, generator=generator, device=gen_device).to(device)
    c = None
    if G.cfg.c_dim:
        idx = torch.randint(G.cfg.c_dim, (num_samples,), generator=generator, device=gen_device).to(device)
        c = F.one_hot(idx, G.cfg.c_dim).float()
    w = G.mapping(z, c)[:, 0].double()
    mean = w.mean(0, keepdim=True)
    std = ((w - mean).square().sum() / num_samples).sqrt().item()
    return mean.float(), std


def noise_regularization(noises: list[Tensor]) -> Tensor:
    """StyleGAN2 Eq. 5: squared one-pixel autocorrelations of each noise map, over a pyramid down to 8x8."""
    reg = noises[0].new_zeros(())
    for n in noises:
        while True:
            reg = reg + (n * torch.roll(n, shifts=1, dims=3)).mean().square()
            reg = reg + (n * torch.roll(n, shifts=1, dims=2)).mean().square()
            if n.shape[-1] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return reg


def _lr(t: float, initial_lr: float, rampdown: float, rampup: float) -> float:
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return initial_lr * ramp * min(1.0, t / rampup)


def project(
    G: torch.nn.Module,
    target: Tensor,
    *,
    num_steps: int = 500,
    space: str = "w",
    init: str = "w_avg",
    lr: float = 0.1,
    lr_rampdown_length: float = 0.25,
    lr_rampup_length: float = 0.05,
    initial_noise_factor: float = 0.05,
    noise_ramp_length: float = 0.75,
    noise_mode: str = "optimise",
    noise_reg_weight: float = 1e5,
    loss: str = "lpips",
    w_avg_samples: int = 10_000,
    generator: torch.Generator | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ProjectionResult:
    """Find latents (and noise) whose image matches ``target``. See the module docstring for the method.

    Args:
        G: generator (``G.mapping``, ``G.synthesis``, ``G.w_avg``); left unchanged (no parameter updates).
        target: ``[1, C, H, W]`` float in [-1, 1]; resized to the generator's resolution.
        num_steps: optimisation steps (NVIDIA uses 1000; 200-500 is usually enough for W+).
        space: ``"w"`` (one row for every layer: best for editing) or ``"w+"`` (one row per layer: best
            reconstruction).
        init: starting point; ``"w_avg"`` = the generator's mean w.
        lr: peak Adam learning rate; ramps up over ``lr_rampup_length`` and down (cosine) over the last
            ``lr_rampdown_length`` of the run (fractions of ``num_steps``).
        initial_noise_factor: latent noise std as a fraction of W's std, decaying quadratically to zero at
            ``noise_ramp_length`` of the run.
        noise_mode: ``"optimise"`` the per-layer noise maps (with regularisation), keep the generator's
            ``"const"`` buffers, or ``"none"``.
        noise_reg_weight: weight of the noise regularisation (StyleGAN2: 1e5).
        loss: ``"lpips"`` (falls back to ``"pixel"`` with a warning if LPIPS weights are not cached) or
            ``"pixel"``.
        w_avg_samples: z samples used to estimate W's spread for the latent noise.
        generator: source of every random number (W statistics, initial noise maps, latent noise); a fixed
            seed makes the run reproducible on one device.
        progress: ``progress(step, num_steps, loss)`` after every step (step counts from 1).
        should_stop: polled before every step; when it returns True the best latents so far are returned.

    Returns:
        ProjectionResult with the final latents and noise of a full run, or of the lowest-loss step so far
        when ``should_stop`` ended it early.

    Raises:
        InputError: wrong target shape/channels, unknown space/init/noise mode/loss, steps outside 1..100000.
    """
    knobs = dict(locals())  # every argument, passed on unchanged
    _check(G, target, space, num_steps, init, noise_mode)
    # Callers may hold the model under torch.inference_mode (the app does); optimisation needs autograd.
    with torch.inference_mode(False), torch.enable_grad():
        return _project(**knobs)


def _project(
    G,
    target,
    *,
    num_steps,
    space,
    init,
    lr,
    lr_rampdown_length,
    lr_rampup_length,
    initial_noise_factor,
    noise_ramp_length,
    noise_mode,
    noise_reg_weight,
    loss,
    w_avg_samples,
    generator,
    progress,
    should_stop,
) -> ProjectionResult:
    device = G.w_avg.device
    gen_device = generator.device if generator is not None else device
    res, num_ws = G.cfg.img_resolution, G.num_ws
    loss_fn, loss_name = make_loss(loss, device=device)
    # clone(): an inference-mode tensor from the caller becomes an ordinary one that autograd may save.
    target = resize_target(target.to(device=device, dtype=torch.float32).clone(), res).detach()

    w_mean, w_std = w_stats(G, num_samples=w_avg_samples, generator=generator)
    # The model's own w_avg is the truncation centre users know; the sampled mean is the fallback for
    # generators whose w_avg was never tracked (all zeros).
    start = G.w_avg.detach()[None].float() if bool(G.w_avg.abs().sum() > 0) else w_mean
    rows = 1 if space == "w" else num_ws
    w_opt = start[:, None, :].repeat(1, rows, 1).clone().requires_grad_(True)

    noise_bufs: list[Tensor] = []
    if noise_mode == "optimise":
        for i in range(G.num_layers):
            r = G.make_noise(1, "const")[i].shape[-1]
            n = torch.randn(1, 1, r, r, generator=generator, device=gen_device).to(device)
            noise_bufs.append(n.requires_grad_(True))
    elif noise_mode == "const":
        noise_bufs = [n.detach().clone() for n in G.make_noise(1, "const")]
    params = [w_opt] + (noise_bufs if noise_mode == "optimise" else [])
    opt = torch.optim.Adam(params, betas=(0.9, 0.999), lr=lr)

    def synth(ws_rows: Tensor) -> Tensor:
        ws = ws_rows.expand(-1, num_ws, -1) if ws_rows.shape[1] == 1 else ws_rows
        if noise_mode == "none":
            return G.synthesis(ws, noise_mode="none")
        return G.synthesis(ws, noise=noise_bufs)

    losses: list[float] = []
    best = (math.inf, w_opt.detach().clone(), [n.detach().clone() for n in noise_bufs])
    stopped = False
    for step in range(num_steps):
        if should_stop is not None and should_stop():
            stopped = True
            break
        t = step / num_steps
        w_noise_scale = w_std * initial_noise_factor * max(0.0, 1.0 - t / noise_ramp_length) ** 2
        for group in opt.param_groups:
            group["lr"] = _lr(t, lr, lr_rampdown_length, lr_rampup_length)
        w_noise = torch.randn(w_opt.shape, generator=generator, device=gen_device).to(device)
        img = synth(w_opt + w_noise * w_noise_scale)
        dist = loss_fn(img, target)
        total = dist
        if noise_mode == "optimise" and noise_reg_weight:
            total = total + noise_reg_weight * noise_regularization(noise_bufs)
        # The best step is judged before its update, on the latents that produced ``dist``.
        d = float(dist.detach())
        if d < best[0]:
            best = (d, w_opt.detach().clone(), [n.detach().clone() for n in noise_bufs])
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        losses.append(d)
        if noise_mode == "optimise":
            with torch.no_grad():
                for n in noise_bufs:
                    n -= n.mean()
                    n *= n.square().mean().rsqrt()
        if progress is not None:
            progress(step + 1, num_steps, d)

    # After a full run the last latents (no latent noise, lr ramped to zero) are the answer; when the run is
    # cut short, the lowest-loss step so far stands in (the current one may sit mid-exploration).
    if stopped:
        final_w, final_noise = best[1], best[2]
    else:
        final_w, final_noise = w_opt.detach(), [n.detach() for n in noise_bufs]
    noise_bufs = final_noise
    with torch.no_grad():
        image = synth(final_w)
        final_loss = float(loss_fn(image, target))
    ws = final_w.expand(-1, num_ws, -1).clone() if final_w.shape[1] == 1 else final_w.clone()
    return ProjectionResult(
        ws=ws,
        noise=[n.clone() for n in final_noise],
        losses=losses,
        image=image.detach(),
        loss_name=loss_name,
        final_loss=final_loss,
        psnr=psnr(image, target),
        space=space,
        steps=len(losses),
        stopped=stopped,
        target=target,
    )


def save_latents(result: ProjectionResult, path: str | Path) -> Path:
    """Write ``ws`` ``[1, num_ws, w_dim]`` float32 and the noise maps (``noise_0``, ...) to an ``.npz``."""
    path = Path(path)
    arrays = {"ws": result.ws.detach().cpu().float().numpy()}
    for i, n in enumerate(result.noise):
        arrays[f"noise_{i}"] = n.detach().cpu().float().numpy()
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def latent_spec(
    result: ProjectionResult, *, model: str = "", model_hash: str | None = None, seed: int | None = None
) -> dict:
    """A JSON object for a projection: the model, the space, the W+ rows, the report, and ``recipe``, a
    :class:`core.render.Recipe` (dict) that renders the projected latents with the model's stored noise, so the
    result can be opened in the Recipe tab and edited (truncation, mixing, directions) like any seed."""
    from core.render import Recipe

    ws = [[round(float(v), 6) for v in row] for row in result.ws[0].tolist()]
    return {
        "recipe": Recipe(model=model, model_hash=model_hash, ws=ws).to_dict(),
        "kind": "projection",
        "model": model,
        "model_hash": model_hash,
        "seed": seed,
        **result.report(),
        "ws": ws,
    }
