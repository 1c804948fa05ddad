"""The fused CPU kernel of `march_rays` (Numba): per ray, points, tri-plane lookup, decoder MLP,
density and compositing in one loop, with early termination and nothing evaluated for samples of
interval 0 (empty-space skipping) or after a ray's transmittance fell below the stop level.

PyTorch's reference pays a per-op overhead on many small tensors and evaluates whole blocks of
samples; this loop touches only the samples that can contribute and keeps every intermediate in
registers. It computes what `reference.march_rays` computes (float32, or float64 for fp64 inputs),
up to float rounding: the transmittance is a running product of exp(-tau) instead of exp of a
cumulative sum. Inference only (no backward). The rays are split over Numba's threads, as many as
torch uses (`torch.get_num_threads()`), so a 1-thread benchmark compares like with like.

The first call compiles the kernel (a few seconds); the compiled code is cached on disk by Numba
(`cache=True`: beside this file, or in the user's cache folder when that is read-only).
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np
import torch
from numba import prange

from .reference import depth_from, far_delta

_FASTMATH = {"nsz", "arcp", "contract", "reassoc"}  # reorder sums (SIMD) but keep inf/nan semantics

# Numba's fallback threading layer (workqueue) must not be entered from two threads at once
_LOCK = threading.Lock()


@numba.njit(cache=True, fastmath=_FASTMATH, inline="always")
def _softplus(x):
    # torch.nn.functional.softplus with beta 1, threshold 20
    return x if x > 20 else math.log1p(math.exp(x))


@numba.njit(cache=True, fastmath=_FASTMATH, inline="always")
def _corners(base, h, w, c, u, v, wgt, offs, wts, i0):
    """The 4 bilinear corners of normalised (u, v) on a plane of h x w texels starting at flat
    texel `base`, align_corners=True: offsets (in floats) and weights into offs/wts[i0:i0 + 4];
    a corner outside the plane gets weight 0 (and offset 0), as the reference's zero padding."""
    fx = (u + 1) * (0.5 * (w - 1))
    fy = (v + 1) * (0.5 * (h - 1))
    x0f = math.floor(fx)
    y0f = math.floor(fy)
    ax = fx - x0f
    ay = fy - y0f
    for i in range(4):
        offs[i0 + i] = 0
        wts[i0 + i] = 0
    if x0f < -1 or x0f > w - 1 or y0f < -1 or y0f > h - 1:
        return
    x0 = int(x0f)
    y0 = int(y0f)
    for dy in range(2):
        y = y0 + dy
        if y < 0 or y > h - 1:
            continue
        wy = (ay if dy == 1 else 1 - ay) * wgt
        for dx in range(2):
            x = x0 + dx
            if x < 0 or x > w - 1:
                continue
            offs[i0 + 2 * dy + dx] = (base + y * w + x) * c
            wts[i0 + 2 * dy + dx] = (ax if dx == 1 else 1 - ax) * wy


@numba.njit(cache=True, fastmath=_FASTMATH, parallel=True)
def _march(table, h, w, c, w0, b0, w1, b1, folded, origins, dirs, t, deltas, inv_scale, shift, stop,
           rgb_out, opacity_out, depth_raw_out, weights_out):
    """table: the channels-last planes [B, 3, H, W, C] flattened, h, w, c their sizes; w0 [Hd, C] (unused when folded: the planes hold
    w0 f already), b0 [Hd], w1 [4, Hd], b1 [4]; origins, dirs [B, R, 3], t, deltas [B, R, S];
    outputs rgb [B, R, 3], opacity, depth_raw [B, R], weights [B, R, S] (zeroed by the caller)."""
    nb, nr, ns = t.shape
    hw = h * w
    hd = b0.shape[0]
    dt = table.dtype.type
    third = dt(1.0 / 3.0)
    for job in prange(nb * nr):
        b = job // nr
        r = job - b * nr
        feat = np.empty(c, dtype=table.dtype)
        offs = np.empty(12, dtype=np.int64)
        wts = np.empty(12, dtype=table.dtype)
        hid = np.empty(hd, dtype=table.dtype)
        trans = dt(1.0)
        acc_r = dt(0.0)
        acc_g = dt(0.0)
        acc_b = dt(0.0)
        acc_w = dt(0.0)
        acc_t = dt(0.0)
        ox, oy, oz = origins[b, r, 0], origins[b, r, 1], origins[b, r, 2]
        dx, dy, dz = dirs[b, r, 0], dirs[b, r, 1], dirs[b, r, 2]
        for s in range(ns):
            delta = deltas[b, r, s]
            if delta <= 0:
                continue
            if trans < stop:
                break
            ts = t[b, r, s]
            x = (ox + dx * ts) * inv_scale
            y = (oy + dy * ts) * inv_scale
            z = (oz + dz * ts) * inv_scale
            _corners((b * 3) * hw, h, w, c, x, y, third, offs, wts, 0)
            _corners((b * 3 + 1) * hw, h, w, c, x, z, third, offs, wts, 4)
            _corners((b * 3 + 2) * hw, h, w, c, y, z, third, offs, wts, 8)
            t0, t1, t2, t3 = table[offs[0]:offs[0] + c], table[offs[1]:offs[1] + c], \
                table[offs[2]:offs[2] + c], table[offs[3]:offs[3] + c]
            t4, t5, t6, t7 = table[offs[4]:offs[4] + c], table[offs[5]:offs[5] + c], \
                table[offs[6]:offs[6] + c], table[offs[7]:offs[7] + c]
            t8, t9, t10, t11 = table[offs[8]:offs[8] + c], table[offs[9]:offs[9] + c], \
                table[offs[10]:offs[10] + c], table[offs[11]:offs[11] + c]
            q0, q1, q2, q3, q4, q5 = wts[0], wts[1], wts[2], wts[3], wts[4], wts[5]
            q6, q7, q8, q9, q10, q11 = wts[6], wts[7], wts[8], wts[9], wts[10], wts[11]
            for ch in range(c):  # the 12 weighted texel rows summed: one vectorised pass
                feat[ch] = (q0 * t0[ch] + q1 * t1[ch] + q2 * t2[ch] + q3 * t3[ch] + q4 * t4[ch] + q5 * t5[ch]
                            + q6 * t6[ch] + q7 * t7[ch] + q8 * t8[ch] + q9 * t9[ch] + q10 * t10[ch]
                            + q11 * t11[ch])
            if folded:
                for j in range(hd):
                    a = feat[j] + b0[j]
                    hid[j] = a if a >= 0 else a * dt(0.2)
            else:
                for j in range(hd):
                    a = b0[j]
                    for ch in range(c):
                        a += w0[j, ch] * feat[ch]
                    hid[j] = a if a >= 0 else a * dt(0.2)
            r0 = b1[0]
            r1 = b1[1]
            r2 = b1[2]
            r3 = b1[3]
            for j in range(hd):
                hj = hid[j]
                r0 += w1[0, j] * hj
                r1 += w1[1, j] * hj
                r2 += w1[2, j] * hj
                r3 += w1[3, j] * hj
            sigma = _softplus(r3 + shift)
            tau = sigma * delta
            wgt = trans * -math.expm1(-tau)
            weights_out[b, r, s] = wgt
            acc_r += wgt * r0
            acc_g += wgt * r1
            acc_b += wgt * r2
            acc_w += wgt
            acc_t += wgt * ts
            trans = trans * math.exp(-tau)
        rgb_out[b, r, 0] = acc_r
        rgb_out[b, r, 1] = acc_g
        rgb_out[b, r, 2] = acc_b
        opacity_out[b, r] = acc_w
        depth_raw_out[b, r] = acc_t


def _np(x: torch.Tensor, dtype) -> np.ndarray:
    return x.detach().to(dtype).contiguous().numpy()


def march_rays(planes: torch.Tensor, origins: torch.Tensor, dirs: torch.Tensor, t: torch.Tensor, cube_scale: float,
               params, density_shift: float, far_opaque: bool, stop_transmittance: float = 0.0,
               deltas: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """`reference.march_rays` for CPU tensors, fused (see the module docstring). Planes of any
    supported dtype are read as float32 (float64 planes as float64)."""
    dtype = torch.float64 if planes.dtype == torch.float64 else torch.float32
    if deltas is None:
        deltas = torch.cat([t[..., 1:] - t[..., :-1], torch.full_like(t[..., :1], far_delta(far_opaque))], dim=-1)
    w0, b0, w1, b1 = params
    table = _np(planes.permute(0, 1, 3, 4, 2), dtype).reshape(-1)  # a view when the planes are channels-last
    b0n, w1n, b1n = (_np(p, dtype) for p in (b0, w1, b1))
    w0n = np.zeros((1, 1), dtype=b0n.dtype) if w0 is None else _np(w0, dtype)
    o, d, tt, dl = (_np(x, dtype) for x in (origins, dirs, t, deltas))
    bsz, r, s = t.shape
    rgb = np.zeros((bsz, r, 3), dtype=b0n.dtype)
    opacity = np.zeros((bsz, r), dtype=b0n.dtype)
    depth_raw = np.zeros((bsz, r), dtype=b0n.dtype)
    weights = np.zeros((bsz, r, s), dtype=b0n.dtype)
    sc = b0n.dtype.type
    with _LOCK:
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
        _march(table, planes.shape[3], planes.shape[4], planes.shape[2], w0n, b0n, w1n, b1n, w0 is None, o, d, tt,
               dl, sc(1.0 / cube_scale), sc(density_shift), sc(stop_transmittance), rgb, opacity, depth_raw, weights)
    opacity_t, depth_raw_t = torch.from_numpy(opacity), torch.from_numpy(depth_raw)
    return {"rgb": torch.from_numpy(rgb), "opacity": opacity_t,
            "depth": depth_from(depth_raw_t, opacity_t, torch.from_numpy(tt)),
            "depth_raw": depth_raw_t, "weights": torch.from_numpy(weights)}
