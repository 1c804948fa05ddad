"""Triton tri-plane sampling with its backward (training).

Forward: one program per (batch, block of points): three bilinear lookups, averaged. Backward: the
same programs scatter w * grad / 3 into an fp32 plane gradient with atomics and compute the point
gradient from the texel differences.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .triton_common import BLOCK_POINTS, channels_last, load_points, p2, program_block, tap, texel_grid, triplane


@triton.jit
def _triplane_fwd(planes_ptr, pts_ptr, out_ptr, N, H, W, C, scale,
                  BLOCK: tl.constexpr, BLOCK_C: tl.constexpr, EG3D: tl.constexpr):
    b, offs, mask, offs_c, cmask = program_block(N, C, BLOCK, BLOCK_C)
    row = b.to(tl.int64) * N + offs
    x, y, z = load_points(pts_ptr, row, mask, scale)
    f = triplane(planes_ptr, b, x, y, z, H, W, C, offs_c, cmask, mask, EG3D)
    tl.store(out_ptr + row[:, None] * C + offs_c[None, :], f, mask=mask[:, None] & cmask[None, :])


@triton.jit
def _plane_bwd(plane_ptr, gplane_ptr, u, v, g, H, W, C, offs_c, cmask, mask, NEED_PLANES: tl.constexpr,
               EG3D: tl.constexpr):
    """Scatter g * bilinear weight into the plane gradient; return d<g, f>/du, d<g, f>/dv."""
    x0, y0, ax, ay = texel_grid(u, v, H, W, EG3D)
    v00 = tl.sum(g * tap(plane_ptr, x0, y0, H, W, C, offs_c, cmask, mask), axis=1)
    v10 = tl.sum(g * tap(plane_ptr, x0 + 1, y0, H, W, C, offs_c, cmask, mask), axis=1)
    v01 = tl.sum(g * tap(plane_ptr, x0, y0 + 1, H, W, C, offs_c, cmask, mask), axis=1)
    v11 = tl.sum(g * tap(plane_ptr, x0 + 1, y0 + 1, H, W, C, offs_c, cmask, mask), axis=1)
    du = (v10 - v00) * (1 - ay) + (v11 - v01) * ay
    dv = (v01 - v00) * (1 - ax) + (v11 - v10) * ax
    if EG3D:  # d(texel)/d(u): W / 2 with align_corners=False, (W - 1) / 2 with True
        du = du * (0.5 * W.to(tl.float32))
        dv = dv * (0.5 * H.to(tl.float32))
    else:
        du = du * (0.5 * (W - 1).to(tl.float32))
        dv = dv * (0.5 * (H - 1).to(tl.float32))
    if NEED_PLANES:
        for corner in tl.static_range(4):
            dx = corner % 2
            dy = corner // 2
            xi = x0 + dx
            yi = y0 + dy
            wx = ax * dx + (1 - ax) * (1 - dx)  # dx, dy are compile-time 0 or 1
            wy = ay * dy + (1 - ay) * (1 - dy)
            ok = mask & (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)
            idx = (yi.to(tl.int64) * W + xi) * C
            tl.atomic_add(gplane_ptr + idx[:, None] + offs_c[None, :], g * (wx * wy)[:, None],
                          mask=ok[:, None] & cmask[None, :])
    return du, dv


@triton.jit
def _triplane_bwd(planes_ptr, pts_ptr, gout_ptr, gplanes_ptr, gpts_ptr, N, H, W, C, scale,
                  BLOCK: tl.constexpr, BLOCK_C: tl.constexpr, NEED_PLANES: tl.constexpr, EG3D: tl.constexpr):
    b, offs, mask, offs_c, cmask = program_block(N, C, BLOCK, BLOCK_C)
    row = b.to(tl.int64) * N + offs
    x, y, z = load_points(pts_ptr, row, mask, scale)
    g = tl.load(gout_ptr + row[:, None] * C + offs_c[None, :], mask=mask[:, None] & cmask[None, :], other=0.0)
    g = g * (1.0 / 3.0)
    plane = H.to(tl.int64) * W * C
    p0 = b.to(tl.int64) * 3 * plane
    p1 = p0 + plane
    p2_ = p1 + plane
    du0, dv0 = _plane_bwd(planes_ptr + p0, gplanes_ptr + p0, x, y, g, H, W, C, offs_c, cmask, mask, NEED_PLANES,
                          EG3D)
    du1, dv1 = _plane_bwd(planes_ptr + p1, gplanes_ptr + p1, x, z, g, H, W, C, offs_c, cmask, mask, NEED_PLANES,
                          EG3D)
    q = gpts_ptr + row * 3
    if EG3D:  # the third plane reads (z, x)
        du2, dv2 = _plane_bwd(planes_ptr + p2_, gplanes_ptr + p2_, z, x, g, H, W, C, offs_c, cmask, mask,
                              NEED_PLANES, EG3D)
        tl.store(q, (du0 + du1 + dv2) / scale, mask=mask)
        tl.store(q + 1, dv0 / scale, mask=mask)
        tl.store(q + 2, (dv1 + du2) / scale, mask=mask)
    else:
        du2, dv2 = _plane_bwd(planes_ptr + p2_, gplanes_ptr + p2_, y, z, g, H, W, C, offs_c, cmask, mask,
                              NEED_PLANES, EG3D)
        tl.store(q, (du0 + du1) / scale, mask=mask)
        tl.store(q + 1, (dv0 + du2) / scale, mask=mask)
        tl.store(q + 2, (dv1 + dv2) / scale, mask=mask)


class _TriplaneSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, planes, points, cube_scale, lookup):
        b, _, c, h, w = planes.shape
        n = points.shape[1]
        pcl = channels_last(planes)
        pts = points.float().contiguous()
        out = torch.empty(b, n, c, device=points.device, dtype=torch.float32)
        if n > 0:
            _triplane_fwd[(triton.cdiv(n, BLOCK_POINTS), b)](pcl, pts, out, n, h, w, c, float(cube_scale),
                                                            BLOCK=BLOCK_POINTS, BLOCK_C=p2(c, 16),
                                                            EG3D=lookup == "eg3d")
        # keep the caller's planes (alive in the graph anyway), not the channels-last copy: the
        # backward rebuilds that copy for the moment it runs
        ctx.save_for_backward(planes, pts)
        ctx.meta = (cube_scale, planes.dtype, points.dtype, lookup)
        return out.to(planes.dtype)

    @staticmethod
    def backward(ctx, grad):
        planes, pts = ctx.saved_tensors
        pcl = channels_last(planes)
        cube_scale, planes_dtype, points_dtype, lookup = ctx.meta
        b, _, h, w, c = pcl.shape
        n = pts.shape[1]
        need_planes = ctx.needs_input_grad[0]
        gplanes = torch.zeros(pcl.shape, device=pcl.device, dtype=torch.float32) if need_planes else pcl
        gpts = torch.empty_like(pts)
        if n > 0:
            _triplane_bwd[(triton.cdiv(n, BLOCK_POINTS), b)](
                pcl, pts, grad.float().contiguous(), gplanes, gpts, n, h, w, c, float(cube_scale),
                BLOCK=BLOCK_POINTS, BLOCK_C=p2(c, 16), NEED_PLANES=need_planes,
                EG3D=lookup == "eg3d")
        gp = gplanes.permute(0, 1, 4, 2, 3).to(planes_dtype) if need_planes else None
        gq = gpts.to(points_dtype) if ctx.needs_input_grad[1] else None
        return gp, gq, None, None


def triplane_sample(planes: torch.Tensor, points: torch.Tensor, cube_scale: float,
                    lookup: str = "epigraf") -> torch.Tensor:
    return _TriplaneSample.apply(planes, points, float(cube_scale), lookup)
