"""Fast inference for generators on GPUs: bf16 autocast, channels_last, torch.compile and CUDA graphs.

``FastSynthesis(G)`` wraps a loaded generator for repeated rendering at fixed batch sizes (the explorer and
benchmarks). It never changes results beyond the precision it is asked for: fp32 keeps TF32 off, so its output
matches eager float32; bf16 trades about 40 dB PSNR for speed (see benchmarks/render.py for the measured value).

Why these choices: at batch 1 the 1024 px generator is launch-bound (about 200 kernels), which CUDA graphs
remove; at larger batches the convolutions dominate, where bf16 tensor cores and channels_last (NHWC, the
layout cuDNN's fastest kernels use) pay.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import weakref

import torch
from torch import Tensor

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclasses.dataclass(frozen=True)
class FastOptions:
    precision: str = "bf16"
    channels_last: bool = True
    compile: bool = False
    cuda_graphs: bool = True
    noise_mode: str = "const"
    # Fold the up-sampling FIR into the transposed conv (one denser conv) or run it as taps after it (a quarter
    # of the FLOPs, one more pass that Inductor fuses). None: fold in eager mode, not when compiled -- the
    # faster choice of each on an H100 (config-F, bf16, graphs: compiled 1.55 / 7.98 ms at batch 1 / 8
    # unfolded vs 2.54 / 9.66 ms folded).
    fold_fir: bool | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")
        if self.noise_mode not in ("const", "none"):
            raise ValueError(
                "FastSynthesis supports noise_mode 'const' or 'none' (random noise breaks graph replay)"
            )


class FastSynthesis:
    """Callable ``ws [N, num_ws, w_dim] -> img [N, C, R, R]`` (float32) with the GPU fast path applied.

    One CUDA graph is captured per batch size on first use; later calls copy ``ws`` into the graph's static
    input and replay it. On CPU the options reduce to plain eager float32 inference.
    """

    def __init__(self, G: torch.nn.Module, options: FastOptions | None = None):
        self.options = options or FastOptions()
        self.device = G.w_avg.device
        self.is_cuda = self.device.type == "cuda"
        self.G = copy.deepcopy(G).eval().requires_grad_(False)
        low = PRECISIONS[self.options.precision]
        if self.is_cuda:
            for t in [*self.G.parameters(), *self.G.buffers()]:
                if t.ndim >= 4 and low != torch.float32:
                    # Conv weights, the constant input and the noise maps: autocast would re-cast them on every
                    # call (frozen tensors are not in its cache). Styles, demodulation and biases stay fp32.
                    t.data = t.data.to(low)
                if t.ndim == 4 and self.options.channels_last:  # Module.to(memory_format=) refuses 5-D
                    t.data = t.data.contiguous(memory_format=torch.channels_last)
            if self.options.channels_last:
                self.G.memory_format = torch.channels_last
            fold = self.options.fold_fir if self.options.fold_fir is not None else not self.options.compile
            for m in self.G.modules():  # a private copy: the choice never leaks into other renders
                if hasattr(m, "fold_fir"):
                    m.fold_fir = fold
        self._fn = self._eager
        if self.options.compile:
            # Default mode: Inductor fuses the elementwise work (modulation, noise, bias, activation) around
            # cuDNN's convolutions; autotuning modes spend minutes and gain nothing measurable here.
            self._fn = torch.compile(self._eager, dynamic=False)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, Tensor, Tensor]] = {}
        self._lock = threading.Lock()

    def _eager(self, ws: Tensor) -> Tensor:
        dtype = PRECISIONS[self.options.precision]
        use_autocast = self.is_cuda and dtype != torch.float32
        with torch.autocast(self.device.type, dtype=dtype, enabled=use_autocast):
            return self.G.synthesis(ws, noise_mode=self.options.noise_mode).float()

    @torch.inference_mode()
    def __call__(self, ws: Tensor) -> Tensor:
        ws = ws.to(self.device, torch.float32)
        if not (self.is_cuda and self.options.cuda_graphs):
            return self._fn(ws)
        n = ws.shape[0]
        with self._lock:  # a graph's input and output buffers are shared: one caller at a time (UI threads)
            if n not in self._graphs:
                self._graphs[n] = self._capture(ws)
            graph, static_in, static_out = self._graphs[n]
            static_in.copy_(ws)
            graph.replay()
            return static_out.clone()

    def _capture(self, ws: Tensor) -> tuple[torch.cuda.CUDAGraph, Tensor, Tensor]:
        static_in = ws.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up: cuDNN autotuning and compile happen outside the graph
                self._fn(static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self._fn(static_in)
        return graph, static_in, static_out


def psnr(a: Tensor, b: Tensor, *, data_range: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB between two image batches in [-1, 1] (clamped, as pixels are)."""
    mse = (a.float().clamp(-1, 1) - b.float().clamp(-1, 1)).square().mean().item()
    return float("inf") if mse == 0 else 10.0 * torch.log10(torch.tensor(data_range**2 / mse)).item()


# ---------------------------------------------------------------------------- process-wide render fast path
FAST_PRESETS: dict[str, FastOptions | None] = {
    "off": None,
    "fp32": FastOptions(precision="fp32", channels_last=False),  # CUDA graphs only: eager fp32 pixels
    "bf16": FastOptions(),
    "bf16-compile": FastOptions(compile=True),
}
_render_options: FastOptions | None = None
_render_cache: weakref.WeakKeyDictionary[torch.nn.Module, dict[str, FastSynthesis]] = (
    weakref.WeakKeyDictionary()
)
_render_lock = threading.Lock()


def set_render_fast_path(preset: str | FastOptions | None) -> None:
    """Choose the fast path that ``core.render`` uses for generators on CUDA (``launch.py --fast``).

    ``"off"`` (default) renders eagerly in float32. The others trade exactness for speed on GPUs only: bf16
    output differs from fp32 by about 42 dB PSNR (``benchmarks/render.py``); recipes stay reproducible on the
    same device and setting. Unknown preset names raise ``ValueError``.
    """
    global _render_options
    if isinstance(preset, str):
        if preset not in FAST_PRESETS:
            raise ValueError(f"fast path must be one of {sorted(FAST_PRESETS)}, got {preset!r}")
        preset = FAST_PRESETS[preset]
    with _render_lock:
        _render_options = preset
        _render_cache.clear()


def render_fast_path(G: torch.nn.Module, noise_mode: str = "const") -> FastSynthesis | None:
    """The fast synthesis of ``G`` for ``noise_mode`` ("const" or "none") under the current setting, or None
    (setting off, or ``G`` not on CUDA). Built on first use and kept while ``G`` lives."""
    options = _render_options
    if options is None or G.w_avg.device.type != "cuda":
        return None
    options = dataclasses.replace(options, noise_mode=noise_mode)
    with _render_lock:
        per_mode = _render_cache.setdefault(G, {})
        fast = per_mode.get(noise_mode)
        if fast is None or fast.options != options:
            fast = per_mode[noise_mode] = FastSynthesis(G, options)
        return fast
