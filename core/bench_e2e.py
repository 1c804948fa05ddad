"""The end-to-end half of `python -m core.bench kernels`: the two targets (docs/kernels.md), timed through the
generator API on a randomly initialised model of a real preset.

  viewer frame: G.render of one frame from cached planes (no autograd), --size real: ffhq512 at
      512^2 with 48+48 samples; rows: reference, Triton with the fused march_rays
      (render.fused_march), Triton with query_points + composite.
  training G: mapping + synthesis + patch render + backward of a loss on the patches, --size real:
      ffhq512, batch 32, 64^2 patches at the preset's Beta patch scales; rows: reference, Triton
      (triplane_sample + composite with their backward). Peak memory above the start is the
      activation memory plus the gradients.

--size small uses the demo preset (64^2 frame, batch 4 of 32^2 patches) so the table runs on a CPU
in seconds (reference rows only: the Triton rows say "needs CUDA").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from . import cameras as camlib


@dataclass
class EndToEnd:
    name: str
    items: int  # frames or images per call
    unit: str
    variants: list[tuple[str, bool, Callable[[], object]]]  # (row name, needs CUDA/Triton, call)


E2E_SIZES = {"real": dict(preset="ffhq512", frame=512, coarse=48, fine=48, batch=32),
             "small": dict(preset="demo", frame=64, coarse=24, fine=24, batch=4)}


def workloads(size: str, device: torch.device) -> list[EndToEnd]:
    z = E2E_SIZES[size]
    from .checkpoint import load_generator
    G, _ = load_generator(f"random:{z['preset']}", device)
    cfg = G.cfg
    gen = torch.Generator().manual_seed(0)
    pose_cond = cfg.generator.pose_cond

    # viewer frame: one set of cached planes, one camera
    with torch.no_grad():
        cam1 = camlib.sample_cameras(cfg.camera, 1, generator=gen, device=device)
        pose1 = camlib.to_angles(cam1)[:, :2] if pose_cond else None
        planes1 = G.planes(G.mapping(torch.randn(1, cfg.generator.z_dim, generator=gen).to(device), None,
                                     pose=pose1))

    def frame(impl: str, fused: bool = True) -> Callable[[], object]:
        def run():
            with torch.no_grad():
                return G.render(planes1, cam1, resolution=z["frame"], num_coarse=z["coarse"], num_fine=z["fine"],
                                impl=impl, fused_march=fused)
        return run

    # training step of G
    from .training.patches import sample_patches
    b = z["batch"]
    zs = torch.randn(b, cfg.generator.z_dim, generator=gen).to(device)
    cams = camlib.sample_cameras(cfg.camera, b, generator=gen, device=device)
    torch.manual_seed(0)
    patch = sample_patches(b, cfg.img_resolution, cfg.train, 0.0, device)

    def train_g(impl: str) -> Callable[[], object]:
        def run():
            G.requires_grad_(True)
            try:
                w = G.mapping(zs, None, pose=camlib.to_angles(cams)[:, :2] if pose_cond else None)
                planes = G.planes(w, noise_mode="const")
                img = G.render(planes, cams, resolution=cfg.train.patch_res, patch=patch, deterministic=False,
                               chunk_rays=None, impl=impl)["image"]
                img.square().mean().backward()
            finally:
                G.zero_grad(set_to_none=True)
                G.requires_grad_(False)
        return run

    f, t = z["frame"], cfg.train.patch_res
    return [
        EndToEnd(f"viewer frame {f}^2, {z['coarse']}+{z['fine']} samples, cached planes ({z['preset']})", 1, "fps",
                 [("reference", False, frame("reference")),
                  ("triton, fused march", True, frame("triton", True)),
                  ("triton, query + composite", True, frame("triton", False))]),
        EndToEnd(f"training G fwd+bwd, batch {b}, {t}^2 patches ({z['preset']})", b, "img/s",
                 [("reference", False, train_g("reference")), ("triton", True, train_g("triton"))]),
    ]


def print_table(size: str, device: torch.device, repeats: int, time_call) -> None:
    """The end-to-end table (markdown) after the op table; time_call(fn, device, repeats) -> (s, peak bytes)."""
    cuda = device.type == "cuda"
    mem_col = "peak CUDA MiB" if cuda else "peak RSS +MiB"
    print(f"\n- end to end: {E2E_SIZES[size]}")
    print(f"\n| end to end | impl | ms (median of {repeats}) | rate | {mem_col} | x reference |\n"
          "|---|---|---:|---:|---:|---:|", flush=True)
    for wl in workloads(size, device):
        base = None
        for name, needs_cuda, fn in wl.variants:
            if needs_cuda and not cuda:
                print(f"| {wl.name} | {name} | needs CUDA | | | |", flush=True)
                continue
            try:
                sec, peak = time_call(fn, device, repeats)
            except Exception as e:  # noqa: BLE001 -- a benchmark row reports, it does not crash the table
                msg = str(e).strip().splitlines()[0][:80] if str(e).strip() else type(e).__name__
                print(f"| {wl.name} | {name} | unavailable: {type(e).__name__}: {msg} | | | |", flush=True)
                continue
            base = sec if base is None and name == "reference" else base
            vs = f"{base / sec:.2f}" if base is not None else ""
            print(f"| {wl.name} | {name} | {sec * 1e3:.1f} | {wl.items / sec:.2f} {wl.unit} | {peak / 2**20:.0f} "
                  f"| {vs} |", flush=True)
