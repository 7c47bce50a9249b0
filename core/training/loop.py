"""The StyleGAN / StyleGAN2 training loop (one process per GPU; see ``distributed.py``).

Per minibatch, as in StyleGAN2 (Karras et al. 2020, appendix B) and StyleGAN2-ADA's ``training_loop``:

1. **D main** - non-saturating logistic loss on augmented reals and fakes; ADA's ``sign(D(real))`` statistic.
2. **D reg** (every ``d_reg_every`` = 16) - R1 on reals, weight ``gamma / 2 * 16`` (lazy regularisation).
3. **G main** - non-saturating loss through the frozen D, with style mixing (probability 0.9, per sample, a
   random crossover row); ``w_avg`` tracks the mean mapped w.
4. **G reg** (every ``g_reg_every`` = 4) - path-length penalty on a batch shrunk by 2, weight ``2 * 4``.
5. **EMA** of G into G_ema (half-life ``ema_kimg``); every 4 steps ADA adjusts ``p``.

Lazy regularisation also rescales Adam (StyleGAN2 sec. 3.1 / NVIDIA): ``lr *= c`` and ``beta ** c`` with
``c = interval / (interval + 1)``.

Speed: bf16 autocast with fp32 master weights (+TF32 for fp32 ops), channels_last, fused Adam, optional
``torch.compile`` of the main G/D passes (the double-backward regularisation passes stay eager: compiled
graphs do not support second derivatives), and no host synchronisation inside a step: losses are summed
on the device and read every ``sync_every`` steps, where the loop also checks for NaN/inf, writes status,
agrees on stopping across ranks, saves snapshots and samples.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from core.errors import StyleScopeError
from core.models.stylegan import Discriminator, Generator
from core.nn.layers import set_fir_impl
from core.training import checkpoint as ckpt
from core.training import distributed as D_
from core.training import warmstart
from core.training.augment import AdaController, ada_augment, diff_augment
from core.training.config import TrainConfig
from core.training.data import DataSource, make_data_source
from core.training.ema import ema_beta, update_ema, update_w_avg
from core.training.losses import d_logistic_loss, g_nonsaturating_loss, path_length_penalty, r1_penalty
from core.training.status import append_metrics, new_status, write_status

STAT_NAMES = (
    "loss_D",
    "loss_G",
    "r1",
    "pl",
    "pl_mean",
    "real_logit",
    "fake_logit",
    "n_D",
    "n_G",
    "n_r1",
    "n_pl",
)
SAMPLE_SEED_OFFSET = 9_999


class TrainingDivergedError(StyleScopeError):
    """A loss became NaN/inf; the run stopped and the last good checkpoint is kept."""


def configure_backends(device: torch.device) -> None:
    """Enable TF32 and cuDNN autotuning. Called by the training process, never at library import time."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def _to_channels_last(module: torch.nn.Module) -> None:
    # Module.to(memory_format=) refuses the 5-D modulated-conv weights; convert only the 4-D tensors.
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim == 4:
                p.data = p.data.contiguous(memory_format=torch.channels_last)


def _adam(params, cfg: TrainConfig, reg_every: int, device: torch.device) -> torch.optim.Adam:
    ratio = reg_every / (reg_every + 1)
    betas = (cfg.betas[0] ** ratio, cfg.betas[1] ** ratio)
    kw = {"fused": True} if device.type == "cuda" else {"foreach": True}
    return torch.optim.Adam(params, lr=cfg.lr * ratio, betas=betas, eps=1e-8, **kw)


class Trainer:
    """Holds networks, optimisers and loop state; ``run()`` trains until done, stopped or diverged.

    Args:
        config: the run's :class:`TrainConfig`.
        run_dir: run directory (created).
        ctx: process placement (see :func:`core.training.distributed.init_distributed`).
        data: optional pre-built :class:`DataSource` (tests inject one); default from ``config.data``.
        resume_state: a loaded checkpoint dict to continue from.
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | os.PathLike,
        *,
        ctx: D_.DistContext | None = None,
        data: DataSource | None = None,
        resume_state: dict | None = None,
    ) -> None:
        self.cfg = cfg = config
        self.ctx = ctx = ctx or D_.DistContext()
        self.warnings: list[str] = []
        self.device = dev = ctx.device
        self.run_dir = Path(run_dir)
        self.batch = cfg.batch // ctx.world  # per rank
        if self.batch < 1:
            raise StyleScopeError(f"batch {cfg.batch} is smaller than the number of processes {ctx.world}")
        self.cur_nimg = int(resume_state["cur_nimg"]) if resume_state else 0
        self.step = int(resume_state["step"]) if resume_state else 0
        self.data = data or make_data_source(
            cfg.data,
            cfg.res,
            dev,
            cfg.seed,
            ctx.rank,
            ctx.world,
            batch=self.batch,
            start_nimg=self.cur_nimg,
            num_workers=cfg.num_workers,
            cond=cfg.cond,
        )
        c_dim = self.data.label_dim if cfg.cond else 0
        if resume_state and int(resume_state.get("label_dim", 0)) != c_dim:
            raise StyleScopeError(
                f"the dataset has {c_dim} label dims but the checkpoint was trained with {resume_state.get('label_dim')}"
            )
        self.c_dim = c_dim

        # Same init on every rank (seeded), then broadcast anyway so nothing depends on RNG equality.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # forked: the caller's global RNG is untouched
            self.G = Generator(cfg.generator_config(c_dim)).to(dev)
            self.D = Discriminator(cfg.discriminator_config(c_dim)).to(dev)
        self.G_ema = Generator(cfg.generator_config(c_dim)).to(dev).eval()
        self.G_ema.load_state_dict(self.G.state_dict())
        self.G_ema.requires_grad_(False)
        # channels_last pays off with cuDNN tensor-core kernels; on CPU it only costs layout conversions.
        self.channels_last = cfg.channels_last and dev.type == "cuda"
        if self.channels_last:
            for m in (self.G, self.D, self.G_ema):
                _to_channels_last(m)
        self.G_opt = _adam(self.G.parameters(), cfg, cfg.g_reg_every, dev)
        self.D_opt = _adam(self.D.parameters(), cfg, cfg.d_reg_every, dev)
        self.pl_mean = torch.zeros((), device=dev)
        self.ada = AdaController(
            target=cfg.ada_target,
            ada_kimg=cfg.ada_kimg,
            interval=cfg.ada_interval,
            batch=cfg.batch,
            p=cfg.aug_p if cfg.aug == "ada" else 0.0,
            device=dev,
        )
        self.gen = torch.Generator(device=dev).manual_seed(cfg.seed * 1009 + 7919 * ctx.rank + 1)
        self.stats = torch.zeros(len(STAT_NAMES), device=dev, dtype=torch.float64)
        if resume_state:
            self._load_state(resume_state)
        else:
            if cfg.init:  # warm start: weights only (a resume restores everything instead)
                init = warmstart.load_init_weights(cfg.init)
                warmstart.apply_init_weights(init, self.G, self.D, self.G_ema)
                self.warnings.extend(init.notes)
            D_.broadcast_module(self.G, ctx)
            D_.broadcast_module(self.D, ctx)
            if cfg.init:
                D_.broadcast_module(self.G_ema, ctx)
            else:
                self.G_ema.load_state_dict(self.G.state_dict())

        self.reduce_sum = D_.make_all_reduce(ctx)
        self.reduce_mean = D_.make_all_reduce(ctx, mean=True)
        self.autocast = (
            (lambda: torch.autocast(dev.type, dtype=torch.bfloat16))
            if cfg.precision == "bf16"
            else contextlib.nullcontext
        )
        set_fir_impl(cfg.fir)  # process-wide; changes speed only (all implementations compute the same)
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        # Callables for the main passes (compiled when asked) and eager ones for double-backward passes.
        self.mapping, self.synthesis, self.D_main = self.G.mapping, self.G.synthesis, self.D
        if cfg.compile:
            # dynamic=False: a handful of fixed shapes (B, 2B), each specialised, no dynamic-shape kernels.
            self.mapping = torch.compile(self.G.mapping, dynamic=False)
            self.synthesis = torch.compile(self.G.synthesis, dynamic=False)
            self.D_main = torch.compile(self.D, dynamic=False)
        self.sample_z = torch.randn(
            cfg.sample_grid[0] * cfg.sample_grid[1],
            cfg.z_dim,
            generator=torch.Generator().manual_seed(cfg.seed + SAMPLE_SEED_OFFSET),
        )
        self.sample_c: Tensor | None = None
        self._stop_signal: str | None = None
        self._tb = None

    # ------------------------------------------------------------------ state (checkpoints)
    def state_dict(self) -> dict:
        """The full training state as plain tensors / numbers (rank 0's view; all ranks hold equal weights)."""
        gens = D_.gather_objects(self.gen.get_state(), self.ctx)

        def cpu(sd: dict) -> dict:
            return {k: v.detach().to("cpu", copy=True) for k, v in sd.items()}

        rng = {"world": self.ctx.world, "generators": gens, "torch_cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "config": self.cfg.to_dict(),
            "cur_nimg": int(self.cur_nimg),
            "step": int(self.step),
            "kimg": self.cur_nimg / 1000,
            "label_dim": int(self.c_dim),
            "G": cpu(self.G.state_dict()),
            "D": cpu(self.D.state_dict()),
            "G_ema": cpu(self.G_ema.state_dict()),
            "G_opt": self.G_opt.state_dict(),
            "D_opt": self.D_opt.state_dict(),
            "augment_p": float(self.ada.p),
            "ada_rt": float(self.ada.last_rt),
            "pl_mean": self.pl_mean.detach().cpu(),
            "rng": rng,
            "data_fingerprint": self.data.fingerprint,
            "world_size": self.ctx.world,
            "torch_version": str(torch.__version__),
            "saved_at": time.time(),
        }

    def _load_state(self, s: dict) -> None:
        self.G.load_state_dict(s["G"])
        self.D.load_state_dict(s["D"])
        self.G_ema.load_state_dict(s["G_ema"])
        self.G_opt.load_state_dict(s["G_opt"])
        self.D_opt.load_state_dict(s["D_opt"])
        self.ada.p.fill_(float(s["augment_p"]))
        self.ada.last_rt.fill_(float(s.get("ada_rt", 0.0)))
        self.pl_mean.fill_(float(s["pl_mean"]))
        rng = s.get("rng", {})
        gens = rng.get("generators") or []
        if int(rng.get("world", 0)) == self.ctx.world and len(gens) > self.ctx.rank:
            # Generator states are CPU byte tensors even for CUDA generators; map_location may have moved them.
            self.gen.set_state(gens[self.ctx.rank].cpu())
        else:  # a different world size: reseed deterministically from the position in the run
            self.gen.manual_seed(self.cfg.seed * 1009 + 7919 * self.ctx.rank + 1 + self.cur_nimg)
        if s.get("data_fingerprint") not in (None, self.data.fingerprint):
            self.warnings.append(
                f"dataset changed since the checkpoint ({s['data_fingerprint'][:40]} -> {self.data.fingerprint[:40]})"
            )

    def save_checkpoint(self) -> Path | None:
        """Write the training state and G_ema (rank 0); every rank must call it (it gathers RNG states)."""
        state = self.state_dict()
        path = None
        if self.ctx.is_main:
            path = ckpt.save_training_state(
                self.run_dir,
                state,
                cur_nimg=self.cur_nimg,
                keep_last=self.cfg.keep_last,
                network_writer=self._export,
            )
        D_.barrier(self.ctx)
        return path

    def _export(self, path: Path) -> None:
        try:
            from core.checkpoints.native import save_generator
        except ImportError:  # pragma: no cover - native format not installed yet
            return
        save_generator(
            self.G_ema, path, metadata={"kimg": self.cur_nimg / 1000, "source": "stylescope-train"}
        )

    # ------------------------------------------------------------------ one step
    def _z(self, n: int) -> Tensor:
        return torch.randn(n, self.cfg.z_dim, device=self.device, generator=self.gen)

    def _noises(self, n: int) -> list[Tensor]:
        return [
            torch.randn(
                n, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2), device=self.device, generator=self.gen
            )
            for i in range(self.G.num_layers)
        ]

    def _mapped(self, n: int, c: Tensor | None, mapping) -> tuple[Tensor, Tensor]:
        """ws with per-sample style mixing, and the unmixed ws (for w_avg)."""
        cfg, G = self.cfg, self.G
        if cfg.mixing_prob <= 0:
            ws = mapping(self._z(n), c)
            return ws, ws
        z = self._z(2 * n)
        cc = torch.cat([c, c]) if c is not None else None
        ws1, ws2 = mapping(z, cc).chunk(2)
        mix = torch.rand(n, device=self.device, generator=self.gen) < cfg.mixing_prob
        cut = torch.randint(1, G.num_ws, (n,), device=self.device, generator=self.gen)
        cutoff = torch.where(mix, cut, torch.full_like(cut, G.num_ws))
        rows = torch.arange(G.num_ws, device=self.device)[None, :] >= cutoff[:, None]
        return torch.where(rows[:, :, None], ws2, ws1), ws1

    def _augment(self, img: Tensor) -> Tensor:
        if self.cfg.aug == "ada":
            return ada_augment(img, self.ada.p, generator=self.gen)
        if self.cfg.aug == "diffaug":
            return diff_augment(img, generator=self.gen)
        return img

    def _d_pair(self, fake: Tensor, real: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor]:
        """D logits of fakes and reals in one pass of 2n images when the minibatch-stddev groups allow it.

        Minibatch stddev groups samples ``j, j + n/g, j + 2n/g, ...``; interleaving g chunks of
        ``[fakes, reals]`` keeps every group purely fake or purely real, with exactly the groups that two
        separate passes would form, so one larger (faster) pass gives the same logits.
        """
        n = fake.shape[0]
        g = self.D.cfg.mbstd_group_size
        mf = self.memory_format
        if n % g or n < g:
            f = self.D_main(self._augment(fake.contiguous(memory_format=mf)), c).float()
            r = self.D_main(self._augment(real), c).float()
            return f.reshape(n), r.reshape(n)
        both = torch.stack(
            [fake.reshape(g, n // g, *fake.shape[1:]), real.reshape(g, n // g, *real.shape[1:])], dim=1
        )
        both = both.reshape(2 * n, *fake.shape[1:]).contiguous(memory_format=mf)
        cc = None
        if c is not None:
            cc = torch.stack([c.reshape(g, n // g, -1), c.reshape(g, n // g, -1)], dim=1).reshape(2 * n, -1)
        logits = self.D_main(self._augment(both), cc).float().reshape(g, 2, n // g)
        return logits[:, 0].reshape(n), logits[:, 1].reshape(n)

    def _acc(self, **values: Tensor) -> None:
        idx = [STAT_NAMES.index(k) for k in values]
        self.stats[idx] += torch.stack([v.detach().double().reshape(()) for v in values.values()])

    def train_step(self) -> None:
        """One minibatch: D main (+R1), G main (+path length), EMA, ADA. No host synchronisation."""
        cfg, G, Dn, n = self.cfg, self.G, self.D, self.batch
        real, c = next(self.data)
        real = real.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        c = c if self.c_dim else None
        do_r1 = cfg.gamma > 0 and self.step % cfg.d_reg_every == 0
        do_pl = cfg.pl_weight > 0 and self.step % cfg.g_reg_every == 0

        # ---- D main: softplus(D(G(z))) + softplus(-D(x))
        Dn.requires_grad_(True)
        with self.autocast():
            with torch.no_grad():
                ws, _ = self._mapped(n, c, self.mapping)
                fake = self.synthesis(ws, noise=self._noises(n))
            fake_logits, real_logits = self._d_pair(fake, real, c)
            loss_D = d_logistic_loss(real_logits, fake_logits)
        self.D_opt.zero_grad(set_to_none=True)
        loss_D.backward()
        D_.all_reduce_grads(list(Dn.parameters()), self.ctx)
        self.D_opt.step()
        self.ada.accumulate(real_logits)
        self._acc(
            loss_D=loss_D,
            real_logit=real_logits.mean(),
            fake_logit=fake_logits.mean(),
            n_D=torch.ones((), device=self.device),
        )

        # ---- D reg: lazy R1 on (un-augmented) reals, eager D (double backward)
        if do_r1:
            real_r = real.detach().requires_grad_(True)
            with self.autocast():
                r_logits = Dn(self._augment(real_r), c)
            r1 = r1_penalty(real_r, r_logits)
            loss_r1 = r1.mean() * (cfg.gamma / 2) * cfg.d_reg_every + r_logits.float().mean() * 0
            self.D_opt.zero_grad(set_to_none=True)
            loss_r1.backward()
            D_.all_reduce_grads(list(Dn.parameters()), self.ctx)
            self.D_opt.step()
            self._acc(r1=r1.mean(), n_r1=torch.ones((), device=self.device))

        # ---- G main: softplus(-D(G(z))) with style mixing, D frozen (no D weight gradients computed)
        Dn.requires_grad_(False)
        with self.autocast():
            ws, ws_unmixed = self._mapped(n, c, self.mapping)
            fake = self.synthesis(ws, noise=self._noises(n))
            fake_logits = self.D_main(self._augment(fake.contiguous(memory_format=self.memory_format)), c)
            loss_G = g_nonsaturating_loss(fake_logits)
        self.G_opt.zero_grad(set_to_none=True)
        loss_G.backward()
        w_mean = ws_unmixed[:, :1].detach().float().mean(dim=0, keepdim=True)
        update_w_avg(G, self.reduce_mean(w_mean.clone()))
        D_.all_reduce_grads(list(G.parameters()), self.ctx)
        self.G_opt.step()
        self._acc(loss_G=loss_G, n_G=torch.ones((), device=self.device))

        # ---- G reg: path length on a shrunk batch, eager G (double backward)
        if do_pl:
            m = max(n // cfg.pl_batch_shrink, 1)
            pc = c[:m] if c is not None else None
            with self.autocast():
                ws_pl, _ = self._mapped(m, pc, G.mapping)
                img = G.synthesis(ws_pl, noise=self._noises(m))
            penalty, _ = path_length_penalty(
                img,
                ws_pl,
                self.pl_mean,
                decay=cfg.pl_decay,
                generator=self.gen,
                reduce_mean=self.reduce_mean if self.ctx.distributed else None,
            )
            loss_pl = penalty * cfg.pl_weight * cfg.g_reg_every + img[:, 0, 0, 0].float().mean() * 0
            self.G_opt.zero_grad(set_to_none=True)
            loss_pl.backward()
            D_.all_reduce_grads(list(G.parameters()), self.ctx)
            self.G_opt.step()
            self._acc(pl=penalty, pl_mean=self.pl_mean, n_pl=torch.ones((), device=self.device))
        Dn.requires_grad_(True)

        # ---- EMA, counters, ADA
        self.cur_nimg += cfg.batch
        self.step += 1
        beta = ema_beta(cfg.batch, self.cur_nimg, ema_kimg=cfg.ema_kimg, ema_rampup=cfg.ema_rampup)
        update_ema(self.G_ema, G, beta)
        if cfg.aug == "ada" and self.step % cfg.ada_interval == 0:
            self.ada.update(self.reduce_sum if self.ctx.distributed else None)

    # ------------------------------------------------------------------ ticks: sync, status, snapshots
    def read_stats(self, stop_local: bool) -> tuple[dict[str, float], bool]:
        """One host sync: sum stats (and the stop flag) across ranks, reset them; returns (means, stop)."""
        packed = torch.cat(
            [self.stats, torch.tensor([1.0 if stop_local else 0.0], device=self.device, dtype=torch.float64)]
        )
        self.reduce_sum(packed)
        vals = packed.tolist()
        self.stats.zero_()
        raw = dict(zip(STAT_NAMES, vals[:-1], strict=True))
        out: dict[str, float] = {}
        for key, count in (
            ("loss_D", "n_D"),
            ("real_logit", "n_D"),
            ("fake_logit", "n_D"),
            ("loss_G", "n_G"),
            ("r1", "n_r1"),
            ("pl", "n_pl"),
            ("pl_mean", "n_pl"),
        ):
            if raw[count] > 0:
                out[key] = raw[key] / raw[count]
        return out, vals[-1] > 0

    @torch.no_grad()
    def sample_grid(self) -> Tensor:
        """G_ema images of the fixed sample seeds ``[N, 3, R, R]`` (const noise, no truncation)."""
        z = self.sample_z.to(self.device)
        c = None
        if self.c_dim:
            if self.sample_c is None:
                _, lab = next(self.data)
                reps = math.ceil(z.shape[0] / lab.shape[0])
                self.sample_c = lab.repeat(reps, 1)[: z.shape[0]]
            c = self.sample_c
        imgs = [
            self.G_ema(z[i : i + 16], None if c is None else c[i : i + 16], noise_mode="const")
            for i in range(0, len(z), 16)
        ]
        return torch.cat(imgs).float().cpu()

    def save_samples(self) -> Path | None:
        if not self.ctx.is_main:
            return None
        from core.images import make_grid, save_png, to_pil

        grid = make_grid(self.sample_grid(), nrow=self.cfg.sample_grid[1])  # [1, 3, H, W]
        grid = grid[None] if grid.ndim == 3 else grid
        out = self.run_dir / "samples" / f"fakes-{self.cur_nimg:09d}.png"
        out.parent.mkdir(exist_ok=True)
        save_png(to_pil(grid)[0], out, text={"kimg": f"{self.cur_nimg / 1000:.3f}"})
        if self._tb is not None:
            self._tb.add_image("samples", (grid[0].clamp(-1, 1) + 1) / 2, self.cur_nimg)
        return out

    def _tensorboard(self):
        if self._tb is None and self.cfg.tensorboard and self.ctx.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # pragma: no cover
                self.cfg = self.cfg.replace(tensorboard=False)
                return None
            self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
        return self._tb

    # ------------------------------------------------------------------ the loop
    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        self._stop_signal = signal.Signals(signum).name

    def run(
        self,
        *,
        callback: Callable[[dict], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        install_signal_handlers: bool = True,
    ) -> dict:
        """Train until ``config.kimg``, a stop request (signal / ``should_stop``), or divergence.

        Args:
            callback: called with the status dict at every tick (rank 0 only).
            should_stop: polled every step (single process) or tick (multi-process); True saves and stops.
            install_signal_handlers: SIGTERM/SIGINT save a checkpoint and stop (main thread only).

        Returns:
            The final status dict (``state`` is "finished" or "stopped").

        Raises:
            TrainingDivergedError: a loss became NaN/inf (the last good checkpoint is kept).
        """
        cfg, ctx = self.cfg, self.ctx
        self.run_dir.mkdir(parents=True, exist_ok=True)
        main = ctx.is_main
        if main:
            ckpt.clean_temporaries(self.run_dir)
            ckpt.atomic_write_json(self.run_dir / "config.json", cfg.to_dict())
        status = new_status(self.run_dir, total_kimg=cfg.kimg, world_size=ctx.world, device=str(self.device))
        status.update(
            kimg=self.cur_nimg / 1000, cur_nimg=self.cur_nimg, step=self.step, augment_p=float(self.ada.p)
        )
        status["progress"] = min(self.cur_nimg / cfg.total_nimg, 1.0)
        last = ckpt.latest_checkpoint(self.run_dir) if main else None
        status["last_checkpoint"] = last.name if last else None
        status["message"] = "; ".join(self.warnings)
        old_handlers = {}
        if install_signal_handlers:
            with contextlib.suppress(ValueError):  # not the main thread
                for sig in (signal.SIGTERM, signal.SIGINT):
                    old_handlers[sig] = signal.signal(sig, self._on_signal)
        tb = self._tensorboard()
        try:
            if main:
                status["state"] = "running"
                write_status(self.run_dir, status)
                if self.cur_nimg == 0 or not list((self.run_dir / "samples").glob("fakes-*.png")):
                    status["last_sample"] = self._rel(self.save_samples())
                    self._save_reals()
            next_snapshot = (self.cur_nimg // self._snap_nimg() + 1) * self._snap_nimg()
            next_sample = (self.cur_nimg // self._sample_nimg() + 1) * self._sample_nimg()
            t_tick, nimg_tick = time.perf_counter(), self.cur_nimg
            stopping = self.cur_nimg >= cfg.total_nimg
            diverged = None
            while True:
                done = self.cur_nimg >= cfg.total_nimg
                if not done:
                    self.train_step()
                    done = self.cur_nimg >= cfg.total_nimg
                local_stop = self._stop_signal is not None or (should_stop is not None and should_stop())
                snap_due = self.cur_nimg >= next_snapshot
                sample_due = self.cur_nimg >= next_sample
                # Ticks must happen at the same step on every rank: only step/nimg-based conditions, except
                # that a single process may react to its own stop request at once.
                tick = (
                    done
                    or snap_due
                    or sample_due
                    or self.step % cfg.sync_every == 0
                    or (not ctx.distributed and local_stop)
                )
                if not tick:
                    continue
                means, stop = self.read_stats(local_stop)
                stopping = stopping or stop
                if any(not math.isfinite(v) for v in means.values()):
                    diverged = means
                now = time.perf_counter()
                ips = (
                    (self.cur_nimg - nimg_tick) / max(now - t_tick, 1e-9)
                    if self.cur_nimg > nimg_tick
                    else None
                )
                t_tick, nimg_tick = now, self.cur_nimg
                status.update(
                    kimg=self.cur_nimg / 1000,
                    cur_nimg=self.cur_nimg,
                    step=self.step,
                    progress=min(self.cur_nimg / cfg.total_nimg, 1.0),
                    img_per_s=ips,
                    eta_s=(cfg.total_nimg - self.cur_nimg) / ips if ips else None,
                    losses={k: (v if math.isfinite(v) else str(v)) for k, v in means.items()},
                    augment_p=float(self.ada.p),
                    gpu_mem_gb=torch.cuda.max_memory_allocated(self.device) / 2**30
                    if self.device.type == "cuda"
                    else None,
                )
                if diverged is not None:
                    break
                if main:
                    record = {
                        "kimg": self.cur_nimg / 1000,
                        "step": self.step,
                        "img_per_s": ips,
                        "augment_p": float(self.ada.p),
                        **means,
                    }
                    append_metrics(self.run_dir, record)
                    if tb is not None:
                        for k, v in record.items():
                            if k not in ("kimg", "step") and v is not None:
                                tb.add_scalar(f"train/{k}", v, self.cur_nimg)
                if snap_due or done or stopping:
                    path = self.save_checkpoint()
                    if path is not None:
                        status["last_checkpoint"] = path.name
                    next_snapshot = (self.cur_nimg // self._snap_nimg() + 1) * self._snap_nimg()
                if sample_due or done or stopping:  # a stopped run shows where it stopped
                    status["last_sample"] = self._rel(self.save_samples())
                    next_sample = (self.cur_nimg // self._sample_nimg() + 1) * self._sample_nimg()
                if main:
                    write_status(self.run_dir, status)
                    if callback is not None:
                        callback(dict(status))
                if done or stopping:
                    break
            if diverged is not None:
                bad = ", ".join(f"{k}={v}" for k, v in diverged.items() if not math.isfinite(v))
                msg = (
                    f"training diverged at kimg {self.cur_nimg / 1000:.3f}: non-finite loss ({bad}); "
                    f"stopped without saving; the last good checkpoint is {status['last_checkpoint']}"
                )
                status.update(state="failed", message=msg)
                if main:
                    write_status(self.run_dir, status)
                raise TrainingDivergedError(msg)
            finished = self.cur_nimg >= cfg.total_nimg
            status["state"] = "finished" if finished else "stopped"
            reason = "" if finished else f"stopped by {self._stop_signal or 'request'}"
            status["message"] = "; ".join([*self.warnings, reason] if reason else self.warnings)
            status["eta_s"] = 0.0 if finished else status["eta_s"]
            if main:
                write_status(self.run_dir, status)
                if callback is not None:
                    callback(dict(status))
            return status
        except TrainingDivergedError:
            raise
        except BaseException as e:
            if main and status.get("state") not in ("finished", "stopped"):
                status.update(state="failed", message=f"{type(e).__name__}: {str(e)[:500]}")
                with contextlib.suppress(Exception):
                    write_status(self.run_dir, status)
            raise
        finally:
            for sig, h in old_handlers.items():
                signal.signal(sig, h)
            if self._tb is not None:
                self._tb.close()
                self._tb = None

    def _snap_nimg(self) -> int:
        return max(int(round(self.cfg.snapshot_kimg * 1000)), 1)

    def _sample_nimg(self) -> int:
        return max(int(round(self.cfg.sample_kimg * 1000)), 1)

    def _rel(self, p: Path | None) -> str | None:
        return str(p.relative_to(self.run_dir)) if p is not None else None

    def _save_reals(self) -> None:
        from core.images import make_grid, save_png, to_pil

        # A separate stream so showing reals does not shift the training data order.
        n = self.cfg.sample_grid[0] * self.cfg.sample_grid[1]
        try:
            src = make_data_source(
                self.cfg.data, self.cfg.res, self.device, self.cfg.seed, batch=n, num_workers=0
            )
        except Exception:  # injected/unusual data: fall back to one training batch worth of reals
            return
        reals, _ = next(src)
        grid = make_grid(reals.float().cpu()[:n], nrow=self.cfg.sample_grid[1])
        (self.run_dir / "samples").mkdir(exist_ok=True)
        save_png(to_pil(grid[None] if grid.ndim == 3 else grid)[0], self.run_dir / "samples" / "reals.png")


def train(
    config: TrainConfig | None = None,
    run_dir: str | os.PathLike = "runs/run",
    *,
    resume: bool = False,
    kimg: float | None = None,
    device: str | None = None,
    data: DataSource | None = None,
    callback: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    install_signal_handlers: bool = True,
) -> dict:
    """Train (or resume) a run in this process; under torchrun each process calls this.

    Args:
        config: the run's config (ignored when resuming: the checkpoint's config is used).
        run_dir: run directory.
        resume: continue from the run's latest checkpoint (kimg, optimisers, augment p, RNG, ...).
        kimg: on resume, a new (longer) total length.
        device: "cuda" / "cpu" / None (auto).
        data: inject a data source (tests); default built from ``config.data``.
        callback, should_stop, install_signal_handlers: see :meth:`Trainer.run`.

    Returns:
        Final status dict.

    Raises:
        StyleScopeError: bad config, CPU training of a non-tiny config, no checkpoint to resume.
        TrainingDivergedError: NaN/inf loss.
    """
    run_dir = Path(run_dir)
    ctx = D_.init_distributed(device)
    try:
        state = None
        if resume:
            _, state = ckpt.load_latest(run_dir, map_location=ctx.device)
            saved = TrainConfig.from_dict(state["config"])
            config = saved.replace(kimg=kimg) if kimg is not None else saved
        if config is None:
            raise StyleScopeError("train() needs a config (or resume=True)")
        if ctx.device.type == "cpu" and not config.is_tiny():
            raise StyleScopeError(no_cuda_message(config))
        configure_backends(ctx.device)
        trainer = Trainer(config, run_dir, ctx=ctx, data=data, resume_state=state)
        del state
        return trainer.run(
            callback=callback, should_stop=should_stop, install_signal_handlers=install_signal_handlers
        )
    finally:
        D_.shutdown()


def no_cuda_message(config: TrainConfig) -> str:
    from core.training.config import TINY_MAX_CHANNELS, TINY_MAX_RES

    return (
        "No CUDA GPU found; CPU training is limited to tiny configs "
        f"(res <= {TINY_MAX_RES}, widths <= {TINY_MAX_CHANNELS}, w_dim <= 256; this run has res {config.res}, "
        f"widths up to {max(config.widths)}, w_dim {config.w_dim}). Use --preset tiny-cpu, or a machine with an "
        "NVIDIA GPU."
    )
