#!/usr/bin/env bash
# Device-machine script: stop the default-model runs (SIGTERM saves + exports), convert G_ema to fp16 for
# transport, copy compact results to $OUT, then run the GPU benchmarks.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
R=/tmp/runs
# Patterns anchored at the start of the command line, so they never match a shell that merely mentions them.
GAN='^python -m core.training'
CLS='^python -m core.cli classifier train'
pkill -TERM -f "$GAN"
# The classifier treats its first SIGINT as "finish this step, evaluate, save": stop it early but keep its work.
pkill -INT -f "$CLS"
for i in $(seq 60); do pgrep -f "$GAN" >/dev/null || break; sleep 1; done
for i in $(seq ${CLS_WAIT:-180}); do pgrep -f "$CLS" >/dev/null || break; sleep 1; done
python - <<'PY'
import json, os, shutil
from pathlib import Path
import torch
from core.checkpoints.native import load_native, save_generator
out = Path(os.environ["OUT"])
for run in sorted(Path("/tmp/runs").iterdir()):
    arch = run.name  # stylegan2, stylegan1, or e.g. stylegan1-orig (train_default.sh's run folders)
    if not (run / "status.json").exists():
        continue
    nets = sorted(run.glob("network-*.safetensors"))
    st = json.loads((run / "status.json").read_text())
    print(arch, st["state"], st["kimg"], st.get("img_per_s"), [n.name for n in nets][-1:])
    if nets:
        G = load_native(nets[-1])
        save_generator(G, out / f"{arch}.safetensors", dtype=torch.float16,
                       metadata={"kimg": st["kimg"], "dataset": "synthfaces", "trained_on": torch.cuda.get_device_name()})
    samples = sorted((run / "samples").glob("fakes-*.png"))
    if samples:
        shutil.copy(samples[-1], out / f"{arch}-fakes-last.png")
    shutil.copy(run / "metrics.jsonl", out / f"{arch}-metrics.jsonl")
PY
# Weights snapshots (G, D, G_ema in bf16, no optimiser) to continue next time with INIT_<arch>=...: split into
# parts small enough to come back (join them with cat).
for arch in ${WEIGHTS:-stylegan2}; do  # run folder names
    [ -d $R/$arch ] && python -m core.cli train --export-weights $R/$arch --out /tmp/w-$arch.safetensors \
        --dtype bfloat16 && split -b 15M -d /tmp/w-$arch.safetensors $OUT/w-$arch.safetensors.part
done
# Each classifier run comes back as <run>.safetensors, <run>-card.md and <run>-run.json (its report).
for c in classifier classifier2; do
    [ -f $R/$c/synthfaces-classifier.safetensors ] || continue
    cp $R/$c/synthfaces-classifier.safetensors $OUT/$c.safetensors
    cp $R/$c/CLASSIFIER_CARD.md $OUT/$c-card.md 2>/dev/null
    cp $R/$c.log $OUT/$c-run.json
done
# Full evaluation (10k per set) of both generators, with the shipped classifier so that the numbers compare with
# the model card's (EVAL_CLS=new: with the classifier of this run instead, which always comes back above).
CLS=assets/models/synthfaces-classifier.safetensors
[ "${EVAL_CLS:-shipped}" = new ] && [ -f $R/classifier/synthfaces-classifier.safetensors ] && CLS=$R/classifier/synthfaces-classifier.safetensors
for arch in $(cd $R && ls); do
    [ -f $OUT/$arch.safetensors ] && python -m core.cli evaluate --model $OUT/$arch.safetensors --classifier $CLS \
        --n ${EVAL_N:-10000} --device cuda --json --out $OUT/eval-$arch.json 2>&1 | tail -3
done
# Directions for every binary attribute of the new StyleGAN2 model (the set shipped in assets/directions/);
# SKIP_DIRECTIONS=1 leaves them out (an intermediate stop whose model is continued on the next machine).
[ "${SKIP_DIRECTIONS:-0}" = 1 ] || [ ! -f $OUT/stylegan2.safetensors ] || python -m core.cli directions fit-all --model $OUT/stylegan2.safetensors \
    --classifier $CLS --samples ${DIR_SAMPLES:-10000} --eval-samples ${DIR_EVAL:-500} --device cuda --json \
    --out $OUT/directions > $OUT/directions-fit.json 2>&1; tail -c 300 $OUT/directions-fit.json; echo
# Only a few files come back from the device: bundle everything except the weights into one archive.
(cd $OUT && tar czf results.tar.gz --remove-files *.png *.json *.jsonl *.md directions 2>/dev/null; ls -la $OUT)
[ "${SKIP_RENDER:-0}" = 1 ] || python benchmarks/render.py --suite gpu --iters 30 ${RENDER_FLAGS:-} 2>&1 | tee $OUT/bench-render.jsonl
