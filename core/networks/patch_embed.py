"""Conditioning inputs of EpiGRAF's discriminator: patch-parameter embedding, camera encoding, mappings.

* `PatchEmbedding`: each of (scale, offset_x, offset_y) in [0, 1] becomes a learned 256-d embedding of
  round(1000 v) (an `nn.Embedding` with 1001 rows) and 20 Fourier features of 1000 v (10 log-spaced
  frequencies pi 2^k / 1024, k = 0..9, sin and cos): 3 x (20 + 256) = 828 values, laid out per
  scalar as [sin x10, cos x10, embedding x256] (the reference's order).
* `CameraEncoding`: yaw/pitch in radians -> u = sign(a) (|a| mod 2 pi) / 2 pi in (-1, 1) (as
  `core.cameras.pose_cond_vector`), then either raw u (the reference code) or [u, sin(pi 2^k u),
  cos(pi 2^k u)] (the paper's "Fourier-encoded"); element-wise dropout is applied by the caller.
* `CondMapping`: StyleGAN2's mapping network without z: FC embed (linear) -> normalise the 2nd
  moment -> `num_layers` FC + lrelu with a learning-rate multiplier. Used for the hypernetwork H
  and for the projection-conditioning head.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..cameras import pose_cond_vector
from .layers import FullyConnected, normalize_2nd_moment


class PatchEmbedding(nn.Module):
    """(scale, offset_x, offset_y) [B, 3] in [0, 1] -> [B, 3 * (embed_dim + 2 * num_freqs)] (828 by default)."""

    def __init__(self, embed_dim: int = 256, num_freqs: int = 10, multiplier: int = 1000):
        super().__init__()
        self.multiplier, self.embed_dim, self.num_freqs = multiplier, embed_dim, num_freqs
        self.table = nn.Embedding(multiplier + 1, embed_dim) if embed_dim > 0 else None
        period = 2.0 ** math.ceil(math.log2(multiplier))  # 1024 for 1000: the slowest sine spans [0, 2048]
        freqs = math.pi * 2.0 ** torch.arange(num_freqs, dtype=torch.float32) / period  # [F]
        self.register_buffer("freqs", freqs, persistent=False)

    @property
    def dim(self) -> int:
        return 3 * (self.embed_dim + 2 * self.num_freqs)

    def forward(self, patch_params: torch.Tensor) -> torch.Tensor:
        if patch_params.ndim != 2 or patch_params.shape[1] != 3:
            raise ValueError(f"patch_params must be [B, 3] (scale, offset_x, offset_y), "
                             f"got {tuple(patch_params.shape)}")
        # Values outside [0, 1] would index past the table: clamp (no host sync to check them).
        v = patch_params.float().clamp(0.0, 1.0) * self.multiplier  # [B, 3] in [0, 1000]
        ang = v[:, :, None] * self.freqs  # [B, 3, F]
        parts = [ang.sin(), ang.cos()]  # 2 x [B, 3, F]
        if self.table is not None:
            parts.append(self.table(v.round().long()))  # [B, 3, E]
        return torch.cat(parts, dim=2).flatten(1)  # [B, 3 * (2F + E)]


class CameraEncoding(nn.Module):
    """yaw/pitch [B, 2] in radians -> [B, dim] ('raw': u; 'fourier': [u, sin(pi 2^k u), cos(pi 2^k u)])."""

    def __init__(self, encoding: str = "fourier", num_freqs: int = 6):
        super().__init__()
        if encoding not in ("fourier", "raw"):
            raise ValueError(f"camera encoding must be 'fourier' or 'raw', got '{encoding}'")
        self.encoding = encoding
        n = num_freqs if encoding == "fourier" else 0
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(n, dtype=torch.float32), persistent=False)

    @property
    def dim(self) -> int:
        return 2 * (1 + 2 * self.freqs.numel())

    def forward(self, camera: torch.Tensor) -> torch.Tensor:
        if camera.ndim != 2 or camera.shape[1] < 2:
            raise ValueError(f"camera must be [B, 2] (yaw, pitch) in radians, got {tuple(camera.shape)}")
        u = pose_cond_vector(camera[:, 0].float(), camera[:, 1].float())  # [B, 2] in (-1, 1)
        if self.freqs.numel() == 0:
            return u
        ang = u[:, :, None] * self.freqs  # [B, 2, F]
        return torch.cat([u[:, :, None], ang.sin(), ang.cos()], dim=2).flatten(1)  # [B, 2 * (1 + 2F)]


class CondMapping(nn.Module):
    """[B, in_dim] -> [B, out_dim]: FC embed, 2nd-moment normalisation, `num_layers` x (FC, lrelu), lr-mult."""

    def __init__(self, in_dim: int, out_dim: int, num_layers: int = 2, lr_mult: float = 0.01):
        super().__init__()
        self.in_dim = in_dim
        self.embed = FullyConnected(in_dim, out_dim)
        self.layers = nn.ModuleList(FullyConnected(out_dim, out_dim, "lrelu", lr_mult) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(self.embed(x.float()))  # [B, out]
        for layer in self.layers:
            x = layer(x)
        return x
