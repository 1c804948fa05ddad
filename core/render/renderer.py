"""The volume renderer: coarse + importance sampling along rays through any radiance field.

A field is a function points [B, M, 3] -> (rgb [B, M, C], sigma [B, M]) with sigma >= 0. The
generator passes its tri-plane field; tests pass closed-form fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import kernels
from ..kernels.reference import composite_midpoint, far_delta
from .occupancy import OccupancyGrid, skip_depths
from .sampling import importance, importance_eg3d, stratified, stratified_eg3d

Field = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# (origins [B, R, 3], dirs [B, R, 3], depths [B, R, S]) -> composite()'s outputs, weights included
March = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], dict]
# the same with each sample's interval length given (deltas [B, R, S]): marching skipped samples
SkipMarch = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], dict]


@dataclass
class Skip:
    """Empty-space skipping for `render_rays`: `steps` samples per ray over the occupied cells of
    `grid` (`core.render.occupancy.skip_depths`, computed by `depths_impl`: 'reference' or the fused
    CPU loop 'numba'), marched by `march` with the given intervals."""

    grid: OccupancyGrid
    steps: int
    march: SkipMarch
    depths_impl: str = "reference"


def _eval_field(field: Field, origins: torch.Tensor, dirs: torch.Tensor, t: torch.Tensor):
    """Points o + t d for t [B, R, S] -> rgb [B, R, S, C], sigma [B, R, S]."""
    b, r, s = t.shape
    pts = origins[:, :, None, :] + dirs[:, :, None, :] * t[..., None]  # [B, R, S, 3]
    rgb, sigma = field(pts.reshape(b, r * s, 3))
    return rgb.reshape(b, r, s, -1), sigma.reshape(b, r, s)


def render_rays(field: Field | None, origins: torch.Tensor, dirs: torch.Tensor, near: torch.Tensor,
                far: torch.Tensor, num_coarse: int, num_fine: int, far_opaque: bool, deterministic: bool,
                generator: torch.Generator | None = None, composite_impl: str = "auto",
                stop_transmittance: float = 0.0, march: March | None = None, pdf_eps: float = 2e-5,
                skip: Skip | None = None, rule: str = "epigraf") -> dict[str, torch.Tensor]:
    """origins, dirs [B, R, 3] (unit dirs), near, far [B] -> rgb [B, R, C], opacity/depth/depth_raw/
    transmittance_last [B, R].

    One network for both passes: the coarse samples and the importance samples drawn from their
    weights are merged, sorted and composited together (num_coarse + num_fine samples per ray).
    composite_impl and stop_transmittance go to `core.kernels.composite`; pdf_eps is added to the
    coarse weights before the importance-sampling CDF. With `march` (a fused
    points -> field -> compositing op, inference) the field is not called: the coarse pass marches
    the coarse depths for their weights, the fine pass marches all merged depths again (so the
    coarse samples are evaluated twice, and no per-sample tensor is ever materialised).
    With `skip` (inference), neither pass runs: the depths come from the occupancy grid and the
    samples are marched once with their own intervals; the far bound's sample keeps its
    far_opaque interval.
    """
    b, r, _ = origins.shape
    near_r = near[:, None].expand(b, r)
    far_r = far[:, None].expand(b, r)
    if rule == "eg3d":
        if skip is not None or march is not None:
            raise ValueError("EG3D's compositing rule has neither empty-space skipping nor a fused march")
        return _render_eg3d(field, origins, dirs, near_r, far_r, num_coarse, num_fine, deterministic, generator,
                            stop_transmittance)
    if rule != "epigraf":
        raise ValueError(f"unknown compositing rule {rule!r} (epigraf, eg3d)")
    if skip is not None:
        t, deltas = skip_depths(skip.grid, origins, dirs, near_r, far_r, skip.steps, far_delta(far_opaque), far_opaque,
                                impl=skip.depths_impl)
        return _finish(skip.march(origins, dirs, t, deltas))
    t = stratified(near_r, far_r, num_coarse, deterministic, generator)  # [B, R, Nc]
    if march is not None:
        out = march(origins, dirs, t)
        if num_fine > 0:
            t_f = importance(t, out["weights"], num_fine, deterministic, generator, pdf_eps)  # [B, R, Nf]
            out = march(origins, dirs, torch.sort(torch.cat([t, t_f], dim=-1), dim=-1).values)
        return _finish(out)
    rgb, sigma = _eval_field(field, origins, dirs, t)
    if num_fine > 0:
        with torch.no_grad():
            w = kernels.composite(rgb[..., :0], sigma, t, far_opaque, stop_transmittance, impl=composite_impl)["weights"]
        t_f = importance(t, w, num_fine, deterministic, generator, pdf_eps)  # [B, R, Nf]
        rgb_f, sigma_f = _eval_field(field, origins, dirs, t_f)
        t = torch.cat([t, t_f], dim=-1)
        t, order = torch.sort(t, dim=-1)
        rgb = torch.cat([rgb, rgb_f], dim=-2).gather(-2, order[..., None].expand(-1, -1, -1, rgb.shape[-1]))
        sigma = torch.cat([sigma, sigma_f], dim=-1).gather(-1, order)
    return _finish(kernels.composite(rgb, sigma, t, far_opaque, stop_transmittance, impl=composite_impl))


def _render_eg3d(field: Field, origins, dirs, near_r, far_r, num_coarse: int, num_fine: int, deterministic: bool,
                 generator, stop_transmittance: float) -> dict[str, torch.Tensor]:
    """render_rays with EG3D's rule: the field returns (colour, raw density with its shift), both
    composited at interval midpoints (`reference.composite_midpoint`, PyTorch only), the fine
    depths drawn by `importance_eg3d`."""
    t = stratified_eg3d(near_r, far_r, num_coarse, deterministic, generator)
    rgb, raw = _eval_field(field, origins, dirs, t)
    if num_fine > 0:
        with torch.no_grad():
            w = composite_midpoint(rgb[..., :0], raw, t)["weights"]
        t_f = importance_eg3d(t, w, num_fine, deterministic, generator)
        rgb_f, raw_f = _eval_field(field, origins, dirs, t_f)
        t, order = torch.sort(torch.cat([t, t_f], dim=-1), dim=-1)
        rgb = torch.cat([rgb, rgb_f], dim=-2).gather(-2, order[..., None].expand(-1, -1, -1, rgb.shape[-1]))
        raw = torch.cat([raw, raw_f], dim=-1).gather(-1, order)
    return _finish(composite_midpoint(rgb, raw, t, stop_transmittance))


def _finish(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """composite()'s outputs without the per-sample weights, with `transmittance_last`: the
    transmittance in front of each ray's last sample (1 - the other samples' weights), which a
    background behind the samples is multiplied by (the reference's final_transmittance)."""
    weights = out.pop("weights")
    out["transmittance_last"] = 1 - weights[..., :-1].sum(-1)
    return out


def render_rays_chunked(field: Field, origins: torch.Tensor, dirs: torch.Tensor, near: torch.Tensor,
                        far: torch.Tensor, chunk_rays: int | None, **kwargs) -> dict[str, torch.Tensor]:
    """render_rays over slices of at most `chunk_rays` rays in total (B * rays per slice), concatenated.

    Bounds peak memory for large frames at inference; pass chunk_rays=None to render in one go
    (training, where the autograd graph spans the whole batch anyway).
    """
    b, r, _ = origins.shape
    if chunk_rays is None or b * r <= chunk_rays:
        return render_rays(field, origins, dirs, near, far, **kwargs)
    step = max(1, chunk_rays // b)
    parts = [render_rays(field, origins[:, i:i + step], dirs[:, i:i + step], near, far, **kwargs)
             for i in range(0, r, step)]
    return {k: torch.cat([p[k] for p in parts], dim=1) for k in parts[0]}
