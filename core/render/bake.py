"""A baked radiance field: colour and density of one latent sampled on a regular grid, for fast
previews that ray-march a 3D texture instead of running the decoder (the viewer's GL preview while
the camera moves, shaders/volume.frag).

The grid covers the cube that every ray of the camera prior reaches (`occupancy.reach_half_size`,
centred on the prior's look-at point), so a preview from any prior camera sees all of the field
the renderer sees; outside it nothing is baked. Values sit on the grid's nodes (the convention of
`core.geometry.grid`: node (i, j, k) at lo + (i, j, k) * size / (res - 1), arrays indexed
[x, y, z]); a sampler interpolates trilinearly between them, as a 3D texture with linear
filtering does when node i maps to texel centre (i + 0.5) / res.

Density. A bake stores the density before its activation, pre = raw + density_shift, and the
sampler applies sigma = softplus(pre) after interpolating (`density == "softplus"`). Near a surface
sigma climbs from ~0 to tens within a few nodes, and interpolating sigma itself blurs and shifts
that climb; interpolating pre follows the field far better (on the demo model at 128^3 and 256^2:
about 44 dB PSNR against the neural render instead of 38). A field may also hold sigma itself
(`density == "sigma"`; hand-made fields in tests).

Occupancy, for empty-space skipping: a coarse cell is occupied when a node inside it or within one
node spacing of its faces (every node trilinear interpolation reads there) has sigma at or above
the threshold of `occupancy.density_threshold`. softplus is increasing and trilinear weights are
convex, so the sampled sigma inside an empty cell stays below the threshold: skipping it changes
no ray's opacity by more than `MAX_LOSS` compared with marching the bake everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry.fastgrid import separable_grid
from ..geometry.grid import Box
from .occupancy import density_threshold, reach_half_size

OCCUPANCY_DIV = 4  # grid nodes per occupancy cell along each axis
MAX_LOSS = 1e-3
SIGMA, SOFTPLUS = "sigma", "softplus"
FP16_MAX = float(np.finfo(np.float16).max)


@dataclass
class BakedField:
    """A latent's field on res^3 nodes of the cube lo + [0, size]^3.

    rgba: float16 [res, res, res, 4] indexed [x, y, z]: colour mapped from [-1, 1] to [0, 1] (as the
    viewer maps images: (c + 1) / 2, not clamped here), alpha = the density: sigma in world units
    (`density` "sigma") or its softplus argument (`density` "softplus", what `bake` makes).
    occupancy: uint8 [n, n, n] indexed [x, y, z] (255 occupied, 0 empty) over the same cube, in
    cells of size / n; distance: uint8 [n, n, n], `empty_distance` of it (what the shader reads).
    """

    rgba: np.ndarray
    lo: tuple[float, float, float]
    size: float
    res: int
    occupancy: np.ndarray
    distance: np.ndarray
    threshold: float  # sigma below which space counts as empty
    density: str = SIGMA

    @staticmethod
    def from_arrays(rgb: np.ndarray, density: np.ndarray, lo, size: float, threshold: float,
                    kind: str = SIGMA, occupancy_div: int | None = None) -> BakedField:
        """A field from node arrays indexed [x, y, z]: rgb [res, res, res, 3] in [0, 1] and the
        density [res, res, res] (sigma, or its softplus argument when kind is "softplus")."""
        res = density.shape[0]
        rgba = np.empty((res, res, res, 4), np.float16)
        rgba[..., :3] = rgb
        rgba[..., 3] = np.clip(density, -FP16_MAX, FP16_MAX)
        sigma = np.logaddexp(np.float32(0), density.astype(np.float32)) if kind == SOFTPLUS else density
        occ = occupancy_cells(sigma, threshold, max(1, math.ceil(res / (occupancy_div or OCCUPANCY_DIV))))
        return BakedField(rgba, tuple(float(v) for v in lo), float(size), int(res), occ, empty_distance(occ),
                          float(threshold), kind)

    @property
    def spacing(self) -> float:
        """World distance between neighbouring nodes."""
        return self.size / (self.res - 1)

    @property
    def occupancy_res(self) -> int:
        return self.occupancy.shape[0]

    @property
    def nbytes(self) -> int:
        return self.rgba.nbytes + self.occupancy.nbytes

    def sigma(self) -> np.ndarray:
        """The node densities sigma [res, res, res] float32."""
        a = self.rgba[..., 3].astype(np.float32)
        return np.logaddexp(np.float32(0), a) if self.density == SOFTPLUS else a

    def occupied_fraction(self) -> float:
        return float((self.occupancy > 0).mean())


def occupancy_cells(sigma: np.ndarray, threshold: float, cells: int, dilation: int = 0) -> np.ndarray:
    """Node densities [res, res, res] -> uint8 [cells]^3 (255 = occupied): a cell is occupied when
    a node inside it or within one node spacing of its faces is at or above `threshold` (so that
    every node the trilinear interpolation reads inside the cell counts), then grown by `dilation`
    cells (26-neighbourhood; 0 is conservative for the bake itself, see the module docstring)."""
    res = sigma.shape[0]
    above = torch.from_numpy(np.ascontiguousarray(sigma >= threshold))
    if not bool(above.any()):
        return np.zeros((cells,) * 3, np.uint8)
    # node i lies at fraction i / (res - 1) of the cube; the cells its neighbourhood touches
    pos = np.arange(res) / (res - 1) * cells
    step = cells / (res - 1)
    first = np.clip(np.floor(pos - step).astype(np.int64), 0, cells - 1)
    last = np.clip(np.floor(pos + step).astype(np.int64), 0, cells - 1)
    occ = torch.zeros((cells,) * 3, dtype=torch.bool)
    idx = above.nonzero()  # [M, 3] node indices above the threshold
    lo = torch.from_numpy(first)[idx]  # [M, 3]
    hi = torch.from_numpy(last)[idx]
    spans = hi - lo  # 0 or 1 per axis (a node touches at most two cells per axis)
    for dx in range(2):
        for dy in range(2):
            for dz in range(2):
                d = torch.tensor([dx, dy, dz])
                ok = (spans >= d).all(1)
                c = lo[ok] + d
                occ[c[:, 0], c[:, 1], c[:, 2]] = True
    if dilation > 0:
        occ = F.max_pool3d(occ[None, None].float(), 2 * dilation + 1, stride=1, padding=dilation)[0, 0] > 0
    return occ.numpy().astype(np.uint8) * 255


def empty_distance(occupancy: np.ndarray, cap: int = 255) -> np.ndarray:
    """Occupancy [n, n, n] (nonzero = occupied) -> uint8 [n, n, n]: per cell the Chebyshev distance
    in cells to the nearest occupied cell (0 for an occupied one), at most `cap` (also where
    nothing is occupied). Every cell closer than d to a cell of distance d is empty, so a ray can
    leave that whole cube of cells in one step."""
    occ = torch.from_numpy(np.ascontiguousarray(occupancy > 0))[None, None].float()
    dist = torch.full(occ.shape[2:], cap, dtype=torch.int32)
    reached = occ[0, 0] > 0
    dist[reached] = 0
    grown = occ
    for k in range(1, min(cap, max(occ.shape[2:]))):
        if bool(reached.all()):
            break
        grown = F.max_pool3d(grown, 3, stride=1, padding=1)
        new = (grown[0, 0] > 0) & ~reached
        dist[new] = k
        reached |= new
    return dist.numpy().astype(np.uint8)


@torch.no_grad()
def bake(G, planes: torch.Tensor, res: int = 128, progress: Callable[[float], None] | None = None,
         cancel: Callable[[], bool] | None = None) -> BakedField:
    """Bake the field of `planes` [1, 3, C, H, W] (from G.planes) on res^3 nodes of the camera
    prior's reach cube. progress(f), f in [0, 1], after each block of nodes; cancel() is polled
    between blocks and raises core.geometry.Cancelled when it returns True."""
    if res < 8:
        raise ValueError(f"bake resolution must be at least 8, got {res}")
    cam = G.cfg.camera
    half = reach_half_size(cam)
    box = Box.cube(half, center=cam.look_at)
    total, done = float(res) ** 3, [0]

    def step(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(min(1.0, done[0] / total))

    grid = separable_grid(G, planes, box, res, with_rgb=True, kind="raw", progress=step, cancel=cancel)
    pre = grid.values + np.float32(G.cfg.generator.density_shift)  # sigma = softplus(pre)
    rgb = (grid.rgb + 1) * 0.5
    threshold = density_threshold(MAX_LOSS, cam.near, cam.far)
    return BakedField.from_arrays(rgb, pre, box.lo, 2 * half, threshold, SOFTPLUS)
