"""Benchmarks; prints a markdown table.

    python -m core.bench render [--device auto|cpu|cuda] [--preset demo] [--res 128,256,512]
        [--repeats 3] [--coarse N] [--fine N] [--ckpt SPEC[,SPEC...]] [--threads N] [--memory]
    python -m core.bench kernels [--size small|real] [--device auto|cpu|cuda] [--repeats 3] [--no-compile]

render: the inference paths (dense, folded, empty-space skipping, a latent's first frame) side by
side with their speed-up and PSNR against a 192 + 192-sample reference (core/bench_paths.py).
render --memory: one frame (batch 1, the prior's mean camera) from CACHED tri-planes -- mapping and
synthesis run once, outside the timing; only G.render (rays, tri-plane sampling, decoder MLP,
importance sampling, compositing) is timed. Per resolution: one warm-up render, then --repeats
timed renders; reports the median ms per frame, points/s = R*R*(coarse+fine)/seconds, and peak
memory: on CUDA torch.cuda.max_memory_allocated (reset per resolution; includes weights and
planes); on CPU the peak process RSS (sampled every ~5 ms from /proc/self/statm during the warm-up
and timed renders) minus the RSS just before them.

    python -m core.bench mesh [--device auto|cpu|cuda] [--ckpt SPEC[,SPEC...]] [--res 256,512] [--level L]

kernels: each render op of core.kernels per implementation; see core/bench_kernels.py.

mesh: seconds to extract one mesh (seed 0, psi 0.7, the tri-plane cube) from cached tri-planes:
the density grid plus PyMCubes marching cubes (no cleanup, colours or files), once through our
separable path (core.geometry.fastgrid) and once through the straightforward path (chunked plain
G.query calls + PyMCubes); the two grids are compared (max abs difference). Level: --level, or the
median of the grid (a surface always exists; the level does not change the grid time). The
"occlusion" column is the visibility surface's extra step (core.geometry.visibility, on --device).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time

import torch

from . import cameras as camlib
from .benchutil import RssPeak, device_name, git_commit, rss_bytes
from .checkpoint import load_generator
from .errors import UserError, cli_main
from .networks.generator import chunk_size
from .runtime import resolve_device


@torch.no_grad()
def bench_render(args: argparse.Namespace) -> int:
    try:
        resolutions = [int(r) for r in args.res.split(",") if r.strip()]
    except ValueError:
        resolutions = []
    if (not resolutions or min(resolutions) < 2 or args.repeats < 1 or (args.coarse is not None and args.coarse < 2)
            or (args.fine is not None and args.fine < 0)):
        raise UserError("need --res like 128,256,512 (each >= 2), --repeats >= 1, --coarse >= 2, --fine >= 0")
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.memory:
        from .bench_paths import bench_paths
        return bench_paths(args, resolutions, device)
    cuda = device.type == "cuda"
    G, info = load_generator(args.ckpt or f"random:{args.preset}", device)
    args.coarse = args.coarse or G.cfg.render.num_coarse
    args.fine = G.cfg.render.num_fine if args.fine is None else args.fine
    g, n = G.cfg.generator, args.coarse + args.fine
    z = torch.randn(1, g.z_dim, generator=torch.Generator().manual_seed(0)).to(device)
    c = torch.zeros(1, g.c_dim, device=device) if g.c_dim else None  # class 0 (conditional models)
    planes = G.planes(G.mapping(z, c))  # the cached tri-planes: computed once, never timed
    cams = camlib.from_config(G.cfg.camera, device=device)
    mem_col = "peak CUDA alloc MiB" if cuda else "peak RSS +MiB (CPU)"
    print(f"- device: {device_name(device)}\n- torch: {torch.__version__}\n- commit: {git_commit()}\n"
          f"- model: {info['source']} (preset {G.cfg.name}, planes {tuple(planes.shape[1:])}, "
          f"{args.coarse}+{args.fine} samples, chunk {chunk_size(G.cfg.render, device)} rays)\n"
          f"- command: python -m core.bench {shlex.join(args.argv)}\n\n"
          f"| res | ms/frame (median of {args.repeats}) | Mpoints/s | {mem_col} |\n|---:|---:|---:|---:|")

    def render(res: int) -> None:
        G.render(planes, cams, resolution=res, num_coarse=args.coarse, num_fine=args.fine)
        if cuda:
            torch.cuda.synchronize(device)

    for res in resolutions:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        with RssPeak() as rss:
            base_rss = rss_bytes()
            render(res)  # warm-up
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                render(res)
                times.append(time.perf_counter() - t0)
        sec = statistics.median(times)
        peak = torch.cuda.max_memory_allocated(device) if cuda else rss.peak - base_rss
        print(f"| {res}x{res} | {sec * 1e3:.1f} | {res * res * n / sec / 1e6:.2f} | {peak / 2**20:.0f} |",
              flush=True)
    return 0


@torch.no_grad()
def bench_mesh(args: argparse.Namespace) -> int:
    import mcubes
    import numpy as np

    from .geometry.fastgrid import separable_grid
    from .geometry.grid import DEFAULT_CHUNK_POINTS, GPU_CHUNK_POINTS, Box, density_grid, generator_field
    from .geometry.visibility import occlusion_grid
    try:
        resolutions = [int(r) for r in args.res.split(",") if r.strip()]
    except ValueError:
        resolutions = []
    if not resolutions or min(resolutions) < 2:
        raise UserError("need --res like 256,512")
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    chunk = GPU_CHUNK_POINTS if cuda else DEFAULT_CHUNK_POINTS
    specs = [s for s in (args.ckpt or f"random:{args.preset}").split(",") if s]
    print(f"- device: {device_name(device)}\n- torch: {torch.__version__}\n- commit: {git_commit()}\n"
          f"- command: python -m core.bench {shlex.join(args.argv)}\n- chunk: {chunk} points per call\n\n"
          "| model | res | separable grid s | occlusion s | mcubes s | total s | plain G.query grid s | plain total s "
          "| speed-up (grid) | max abs diff |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    for spec in specs:
        G, info = load_generator(spec, device)
        g = G.cfg.generator
        z = torch.randn(1, g.z_dim, generator=torch.Generator().manual_seed(0)).to(device)
        c = torch.zeros(1, g.c_dim, device=device) if g.c_dim else None
        planes = G.planes(G.mapping(z, c, psi=0.7))
        box = Box.cube(g.cube_scale)
        for res in resolutions:
            t0 = time.perf_counter()
            fast = separable_grid(G, planes, box, res, chunk)
            sync()
            t_grid = time.perf_counter() - t0
            level = args.level if args.level is not None else float(np.median(fast.values))
            t0 = time.perf_counter()
            occlusion_grid(fast, device)  # the visibility surface's extra step (not in "total")
            sync()
            t_occ = time.perf_counter() - t0
            t0 = time.perf_counter()
            mcubes.marching_cubes(fast.values, level)
            t_mc = time.perf_counter() - t0
            if args.plain_max and res <= args.plain_max:
                t0 = time.perf_counter()
                plain = density_grid(generator_field(G, planes), box, res, chunk, device=device)
                sync()
                t_plain = time.perf_counter() - t0
                t0 = time.perf_counter()
                mcubes.marching_cubes(plain.values, level)
                t_plain_total = t_plain + time.perf_counter() - t0
                diff = float(np.abs(plain.values - fast.values).max())
                del plain
                cols = f"{t_plain:.1f} | {t_plain_total:.1f} | {t_plain / t_grid:.1f}x | {diff:.1e}"
            else:
                cols = "- | - | - | -"
            print(f"| {info['source']} | {res}^3 | {t_grid:.1f} | {t_occ:.1f} | {t_mc:.1f} | {t_grid + t_mc:.1f} | {cols} |",
                  flush=True)
            del fast
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m core.bench", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser("render", help="time G.render of one frame from cached tri-planes")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda")
    r.add_argument("--preset", default="demo", help="model preset for random:PRESET (default demo)")
    r.add_argument("--ckpt", default=None, help="checkpoint file, run folder or random:PRESET (default random:PRESET)")
    r.add_argument("--res", default="128,256,512", help="comma-separated resolutions (default 128,256,512)")
    r.add_argument("--repeats", type=int, default=3, help="timed renders per resolution (default 3)")
    r.add_argument("--coarse", type=int, default=None, help="coarse samples per ray (default: the model's)")
    r.add_argument("--fine", type=int, default=None, help="importance samples per ray (default: the model's)")
    r.add_argument("--seed", type=int, default=0, help="latent seed (default 0)")
    r.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    r.add_argument("--memory", action="store_true",
                   help="instead of the paths table: throughput and peak memory of the default path")
    r.set_defaults(func=bench_render)
    k = sub.add_parser("kernels", help="time the render ops (core.kernels): reference, torch.compile, triton")
    k.add_argument("--device", default="auto", help="auto | cpu | cuda")
    k.add_argument("--size", default="small", choices=["small", "real"],
                   help="small: one 64^2-plane item, 1024 rays x 96 samples; real: a training batch and a 512^2 frame")
    k.add_argument("--repeats", type=int, default=3, help="timed calls per row (default 3)")
    k.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    k.add_argument("--part", default="all", choices=["all", "ops", "e2e"],
                   help="the op table, the end-to-end table (viewer frame, training G step) or both (default)")
    k.set_defaults(func=_bench_kernels)
    m = sub.add_parser("mesh", help="time mesh extraction (grid + marching cubes): separable vs plain G.query")
    m.add_argument("--device", default="auto", help="auto | cpu | cuda")
    m.add_argument("--preset", default="demo", help="model preset for random:PRESET (default demo)")
    m.add_argument("--ckpt", default=None, help="comma-separated checkpoints / run folders / random:PRESET")
    m.add_argument("--res", default="256,512", help="comma-separated grid resolutions (default 256,512)")
    m.add_argument("--level", type=float, default=None, help="iso-level (default: the grid's median)")
    m.add_argument("--plain-max", type=int, default=512,
                   help="time the plain path only up to this resolution (0 = never; default 512)")
    m.set_defaults(func=bench_mesh)
    return p


def _bench_kernels(args: argparse.Namespace) -> int:
    from .bench_kernels import bench_kernels
    if args.repeats < 1:
        raise UserError("--repeats must be >= 1")
    return bench_kernels(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    return args.func(args)


def cli() -> int:
    """The console-script entry point (pyproject.toml): errors as one line, exit codes."""
    return cli_main(main)()


if __name__ == "__main__":
    sys.exit(cli())
