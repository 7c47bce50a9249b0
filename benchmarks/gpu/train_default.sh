#!/usr/bin/env bash
# Device-machine script: start training the shipped default models in the background (setsid) and report.
# Usage (repo root on the GPU box):  bash benchmarks/gpu/train_default.sh start [SECONDS]|status
# ARCHS picks the generators (default "stylegan2 stylegan1"); FIR (taps|depthwise|folded) and COMPILE=1 pick the
# fastest step measured by train_matrix.sh. The attribute classifier trains beside them (CLS_STEPS steps,
# default 12000; CLS_STEPS=0 skips it; CLS_ARGS adds options, e.g. "--init FILE --seed 3 --minutes 12"; CLS2_ARGS
# starts a second one).
# BATCH (default 64), LR (default 0.002) and GAMMA (R1 weight; default 0.0002 * res^2 / batch) set the GAN runs'
# batch, Adam learning rate and R1 weight; EMA_KIMG the G_ema half-life (default 10). INIT_stylegan2 /
# INIT_stylegan1 warm-start a run (--init: a weights snapshot from finish.sh or a generator file); SEED picks
# the data stream (use a new one when continuing, so the run sees new images). An ARCHS entry "stylegan1:orig"
# picks the generator architecture too (run folder stylegan1-orig; INIT_stylegan1_orig warm-starts it).
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
R=/tmp/runs
case "${1:-status}" in
start)
    pkill -f '^python -m core.training'; pkill -f '^python -m core.cli classifier train'; sleep 2; rm -rf $R
    mkdir -p $R
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python - <<'PY'
import os
from pathlib import Path
from core.training.config import TrainConfig
for entry in os.environ.get("ARCHS", "stylegan2 stylegan1").split():
    arch, _, g_arch = entry.partition(":")
    name = f"{arch}-{g_arch}" if g_arch else arch
    cfg = TrainConfig(
        g_architecture=g_arch or "skip",
        data="synthfaces", res=128, kimg=20000, batch=int(os.environ.get("BATCH", 64)), arch=arch,
        lr=float(os.environ.get("LR", 0.002)), ema_kimg=float(os.environ.get("EMA_KIMG", 10)),
        r1_gamma=float(os.environ["GAMMA"]) if os.environ.get("GAMMA") else None,
        channels=(256, 256, 256, 128, 64, 32), z_dim=256, w_dim=256, n_mlp=8,
        aug="none", snapshot_kimg=100, sample_kimg=100, keep_last=2, precision="bf16",
        compile=os.environ.get("COMPILE") == "1", fir=os.environ.get("FIR", "taps"),
        seed=int(os.environ.get("SEED", 0)), init=os.environ.get(f"INIT_{name.replace('-', '_')}", ""), num_workers=0, extra={"preset": "synthfaces128-default"},
    )
    d = Path(f"/tmp/runs/{name}")
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(cfg.to_json())
PY
    for a in $(echo ${ARCHS:-stylegan2 stylegan1} | tr ':' '-'); do
        setsid nohup python -m core.training --run-dir $R/$a --device cuda > $R/$a.log 2>&1 < /dev/null &
    done
    mkdir -p $R/classifier
    [ "${CLS_STEPS:-12000}" = 0 ] || setsid nohup python -m core.cli classifier train --device cuda --steps ${CLS_STEPS:-12000} --batch 256 ${CLS_ARGS:-} \
        --out $R/classifier/synthfaces-classifier.safetensors --json > $R/classifier.log 2>&1 < /dev/null &
    # A second classifier run beside the first (CLS2_ARGS, e.g. another seed or learning rate); finish.sh brings
    # both back and the better one is shipped.
    if [ -n "${CLS2_ARGS:-}" ]; then
        mkdir -p $R/classifier2
        setsid nohup python -m core.cli classifier train --device cuda --steps ${CLS_STEPS:-12000} --batch 256 $CLS2_ARGS \
            --out $R/classifier2/synthfaces-classifier.safetensors --json > $R/classifier2.log 2>&1 < /dev/null &
    fi
    sleep ${2:-120}
    ;&
status)
    for a in $(echo ${ARCHS:-stylegan2 stylegan1} | tr ':' '-'); do
        echo "== $a"; tail -n 3 $R/$a.log
        python -c "import json;s=json.load(open('$R/$a/status.json'));print({k:s.get(k) for k in ('state','kimg','img_per_s','eta_s','losses','gpu_mem_gb','message')})" 2>&1 | tail -2
    done
    for c in classifier classifier2; do [ -f $R/$c.log ] && { echo "== $c"; tail -c 400 $R/$c.log; echo; }; done
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
    ;;
esac
