"""The automatic iso-level: the density level whose surface has the renderer's silhouette.

A young model's densities are far below any fixed physical level (ln 2 / cell), and a fixed
level says nothing about where the *rendered* object ends. So the level is chosen to make the
mesh look like the volume render from a few cameras:

1. Render the accumulated opacity of `views` cameras around the object at a low resolution with
   the generator's own renderer (`G.render`, the path the viewer and videos use); the target
   silhouette is opacity > 0.5.
2. For every pixel of those views, march its ray through the density grid of the crop box
   (trilinear, like marching cubes' edge interpolation) and keep the maximum density m along it.
   The iso-surface at level L covers exactly the pixels with m > L, so the mesh silhouette is a
   monotone function of L.
3. Sort the pixels by m and evaluate the IoU of {m > L} against the opacity mask at every
   distinct level at once (cumulative sums); take the level with the best IoU, in the middle
   (geometric mean for positive densities) of the interval between the two neighbouring m values.

A faint model (a young one, a fog) may reach opacity 0.5 nowhere: its silhouette is then taken at
half its peak opacity (opacity > peak / 2), as long as the peak is at least MIN_PEAK. Only when
the peak is below that (nothing rendered), or every pixel is covered, is there no silhouette to
match; the level is then a high percentile (99th) of the grid's values, and `LevelChoice.method`
says so. Levels are in the grid's units: activated density (sigma = softplus(raw + shift)) or the
occlusion (core.geometry.visibility).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..cameras import Cameras, from_angles
from ..render.rays import make_rays
from .grid import DEFAULT_CHUNK_POINTS, Box, DensityGrid

PROBE_RES = 96  # grid the automatic level is chosen on when the mesh grid is finer than PROBE_MAX_RES
PROBE_MAX_RES = 128
FALLBACK_PERCENTILE = 99.0
OPACITY_CUT = 0.5
MIN_PEAK = 0.05  # below this peak opacity nothing is rendered: no silhouette at half the peak either


@dataclass(frozen=True)
class LevelChoice:
    level: float
    method: str  # "silhouette" (IoU-matched to the render) or "percentile" (fallback)
    iou: float | None  # best IoU of the projected iso-surface against opacity > cut (silhouette only)
    coverage: float  # fraction of view pixels with opacity > cut
    cut: float = OPACITY_CUT  # the opacity the silhouette was taken at: 0.5, or half the peak of a faint render

    def describe(self) -> str:
        if self.method == "silhouette":
            faint = "" if self.cut == OPACITY_CUT else ", half the peak: no pixel reaches 0.5"
            return (f"auto level {self.level:.4g}: silhouette IoU {self.iou:.3f} against rendered opacity "
                    f"> {self.cut:.3g}{faint} ({100 * self.coverage:.0f}% of view pixels)")
        return (f"auto level {self.level:.4g}: {FALLBACK_PERCENTILE:g}th percentile of the grid values "
                f"(rendered opacity > {self.cut:.3g} on {100 * self.coverage:.0f}% of view pixels: "
                f"no silhouette to match)")


def view_cameras(cam_cfg, views: int = 6, device=None, dtype=torch.float32) -> Cameras:
    """`views` cameras at the config's radius and fov looking at its look-at point: views-2 evenly
    spaced around the equator band (the prior's mean pitch), one from above, one from below."""
    side = max(1, views - 2)
    yaw = [2 * math.pi * k / side + cam_cfg.yaw_mean for k in range(side)]
    pitch = [float(cam_cfg.pitch_mean)] * side
    if views >= 2:
        yaw += [cam_cfg.yaw_mean + 0.3, cam_cfg.yaw_mean - 0.3][: views - side]
        pitch += [0.45, math.pi - 0.45][: views - side]
    return from_angles(torch.tensor(yaw, dtype=dtype), torch.tensor(pitch, dtype=dtype), cam_cfg.radius,
                       cam_cfg.fov_deg, cam_cfg.look_at, cfg=cam_cfg, device=device, dtype=dtype)


def _ray_box(origins: torch.Tensor, dirs: torch.Tensor, box: Box):
    """Slab test: entry/exit t of the rays through the box ([..., 3] -> [...], [...])."""
    lo = torch.tensor(box.lo, dtype=origins.dtype, device=origins.device)
    hi = torch.tensor(box.hi, dtype=origins.dtype, device=origins.device)
    inv = 1.0 / torch.where(dirs.abs() < 1e-12, torch.full_like(dirs, 1e-12), dirs)
    t0, t1 = (lo - origins) * inv, (hi - origins) * inv
    return torch.minimum(t0, t1).amax(-1), torch.maximum(t0, t1).amin(-1)


@torch.no_grad()
def ray_max_density(grid: DensityGrid, origins: torch.Tensor, dirs: torch.Tensor, samples: int | None = None,
                    chunk_rays: int = 4096) -> torch.Tensor:
    """Maximum of the trilinearly interpolated grid along each ray inside the grid's box.

    origins, dirs [..., 3] (world) -> [...]; -inf for rays that miss the box. `samples` per ray
    segment default to 2 per grid cell along the box diagonal.
    """
    shape = origins.shape[:-1]
    o = origins.reshape(-1, 3).double()
    d = dirs.reshape(-1, 3).double()
    res = grid.res
    samples = samples or int(2 * res * math.sqrt(3))
    vol = torch.from_numpy(np.ascontiguousarray(grid.values)).float()[None, None]  # [1,1,X,Y,Z]
    lo = torch.tensor(grid.box.lo, dtype=torch.float64)
    hi = torch.tensor(grid.box.hi, dtype=torch.float64)
    t_in, t_out = _ray_box(o, d, grid.box)
    out = torch.full((len(o),), -math.inf)
    s = torch.linspace(0, 1, samples, dtype=torch.float64)
    for a in range(0, len(o), chunk_rays):
        b = min(len(o), a + chunk_rays)
        ti, to = t_in[a:b].clamp_min(0), t_out[a:b]
        hit = to > ti
        t = ti[:, None] + (to - ti).clamp_min(0)[:, None] * s[None]  # [r, S]
        p = o[a:b, None] + d[a:b, None] * t[..., None]  # [r, S, 3]
        u = (2 * (p - lo) / (hi - lo) - 1).clamp(-1, 1)  # normalised, x indexes the volume's first axis
        coords = u.flip(-1).float()[None, None]  # grid_sample wants (W, H, D) = (z, y, x)
        v = F.grid_sample(vol, coords, mode="bilinear", padding_mode="border", align_corners=True)
        m = v[0, 0, 0].amax(-1)
        out[a:b] = torch.where(hit, m, torch.full_like(m, -math.inf))
    return out.reshape(shape)


def best_iou_level(ray_max: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(level, IoU): the level L maximising IoU({ray_max > L}, mask) over all levels, placed in the
    middle of its optimal interval. ray_max, mask: same-shape arrays; mask must have a True."""
    m = np.asarray(ray_max, np.float64).ravel()
    y = np.asarray(mask, bool).ravel()
    finite = np.isfinite(m)
    order = np.argsort(-np.where(finite, m, -np.inf), kind="stable")
    ms, ys = m[order], y[order]
    n_fin = int(finite.sum())
    total = int(y.sum())
    tp = np.concatenate([[0], np.cumsum(ys)])  # tp[k]: masked among the k largest
    k = np.arange(len(ms) + 1)
    iou = tp / np.maximum(k + total - tp, 1)
    # a threshold can only separate position k-1 from k where the values differ
    valid = np.zeros(len(ms) + 1, bool)
    valid[1:n_fin] = ms[: n_fin - 1] > ms[1:n_fin]
    valid[n_fin] = n_fin > 0
    iou = np.where(valid, iou, -1.0)
    best = int(np.argmax(iou))
    upper = ms[best - 1]
    lower = ms[best] if best < n_fin else upper - max(1.0, abs(upper))
    if lower > 0 and upper > 0:
        level = math.sqrt(lower * upper)
    else:
        level = 0.5 * (lower + upper)
    return float(level), float(iou[best])


def level_from_views(grid: DensityGrid, origins: torch.Tensor, dirs: torch.Tensor,
                     opacity: torch.Tensor) -> LevelChoice:
    """The silhouette-matched level of `grid` for rays (origins, dirs [..., 3]) whose rendered
    accumulated opacity is `opacity` [...] (module docstring): the silhouette at opacity 0.5, or at
    half the peak of a faint render; the percentile fallback when there is none or it covers all."""
    op = opacity.reshape(origins.shape[:-1]).detach().float().cpu()
    peak = float(op.max()) if op.numel() else 0.0
    cut = OPACITY_CUT if peak > OPACITY_CUT or peak < MIN_PEAK else 0.5 * peak
    mask = (op > cut).numpy()
    coverage = float(mask.mean())
    if mask.any() and not mask.all():
        m = ray_max_density(grid, origins, dirs).cpu().numpy()
        if np.isfinite(m).any():
            level, iou = best_iou_level(m, mask)
            lo, hi = float(grid.values.min()), float(grid.values.max())
            if lo < level < hi:
                return LevelChoice(level, "silhouette", iou, coverage, cut)
    return LevelChoice(float(np.percentile(grid.values, FALLBACK_PERCENTILE)), "percentile", None, coverage, cut)


@torch.no_grad()
def generator_level(G, planes: torch.Tensor, grid: DensityGrid, views: int = 6, res: int = 48,
                    cameras: Cameras | None = None) -> LevelChoice:
    """The automatic level for a generator's field: opacity of `views` cameras rendered at res^2
    through G.render_field, matched against the silhouettes of `grid` (an activated-density grid over
    the crop box, e.g. a 64^3-128^3 one from separable_grid, or its occlusion: any grid whose
    iso-surface grows monotonically as the level falls)."""
    if grid.kind not in ("activated", "occlusion"):
        raise ValueError("the automatic level needs an activated-density grid or its occlusion, "
                         f"got a '{grid.kind}' grid")
    cams = cameras if cameras is not None else view_cameras(G.cfg.camera, views, device=planes.device)
    b = len(cams)
    out = G.render_field(planes.expand(b, *planes.shape[1:]), cams, resolution=res)
    origins, dirs = make_rays(cams.to(planes.device, torch.float32), res)
    return level_from_views(grid, origins.cpu(), dirs.cpu(), out["opacity"].reshape(b, -1).cpu())


@torch.no_grad()
def surface_level(G, planes: torch.Tensor, grid: DensityGrid, surface: str, chunk_points: int = DEFAULT_CHUNK_POINTS,
                  cancel=None) -> LevelChoice:
    """The automatic level for a mesh grid of `surface` ("density" or "visibility": `grid` is then
    the occlusion): chosen on `grid` itself up to PROBE_MAX_RES^3, else on a PROBE_RES^3 grid of the
    same box and surface (the level is the same physical quantity at any resolution)."""
    from .fastgrid import separable_grid
    from .visibility import surface_grid
    probe = grid
    if grid.res > PROBE_MAX_RES:
        probe = surface_grid(separable_grid(G, planes, grid.box, PROBE_RES, chunk_points, cancel=cancel),
                             surface, planes.device)
    return generator_level(G, planes, probe)
