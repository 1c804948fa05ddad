"""3DGP's losses ("3D generation on ImageNet", ICLR 2023): EpiGRAF's patch GAN with a learned camera
distribution, an RGB-D discriminator fed through the depth adaptor, and knowledge distillation into D
(docs/3dgp.md). Same interface as `EpiGRAFLoss` (`accumulate(phase, batch, kimg, gain)`), chosen by
`setup.build_loss` when camera_gen, depth or kd is enabled; each part is used only when enabled.

* Cameras. The batch carries prior cameras (`Batch.gen_prior`: `sample_prior` of camera.*, or with
  train.camera_source 'dataset' the dataset's poses through `params_from_cameras`); the fakes are
  rendered from `G.camera_params(z, c, prior)`, the camera generator's output (the prior itself
  without one), differentiably, so G's GAN loss trains the camera generator too.
* 'Gmain': softplus(-D(fake)) + the optional EpiGRAF penalties (the outside-density points on the
  detached cameras) + the camera regulariser (`camera_reg.camera_regularizer`: ramped per-parameter
  EMD to the prior and mean forcing) when there is a camera generator.
* Depth. The fake patch gets a 4th channel, `G.depth_adaptor(fake_expected_depth(depth_raw, opacity,
  far), near, far, kimg)` of the rendered patch; the real patch is cut from the RGB-D image
  (`core.data.depth.real_rgbd`). The D-input blur covers the depth channel with the RGB sigma
  (depth.blur_with_rgb; else the depth is not blurred). ADA is refused with depth (`check_3dgp`).
* 'Dmain': softplus(D(fake)) + softplus(-D(real)) (+ with kd: `kd_weight(kimg) * kd_loss(pred,
  teacher rows of the reals, patch scales)` on the real patches only, D's head read with
  `return_kd=True`; no gradient reaches G).
* 'Dreg': EpiGRAF's lazy R1, over all of D's input channels (RGB-D with depth).

The camera generator and the depth adaptor are G's submodules: G's optimiser and G_ema cover them.
Every parameter of G and D gets a gradient (zero or not) in each phase that uses its network, on
every process, as the hand-made gradient averaging (core/training/distributed.py) needs: the camera
generator keeps fixed outputs in the graph, the adaptor mixes all candidates through a one-hot mask,
the KD head is read in every 'Dmain'.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..cameras import (
    PARAM_NAMES,
    CameraParams,
    Cameras,
    from_matrices,
    params_from_cameras,
    params_to_cameras,
    prior_bounds,
    sample_prior,
    to_angles,
)
from ..config import ModelConfig
from ..errors import UserError
from ..networks.camera_generator import random_labels
from ..networks.depth_adaptor import fake_expected_depth
from .camera_reg import camera_regularizer
from .kd import kd_loss, kd_weight
from .loss import Batch, EpiGRAFLoss, colour_range_penalty, d_logistic, gaussian_blur, outside_density_penalty
from .patches import extract_patches, patch_params

HIST_BINS = 16
HIST_SAMPLES = 512
HIST_PARAMS = ("yaw", "pitch", "fov_deg")


def uses_3dgp(cfg: ModelConfig) -> bool:
    """Whether a config trains with any of 3DGP's parts (camera generator, depth, distillation)."""
    return cfg.camera_gen.enabled or cfg.depth.enabled or cfg.kd.enabled


def samples_camera_params(cfg: ModelConfig) -> bool:
    """Whether the fakes' cameras are 3DGP cameras (a field of view and a look-at per camera, or learned):
    the batch then carries the prior's CameraParams (`Batch.gen_prior`)."""
    c = cfg.camera
    return cfg.camera_gen.enabled or c.fov_dist != "fixed" or c.lookat_dist != "fixed"


def check_3dgp(cfg: ModelConfig) -> None:
    """Refuse, with one line each, the combinations 3DGP's training does not support."""
    if not uses_3dgp(cfg):
        return
    parts = ", ".join(n for n, on in (("camera_gen", cfg.camera_gen.enabled), ("depth", cfg.depth.enabled),
                                      ("kd", cfg.kd.enabled)) if on)
    if cfg.generator.family != "epigraf":
        raise UserError(f"3DGP's parts ({parts}) train EpiGRAF models: generator.family '{cfg.generator.family}' "
                        f"is not supported with them")
    if cfg.depth.enabled and cfg.train.augment != "none":
        raise UserError(f"train.augment '{cfg.train.augment}' cannot be used with depth.enabled: ADA's colour "
                        f"transforms would alter the depth channel (3DGP trains without augmentation): pass "
                        f"--train.augment none")
    if cfg.camera_gen.enabled and cfg.train.recon_weight > 0:
        raise UserError("train.recon_weight cannot be used with camera_gen.enabled: the reconstruction term renders "
                        "each fake from its real's camera, which the learned camera distribution replaces")


class DatasetCameraPrior:
    """The dataset's cameras as the camera prior (train.camera_source 'dataset'): `sample(n)` draws n of
    them (torch's global RNG) as CameraParams, `mean` is their mean origin (yaw, pitch)."""

    def __init__(self, cam2world: torch.Tensor, intrinsics: torch.Tensor, cfg: ModelConfig):
        self.params = params_from_cameras(from_matrices(cam2world, intrinsics, cfg.camera), cfg.camera)
        self.mean = (float(self.params.yaw.mean()), float(self.params.pitch.mean()))

    def sample(self, n: int) -> CameraParams:
        return self.params[torch.randint(len(self.params), (n,))]


class ThreeDGPLoss(EpiGRAFLoss):
    def __init__(self, G, D, augment_pipe, cfg: ModelConfig, embeddings=None,
                 camera_prior: DatasetCameraPrior | None = None):
        super().__init__(G, D, augment_pipe, cfg)
        check_3dgp(cfg)
        if cfg.depth.enabled and (getattr(G, "depth_adaptor", None) is None or D.img_channels != 4):
            raise ValueError("depth.enabled needs G with a depth adaptor and D with 4 input channels")
        if cfg.kd.enabled and (embeddings is None or getattr(D, "kd_head", None) is None):
            raise ValueError("kd.enabled needs the teacher embeddings and D with a KD head of their dimension")
        if cfg.train.camera_source == "dataset" and cfg.camera_gen.enabled and camera_prior is None:
            raise ValueError("train.camera_source 'dataset' with a camera generator needs the dataset's camera prior")
        self.embeddings = embeddings
        self.camera_prior = camera_prior

    # --- networks ---------------------------------------------------------------------------------

    def gen_cameras(self, b: Batch) -> tuple[CameraParams, Cameras]:
        """The fakes' cameras: the camera generator's output for the batch's prior cameras (differentiable
        in its weights), or the prior cameras themselves without a camera generator."""
        prior = b.gen_prior if b.gen_prior is not None else params_from_cameras(b.gen_cams, self.cfg.camera)
        if self.G.camera_gen is None:
            return prior, b.gen_cams
        params = self.G.camera_params(b.gen_z, b.gen_c, prior=prior)
        return params, params_to_cameras(params, self.cfg.camera)

    def run_G(self, b: Batch, kimg: float, update_w_avg: bool) -> tuple[torch.Tensor, torch.Tensor, Cameras]:
        """Render the fake patches [B, 3 (or 4 with depth), r, r]; also return their planes and cameras."""
        _, cams = self.gen_cameras(b)
        pose = None
        if self.cfg.generator.pose_cond:
            pose = to_angles(cams)[:, :2].detach()
            swap = torch.rand(pose.shape[0], device=pose.device) < self.pose_swap_prob(kimg)
            pose = torch.where(swap[:, None], pose[torch.randperm(pose.shape[0], device=pose.device)], pose)
        w = self.G.mapping(b.gen_z, b.gen_c, pose=pose, update_w_avg=update_w_avg)
        planes = self.G.planes(w, noise_mode="random")
        out = self.G.render(planes, cams, resolution=self.cfg.train.patch_res, patch=b.patch,
                            deterministic=False, density_noise=self.density_noise(kimg), chunk_rays=None, w=w)
        img = out["image"]
        if self.cfg.depth.enabled:
            depth = fake_expected_depth(out["depth_raw"], out["opacity"], cams.far)
            img = torch.cat([img, self.G.depth_adaptor(depth, cams.near, cams.far, kimg=kimg).to(img.dtype)], dim=1)
        return img, planes, cams

    def run_D(self, img: torch.Tensor, b: Batch, c: torch.Tensor | None, cams: Cameras, kimg: float,
              return_kd: bool = False):
        sigma = self.blur_sigma(kimg)
        if img.shape[1] > 3 and not self.cfg.depth.blur_with_rgb:
            img = torch.cat([gaussian_blur(img[:, :3], sigma), img[:, 3:]], dim=1)
        else:
            img = gaussian_blur(img, sigma)  # sigma in patch pixels, as in the reference; depth too
        if self.augment_pipe is not None:  # RGB only: ADA is refused with depth (check_3dgp)
            img = self.augment_pipe(img)
        camera = to_angles(cams)[:, :2].detach()
        if return_kd:
            return self.D(img, patch_params(b.patch), c=c, camera=camera, return_kd=True)
        return self.D(img, patch_params(b.patch), c=c, camera=camera)

    def real_patches(self, b: Batch) -> torch.Tensor:
        """The reals' patches [B, 3 (or 4: RGB-D), r, r], cut from all channels at once."""
        real = b.real
        if self.cfg.depth.enabled:
            if b.real_depth is None:
                raise ValueError("depth.enabled: the batch holds no depth maps (open the dataset with depth=True)")
            real = torch.cat([real, b.real_depth.to(real)], dim=1)
        return extract_patches(real, b.patch, self.cfg.train.patch_res)

    # --- stats ------------------------------------------------------------------------------------

    def depth_stats(self, kimg: float) -> dict[str, float]:
        """The adaptor's near shift sigmoid(theta) and the selection probability s of the raw depth."""
        a = self.G.depth_adaptor
        return {"depth/near_shift": torch.sigmoid(a.theta.detach()).item(),
                "depth/select_s": float(a.probabilities(kimg)[0])}

    # --- phases -----------------------------------------------------------------------------------

    def accumulate(self, phase: str, b: Batch, kimg: float, gain: float = 1.0) -> dict[str, float]:
        """Compute the phase's loss for this batch, backpropagate (scaled by gain); return stats."""
        if phase == "Gmain":
            return self._g_main(b, kimg, gain)
        if phase == "Dmain":
            return self._d_main(b, kimg, gain)
        return super().accumulate(phase, b, kimg, gain)  # Dreg: R1 over every channel of real_patches

    def _g_main(self, b: Batch, kimg: float, gain: float) -> dict[str, float]:
        t = self.cfg.train
        stats: dict[str, float] = {}
        fake, planes, cams = self.run_G(b, kimg, update_w_avg=True)
        logits = self.run_D(fake, b, b.gen_c, cams, kimg)
        loss = F.softplus(-logits).mean()
        stats["loss_G"] = loss.item()
        if t.rgb_range_weight > 0:
            excess = colour_range_penalty(self.G, planes, t.rgb_range_points)
            loss = loss + t.rgb_range_weight * excess
            stats["rgb_excess"] = excess.item()
        if t.outside_density_weight > 0:
            fixed = Cameras(*(x.detach() for x in (cams.cam2world, cams.intrinsics, cams.near, cams.far)))
            outside = outside_density_penalty(self.G, planes, fixed, t.outside_density_points)
            loss = loss + t.outside_density_weight * outside
            stats["outside_density"] = outside.item()
        if self.G.camera_gen is not None:
            dataset_prior = self.camera_prior if self.cfg.train.camera_source == "dataset" else None
            reg, reg_stats = camera_regularizer(
                self.G.camera_gen, self.cfg.camera, self.cfg.camera_gen, kimg,
                prior_fn=dataset_prior.sample if dataset_prior is not None else None,
                prior_mean=dataset_prior.mean if dataset_prior is not None else None)
            loss = loss + reg
            stats.update(reg_stats)
        if self.cfg.depth.enabled:
            stats.update(self.depth_stats(kimg))
        loss.mul(gain).backward()
        stats["D_fake"] = logits.mean().item()
        return stats

    def _d_main(self, b: Batch, kimg: float, gain: float) -> dict[str, float]:
        stats: dict[str, float] = {}
        with torch.no_grad():
            fake, _, cams = self.run_G(b, kimg, update_w_avg=False)
        logits_fake = self.run_D(fake, b, b.gen_c, cams, kimg)
        real = self.real_patches(b)
        extra = None
        if self.cfg.kd.enabled:
            if b.real_idx is None:
                raise ValueError("kd.enabled: the batch holds no dataset indices of its reals")
            logits_real, pred = self.run_D(real, b, b.real_c, b.real_cams, kimg, return_kd=True)
            target = self.embeddings.rows(b.real_idx.cpu()).to(pred.device)
            k = self.cfg.kd
            weight = kd_weight(kimg, k.weight, k.decay_kimg)
            kd = kd_loss(pred, target, b.patch.scales_xy())
            extra = weight * kd
            stats["kd/loss"], stats["kd/weight"] = kd.item(), weight
        else:
            logits_real = self.run_D(real, b, b.real_c, b.real_cams, kimg)
        stats.update(d_logistic(logits_fake, logits_real, gain, extra))
        return stats


@torch.no_grad()
def camera_histogram(G, cfg: ModelConfig, n: int = HIST_SAMPLES, bins: int = HIST_BINS, seed: int = 0) -> dict:
    """A compact histogram of G's learned camera distribution for stats.jsonl ('camera_hist'): n posterior
    cameras (prior samples, random z and classes, drawn from a generator seeded with `seed`, so torch's
    global RNG is untouched), per parameter of HIST_PARAMS that the prior does not fix: its range (the
    prior's [min, max]) and `bins` counts. {} for a model without a camera generator."""
    gen = getattr(G, "camera_gen", None)
    if gen is None:
        return {}
    g = torch.Generator().manual_seed(seed)
    device = gen.lo.device
    prior = sample_prior(cfg.camera, n, g, device=device)
    z = torch.randn(n, gen.z_dim, generator=g).to(device)
    post = gen(prior, z, random_labels(n, gen.c_dim, g, device))
    bounds = prior_bounds(cfg.camera)
    out: dict = {"n": n, "bins": bins}
    for k in HIST_PARAMS:
        lo, hi = bounds[k]
        if not hi > lo:
            continue
        counts = torch.histc(getattr(post, k).float().cpu(), bins=bins, min=lo, max=hi)
        out[k] = {"range": [round(lo, 5), round(hi, 5)], "counts": [int(c) for c in counts.tolist()]}
    return out


def grid_cameras(G, cfg: ModelConfig, angles: torch.Tensor, device=None) -> list[Cameras] | None:
    """The cameras of the sample grid's columns for a model with 3DGP cameras: its mean camera
    (`G.mean_camera_params`: 3DGP's average of learned cameras, with their field of view and look-at)
    moved to each orbit (yaw, pitch) of angles [n, 2]; None for EpiGRAF's fixed cameras."""
    if not samples_camera_params(cfg):
        return None
    mean = G.mean_camera_params(n=256)
    out = []
    for yaw, pitch in angles.tolist():
        p = CameraParams(*(getattr(mean, k).detach().clone() for k in PARAM_NAMES))
        p.yaw.fill_(yaw)
        p.pitch.fill_(min(max(pitch, 1e-3), math.pi - 1e-3))
        out.append(params_to_cameras(p, cfg.camera).to(device))
    return out
