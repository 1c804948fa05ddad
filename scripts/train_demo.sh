#!/usr/bin/env bash
# Reproduce (or continue) the bundled demo model, checkpoints/demo.pt: make the data, train, then
# bundle the newest snapshot (config + G_ema for viewing, plus G, D and the counters so that a later
# run can carry on from the copy in the repository).
#
#   bash scripts/train_demo.sh [KIMG]        (default 300)
#
# Where training starts from: the run folder's newest snapshot if there is one (an exact resume),
# else checkpoints/demo.pt if it holds a training state (continues from its weights and counters;
# Adam moments restart), else a fresh start. The model is class-conditional (--generator.c_dim 7,
# one class per object of the data); an unconditional bundle (an older demo model) gets the
# labels added as it is loaded (core/training/conditioning.py).
# Each class of the data is one object, so the run adds the reconstruction term
# (--train.recon_weight 1000: each fake is compared with a real view of its class from the same
# camera; docs/training.md, "The reconstruction term"), with mirroring off and the two penalties raised with it
# (--train.rgb_range_weight 1000 --train.outside_density_weight 10).
# On a 2-core CPU with PROCS=2 the demo preset takes ~4-5 min per kimg; stop it any time (Ctrl-C
# writes a snapshot) and run this again.
# Watch it (and stop it) from the viewer: python run_viewer.py --attach runs/demo_recon
# PROCS=2 runs two gloo processes of one thread each (both cores of a 2-core CPU; on a GPU machine
# it is the number of GPUs); DEVICE=cpu|cuda|auto (default auto).
# --train.ada_kimg 100: the demo preset's ADA speed, also for bundles made before it was its default.
set -euo pipefail
cd "$(dirname "$0")/.."
kimg="${1:-300}"
data=data/demo_objects.zip
run=runs/demo_recon
bundle=checkpoints/demo.pt
# (re)made when missing, or when made before it carried the class labels (the images are the same)
if ! [ -f "$data" ] || ! python -c "import json,sys,zipfile; sys.exit(0 if 'labels' in json.loads(zipfile.ZipFile('$data').read('dataset.json')) else 1)"; then
  bash scripts/make_demo_data.sh "$data"
fi

resume=(--resume auto)
if ! ls "$run"/network-snapshot-*.pt >/dev/null 2>&1 && [ -f "$bundle" ] \
   && python -c "import sys,torch; sys.exit(0 if 'D' in torch.load('$bundle', map_location='cpu', weights_only=True) else 1)"; then
  resume=(--resume "$bundle")
fi
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" python -m core.train --data "$data" --outdir "$run" --preset demo \
    --gpus "${PROCS:-1}" --device "${DEVICE:-auto}" --kimg "$kimg" --train.metrics '[]' --train.workers 0 --train.snapshot_ticks 2 --train.ada_kimg 100 \
    --generator.c_dim 7 --train.recon_weight 1000 --train.rgb_range_weight 1000 --train.outside_density_weight 10 \
    --train.mirror false "${resume[@]}"
# --viewer-class 1: `python run_viewer.py` opens at the duck (class 1), the object the model learnt first
python -m core.bundle --ckpt "$run" --out "$bundle" --training-state --viewer-class 1 --note "scripts/train_demo.sh $kimg"
