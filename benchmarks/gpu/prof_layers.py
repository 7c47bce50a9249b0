"""Device-machine microbenchmark: each up-sampling style conv of the 1024 px config-F generator, timed alone.

For every resolution (input ``H`` -> output ``2H``) and batch, bf16 channels_last, prints one JSON line with
the median milliseconds of

* ``transposed``: the 3x3 stride-2 transposed conv followed by the [1,3,3,1] filter as taps (the unfolded path),
* ``transposed_only``: the transposed conv alone (what the filter costs is the difference),
* ``folded_transposed``: one stride-2 transposed conv with the filter folded in (6x6 kernel),
* ``polyphase``: the folded conv regrouped by phase: a 3x3 stride-1 conv to 4 * O channels + pixel_shuffle,
* ``conv3x3``: the block's second (non-up-sampling) 3x3 conv at the output resolution, for scale,

each also compiled (``torch.compile``), where Inductor fuses the filter taps and the shuffle into neighbours.
Used to decide per layer whether GPU inference folds the filter (``FastOptions.fold_fir``).

    python benchmarks/gpu/prof_layers.py --batch 1 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.models.stylegan import channel_table  # noqa: E402
from core.nn.layers import (  # noqa: E402
    fir_fold,
    make_kernel,
    polyphase_up_weight,
    separable_taps,
    upfirdn2d,
)


def median_ms(fn, iters: int = 20) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return round(statistics.median(times), 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    table = {4 * 2**i: c for i, c in enumerate(channel_table(1024))}  # resolution -> channels
    kernel = (make_kernel((1, 3, 3, 1)) * 4).to(dev)
    taps = separable_taps((1, 3, 3, 1), 4)
    for res in sorted(table):
        if res < 8:
            continue
        cin, cout, h = table[res // 2], table[res], res // 2
        w = torch.randn(cin, cout, 3, 3, device=dev, dtype=torch.bfloat16)  # transposed layout [I, O, k, k]
        w2 = torch.randn(cout, cout, 3, 3, device=dev, dtype=torch.bfloat16).contiguous(
            memory_format=torch.channels_last
        )
        folded = fir_fold(w, kernel)
        poly, before, _ = polyphase_up_weight(folded, 2)
        poly = poly.contiguous(memory_format=torch.channels_last)
        for batch in args.batch:
            x = torch.randn(batch, cin, h, h, device=dev, dtype=torch.bfloat16).contiguous(
                memory_format=torch.channels_last
            )
            y = torch.randn(batch, cout, 2 * h, 2 * h, device=dev, dtype=torch.bfloat16).contiguous(
                memory_format=torch.channels_last
            )

            def transposed(x=x, w=w):
                return upfirdn2d(F.conv_transpose2d(x, w, stride=2), kernel, pad=(1, 1), taps=taps)

            def transposed_only(x=x, w=w):
                return F.conv_transpose2d(x, w, stride=2)

            def folded_transposed(x=x, f=folded):
                return F.conv_transpose2d(x, f, stride=2, padding=2)

            def polyphase(x=x, p=poly, b=before):
                return F.pixel_shuffle(F.conv2d(x, p, padding=b), 2)

            def conv3x3(y=y, w2=w2):
                return F.conv2d(y, w2, padding=1)

            fns = {
                "transposed": transposed,
                "transposed_only": transposed_only,
                "folded_transposed": folded_transposed,
                "polyphase": polyphase,
                "conv3x3": conv3x3,
            }
            rec = {"bench": "up_layer", "res": res, "cin": cin, "cout": cout, "batch": batch}
            with torch.inference_mode():
                for name, fn in fns.items():
                    rec[name] = median_ms(fn)
                    if not args.no_compile and name in ("transposed", "polyphase"):
                        # The fused epilogue as the generator has it: + noise, + bias, leaky ReLU.
                        def epilogue(fn=fn):
                            return F.leaky_relu(fn() + 0.1, 0.2) * 1.41

                        rec[name + "_epilogue_compiled"] = median_ms(torch.compile(epilogue))
            rec["device"] = torch.cuda.get_device_name()
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
