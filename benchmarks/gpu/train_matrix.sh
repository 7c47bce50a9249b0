#!/usr/bin/env bash
# Device-machine script: time the training step over the choices that decide throughput, one JSON line each
# (FIR implementation x torch.compile x batch), config-F widths at 64 px and 256 px (issue targets) and the
# default SynthFaces widths at 128 px. Lines go to stdout and to $OUT/train-matrix.jsonl. Run it BEFORE
# training starts (it needs the GPU to itself).
# Usage: bash benchmarks/gpu/train_matrix.sh [STEPS] [eager|compile|all]
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
S=${1:-32}
WHICH=${2:-all}
J=${OUT:-/tmp}/train-matrix.jsonl
run() { python -u benchmarks/train.py "$@" --steps $S --warmup 8 2>>${OUT:-/tmp}/train-matrix.err | tee -a $J; }
if [ "$WHICH" != compile ]; then
    run --res 64 64 256 256 --batch 64 256 32 64 --fir taps fused
    run --widths default --res 128 128 --batch 64 256 --fir taps fused
fi
if [ "$WHICH" != eager ]; then
    run --res 64 64 256 --batch 64 256 64 --fir fused --compile
fi
