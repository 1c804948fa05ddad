"""EG3D's losses (Chan et al. 2022; the facts of NVlabs/eg3d's training/loss.py, our own code).

Same interface as `EpiGRAFLoss` (`accumulate(phase, batch, kimg, gain)`), for generator.family
'eg3d' with the dual discriminator. Phases:

* 'Gmain': softplus(-D(fake)). The fake is rendered whole from the rendering camera (a real
  image's, loop._to_batch), at generator.neural_res, stochastic sampling, planes with random noise;
  G's mapping is conditioned on that camera's 25-float label, swapped per sample with probability p
  for the label of the batch-rolled sample (generator pose conditioning, GPC), p fading linearly
  from train.pose_swap_start to pose_swap_end over pose_swap_kimg.
* 'Greg' (every DENSITY_REG_INTERVAL G steps when train.density_reg > 0, weighted by the interval):
  per sample 1000 points uniform in [-1, 1]^3 (world units) and copies moved by
  N(0, density_reg_dist^2); L1 between their raw densities x density_reg. Its w comes from a mapping
  whose labels are all swapped or all kept (one draw for the batch, as in EG3D).
* 'Dmain': softplus(D(fake)) + softplus(-D(real)); fakes judged with their rendering camera's
  label, reals with their own.
* 'Dreg': R1 every r1_interval D steps, weighted by the interval: gamma / 2 (|dD/d image|^2 +
  |dD/d raw|^2) per sample, meaned.

D sees (blur(image, sigma), raw, c): the fake's raw is `image_raw_returned` (unblurred, as in EG3D);
a real's raw is the real resized to neural_res (antialiased) and then blurred (EG3D's
blur_raw_target); sigma = dual_discriminator.blur_sigma. With ADA, the image and the raw image
upsampled to the image size are augmented with the same parameters and the raw part is resized back
(the resizing happens whenever ADA is on, also at p = 0, as in EG3D).
The neural rendering resolution grows from train.neural_res_start to generator.neural_res over
neural_res_kimg when a start is set (EG3D's schedule; ours counts the run's total kimg, EG3D's
restarts at 0 on resume); generator.neural_res is what the trained model renders at.
Left out: style mixing (off in EG3D's configs; G has one w). Unlike EG3D, which draws new
latents and cameras per phase, a step's phases share the batch's (loop._to_batch), and a lazy
regulariser joins its network's main phase in one optimiser step (as R1 does for EpiGRAF).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import ModelConfig
from ..networks.dual_discriminator import blur_image, blur_sigma, filtered_resize
from ..networks.eg3d import camera_label
from .loss import Batch, d_logistic, linear_decay, r1_backward

DENSITY_REG_INTERVAL = 4  # EG3D's density_reg_every: its G_reg_interval when density_reg > 0
DENSITY_REG_POINTS = 1000


def swap_labels(c: torch.Tensor, p: float, per_sample: bool = True) -> torch.Tensor:
    """c [B, 25] with rows replaced, with probability p, by the batch rolled by one (row i takes
    row i - 1): per sample, or for the whole batch at once (one draw)."""
    rolled = torch.roll(c, 1, 0)
    u = torch.rand((c.shape[0], 1) if per_sample else (), device=c.device)
    return torch.where(u < p, rolled, c)


def density_l1(G, planes: torch.Tensor, num_points: int, dist: float) -> torch.Tensor:
    """mean |raw(x) - raw(x + e)| over x uniform in [-1, 1]^3, e ~ N(0, dist^2), num_points per sample."""
    x = torch.rand(planes.shape[0], num_points, 3, device=planes.device, dtype=planes.dtype) * 2 - 1
    pts = torch.cat([x, x + torch.randn_like(x) * dist], dim=1)
    raw = raw_density(G, planes, pts)
    return F.l1_loss(raw[:, :num_points], raw[:, num_points:])


def raw_density(G, planes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """G's raw density [B, N] (before EG3D's -1 shift and softplus) at points [B, N, 3]."""
    return G.decode(planes, points)[..., 3]


class EG3DLoss:
    def __init__(self, G, D, augment_pipe, cfg: ModelConfig):
        self.G, self.D, self.augment_pipe, self.cfg = G, D, augment_pipe, cfg

    # --- schedules --------------------------------------------------------------------------------

    def blur_sigma(self, kimg: float) -> float:
        t = self.cfg.train
        return blur_sigma(kimg * 1000, t.blur_fade_kimg, t.blur_init_sigma)

    def neural_res(self, kimg: float) -> int:
        """The neural rendering resolution at this point of training."""
        t, final = self.cfg.train, self.cfg.generator.neural_res
        if not t.neural_res_start:
            return final
        a = min(max(kimg / t.neural_res_kimg, 0.0), 1.0) if t.neural_res_kimg > 0 else 1.0
        return int(round(t.neural_res_start + (final - t.neural_res_start) * a))

    def pose_swap_prob(self, kimg: float) -> float:
        t = self.cfg.train
        return linear_decay(t.pose_swap_start, kimg, t.pose_swap_kimg, t.pose_swap_end)

    # --- networks ---------------------------------------------------------------------------------

    def gen_labels(self, b: Batch, kimg: float, per_sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(the rendering cameras' labels [B, 25], the mapping's conditioning labels)."""
        c = camera_label(b.gen_cams)
        cond = swap_labels(c, self.pose_swap_prob(kimg), per_sample) if self.cfg.generator.pose_cond else c
        return c, cond  # without pose conditioning G's mapping zeroes the label itself

    def run_G(self, b: Batch, kimg: float, update_w_avg: bool) -> tuple[dict, torch.Tensor]:
        """The fakes' render dict (image, image_raw_returned, ...) and their cameras' labels."""
        c, cond = self.gen_labels(b, kimg)
        w = self.G.mapping(b.gen_z, cond, update_w_avg=update_w_avg)
        planes = self.G.planes(w, noise_mode="random")
        out = self.G.render(planes, b.gen_cams, w=w, deterministic=False, chunk_rays=None,
                            neural_res=self.neural_res(kimg))
        return out, c

    def augment(self, img: torch.Tensor, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ADA on the pair: the same parameters for the image and the raw image at the image's size."""
        pipe = self.augment_pipe
        if pipe is None:
            return img, raw
        b, _, h, w = img.shape
        up = filtered_resize(raw, (h, w))  # the round trip even at p = 0, as in EG3D
        if float(pipe.p) > 0:
            params = pipe.sample_params(b, h, w, img.device)
            img, up = pipe.apply(img, params), pipe.apply(up, params)
        return img, filtered_resize(up, tuple(raw.shape[-2:]))

    def run_D(self, img: torch.Tensor, raw: torch.Tensor, c: torch.Tensor, kimg: float) -> torch.Tensor:
        img, raw = self.augment(blur_image(img, self.blur_sigma(kimg)), raw)
        return self.D(img, raw, c if self.D.c_dim > 0 else None)

    def real_pair(self, b: Batch, kimg: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(real image, its raw target: resized to neural_res and blurred, its camera label)."""
        raw = blur_image(filtered_resize(b.real, self.neural_res(kimg)), self.blur_sigma(kimg))
        return b.real, raw, camera_label(b.real_cams)

    # --- phases -----------------------------------------------------------------------------------

    def accumulate(self, phase: str, b: Batch, kimg: float, gain: float = 1.0) -> dict[str, float]:
        """Compute the phase's loss for this batch, backpropagate (scaled by gain); return stats."""
        stats: dict[str, float] = {}
        t = self.cfg.train
        if phase == "Gmain":
            out, c = self.run_G(b, kimg, update_w_avg=False)
            logits = self.run_D(out["image"], out["image_raw_returned"], c, kimg)
            loss = F.softplus(-logits).mean()
            loss.mul(gain).backward()
            stats["loss_G"] = loss.item()
            stats["D_fake"] = logits.mean().item()
        elif phase == "Greg":
            _, cond = self.gen_labels(b, kimg, per_sample=False)
            w = self.G.mapping(b.gen_z, cond)
            l1 = density_l1(self.G, self.G.planes(w, noise_mode="random"), DENSITY_REG_POINTS, t.density_reg_dist)
            (l1 * t.density_reg * DENSITY_REG_INTERVAL).mul(gain).backward()
            stats["density_l1"] = l1.item()
        elif phase == "Dmain":
            with torch.no_grad():
                out, c = self.run_G(b, kimg, update_w_avg=True)  # EG3D tracks w's mean in the D phase
            logits_fake = self.run_D(out["image"], out["image_raw_returned"], c, kimg)
            img, raw, c_real = self.real_pair(b, kimg)
            logits_real = self.run_D(img, raw, c_real, kimg)
            stats.update(d_logistic(logits_fake, logits_real, gain))
        elif phase == "Dreg":
            img, raw, c_real = self.real_pair(b, kimg)
            img, raw = img.detach().requires_grad_(True), raw.detach().requires_grad_(True)
            logits = self.run_D(img, raw, c_real, kimg)
            stats.update(r1_backward(logits, [img, raw], t.r1_gamma, t.r1_interval, gain))
        else:
            raise ValueError(phase)
        return stats
