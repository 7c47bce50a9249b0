"""Train and evaluate the SynthFaces attribute classifier (:mod:`core.models.classifier`).

Training images are rendered on the fly on the training device from a SynthFaces stream (image ``i`` of the
stream ``seed`` is a pure function of ``(seed, i)``), so a run is reproducible from its seed. On a slow device
a replay buffer keeps the renderer from being the bottleneck: each step renders ``refresh * batch`` new images
into the buffer and trains on a random batch of it.

The classifier will label GAN samples, which are softer and noisier than renders, so training uses mild
augmentation (Gaussian blur, pixel noise, small brightness/contrast/saturation jitter). Colour jitter is kept
small and global on purpose: light tint, skin tone and background brightness are labels, and a per-channel
gain of 2% already moves ``light_tint`` by 0.2 of its range.

Held-out evaluation uses another stream (``HELD_OUT_SEED_OFFSET + seed``), never seen in training.
Some labels cannot be seen in every image (the iris colour of closed eyes, the frame colour without
glasses, the shape of brows that barely differ from the skin or hair beneath them or hide under a spectacle
frame); :data:`VISIBILITY` lists them, training masks their loss there and evaluation scores them where
they are visible (the card says so).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from core.data import synthfaces as sf
from core.data.synthfaces import SynthFaces
from core.models.classifier import AttributeClassifier, ClassifierConfig

ACCURACY_TARGET = 0.98
R2_TARGET = 0.95
HELD_OUT_SEED_OFFSET = 1_000_003
BLUR_SIGMA = 1.0  # px per 64 px of image width: the "blurred renders" of the card (2 px at 128 px)

ProgressFn = Callable[[int, int], None]
StopFn = Callable[[], bool]

# Brows whose render changes the image by less than this (sf.part_signal, pixels of a 128 px image) cannot
# be read: the brow labels are unobservable there (see the module docstring).
BROW_SIGNAL_MIN = 3.0

# label -> (factor, threshold): the label is observable only where factor > threshold (categorical: ==).
# "brow_signal" is not a SynthFaces factor: render_batch measures it (sf.part_signal of the brows).
VISIBILITY: dict[str, tuple[str, str, float]] = {
    "blue_eyes": ("eye_open", ">", 0.35),
    "iris_color": ("eye_open", ">", 0.35),
    "glasses_color": ("eyeglasses", "==", 1),
    "raised_brows": ("brow_signal", ">", BROW_SIGNAL_MIN),
    "brow_raise": ("brow_signal", ">", BROW_SIGNAL_MIN),
    "brow_tilt": ("brow_signal", ">", BROW_SIGNAL_MIN),
}


def visible_mask(label: str, factors: dict[str, Tensor]) -> Tensor | None:
    """Where ``label`` can be seen (bool ``[N]``), or None if it is visible in every image."""
    rule = VISIBILITY.get(label)
    if rule is None:
        return None
    factor, op, t = rule
    v = factors[factor]
    return v > t if op == ">" else v == t


def render_batch(
    seed: int, start: int, n: int, *, resolution: int, device: torch.device | str
) -> tuple[Tensor, dict[str, Tensor]]:
    """Images ``start .. start+n-1`` of the SynthFaces stream ``seed`` with stochastic detail on.

    Returns:
        ``(images [n, 3, R, R] in [-1, 1], factors {name: [n]})`` on ``device``; ``factors`` also holds
        ``"brow_signal"`` (:func:`core.data.synthfaces.part_signal` of the brows) for :data:`VISIBILITY`.
    """
    img, factors = SynthFaces(resolution=resolution, seed=seed).batch(start, n, device=device)
    index = torch.arange(start, start + n, device=img.device)
    factors["brow_signal"] = sf.part_signal(
        factors, "brows", resolution=resolution, detail_seed=seed, index=index, images=img
    )
    return img, factors


def targets(cfg: ClassifierConfig, factors: dict[str, Tensor]) -> dict[str, Tensor]:
    """Training targets for ``cfg``'s heads from SynthFaces factors.

    Returns:
        ``{"attributes": [N, A] float 0/1, "regression": [N, F] natural units, "categorical": [N, C] int64,
        "attr_mask": [N, A], "reg_mask": [N, F], "cat_mask": [N, C]}`` (masks: 1 where visible).
    """
    attrs = sf.binary_attributes(factors)
    n = next(iter(factors.values())).shape[0]
    dev = next(iter(factors.values())).device

    def mask(names) -> Tensor:
        cols = []
        for name in names:
            m = visible_mask(name, factors)
            cols.append(torch.ones(n, device=dev) if m is None else m.float())
        return torch.stack(cols, 1) if cols else torch.zeros(n, 0, device=dev)

    cat_names = [name for name, _ in cfg.categorical]
    return {
        "attributes": torch.stack([attrs[a].float() for a in cfg.attributes], 1),
        "regression": torch.stack([factors[f].float() for f in cfg.factors], 1),
        "categorical": torch.stack([factors[c].long() for c in cat_names], 1)
        if cat_names
        else torch.zeros(n, 0, dtype=torch.long, device=dev),
        "attr_mask": mask(cfg.attributes),
        "reg_mask": mask(cfg.factors),
        "cat_mask": mask(cat_names),
    }


def gaussian_blur(img: Tensor, sigma: Tensor | float) -> Tensor:
    """Separable Gaussian blur with a per-image ``sigma`` (pixels; 0 = unchanged), reflect padding.

    Args:
        img: ``[N, C, H, W]``.
        sigma: float or ``[N]``.
    """
    n, c, h, w = img.shape
    sigma = torch.as_tensor(sigma, dtype=img.dtype, device=img.device).expand(n).clamp(min=1e-3)
    radius = max(1, math.ceil(3 * float(sigma.max())))
    x = torch.arange(-radius, radius + 1, dtype=img.dtype, device=img.device)
    k = torch.exp(-0.5 * (x[None] / sigma[:, None]) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [N*C, K]: one kernel per image channel
    y = F.pad(img.reshape(1, n * c, h, w), (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)
    y = F.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c)
    return y.view(n, c, h, w)


def augment(img: Tensor, generator: torch.Generator, *, strength: float = 1.0) -> Tensor:
    """Mild, label-preserving augmentation of ``[N, 3, H, W]`` in [-1, 1] (blur, noise, global colour).

    Half of the images are blurred (sigma up to 1.2 px at 64 px), half get Gaussian pixel noise (std up to
    0.05), all get brightness/contrast/saturation changes of a few percent.
    """
    n, dev = img.shape[0], img.device

    def u(lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator, device=dev)

    scale = img.shape[-1] / 64.0
    sigma = u(0.0, 1.2 * scale * strength) * (torch.rand(n, generator=generator, device=dev) < 0.5)
    img = gaussian_blur(img, sigma)
    x = (img + 1) * 0.5
    gray = x.mean(1, keepdim=True)
    x = gray + (x - gray) * u(1 - 0.06 * strength, 1 + 0.06 * strength).view(n, 1, 1, 1)  # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    x = mean + (x - mean) * u(1 - 0.04 * strength, 1 + 0.04 * strength).view(n, 1, 1, 1)  # contrast
    x = x + u(-0.02 * strength, 0.02 * strength).view(n, 1, 1, 1)  # brightness
    noise_std = u(0.0, 0.05 * strength) * (torch.rand(n, generator=generator, device=dev) < 0.5)
    noise = torch.randn(x.shape, generator=generator, device=dev) * noise_std.view(n, 1, 1, 1)
    return (x * 2 - 1 + noise).clamp(-1, 1)


def classifier_loss(model: AttributeClassifier, out: dict[str, Tensor], t: dict[str, Tensor]) -> Tensor:
    """BCE on attributes + cross-entropy on categories + MSE on standardised factors (~ 1 - R^2), masked."""
    am = t["attr_mask"]
    bce = F.binary_cross_entropy_with_logits(out["logits"], t["attributes"], reduction="none")
    loss = (bce * am).sum() / am.sum().clamp(min=1)
    rm = t["reg_mask"]
    if rm.numel():
        se = (out["regression_std"] - model.standardize(t["regression"])) ** 2
        loss = loss + (se * rm).sum() / rm.sum().clamp(min=1)
    logits = model.split_categorical(out["categorical"])
    for j, (name, _) in enumerate(model.cfg.categorical):
        ce = F.cross_entropy(logits[name], t["categorical"][:, j], reduction="none")
        cm = t["cat_mask"][:, j]
        loss = loss + 0.5 * (ce * cm).sum() / cm.sum().clamp(min=1) / max(len(model.cfg.categorical), 1)
    return loss


def train_classifier(
    *,
    resolution: int = 128,
    steps: int = 3000,
    batch: int = 64,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    buffer_size: int | None = None,
    refresh: float | None = None,
    eval_n: int = 2000,
    cfg: ClassifierConfig | None = None,
    init: AttributeClassifier | None = None,
    time_budget: float | None = None,
) -> tuple[AttributeClassifier, dict]:
    """Train an :class:`AttributeClassifier` on SynthFaces rendered on the fly, then evaluate it held-out.

    Args:
        resolution: render resolution of the training images (the model resizes to its input resolution).
        steps: optimiser steps (AdamW, one-cycle schedule: warm-up then cosine decay).
        batch: images per step.
        device: where rendering and training run.
        seed: SynthFaces training stream and the seed of init and augmentation.
        progress: called as ``progress(step, steps)``.
        should_stop: polled every step; True ends training early (the model is still evaluated).
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        buffer_size: replay buffer size; default 0 on CUDA (pure on-the-fly), 16 * batch elsewhere.
        refresh: fraction of a batch freshly rendered into the buffer per step; default 1.0 on CUDA,
            0.25 elsewhere. Ignored without a buffer.
        eval_n: held-out images for the final report (0: skip).
        cfg: model config; default ``ClassifierConfig.synthfaces()``.
        init: a trained classifier to continue from (fine-tuning: its config and weights; ``init`` itself is
            not modified). Use another ``seed`` than its run's to see new images.
        time_budget: seconds of training; the schedule then follows elapsed time (cosine decay reaches zero
            when the budget is spent, or at ``steps`` if that comes first), so a run fits a fixed slot of
            machine time whatever the device's speed.

    Returns:
        ``(model in eval mode, report)``; the report holds the config, steps done, the last losses and (if
        ``eval_n``) :func:`evaluate_classifier` results on clean and blurred held-out renders.

    Raises:
        ValueError: on non-positive ``steps`` / ``batch``.
    """
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be positive, got steps={steps}, batch={batch}")
    device = torch.device(device)
    cuda = device.type == "cuda"
    buffer_size = (0 if cuda else 16 * batch) if buffer_size is None else buffer_size
    refresh = (1.0 if cuda else 0.25) if refresh is None else refresh
    if init is not None:
        cfg = init.cfg
    cfg = cfg or ClassifierConfig.synthfaces()
    gen_cpu = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # module init draws from the global RNG; forked, so the caller's is untouched
        model = AttributeClassifier(cfg)
    if init is not None:
        model.load_state_dict(init.state_dict())
    model.to(device).train()
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.99))
    warm = max(1, min(200, steps // 20))

    def progress_at(step: int, elapsed: float) -> float:
        frac = (step - warm) / max(1, steps - warm)
        if time_budget:
            frac = max(frac, elapsed / time_budget)
        return min(frac, 1.0)

    def lr_at(step: int, elapsed: float) -> float:
        if step < warm:
            return lr * (step + 1) / warm
        return lr * 0.5 * (1 + math.cos(math.pi * progress_at(step, elapsed)))

    cursor = 0  # next image index of the training stream

    def fresh(n: int) -> tuple[Tensor, dict[str, Tensor]]:
        nonlocal cursor
        img, factors = render_batch(seed, cursor, n, resolution=resolution, device=device)
        cursor += n
        return img, factors

    use_buffer = buffer_size > batch
    if use_buffer:
        buf_img, buf_f = fresh(buffer_size)
        buf_img = buf_img.half() if not cuda else buf_img
        n_new = max(1, round(refresh * batch))
    losses: list[float] = []
    done = 0
    t0 = time.perf_counter()
    stopped = "steps"
    for step in range(steps):
        elapsed = time.perf_counter() - t0
        if should_stop is not None and should_stop():
            stopped = "requested"
            break
        if time_budget is not None and elapsed >= time_budget:
            stopped = "time budget"
            break
        if use_buffer:
            new_img, new_f = fresh(n_new)
            slot = torch.randint(buffer_size, (n_new,), generator=gen_cpu).to(device)
            buf_img[slot] = new_img.to(buf_img.dtype)
            for k in buf_f:
                buf_f[k][slot] = new_f[k]
            pick = torch.randint(buffer_size, (batch,), generator=gen_cpu).to(device)
            img, factors = buf_img[pick].float(), {k: v[pick] for k, v in buf_f.items()}
        else:
            img, factors = fresh(batch)
        img = augment(img, gen)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, elapsed)
        out = model(img)
        loss = classifier_loss(model, out, targets(cfg, factors))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        done = step + 1
        if progress is not None:
            progress(done, steps)
    model.eval().requires_grad_(False)
    train_seconds = time.perf_counter() - t0  # reported only; nothing depends on it
    tail = losses[-50:]
    report: dict = {
        "config": cfg.to_dict(),
        "steps": done,
        "steps_requested": steps,
        "stopped_by": stopped,
        "time_budget_s": time_budget,
        "batch": batch,
        "lr": lr,
        "resolution": resolution,
        "seed": seed,
        "device": str(device),
        "images_rendered": cursor,
        "final_loss": sum(tail) / max(len(tail), 1),
        "train_seconds": round(train_seconds, 1),
        "loss_curve": [
            round(sum(losses[i : i + 100]) / len(losses[i : i + 100]), 4) for i in range(0, done, 100)
        ],
    }
    if eval_n:
        held_out = HELD_OUT_SEED_OFFSET + seed
        report["eval"] = evaluate_classifier(model, n=eval_n, seed=held_out, resolution=resolution)
        report["eval_blur"] = evaluate_classifier(
            model, n=eval_n, seed=held_out, resolution=resolution, blur=True
        )
    return model, report


@torch.no_grad()
def predict(model: AttributeClassifier, img: Tensor, *, batch: int = 256) -> dict[str, Tensor]:
    """Run ``model`` over ``img`` in chunks on the model's device; outputs are concatenated on that device."""
    dev = next(model.parameters()).device
    outs: list[dict[str, Tensor]] = []
    for i in range(0, img.shape[0], batch):
        outs.append(model(img[i : i + batch].to(dev)))
    return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}


def r2_score(pred: Tensor, target: Tensor) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` of 1-D tensors (float64)."""
    pred, target = pred.double(), target.double()
    ss_tot = ((target - target.mean()) ** 2).sum()
    return float(1 - ((pred - target) ** 2).sum() / ss_tot.clamp(min=1e-12))


@torch.no_grad()
def evaluate_classifier(
    model: AttributeClassifier,
    *,
    n: int = 2000,
    seed: int = HELD_OUT_SEED_OFFSET,
    blur: bool = False,
    resolution: int | None = None,
    batch: int = 256,
    progress: ProgressFn | None = None,
) -> dict:
    """Score ``model`` on ``n`` SynthFaces renders of stream ``seed`` (use one it was not trained on).

    Args:
        model: a trained classifier (its device is used).
        n: number of renders.
        seed: SynthFaces stream.
        blur: blur every render by ``BLUR_SIGMA`` px per 64 px of width first.
        resolution: render resolution; default the model's input resolution.
        batch: images per forward pass.
        progress: called as ``progress(done, n)``.

    Returns:
        ``{"n", "blur", "accuracy": {attr: acc}, "accuracy_all": {attr: acc ignoring visibility},
        "r2": {factor: R^2}, "r2_all": {factor: R^2 ignoring visibility}, "categorical_accuracy": {factor:
        acc}, "min_accuracy", "min_r2",
        "pass": bool}`` (``pass``: every accuracy >= ACCURACY_TARGET and every R^2 >= R2_TARGET).
    """
    cfg = model.cfg
    dev = next(model.parameters()).device
    res = resolution or cfg.input_resolution
    model.eval()
    logits, reg, cat, facs = [], [], [], []
    for start in range(0, n, batch):
        m = min(batch, n - start)
        img, f = render_batch(seed, start, m, resolution=res, device=dev)
        if blur:
            img = gaussian_blur(img, BLUR_SIGMA * res / 64)
        out = model(img)
        logits.append(out["logits"])
        reg.append(out["regression"])
        cat.append(out["categorical"])
        facs.append(f)
        if progress is not None:
            progress(start + m, n)
    factors = {k: torch.cat([f[k] for f in facs]) for k in facs[0]}
    t = targets(cfg, factors)
    logits, reg, cat = torch.cat(logits), torch.cat(reg), torch.cat(cat)
    correct = (logits > 0).float() == t["attributes"]
    acc, acc_all = {}, {}
    for j, a in enumerate(cfg.attributes):
        vis = t["attr_mask"][:, j] > 0
        acc[a] = float(correct[vis, j].float().mean()) if vis.any() else float("nan")
        acc_all[a] = float(correct[:, j].float().mean())
    r2, r2_all = {}, {}
    for j, name in enumerate(cfg.factors):
        vis = t["reg_mask"][:, j] > 0
        r2[name] = r2_score(reg[vis, j], t["regression"][vis, j])
        r2_all[name] = r2_score(reg[:, j], t["regression"][:, j])
    cat_acc = {}
    split = model.split_categorical(cat)
    for j, (name, _) in enumerate(cfg.categorical):
        vis = t["cat_mask"][:, j] > 0
        hit = split[name].argmax(1) == t["categorical"][:, j]
        cat_acc[name] = float(hit[vis].float().mean())
    min_acc = min(acc.values()) if acc else 1.0
    min_r2 = min(r2.values()) if r2 else 1.0
    return {
        "n": n,
        "seed": seed,
        "blur": blur,
        "blur_sigma_px": BLUR_SIGMA * res / 64 if blur else 0.0,
        "accuracy": acc,
        "accuracy_all": acc_all,
        "r2": r2,
        "r2_all": r2_all,
        "categorical_accuracy": cat_acc,
        "min_accuracy": min_acc,
        "min_r2": min_r2,
        "pass": bool(min_acc >= ACCURACY_TARGET and min_r2 >= R2_TARGET),
    }


def classifier_card(report: dict, *, model_file: str = "synthfaces-classifier.safetensors") -> str:
    """Markdown model card of a :func:`train_classifier` report: per-attribute held-out accuracy (clean and
    blurred) and R^2 per factor against the targets."""
    ev, evb = report.get("eval"), report.get("eval_blur")
    cfg = report["config"]
    lines = [
        "# SynthFaces attribute classifier",
        "",
        f"File: `{model_file}` (native safetensors, arch `attribute-classifier`; load with "
        "`core.models.classifier.load_classifier`).",
        "",
        f"* Input: any RGB image in [-1, 1], resized (anti-aliased) to {cfg['input_resolution']} px; "
        f"penultimate features: {cfg['feature_dim']}-d (used by `core.metrics` for Frechet distance and "
        "precision/recall).",
        f"* Heads: {len(cfg['attributes'])} binary attribute logits, {len(cfg['factors'])} continuous factors "
        f"(regression), {len(cfg['categorical'])} categorical factors.",
        f"* Training: {report['steps']} steps x {report['batch']} SynthFaces renders at {report['resolution']} px "
        f"rendered on the fly (stream seed {report['seed']}, {report['images_rendered']} distinct images) on "
        f"`{report['device']}`, with mild augmentation (Gaussian blur sigma <= 1.2 px per 64 px, pixel noise std <= 0.05, "
        "brightness/contrast/saturation +-2-6%); final loss "
        f"{report['final_loss']:.4f}.",
    ]
    if report.get("init"):
        init = report["init"]
        lines.append(
            f"* Fine-tuned (the steps above, cosine-annealed from lr {report.get('lr', '?')}) from `{init['model']}`, "
            f"itself trained {init.get('steps', '?')} steps on stream seed {init.get('seed', '?')}."
        )
    if report.get("stopped_by") == "time budget":
        lines.append(
            f"* Trained for a time budget of {report['time_budget_s'] / 60:g} min (the cosine schedule follows "
            f"the clock and reached zero; --steps {report['steps_requested']} was only a cap)."
        )
    elif report["steps"] < report.get("steps_requested", report["steps"]):
        lines.append(
            f"* Stopped early at step {report['steps']} of {report['steps_requested']} (learning rate not yet "
            "annealed): a provisional model."
        )
    if not ev:
        lines += ["", "No held-out evaluation was run."]
        return "\n".join(lines) + "\n"
    lines += [
        f"* Held-out evaluation: {ev['n']} renders of stream {ev['seed']} (never used in training); "
        f"blurred = Gaussian blur sigma {BLUR_SIGMA} px per 64 px of width (at {report['resolution']} px: "
        f"{BLUR_SIGMA * report['resolution'] / 64:g} px).",
        f"* Targets: accuracy >= {ACCURACY_TARGET} on every binary attribute, R^2 >= {R2_TARGET} on every "
        f"continuous factor. Result on clean renders: **{'PASS' if ev['pass'] else 'FAIL'}** "
        f"(min accuracy {ev['min_accuracy']:.4f}, min R^2 {ev['min_r2']:.4f}).",
        "* Visibility: "
        + "; ".join(
            f"`{k}` is scored only where `{f} {op} {t}`" for k, (f, op, t) in sorted(VISIBILITY.items())
        )
        + " (elsewhere it cannot be seen; the 'all' column scores every image). `brow_signal` is how much the "
        "brows change the image (`core.data.synthfaces.part_signal`: summed absolute pixel change, in pixels "
        "of a 128 px image, against the same render without brows); below "
        f"{BROW_SIGNAL_MIN:g} they are lost in the skin, the fringe or a spectacle frame.",
    ]
    second = report.get("eval_second_stream")
    if second:
        worst = min(second["r2"], key=second["r2"].get)
        lines.append(
            f"* A second held-out stream ({second['n']} renders of stream {second['seed']}): min accuracy "
            f"{second['min_accuracy']:.4f}, min R^2 {second['min_r2']:.4f} (`{worst}`): "
            f"**{'PASS' if second['pass'] else 'FAIL'}**."
        )
    if cfg.get("mirror_symmetric"):
        lines.append(
            "* Mirror averaging: "
            + ", ".join(f"`{n}`" for n in cfg["mirror_symmetric"])
            + " are drawn as mirror copies (eyes, brows, mouth), so in eval mode the model reports the mean of"
            " its predictions for the image and its horizontal mirror (`ClassifierConfig.mirror_symmetric`);"
            " every other output, and the features, come from the image alone."
        )
    lines += [
        "",
        "## Binary attributes (held-out accuracy)",
        "",
        "| attribute | clean | blurred | clean, all images | target met |",
        "|---|---|---|---|---|",
    ]
    for a in cfg["attributes"]:
        acc, blur = ev["accuracy"][a], evb["accuracy"][a] if evb else float("nan")
        ok = "yes" if acc >= ACCURACY_TARGET else "**no**"
        lines.append(f"| {a} | {acc:.4f} | {blur:.4f} | {ev['accuracy_all'][a]:.4f} | {ok} |")
    lines += [
        "",
        "## Continuous factors (held-out R^2)",
        "",
        "| factor | clean | blurred | clean, all images | target met |",
        "|---|---|---|---|---|",
    ]
    for f in cfg["factors"]:
        r2, blur = ev["r2"][f], evb["r2"][f] if evb else float("nan")
        r2_all = ev.get("r2_all", {}).get(f, float("nan"))
        ok = "yes" if r2 >= R2_TARGET else "**no**"
        lines.append(f"| {f} | {r2:.4f} | {blur:.4f} | {r2_all:.4f} | {ok} |")
    lines += [
        "",
        "## Categorical factors (held-out accuracy)",
        "",
        "| factor | clean | blurred |",
        "|---|---|---|",
    ]
    for name, _ in cfg["categorical"]:
        blur = evb["categorical_accuracy"][name] if evb else float("nan")
        lines.append(f"| {name} | {ev['categorical_accuracy'][name]:.4f} | {blur:.4f} |")
    return "\n".join(lines) + "\n"
