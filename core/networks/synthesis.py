"""StyleGAN2 synthesis network ("skip" architecture) producing the tri-planes.

From a learned 4x4 constant up to the plane resolution Rp, channels min(channel_base / res,
channel_max) per resolution, a toRGB at every resolution whose outputs are upsampled and summed.
The "image" has 3 * plane_channels channels: three feature planes.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .layers import ModulatedConv, ToRGB, fir_filter, upsample2d


class SynthesisBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, img_channels: int, use_noise: bool,
                 conv_clamp: float = 0.0):
        super().__init__()
        self.resolution = resolution
        if in_ch == 0:
            self.const = nn.Parameter(torch.randn(out_ch, resolution, resolution))
            self.conv0 = None
        else:
            self.conv0 = ModulatedConv(in_ch, out_ch, w_dim, resolution, up=True, use_noise=use_noise,
                                       conv_clamp=conv_clamp)
        self.conv1 = ModulatedConv(out_ch, out_ch, w_dim, resolution, use_noise=use_noise, conv_clamp=conv_clamp)
        self.torgb = ToRGB(out_ch, img_channels, w_dim, conv_clamp=conv_clamp)
        self.register_buffer("resample_filter", fir_filter(), persistent=False)

    def forward(self, x, img, w, noise_mode: str):
        if self.conv0 is None:
            x = self.const[None].expand(w.shape[0], -1, -1, -1)
        else:
            x = self.conv0(x, w, noise_mode)
        x = self.conv1(x, w, noise_mode)
        y = self.torgb(x, w)
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim: int, resolution: int, img_channels: int, channel_base: int, channel_max: int,
                 use_noise: bool = True, conv_clamp: float = 0.0):
        super().__init__()
        if resolution < 4 or resolution & (resolution - 1):
            raise ValueError(f"plane resolution must be a power of two >= 4, got {resolution}")
        self.resolution, self.img_channels = resolution, img_channels
        resolutions = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
        ch = {r: min(channel_base // r, channel_max) for r in resolutions}
        self.blocks = nn.ModuleList()
        for r in resolutions:
            in_ch = ch[r // 2] if r > 4 else 0
            self.blocks.append(SynthesisBlock(in_ch, ch[r], w_dim, r, img_channels, use_noise, conv_clamp))

    def forward(self, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """w [B, w_dim] (broadcast to every layer) -> [B, img_channels, Rp, Rp]."""
        x = img = None
        for block in self.blocks:
            x, img = block(x, img, w, noise_mode)
        return img
