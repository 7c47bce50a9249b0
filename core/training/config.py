"""Training configuration: one frozen dataclass, stored as JSON in the run directory and in every checkpoint.

Defaults follow StyleGAN2 (Karras et al. 2020, sec. 2-4 and appendix B) and StyleGAN2-ADA (Karras et al.
2020, "Training Generative Adversarial Networks with Limited Data", appendix D): Adam (lr 0.002, betas
(0, 0.99)), R1 gamma from the ADA "auto" heuristic ``0.0002 * res**2 / batch``, path-length weight 2 on a
half batch, lazy regularisation every 16 (D) / 4 (G) minibatches, style mixing 0.9, G EMA half-life 10 kimg
with a 5 % ramp-up, ADA target 0.6 with a 500 kimg adjustment speed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from core.config import from_json_dict, to_json_dict
from core.errors import StyleScopeError
from core.models.stylegan import SYNTHESIS_ARCHITECTURES, DiscriminatorConfig, GeneratorConfig, channel_table
from core.nn.layers import FIR_IMPLS

ARCHS = {"stylegan2": 2, "stylegan1": 1}
AUGMENTS = ("ada", "diffaug", "none")
PRECISIONS = ("bf16", "fp32")
# Width presets as (channel_base, channel_max) in NVIDIA's ``min(base // res, max)`` rule.
# "F" is StyleGAN2 config F (rosinality channel_multiplier=2); the smaller ones suit small datasets/GPUs.
WIDTH_PRESETS: dict[str, tuple[int, int]] = {
    "F": (32768, 512),
    "half": (16384, 512),
    "small": (8192, 256),
    "tiny": (1024, 64),
}
# CPU training is allowed only at or below these sizes (a few steps per second on a laptop).
TINY_MAX_RES = 64
TINY_MAX_CHANNELS = 64


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Resuming rebuilds the run from this alone.

    Args (fields):
        data: ``"synthfaces"``, ``"toy"`` (procedural blobs, for tests/benchmarks) or a folder/zip path.
        res: image resolution (power of two, 8..1024).
        kimg: length of the run in thousands of real images shown to D.
        batch: global batch (split evenly across GPUs).
        arch: ``"stylegan2"`` (modulated convs) or ``"stylegan1"`` (AdaIN style blocks).
        g_architecture: how the generator makes its image (``core.models.SYNTHESIS_ARCHITECTURES``):
            ``"skip"`` sums an RGB output of every resolution (StyleGAN2's default), ``"orig"`` has one RGB
            output at the end (the StyleGAN paper's generator after growing), ``"resnet"`` residual blocks.
        width: preset name in ``WIDTH_PRESETS``; ``channels`` overrides it with explicit widths (4..res px).
        r1_gamma: R1 weight; None = ``0.0002 * res**2 / batch`` (StyleGAN2-ADA "auto").
        ema_kimg / ema_rampup: G_ema half-life in kimg, ramped up over the first ``ema_rampup`` of training
            (None: no ramp-up, as in the StyleGAN2 paper configs).
        aug: ``"ada"`` (adaptive augmentation), ``"diffaug"`` (fixed DiffAugment) or ``"none"``.
        aug_p: initial augmentation probability (ADA adapts it; ignored otherwise).
        sync_every: steps between host synchronisations (loss read-out, NaN check, stop agreement).
        precision: ``"bf16"`` autocast with fp32 master weights, or ``"fp32"`` (TF32 on CUDA).
        fir: how FIR resampling runs under autograd (``core.nn.FIR_IMPLS``); the same function either way,
            only the speed differs (``benchmarks/train.py --fir`` compares them).
        cond: train class-conditionally when the dataset provides labels.
        init: start from these weights (``core.training.warmstart``: a run, a checkpoint, a weights snapshot
            or any generator file); image count, schedule and optimisers start fresh. Empty: random init.
        gpus: processes to launch (one per GPU) when started through the CLI / jobs.
    """

    data: str = "synthfaces"
    res: int = 128
    kimg: float = 1000.0
    batch: int = 32
    arch: str = "stylegan2"
    g_architecture: str = "skip"
    width: str = "half"
    channels: tuple[int, ...] = ()
    z_dim: int = 512
    w_dim: int = 512
    n_mlp: int = 8
    lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float | None = None
    pl_weight: float = 2.0
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    d_reg_every: int = 16
    g_reg_every: int = 4
    mixing_prob: float = 0.9
    ema_kimg: float = 10.0
    ema_rampup: float | None = 0.05
    aug: str = "ada"
    aug_p: float = 0.0
    ada_target: float = 0.6
    ada_kimg: float = 500.0
    ada_interval: int = 4
    snapshot_kimg: float = 50.0
    keep_last: int = 3
    sample_kimg: float = 10.0
    sample_grid: tuple[int, int] = (4, 8)
    sync_every: int = 20
    precision: str = "bf16"
    channels_last: bool = True
    fir: str = "taps"
    compile: bool = False
    seed: int = 0
    cond: bool = False
    init: str = ""
    gpus: int = 1
    num_workers: int = 4
    tensorboard: bool = True
    extra: dict = field(default_factory=dict)  # free-form notes (e.g. "preset" name); never read by the loop

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "sample_grid", tuple(int(b) for b in self.sample_grid))
        res = self.res
        if res < 8 or res > 1024 or res & (res - 1):
            raise StyleScopeError(f"res must be a power of two between 8 and 1024, got {res}")
        if self.arch not in ARCHS:
            raise StyleScopeError(f"arch must be one of {sorted(ARCHS)}, got {self.arch!r}")
        if self.g_architecture not in SYNTHESIS_ARCHITECTURES:
            raise StyleScopeError(
                f"g_architecture must be one of {SYNTHESIS_ARCHITECTURES}, got {self.g_architecture!r}"
            )
        if self.aug not in AUGMENTS:
            raise StyleScopeError(f"aug must be one of {AUGMENTS}, got {self.aug!r}")
        if self.precision not in PRECISIONS:
            raise StyleScopeError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.fir not in FIR_IMPLS:
            raise StyleScopeError(f"fir must be one of {FIR_IMPLS}, got {self.fir!r}")
        if not self.channels and self.width not in WIDTH_PRESETS:
            raise StyleScopeError(f"width must be one of {sorted(WIDTH_PRESETS)}, got {self.width!r}")
        if self.channels and len(self.channels) != int(math.log2(res)) - 1:
            raise StyleScopeError(
                f"channels needs {int(math.log2(res)) - 1} widths (4..{res} px), got {len(self.channels)}"
            )
        if self.kimg <= 0 or self.batch < 1 or self.gpus < 1:
            raise StyleScopeError("kimg, batch and gpus must be positive")
        if self.batch % self.gpus:
            raise StyleScopeError(f"batch {self.batch} must be divisible by gpus {self.gpus}")
        if self.pl_batch_shrink < 1 or self.d_reg_every < 1 or self.g_reg_every < 1 or self.sync_every < 1:
            raise StyleScopeError("pl_batch_shrink, d_reg_every, g_reg_every and sync_every must be >= 1")
        if not 0.0 <= self.mixing_prob <= 1.0 or not 0.0 <= self.aug_p <= 1.0:
            raise StyleScopeError("mixing_prob and aug_p must be in [0, 1]")
        if self.snapshot_kimg <= 0 or self.sample_kimg <= 0 or self.keep_last < 1:
            raise StyleScopeError("snapshot_kimg and sample_kimg must be positive, keep_last >= 1")

    # ------------------------------------------------------------------ derived values
    @property
    def widths(self) -> tuple[int, ...]:
        """Channel widths at 4, 8, ..., res px."""
        if self.channels:
            return self.channels
        base, cmax = WIDTH_PRESETS[self.width]
        return channel_table(self.res, channel_base=base, channel_max=cmax)

    @property
    def gamma(self) -> float:
        """Effective R1 weight (the ADA "auto" heuristic when ``r1_gamma`` is None)."""
        return float(self.r1_gamma) if self.r1_gamma is not None else 0.0002 * self.res**2 / self.batch

    @property
    def total_nimg(self) -> int:
        return int(round(self.kimg * 1000))

    def is_tiny(self) -> bool:
        """Small enough to train on a CPU (tests, smoke runs)."""
        return self.res <= TINY_MAX_RES and max(self.widths) <= TINY_MAX_CHANNELS and self.w_dim <= 256

    def generator_config(self, c_dim: int = 0) -> GeneratorConfig:
        return GeneratorConfig(
            img_resolution=self.res,
            z_dim=self.z_dim,
            w_dim=self.w_dim,
            c_dim=c_dim,
            n_mlp=self.n_mlp,
            channels=self.widths,
            version=ARCHS[self.arch],
            architecture=self.g_architecture,
        )

    def discriminator_config(self, c_dim: int = 0) -> DiscriminatorConfig:
        return DiscriminatorConfig(img_resolution=self.res, channels=self.widths, c_dim=c_dim)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        return to_json_dict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        extra = d.pop("extra", None)  # free-form notes stay a dict
        cfg = from_json_dict(cls, d, what="training", error=StyleScopeError)
        return cfg if extra is None else dataclasses.replace(cfg, extra=dict(extra))

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def tiny_config(**overrides) -> TrainConfig:
    """A CPU-sized config (32 px, 16 channels, 32-d latents) for tests and smoke runs."""
    base = dict(
        data="toy",
        res=32,
        kimg=0.064,
        batch=8,
        channels=(16, 16, 16, 16),
        z_dim=32,
        w_dim=32,
        n_mlp=2,
        snapshot_kimg=0.032,
        sample_kimg=0.032,
        sample_grid=(2, 4),
        sync_every=2,
        precision="fp32",
        channels_last=False,
        num_workers=0,
        tensorboard=False,
    )
    base.update(overrides)
    return TrainConfig(**base)


# Named presets for the CLI / Train tab (memory and time estimates live in docs/training.md).
PRESETS: dict[str, dict] = {
    "tiny-cpu": dict(res=32, width="tiny", z_dim=64, w_dim=64, n_mlp=2, batch=8, precision="fp32"),
    "small-data": dict(width="small", aug="ada", batch=32, ema_kimg=10.0),
    "paper-F": dict(width="F", batch=32, aug="none"),
    "fast": dict(width="half", batch=64, compile=True),
}
