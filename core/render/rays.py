"""Rays for full images and for patches.

Pixel-centre convention (graphics' half-pixel one): column i of an R-pixel-wide image has its
centre at NDC x = -1 + (2i + 1) / R, row j at y = 1 - (2j + 1) / R (y up, row 0 at the top), so the
image borders, not the outer pixel centres, lie on the field of view's edges.

A patch of scale s and offset (ox, oy) in [0, 1] image units (EpiGRAF's parametrisation) maps its
own r-pixel grid x to x' = (x + 1) * s - 1 + 2 * ox (same for y, with oy measured from the top).
With this convention, a patch with s = r / R and offset (k / R, l / R) renders exactly the crop of
rows l..l+r-1 and columns k..k+r-1 of the full R x R render.
(The reference puts pixel centres on the borders, linspace(-1, 1, R), where no such s exists for a
general crop; see docs/spec.md and docs/conventions.md.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..cameras import Cameras


@dataclass
class Patch:
    """Patch parameters per batch item: scale [B] or [B, 2], offset [B, 2] (x, y), in [0, 1] units."""

    scale: torch.Tensor
    offset: torch.Tensor

    def scales_xy(self) -> torch.Tensor:  # [B, 2]
        s = self.scale
        return s[:, None].expand(-1, 2) if s.ndim == 1 else s


def ndc_grid(resolution: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """[R * R, 2] NDC (x, y) of pixel centres, row-major from the top-left pixel."""
    c = (torch.arange(resolution, device=device, dtype=dtype) * 2 + 1) / resolution - 1  # [R]
    y, x = torch.meshgrid(-c, c, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=-1)


def pixel_ndc(batch: int, resolution: int, patch: Patch | None = None, device=None,
              dtype=torch.float32) -> torch.Tensor:
    """[B, r * r, 2] NDC coordinates of each ray's pixel centre, for a full image or a patch."""
    grid = ndc_grid(resolution, device, dtype)[None].expand(batch, -1, -1)  # [B, N, 2]
    if patch is None:
        return grid
    s = patch.scales_xy().to(device=device, dtype=dtype)[:, None, :]  # [B, 1, 2]
    off = patch.offset.to(device=device, dtype=dtype)[:, None, :]  # [B, 1, 2]
    x = (grid[..., 0:1] + 1) * s[..., 0:1] - 1 + 2 * off[..., 0:1]
    y_from_top = (1 - grid[..., 1:2]) * s[..., 1:2] + 2 * off[..., 1:2]  # distance from the top edge, in [0, 2]
    return torch.cat([x, 1 - y_from_top], dim=-1)


def make_rays(cams: Cameras, resolution: int, patch: Patch | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """World-space ray origins and unit directions, each [B, r * r, 3], row-major pixels."""
    b = len(cams)
    dtype, device = cams.cam2world.dtype, cams.cam2world.device
    ndc = pixel_ndc(b, resolution, patch, device, dtype)  # [B, N, 2]
    u = (ndc[..., 0] + 1) / 2  # [B, N] image coords in [0, 1], left -> right
    v = (1 - ndc[..., 1]) / 2  # top -> bottom
    k = cams.intrinsics
    dx = (u - k[:, 0, 2, None]) / k[:, 0, 0, None]
    dy = -(v - k[:, 1, 2, None]) / k[:, 1, 1, None]
    d_cam = torch.stack([dx, dy, -torch.ones_like(dx)], dim=-1)  # OpenGL: looks down -z
    d_cam = torch.nn.functional.normalize(d_cam, dim=-1)
    rot = cams.cam2world[:, :3, :3]  # [B, 3, 3]
    dirs = torch.einsum("bij,bnj->bni", rot, d_cam)
    origins = cams.cam2world[:, None, :3, 3].expand_as(dirs)
    return origins, dirs
