"""Patch parameters for patch-wise training, and cutting the matching patches from real images.

Scale s is the patch side as a fraction of the image side; offsets (ox, oy) in [0, 1 - s] put its
top-left corner (core/render/rays.py holds the convention). EpiGRAF's schedule draws
s = Beta(1, beta(t)) * (1 - r/R) + r/R with beta(t) linear from beta_start to beta_end over T kimg:
nearly whole images at first, more and more small high-resolution patches later. GRAF's annealed
uniform draws s ~ U[s_min(t), 1] with s_min going from 1 to r/R over T. 'full' always uses s = 1.
Groups of `patch_group` consecutive samples share one patch (as the minibatch-std groups do).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import TrainConfig
from ..render.rays import Patch, pixel_ndc


def beta_of(kimg: float, cfg: TrainConfig) -> float:
    t = min(max(kimg / max(cfg.patch_anneal_kimg, 1e-8), 0.0), 1.0)
    return cfg.patch_beta_start + (cfg.patch_beta_end - cfg.patch_beta_start) * t


def sample_patches(batch: int, img_res: int, cfg: TrainConfig, kimg: float, device=None) -> Patch:
    """Patch parameters for a batch (torch's global RNG): scale [B], offset [B, 2]."""
    min_scale = cfg.patch_res / img_res
    groups = -(-batch // cfg.patch_group)
    if cfg.patch_dist == "full" or min_scale >= 1:
        s = torch.ones(groups)
    elif cfg.patch_dist == "beta":
        u = torch.rand(groups)
        x = 1 - (1 - u).pow(1 / beta_of(kimg, cfg))  # inverse CDF of Beta(1, b): F(x) = 1 - (1 - x)^b
        s = x * (1 - min_scale) + min_scale
    elif cfg.patch_dist == "uniform":
        t = min(max(kimg / max(cfg.patch_anneal_kimg, 1e-8), 0.0), 1.0)
        s_min = 1 - (1 - min_scale) * t
        s = s_min + (1 - s_min) * torch.rand(groups)
    else:
        raise ValueError(f"unknown patch distribution '{cfg.patch_dist}' (beta, uniform, full)")
    offset = torch.rand(groups, 2) * (1 - s)[:, None]
    rep = lambda x: x.repeat_interleave(cfg.patch_group, dim=0)[:batch].to(device)  # noqa: E731
    return Patch(rep(s), rep(offset))


def patch_params(patch: Patch) -> torch.Tensor:
    """[B, 3] (scale, offset_x, offset_y): the discriminator's view of a patch."""
    return torch.cat([patch.scales_xy()[:, :1], patch.offset], dim=1)


def extract_patches(images: torch.Tensor, patch: Patch, resolution: int) -> torch.Tensor:
    """Cut r x r patches from images [B, C, R, R] by bilinear resampling at the rays' pixel centres.

    The sample positions are exactly those where the renderer shoots its rays for the same patch,
    so a scale of r / R with offsets on the pixel grid gives an exact crop.
    """
    b = images.shape[0]
    ndc = pixel_ndc(b, resolution, patch, images.device, images.dtype)  # [B, r*r, 2], y up
    grid = torch.stack([ndc[..., 0], -ndc[..., 1]], dim=-1).reshape(b, resolution, resolution, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
