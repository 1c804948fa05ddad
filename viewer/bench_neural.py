"""The neural part of `python -m viewer.bench`: the viewer's own render path (RenderEngine, tiles,
tri-plane cache) with empty-space skipping against the dense path it replaced.

Paths: "dense" = `render.skip_empty` and `render.fold_decoder` off (every inference render before
skipping); "skip" = the defaults. They alternate within each repeat. Per resolution: orbit frames
per second (full-quality samples, planes cached, a new camera every frame), the full-quality
refine of a still view, its ratio to the dense path and the PSNR of that frame against a
192 + 192-sample dense render; then the first frame after switching to a new latent (planes and
the preview render, at the adaptive controller's first resolution).
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from core.bench_paths import REFERENCE_SAMPLES, psnr

from .camera import preset
from .latent import LatentSpec
from .rendering import LoadedModel, Quality, RenderEngine, RenderRequest, ViewSpec, full_quality

PATHS = ("dense", "skip")


def latent(model: LoadedModel, seed: int) -> LatentSpec:
    """Seed `seed` at psi 1; for a class-conditional model, the class its file suggests (or 0)."""
    g = model.cfg.generator
    if not g.c_dim:
        return LatentSpec.from_seed(seed)
    suggested = model.info.get("meta", {}).get("viewer_class")
    return LatentSpec.from_seed(seed, 1.0, suggested if isinstance(suggested, int) and 0 <= suggested < g.c_dim else 0)


def _use(model: LoadedModel, path: str) -> None:
    rc = model.G.cfg.render
    rc.skip_empty = rc.fold_decoder = path == "skip"


def _orbit_fps(engine: RenderEngine, model: LoadedModel, spec: LatentSpec, res: int, frames: int) -> float:
    cam = preset("mean", model.cfg.camera)
    q = full_quality(model, ViewSpec(cam, "rgb", res))
    t0 = time.perf_counter()
    for k in range(frames):
        c = cam.orbited(math.radians(5 * (k + 1)))
        engine.render(RenderRequest(model, spec, ViewSpec(c, "rgb", res), interactive=True), q)
    return frames / (time.perf_counter() - t0)


def _refine(engine: RenderEngine, model: LoadedModel, spec: LatentSpec, res: int) -> tuple[float, torch.Tensor]:
    view = ViewSpec(preset("mean", model.cfg.camera), "rgb", res)
    t0 = time.perf_counter()
    out = engine.render(RenderRequest(model, spec, view), full_quality(model, view))
    return time.perf_counter() - t0, torch.from_numpy(out.image).float() / 127.5 - 1


def _reference(engine: RenderEngine, model: LoadedModel, spec: LatentSpec, res: int) -> torch.Tensor:
    _use(model, "dense")
    view = ViewSpec(preset("mean", model.cfg.camera), "rgb", res)
    out = engine.render(RenderRequest(model, spec, view), Quality(res, *REFERENCE_SAMPLES))
    return torch.from_numpy(out.image).float() / 127.5 - 1


def run(engine: RenderEngine, model: LoadedModel, resolutions: list[int], frames: int, repeats: int,
        first_res: int) -> None:
    rc = model.G.cfg.render
    saved = (rc.skip_empty, rc.fold_decoder)
    spec = latent(model, 0)
    try:
        print(f"\n{repeats} repeats, paths alternated, medians; x = dense / skip; PSNR of the refined frame (8-bit, "
              f"as shown) against a {REFERENCE_SAMPLES[0]}+{REFERENCE_SAMPLES[1]}-sample dense render\n")
        print("| res | dense orbit fps | skip orbit fps | x | dense refine s | skip refine s | x | dense PSNR | skip PSNR |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for res in resolutions:
            ref = _reference(engine, model, spec, res)
            fps, ref_s, img = ({p: [] for p in PATHS} for _ in range(3))
            for _ in range(repeats):
                for p in PATHS:
                    _use(model, p)
                    fps[p].append(_orbit_fps(engine, model, spec, res, frames))
                    s, im = _refine(engine, model, spec, res)
                    ref_s[p].append(s)
                    img[p] = im
            f = {p: statistics.median(v) for p, v in fps.items()}
            r = {p: statistics.median(v) for p, v in ref_s.items()}
            print(f"| {res}^2 | {f['dense']:.2f} | {f['skip']:.2f} | {f['skip'] / f['dense']:.2f} | {r['dense']:.2f} | "
                  f"{r['skip']:.2f} | {r['dense'] / r['skip']:.2f} | {psnr(img['dense'], ref):.2f} | "
                  f"{psnr(img['skip'], ref):.2f} |", flush=True)
        # switching latent: planes + (occupancy grid) + the first preview, each time a latent not seen yet
        q = full_quality(model, ViewSpec(preset("mean", model.cfg.camera), "rgb", first_res))
        q = Quality(first_res, q.num_coarse, q.num_fine, "preview")
        times = {p: [] for p in PATHS}
        seed = 1000
        for _ in range(repeats):
            for p in PATHS:
                _use(model, p)
                seed += 1
                t0 = time.perf_counter()
                engine.render(RenderRequest(model, latent(model, seed), ViewSpec(preset("mean", model.cfg.camera),
                                                                                     "rgb", first_res)), q)
                times[p].append(time.perf_counter() - t0)
        t = {p: statistics.median(v) for p, v in times.items()}
        print(f"\nfirst frame of a new latent ({first_res}^2, full samples; planes included): dense "
              f"{t['dense'] * 1e3:.0f} ms, skip {t['skip'] * 1e3:.0f} ms (the viewer renders a latent's first frame "
              "densely and prepares its grid when idle)")
    finally:
        rc.skip_empty, rc.fold_decoder = saved
