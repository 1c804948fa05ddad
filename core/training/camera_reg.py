"""Regularisers of 3DGP's learned camera distribution ("3D generation on ImageNet", ICLR 2023; public code
snap-research/3dgp): they keep the camera generator (core/networks/camera_generator.py) near the prior.

- Earth mover's distance per scalar parameter between `emd_samples` prior cameras and as many posterior
  cameras (random z and classes; with `emd_per_class`, an extension, all of one random class per step).
  For two equal-size, equally weighted 1-D samples the optimal transport with squared cost matches them
  in sorted order, so the distance is mean((sort(a) - sort(b))^2): exact, and differentiable through the
  sort. The weighted sum ramps linearly from 0 to 1 over `ramp_kimg`.
- Mean forcing: weight x || mean posterior origin (yaw, pitch) of `mean_forcing_samples` cameras - the
  prior's mean || (L2 norm), not ramped.

`camera_regularizer` draws the samples and returns the loss to add to G's loss and the scalars to log.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..cameras import PARAM_NAMES, CameraParams, prior_mean_angles, sample_prior
from ..config import CameraConfig, CameraGenConfig
from ..networks.camera_generator import CameraGenerator, random_labels


def emd_1d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Earth mover's distance with squared cost between two 1-D samples of equal size and equal weights:
    mean((sort(a) - sort(b))^2), a differentiable scalar."""
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"emd_1d needs two 1-D samples of one size, got {tuple(a.shape)} and {tuple(b.shape)}")
    return (torch.sort(a).values - torch.sort(b).values).square().mean()


def emd_ramp(kimg: float, ramp_kimg: float) -> float:
    """The multiplier of the distance term: kimg / ramp_kimg, clamped to [0, 1] (1 when ramp_kimg <= 0)."""
    return 1.0 if ramp_kimg <= 0 else min(max(kimg / ramp_kimg, 0.0), 1.0)


def emd_weights(cfg: CameraGenConfig) -> dict[str, float]:
    """The distance weight of each parameter (PARAM_NAMES): origin yaw and pitch, radius, FoV (degrees), look-at."""
    return {"yaw": cfg.emd_yaw, "pitch": cfg.emd_pitch, "radius": cfg.emd_radius, "fov_deg": cfg.emd_fov,
            "lookat_yaw": cfg.emd_lookat, "lookat_pitch": cfg.emd_lookat, "lookat_radius": cfg.emd_lookat}


def camera_emd(prior: CameraParams, posterior: CameraParams, cfg: CameraGenConfig
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(sum of the weighted per-parameter distances, {parameter: unweighted distance})."""
    dists = {k: emd_1d(getattr(prior, k), getattr(posterior, k)) for k in PARAM_NAMES}
    weights = emd_weights(cfg)
    return sum(weights[k] * dists[k] for k in PARAM_NAMES), dists


def mean_forcing(posterior: CameraParams, prior_mean: tuple[float, float]) -> torch.Tensor:
    """|| (mean yaw, mean pitch) of the posterior - prior_mean ||, the L2 norm (with a 1e-8 floor under the
    root, so that the gradient stays finite at 0)."""
    target = torch.as_tensor(prior_mean, dtype=posterior.yaw.dtype, device=posterior.yaw.device)
    diff = torch.stack([posterior.yaw.mean(), posterior.pitch.mean()]) - target
    return (diff.square().sum() + 1e-8).sqrt()


def camera_regularizer(gen: CameraGenerator, camera_cfg: CameraConfig, cfg: CameraGenConfig, kimg: float,
                       generator: torch.Generator | None = None,
                       prior_fn: Callable[[int], CameraParams] | None = None,
                       label_fn: Callable[[int], torch.Tensor | None] | None = None,
                       prior_mean: tuple[float, float] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The camera generator's regularisers at training progress `kimg`: (loss, logged scalars).

    prior_fn(n) gives n prior cameras (default: `sample_prior` of camera_cfg; pass the dataset's poses through
    `core.cameras.params_from_cameras` when the dataset is the prior), label_fn(n) n labels for the posterior
    samples (default: uniformly random classes; with `cfg.emd_per_class` the distances' samples share
    label_fn(1)), prior_mean the mean origin (yaw, pitch) of the mean forcing (default:
    `prior_mean_angles(camera_cfg)`; the dataset poses' mean when the dataset is the prior). The scalars:
    per-parameter distances `camera/emd_<name>`, the ramp `camera/emd_mult`, `camera/mean_forcing`, the
    posterior's mean and std of yaw, pitch, fov_deg and lookat_radius, and `camera/loss`.
    """
    device = gen.lo.device

    def prior(n: int) -> CameraParams:
        return (prior_fn(n) if prior_fn is not None else sample_prior(camera_cfg, n, generator)).to(device)

    def labels(n: int, one_class: bool = False) -> torch.Tensor | None:
        m = 1 if one_class else n
        c = label_fn(m) if label_fn is not None else random_labels(m, gen.c_dim, generator)
        return None if c is None else c.to(device).expand(n, -1)

    def posterior(n: int, one_class: bool = False) -> CameraParams:
        return gen(prior(n), torch.randn(n, gen.z_dim, generator=generator).to(device), labels(n, one_class))

    n = cfg.emd_samples
    post = posterior(n, one_class=cfg.emd_per_class)
    mult = emd_ramp(kimg, cfg.ramp_kimg)
    weighted, dists = camera_emd(prior(n), post, cfg)
    loss = mult * weighted
    stats = {f"camera/emd_{k}": v.item() for k, v in dists.items()}
    stats["camera/emd_mult"] = mult
    if cfg.mean_forcing > 0:
        mf = mean_forcing(posterior(cfg.mean_forcing_samples), prior_mean or prior_mean_angles(camera_cfg))
        loss = loss + cfg.mean_forcing * mf
        stats["camera/mean_forcing"] = mf.item()
    for k in ("yaw", "pitch", "fov_deg", "lookat_radius"):
        v = getattr(post, k).detach()
        stats[f"camera/{k}_mean"], stats[f"camera/{k}_std"] = v.mean().item(), v.std().item()
    stats["camera/loss"] = loss.item()
    return loss, stats
