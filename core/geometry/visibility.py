"""The occlusion field: how hidden each grid node is from outside the crop box.

A density iso-surface is the wrong surface for a soft field. A young model's density often peaks
in a thin layer under the rendered surface and falls off below it, so any single level gives a
hollow shell, or a torn one where the layer's peak dips below the level, even though the layer is
opaque enough to hide everything behind it in the renders. The "visibility" surface asks what the
renderer asks instead: how much light reaches a point from outside.

For each of the 26 grid directions d in {-1, 0, 1}^3 \\ {0}, T_d(p) is the transmittance of light
that enters the box and travels along +d to node p, by the exact grid recurrence (trapezoid rule
on the segment from the upstream node p - d):

    T_d(p) = T_d(p - d) * exp(-(sigma(p - d) + sigma(p)) / 2 * |d * spacing|),
    T_d(p) = 1 where p - d lies outside the grid (the box is lit from outside).

The occlusion is A(p) = 1 - max_d T_d(p): 0 where some direction sees p unobstructed, towards 1
where every direction is blocked. A is physical (sigma in activated units per world length, as the
renderer composites it), so grids of different resolutions describe the same surface, and its
iso-surface at 0.5 lies where the best-placed of 26 cameras would see half the light blocked: at
the rendered surface. The inside of an opaque shell is occluded from every direction and comes out
solid; a cavity with an opening (a cup's well, a torus' hole) stays open, since a straight line
of grid nodes reaches into it from outside. The crop box counts as the edge of the world: where it
cuts through an object, light enters through the cut, as in a cut-away view.

Cost: 26 sweeps over the grid, each one plane of nodes at a time (res steps of res^2 operations),
in torch on the grid's device or a given one; memory: the result, the density and two planes.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from .grid import DensityGrid

SURFACES = ("density", "visibility")
OCCLUSION_HALF = 0.5  # the visibility surface's physical level: half of the light blocked
DIRECTIONS = tuple(d for d in itertools.product((-1, 0, 1), repeat=3) if d != (0, 0, 0))


def _plane(a: torch.Tensor, axis: int, step: int, k: int) -> torch.Tensor:
    """The k-th plane across `axis` in the sweep's order (from the far side when step is -1): a view."""
    return a.select(axis, k if step > 0 else a.shape[axis] - 1 - k)


def _shift_slices(shift: int, n: int) -> tuple[slice, slice]:
    """(destination, source) slices along one axis for out[j] = in[j - shift], shift in {-1, 0, 1}."""
    if shift == 0:
        return slice(None), slice(None)
    if shift > 0:
        return slice(1, None), slice(None, n - 1)
    return slice(None, n - 1), slice(1, None)


@torch.no_grad()
def _sweep(sigma: torch.Tensor, spacing, d, reduce_into: torch.Tensor | None = None) -> torch.Tensor | None:
    """T_d for every node of sigma [X, Y, Z] (float32, any device). With `reduce_into`, fold it into
    that tensor by maximum (plane by plane, never holding T_d whole) and return None; else return T_d."""
    d = tuple(int(v) for v in d)
    length = float(np.sqrt(sum((di * float(h)) ** 2 for di, h in zip(d, spacing))))
    axis = next(i for i, v in enumerate(d) if v != 0)  # sweep along the first moving axis
    others = [i for i in range(3) if i != axis]  # a plane's own axes, in order
    target = torch.empty_like(sigma) if reduce_into is None else reduce_into
    dst0, src0 = _shift_slices(d[others[0]], sigma.shape[others[0]])
    dst1, src1 = _shift_slices(d[others[1]], sigma.shape[others[1]])

    def half(k):  # exp(-sigma/2 |d|) of plane k: half of each segment's optical depth
        return torch.exp(-0.5 * length * _plane(sigma, axis, d[axis], k).clamp_min(0))

    t = torch.ones_like(_plane(sigma, axis, d[axis], 0))
    h = half(0)
    for k in range(sigma.shape[axis]):
        if k > 0:
            leaving = t * h  # light leaving plane k-1 towards plane k
            h = half(k)
            t = torch.ones_like(leaving)
            t[dst0, dst1] = leaving[src0, src1] * h[dst0, dst1]
        out = _plane(target, axis, d[axis], k)
        if reduce_into is None:
            out.copy_(t)
        else:
            torch.maximum(out, t, out=out)
    return None if reduce_into is not None else target


def _as_tensor(sigma, device) -> torch.Tensor:
    t = sigma if isinstance(sigma, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(sigma, np.float32))
    return t.to(device=device or t.device, dtype=torch.float32)


def directional_transmittance(sigma, spacing, d, device=None) -> np.ndarray:
    """T_d [X, Y, Z] (float32) of a density grid sigma [X, Y, Z] (activated, per world unit) with node
    spacing (hx, hy, hz), for one direction d in {-1, 0, 1}^3 \\ {0} (module docstring)."""
    if tuple(int(v) for v in d) not in DIRECTIONS:
        raise ValueError(f"direction must be in {{-1, 0, 1}}^3 and not zero, got {d}")
    return _sweep(_as_tensor(sigma, device), spacing, d).cpu().numpy()


def occlusion(sigma, spacing, device=None) -> np.ndarray:
    """A = 1 - max over the 26 directions of T_d: [X, Y, Z] float32 in [0, 1]. sigma: numpy or torch;
    the sweeps run on `device` (default: sigma's own)."""
    s = _as_tensor(sigma, device)
    if s.ndim != 3 or min(s.shape) < 2:
        raise ValueError(f"occlusion needs a 3D grid of at least 2 nodes per side, got shape {tuple(s.shape)}")
    best = torch.zeros_like(s)
    for d in DIRECTIONS:
        _sweep(s, spacing, d, reduce_into=best)
    return (1.0 - best).cpu().numpy()


def occlusion_grid(grid: DensityGrid, device=None) -> DensityGrid:
    """The occlusion of an activated-density grid as a grid of kind "occlusion" (same box, same rgb)."""
    if grid.kind != "activated":
        raise ValueError(f"the occlusion needs activated density (per world unit), got a '{grid.kind}' grid")
    return DensityGrid(occlusion(grid.values, grid.spacing, device), grid.box, "occlusion", grid.rgb)


def surface_grid(grid: DensityGrid, surface: str, device=None) -> DensityGrid:
    """The grid whose iso-surface is the mesh: the density itself, or its occlusion ("visibility",
    computed on `device`: CPU by default)."""
    if surface == "density":
        return grid
    if surface == "visibility":
        return occlusion_grid(grid, device)
    raise ValueError(f"unknown surface '{surface}' ({', '.join(SURFACES)})")
