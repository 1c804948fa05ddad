"""The tri-plane decoder MLP: averaged plane features -> (raw rgb, raw density).

The lookup itself (a world point divided by cube_scale, projected onto the xy, xz and yz planes,
sampled bilinearly with align_corners=True and zeros outside [-1, 1], the three features averaged)
is `core.kernels.triplane_sample`. The decoder is FC 32 -> 64 (leaky ReLU, gain sqrt 2) -> 4: raw RGB in the [-1, 1] image range and
raw density. No positional encoding, no view direction (EpiGRAF).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import FullyConnected


class TriPlaneDecoder(nn.Module):
    def __init__(self, in_ch: int = 32, hidden: int = 64, out_ch: int = 4):
        super().__init__()
        self.fc0 = FullyConnected(in_ch, hidden, "lrelu")
        self.fc1 = FullyConnected(hidden, out_ch)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """[..., C] -> [..., 4] (raw rgb, raw density)."""
        return self.fc1(self.fc0(feats))

    def raw(self, feats: torch.Tensor) -> torch.Tensor:
        """[..., C] -> raw [..., 4] (colour, density before activation): the decoder itself."""
        return self(feats)

    def head(self, pre: torch.Tensor) -> torch.Tensor:
        """The layers after the first: its pre-activation with the gains folded in (`fc0.effective()`,
        overwritten) -> raw [..., 4]. head(f W^T + b) == forward(f)."""
        return self.fc1(torch.nn.functional.leaky_relu(pre, 0.2, inplace=True))

    def params(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(w0 [Hd, C], b0 [Hd], w1 [4, Hd], b1 [4]) with the gains folded in, for `core.kernels`:
        forward(x) == lrelu(x w0^T + b0, 0.2) w1^T + b1."""
        return (*self.fc0.effective(), *self.fc1.effective())
