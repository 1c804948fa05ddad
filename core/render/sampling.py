"""Depths along rays: stratified coarse samples and inverse-CDF importance samples.

Training jitters (stratified within each interval, random inverse-CDF draws); evaluation is
deterministic (evenly spaced depths, evenly spaced CDF levels), so renders are reproducible and
the viewer does not flicker.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def stratified(near: torch.Tensor, far: torch.Tensor, n: int, deterministic: bool,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """near, far [B, R] -> depths [B, R, n], ascending.

    Deterministic: n evenly spaced depths from near to far (both included).
    Random: each depth jittered uniformly between the midpoints around it (the reference's scheme).
    """
    steps = torch.linspace(0, 1, n, device=near.device, dtype=near.dtype)
    t = near[..., None] + (far - near)[..., None] * steps  # [B, R, n]
    if deterministic or n == 1:
        return t
    mids = 0.5 * (t[..., 1:] + t[..., :-1])
    lower = torch.cat([t[..., :1], mids], dim=-1)
    upper = torch.cat([mids, t[..., -1:]], dim=-1)
    u = torch.rand(t.shape, generator=generator, device=t.device, dtype=t.dtype) if generator is not None \
        else torch.rand_like(t)
    return lower + (upper - lower) * u


def sample_pdf(bins: torch.Tensor, weights: torch.Tensor, n: int, deterministic: bool,
               generator: torch.Generator | None = None, eps: float = 1e-5) -> torch.Tensor:
    """Draw n depths from the piecewise-constant density given by `weights` on `bins`.

    bins [..., M + 1] ascending edges, weights [..., M] >= 0 -> samples [..., n] (not sorted when
    random; no gradient). Deterministic: CDF levels (k + 0.5) / n.
    """
    bins = bins.detach()
    w = weights.detach() + eps
    pdf = w / w.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[..., :1]), torch.cumsum(pdf, -1)], dim=-1)  # [..., M + 1]
    cdf[..., -1] = 1.0
    shape = (*cdf.shape[:-1], n)
    if deterministic:
        u = ((torch.arange(n, device=cdf.device, dtype=cdf.dtype) + 0.5) / n).expand(shape)
    elif generator is not None:
        u = torch.rand(shape, generator=generator, device=cdf.device, dtype=cdf.dtype)
    else:
        u = torch.rand(shape, device=cdf.device, dtype=cdf.dtype)
    u = u.contiguous()
    idx = torch.searchsorted(cdf.contiguous(), u, right=True)  # first edge with cdf > u
    hi = idx.clamp(max=cdf.shape[-1] - 1)
    lo = (idx - 1).clamp(min=0)
    cdf_lo, cdf_hi = cdf.gather(-1, lo), cdf.gather(-1, hi)
    b_lo, b_hi = bins.gather(-1, lo), bins.gather(-1, hi)
    denom = cdf_hi - cdf_lo
    frac = torch.where(denom > 0, (u - cdf_lo) / denom.clamp_min(1e-12), torch.zeros_like(u))
    return b_lo + frac * (b_hi - b_lo)


def importance(t_coarse: torch.Tensor, weights: torch.Tensor, n: int, deterministic: bool,
               generator: torch.Generator | None = None, eps: float = 2e-5) -> torch.Tensor:
    """Fine depths [..., n] from coarse depths [..., S] and their compositing weights [..., S].

    As in NeRF and the reference: the bins are the midpoints between coarse depths and the
    weights of the interior samples (+ eps) define the density over them.
    """
    if t_coarse.shape[-1] < 3:  # no interior samples: spread the fine samples between the ends
        ends = torch.stack([t_coarse[..., 0], t_coarse[..., -1]], dim=-1)
        return sample_pdf(ends, torch.ones_like(ends[..., :1]), n, deterministic, generator)
    mids = 0.5 * (t_coarse[..., 1:] + t_coarse[..., :-1])  # [..., S - 1]
    return sample_pdf(mids, weights[..., 1:-1], n, deterministic, generator, eps)


def stratified_eg3d(near: torch.Tensor, far: torch.Tensor, n: int, deterministic: bool,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """EG3D's coarse depths [B, R, n]: n evenly spaced from near to far (both included), each moved
    forward by U(0, 1) x the spacing when random (so the last may pass `far`, as in EG3D)."""
    steps = torch.linspace(0, 1, n, device=near.device, dtype=near.dtype)
    t = near[..., None] + (far - near)[..., None] * steps
    if deterministic or n == 1:
        return t
    u = torch.rand(t.shape, generator=generator, device=t.device, dtype=t.dtype) if generator is not None \
        else torch.rand_like(t)
    return t + u * ((far - near) / (n - 1))[..., None]


def importance_eg3d(t_coarse: torch.Tensor, weights: torch.Tensor, n: int, deterministic: bool,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """EG3D's fine depths [..., n] from coarse depths [..., S] and their S - 1 interval weights: the
    weights max-filtered (window 2, padding 1), box-filtered (window 2) and raised by 0.01, then the
    inverse CDF of the interior ones over the midpoints between coarse depths (the last midpoint is
    never an edge, as in EG3D's sample_pdf), eps 1e-5."""
    shape = weights.shape
    w = F.max_pool1d(weights.detach().reshape(-1, 1, shape[-1]), 2, 1, padding=1)
    w = F.avg_pool1d(w, 2, 1).reshape(shape) + 0.01
    mids = 0.5 * (t_coarse[..., 1:] + t_coarse[..., :-1])  # [..., S - 1]
    return sample_pdf(mids[..., :-1], w[..., 1:-1], n, deterministic, generator, eps=1e-5)
