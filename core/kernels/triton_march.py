"""Triton inference kernels: the radiance field at points, and whole rays in one pass.

  query_points: tri-plane sample + decoder MLP + softplus per block of points (mesh grids).
  march_rays: one program per block of rays: points, sample, MLP, softplus and compositing with
      early termination (dead rays skip their memory reads; the block stops once all its rays are
      dead); nothing per sample is written but the weights (for importance sampling).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .reference import depth_from, far_delta
from .triton_common import (
    BLOCK_POINTS,
    BLOCK_RAYS,
    OUT_PAD,
    alpha,
    channels_last,
    column,
    load_points,
    mlp,
    mlp_args,
    mlp_weights,
    p2,
    program_block,
    result_dtype,
    sample_interval,
    softplus,
    triplane,
)


@triton.jit
def _query_fwd(planes_ptr, pts_ptr, w0_ptr, b0_ptr, w1_ptr, b1_ptr, rgb_ptr, sigma_ptr, N, H, W, C, HD,
               scale, shift, BLOCK: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr,
               OUT_PAD: tl.constexpr):
    b, offs, mask, offs_c, cmask = program_block(N, C, BLOCK, BLOCK_C)
    row = b.to(tl.int64) * N + offs
    x, y, z = load_points(pts_ptr, row, mask, scale)
    f = triplane(planes_ptr, b, x, y, z, H, W, C, offs_c, cmask, mask, False)
    w0t, b0, w1t, b1, offs_o = mlp_weights(w0_ptr, b0_ptr, w1_ptr, b1_ptr, C, HD, offs_c, cmask, BLOCK_H, OUT_PAD)
    raw = mlp(f, w0t, b0, w1t, b1)
    tl.store(rgb_ptr + row[:, None] * 3 + offs_o[None, :], raw, mask=mask[:, None] & (offs_o[None, :] < 3))
    tl.store(sigma_ptr + row, softplus(column(raw, offs_o, 3) + shift), mask=mask)


def query_points(planes, points, cube_scale, params, density_shift):
    b, _, c, h, w = planes.shape
    n = points.shape[1]
    pcl = channels_last(planes)
    pts = points.float().contiguous()
    w0, b0, w1, b1, hd = mlp_args(params, points.device)
    rgb = torch.empty(b, n, 3, device=points.device, dtype=torch.float32)
    sigma = torch.empty(b, n, device=points.device, dtype=torch.float32)
    if n > 0:
        _query_fwd[(triton.cdiv(n, BLOCK_POINTS), b)](pcl, pts, w0, b0, w1, b1, rgb, sigma, n, h, w, c, hd,
                                                     float(cube_scale), float(density_shift), BLOCK=BLOCK_POINTS,
                                                     BLOCK_C=p2(c, 16), BLOCK_H=p2(hd, 16), OUT_PAD=OUT_PAD)
    dt = result_dtype(planes)
    return rgb.to(dt), sigma.to(dt)


@triton.jit
def _march_fwd(planes_ptr, o_ptr, d_ptr, t_ptr, w0_ptr, b0_ptr, w1_ptr, b1_ptr, rgb_ptr, opacity_ptr, depth_ptr,
               weights_ptr, deltas_ptr, R, S, H, W, C, HD, scale, shift, last_delta, stop, BLOCK: tl.constexpr,
               BLOCK_C: tl.constexpr, BLOCK_H: tl.constexpr, OUT_PAD: tl.constexpr, HAS_DELTAS: tl.constexpr):
    b, rays, mask, offs_c, cmask = program_block(R, C, BLOCK, BLOCK_C)
    ray = b.to(tl.int64) * R + rays
    ox, oy, oz = load_points(o_ptr, ray, mask, 1.0)
    dx, dy, dz = load_points(d_ptr, ray, mask, 1.0)
    rows = ray * S
    w0t, b0, w1t, b1, offs_o = mlp_weights(w0_ptr, b0_ptr, w1_ptr, b1_ptr, C, HD, offs_c, cmask, BLOCK_H, OUT_PAD)
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
        if HAS_DELTAS:  # empty-space skipping: given intervals; a sample with delta 0 reads nothing
            ts = tl.load(t_ptr + rows + s, mask=mask, other=0.0).to(tl.float32)
            delta = tl.load(deltas_ptr + rows + s, mask=mask, other=0.0).to(tl.float32)
            alive = alive & (delta > 0)
        else:
            ts, delta, _ = sample_interval(t_ptr, rows, s, S, mask, last_delta)
        f = triplane(planes_ptr, b, (ox + ts * dx) / scale, (oy + ts * dy) / scale,
                     (oz + ts * dz) / scale, H, W, C, offs_c, cmask, alive, False)
        raw = mlp(f, w0t, b0, w1t, b1)
        tau = softplus(column(raw, offs_o, 3) + shift) * delta
        w = tl.where(alive, trans * alpha(tau), 0.0)
        acc_r += w * column(raw, offs_o, 0)
        acc_g += w * column(raw, offs_o, 1)
        acc_b += w * column(raw, offs_o, 2)
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


def march_rays(planes, origins, dirs, t, cube_scale, params, density_shift, far_opaque, stop_transmittance=0.0,
               deltas=None):
    b, _, c, h, w = planes.shape
    r, s = t.shape[1], t.shape[2]
    dev = origins.device
    pcl = channels_last(planes)
    o, d, tt = (x.float().contiguous() for x in (origins, dirs, t))
    w0, b0, w1, b1, hd = mlp_args(params, dev)
    rgb = torch.empty(b, r, 3, device=dev, dtype=torch.float32)
    opacity = torch.empty(b, r, device=dev, dtype=torch.float32)
    depth_raw = torch.empty_like(opacity)
    weights = torch.zeros(b, r, s, device=dev, dtype=torch.float32)
    dl = deltas.float().contiguous() if deltas is not None else tt  # not read without HAS_DELTAS
    if r > 0 and s > 0:
        _march_fwd[(triton.cdiv(r, BLOCK_RAYS), b)](
            pcl, o, d, tt, w0, b0, w1, b1, rgb, opacity, depth_raw, weights, dl, r, s, h, w, c, hd, float(cube_scale),
            float(density_shift), far_delta(far_opaque), float(stop_transmittance),
            BLOCK=BLOCK_RAYS, BLOCK_C=p2(c, 16), BLOCK_H=p2(hd, 16), OUT_PAD=OUT_PAD, HAS_DELTAS=deltas is not None)
    dt = result_dtype(planes)
    rgb, opacity, depth_raw, weights = (x.to(dt) for x in (rgb, opacity, depth_raw, weights))
    return {"rgb": rgb, "opacity": opacity, "depth": depth_from(depth_raw, opacity, t.to(dt)),
            "depth_raw": depth_raw, "weights": weights}
