"""EG3D's dual discriminator: a camera-conditioned StyleGAN2 ResNet D that judges two images at once.

The super-resolved image [N, 3, S, S] and the raw neural rendering (resized to S x S with an
antialiased bilinear filter, `filtered_resize`) are stacked into one 6-channel input, so D sees
whether the two agree. The trunk reuses the EpiGRAF discriminator's pieces (`core.networks.discriminator`):

* blocks at S, S/2, ..., 8 with channels min(channel_base / res, channel_max): fromRGB (1x1, first
  block only), conv0 (3x3), conv1 (3x3, FIR [1,3,3,1] + 2x down), skip (1x1, down, no bias), the
  two branches added with gain sqrt(1/2);
* the 4x4 epilogue: minibatch-std in StyleGAN2's strided groups, 3x3 conv, FC, FC to cmap_dim and
  the projection sum(x * cmap) / sqrt(cmap_dim);
* cmap = mapping(c): the 25 camera values (extrinsics + intrinsics) through StyleGAN2's mapping
  network without z (linear embed, 2nd-moment normalisation, 8 lrelu FCs at learning rate x 0.01).

Module names follow the reference's state dict (`b512` ... `b8`, `b4`, `mapping.embed`,
`mapping.fc0` ... `fc7`), so a reference snapshot's D weights map one to one; the FIR filter
buffers are not persistent here and must be skipped on import. Everything runs in float32
(`num_fp16_res` is accepted for signature compatibility and ignored).

Also here: the blur that EG3D fades out over the first kimg of training (`blur_image`, `blur_sigma`).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from .discriminator import DiscriminatorBlock, DiscriminatorEpilogue
from .layers import FullyConnected, normalize_2nd_moment, upfirdn2d


def filtered_resize(img: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize img [N, C, H, W] to size x size (or (h, w)) by bilinear interpolation with antialiasing.

    Downscaling widens the bilinear kernel by the scale factor (so no frequencies alias);
    upscaling is plain bilinear. Half-pixel centres (align_corners=False). Differentiable twice.
    """
    hw = (size, size) if isinstance(size, int) else tuple(size)
    return nn.functional.interpolate(img, size=hw, mode="bilinear", align_corners=False, antialias=True)


def blur_sigma(nimg: float, blur_fade_kimg: float, init_sigma: float = 10.0) -> float:
    """The blur strength after `nimg` training images: init_sigma falling linearly to 0 at blur_fade_kimg."""
    if blur_fade_kimg <= 0:
        return 0.0
    return init_sigma * max(0.0, 1.0 - nimg / (blur_fade_kimg * 1000.0))


def blur_image(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable blur of img [N, C, H, W] with taps 2^-(x / sigma)^2, |x| <= floor(3 sigma), summing to 1.

    Zero padding keeps the size ('same' output); sigma <= 0 returns img itself.
    """
    if sigma <= 0:
        return img
    radius = int(math.floor(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=img.device, dtype=torch.float32)
    taps = (taps / sigma).square().neg().exp2()
    taps = taps / taps.sum()
    x = upfirdn2d(img, taps[None, :], pad=(radius, radius, 0, 0))  # along W
    return upfirdn2d(x, taps[:, None], pad=(0, 0, radius, radius))  # along H


class CameraMapping(nn.Module):
    """c [N, c_dim] -> cmap [N, dim]: FC embed (linear), 2nd-moment normalisation, `num_layers` lrelu FCs.

    StyleGAN2's mapping network with z_dim = 0 and no running average of w; layers are named
    `embed`, `fc0`, `fc1`, ... like the reference.
    """

    def __init__(self, c_dim: int, dim: int, num_layers: int = 8, lr_mult: float = 0.01):
        super().__init__()
        self.c_dim, self.num_layers = c_dim, num_layers
        self.embed = FullyConnected(c_dim, dim)
        for i in range(num_layers):
            setattr(self, f"fc{i}", FullyConnected(dim, dim, "lrelu", lr_mult))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        x = normalize_2nd_moment(self.embed(c.float()))
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x


class DualDiscriminator(nn.Module):
    """D(img [N, 3, S, S], img_raw [N, 3, s, s], c [N, c_dim]) -> logits [N, 1] (float32).

    `img_channels` is per image (the trunk reads twice as many). c_dim = 0 drops the mapping and
    the projection (the head then outputs one value). `disc_c_noise` > 0 adds, in training mode
    only, Gaussian noise scaled by disc_c_noise times each column's batch std to c.
    """

    def __init__(self, c_dim: int = 25, img_resolution: int = 512, img_channels: int = 3,
                 channel_base: int = 32768, channel_max: int = 512, num_fp16_res: int = 0,
                 conv_clamp: float | None = 256, cmap_dim: int | None = None, disc_c_noise: float = 0.0,
                 mbstd_group: int = 4, mbstd_channels: int = 1, mapping_layers: int = 8,
                 mapping_lr_mult: float = 0.01):
        super().__init__()
        if img_resolution < 8 or img_resolution & (img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 8, got {img_resolution}")
        del num_fp16_res  # float32 throughout
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.disc_c_noise = float(disc_c_noise)
        self.block_resolutions = [2 ** i for i in range(int(math.log2(img_resolution)), 2, -1)]  # S .. 8
        ch = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        self.cmap_dim = 0 if c_dim == 0 else (ch[4] if cmap_dim is None else cmap_dim)
        clamp = conv_clamp if conv_clamp and conv_clamp > 0 else None

        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(
                tmp_ch=ch[res], out_ch=ch[res // 2], resolution=res, down=True, first=res == img_resolution,
                hyper_dim=0, zero_init=False, use_fp16=False, conv_clamp=clamp, img_channels=2 * img_channels))
        self.mapping = (CameraMapping(c_dim, self.cmap_dim, mapping_layers, mapping_lr_mult)
                        if c_dim > 0 else None)
        self.b4 = DiscriminatorEpilogue(ch[4], self.cmap_dim, mbstd_group, mbstd_channels, clamp,
                                        mbstd_strided=True)

    def cmap(self, c: torch.Tensor) -> torch.Tensor:
        """Camera c [N, c_dim] -> projection vectors [N, cmap_dim] (with the training-time c noise)."""
        c = c.float()
        if self.training and self.disc_c_noise > 0:
            c = c + torch.randn_like(c) * c.std(0) * self.disc_c_noise
        return self.mapping(c)

    def forward(self, img: torch.Tensor, img_raw: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """img [N, C, S, S] and img_raw [N, C, h, w] (both in [-1, 1]), c [N, c_dim] -> logits [N, 1]."""
        n, k, s = img.shape[0], self.img_channels, self.img_resolution
        if img.ndim != 4 or img.shape[1:] != (k, s, s):
            raise ValueError(f"D expects img [N, {k}, {s}, {s}], got {tuple(img.shape)}")
        if img_raw.ndim != 4 or img_raw.shape[:2] != (n, k):
            raise ValueError(f"D expects img_raw [{n}, {k}, h, w], got {tuple(img_raw.shape)}")
        if img_raw.shape[2:] != img.shape[2:]:
            img_raw = filtered_resize(img_raw, s)
        x = torch.cat([img, img_raw.to(img.dtype)], dim=1)  # [N, 2C, S, S]
        cmap = None
        if self.mapping is not None:
            if c is None or c.shape != (n, self.c_dim):
                raise ValueError(f"D expects a camera c [{n}, {self.c_dim}], got {None if c is None else tuple(c.shape)}")
            cmap = self.cmap(c)
        h = None
        for res in self.block_resolutions:
            h = getattr(self, f"b{res}")(h, x, None)
        return self.b4(h, cmap)
