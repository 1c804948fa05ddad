"""Marching given samples on the CPU without evaluating the field where it cannot matter.

`march_compact` computes what `core.kernels.reference.march_rays(..., deltas=...)` computes (the
compositing of `composite_deltas`, early termination included) but evaluates the field only at
samples that can contribute: samples with delta 0 (skipped space) are never evaluated, and the rays
still alive are re-selected every `round_steps` samples, so rays that are opaque already stop
costing anything. This is what makes empty-space skipping pay off with PyTorch ops, which cannot
stop per ray inside a tensor op; the Triton kernel does the same per ray in one pass.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..kernels.reference import depth_from

# (batch item i, points [1, n, 3]) -> (rgb [1, n, C], sigma [1, n])
ItemField = Callable[[int, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

ROUND_STEPS = 16


def march_compact(field: ItemField, origins: torch.Tensor, dirs: torch.Tensor, t: torch.Tensor,
                  deltas: torch.Tensor, stop_transmittance: float = 0.0, channels: int = 3,
                  round_steps: int = ROUND_STEPS) -> dict[str, torch.Tensor]:
    """origins, dirs [B, R, 3], t, deltas [B, R, S] -> rgb [B, R, C], opacity, depth, depth_raw
    [B, R] and weights [B, R, S], as `reference.composite_deltas` of the field at o + t d.

    A sample's weight is T * (1 - exp(-sigma * delta)) with T the transmittance in front of it, and 0
    once T < stop_transmittance (the reference's early termination, exactly: T only decreases).
    """
    b, r, s = t.shape
    dev = origins.device
    dtype = torch.float64 if origins.dtype == torch.float64 else torch.float32
    rgb = torch.zeros(b, r, channels, device=dev, dtype=dtype)
    weights = torch.zeros(b, r, s, device=dev, dtype=dtype)
    trans = torch.ones(b, r, device=dev, dtype=dtype)
    for i in range(b):
        alive = torch.arange(r, device=dev)
        for s0 in range(0, s, round_steps):
            s1 = min(s, s0 + round_steps)
            dl = deltas[i, alive, s0:s1]
            keep = (dl > 0).any(-1)
            if stop_transmittance > 0:
                keep &= trans[i, alive] >= stop_transmittance
            alive, dl = alive[keep], dl[keep]
            if alive.numel() == 0:
                break
            ts = t[i, alive, s0:s1]
            valid = dl > 0
            pts = origins[i, alive, None, :] + dirs[i, alive, None, :] * ts[..., None]  # [n, k, 3]
            dense = bool(valid.all())  # the usual case: no scatter needed
            c, sig = field(i, (pts.reshape(1, -1, 3) if dense else pts[valid][None]))
            if dense:
                sigma, c = sig[0].reshape(dl.shape).to(dtype), c[0].reshape(*dl.shape, -1).to(dtype)
            else:
                sigma = torch.zeros(dl.shape, device=dev, dtype=dtype)
                sigma[valid] = sig[0].to(dtype)
            tau = sigma * dl.to(dtype)
            acc = torch.cumsum(tau, -1)
            t_in = trans[i, alive, None] * torch.exp(-torch.cat([torch.zeros_like(acc[:, :1]), acc[:, :-1]], -1))
            w = t_in * -torch.expm1(-tau)
            if stop_transmittance > 0:
                w = torch.where(t_in >= stop_transmittance, w, torch.zeros_like(w))
            weights[i, alive, s0:s1] = w
            if dense:
                col = c
            else:
                col = torch.zeros(*dl.shape, channels, device=dev, dtype=dtype)
                col[valid] = c[0].to(dtype)
            rgb[i, alive] += torch.einsum("nk,nkc->nc", w, col)
            trans[i, alive] = t_in[:, -1] * torch.exp(-tau[:, -1])
    opacity = weights.sum(-1)
    depth_raw = (weights * t.to(dtype)).sum(-1)
    return {"rgb": rgb, "opacity": opacity, "depth": depth_from(depth_raw, opacity, t.to(dtype)),
            "depth_raw": depth_raw, "weights": weights}
