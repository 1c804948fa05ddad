"""The discriminator's knowledge-distillation head (3DGP, "3D generation on ImageNet", ICLR 2023).

From the 4x4 features of D's epilogue (after its minibatch-std and 3x3 conv, before its FC layers,
where snap-research/3dgp branches off) it predicts the teacher's embedding of the whole real image:

    feats [B, C, 4, 4] -> flatten -> FC (C * 16 -> C, lrelu) -> FC (C -> dim, linear) -> [B, dim]

with the repository's equalised-learning-rate layers. `PatchDiscriminator(..., kd_dim=dim)` owns
one and returns its prediction with `D(..., return_kd=True)`; the loss is `core.training.kd.kd_loss`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import FullyConnected


class KDHead(nn.Module):
    """[B, channels, res, res] epilogue features -> predicted teacher embedding [B, dim] (float32)."""

    def __init__(self, channels: int, dim: int, resolution: int = 4):
        super().__init__()
        if dim < 1 or channels < 1:
            raise ValueError(f"KDHead needs channels >= 1 and dim >= 1, got {channels}, {dim}")
        self.channels, self.dim, self.resolution = channels, dim, resolution
        self.fc = FullyConnected(channels * resolution * resolution, channels, "lrelu")
        self.out = FullyConnected(channels, dim)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        c, r = self.channels, self.resolution
        if feats.ndim != 4 or feats.shape[1:] != (c, r, r):
            raise ValueError(f"KDHead expects features [B, {c}, {r}, {r}], got {tuple(feats.shape)}")
        return self.out(self.fc(feats.float().flatten(1)))
