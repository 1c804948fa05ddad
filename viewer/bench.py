"""Viewer benchmark: frames per second while orbiting, time to first frame, full-quality refine time.

    python -m viewer.bench [--ckpt random:demo] [--res 128,256] [--frames 12] [--device auto]

It drives the viewer's own render path (RenderEngine with its tri-plane cache, the worker's
adaptive resolution) without a window, with torch on cpu_count - 1 threads as in the viewer, and
prints a table (device, threads and commit included) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time

import torch

from core.checkpoint import load_generator
from core.errors import cli_main
from core.runtime import resolve_device

from .camera import preset
from .latent import LatentSpec
from .render_worker import AdaptiveResolution, reserve_gui_core
from .rendering import LoadedModel, Quality, RenderEngine, RenderRequest, ViewSpec, full_quality


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=5).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def orbit_fps(engine: RenderEngine, model: LoadedModel, res: int, frames: int, samples_mult: float) -> float:
    """Frames per second rendering `frames` orbit steps (5 degrees apart) at res^2, planes cached."""
    cam = preset("mean", model.cfg.camera)
    view = ViewSpec(cam, "rgb", res)
    full = full_quality(model, view)
    q = Quality(res, max(4, round(full.num_coarse * samples_mult)), round(full.num_fine * samples_mult), "preview")
    spec = LatentSpec.from_seed(0)
    engine.render(RenderRequest(model, spec, view), q)  # warm-up (planes into the cache)
    t0 = time.perf_counter()
    for k in range(frames):
        c = cam.orbited(math.radians(5 * (k + 1)))
        engine.render(RenderRequest(model, spec, ViewSpec(c, "rgb", res), interactive=True), q)
    return frames / (time.perf_counter() - t0)


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m viewer.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", default="random:demo")
    p.add_argument("--res", default="128,256", help="comma-separated full-quality resolutions")
    p.add_argument("--frames", type=int, default=12, help="orbit steps per measurement")
    p.add_argument("--device", default="auto")
    p.add_argument("--target-fps", type=float, default=12.0, help="adaptive resolution's target")
    args = p.parse_args(argv)
    threads = reserve_gui_core()
    device = resolve_device(args.device)
    t0 = time.perf_counter()
    G, info = load_generator(args.ckpt, device)
    model = LoadedModel(G, info, args.ckpt, device)
    engine = RenderEngine()
    adaptive = AdaptiveResolution(1 / args.target_fps)
    view = ViewSpec(preset("mean", model.cfg.camera), "rgb", 256)
    first = engine.render(RenderRequest(model, LatentSpec.from_seed(0), view),
                          adaptive.choose(full_quality(model, view)))
    first_s = time.perf_counter() - t0
    adaptive.observe(first.quality, first.render_s)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({threads} torch threads)"
    print(f"model {args.ckpt} (preset {model.cfg.name}), device {name}, commit {_commit()}")
    print(f"time to first frame (load + planes + {first.quality.resolution}^2 preview): {first_s:.2f} s")
    print("| res | orbit fps, half samples | orbit fps, full samples | full-quality refine (s) |")
    print("|---|---|---|---|")
    for res in (int(r) for r in args.res.split(",")):
        fps_half = orbit_fps(engine, model, res, args.frames, 0.5)
        fps_full = orbit_fps(engine, model, res, args.frames, 1.0)
        v = ViewSpec(preset("mean", model.cfg.camera), "rgb", res)
        t = time.perf_counter()
        engine.render(RenderRequest(model, LatentSpec.from_seed(0), v), full_quality(model, v))
        print(f"| {res}^2 | {fps_half:.2f} | {fps_full:.2f} | {time.perf_counter() - t:.2f} |")
        sys.stdout.flush()
    for _ in range(3):  # let the adaptive controller settle on this device
        q = adaptive.choose(full_quality(model, view))
        r = engine.render(RenderRequest(model, LatentSpec.from_seed(0), view, interactive=True), q)
        adaptive.observe(q, r.render_s)
    q = adaptive.choose(full_quality(model, view))
    fps = orbit_fps(engine, model, q.resolution, args.frames, 0.5)
    print(f"adaptive resolution at a {args.target_fps:.0f} fps target: {q.resolution}^2 previews, {fps:.1f} fps")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(main)())
