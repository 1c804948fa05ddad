"""Occupancy grids for empty-space skipping at inference (the idea of nerfacc's occupancy grid and
instant-ngp's density bitfield, built once per latent instead of trained).

A grid covers the cube every ray of the camera prior can reach (`reach_half_size`): the field is
not zero outside the tri-plane cube and the rays go beyond it, so a grid over the tri-plane cube
alone would cut visible content at the image edges. Space outside the grid counts as occupied.

Density threshold. A cell is empty when the density at its 8 corner nodes is below

    sigma_min = -ln(1 - max_loss) / (far - near),

the density at which a ray crossing the whole sampled range [near, far] through it would lose
`max_loss` of its transmittance: skipping everything below sigma_min changes no ray's opacity by
more than max_loss. Between nodes the field may peak higher than at them; `dilation` grows the
occupied set by that many cells (default 1) for such thin features. The traversal adds one more
cell of its own (`skip_depths`), so that its coarse steps cannot step over an occupied cell.

Fog. A young run or a random model has density everywhere; marching "occupied" space there is
slower and less accurate than the importance-sampled dense path, so when more than
`max_occupied` of the cells are occupied the grid says `fog` and the renderer keeps the dense path.
A 16^3 probe decides that before the full grid is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

PROBE_RES = 16
TRAVERSAL_MARGIN = 1  # cells added to the dilation for skip_depths' segments
SEGMENT_CELLS = 1  # skip_depths' segments are up to this many cells long (the margin covers up to 2;
# one cell resolves the predicted weights better: +4 to +8 dB on the demo model for a few % more time)
UNIFORM_SHARE = 0.6  # of skip_depths' samples spread evenly over the occupied length (measured best of
# 0.1-1.0 on four demo latents; the rest follow the grid's predicted weights)


def reach_half_size(cam_cfg, radius: float | None = None) -> float:
    """Half-size of the cube around the look-at point that holds every point o + t d a camera of
    the prior reaches: at `radius` (default the config's), t in [near, far] shifted with the radius
    as `core.cameras.from_angles` does, and any direction within the square image's diagonal field
    of view. The largest distance from the look-at point is at t = near or t = far (the distance
    is convex in t along a ray), each at the diagonal's half-angle or on the axis."""
    r = cam_cfg.radius if radius is None else radius
    near = max(1e-4, cam_cfg.near + (r - cam_cfg.radius))
    far = cam_cfg.far + (r - cam_cfg.radius)
    half = math.atan(math.tan(math.radians(cam_cfg.fov_deg) / 2) * math.sqrt(2))  # diagonal half-angle
    dist = max(math.sqrt(max(0.0, r * r + t * t - 2 * r * t * c)) for t in (near, far) for c in (1.0, math.cos(half)))
    return 1.01 * dist  # a margin for float rounding at the faces


def density_threshold(max_loss: float, near: float, far: float) -> float:
    """sigma_min: a ray crossing [near, far] through density below it loses < max_loss of its transmittance."""
    if not 0 < max_loss < 1:
        raise ValueError(f"max_loss must be in (0, 1), got {max_loss}")
    return -math.log1p(-max_loss) / max(far - near, 1e-6)


@dataclass
class OccupancyGrid:
    """Occupied cells [B, res, res, res] (bool, indexed [x, y, z]) of the cube lo + [0, res * cell]^3."""

    occupied: torch.Tensor
    density: torch.Tensor  # [B, res, res, res] float32: each cell's largest corner density (not dilated)
    lo: tuple[float, float, float]
    cell: float
    threshold: float  # sigma_min, in the field's density units
    fraction: float  # the largest occupied fraction over the batch
    fog: bool  # fraction > max_occupied: the dense path renders better and faster
    _pad: tuple | None = field(default=None, repr=False, compare=False)  # `_padded`'s arrays, made once

    @property
    def res(self) -> int:
        return self.occupied.shape[-1]

    def lookup(self, points: torch.Tensor, with_density: bool = False):
        """points [B, ..., 3] (world) -> occupied [B, ...], True outside the grid; with_density also
        the cell's density estimate (`threshold` outside the grid, where nothing is known)."""
        b = points.shape[0]
        occ, dens = self._padded()
        n = self.res + 2  # a border cell on every side stands for all space outside the grid
        lo = torch.tensor(self.lo, device=points.device, dtype=points.dtype)
        ijk = torch.floor((points - lo) * (1.0 / self.cell)).add_(1).clamp_(0, n - 1)
        flat = ((ijk[..., 0] * n + ijk[..., 1]) * n + ijk[..., 2]).reshape(b, -1).long()
        got = torch.gather(occ, 1, flat).reshape(points.shape[:-1])
        if not with_density:
            return got
        return got, torch.gather(dens, 1, flat).reshape(points.shape[:-1])

    def _padded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """occupied and density [B, (res + 2)^3] flat, with a border of (True, threshold)."""
        if self._pad is None:
            occ = F.pad(self.occupied.float(), (1, 1, 1, 1, 1, 1), value=1.0) > 0
            dens = F.pad(self.density, (1, 1, 1, 1, 1, 1), value=self.threshold)
            self._pad = (occ.reshape(occ.shape[0], -1), dens.reshape(dens.shape[0], -1))
        return self._pad


def cells_from_nodes(nodes: torch.Tensor, threshold: float, dilation: int) -> torch.Tensor:
    """Node densities [B, n + 1, n + 1, n + 1] -> occupied cells [B, n, n, n]: a cell is occupied when
    any of its 8 corners is at or above `threshold`, then grown by `dilation` cells (26-neighbourhood)."""
    above = (nodes >= threshold).float()[:, None]  # [B, 1, n+1, n+1, n+1]
    cells = F.max_pool3d(above, kernel_size=2, stride=1)
    if dilation > 0:
        cells = F.max_pool3d(cells, kernel_size=2 * dilation + 1, stride=1, padding=dilation)
    return cells[:, 0] > 0


def grid_from_nodes(nodes: torch.Tensor, lo, cell: float, threshold: float, dilation: int,
                    max_occupied: float) -> OccupancyGrid:
    """An OccupancyGrid from node densities [B, n + 1, n + 1, n + 1] at lo + (i, j, k) * cell."""
    occ = cells_from_nodes(nodes, threshold, dilation + TRAVERSAL_MARGIN)
    fraction = float(occ.flatten(1).float().mean(1).max()) if occ.numel() else 0.0
    dens = F.max_pool3d(nodes.float()[:, None], kernel_size=2, stride=1)[:, 0].contiguous()
    return OccupancyGrid(occ, dens, tuple(float(v) for v in lo), float(cell), float(threshold), fraction,
                         fraction > max_occupied)


def field_node_density(field, lo, cell: float, n_nodes: int, device, dtype=torch.float32,
                       chunk_points: int = 1 << 18) -> torch.Tensor:
    """Density of any batched field (points [B, M, 3] -> (rgb, sigma)) on the n_nodes^3 nodes
    lo + (i, j, k) * cell, for a batch of 1 -> [1, n, n, n]. The generator uses the separable grid
    instead (`generator_node_density`); this serves closed-form fields and tests."""
    ax = torch.arange(n_nodes, device=device, dtype=torch.float64) * cell
    axes = [(ax + float(lo[a])).to(dtype) for a in range(3)]
    pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(1, -1, 3)
    out = [field(pts[:, s:s + chunk_points])[1] for s in range(0, pts.shape[1], chunk_points)]
    return torch.cat(out, dim=1).reshape(1, n_nodes, n_nodes, n_nodes)


def generator_node_density(G, planes: torch.Tensor, lo, cell: float, n_nodes: int) -> torch.Tensor:
    """Density of G's field on the n_nodes^3 nodes lo + (i, j, k) * cell per batch item ->
    [B, n, n, n], by the separable grid the meshes use (`core.geometry.fastgrid`)."""
    from ..geometry.fastgrid import separable_grid
    from ..geometry.grid import Box
    hi = tuple(float(v) + (n_nodes - 1) * cell for v in lo)
    box = Box(tuple(float(v) for v in lo), hi)
    out = [torch.from_numpy(separable_grid(G, planes[i:i + 1], box, n_nodes).values) for i in range(planes.shape[0])]
    return torch.stack(out).to(planes.device)


@torch.no_grad()
def build_for_generator(G, planes: torch.Tensor, res: int, max_loss: float, dilation: int,
                        max_occupied: float) -> OccupancyGrid:
    """The occupancy grid of G's field in `planes` [B, 3, C, H, W] over the camera prior's reach,
    res^3 cells; a 16^3 probe first, and when it already finds fog, that probe is the answer
    (`fog` set, nothing more is built)."""
    cam = G.cfg.camera
    half = reach_half_size(cam)
    centre = torch.tensor(cam.look_at, dtype=torch.float64)
    lo = tuple(float(c - half) for c in centre)
    threshold = density_threshold(max_loss, cam.near, cam.far)
    probe_cell = 2 * half / PROBE_RES
    # the probe's few nodes through G.query: the separable grid's per-plane copies would cost more
    nodes = torch.cat([field_node_density(lambda p, i=i: G.query(planes[i:i + 1], p), lo, probe_cell, PROBE_RES + 1,
                                          planes.device) for i in range(planes.shape[0])])
    probe = grid_from_nodes(nodes, lo, probe_cell, threshold, 0, max_occupied)
    if probe.fog:
        return probe
    cell = 2 * half / res
    return grid_from_nodes(generator_node_density(G, planes, lo, cell, res + 1), lo, cell, threshold, dilation,
                           max_occupied)


def skip_depths(grid: OccupancyGrid, origins: torch.Tensor, dirs: torch.Tensor, near: torch.Tensor,
                far: torch.Tensor, steps: int, far_delta: float, far_always: bool,
                uniform: float = UNIFORM_SHARE, impl: str = "reference") -> tuple[torch.Tensor, torch.Tensor]:
    """Sample depths and their interval lengths for marching only through occupied space.

    origins, dirs [B, R, 3], near, far [B, R] -> t, deltas [B, R, steps + 1], t ascending.

    [near, far] is cut into K segments of at most SEGMENT_CELLS cells; a segment is occupied when the grid is
    occupied at its midpoint (the dilated grid makes that conservative: every point of the segment
    lies within one cell of the midpoint, so in a neighbour of the midpoint's cell). Only occupied segments get samples: glued end to end they
    form the ray's occupied length L (coordinate s in [0, L]). The samples are the deterministic
    inverse-CDF levels (j + 0.5) / steps of a density over s: a `uniform` share spread evenly, the
    rest following the compositing weights the grid's density estimate predicts per segment (the
    importance pass of the dense renderer, without a coarse pass of the network). Each sample
    stands for the piece of s between the midpoints to its neighbours (0 and L at the ends): those
    pieces tile the occupied length exactly, never the skipped gaps. A ray that crosses no occupied
    cell gets deltas 0 (nothing to evaluate). The last sample is at the far bound with delta
    `far_delta` when `far_always` (an opaque far plane) or when its point is occupied, else 0 (an
    open far plane adds at most sigma * 1e-3 there).

    impl 'reference' (this PyTorch code) or 'numba' (`skip_numba`: the same per ray in one fused
    CPU loop, CPU tensors only).
    """
    b, r, _ = origins.shape
    span = far - near
    k = max(1, int(math.ceil(float(span.max()) / (SEGMENT_CELLS * grid.cell))))
    if impl == "numba":
        from . import skip_numba
        occ, dens = grid._padded()
        return skip_numba.skip_depths(occ, dens, grid.res + 2, grid.lo, grid.cell, origins, dirs, near, far, k, steps,
                                      far_delta, far_always, uniform)
    if impl != "reference":
        raise ValueError(f"skip_depths: impl must be 'reference' or 'numba', got {impl!r}")
    seg = (span / k)[..., None]  # [B, R, 1]
    mid = near[..., None] + seg * (torch.arange(k, device=near.device, dtype=near.dtype) + 0.5)  # [B, R, K]
    occ, dens = grid.lookup(origins[:, :, None, :] + dirs[:, :, None, :] * mid[..., None], with_density=True)
    occ_f = occ.to(near.dtype)
    tau = dens.to(near.dtype) * occ_f * seg
    trans = torch.exp(-(torch.cumsum(tau, -1) - tau))
    w = trans * -torch.expm1(-tau)  # predicted compositing weight per segment
    n_occ = occ_f.sum(-1, keepdim=True)
    w_sum = w.sum(-1, keepdim=True)
    share = torch.where(w_sum > 0, w / w_sum.clamp_min(1e-30), occ_f / n_occ.clamp_min(1))
    pdf = uniform * occ_f / n_occ.clamp_min(1) + (1 - uniform) * share  # over segments, sums to 1 (or 0)
    cdf = torch.cumsum(pdf, -1)
    u = (torch.arange(steps, device=near.device, dtype=near.dtype) + 0.5) / steps
    u = (u * cdf[..., -1:]).contiguous()  # rays without occupied segments: all levels 0
    idx = torch.searchsorted(cdf.contiguous(), u, right=True).clamp(max=k - 1)  # first segment with cdf > u
    p_k = pdf.gather(-1, idx)
    c_lo = (cdf - pdf).gather(-1, idx)
    frac = ((u - c_lo) / p_k.clamp_min(1e-30)).clamp(0, 1)
    t = torch.minimum(mid.gather(-1, idx) + (frac - 0.5) * seg, far[..., None])
    s = ((torch.cumsum(occ_f, -1) - occ_f).gather(-1, idx) + frac) * seg  # position in occupied length
    length = n_occ * seg
    edges = torch.cat([torch.zeros_like(s[..., :1]), 0.5 * (s[..., 1:] + s[..., :-1]), length], -1)
    deltas = (edges[..., 1:] - edges[..., :-1]) * (n_occ > 0)
    last_occ = grid.lookup(origins + dirs * far[..., None])
    d_far = torch.where(last_occ | far_always, torch.full_like(far, far_delta), torch.zeros_like(far))
    return torch.cat([t, far[..., None]], dim=-1), torch.cat([deltas, d_far[..., None]], dim=-1)
