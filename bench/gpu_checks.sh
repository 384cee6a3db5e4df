#!/usr/bin/env bash
# The GPU figures the receiver issues ask for, in one run of a few minutes (random full-size weights):
#   Stream-DiffVSR  s/frame, fps, first-frame latency, peak memory at 320x180 -> 1280x720, 10/100/300 frames
#   STAR            peak memory over 2 sampling steps of 72 frames at 426x240 -> x4 (ours), and s/step at 32
#                   frames, ours and (with STAR_AUTHORS) the authors' sampler
# STAR_AUTHORS=<a checkout of NJU-PCALab/STAR> [STAR_STUBS=<stand-ins>] times the authors' sampler beside ours.
# Usage: bash bench/gpu_checks.sh [outdir]   (tables are printed and written to outdir, default .)
set -euo pipefail
out="${1:-.}"
mkdir -p "$out"
here="$(cd "$(dirname "$0")" && pwd)"
python "$here/stream.py" --config released --lr 320x180 --frames 10 100 300 --device cuda --dtype fp16 \
    | tee "$out/stream_gpu.txt"
extra=()
if [ -n "${STAR_AUTHORS:-}" ]; then
    extra=(--authors "$STAR_AUTHORS")
    if [ -n "${STAR_STUBS:-}" ]; then extra+=(--stubs "$STAR_STUBS"); fi
fi
python "$here/star.py" --config released --lr 426x240 --frames 72 --steps 2 --device cuda --dtype fp16 \
    --offload none | tee "$out/star_gpu_72.txt"
python "$here/star.py" --config released --lr 426x240 --frames 32 --steps 2 --device cuda --dtype fp16 \
    --offload none "${extra[@]}" | tee "$out/star_gpu_32.txt"
