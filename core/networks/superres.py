"""EG3D's super-resolution: the neural render's 32 features (and their first three, the raw image)
-> the final RGB image, two StyleGAN2 synthesis blocks modulated by the last w.

Kinds, as EG3D's official configurations use them (Chan et al. 2022, NVlabs/eg3d):

    kind  output  input          block0                      block1
    2x    128     64             no upsampling, at 64        2x up, at 128
    4x    256     128            no upsampling, at 128       2x up, at 256
    8x    512     128            2x up, at 256               2x up, at 512

A neural render at another resolution is first resized to the input (bilinear, antialiased).
Each block: conv0 (3x3, modulated, optionally 2x up), conv1, a ToRGB whose output is added to the
image carried along (upsampled with the [1, 3, 3, 1] filter when the block upsamples). Noise
inputs exist (their weights count and load) but are never used: EG3D renders its SR without noise.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import ModulatedConv, ToRGB, fir_filter, upsample2d

SR_KINDS = {"2x": (2, False), "4x": (2, False), "8x": (4, True)}  # output / input, block0 upsamples


class SRBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, up: bool, conv_clamp: float):
        super().__init__()
        self.up = up
        self.conv0 = ModulatedConv(in_ch, out_ch, w_dim, resolution, up=up, conv_clamp=conv_clamp)
        self.conv1 = ModulatedConv(out_ch, out_ch, w_dim, resolution, conv_clamp=conv_clamp)
        self.torgb = ToRGB(out_ch, 3, w_dim, conv_clamp=conv_clamp)
        self.register_buffer("resample_filter", fir_filter(), persistent=False)

    def forward(self, x: torch.Tensor, img: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv1(self.conv0(x, w, "none"), w, "none")
        y = self.torgb(x, w)
        return x, (upsample2d(img, self.resample_filter) if self.up else img) + y


class SuperResolution(nn.Module):
    def __init__(self, kind: str, out_res: int, channels: tuple[int, int], w_dim: int, in_ch: int = 32,
                 antialias: bool = True, conv_clamp: float = 256.0):
        super().__init__()
        if kind not in SR_KINDS:
            raise ValueError(f"unknown super-resolution '{kind}' ({', '.join(SR_KINDS)})")
        ratio, up0 = SR_KINDS[kind]
        self.kind, self.out_res, self.input_res, self.antialias = kind, out_res, out_res // ratio, antialias
        c0, c1 = channels
        self.block0 = SRBlock(in_ch, c0, w_dim, out_res // 2, up0, conv_clamp)
        self.block1 = SRBlock(c0, c1, w_dim, out_res, True, conv_clamp)

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(self.input_res, self.input_res), mode="bilinear", align_corners=False,
                             antialias=self.antialias)

    def forward(self, rgb: torch.Tensor, feats: torch.Tensor, w: torch.Tensor) -> dict[str, torch.Tensor]:
        """rgb [B, 3, r, r] (the raw image), feats [B, C, r, r], w [B, w_dim] (the last w) ->
        image [B, 3, out, out] and raw_returned: the raw image as EG3D's synthesis returns it. When
        no resize happens and block0 does not upsample (2x at r = 64, 4x at r = 128), EG3D adds
        block0's ToRGB output into the raw image in place, so what it returns (and what its
        discriminator sees in training) is raw + that output; otherwise the raw image itself."""
        resized = feats.shape[-1] != self.input_res
        if resized:
            rgb, feats = self.resize(rgb), self.resize(feats)
        x, img = self.block0(feats, rgb, w)
        returned = img if not resized and not self.block0.up else None
        _, img = self.block1(x, img, w)
        return {"image": img, "raw_returned": returned}
