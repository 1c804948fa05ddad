#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, as one command: the GPU kernel tests, the mesh occlusion on
# CUDA, `core.bench kernels --size real` with the two end-to-end targets, then (optionally) a short
# run of demo-model training resumed from checkpoints/demo.pt. Runs on any machine with a CUDA GPU
# and the project's environment (scripts/setup.sh --dev). The checks' time limits add up to 14
# minutes; training adds TRAIN_MINUTES.
#
#   bash scripts/gpu_check.sh [TRAIN_MINUTES]      (default 5; 0 skips training)
#
# Training needs the demo dataset in data/ (git-ignored): make it first with
# `bash scripts/make_demo_data.sh` (it downloads pybullet's wheel from PyPI, so run it where PyPI is
# reachable and copy data/ over if the GPU machine has no network).
#
# Writes to ${OUT:-runs/gpu}:
#   checks.md     device, the GPU kernel tests, `core.bench kernels --size real` (ops + end to end)
#   train.log     the training run's log;  stats.jsonl, fakes.png: its stats and newest sample grid
#   demo.pt.part-aa, -ab   the re-bundled demo model in 15 MiB parts (the bundle is ~18 MiB), for
#                 transfers with a per-file size limit; join them with
#                 `cat demo.pt.part-* > checkpoints/demo.pt` and regenerate the model card
# Each step has its own time limit and a failing step does not stop the next.
set -uo pipefail
cd "$(dirname "$0")/.."
train_min="${1:-5}"
out="${OUT:-runs/gpu}"
mkdir -p "$out"
log="$out/checks.md"
step() { echo; echo "## $*"; echo; }

{
  step "device"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" 2>&1
  git log -1 --format='commit %h %s' 2>/dev/null || true

  step "pytest tests/test_kernels_gpu.py (Triton vs reference at real sizes, forward and gradients)"
  timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_kernels_gpu.py 2>&1 | tail -25

  step "pytest tests/test_visibility.py (the mesh occlusion on CUDA = CPU), its time per grid size"
  timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_visibility.py 2>&1 | tail -3
  timeout 180 python3 -c "
import time, torch
from core.geometry.visibility import occlusion
for r in (256, 512, 1024):
    s = torch.rand(r, r, r, device='cuda') * 40
    occlusion(s[:64, :64, :64], (0.6 / r,) * 3); torch.cuda.synchronize(); t = time.time()
    occlusion(s, (0.6 / r,) * 3); torch.cuda.synchronize()
    print(f'occlusion {r}^3 on cuda: {time.time() - t:.2f} s (with the copy back)')
" 2>&1

  step "python -m core.bench kernels --device cuda --size real"
  timeout 300 python3 -m core.bench kernels --device cuda --size real --repeats 5 2>&1
} > "$log" 2>&1
echo "checks done: $log"

if [ "$train_min" != "0" ]; then
  run=runs/demo_gpu
  resume=(--resume checkpoints/demo.pt)
  ls "$run"/network-snapshot-*.pt >/dev/null 2>&1 && resume=(--resume auto)
  # SIGTERM at the limit: the trainer writes a snapshot and exits cleanly
  timeout -s TERM -k 60 "$((train_min * 60))" python3 -m core.train --data data/demo_objects.zip --outdir "$run" \
      --preset demo --device cuda --kimg 1000 --train.metrics '[]' --train.workers 4 --train.snapshot_ticks 5 --train.ada_kimg 100 --train.rgb_range_weight 1 --train.outside_density_weight 1 \
      "${resume[@]}" > "$out/train.log" 2>&1
  cp "$run/stats.jsonl" "$out/" 2>/dev/null
  newest=$(ls "$run"/samples/fakes*.png 2>/dev/null | tail -1)
  [ -n "$newest" ] && cp "$newest" "$out/fakes.png"
  if python3 -m core.bundle --ckpt "$run" --out "$run/demo.pt" --training-state \
      --note "scripts/gpu_check.sh $train_min" >> "$out/train.log" 2>&1; then
    split -b 15M "$run/demo.pt" "$out/demo.pt.part-"
  fi
  echo "training done: $out/train.log"
fi
