"""The NeRF++ background of EpiGRAF (`bg_model.type: sphere`): a small modulated MLP beyond the unit sphere.

Space outside the unit sphere is parametrised by inverse depth (Zhang et al. 2020, "NeRF++"): a
point at distance r from the origin becomes (x', y', z', 1/r), its direction and its disparity. Each
ray is sampled at `steps` disparities s_k from `start` down to 0 (both included; jittered within
their intervals in training), at the far intersection of the ray with the sphere of radius 1/s_k.
The network is the reference's INR-GAN-style "skip" MLP (universome/epigraf, networks_inr_gan.py):

    e   = [sin(pi 2^j v) for j < F, cos(pi 2^j v) for j < F] for each coordinate v   (4 * 2F values)
    h_0 = ModLin(e),            out  = OutLin_0(h_0)
    h_i = ModLin(ModLin(h_i-1)), out += OutLin_i(h_i)        (i = 1 .. blocks - 1)

where ModLin is a modulated, demodulated linear layer (styles = affine(w), + bias, leaky ReLU 0.2,
times sqrt 2; no clamp, no noise) and OutLin a modulated linear layer without demodulation (styles
scaled by 1/sqrt(in)). F = ceil(log2(period)). Outputs: raw rgb (image range) and raw density
(softplus, no shift, no noise). It ignores the view direction.

Compositing (`composite_background`): the background samples are composited with intervals in
disparity units (s_k - s_k+1, the last one 1e10), and the pixel is C_fg + C_bg * T, T being the
foreground's transmittance in front of its last sample (the foreground's last interval is 1e-3 when
a background is on; RenderConfig.far_opaque False).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import kernels
from .layers import SQRT2, FullyConnected


def num_frequencies(period: float) -> int:
    """Fourier frequencies of the reference's scalar encoder for a period length: ceil(log2 period)."""
    return max(1, math.ceil(math.log2(period)))


def fourier_encode(coords: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """[..., D] -> [..., D * 2F]: per coordinate F sines then F cosines of pi 2^j v, coordinate-major."""
    freqs = math.pi * 2.0 ** torch.arange(n_freqs, device=coords.device, dtype=coords.dtype)
    e = coords[..., None] * freqs  # [..., D, F]
    return torch.cat([e.sin(), e.cos()], dim=-1).flatten(-2)


class ModulatedLinear(nn.Module):
    """Per-sample modulated linear layer; demodulated + lrelu (hidden) or plain (output)."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, demodulate: bool):
        super().__init__()
        self.demodulate = demodulate
        self.affine = FullyConnected(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.style_gain = 1.0 if demodulate else 1.0 / math.sqrt(in_ch)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x [B, N, in], w [B, w_dim] -> [B, N, out]."""
        styles = self.affine(w) * self.style_gain  # [B, in]
        y = torch.einsum("bni,oi->bno", x * styles[:, None, :], self.weight)
        if self.demodulate:
            d = ((self.weight[None] * styles[:, None, :]).square().sum(-1) + 1e-8).rsqrt()  # [B, out]
            y = F.leaky_relu(y * d[:, None, :] + self.bias, 0.2) * SQRT2
        else:
            y = y + self.bias
        return y


class BackgroundBlock(nn.Module):
    """One block: [conv0] (not in the first block, which reads the encoding), conv1, to_out."""

    def __init__(self, in_features: int, channels: int, w_dim: int, first: bool):
        super().__init__()
        self.conv0 = None if first else ModulatedLinear(in_features, channels, w_dim, True)
        self.conv1 = ModulatedLinear(in_features if first else channels, channels, w_dim, True)
        self.to_out = ModulatedLinear(channels, 4, w_dim, False)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.conv0 is not None:
            x = self.conv0(x, w)
        x = self.conv1(x, w)
        return x, self.to_out(x, w)


class SphereBackground(nn.Module):
    """The background MLP: points (x', y', z', s) [B, N, 4] and w [B, w_dim] -> raw (rgb, density) [B, N, 4]."""

    def __init__(self, w_dim: int, channels: int = 128, blocks: int = 2, period: float = 64.0):
        super().__init__()
        self.n_freqs = num_frequencies(period)
        enc = 4 * 2 * self.n_freqs
        self.blocks = nn.ModuleList(
            BackgroundBlock(enc if i == 0 else channels, channels, w_dim, first=i == 0) for i in range(blocks))

    def forward(self, coords: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x, out = fourier_encode(coords, self.n_freqs), 0
        for blk in self.blocks:
            x, y = blk(x, w)
            out = out + y  # the "skip" sum of every block's output layer
        return out


def disparity_levels(start: float, steps: int, shape: tuple[int, ...], deterministic: bool, device, dtype,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """[*shape, steps] disparities from `start` down to 0 (both included); jittered within their
    midpoint intervals when not deterministic (training)."""
    s = torch.linspace(start, 0.0, steps, device=device, dtype=dtype).expand(*shape, steps)
    if deterministic or steps < 2:
        return s.contiguous()
    mids = 0.5 * (s[..., 1:] + s[..., :-1])
    lo = torch.cat([s[..., :1], mids], dim=-1)
    hi = torch.cat([mids, s[..., -1:]], dim=-1)
    u = torch.rand(s.shape, generator=generator, device=device, dtype=dtype)
    return lo + (hi - lo) * u


def sphere_points(origins: torch.Tensor, dirs: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """origins, dirs [..., 3] (unit dirs), disparities s [..., S] -> (x', y', z', s) [..., S, 4].

    x' is the direction from the origin to the ray's far intersection with the sphere of radius 1/s
    (the ray direction itself at s = 0, the point at infinity)."""
    o, d = origins[..., None, :], dirs[..., None, :]
    od = (o * d).sum(-1)  # [..., 1]
    inv = 1.0 / s.clamp_min(1e-6)
    t = -od + (od.square() - o.square().sum(-1) + inv.square()).clamp_min(0).sqrt()  # [..., S]
    p = o + t[..., None] * d
    x = torch.where((s > 0)[..., None], F.normalize(p, dim=-1), d.expand_as(p))
    return torch.cat([x, s[..., None]], dim=-1)


def render_background(net: SphereBackground, w: torch.Tensor, origins: torch.Tensor, dirs: torch.Tensor,
                      start: float, steps: int, deterministic: bool, bg_colour: torch.Tensor,
                      generator: torch.Generator | None = None, impl: str = "reference") -> torch.Tensor:
    """The background colour of each ray: origins, dirs [B, R, 3] -> C_bg [B, R, 3] (its own, before the
    foreground's transmittance), with the render background colour behind it (1 - sum of weights)."""
    b, r, _ = origins.shape
    s = disparity_levels(start, steps, (b, r), deterministic, origins.device, origins.dtype, generator)
    pts = sphere_points(origins, dirs, s)  # [B, R, S, 4]
    raw = net(pts.reshape(b, r * steps, 4), w).reshape(b, r, steps, 4)
    out = kernels.composite(raw[..., :3], F.softplus(raw[..., 3]), -s, True, impl=impl)
    return out["rgb"] + (1 - out["opacity"][..., None]) * bg_colour
