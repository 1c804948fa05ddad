"""Viewer benchmark: frames per second while orbiting, time to first frame, full-quality refine time,
and the baked GL preview's frame rate and accuracy.

    python -m viewer.bench [--ckpt random:demo] [--res 128,256] [--frames 12] [--device auto]
    python -m viewer.bench --ckpt demo --part baked [--baked-res 128,256,512] [--bake-res 128]

The neural part (viewer/bench_neural.py) drives the viewer's own render path (RenderEngine with its
tri-plane cache, the worker's adaptive resolution) without a window, empty-space skipping against
the dense path; the baked part (viewer/bench_baked.py) opens an
OpenGL 3.3 window (on a machine without a display: under `xvfb-run -a`). Torch runs on
cpu_count - 1 threads as in the viewer. Each part prints a table (device, threads and commit
included) for docs/benchmarks.md.
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

from . import bench_neural
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
    spec = bench_neural.latent(model, 0)
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
    p.add_argument("--part", choices=["all", "neural", "baked"], default="all", help="which measurements")
    p.add_argument("--baked-res", default="128,256,512", help="comma-separated baked preview resolutions")
    p.add_argument("--bake-res", type=int, default=128, help="baked grid nodes per side")
    p.add_argument("--repeats", type=int, default=3, help="alternating repeats per resolution (both parts)")
    p.add_argument("--baked-frames", type=int, default=40, help="baked part: GUI frames timed per repeat")
    p.add_argument("--psnr-views", type=int, default=4, help="baked part: views compared with G.render")
    args = p.parse_args(argv)
    threads = reserve_gui_core()
    device = resolve_device(args.device)
    if args.part != "neural":
        from core.kernels import preload_triton
        preload_triton(device)  # before any GL context: Triton imported after Mesa's LLVM crashes the process
    t0 = time.perf_counter()
    G, info = load_generator(args.ckpt, device)
    model = LoadedModel(G, info, args.ckpt, device)
    engine = RenderEngine()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({threads} torch threads)"
    print(f"model {args.ckpt} (preset {model.cfg.name}), device {name}, commit {_commit()}")
    if args.part in ("all", "neural"):
        _neural(args, model, engine, t0)
    if args.part in ("all", "baked"):
        _baked(args, model, engine)
    return 0


def _baked(args, model: LoadedModel, engine: RenderEngine) -> None:
    from . import bench_baked
    from .runner import display_problem

    problem = display_problem()
    if problem:
        print(f"baked preview: skipped, {problem} (run under `xvfb-run -a`)", file=sys.stderr)
        return
    g = model.cfg.generator
    suggested = model.info.get("meta", {}).get("viewer_class")
    cls = (suggested if isinstance(suggested, int) and 0 <= suggested < g.c_dim else 0) if g.c_dim else None
    planes, w, _ = engine.planes(model, LatentSpec.from_seed(0, 1.0, cls))
    out = bench_baked.run(model, planes, w, [int(r) for r in args.baked_res.split(",")], args.bake_res,
                          args.repeats, args.baked_frames, args.psnr_views)
    bench_baked.print_table(out, f"{args.ckpt} (seed 0{'' if cls is None else f', class {cls}'})")


def _neural(args, model: LoadedModel, engine: RenderEngine, t0: float) -> None:
    adaptive = AdaptiveResolution(1 / args.target_fps)
    view = ViewSpec(preset("mean", model.cfg.camera), "rgb", 256)
    first = engine.render(RenderRequest(model, bench_neural.latent(model, 0), view),
                          adaptive.choose(full_quality(model, view)))
    first_s = time.perf_counter() - t0
    adaptive.observe(first.quality, first.render_s)
    print(f"time to first frame (load + planes + {first.quality.resolution}^2 preview): {first_s:.2f} s")
    bench_neural.run(engine, model, [int(r) for r in args.res.split(",")], args.frames, args.repeats,
                     first.quality.resolution)
    for _ in range(3):  # let the adaptive controller settle on this device
        q = adaptive.choose(full_quality(model, view))
        r = engine.render(RenderRequest(model, bench_neural.latent(model, 0), view, interactive=True), q)
        adaptive.observe(q, r.render_s)
    q = adaptive.choose(full_quality(model, view))
    fps = orbit_fps(engine, model, q.resolution, args.frames, 0.5)
    print(f"adaptive resolution at a {args.target_fps:.0f} fps target: {q.resolution}^2 previews, {fps:.1f} fps")


if __name__ == "__main__":
    sys.exit(cli_main(main)())
