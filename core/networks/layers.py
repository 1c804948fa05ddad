"""StyleGAN2 building blocks in plain PyTorch: equalised-lr layers, FIR resampling, modulated convs.

Weights are stored raw and scaled at run time ("equalised learning rate"), as in the reference, so
parameter counts and initial statistics match and reference weights could be imported later:
an FC weight is multiplied by lr_mult / sqrt(in_features) and its bias by lr_mult; a conv weight by
1 / sqrt(fan_in).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnected(nn.Module):
    """y = act(x W^T * gain + b * lr_mult); activation 'linear' or 'lrelu' (slope 0.2, gain sqrt 2)."""

    def __init__(self, in_features: int, out_features: int, activation: str = "linear",
                 lr_mult: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mult)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_mult / math.sqrt(in_features)
        self.bias_gain = lr_mult

    def effective(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W, b) with the gains folded in: forward(x) = act(x W^T + b)."""
        w_gain, b_gain = self.weight_gain, self.bias_gain
        if self.activation == "lrelu":  # lrelu(y) * g == lrelu(y * g) for g > 0: fold the gain into W and b
            w_gain, b_gain = w_gain * SQRT2, b_gain * SQRT2
        return self.weight * w_gain, self.bias * b_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, *self.effective())
        if self.activation == "lrelu":
            x = F.leaky_relu(x, 0.2)
        return x


def fir_filter(taps=(1, 3, 3, 1), device=None) -> torch.Tensor:
    """Separable 2D FIR filter normalised to sum 1: [k, k]."""
    f = torch.tensor(taps, dtype=torch.float32, device=device)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, pad: tuple[int, int, int, int] = (0, 0, 0, 0),
              gain: float = 1.0) -> torch.Tensor:
    """Upsample by zero insertion, pad (x0, x1, y0, y1), convolve with f * gain. x [B, C, H, W]."""
    b, c, h, w = x.shape
    if up > 1:
        x = x.reshape(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(b, c, h * up, w * up)
    x = F.pad(x, [max(pad[0], 0), max(pad[1], 0), max(pad[2], 0), max(pad[3], 0)])
    x = x[:, :, max(-pad[2], 0): x.shape[2] - max(-pad[3], 0), max(-pad[0], 0): x.shape[3] - max(-pad[1], 0)]
    k = (f * gain).flip([0, 1]).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, k, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x upsampling with the FIR filter (output exactly 2H x 2W)."""
    fw = f.shape[-1]
    p0, p1 = (fw + 1) // 2, (fw - 2) // 2
    return upfirdn2d(x, f, up=2, pad=(p0, p1, p0, p1), gain=4.0)


class ModulatedConv(nn.Module):
    """StyleGAN2 synthesis layer: modulated 3x3 conv (optionally 2x up), demodulation, noise, bias, lrelu.

    Modulation and demodulation are applied to the activations (StyleGAN2's non-fused form), so the
    conv weight is shared across the batch; the 2x-up variant is a stride-2 transposed conv with the
    weight as stored (not flipped), followed by the FIR filter, as in the reference's
    `conv2d_resample`. conv_clamp > 0 clamps the output (after the activation and its gain) to
    +-conv_clamp, as the reference's synthesis layers do (256); 0 turns it off.
    """

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, up: bool = False,
                 use_noise: bool = True, kernel: int = 3, conv_clamp: float = 0.0):
        super().__init__()
        self.up, self.resolution, self.use_noise, self.kernel = up, resolution, use_noise, kernel
        self.conv_clamp = float(conv_clamp or 0.0)
        self.affine = FullyConnected(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.weight_gain = 1.0 / math.sqrt(in_ch * kernel * kernel)
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("resample_filter", fir_filter(), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        styles = self.affine(w)  # [B, in]
        weight = self.weight * self.weight_gain  # [out, in, k, k]
        dcoefs = ((weight[None] * styles[:, None, :, None, None]).square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        x = x * styles[:, :, None, None]
        if self.up:
            # Transposed conv with the weight as stored, then the FIR filter.
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)  # [B, out, 2H+1, 2W+1]
            x = upfirdn2d(x, self.resample_filter, pad=(1, 1, 1, 1), gain=4.0)
        else:
            x = F.conv2d(x, weight, padding=self.kernel // 2)
        x = x * dcoefs[:, :, None, None]
        if self.use_noise and noise_mode != "none":
            if noise_mode == "random":
                noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            else:
                noise = self.noise_const.to(x.dtype)
            x = x + noise * self.noise_strength
        x = x + self.bias[None, :, None, None].to(x.dtype)
        return clamp_activations(F.leaky_relu(x, 0.2) * SQRT2, self.conv_clamp)


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation, linear output (StyleGAN2's toRGB), clamped like ModulatedConv."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, conv_clamp: float = 0.0):
        super().__init__()
        self.conv_clamp = float(conv_clamp or 0.0)
        self.affine = FullyConnected(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.weight_gain = 1.0 / math.sqrt(in_ch)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain  # [B, in]
        x = F.conv2d(x * styles[:, :, None, None], self.weight)
        return clamp_activations(x + self.bias[None, :, None, None], self.conv_clamp)


def clamp_activations(x: torch.Tensor, limit: float) -> torch.Tensor:
    """x clamped to [-limit, limit]; unchanged when limit is 0 (off)."""
    return x.clamp(-limit, limit) if limit > 0 else x
