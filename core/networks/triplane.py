"""Tri-plane lookup and the decoder MLP: points -> (raw rgb, raw density).

A world point p is divided by cube_scale and projected onto the xy, xz and yz planes; each plane is
sampled bilinearly (align_corners=True, zeros outside [-1, 1]) and the three features are averaged.
The decoder is FC 32 -> 64 (leaky ReLU, gain sqrt 2) -> 4: raw RGB in the [-1, 1] image range and
raw density. No positional encoding, no view direction (EpiGRAF).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import FullyConnected

def sample_triplanes(planes: torch.Tensor, points: torch.Tensor, cube_scale: float) -> torch.Tensor:
    """planes [B, 3, C, H, W], points [B, N, 3] (world) -> features [B, N, C] (mean over planes).

    Plane k is indexed by two point coordinates, the first along its width and the second along
    its height: plane 0 by (x, y), plane 1 by (x, z), plane 2 by (y, z).
    """
    b, n_planes, c, h, w = planes.shape
    x = points / cube_scale  # [B, N, 3]
    coords = torch.stack([x[..., :2], x[..., 0::2], x[..., 1:]], dim=1)  # [B, 3, N, 2]: xy, xz, yz
    feats = F.grid_sample(planes.reshape(b * n_planes, c, h, w), coords.reshape(b * n_planes, 1, -1, 2),
                          mode="bilinear", padding_mode="zeros", align_corners=True)  # [B*3, C, 1, N]
    mean = feats.reshape(b, n_planes, c, -1).mean(1)  # [B, C, N]
    return mean.transpose(1, 2).contiguous()  # [B, N, C]: contiguous, so the decoder runs one matmul


class TriPlaneDecoder(nn.Module):
    def __init__(self, in_ch: int = 32, hidden: int = 64, out_ch: int = 4):
        super().__init__()
        self.fc0 = FullyConnected(in_ch, hidden, "lrelu")
        self.fc1 = FullyConnected(hidden, out_ch)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """[..., C] -> [..., 4] (raw rgb, raw density)."""
        return self.fc1(self.fc0(feats))
