"""Latent interpolation: lerp in W, slerp in Z, and paths through several keyframes."""

from __future__ import annotations

import torch


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the last dim (magnitudes interpolated linearly)."""
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    cos = (ua * ub).sum(-1, keepdim=True).clamp(-1 + eps, 1 - eps)
    omega = torch.acos(cos)
    so = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / so
    return direction * lerp(na, nb, t)


def along_keyframes(keys: list[torch.Tensor], u: float, mode: str = "lerp", loop: bool = False) -> torch.Tensor:
    """The latent at position u in [0, 1] along keyframes (segments of equal length); mode lerp|slerp."""
    if len(keys) == 1:
        return keys[0]
    segments = len(keys) if loop else len(keys) - 1
    x = min(max(u, 0.0), 1.0) * segments
    i = min(int(x), segments - 1)
    t = x - i
    a, b = keys[i], keys[(i + 1) % len(keys)]
    return slerp(a, b, t) if mode == "slerp" else lerp(a, b, t)
