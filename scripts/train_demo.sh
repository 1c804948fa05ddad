#!/usr/bin/env bash
# Reproduce (or continue) the bundled demo model, checkpoints/demo.pt: make the data, train, then
# bundle the newest snapshot (config + G_ema for viewing, plus G, D and the counters so the next
# session can carry on from the copy in the repository).
#
#   bash scripts/train_demo.sh [KIMG]        (default 200: the demo preset's length)
#
# Where training starts from: the run folder's newest snapshot if there is one (an exact resume),
# else checkpoints/demo.pt if it holds a training state (continues from its weights and counters;
# Adam moments restart), else a fresh start. On a 2-core CPU the demo preset takes ~7-8 min per
# kimg with one torch thread; stop it any time (Ctrl-C writes a snapshot) and run this again.
# Watch it (and stop it) from the viewer: python run_viewer.py --attach runs/demo_objects
# PROCS=2 runs two gloo processes of one thread each (both cores of a 2-core CPU; on a GPU machine
# it is the number of GPUs); DEVICE=cpu|cuda|auto (default auto).
# --train.ada_kimg 100, --train.rgb_range_weight 1 and --train.outside_density_weight 1: the demo
# preset's ADA speed and its two penalties, also for bundles made before they were its defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
kimg="${1:-200}"
data=data/demo_objects.zip
run=runs/demo_objects
bundle=checkpoints/demo.pt
[ -f "$data" ] || bash scripts/make_demo_data.sh "$data"

resume=(--resume auto)
if ! ls "$run"/network-snapshot-*.pt >/dev/null 2>&1 && [ -f "$bundle" ] \
   && python -c "import sys,torch; sys.exit(0 if 'D' in torch.load('$bundle', map_location='cpu', weights_only=True) else 1)"; then
  resume=(--resume "$bundle")
fi
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" python -m core.train --data "$data" --outdir "$run" --preset demo \
    --gpus "${PROCS:-1}" --device "${DEVICE:-auto}" --kimg "$kimg" --train.metrics '[]' --train.workers 0 --train.snapshot_ticks 2 --train.ada_kimg 100 --train.rgb_range_weight 1 --train.outside_density_weight 1 "${resume[@]}"
python -m core.bundle --ckpt "$run" --out "$bundle" --training-state --note "scripts/train_demo.sh $kimg"
