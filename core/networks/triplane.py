"""Tri-plane lookup and the decoder MLP: points -> (raw rgb, raw density).

A world point p is divided by cube_scale and projected onto the xy, xz and yz planes; each plane is
sampled bilinearly (align_corners=True, zeros outside [-1, 1]) and the three features are averaged.
The decoder is FC 32 -> 64 (leaky ReLU, gain sqrt 2) -> 4: raw RGB in the [-1, 1] image range and
raw density. No positional encoding, no view direction (EpiGRAF).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .. import kernels
from .layers import FullyConnected


def sample_triplanes(planes: torch.Tensor, points: torch.Tensor, cube_scale: float,
                     impl: str = "reference") -> torch.Tensor:
    """planes [B, 3, C, H, W], points [B, N, 3] (world) -> features [B, N, C] (mean over planes).

    Plane k is indexed by two point coordinates, the first along its width and the second along
    its height: plane 0 by (x, y), plane 1 by (x, z), plane 2 by (y, z). The math lives in
    `core.kernels` (reference: `core.kernels.reference.triplane_sample`).
    """
    return kernels.triplane_sample(planes, points, cube_scale, impl=impl)


class TriPlaneDecoder(nn.Module):
    def __init__(self, in_ch: int = 32, hidden: int = 64, out_ch: int = 4):
        super().__init__()
        self.fc0 = FullyConnected(in_ch, hidden, "lrelu")
        self.fc1 = FullyConnected(hidden, out_ch)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """[..., C] -> [..., 4] (raw rgb, raw density)."""
        return self.fc1(self.fc0(feats))

    def params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(w0 [Hd, C], b0 [Hd], w1 [4, Hd], b1 [4]) with the gains folded in, for `core.kernels`:
        forward(x) == lrelu(x w0^T + b0, 0.2) w1^T + b1."""
        return (*self.fc0.effective(), *self.fc1.effective())
