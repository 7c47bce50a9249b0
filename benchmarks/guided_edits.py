"""Guided (per-face) edits vs the shipped SVM directions: edit success and side effects per attribute.

For every binary attribute of the classifier: ``--samples`` fresh latents (seeds from 10_000_000, the same
stream as the directions report's evaluation), ``core.directions.guided.guided_edit`` flips each face's label
while keeping every unrelated attribute (related = |label correlation| > 0.15 on a 2000-sample collection, as
in ``fit_all``). Success = fraction whose label flipped; side effect = mean |change in probability| of each
unrelated attribute, max over them. One JSON line per attribute, then a summary line; with ``--report`` the
SVM numbers of a directions report are printed beside.

    python benchmarks/guided_edits.py --device cuda --samples 200 \\
        --report assets/directions/synthfaces128-stylegan2.report.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.checkpoints import load_generator  # noqa: E402
from core.directions import collect, load_scorer, w_covariance  # noqa: E402
from core.directions.evaluate import related_attributes  # noqa: E402
from core.directions.guided import guided_edit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "assets/models/synthfaces128-stylegan2.safetensors"))
    ap.add_argument("--classifier", default=str(ROOT / "assets/models/synthfaces-classifier.safetensors"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--attributes", default="", help="comma list (default: all binary attributes)")
    ap.add_argument("--report", default="", help="directions report JSON whose SVM numbers to print beside")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    G = load_generator(args.model, device=args.device)
    scorer = load_scorer(args.classifier, device=args.device)
    attrs = [a for a in args.attributes.split(",") if a] or list(scorer.binary)
    related = related_attributes(collect(G, scorer, 2000, seed=0).scores, scorer.attributes)
    fresh = collect(G, scorer, args.samples, seed=10_000_000)
    ws = fresh.ws(G.num_ws)
    cov = w_covariance(G, device=args.device)
    svm = json.loads(Path(args.report).read_text())["attributes"] if args.report else {}
    names = list(scorer.attributes)
    rows = []
    for a in attrs:
        t0 = time.perf_counter()
        keep = [b for b in scorer.binary if b != a and b not in related[a]]
        r = guided_edit(G, scorer, ws, a, covariance=cov, keep=keep, steps=args.steps)
        change = (r.scores - r.before).abs()[:, [names.index(b) for b in keep]].mean(0)
        row = {
            "attribute": a,
            "edit_success": round(float(r.reached.float().mean()), 3),
            "side_effect_max": round(float(change.max()), 3),
            "side_effect_mean": round(float(change.mean()), 3),
            "worst_side_effect": keep[int(change.argmax())],
            "seconds": round(time.perf_counter() - t0, 1),
        }
        if a in svm:
            row["svm_edit_success_conditional"] = round(svm[a]["edit_success_conditional"], 3)
            row["svm_side_effect_conditional_max"] = round(svm[a]["side_effect_conditional_max"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {
        "bench": "guided_edits",
        "samples": args.samples,
        "steps": args.steps,
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "edit_success_median": statistics.median(r["edit_success"] for r in rows),
        "edit_success_min": min(r["edit_success"] for r in rows),
        "attributes_success_ge_0.9": sum(r["edit_success"] >= 0.9 for r in rows),
        "side_effect_max": max(r["side_effect_max"] for r in rows),
        "side_effect_mean": round(statistics.mean(r["side_effect_mean"] for r in rows), 3),
        "attributes": len(rows),
        "torch": torch.__version__,
    }
    if svm:
        s = [r["svm_edit_success_conditional"] for r in rows if "svm_edit_success_conditional" in r]
        summary["svm_conditional_edit_success_median"] = statistics.median(s) if s else None
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
