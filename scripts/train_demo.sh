#!/usr/bin/env bash
# Reproduce the bundled demo model (checkpoints/demo.pt): make the data, train (resuming from the
# run folder's newest snapshot when there is one), then strip the newest snapshot to config + G_ema.
#
#   bash scripts/train_demo.sh [KIMG]        (default: the kimg stated in checkpoints/demo.md)
#
# On a 2-core CPU the demo preset takes ~7-8 min per kimg with one torch thread; stop it any time
# (Ctrl-C writes a snapshot) and run the script again to continue.
set -euo pipefail
kimg="${1:-40}"
data=data/demo_objects.zip
run=runs/demo_objects
[ -f "$data" ] || bash scripts/make_demo_data.sh "$data"

OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" python -m core.train --data "$data" --outdir "$run" --preset demo \
    --kimg "$kimg" --train.metrics '[]' --train.workers 0 --train.snapshot_ticks 2 --resume auto
python -m core.bundle --ckpt "$run" --out checkpoints/demo.pt --note "scripts/train_demo.sh $kimg"
