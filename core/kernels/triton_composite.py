"""Triton front-to-back compositing with its backward (training).

One program per block of rays looping over the samples. The backward recomputes the transmittance
front to back with dL/dtau_k = T_{k+1} v_k - sum_{i>k} w_i v_i, where
v_i = <dL/drgb, c_i> + dL/dopacity + dL/ddepth_raw * t_i.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .reference import depth_from, far_delta
from .triton_common import BLOCK_RAYS, alpha, p2, program_block, sample_interval


@triton.jit
def _colour(rgb_ptr, rows, s, C, offs_c, cmask, mask):
    """The colours of sample s of each ray -> [BLOCK, BLOCK_C] fp32."""
    return tl.load(rgb_ptr + (rows + s)[:, None] * C + offs_c[None, :], mask=mask[:, None] & cmask[None, :],
                   other=0.0).to(tl.float32)


@triton.jit
def _composite_fwd(rgb_ptr, sigma_ptr, t_ptr, out_rgb_ptr, opacity_ptr, depth_ptr, weights_ptr,
                   M, S, C, last_delta, stop, BLOCK: tl.constexpr, BLOCK_C: tl.constexpr):
    _, rays, mask, offs_c, cmask = program_block(M, C, BLOCK, BLOCK_C)
    rows = rays.to(tl.int64) * S
    trans = tl.full([BLOCK], 1.0, tl.float32)
    acc = tl.zeros([BLOCK, BLOCK_C], tl.float32)
    opacity = tl.zeros([BLOCK], tl.float32)
    depth = tl.zeros([BLOCK], tl.float32)
    for s in range(0, S):
        alive = mask & (trans >= stop)
        sig = tl.load(sigma_ptr + rows + s, mask=alive, other=0.0).to(tl.float32)
        ts, delta, _ = sample_interval(t_ptr, rows, s, S, mask, last_delta)
        tau = sig * delta
        w = tl.where(alive, trans * alpha(tau), 0.0)
        acc += w[:, None] * _colour(rgb_ptr, rows, s, C, offs_c, cmask, alive)
        opacity += w
        depth += w * ts
        tl.store(weights_ptr + rows + s, w, mask=mask)
        trans = trans * tl.exp(-tau)
    tl.store(out_rgb_ptr + rays.to(tl.int64)[:, None] * C + offs_c[None, :], acc, mask=mask[:, None] & cmask[None, :])
    tl.store(opacity_ptr + rays, opacity, mask=mask)
    tl.store(depth_ptr + rays, depth, mask=mask)


@triton.jit
def _step_terms(rgb_ptr, sigma_ptr, t_ptr, rows, s, S, C, offs_c, cmask, mask, last_delta, gc, go, gd):
    """Sample s's interval, optical depth tau and v = <dL/drgb, c> + dL/dopacity + dL/ddepth_raw t."""
    sig = tl.load(sigma_ptr + rows + s, mask=mask, other=0.0).to(tl.float32)
    ts, delta, has_next = sample_interval(t_ptr, rows, s, S, mask, last_delta)
    v = tl.sum(gc * _colour(rgb_ptr, rows, s, C, offs_c, cmask, mask), axis=1) + go + gd * ts
    return delta, sig * delta, v, has_next


@triton.jit
def _composite_bwd(rgb_ptr, sigma_ptr, t_ptr, g_rgb_ptr, g_opacity_ptr, g_depth_ptr, grad_rgb_ptr, grad_sigma_ptr,
                   M, S, C, last_delta, BLOCK: tl.constexpr, BLOCK_C: tl.constexpr):
    _, rays, mask, offs_c, cmask = program_block(M, C, BLOCK, BLOCK_C)
    rows = rays.to(tl.int64) * S
    gc = tl.load(g_rgb_ptr + rays.to(tl.int64)[:, None] * C + offs_c[None, :], mask=mask[:, None] & cmask[None, :],
                 other=0.0)
    go = tl.load(g_opacity_ptr + rays, mask=mask, other=0.0)
    gd = tl.load(g_depth_ptr + rays, mask=mask, other=0.0)
    # pass 1: total = sum_i w_i v_i
    trans = tl.full([BLOCK], 1.0, tl.float32)
    total = tl.zeros([BLOCK], tl.float32)
    for s in range(0, S):
        _, tau, v, _ = _step_terms(rgb_ptr, sigma_ptr, t_ptr, rows, s, S, C, offs_c, cmask, mask, last_delta,
                                   gc, go, gd)
        total += trans * alpha(tau) * v
        trans = trans * tl.exp(-tau)
    # pass 2: dL/dtau_k = T_{k+1} v_k - sum_{i>k} w_i v_i
    trans = tl.full([BLOCK], 1.0, tl.float32)
    prefix = tl.zeros([BLOCK], tl.float32)
    for s in range(0, S):
        delta, tau, v, has_next = _step_terms(rgb_ptr, sigma_ptr, t_ptr, rows, s, S, C, offs_c, cmask, mask,
                                              last_delta, gc, go, gd)
        w = trans * alpha(tau)
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
                                                          BLOCK_C=p2(c, 2))
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
                BLOCK=BLOCK_RAYS, BLOCK_C=p2(c, 2))
        return grad_rgb.to(rgb_dtype), grad_sigma.to(sigma_dtype), None, None, None


def composite(rgb: torch.Tensor, sigma: torch.Tensor, t: torch.Tensor, far_opaque: bool,
              stop_transmittance: float = 0.0) -> dict[str, torch.Tensor]:
    if torch.is_grad_enabled() and t.requires_grad:
        raise ValueError("composite (triton): no gradient to the depths t; detach them or use impl='reference'")
    lead, s, c = sigma.shape[:-1], sigma.shape[-1], rgb.shape[-1]
    out_dtype = torch.promote_types(rgb.dtype, sigma.dtype)
    m = lead.numel()
    out_rgb, opacity, depth_raw, weights = _Composite.apply(
        rgb.reshape(m, s, c), sigma.reshape(m, s), t.reshape(m, s), far_delta(far_opaque), float(stop_transmittance))
    out_rgb, opacity, depth_raw = (x.to(out_dtype) for x in (out_rgb, opacity, depth_raw))
    opacity, depth_raw = opacity.reshape(lead), depth_raw.reshape(lead)
    return {"rgb": out_rgb.reshape(*lead, c), "opacity": opacity, "depth": depth_from(depth_raw, opacity, t),
            "depth_raw": depth_raw, "weights": weights.reshape(sigma.shape).to(out_dtype)}
