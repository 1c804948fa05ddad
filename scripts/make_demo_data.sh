#!/usr/bin/env bash
# The demo model's dataset: seven everyday objects from pybullet_data (zlib licence), rendered from
# 128 cameras each, uniformly on the whole sphere, 64x64, white background (the Megascans protocol at
# demo size). Each view is labelled with its object (class 0-6, names in dataset.json's class_names):
# the demo model is class-conditional. Needs only PyPI: the pybullet wheel is downloaded, not
# installed, and 7 meshes are taken out of it.
#
#   bash scripts/make_demo_data.sh [OUT.zip]      (default data/demo_objects.zip)
set -euo pipefail
out="${1:-data/demo_objects.zip}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python -m pip download --quiet --no-deps --dest "$work/wheel" pybullet==3.2.7
wheel="$(ls "$work"/wheel/pybullet-*.whl)"
src="$work/src"
mkdir -p "$src"
# Only what the seven objects need: mesh, material, texture and the .urdf that gives a colour.
python -m zipfile -e "$wheel" "$src"
pd="$src/pybullet_data"
m="$work/meshes"
mkdir -p "$m/lego" "$m/torus"
cp "$pd"/{duck.obj,duck.mtl,duckCM.png,duck_vhacd.urdf} "$m/"
cp "$pd"/{teddy2_VHACD_CHs.obj,teddy_vhacd.urdf} "$m/"
cp "$pd"/{soccerball.obj,soccerball.mtl,soccerball.urdf,colors16.png} "$m/"
cp "$pd"/{bunny.obj,cube.png} "$m/"
cp "$pd"/objects/{mug.obj,mug.urdf} "$m/"
cp "$pd"/lego/{lego.obj,lego.urdf} "$m/lego/"
cp "$pd"/torus/{torus_textured.obj,torus_textured.mtl} "$m/torus/"

python -m core.dataset_tool render --meshes "$m" --out "$out" --views 128 --res 64 --fov 30 --seed 0 \
    --class-names bunny,duck,lego,mug,soccer_ball,teddy,torus
