"""Triton kernels of the render ops. Imports triton: reached only through `core.kernels.ops` when a
call is dispatched to Triton (CUDA tensors, or TRITON_INTERPRET=1 set before Python started).

Layout: the planes are read channels-last ([B, 3, H, W, C], one contiguous C-vector per texel) so
each bilinear tap is one contiguous read; every kernel accumulates in fp32 whatever the planes'
dtype. Shapes are padded to powers of two inside the kernels (masked loads), so any C and MLP width
work. The decoder MLP runs on tl.dot with ieee fp32 precision (no TF32), the output layer padded
from 4 to 16 columns.

  triplane_sample: forward one program per (batch, block of points); backward scatters
      w * grad / 3 into an fp32 plane gradient with atomics and computes the point gradient from
      the texel differences.
  composite: one program per block of rays looping over the samples; the backward recomputes the
      transmittance front to back with dL/dtau_k = T_{k+1} v_k - sum_{i>k} w_i v_i, where
      v_i = <dL/drgb, c_i> + dL/dopacity + dL/ddepth_raw * t_i.
  query_points: sample + MLP + softplus per block of points (inference).
  march_rays: one program per block of rays: points, sample, MLP, softplus and compositing with
      early termination (dead rays skip their memory reads; the block stops once all its rays are
      dead), nothing per sample written but the weights (inference).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .reference import FAR_DELTA_OPAQUE, FAR_DELTA_OPEN, depth_from

INTERPRET = __import__("os").environ.get("TRITON_INTERPRET", "0") not in ("", "0")
BLOCK_POINTS = 16 if INTERPRET else 64
BLOCK_RAYS = 16 if INTERPRET else 64


def _p2(n: int, lo: int = 1) -> int:
    return max(lo, triton.next_power_of_2(int(n)))


# ------------------------------------------------------------------------------------------------
# Device helpers


@triton.jit
def _texel_grid(u, v, H, W):
    """Normalised (u, v) -> corner (x0, y0) int and fractions (ax, ay); far-outside points clamped."""
    fx = (u + 1.0) * (0.5 * (W - 1).to(tl.float32))
    fy = (v + 1.0) * (0.5 * (H - 1).to(tl.float32))
    fx = tl.minimum(tl.maximum(fx, -2.0), W.to(tl.float32) + 1.0)
    fy = tl.minimum(tl.maximum(fy, -2.0), H.to(tl.float32) + 1.0)
    x0f = tl.floor(fx)
    y0f = tl.floor(fy)
    return x0f.to(tl.int32), y0f.to(tl.int32), fx - x0f, fy - y0f


@triton.jit
def _tap(plane_ptr, x, y, H, W, C, offs_c, cmask, mask):
    """Texel (x, y) of a channels-last plane -> [BLOCK, BLOCK_C] fp32, zeros outside."""
    ok = mask & (x >= 0) & (x < W) & (y >= 0) & (y < H)
    idx = (y.to(tl.int64) * W + x) * C
    return tl.load(plane_ptr + idx[:, None] + offs_c[None, :], mask=ok[:, None] & cmask[None, :],
                   other=0.0).to(tl.float32)


@triton.jit
def _bilinear(plane_ptr, u, v, H, W, C, offs_c, cmask, mask):
    x0, y0, ax, ay = _texel_grid(u, v, H, W)
    v00 = _tap(plane_ptr, x0, y0, H, W, C, offs_c, cmask, mask)
    v10 = _tap(plane_ptr, x0 + 1, y0, H, W, C, offs_c, cmask, mask)
    v01 = _tap(plane_ptr, x0, y0 + 1, H, W, C, offs_c, cmask, mask)
    v11 = _tap(plane_ptr, x0 + 1, y0 + 1, H, W, C, offs_c, cmask, mask)
    ax = ax[:, None]
    ay = ay[:, None]
    return (v00 * (1 - ax) + v10 * ax) * (1 - ay) + (v01 * (1 - ax) + v11 * ax) * ay


@triton.jit
def _triplane(planes_ptr, b, x, y, z, H, W, C, offs_c, cmask, mask):
    """Mean of the three planes' bilinear features at normalised (x, y, z): [BLOCK, BLOCK_C] fp32."""
    plane = H.to(tl.int64) * W * C
    base = planes_ptr + b.to(tl.int64) * 3 * plane
    f = _bilinear(base, x, y, H, W, C, offs_c, cmask, mask)
    f += _bilinear(base + plane, x, z, H, W, C, offs_c, cmask, mask)
    f += _bilinear(base + 2 * plane, y, z, H, W, C, offs_c, cmask, mask)
    return f * (1.0 / 3.0)


@triton.jit
def _mlp_weights(w0_ptr, b0_ptr, w1_ptr, b1_ptr, C, HD, offs_c, cmask, BLOCK_H: tl.constexpr,
                 OUT_PAD: tl.constexpr):
    """Load the decoder (row-major w0 [HD, C], w1 [4, HD]) transposed and zero-padded, once per program."""
    offs_h = tl.arange(0, BLOCK_H)
    hmask = offs_h < HD
    w0t = tl.load(w0_ptr + offs_h[None, :] * C + offs_c[:, None], mask=cmask[:, None] & hmask[None, :], other=0.0)
    b0 = tl.load(b0_ptr + offs_h, mask=hmask, other=0.0)
    offs_o = tl.arange(0, OUT_PAD)
    omask = offs_o < 4
    w1t = tl.load(w1_ptr + offs_o[None, :] * HD + offs_h[:, None], mask=hmask[:, None] & omask[None, :], other=0.0)
    b1 = tl.load(b1_ptr + offs_o, mask=omask, other=0.0)
    return w0t, b0, w1t, b1, offs_o


@triton.jit
def _mlp(feats, w0t, b0, w1t, b1):
    """feats [BLOCK, BLOCK_C] -> raw [BLOCK, OUT_PAD] (columns 0..3 used): lrelu(f w0^T + b0) w1^T + b1."""
    hidden = tl.dot(feats, w0t, input_precision="ieee") + b0[None, :]
    hidden = tl.where(hidden >= 0, hidden, hidden * 0.2)  # reference.LRELU_SLOPE
    return tl.dot(hidden, w1t, input_precision="ieee") + b1[None, :]


@triton.jit
def _column(x, offs, k):
    return tl.sum(tl.where(offs[None, :] == k, x, 0.0), axis=1)


@triton.jit
def _softplus(x):
    z = tl.exp(-tl.abs(x))
    return tl.maximum(x, 0.0) + tl.where(z < 1e-4, z * (1.0 - 0.5 * z), tl.log(1.0 + z))


@triton.jit
def _alpha(tau):
    """1 - exp(-tau), accurate for small tau (Triton has no expm1)."""
    return tl.where(tau < 1e-3, tau * (1.0 - tau * (0.5 - tau * (1.0 / 6.0))), 1.0 - tl.exp(-tau))


# ------------------------------------------------------------------------------------------------
# triplane_sample


@triton.jit
def _triplane_fwd(planes_ptr, pts_ptr, out_ptr, N, H, W, C, scale,
                  BLOCK: tl.constexpr, BLOCK_C: tl.constexpr):
    pid = tl.program_id(0)
    b = tl.program_id(1)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    offs_c = tl.arange(0, BLOCK_C)
    cmask = offs_c < C
    p = pts_ptr + (b.to(tl.int64) * N + offs) * 3
    x = tl.load(p, mask=mask, other=0.0) / scale
    y = tl.load(p + 1, mask=mask, other=0.0) / scale
    z = tl.load(p + 2, mask=mask, other=0.0) / scale
    f = _triplane(planes_ptr, b, x, y, z, H, W, C, offs_c, cmask, mask)
    o = out_ptr + (b.to(tl.int64) * N + offs)[:, None] * C + offs_c[None, :]
    tl.store(o, f, mask=mask[:, None] & cmask[None, :])


@triton.jit
def _plane_bwd(plane_ptr, gplane_ptr, u, v, g, H, W, C, offs_c, cmask, mask, NEED_PLANES: tl.constexpr):
    """Scatter g * bilinear weight into the plane gradient; return d<g, f>/du, d<g, f>/dv."""
    x0, y0, ax, ay = _texel_grid(u, v, H, W)
    v00 = tl.sum(g * _tap(plane_ptr, x0, y0, H, W, C, offs_c, cmask, mask), axis=1)
    v10 = tl.sum(g * _tap(plane_ptr, x0 + 1, y0, H, W, C, offs_c, cmask, mask), axis=1)
    v01 = tl.sum(g * _tap(plane_ptr, x0, y0 + 1, H, W, C, offs_c, cmask, mask), axis=1)
    v11 = tl.sum(g * _tap(plane_ptr, x0 + 1, y0 + 1, H, W, C, offs_c, cmask, mask), axis=1)
    du = ((v10 - v00) * (1 - ay) + (v11 - v01) * ay) * (0.5 * (W - 1).to(tl.float32))
    dv = ((v01 - v00) * (1 - ax) + (v11 - v10) * ax) * (0.5 * (H - 1).to(tl.float32))
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
                  BLOCK: tl.constexpr, BLOCK_C: tl.constexpr, NEED_PLANES: tl.constexpr):
    pid = tl.program_id(0)
    b = tl.program_id(1)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    offs_c = tl.arange(0, BLOCK_C)
    cmask = offs_c < C
    row = b.to(tl.int64) * N + offs
    p = pts_ptr + row * 3
    x = tl.load(p, mask=mask, other=0.0) / scale
    y = tl.load(p + 1, mask=mask, other=0.0) / scale
    z = tl.load(p + 2, mask=mask, other=0.0) / scale
    g = tl.load(gout_ptr + row[:, None] * C + offs_c[None, :], mask=mask[:, None] & cmask[None, :], other=0.0)
    g = g * (1.0 / 3.0)
    plane = H.to(tl.int64) * W * C
    base = b.to(tl.int64) * 3 * plane
    du0, dv0 = _plane_bwd(planes_ptr + base, gplanes_ptr + base, x, y, g, H, W, C, offs_c, cmask, mask, NEED_PLANES)
    du1, dv1 = _plane_bwd(planes_ptr + base + plane, gplanes_ptr + base + plane, x, z, g, H, W, C, offs_c, cmask,
                          mask, NEED_PLANES)
    du2, dv2 = _plane_bwd(planes_ptr + base + 2 * plane, gplanes_ptr + base + 2 * plane, y, z, g, H, W, C, offs_c,
                          cmask, mask, NEED_PLANES)
    q = gpts_ptr + row * 3
    tl.store(q, (du0 + du1) / scale, mask=mask)
    tl.store(q + 1, (dv0 + du2) / scale, mask=mask)
    tl.store(q + 2, (dv1 + dv2) / scale, mask=mask)


def _channels_last(planes: torch.Tensor) -> torch.Tensor:
    """[B, 3, C, H, W] -> contiguous [B, 3, H, W, C] (fp64 is computed in fp32)."""
    if planes.dtype == torch.float64:
        planes = planes.float()
    return planes.permute(0, 1, 3, 4, 2).contiguous()


class _TriplaneSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, planes, points, cube_scale):
        b, _, c, h, w = planes.shape
        n = points.shape[1]
        pcl = _channels_last(planes)
        pts = points.float().contiguous()
        out = torch.empty(b, n, c, device=points.device, dtype=torch.float32)
        if n > 0:
            _triplane_fwd[(triton.cdiv(n, BLOCK_POINTS), b)](pcl, pts, out, n, h, w, c, float(cube_scale),
                                                            BLOCK=BLOCK_POINTS, BLOCK_C=_p2(c, 16))
        # keep the caller's planes (alive in the graph anyway), not the channels-last copy: the
        # backward rebuilds that copy for the moment it runs
        ctx.save_for_backward(planes, pts)
        ctx.meta = (cube_scale, planes.dtype, points.dtype)
        return out.to(planes.dtype)

    @staticmethod
    def backward(ctx, grad):
        planes, pts = ctx.saved_tensors
        pcl = _channels_last(planes)
        cube_scale, planes_dtype, points_dtype = ctx.meta
        b, _, h, w, c = pcl.shape
        n = pts.shape[1]
        need_planes = ctx.needs_input_grad[0]
        gplanes = torch.zeros(pcl.shape, device=pcl.device, dtype=torch.float32) if need_planes else pcl
        gpts = torch.empty_like(pts)
        if n > 0:
            _triplane_bwd[(triton.cdiv(n, BLOCK_POINTS), b)](
                pcl, pts, grad.float().contiguous(), gplanes, gpts, n, h, w, c, float(cube_scale),
                BLOCK=BLOCK_POINTS, BLOCK_C=_p2(c, 16), NEED_PLANES=need_planes)
        gp = gplanes.permute(0, 1, 4, 2, 3).to(planes_dtype) if need_planes else None
        gq = gpts.to(points_dtype) if ctx.needs_input_grad[1] else None
        return gp, gq, None


def triplane_sample(planes: torch.Tensor, points: torch.Tensor, cube_scale: float) -> torch.Tensor:
    return _TriplaneSample.apply(planes, points, float(cube_scale))


# ------------------------------------------------------------------------------------------------
# composite


@triton.jit
def _composite_fwd(rgb_ptr, sigma_ptr, t_ptr, out_rgb_ptr, opacity_ptr, depth_ptr, weights_ptr,
                   M, S, C, last_delta, stop, BLOCK: tl.constexpr, BLOCK_C: tl.constexpr):
    pid = tl.program_id(0)
    rays = pid * BLOCK + tl.arange(0, BLOCK)
    mask = rays < M
    offs_c = tl.arange(0, BLOCK_C)
    cmask = offs_c < C
    rows = rays.to(tl.int64) * S
    trans = tl.full([BLOCK], 1.0, tl.float32)
    acc = tl.zeros([BLOCK, BLOCK_C], tl.float32)
    opacity = tl.zeros([BLOCK], tl.float32)
    depth = tl.zeros([BLOCK], tl.float32)
    for s in range(0, S):
        alive = mask & (trans >= stop)
        sig = tl.load(sigma_ptr + rows + s, mask=alive, other=0.0).to(tl.float32)
        ts = tl.load(t_ptr + rows + s, mask=mask, other=0.0).to(tl.float32)
        has_next = (tl.zeros([BLOCK], tl.int32) + s + 1) < S
        tn = tl.load(t_ptr + rows + s + 1, mask=mask & has_next, other=0.0).to(tl.float32)
        delta = tl.where(has_next, tn - ts, last_delta)
        tau = sig * delta
        w = tl.where(alive, trans * _alpha(tau), 0.0)
        c = tl.load(rgb_ptr + (rows + s)[:, None] * C + offs_c[None, :], mask=alive[:, None] & cmask[None, :],
                    other=0.0).to(tl.float32)
        acc += w[:, None] * c
        opacity += w
        depth += w * ts
        tl.store(weights_ptr + rows + s, w, mask=mask)
        trans = trans * tl.exp(-tau)
    tl.store(out_rgb_ptr + rays.to(tl.int64)[:, None] * C + offs_c[None, :], acc, mask=mask[:, None] & cmask[None, :])
    tl.store(opacity_ptr + rays, opacity, mask=mask)
    tl.store(depth_ptr + rays, depth, mask=mask)


@triton.jit
def _composite_bwd(rgb_ptr, sigma_ptr, t_ptr, g_rgb_ptr, g_opacity_ptr, g_depth_ptr, grad_rgb_ptr, grad_sigma_ptr,
                   M, S, C, last_delta, BLOCK: tl.constexpr, BLOCK_C: tl.constexpr):
    pid = tl.program_id(0)
    rays = pid * BLOCK + tl.arange(0, BLOCK)
    mask = rays < M
    offs_c = tl.arange(0, BLOCK_C)
    cmask = offs_c < C
    rows = rays.to(tl.int64) * S
    gc = tl.load(g_rgb_ptr + rays.to(tl.int64)[:, None] * C + offs_c[None, :], mask=mask[:, None] & cmask[None, :],
                 other=0.0)
    go = tl.load(g_opacity_ptr + rays, mask=mask, other=0.0)
    gd = tl.load(g_depth_ptr + rays, mask=mask, other=0.0)
    # pass 1: total = sum_i w_i v_i
    trans = tl.full([BLOCK], 1.0, tl.float32)
    total = tl.zeros([BLOCK], tl.float32)
    for s in range(0, S):
        sig = tl.load(sigma_ptr + rows + s, mask=mask, other=0.0).to(tl.float32)
        ts = tl.load(t_ptr + rows + s, mask=mask, other=0.0).to(tl.float32)
        has_next = (tl.zeros([BLOCK], tl.int32) + s + 1) < S
        tn = tl.load(t_ptr + rows + s + 1, mask=mask & has_next, other=0.0).to(tl.float32)
        tau = sig * tl.where(has_next, tn - ts, last_delta)
        c = tl.load(rgb_ptr + (rows + s)[:, None] * C + offs_c[None, :], mask=mask[:, None] & cmask[None, :],
                    other=0.0).to(tl.float32)
        v = tl.sum(gc * c, axis=1) + go + gd * ts
        total += trans * _alpha(tau) * v
        trans = trans * tl.exp(-tau)
    # pass 2: dL/dtau_k = T_{k+1} v_k - sum_{i>k} w_i v_i
    trans = tl.full([BLOCK], 1.0, tl.float32)
    prefix = tl.zeros([BLOCK], tl.float32)
    for s in range(0, S):
        sig = tl.load(sigma_ptr + rows + s, mask=mask, other=0.0).to(tl.float32)
        ts = tl.load(t_ptr + rows + s, mask=mask, other=0.0).to(tl.float32)
        has_next = (tl.zeros([BLOCK], tl.int32) + s + 1) < S
        tn = tl.load(t_ptr + rows + s + 1, mask=mask & has_next, other=0.0).to(tl.float32)
        delta = tl.where(has_next, tn - ts, last_delta)
        tau = sig * delta
        c = tl.load(rgb_ptr + (rows + s)[:, None] * C + offs_c[None, :], mask=mask[:, None] & cmask[None, :],
                    other=0.0).to(tl.float32)
        v = tl.sum(gc * c, axis=1) + go + gd * ts
        w = trans * _alpha(tau)
        prefix += w * v
        trans = trans * tl.exp(-tau)
        after = tl.where(has_next, total - prefix, 0.0)
        tl.store(grad_sigma_ptr + rows + s, (trans * v - after) * delta, mask=mask)
        tl.store(grad_rgb_ptr + (rows + s)[:, None] * C + offs_c[None, :], w[:, None] * gc,
                 mask=mask[:, None] & cmask[None, :])


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rgb, sigma, t, last_delta, stop):
        m, s, c = rgb.shape
        rgb_c, sig_c, t_c = rgb.float().contiguous(), sigma.float().contiguous(), t.float().contiguous()
        out_rgb = torch.empty(m, c, device=rgb.device, dtype=torch.float32)
        opacity = torch.empty(m, device=rgb.device, dtype=torch.float32)
        depth_raw = torch.empty_like(opacity)
        weights = torch.empty(m, s, device=rgb.device, dtype=torch.float32)
        if m > 0:
            _composite_fwd[(triton.cdiv(m, BLOCK_RAYS),)](rgb_c, sig_c, t_c, out_rgb, opacity, depth_raw, weights,
                                                          m, s, c, last_delta, stop, BLOCK=BLOCK_RAYS,
                                                          BLOCK_C=_p2(c, 2))
        ctx.save_for_backward(rgb_c, sig_c, t_c)
        ctx.meta = (last_delta, rgb.dtype, sigma.dtype)
        ctx.mark_non_differentiable(weights)
        return out_rgb, opacity, depth_raw, weights

    @staticmethod
    def backward(ctx, g_rgb, g_opacity, g_depth, _g_weights):
        rgb, sigma, t = ctx.saved_tensors
        last_delta, rgb_dtype, sigma_dtype = ctx.meta
        m, s, c = rgb.shape
        z = torch.zeros(m, device=rgb.device, dtype=torch.float32)
        g_rgb = z[:, None].expand(m, c) if g_rgb is None else g_rgb
        g_opacity = z if g_opacity is None else g_opacity
        g_depth = z if g_depth is None else g_depth
        grad_rgb = torch.empty_like(rgb)
        grad_sigma = torch.empty_like(sigma)
        if m > 0:
            _composite_bwd[(triton.cdiv(m, BLOCK_RAYS),)](
                rgb, sigma, t, g_rgb.float().contiguous(), g_opacity.float().contiguous(),
                g_depth.float().contiguous(), grad_rgb, grad_sigma, m, s, c, last_delta,
                BLOCK=BLOCK_RAYS, BLOCK_C=_p2(c, 2))
        return grad_rgb.to(rgb_dtype), grad_sigma.to(sigma_dtype), None, None, None


def composite(rgb: torch.Tensor, sigma: torch.Tensor, t: torch.Tensor, far_opaque: bool,
              stop_transmittance: float = 0.0) -> dict[str, torch.Tensor]:
    if torch.is_grad_enabled() and t.requires_grad:
        raise ValueError("composite (triton): no gradient to the depths t; detach them or use impl='reference'")
    lead, s, c = sigma.shape[:-1], sigma.shape[-1], rgb.shape[-1]
    out_dtype = torch.promote_types(rgb.dtype, sigma.dtype)
    m = lead.numel()
    out_rgb, opacity, depth_raw, weights = _Composite.apply(
        rgb.reshape(m, s, c), sigma.reshape(m, s), t.reshape(m, s),
        FAR_DELTA_OPAQUE if far_opaque else FAR_DELTA_OPEN, float(stop_transmittance))
    out_rgb, opacity, depth_raw = (x.to(out_dtype) for x in (out_rgb, opacity, depth_raw))
    opacity, depth_raw = opacity.reshape(lead), depth_raw.reshape(lead)
    return {"rgb": out_rgb.reshape(*lead, c), "opacity": opacity, "depth": depth_from(depth_raw, opacity, t),
            "depth_raw": depth_raw, "weights": weights.reshape(sigma.shape).to(out_dtype)}


# ------------------------------------------------------------------------------------------------
# query_points and march_rays (inference)


@triton.jit
def _query_fwd(planes_ptr, pts_ptr, w0_ptr, b0_ptr, w1_ptr, b1_ptr, rgb_ptr, sigma_ptr, N, H, W, C, HD,
               scale, shift, BLOCK: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr,
               OUT_PAD: tl.constexpr):
    pid = tl.program_id(0)
    b = tl.program_id(1)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    offs_c = tl.arange(0, BLOCK_C)
    cmask = offs_c < C
    row = b.to(tl.int64) * N + offs
    p = pts_ptr + row * 3
    x = tl.load(p, mask=mask, other=0.0) / scale
    y = tl.load(p + 1, mask=mask, other=0.0) / scale
    z = tl.load(p + 2, mask=mask, other=0.0) / scale
    f = _triplane(planes_ptr, b, x, y, z, H, W, C, offs_c, cmask, mask)
    w0t, b0, w1t, b1, offs_o = _mlp_weights(w0_ptr, b0_ptr, w1_ptr, b1_ptr, C, HD, offs_c, cmask, BLOCK_H, OUT_PAD)
    raw = _mlp(f, w0t, b0, w1t, b1)
    tl.store(rgb_ptr + row[:, None] * 3 + offs_o[None, :], raw, mask=mask[:, None] & (offs_o[None, :] < 3))
    tl.store(sigma_ptr + row, _softplus(_column(raw, offs_o, 3) + shift), mask=mask)


def _mlp_args(params, device):
    w0, b0, w1, b1 = (p.detach().to(device=device, dtype=torch.float32).contiguous() for p in params)
    return w0, b0, w1, b1, w0.shape[0]


def query_points(planes, points, cube_scale, params, density_shift):
    b, _, c, h, w = planes.shape
    n = points.shape[1]
    pcl = _channels_last(planes)
    pts = points.float().contiguous()
    w0, b0, w1, b1, hd = _mlp_args(params, points.device)
    rgb = torch.empty(b, n, 3, device=points.device, dtype=torch.float32)
    sigma = torch.empty(b, n, device=points.device, dtype=torch.float32)
    if n > 0:
        _query_fwd[(triton.cdiv(n, BLOCK_POINTS), b)](pcl, pts, w0, b0, w1, b1, rgb, sigma, n, h, w, c, hd,
                                                     float(cube_scale), float(density_shift), BLOCK=BLOCK_POINTS,
                                                     BLOCK_C=_p2(c, 16), BLOCK_H=_p2(hd, 16), OUT_PAD=16)
    dt = torch.float64 if planes.dtype == torch.float64 else torch.float32
    return rgb.to(dt), sigma.to(dt)


@triton.jit
def _march_fwd(planes_ptr, o_ptr, d_ptr, t_ptr, w0_ptr, b0_ptr, w1_ptr, b1_ptr, rgb_ptr, opacity_ptr, depth_ptr,
               weights_ptr, R, S, H, W, C, HD, scale, shift, last_delta, stop, BLOCK: tl.constexpr,
               BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr, OUT_PAD: tl.constexpr):
    pid = tl.program_id(0)
    b = tl.program_id(1)
    rays = pid * BLOCK + tl.arange(0, BLOCK)
    mask = rays < R
    offs_c = tl.arange(0, BLOCK_C)
    cmask = offs_c < C
    ray = b.to(tl.int64) * R + rays
    ox = tl.load(o_ptr + ray * 3, mask=mask, other=0.0)
    oy = tl.load(o_ptr + ray * 3 + 1, mask=mask, other=0.0)
    oz = tl.load(o_ptr + ray * 3 + 2, mask=mask, other=0.0)
    dx = tl.load(d_ptr + ray * 3, mask=mask, other=0.0)
    dy = tl.load(d_ptr + ray * 3 + 1, mask=mask, other=0.0)
    dz = tl.load(d_ptr + ray * 3 + 2, mask=mask, other=0.0)
    rows = ray * S
    w0t, b0, w1t, b1, offs_o = _mlp_weights(w0_ptr, b0_ptr, w1_ptr, b1_ptr, C, HD, offs_c, cmask, BLOCK_H, OUT_PAD)
    trans = tl.full([BLOCK], 1.0, tl.float32)
    acc_r = tl.zeros([BLOCK], tl.float32)
    acc_g = tl.zeros([BLOCK], tl.float32)
    acc_b = tl.zeros([BLOCK], tl.float32)
    opacity = tl.zeros([BLOCK], tl.float32)
    depth = tl.zeros([BLOCK], tl.float32)
    # march until every ray of the block has terminated (weights start zeroed, so skipped ones stay 0)
    s = tl.zeros([], tl.int32)
    n_alive = tl.sum(mask.to(tl.int32), axis=0)
    while (s < S) & (n_alive > 0):
        alive = mask & (trans >= stop)
        ts = tl.load(t_ptr + rows + s, mask=mask, other=0.0)
        has_next = (tl.zeros([BLOCK], tl.int32) + s + 1) < S
        tn = tl.load(t_ptr + rows + s + 1, mask=mask & has_next, other=0.0)
        delta = tl.where(has_next, tn - ts, last_delta)
        f = _triplane(planes_ptr, b, (ox + ts * dx) / scale, (oy + ts * dy) / scale,
                      (oz + ts * dz) / scale, H, W, C, offs_c, cmask, alive)
        raw = _mlp(f, w0t, b0, w1t, b1)
        tau = _softplus(_column(raw, offs_o, 3) + shift) * delta
        w = tl.where(alive, trans * _alpha(tau), 0.0)
        acc_r += w * _column(raw, offs_o, 0)
        acc_g += w * _column(raw, offs_o, 1)
        acc_b += w * _column(raw, offs_o, 2)
        opacity += w
        depth += w * ts
        tl.store(weights_ptr + rows + s, w, mask=mask)
        trans = trans * tl.exp(-tau)
        s += 1
        n_alive = tl.sum((mask & (trans >= stop)).to(tl.int32), axis=0)
    tl.store(rgb_ptr + ray * 3, acc_r, mask=mask)
    tl.store(rgb_ptr + ray * 3 + 1, acc_g, mask=mask)
    tl.store(rgb_ptr + ray * 3 + 2, acc_b, mask=mask)
    tl.store(opacity_ptr + ray, opacity, mask=mask)
    tl.store(depth_ptr + ray, depth, mask=mask)


def march_rays(planes, origins, dirs, t, cube_scale, params, density_shift, far_opaque, stop_transmittance=0.0):
    b, _, c, h, w = planes.shape
    r, s = t.shape[1], t.shape[2]
    dev = origins.device
    pcl = _channels_last(planes)
    o, d, tt = (x.float().contiguous() for x in (origins, dirs, t))
    w0, b0, w1, b1, hd = _mlp_args(params, dev)
    rgb = torch.empty(b, r, 3, device=dev, dtype=torch.float32)
    opacity = torch.empty(b, r, device=dev, dtype=torch.float32)
    depth_raw = torch.empty_like(opacity)
    weights = torch.zeros(b, r, s, device=dev, dtype=torch.float32)
    if r > 0 and s > 0:
        _march_fwd[(triton.cdiv(r, BLOCK_RAYS), b)](
            pcl, o, d, tt, w0, b0, w1, b1, rgb, opacity, depth_raw, weights, r, s, h, w, c, hd, float(cube_scale),
            float(density_shift), FAR_DELTA_OPAQUE if far_opaque else FAR_DELTA_OPEN, float(stop_transmittance),
            BLOCK=BLOCK_RAYS, BLOCK_C=_p2(c, 16), BLOCK_H=_p2(hd, 16), OUT_PAD=16)
    dt = torch.float64 if planes.dtype == torch.float64 else torch.float32
    rgb, opacity, depth_raw, weights = (x.to(dt) for x in (rgb, opacity, depth_raw, weights))
    return {"rgb": rgb, "opacity": opacity, "depth": depth_from(depth_raw, opacity, t.to(dt)),
            "depth_raw": depth_raw, "weights": weights}


__all__ = ["triplane_sample", "composite", "query_points", "march_rays"]
