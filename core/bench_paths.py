"""`python -m core.bench render`: the inference render paths of G.render side by side.

Per model and resolution, one frame (batch 1, the prior's mean camera, cached tri-planes) through:

  dense        the dense coarse + importance path, decoder unfolded (skip_empty and fold_decoder
               off): the path every inference render took before empty-space skipping
  dense+fold   the same with the decoder's first layer folded into the planes
  skip         the default: empty-space skipping through the per-latent occupancy grid (dense
               again where the latent is fog)
  skip 1st     the skipping path's first frame of a latent: the occupancy grid and the folded
               planes are built inside the timing (the cache is cleared first)

The paths alternate within each repeat (dense, dense+fold, skip, skip 1st, dense, ...), so a
change of machine load hits them alike; the table gives the median ms per frame, the ratio of the
dense path's median to each path's, and the PSNR of each image against a 192 + 192-sample dense
render of the same frame (the accuracy reference; PSNR on the [-1, 1] range, peak-to-peak 2).
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import time

import torch

from . import cameras as camlib
from .benchutil import device_name, git_commit
from .checkpoint import load_generator
from .networks import plane_cache

PATHS = ("dense", "dense+fold", "skip", "skip 1st")
REFERENCE_SAMPLES = (192, 192)


def psnr(a, b, peak: float = 2.0) -> float:
    """PSNR in dB of two images (tensors or arrays) whose value range spans `peak` (2 for [-1, 1],
    255 for uint8)."""
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(peak * peak / mse)


def _render_fn(G, planes, cams, res, nc, nf, path, sync):
    rc = G.cfg.render

    def run():
        if path == "skip 1st":
            plane_cache.clear()
        fold, rc.fold_decoder = rc.fold_decoder, path != "dense"
        try:
            out = G.render(planes, cams, resolution=res, num_coarse=nc, num_fine=nf,
                           skip_empty=path.startswith("skip"))
        finally:
            rc.fold_decoder = fold
        sync()
        return out["image"]
    return run


@torch.no_grad()
def bench_paths(args: argparse.Namespace, resolutions: list[int], device: torch.device) -> int:
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    print(f"- device: {device_name(device)}\n- torch: {torch.__version__}\n- commit: {git_commit()}\n"
          f"- command: python -m core.bench {shlex.join(args.argv)}\n- repeats: {args.repeats}, paths alternated; "
          f"ms = median; x = dense ms / path ms; PSNR against a {REFERENCE_SAMPLES[0]}+{REFERENCE_SAMPLES[1]}-sample "
          "dense render\n")
    for spec in [s for s in (args.ckpt or f"random:{args.preset}").split(",") if s]:
        G, info = load_generator(spec, device)
        g, rc = G.cfg.generator, G.cfg.render
        nc = args.coarse or rc.num_coarse
        nf = rc.num_fine if args.fine is None else args.fine
        z = torch.randn(1, g.z_dim, generator=torch.Generator().manual_seed(args.seed)).to(device)
        c = torch.eye(g.c_dim, device=device)[:1] if g.c_dim else None  # class 0 (conditional models)
        planes = G.planes(G.mapping(z, c, psi=0.7))
        cams = camlib.from_config(G.cfg.camera, device=device)
        grid = G.prepare(planes)
        state = "fog: skip keeps the dense path" if grid.fog else f"{grid.fraction:.1%} of {grid.res}^3 cells occupied"
        print(f"**{info['source']}** (preset {G.cfg.name}, {nc}+{nf} samples, skipping "
              f"{max(4, round(rc.skip_sample_ratio * (nc + nf)))}; {state})\n")
        print("| res | " + " | ".join(f"{p} ms | x | PSNR" for p in PATHS) + " |")
        print("|---:|" + "---:|---:|---:|" * len(PATHS))
        for res in resolutions:
            ref = G.render(planes, cams, resolution=res, num_coarse=REFERENCE_SAMPLES[0],
                           num_fine=REFERENCE_SAMPLES[1], skip_empty=False)["image"]
            fns = {p: _render_fn(G, planes, cams, res, nc, nf, p, sync) for p in PATHS}
            images = {p: fn() for p, fn in fns.items()}  # warm-up, and the images the PSNR is of
            times = {p: [] for p in PATHS}
            for _ in range(args.repeats):
                for p, fn in fns.items():
                    t0 = time.perf_counter()
                    fn()
                    times[p].append(time.perf_counter() - t0)
            med = {p: statistics.median(v) for p, v in times.items()}
            cells = [f"{med[p] * 1e3:.0f} | {med['dense'] / med[p]:.2f} | {psnr(images[p], ref):.2f}" for p in PATHS]
            print(f"| {res}x{res} | " + " | ".join(cells) + " |", flush=True)
        print()
    return 0
