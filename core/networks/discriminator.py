"""EpiGRAF's scale/location-aware patch discriminator (StyleGAN2 ResNet D, hypernetwork-modulated).

Layout for image resolution R and patch resolution r = 64 (docs/spec.md, "Discriminator"):

* Blocks are those of a full-resolution R x R StyleGAN2 ResNet discriminator, nominal resolutions
  R, R/2, ..., 8 with channels min(channel_base / res, channel_max). The first log2(R / r) blocks do
  not downsample (their input is already r x r), so block i of the patch D has exactly the weights
  of block i of the full-resolution D. fromRGB (1x1) sits at the first block.
* Block: y = skip(x) (1x1, FIR [1,3,3,1] + down 2, no bias, gain sqrt .5); x = conv0(x) (3x3);
  x = x * sigma (epigraf only); x = conv1(x) (3x3, FIR + down 2, gain sqrt .5); out = x + y.
  sigma = 1 + tanh(A h) per input channel of conv1, h = H(patch embedding) (the hypernetwork), A a
  per-block affine initialised to zero, so sigma starts at exactly 1 (paper eqs. 2 and 7).
* Epilogue at 4x4 (fp32): minibatch-std (groups of `mbstd_group` CONSECUTIVE samples, the samples
  that share one patch in core/training/patches.py), 3x3 conv, FC, FC to cmap_dim, projection
  out = sum(x * cmap) / sqrt(cmap_dim); cmap from the patch embedding (+ label c, + camera).
* Equalised learning rate everywhere; lrelu gain sqrt 2; conv outputs clamped to +-conv_clamp.
* Mixed precision: the `num_fp16_res` highest-resolution blocks run in float16 on CUDA (explicit
  casts); on any other device everything stays float32.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import DiscriminatorConfig
from .kd_head import KDHead
from .layers import SQRT2, FullyConnected, fir_filter, upfirdn2d
from .patch_embed import CameraEncoding, CondMapping, PatchEmbedding


def _fp16_ok(device: torch.device) -> bool:
    return device.type == "cuda"


class EqConv2d(nn.Module):
    """Equalised-lr conv: y = clamp(act(conv(x, W / sqrt(fan_in)) + b) * gain); optional FIR + 2x down."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, bias: bool = True, activation: str = "linear",
                 down: bool = False, conv_clamp: float | None = None):
        super().__init__()
        self.kernel, self.down, self.activation, self.conv_clamp = kernel, down, activation, conv_clamp
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.act_gain = SQRT2 if activation == "lrelu" else 1.0
        if down:
            self.register_buffer("resample_filter", fir_filter(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """x [B, in, H, W] -> [B, out, H', W'] (H' = H / 2 when down), in x's dtype."""
        w = (self.weight * self.weight_gain).to(x.dtype)
        if self.down and self.kernel == 1:  # FIR, keep every other pixel, then the 1x1 conv
            x = upfirdn2d(x, self.resample_filter, pad=(1, 1, 1, 1))[:, :, ::2, ::2]
            x = F.conv2d(x, w)
        elif self.down:  # FIR with the conv's padding folded in, then a stride-2 conv
            p = self.kernel // 2 + 1
            x = F.conv2d(upfirdn2d(x, self.resample_filter, pad=(p, p, p, p)), w, stride=2)
        else:
            x = F.conv2d(x, w, padding=self.kernel // 2)
        if self.bias is not None:
            x = x + self.bias.to(x.dtype)[None, :, None, None]
        if self.activation == "lrelu":
            x = F.leaky_relu(x, 0.2)
        g = self.act_gain * gain
        if g != 1:
            x = x * g
        if self.conv_clamp:
            x = x.clamp(-self.conv_clamp * gain, self.conv_clamp * gain)
        return x


class DiscriminatorBlock(nn.Module):
    """One ResNet block at nominal resolution `resolution`; optional fromRGB and hyper-modulation.

    `img_channels` is the channel count fromRGB reads (3; EG3D's dual discriminator uses 6).
    """

    def __init__(self, tmp_ch: int, out_ch: int, resolution: int, down: bool, first: bool,
                 hyper_dim: int, zero_init: bool, use_fp16: bool, conv_clamp: float | None, img_channels: int = 3):
        super().__init__()
        self.resolution, self.down, self.use_fp16 = resolution, down, use_fp16
        self.fromrgb = EqConv2d(img_channels, tmp_ch, 1, activation="lrelu", conv_clamp=conv_clamp) if first else None
        self.conv0 = EqConv2d(tmp_ch, tmp_ch, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = EqConv2d(tmp_ch, out_ch, 3, activation="lrelu", down=down, conv_clamp=conv_clamp)
        self.skip = EqConv2d(tmp_ch, out_ch, 1, bias=False, down=down)
        self.hyper_affine = None
        if hyper_dim > 0:
            self.hyper_affine = FullyConnected(hyper_dim, tmp_ch)  # A_l: h -> one value per conv1 input channel
            if zero_init:
                nn.init.zeros_(self.hyper_affine.weight)
            nn.init.zeros_(self.hyper_affine.bias)

    def dtype_for(self, device: torch.device) -> torch.dtype:
        return torch.float16 if self.use_fp16 and _fp16_ok(device) else torch.float32

    def sigma(self, h: torch.Tensor) -> torch.Tensor:
        """Modulation sigma = 1 + tanh(A h): h [B, hyper_dim] -> [B, tmp_ch] in (0, 2), float32."""
        return 1.0 + torch.tanh(self.hyper_affine(h.float()))

    def forward(self, x: torch.Tensor | None, img: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        """x [B, in, r', r'] (None at the first block), img [B, img_ch, r, r], h [B, hyper] | None -> [B, out, ...]."""
        dtype = self.dtype_for(img.device)
        if self.fromrgb is not None:
            x = self.fromrgb(img.to(dtype))
        x = x.to(dtype)
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv0(x)
        if self.hyper_affine is not None and h is not None:
            x = x * self.sigma(h).to(dtype)[:, :, None, None]
        x = self.conv1(x, gain=math.sqrt(0.5))
        return y + x


def minibatch_std(x: torch.Tensor, group: int, channels: int = 1, strided: bool = False) -> torch.Tensor:
    """x [B, C, H, W] -> [B, C + channels, H, W]: std over groups of `group` samples.

    Each group's per-feature std (over its members) is averaged over C / channels features and all
    pixels, and appended as `channels` constant maps. The group is min(group, B); B must be a
    multiple of it. By default groups are contiguous (b, b + 1, ...); `strided=True` takes
    StyleGAN2's layout instead, samples b, b + B/G, b + 2 B/G, ... sharing a group.
    """
    b, c, hh, ww = x.shape
    g = min(group, b)
    if b % g:
        raise ValueError(f"batch {b} is not a multiple of the minibatch-std group {g}")
    gdim = 0 if strided else 1  # the axis that holds a group's members
    shape = (g, b // g) if strided else (b // g, g)
    y = x.float().reshape(*shape, channels, c // channels, hh, ww)  # [G, N, F, c, H, W] or [N, G, ...]
    y = (y - y.mean(dim=gdim, keepdim=True)).square().mean(dim=gdim)  # [N, F, c, H, W] variance
    y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [N, F]
    y = y.repeat(g, 1) if strided else y.repeat_interleave(g, dim=0)  # [B, F]
    y = y[:, :, None, None].expand(b, channels, hh, ww)  # [B, F, H, W]
    return torch.cat([x, y.to(x.dtype)], dim=1)


class DiscriminatorEpilogue(nn.Module):
    """4x4 head in float32: minibatch-std, 3x3 conv, FC, FC to cmap_dim (or 1) and projection.

    `mbstd_strided` picks StyleGAN2's strided minibatch-std groups (see `minibatch_std`).
    """

    def __init__(self, ch: int, cmap_dim: int, mbstd_group: int, mbstd_channels: int, conv_clamp: float | None,
                 mbstd_strided: bool = False):
        super().__init__()
        self.cmap_dim, self.mbstd_group, self.mbstd_channels = cmap_dim, mbstd_group, mbstd_channels
        self.mbstd_strided = mbstd_strided
        self.conv = EqConv2d(ch + mbstd_channels, ch, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.fc = FullyConnected(ch * 16, ch, "lrelu")
        self.out = FullyConnected(ch, cmap_dim if cmap_dim > 0 else 1)

    def forward(self, x: torch.Tensor, cmap: torch.Tensor | None,
                return_features: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x [B, ch, 4, 4], cmap [B, cmap_dim] | None -> [B, 1]; with return_features also the 3x3
        conv's output [B, ch, 4, 4] (what the knowledge-distillation head reads)."""
        x = x.float()
        if self.mbstd_channels > 0:
            x = minibatch_std(x, self.mbstd_group, self.mbstd_channels, self.mbstd_strided)
        feats = self.conv(x)
        x = self.out(self.fc(feats.flatten(1)))  # [B, cmap_dim or 1]
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return (x, feats) if return_features else x


class PatchDiscriminator(nn.Module):
    """D(patch [B, C, r, r] in [-1, 1], patch_params [B, 3], c, camera) -> logits [B, 1].

    kd_dim > 0 adds 3DGP's knowledge-distillation head (core/networks/kd_head.py) on the epilogue's
    4x4 features; `D(..., return_kd=True)` then returns (logits, predicted embedding [B, kd_dim]).
    With kd_dim 0 (the default) D has exactly the parameters and outputs it had without it.
    img_channels: the channels fromRGB reads, 3 (RGB) or 4 (3DGP's RGB-D, depth.enabled); only the
    first layer's weight depends on it.
    """

    def __init__(self, cfg: DiscriminatorConfig, img_resolution: int, c_dim: int = 0, patch_res: int = 64,
                 kd_dim: int = 0, img_channels: int = 3):
        super().__init__()
        if cfg.variant not in ("epigraf", "standard"):
            raise ValueError(f"discriminator variant must be 'epigraf' or 'standard', got '{cfg.variant}'")
        r, big = patch_res, img_resolution
        for name, v in (("patch_res", r), ("img_resolution", big)):
            if v < 8 or v & (v - 1):
                raise ValueError(f"{name} must be a power of two >= 8, got {v}")
        if big < r:
            raise ValueError(f"image resolution {big} is smaller than the patch resolution {r}")
        if img_channels < 1:
            raise ValueError(f"img_channels must be at least 1, got {img_channels}")
        self.cfg, self.img_resolution, self.c_dim, self.patch_res = cfg, big, c_dim, r
        self.img_channels = img_channels
        self.epigraf = cfg.variant == "epigraf"
        extra = int(math.log2(big // r))  # leading blocks that do not downsample
        resolutions = [2 ** i for i in range(int(math.log2(big)), 2, -1)]  # R, R/2, ..., 8
        ch = {res: min(cfg.channel_base // res, cfg.channel_max) for res in resolutions + [4]}
        fp16_res = max(2 ** (int(math.log2(big)) + 1 - cfg.num_fp16_res), 8)
        clamp = cfg.conv_clamp if cfg.conv_clamp > 0 else None

        # Conditioning: patch embedding, hypernetwork, camera encoding, projection mapping.
        self.patch_embed = PatchEmbedding(cfg.patch_embed_dim, cfg.patch_fourier_freqs) if self.epigraf else None
        self.hypernet = (CondMapping(self.patch_embed.dim, cfg.hyper_dim, cfg.mapping_layers, cfg.mapping_lr_mult)
                         if self.epigraf else None)
        self.camera_enc = CameraEncoding(cfg.camera_encoding, cfg.camera_fourier_freqs) if cfg.camera_cond else None
        cond_dim = (c_dim + (self.patch_embed.dim if self.epigraf else 0)
                    + (self.camera_enc.dim if cfg.camera_cond else 0))
        # The one-hot label enters scaled to the norm of the inputs beside it (the patch embedding, O(1)
        # values each): as a bare one-hot beside 252 of them it would carry ~1/16 of their weight at
        # the start and its columns would move the projection ~16x slower than theirs as they learn.
        self.label_gain = math.sqrt(max(1, cond_dim - c_dim))
        self.cmap_dim = ch[4] if cond_dim > 0 else 0
        self.head_mapping = (CondMapping(cond_dim, self.cmap_dim, cfg.mapping_layers, cfg.mapping_lr_mult)
                             if cond_dim > 0 else None)

        hyper_dim = cfg.hyper_dim if self.epigraf else 0
        self.blocks = nn.ModuleList()
        for i, res in enumerate(resolutions):
            self.blocks.append(DiscriminatorBlock(
                tmp_ch=ch[res], out_ch=ch[res // 2], resolution=res, down=i >= extra, first=i == 0,
                hyper_dim=hyper_dim, zero_init=cfg.hyper_zero_init, use_fp16=res >= fp16_res, conv_clamp=clamp,
                img_channels=img_channels))
        self.epilogue = DiscriminatorEpilogue(ch[4], self.cmap_dim, cfg.mbstd_group, cfg.mbstd_channels, clamp)
        self.kd_head = KDHead(ch[4], kd_dim) if kd_dim > 0 else None

    # --- conditioning -----------------------------------------------------------------------------

    def hyper_code(self, patch_params: torch.Tensor) -> torch.Tensor:
        """h = H(embed(patch_params)): [B, 3] -> [B, hyper_dim] (epigraf variant only)."""
        return self.hypernet(self.patch_embed(patch_params))

    @torch.no_grad()
    def modulations(self, patch_params: torch.Tensor) -> list[torch.Tensor]:
        """Per-block sigma [B, C_l] in (0, 2) for visualisation (the paper's Fig. 7)."""
        h = self.hyper_code(patch_params)
        return [blk.sigma(h) for blk in self.blocks]

    def _cmap(self, b: int, emb: torch.Tensor | None, c: torch.Tensor | None,
              camera: torch.Tensor | None) -> torch.Tensor | None:
        if self.head_mapping is None:
            return None
        parts = []
        if self.c_dim > 0:
            if c is None or c.shape != (b, self.c_dim):
                got = None if c is None else tuple(c.shape)
                raise ValueError(f"D expects a label c [{b}, {self.c_dim}], got {got}")
            parts.append(c.float() * self.label_gain)
        if emb is not None:
            parts.append(emb)
        if self.camera_enc is not None:
            if camera is None or camera.shape[0] != b:
                raise ValueError(f"D is camera-conditioned: pass camera [{b}, 2] (yaw, pitch in radians)")
            parts.append(F.dropout(self.camera_enc(camera), p=self.cfg.camera_drop_p, training=self.training))
        return self.head_mapping(torch.cat(parts, dim=1))  # [B, cmap_dim]

    # --- forward ----------------------------------------------------------------------------------

    def forward(self, img: torch.Tensor, patch_params: torch.Tensor | None = None, c: torch.Tensor | None = None,
                camera: torch.Tensor | None = None, *, modulate: bool = True,
                return_kd: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """img [B, img_channels, r, r] in [-1, 1] (RGB, or RGB-D), patch_params [B, 3] (scale, offset_x,
        offset_y; needed by 'epigraf'), c [B, c_dim] | None, camera [B, 2] yaw/pitch radians | None -> logits [B, 1] (float32).

        `modulate=False` skips the hyper-modulation (sigma = 1) while keeping all other conditioning.
        `return_kd=True` (a D built with kd_dim > 0) returns (logits, the KD head's prediction [B, kd_dim]).
        """
        if return_kd and self.kd_head is None:
            raise ValueError("this discriminator has no knowledge-distillation head: build it with kd_dim > 0")
        b, r = img.shape[0], self.patch_res
        if img.ndim != 4 or img.shape[1:] != (self.img_channels, r, r):
            raise ValueError(f"D expects patches [B, {self.img_channels}, {r}, {r}], got {tuple(img.shape)}")
        emb = h = None
        if self.epigraf:
            if patch_params is None:
                raise ValueError("the epigraf discriminator needs patch_params [B, 3] (scale, offset_x, offset_y)")
            emb = self.patch_embed(patch_params.to(img.device))  # [B, 828]
            if modulate:
                h = self.hypernet(emb)  # [B, hyper_dim]
        cmap = self._cmap(b, emb, c, camera)
        x = None
        for block in self.blocks:
            x = block(x, img, h)  # [B, C_l, r_l, r_l]
        if return_kd:
            logits, feats = self.epilogue(x, cmap, return_features=True)
            return logits, self.kd_head(feats)  # [B, 1], [B, kd_dim]
        return self.epilogue(x, cmap)  # [B, 1]
