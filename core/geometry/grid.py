"""Density (and optionally colour) grids over a crop box, queried in chunks under a memory bound.

Grid convention: `res` samples per side on the *nodes* of the box, including both faces:
node (i, j, k) is at world `lo + (i, j, k) * spacing` with `spacing = (hi - lo) / (res - 1)`; the
array is indexed [i, j, k] = [x, y, z]. Computing node positions from integer indices with one
float multiply per axis avoids the reference's float-division shear.

The points are never materialised for the whole grid: each call to the field gets at most
`chunk_points` points, built from a range of flat node indices (float32, [1, n, 3]).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError

Field = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

DEFAULT_CHUNK_POINTS = 1 << 18  # points per field call on CPU (about 10 MB of inputs, ~100 MB of activations)
GPU_CHUNK_POINTS = 1 << 21
AUTO_LEVEL_CELLS = 256  # the auto level's reference length is one cell of a 256^3 grid over the default box


class Cancelled(Exception):
    """Raised inside a grid fill when its cancel() callback returns True."""


@dataclass(frozen=True)
class Box:
    """An axis-aligned crop box in world coordinates (the cameras' frame)."""
    lo: tuple[float, float, float]
    hi: tuple[float, float, float]

    @staticmethod
    def cube(half: float, center=(0.0, 0.0, 0.0)) -> Box:
        return Box(tuple(float(c - half) for c in center), tuple(float(c + half) for c in center))

    def spacing(self, res: int) -> np.ndarray:
        return (np.asarray(self.hi, np.float64) - np.asarray(self.lo, np.float64)) / (res - 1)


def parse_box(text: str | None, cube_scale: float) -> Box:
    """None -> the tri-plane cube [-cube_scale, cube_scale]^3; 'h' -> [-h, h]^3; 'x0,y0,z0,x1,y1,z1'."""
    if text is None or text == "":
        return Box.cube(cube_scale)
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"cannot read --box '{text}': give a half-size (0.25) or x0,y0,z0,x1,y1,z1") from None
    if len(vals) == 1:
        if vals[0] <= 0:
            raise UserError(f"--box half-size must be positive, got {vals[0]}")
        return Box.cube(vals[0])
    if len(vals) != 6:
        raise UserError(f"--box takes 1 or 6 numbers, got {len(vals)} in '{text}'")
    lo, hi = tuple(vals[:3]), tuple(vals[3:])
    if any(b <= a for a, b in zip(lo, hi)):
        raise UserError(f"--box '{text}': each max must exceed its min (x0,y0,z0,x1,y1,z1)")
    return Box(lo, hi)


def auto_level(cube_scale: float) -> float:
    """The automatic iso-level in activated-density units (sigma = softplus(raw + shift)).

    Rule: the density at which a shell one reference length thick reaches opacity 0.5 for a ray
    crossing it, sigma* = ln 2 / l, i.e. where the volume renderer's accumulated opacity along a
    ray would halve within one cell. The reference length l is one cell of a 256^3 grid over the
    tri-plane cube (2 * cube_scale / 256), fixed so that meshes extracted at different resolutions
    describe the same surface. Demo (cube_scale 0.3): 296; ffhq512 (0.2): 444.
    """
    return math.log(2.0) / (2.0 * cube_scale / AUTO_LEVEL_CELLS)


def generator_field(G, planes: torch.Tensor) -> Field:
    """The generator's radiance field for one set of planes [1, 3, C, Rp, Rp]: activated density."""
    def field(points):
        return G.query(planes, points.to(planes.device, planes.dtype))
    return field


def generator_raw_field(G, planes: torch.Tensor) -> Field:
    """As generator_field, but the density is the raw decoder output (before shift and softplus),
    the quantity the reference thresholds at 25."""
    def field(points):
        raw = G.decode(planes, points.to(planes.device, planes.dtype))
        return raw[..., :3], raw[..., 3]
    return field


@dataclass
class DensityGrid:
    values: np.ndarray  # [res, res, res] float32, indexed [x, y, z]
    box: Box
    kind: str  # "activated" (sigma) or "raw" (pre-activation decoder output)
    rgb: np.ndarray | None = None  # [res, res, res, 3] float32 in [-1, 1] when asked for

    @property
    def res(self) -> int:
        return self.values.shape[0]

    @property
    def spacing(self) -> np.ndarray:
        return self.box.spacing(self.res)

    @property
    def origin(self) -> np.ndarray:
        return np.asarray(self.box.lo, np.float64)

    def world(self, ijk) -> np.ndarray:
        """Node indices (any shape [..., 3], may be fractional) -> world coordinates."""
        return self.origin + np.asarray(ijk, np.float64) * self.spacing


def node_points(box: Box, res: int, start: int, stop: int, device=None) -> torch.Tensor:
    """World positions [stop - start, 3] (float32) of flat node indices start..stop-1 (C order)."""
    idx = torch.arange(start, stop, device=device, dtype=torch.int64)
    i = idx // (res * res)
    j = (idx // res) % res
    k = idx % res
    ijk = torch.stack([i, j, k], dim=-1).to(torch.float64)
    lo = torch.tensor(box.lo, dtype=torch.float64, device=device)
    sp = torch.as_tensor(box.spacing(res), dtype=torch.float64, device=device)
    return (lo + ijk * sp).to(torch.float32)


@torch.no_grad()
def density_grid(field: Field, box: Box, res: int, chunk_points: int = DEFAULT_CHUNK_POINTS,
                 with_rgb: bool = False, kind: str = "activated", device=None,
                 progress: Callable[[int], None] | None = None,
                 cancel: Callable[[], bool] | None = None) -> DensityGrid:
    """Sample `field` on the res^3 nodes of `box`, at most `chunk_points` points per call.

    progress(n) is called after each chunk with the number of points done in it; cancel() is
    polled before each chunk and raises Cancelled when it returns True.
    """
    if not 2 <= res <= 2048:
        raise UserError(f"grid resolution must be between 2 and 2048, got {res}")
    if chunk_points < 1:
        raise ValueError("chunk_points must be positive")
    total = res ** 3
    values = np.empty(total, np.float32)
    rgb = np.empty((total, 3), np.float32) if with_rgb else None
    for start in range(0, total, chunk_points):
        if cancel is not None and cancel():
            raise Cancelled("extraction cancelled")
        stop = min(start + chunk_points, total)
        pts = node_points(box, res, start, stop, device)[None]
        c, d = field(pts)
        values[start:stop] = d.reshape(-1).float().cpu().numpy()
        if with_rgb:
            rgb[start:stop] = c.reshape(-1, 3).float().cpu().numpy()
        del pts, c, d
        if progress is not None:
            progress(stop - start)
    return DensityGrid(values.reshape(res, res, res), box, kind,
                       rgb.reshape(res, res, res, 3) if with_rgb else None)
