"""`occupancy.skip_depths` as a fused CPU loop (Numba): per ray, the grid lookups at the segment
midpoints, the predicted weights, the inverse-CDF levels and the sample intervals, without a tensor
per step. It computes what the PyTorch version computes (the reference, and the tests' ground
truth) up to float rounding; cumulative sums are taken in float64 as PyTorch's CPU cumsum does.
Compiled on the first call and cached on disk like `core.kernels.numba_march`.
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np
import torch
from numba import prange

# Numba's fallback threading layer (workqueue) must not be entered from two threads at once
_LOCK = threading.Lock()


@numba.njit(cache=True, inline="always")
def _cell(occ, dens, b, n, lo0, lo1, lo2, inv_cell, px, py, pz):
    """(occupied, density) of the padded grid's cell holding the point (border cells outside)."""
    i = min(max(math.floor((px - lo0) * inv_cell) + 1, 0), n - 1)
    j = min(max(math.floor((py - lo1) * inv_cell) + 1, 0), n - 1)
    k = min(max(math.floor((pz - lo2) * inv_cell) + 1, 0), n - 1)
    flat = (int(i) * n + int(j)) * n + int(k)
    return occ[b, flat], dens[b, flat]


@numba.njit(cache=True, parallel=True)
def _skip(occ, dens, n, lo0, lo1, lo2, inv_cell, origins, dirs, near, far, k, steps, uniform, far_delta,
          far_always, t_out, d_out):
    nb, nr = near.shape
    dt = near.dtype.type
    for job in prange(nb * nr):
        b = job // nr
        r = job - b * nr
        mid = np.empty(k, dtype=near.dtype)
        occ_f = np.empty(k, dtype=near.dtype)
        w = np.empty(k, dtype=near.dtype)
        pdf = np.empty(k, dtype=near.dtype)
        cdf = np.empty(k, dtype=near.dtype)
        before = np.empty(k, dtype=near.dtype)  # occupied segments in front of each
        s_pos = np.empty(steps, dtype=near.dtype)
        ox, oy, oz = origins[b, r, 0], origins[b, r, 1], origins[b, r, 2]
        dx, dy, dz = dirs[b, r, 0], dirs[b, r, 1], dirs[b, r, 2]
        nr_, fr = near[b, r], far[b, r]
        seg = (fr - nr_) / dt(k)
        acc = 0.0  # float64 running sums, as torch.cumsum on a CPU
        n_occ = 0.0
        w_sum = dt(0.0)
        for j in range(k):
            m = nr_ + seg * (dt(j) + dt(0.5))
            mid[j] = m
            o, de = _cell(occ, dens, b, n, lo0, lo1, lo2, inv_cell, ox + dx * m, oy + dy * m, oz + dz * m)
            of = dt(1.0) if o else dt(0.0)
            occ_f[j] = of
            before[j] = dt(n_occ)
            n_occ += of
            tau = de * of * seg
            acc += tau
            trans = math.exp(-(dt(acc) - tau))
            w[j] = dt(trans * -math.expm1(-tau))
            w_sum += w[j]
        n_occ_d = dt(max(n_occ, 1.0))
        acc = 0.0
        for j in range(k):
            share = w[j] / max(w_sum, dt(1e-30)) if w_sum > 0 else occ_f[j] / n_occ_d
            pdf[j] = dt(uniform) * occ_f[j] / n_occ_d + dt(1.0 - uniform) * share
            acc += pdf[j]
            cdf[j] = dt(acc)
        total = cdf[k - 1]
        idx = 0
        for i in range(steps):
            u = (dt(i) + dt(0.5)) / dt(steps) * total
            while idx < k and cdf[idx] <= u:  # searchsorted(right=True): the first cdf > u
                idx += 1
            q = min(idx, k - 1)
            p_k = pdf[q]
            frac = min(max((u - (cdf[q] - pdf[q])) / max(p_k, dt(1e-30)), dt(0.0)), dt(1.0))
            t_out[b, r, i] = min(mid[q] + (frac - dt(0.5)) * seg, fr)
            s_pos[i] = (before[q] + frac) * seg
        length = dt(n_occ) * seg
        hit = dt(1.0) if n_occ > 0 else dt(0.0)
        prev = dt(0.0)
        for i in range(steps):
            edge = dt(0.5) * (s_pos[i] + s_pos[i + 1]) if i + 1 < steps else length
            d_out[b, r, i] = (edge - prev) * hit
            prev = edge
        o, _ = _cell(occ, dens, b, n, lo0, lo1, lo2, inv_cell, ox + dx * fr, oy + dy * fr, oz + dz * fr)
        t_out[b, r, steps] = fr
        d_out[b, r, steps] = dt(far_delta) if (o or far_always) else dt(0.0)


def skip_depths(occ: torch.Tensor, dens: torch.Tensor, n: int, lo, cell: float, origins: torch.Tensor,
                dirs: torch.Tensor, near: torch.Tensor, far: torch.Tensor, k: int, steps: int, far_delta: float,
                far_always: bool, uniform: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The fused `occupancy.skip_depths` on the padded grid arrays (`OccupancyGrid._padded`: occupied
    and density [B, n^3], n = res + 2) -> t, deltas [B, R, steps + 1]."""
    dtype = origins.dtype
    npd = np.float64 if dtype == torch.float64 else np.float32
    b, r, _ = origins.shape
    t = np.empty((b, r, steps + 1), dtype=npd)
    d = np.empty((b, r, steps + 1), dtype=npd)
    if b * r == 0:
        return torch.from_numpy(t), torch.from_numpy(d)
    conv = [x.detach().contiguous().numpy() for x in (origins, dirs, near.to(dtype), far.to(dtype))]
    sc = npd(0).dtype.type
    with _LOCK:
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
        _skip(occ.contiguous().numpy(), dens.to(dtype).contiguous().numpy(), n, *(sc(v) for v in lo),
              sc(1.0 / cell), *conv, k, steps, uniform, far_delta, far_always, t, d)
    return torch.from_numpy(t), torch.from_numpy(d)
