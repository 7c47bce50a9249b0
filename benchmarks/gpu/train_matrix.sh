#!/usr/bin/env bash
# Device-machine script: time the training step over the choices that decide throughput, one JSON line each
# (FIR implementation x torch.compile x batch), config-F widths at 64 px (issue target) and the default
# SynthFaces widths at 128 px. Lines go to stdout and to $OUT/train-matrix.jsonl. Run it BEFORE training
# starts (it needs the GPU to itself).  Usage: bash benchmarks/gpu/train_matrix.sh [STEPS]
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
S=${1:-32}
J=${OUT:-/tmp}/train-matrix.jsonl
for fir in taps folded; do
    for c in "" --compile; do
        python -u benchmarks/train.py --res 64 64 --batch 64 256 --fir $fir $c --steps $S --warmup 8 2>/dev/null | tee -a $J
    done
done
python -u benchmarks/train.py --widths default --res 128 --batch 64 --fir taps folded --steps $S --warmup 8 2>/dev/null | tee -a $J
