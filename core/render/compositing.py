"""Front-to-back alpha compositing of samples along rays.

Transmittance is exp(-cumsum(sigma * delta)) (exclusive), which is cheaper than the reference's
cumprod(1 - alpha) and has the right gradient where alpha = 1. The interval after the last sample
is 1e10 long when `far_opaque` (the reference's behaviour without a background model: every ray
becomes opaque at the far bound), else 1e-3.
"""

from __future__ import annotations

import torch

FAR_DELTA_OPAQUE = 1e10
FAR_DELTA_OPEN = 1e-3


def composite(rgb: torch.Tensor, sigma: torch.Tensor, t: torch.Tensor, far_opaque: bool) -> dict[str, torch.Tensor]:
    """rgb [..., S, C], sigma [..., S] >= 0, t [..., S] ascending ->

    rgb [..., C] (sum of w * c), opacity [..., ] (sum of w), depth [...] (sum of w * t / opacity,
    the far bound where nothing is hit), depth_raw [...] (sum of w * t, the reference's form),
    weights [..., S].
    """
    last = FAR_DELTA_OPAQUE if far_opaque else FAR_DELTA_OPEN
    deltas = torch.cat([t[..., 1:] - t[..., :-1], torch.full_like(t[..., :1], last)], dim=-1)
    tau = sigma * deltas
    acc = torch.cumsum(tau, dim=-1)
    trans = torch.exp(-torch.cat([torch.zeros_like(acc[..., :1]), acc[..., :-1]], dim=-1))
    alpha = -torch.expm1(-tau)
    weights = trans * alpha
    opacity = weights.sum(-1)
    depth_raw = (weights * t).sum(-1)
    hit = opacity > 1e-6
    depth = torch.where(hit, depth_raw / opacity.clamp_min(1e-6), t[..., -1])
    out_rgb = (weights[..., None] * rgb).sum(-2)
    return {"rgb": out_rgb, "opacity": opacity, "depth": depth, "depth_raw": depth_raw, "weights": weights}
