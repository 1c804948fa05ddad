#!/usr/bin/env bash
# The demo model's dataset: seven everyday objects from pybullet_data (zlib licence), rendered from
# 128 cameras each, uniformly on the whole sphere, 64x64, white background (the Megascans protocol at
# demo size). Each view is labelled with its object (class 0-6, names in dataset.json's class_names):
# the demo model is class-conditional. Needs only PyPI: the pybullet wheel is downloaded, not
# installed, and 7 meshes are taken out of it (scripts/demo_meshes.sh).
#
#   bash scripts/make_demo_data.sh [OUT.zip]      (default data/demo_objects.zip)
set -euo pipefail
out="${1:-data/demo_objects.zip}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

m="$work/meshes"
bash "$(dirname "$0")/demo_meshes.sh" "$m"

python -m core.dataset_tool render --meshes "$m" --out "$out" --views 128 --res 64 --fov 30 --seed 0 \
    --class-names bunny,duck,lego,mug,soccer_ball,teddy,torus
