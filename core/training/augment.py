"""Adaptive discriminator augmentation (StyleGAN2-ADA's "bgc" pipeline, compact, plain PyTorch).

Every transform is drawn per sample and applied with probability p (rotation: 1 - sqrt(1 - p),
twice, as in ADA), with ADA's default strengths. Geometric transforms compose into ONE 3x3 matrix
per sample (output pixel -> input pixel, centred pixel units) executed by one bilinear `grid_sample`
with reflection padding; colour transforms compose into one 4x4 matrix per sample acting on RGB.

Geometric: integer translation (xint), isotropic scale, rotation, anisotropic scale, fractional
translation. Colour: brightness, contrast, luma flip, hue rotation, saturation.

Left out compared with ADA: x-flip (EpiGRAF mirrors the dataset instead, negating yaw), rotate90,
the 2x supersampling with a wavelet low-pass around the geometric resampling (we sample bilinearly
at the output resolution; a little more aliasing for large down-scaling), image-space filtering
(imgfilter), additive noise and cutout. Outputs are not clamped (ADA does not clamp either).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import doc

GEOMETRIC = ("xint", "scale", "rotate", "aniso", "xfrac")
COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")


@dataclass
class AugmentConfig:
    """Transform set and strengths (ADA's defaults); the controller's numbers live in TrainConfig."""

    transforms: str = doc(",".join(GEOMETRIC + COLOUR), "Comma-separated transforms to use (a subset of the bgc set).")
    xint_max: float = doc(0.125, "Integer translation: at most this fraction of the image side.")
    scale_std: float = doc(0.2, "Isotropic scale: log2-normal std.")
    rotate_max: float = doc(1.0, "Rotation: uniform within +-rotate_max * pi.")
    aniso_std: float = doc(0.2, "Anisotropic scale: log2-normal std.")
    xfrac_std: float = doc(0.125, "Fractional translation: normal std as a fraction of the image side.")
    brightness_std: float = doc(0.2, "Brightness: normal std of the additive shift.")
    contrast_std: float = doc(0.5, "Contrast: log2-normal std of the multiplier.")
    hue_max: float = doc(1.0, "Hue rotation about the luma axis: uniform within +-hue_max * pi.")
    saturation_std: float = doc(1.0, "Saturation: log2-normal std of the chroma multiplier.")


def _mat(rows: list[list], ref: torch.Tensor) -> torch.Tensor:
    """Batch of matrices from rows of scalars / [B] tensors -> [B, n, m]."""
    b = ref.shape[0]
    return torch.stack([torch.stack([torch.as_tensor(v, dtype=ref.dtype, device=ref.device).expand(b)
                                     for v in row], dim=-1) for row in rows], dim=-2)


def translate2d(tx, ty, ref):
    return _mat([[1, 0, tx], [0, 1, ty], [0, 0, 1]], ref)


def scale2d(sx, sy, ref):
    return _mat([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], ref)


def rotate2d(theta, ref):
    c, s = torch.cos(theta), torch.sin(theta)
    return _mat([[c, -s, 0], [s, c, 0], [0, 0, 1]], ref)


def geometric_matrix(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """[B, 3, 3] mapping OUTPUT pixel positions to INPUT positions (centred pixel units, x right, y down).

    Inverse transforms multiplied on the right in ADA's order: out(x) = in(G x).
    """
    s = params["scale"]
    g = translate2d(-params["xint"][:, 0], -params["xint"][:, 1], s)
    g = g @ scale2d(1 / s, 1 / s, s)
    g = g @ rotate2d(params["rotate_pre"], s)
    g = g @ scale2d(1 / params["aniso"], params["aniso"], s)
    g = g @ rotate2d(params["rotate_post"], s)
    return g @ translate2d(-params["xfrac"][:, 0], -params["xfrac"][:, 1], s)


def colour_matrix(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """[B, 4, 4] acting on homogeneous RGB (ADA's order: brightness, contrast, lumaflip, hue, saturation)."""
    b = params["brightness"]
    v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=b.device, dtype=b.dtype) / math.sqrt(3)  # luma axis
    vv = torch.outer(v, v)  # [4, 4]
    eye = torch.eye(4, device=b.device, dtype=b.dtype)
    c = eye.expand(b.shape[0], 4, 4).clone()
    c[:, :3, 3] = b[:, None]  # brightness: + b on every channel
    c = torch.diag_embed(torch.stack([params["contrast"]] * 3 + [torch.ones_like(b)], dim=1)) @ c
    c = (eye - 2 * vv * params["lumaflip"][:, None, None]) @ c  # reflect along the luma axis
    th = params["hue"][:, None, None]
    cross = torch.zeros(4, 4, device=b.device, dtype=b.dtype)  # [v]_x on the RGB block (Rodrigues)
    vx = v[0]
    cross[0, 1], cross[0, 2], cross[1, 0], cross[1, 2], cross[2, 0], cross[2, 1] = -vx, vx, vx, -vx, -vx, vx
    rot = vv + (eye - vv) * th.cos() + cross * th.sin()  # rotation about v (RGB block), [B, 4, 4]
    rot[:, 3, 3] = 1.0
    c = rot @ c
    return (vv + (eye - vv) * params["saturation"][:, None, None]) @ c


class AugmentPipe(nn.Module):
    """images [B, C, H, W] in [-1, 1] -> augmented images (same shape); identity (same tensor) when p == 0.

    `p` is a buffer (saved in state_dict); `AdaController` moves it. Differentiable w.r.t. the images.
    """

    def __init__(self, cfg: AugmentConfig | None = None, p: float = 0.0):
        super().__init__()
        self.cfg = cfg or AugmentConfig()
        self.enabled = {t.strip() for t in self.cfg.transforms.split(",") if t.strip()}
        unknown = self.enabled - set(GEOMETRIC + COLOUR)
        if unknown:
            raise ValueError(f"unknown augmentations {sorted(unknown)}; choose from {', '.join(GEOMETRIC + COLOUR)}")
        self.register_buffer("p", torch.tensor(float(p)))

    def sample_params(self, b: int, h: int, w: int, device=None, generator: torch.Generator | None = None
                      ) -> dict[str, torch.Tensor]:
        """Per-sample parameters (identity values where a transform is off or not drawn); pixels for shifts."""
        cfg, p = self.cfg, float(self.p)
        p_rot = 1 - math.sqrt(max(1 - min(p, 1.0), 0.0))

        def draw(name: str, value: torch.Tensor, identity: float, prob: float = p) -> torch.Tensor:
            if name not in self.enabled:
                return torch.full_like(value, identity)
            keep = torch.rand(value.shape[0], device=device, generator=generator) < prob
            keep = keep.view(-1, *([1] * (value.ndim - 1)))
            return torch.where(keep, value, torch.full_like(value, identity))

        def rand(*shape):
            return torch.rand(*shape, device=device, generator=generator)

        def randn(*shape):
            return torch.randn(*shape, device=device, generator=generator)

        size = torch.tensor([w, h], device=device, dtype=torch.float32)
        rot = cfg.rotate_max * math.pi
        return {
            "xint": draw("xint", torch.round((rand(b, 2) * 2 - 1) * cfg.xint_max * size), 0.0),
            "scale": draw("scale", torch.exp2(randn(b) * cfg.scale_std), 1.0),
            "rotate_pre": draw("rotate", (rand(b) * 2 - 1) * rot, 0.0, p_rot),
            "aniso": draw("aniso", torch.exp2(randn(b) * cfg.aniso_std), 1.0),
            "rotate_post": draw("rotate", (rand(b) * 2 - 1) * rot, 0.0, p_rot),
            "xfrac": draw("xfrac", randn(b, 2) * cfg.xfrac_std * size, 0.0),
            "brightness": draw("brightness", randn(b) * cfg.brightness_std, 0.0),
            "contrast": draw("contrast", torch.exp2(randn(b) * cfg.contrast_std), 1.0),
            "lumaflip": draw("lumaflip", torch.floor(rand(b) * 2), 0.0),
            "hue": draw("hue", (rand(b) * 2 - 1) * math.pi * cfg.hue_max, 0.0),
            "saturation": draw("saturation", torch.exp2(randn(b) * cfg.saturation_std), 1.0),
        }

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply given parameters (see `sample_params`) to images [B, C, H, W]."""
        b, ch, h, w = images.shape
        x = images
        if self.enabled & set(GEOMETRIC):
            g = geometric_matrix({k: v.to(images.device, torch.float32) for k, v in params.items()})  # [B, 3, 3]
            # Centred pixels -> grid_sample's normalised coordinates (align_corners=False: +-1 = image edges).
            n = torch.diag(torch.tensor([2.0 / w, 2.0 / h, 1.0], device=images.device))
            theta = (n @ g @ torch.linalg.inv(n))[:, :2, :]  # [B, 2, 3]
            grid = F.affine_grid(theta, [b, ch, h, w], align_corners=False)  # [B, H, W, 2]
            x = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="reflection", align_corners=False)
        if self.enabled & set(COLOUR):
            if ch != 3:
                raise ValueError(f"colour augmentation needs 3 channels, got {ch}")
            c = colour_matrix({k: v.to(images.device, torch.float32) for k, v in params.items()}).to(x.dtype)
            x = (c[:, :3, :3] @ x.reshape(b, 3, h * w) + c[:, :3, 3:]).reshape(b, 3, h, w)
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if float(self.p) <= 0:  # exact identity (one host sync on GPU; ADA starts at p = 0)
            return images
        b, _, h, w = images.shape
        return self.apply(images, self.sample_params(b, h, w, images.device))


class AdaController:
    """ADA's feedback loop: p += sign(E[sign(D(real))] - target) * batch * interval / (speed_kimg * 1000).

    Call `observe(real_logits)` after each D step on reals and `step(batch)` once per training step;
    every `interval` steps the accumulated mean sign moves p (clamped to [0, 1]) and is reset. With
    several processes, all-reduce `sign_sum`/`sign_count` before `step` (or observe gathered logits).
    """

    def __init__(self, pipe: AugmentPipe | None = None, target: float = 0.6, interval: int = 4,
                 speed_kimg: float = 500.0, p: float | None = None):
        self.pipe, self.target, self.interval, self.speed_kimg = pipe, target, interval, speed_kimg
        self.p = float(pipe.p) if p is None and pipe is not None else float(p or 0.0)
        self.sign_sum, self.sign_count, self.steps = 0.0, 0, 0
        self.last_rt: float | None = None  # the last E[sign(D(real))] used for an adjustment
        self._sync()

    def _sync(self) -> None:
        if self.pipe is not None:
            self.pipe.p.fill_(self.p)

    def observe(self, real_logits: torch.Tensor) -> None:
        """Accumulate sign(D(real)) [B] or [B, 1] (no grad)."""
        s = real_logits.detach().float().sign()
        self.sign_sum += float(s.sum())
        self.sign_count += s.numel()

    def step(self, batch_size: int) -> float:
        """One training step done; adjusts p every `interval` steps. Returns the current p."""
        self.steps += 1
        if self.steps % self.interval == 0 and self.sign_count > 0:
            self.last_rt = self.sign_sum / self.sign_count
            adjust = math.copysign(1.0, self.last_rt - self.target) if self.last_rt != self.target else 0.0
            self.p = min(max(self.p + adjust * batch_size * self.interval / (self.speed_kimg * 1000), 0.0), 1.0)
            self.sign_sum, self.sign_count = 0.0, 0
            self._sync()
        return self.p

    def state_dict(self) -> dict:
        return {"p": self.p, "sign_sum": self.sign_sum, "sign_count": self.sign_count, "steps": self.steps,
                "target": self.target, "interval": self.interval, "speed_kimg": self.speed_kimg,
                "last_rt": self.last_rt}

    def load_state_dict(self, state: dict) -> None:
        """Restore the loop's state (p, the step counter, the partial sums). The settings (target,
        interval, speed) stay this controller's, i.e. the config's: a resume with `--train.ada_kimg`
        or `--train.ada_target` changed uses the new values (the same config resumes exactly)."""
        self.p, self.steps = float(state["p"]), int(state["steps"])
        self.sign_sum, self.sign_count = float(state["sign_sum"]), int(state["sign_count"])
        self.last_rt = None if state.get("last_rt") is None else float(state["last_rt"])
        self._sync()
