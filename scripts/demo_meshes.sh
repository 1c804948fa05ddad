#!/usr/bin/env bash
# The demo objects' meshes: seven everyday objects from pybullet_data (zlib licence) copied into DIR
# (bunny, duck, lego, mug, soccer ball, teddy, torus; with the materials, textures and .urdf colours
# they need). Needs only PyPI: the pybullet wheel is downloaded, not installed, and unpacked in a
# temporary folder. Used by make_demo_data.sh and make_3dgp_demo_data.sh.
#
#   bash scripts/demo_meshes.sh DIR
set -euo pipefail
m="${1:?usage: bash scripts/demo_meshes.sh DIR}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python -m pip download --quiet --no-deps --dest "$work/wheel" pybullet==3.2.7
wheel="$(ls "$work"/wheel/pybullet-*.whl)"
src="$work/src"
mkdir -p "$src"
python -m zipfile -e "$wheel" "$src"
pd="$src/pybullet_data"
mkdir -p "$m/lego" "$m/torus"
cp "$pd"/{duck.obj,duck.mtl,duckCM.png,duck_vhacd.urdf} "$m/"
cp "$pd"/{teddy2_VHACD_CHs.obj,teddy_vhacd.urdf} "$m/"
cp "$pd"/{soccerball.obj,soccerball.mtl,soccerball.urdf,colors16.png} "$m/"
cp "$pd"/{bunny.obj,cube.png} "$m/"
cp "$pd"/objects/{mug.obj,mug.urdf} "$m/"
cp "$pd"/lego/{lego.obj,lego.urdf} "$m/lego/"
cp "$pd"/torus/{torus_textured.obj,torus_textured.mtl} "$m/torus/"
