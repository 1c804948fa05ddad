"""EpiGRAF's losses: non-saturating logistic GAN loss on patches, lazy R1, D-input blur.

Phases (StyleGAN2-ADA's lazy regularisation): 'Gmain' (G: softplus(-D(fake)), plus the optional
colour-range penalty and the outside-density penalty, neither in the reference:
train.rgb_range_weight, train.outside_density_weight), 'Dmain'
(D: softplus(D(fake)) + softplus(-D(real))), 'Dreg' (R1 on real patches every r1_interval steps,
weighted by r1_gamma / 2 * r1_interval). Fake patches are rendered directly (only r x r rays);
real patches are resampled from the full image at the same ray positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..cameras import CameraParams, Cameras, to_angles
from ..config import ModelConfig
from ..render.rays import Patch, make_rays
from .patches import extract_patches, patch_params


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding (identity for sigma < 0.5 px)."""
    if sigma < 0.5:
        return x
    radius = min(int(math.ceil(3 * sigma)), x.shape[-1] - 1)
    k = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, [radius] * 4, mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def linear_decay(start: float, kimg: float, span_kimg: float, end: float = 0.0) -> float:
    """start at kimg 0, end at span_kimg, linear in between."""
    t = min(max(kimg / span_kimg, 0.0), 1.0) if span_kimg > 0 else 1.0
    return start + (end - start) * t


def colour_range_penalty(G, planes: torch.Tensor, num_points: int) -> torch.Tensor:
    """mean((|rgb| - 1)_+^2) of G's decoded colours at uniform random points of its tri-plane cube:
    zero while every colour is inside the [-1, 1] image range."""
    s = G.cfg.generator.cube_scale
    pts = (torch.rand(planes.shape[0], num_points, 3, device=planes.device, dtype=planes.dtype) * 2 - 1) * s
    rgb, _ = G.query(planes, pts)
    return (rgb.abs() - 1).clamp_min(0).square().mean()


def outside_ray_points(cams: Cameras, num_points: int, cube_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Points the renderer can sample outside the tri-plane cube: one uniform depth in [near, far] on
    each ray of an r x r full-image grid (r = floor(sqrt(num_points))) of each camera.
    Returns points [B, r * r, 3] and the mask [B, r * r] of those outside [-cube_scale, cube_scale]^3."""
    origins, dirs = make_rays(cams, max(1, math.isqrt(num_points)))
    u = torch.rand(origins.shape[:2], device=origins.device, dtype=origins.dtype)
    t = cams.near[:, None] + u * (cams.far - cams.near)[:, None]
    pts = origins + dirs * t[..., None]
    return pts, (pts.abs() > cube_scale).any(dim=-1)


def outside_density_penalty(G, planes: torch.Tensor, cams: Cameras, num_points: int) -> torch.Tensor:
    """Mean density sigma of G at the points of `outside_ray_points`, over those outside the cube (0 when
    no ray leaves it). There two or three planes read zeros and the rest of the features alone make
    density, which shows as flat-edged patches where the cube's faces cut the view."""
    pts, outside = outside_ray_points(cams, num_points, G.cfg.generator.cube_scale)
    _, sigma = G.query(planes, pts.to(planes.dtype))
    return (sigma * outside).sum() / outside.sum().clamp_min(1)


def d_logistic(logits_fake: torch.Tensor, logits_real: torch.Tensor, gain: float,
               extra: torch.Tensor | None = None) -> dict[str, float]:
    """D's non-saturating logistic loss, softplus(D(fake)) + softplus(-D(real)), backpropagated
    (scaled by gain) together with `extra` (another term of D's main phase, e.g. 3DGP's distillation
    loss) when given; returns the logistic loss's stats."""
    loss = F.softplus(logits_fake).mean() + F.softplus(-logits_real).mean()
    (loss if extra is None else loss + extra).mul(gain).backward()
    return {"loss_D": loss.item(), "D_real": logits_real.mean().item(),
            "D_real_sign": logits_real.sign().mean().item()}


def r1_backward(logits: torch.Tensor, inputs: list[torch.Tensor], gamma: float, interval: int,
                gain: float) -> dict[str, float]:
    """Lazy R1: gamma / 2 * |dD/d inputs|^2 (summed over every input, per sample), meaned and
    multiplied by the interval, backpropagated (scaled by gain); returns its stats."""
    grads = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    r1 = sum(g.square().sum(dim=[1, 2, 3]) for g in grads)
    loss = (r1 * (gamma / 2)).mean() * interval
    (loss + logits.mean() * 0).mul(gain).backward()
    return {"r1_penalty": r1.mean().item()}


@dataclass
class Batch:
    """One training step's inputs (already on the device)."""

    real: torch.Tensor  # [B, 3, R, R] in [-1, 1]
    real_c: torch.Tensor | None  # [B, c_dim]
    real_cams: Cameras  # dataset cameras of the reals
    gen_z: torch.Tensor  # [B, z_dim]
    gen_c: torch.Tensor | None  # [B, c_dim]
    gen_cams: Cameras  # cameras the fakes are rendered from
    patch: Patch  # shared by reals and fakes of this step
    # 3DGP (core/training/loss_3dgp.py): the reals' depth maps, their dataset indices and the prior
    # cameras the camera generator maps to the fakes' cameras (gen_cams are then those prior cameras)
    real_depth: torch.Tensor | None = None  # [B, 1, R, R] in [-1, 1]
    real_idx: torch.Tensor | None = None  # [B] int64, the items' indices in the dataset (mirrored: >= N)
    gen_prior: CameraParams | None = None


class EpiGRAFLoss:
    def __init__(self, G, D, augment_pipe, cfg: ModelConfig):
        self.G, self.D, self.augment_pipe, self.cfg = G, D, augment_pipe, cfg

    # --- schedules --------------------------------------------------------------------------------

    def blur_sigma(self, kimg: float) -> float:
        t = self.cfg.train
        return linear_decay(t.blur_init_sigma, kimg, t.blur_fade_kimg)

    def density_noise(self, kimg: float) -> float:
        g = self.cfg.generator
        return linear_decay(g.density_noise_init, kimg, g.density_noise_kimg)

    def pose_swap_prob(self, kimg: float) -> float:
        t = self.cfg.train
        return linear_decay(t.pose_swap_start, kimg, t.pose_swap_kimg, t.pose_swap_end)

    # --- networks ---------------------------------------------------------------------------------

    def run_G(self, b: Batch, kimg: float, update_w_avg: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Render the fake patches [B, 3, r, r]; also return the planes they came from."""
        pose = None
        if self.cfg.generator.pose_cond:
            pose = to_angles(b.gen_cams)[:, :2]
            swap = torch.rand(pose.shape[0], device=pose.device) < self.pose_swap_prob(kimg)
            pose = torch.where(swap[:, None], pose[torch.randperm(pose.shape[0], device=pose.device)], pose)
        w = self.G.mapping(b.gen_z, b.gen_c, pose=pose, update_w_avg=update_w_avg)
        planes = self.G.planes(w, noise_mode="random")
        out = self.G.render(planes, b.gen_cams, resolution=self.cfg.train.patch_res, patch=b.patch,
                            deterministic=False, density_noise=self.density_noise(kimg), chunk_rays=None, w=w)
        return out["image"], planes

    def run_D(self, img: torch.Tensor, b: Batch, c: torch.Tensor | None, cams: Cameras, kimg: float) -> torch.Tensor:
        img = gaussian_blur(img, self.blur_sigma(kimg))  # sigma in patch pixels, as in the reference
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, patch_params(b.patch), c=c, camera=to_angles(cams)[:, :2])

    def real_patches(self, b: Batch) -> torch.Tensor:
        return extract_patches(b.real, b.patch, self.cfg.train.patch_res)

    # --- phases -----------------------------------------------------------------------------------

    def accumulate(self, phase: str, b: Batch, kimg: float, gain: float = 1.0) -> dict[str, float]:
        """Compute the phase's loss for this batch, backpropagate (scaled by gain); return stats."""
        stats: dict[str, float] = {}
        t = self.cfg.train
        if phase == "Gmain":
            fake, planes = self.run_G(b, kimg, update_w_avg=True)
            logits = self.run_D(fake, b, b.gen_c, b.gen_cams, kimg)
            loss = F.softplus(-logits).mean()
            stats["loss_G"] = loss.item()  # the GAN part
            if t.rgb_range_weight > 0:
                excess = colour_range_penalty(self.G, planes, t.rgb_range_points)
                loss = loss + t.rgb_range_weight * excess
                stats["rgb_excess"] = excess.item()
            if t.outside_density_weight > 0:
                outside = outside_density_penalty(self.G, planes, b.gen_cams, t.outside_density_points)
                loss = loss + t.outside_density_weight * outside
                stats["outside_density"] = outside.item()
            if t.recon_weight > 0:  # the fakes have the reals' labels and cameras (loop._to_batch)
                recon = (fake - self.real_patches(b)).abs().mean()
                loss = loss + t.recon_weight * recon
                stats["recon_l1"] = recon.item()
            loss.mul(gain).backward()
            stats["D_fake"] = logits.mean().item()
        elif phase == "Dmain":
            with torch.no_grad():
                fake, _ = self.run_G(b, kimg, update_w_avg=False)
            logits_fake = self.run_D(fake, b, b.gen_c, b.gen_cams, kimg)
            logits_real = self.run_D(self.real_patches(b), b, b.real_c, b.real_cams, kimg)
            stats.update(d_logistic(logits_fake, logits_real, gain))
        elif phase == "Dreg":
            real = self.real_patches(b).detach().requires_grad_(True)
            logits = self.run_D(real, b, b.real_c, b.real_cams, kimg)
            stats.update(r1_backward(logits, [real], t.r1_gamma, t.r1_interval, gain))
        else:
            raise ValueError(phase)
        return stats
