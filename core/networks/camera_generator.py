"""3DGP's camera generator: a learned camera distribution ("3D generation on ImageNet", ICLR 2023;
public code snap-research/3dgp).

It maps a camera drawn from the prior (`core.cameras.sample_prior`, or a dataset's pose), a latent z and
a class label c to the camera that is rendered. Every parameter is normalised to [0, 1] with the prior's
[min, max] (`core.cameras.prior_bounds`). Two small MLPs of equalised-learning-rate layers (softplus
activations) do the work:

- the origin adaptor reads the prior's (yaw, pitch, roll, radius), conditioned on the class only, and
  gives 4 values of which yaw and pitch are used (roll stays 0, the radius is the prior's);
- the look-at adaptor reads the new origin (yaw, pitch, radius) and the prior's field of view and
  look-at (yaw, pitch, radius), conditioned on z and the class, and gives the field of view and the
  look-at (yaw, pitch, radius).

Each output goes through a sigmoid into the prior's [min, max] (pitches a little inside (0, pi)); there is
no residual from the prior camera. A parameter that the prior fixes (min == max) keeps the prior's value.
The regularisers that keep it near the prior are in core/training/camera_reg.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..cameras import PARAM_NAMES, CameraParams, prior_bounds, sample_prior
from ..config import CameraConfig, CameraGenConfig
from .layers import FullyConnected, normalize_2nd_moment

PITCH_MARGIN = 1e-3
"""Learned pitches stay in [margin, pi - margin] (radians), never at the poles, where a look-at frame has no roll."""

_ORIGIN_OUT = ("yaw", "pitch")  # the origin adaptor's outputs 0 and 1 (2: roll and 3: radius are not learned)
_LOOKAT_OUT = ("fov_deg", "lookat_yaw", "lookat_pitch", "lookat_radius")


class _Adaptor(nn.Module):
    """params -> FC(hidden), softplus; [that, condition] -> FC(hidden), softplus -> FC(out), linear."""

    def __init__(self, in_dim: int, out_dim: int, cond_dim: int, hidden: int, lr_mult: float):
        super().__init__()
        self.inp = FullyConnected(in_dim, hidden, lr_mult=lr_mult)
        self.mid = FullyConnected(hidden + cond_dim, hidden, lr_mult=lr_mult)
        self.out = FullyConnected(hidden, out_dim, lr_mult=lr_mult)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        h = F.softplus(self.inp(x))
        if cond is not None:
            h = torch.cat([h, cond], dim=1)
        return self.out(F.softplus(self.mid(h)))


class CameraGenerator(nn.Module):
    """Prior camera + z + class -> the camera to render (CameraParams in, CameraParams out).

    The bounds come from `camera_cfg` when the module is built (non-persistent buffers: they are rebuilt
    from the checkpoint's config, never loaded from its weights).
    """

    def __init__(self, camera_cfg: CameraConfig, cfg: CameraGenConfig, z_dim: int, c_dim: int = 0):
        super().__init__()
        self.z_dim, self.c_dim = z_dim, c_dim
        bounds = prior_bounds(camera_cfg)  # in Python floats: the module can be built on the meta device
        self.fixed = {k: not bounds[k][1] > bounds[k][0] for k in PARAM_NAMES}
        out = {k: (max(lo_, PITCH_MARGIN), min(hi_, math.pi - PITCH_MARGIN))
               if k in ("pitch", "lookat_pitch") and not self.fixed[k] else (lo_, hi_)
               for k, (lo_, hi_) in bounds.items()}
        lo = torch.tensor([bounds[k][0] for k in PARAM_NAMES], dtype=torch.float64)
        hi = torch.tensor([bounds[k][1] for k in PARAM_NAMES], dtype=torch.float64)
        span = hi - lo
        out_lo = torch.tensor([out[k][0] for k in PARAM_NAMES], dtype=torch.float64)
        out_hi = torch.tensor([out[k][1] for k in PARAM_NAMES], dtype=torch.float64)
        self.register_buffer("lo", lo.float(), persistent=False)
        self.register_buffer("inv_span", torch.where(span > 0, 1 / span.clamp_min(1e-30), 0).float(),
                             persistent=False)
        self.register_buffer("out_lo", out_lo.float(), persistent=False)
        self.register_buffer("out_span", (out_hi - out_lo).float(), persistent=False)
        e = cfg.embed_dim
        self.z_embed = FullyConnected(z_dim, e, lr_mult=cfg.lr_mult)
        self.c_embed = FullyConnected(c_dim, e, lr_mult=cfg.lr_mult) if c_dim > 0 else None
        c_width = e if c_dim > 0 else 0
        self.origin = _Adaptor(4, 4, c_width, cfg.hidden, cfg.lr_mult)
        self.lookat = _Adaptor(7, 4, e + c_width, cfg.hidden, cfg.lr_mult)

    def normalise(self, params: CameraParams) -> torch.Tensor:
        """[n, 7] parameters mapped to [0, 1] by the prior's bounds (0 for a fixed parameter)."""
        return (params.stack() - self.lo) * self.inv_span

    def _output(self, raw: torch.Tensor, name: str, prior: torch.Tensor) -> torch.Tensor:
        if self.fixed[name]:  # kept as the prior's; the zero term keeps every weight in the graph (DDP)
            return prior + 0 * raw
        i = PARAM_NAMES.index(name)
        return self.out_lo[i] + self.out_span[i] * torch.sigmoid(raw)

    def forward(self, prior: CameraParams, z: torch.Tensor, c: torch.Tensor | None = None) -> CameraParams:
        """prior: n cameras of the prior; z [n, z_dim]; c [n, c_dim] (one-hot) or None when c_dim is 0.
        Returns the n posterior cameras (differentiable in the weights)."""
        n = len(prior)
        if z.shape != (n, self.z_dim):
            raise ValueError(f"z must have shape [{n}, {self.z_dim}], got {tuple(z.shape)}")
        dtype = self.lo.dtype
        ce = None
        if self.c_embed is not None:
            if c is None or c.shape != (n, self.c_dim):
                raise ValueError(f"this camera generator is class-conditional: pass c of shape [{n}, {self.c_dim}]")
            ce = normalize_2nd_moment(self.c_embed(c.to(dtype)))
        elif c is not None and c.numel() > 0:
            raise ValueError("this camera generator is unconditional (c_dim 0): pass c=None")
        ze = normalize_2nd_moment(self.z_embed(z.to(dtype)))
        prior = prior.to(dtype=dtype)
        x = self.normalise(prior)
        roll = torch.zeros_like(x[:, :1])
        o_raw = self.origin(torch.cat([x[:, 0:2], roll, x[:, 2:3]], dim=1), ce)
        out = {k: self._output(o_raw[:, i], k, getattr(prior, k)) for i, k in enumerate(_ORIGIN_OUT)}
        out["radius"] = prior.radius + 0 * o_raw[:, 2:].sum(dim=1)  # roll (forced 0) and radius are not learned
        new_origin = torch.stack([out["yaw"], out["pitch"], out["radius"]], dim=1)
        new_origin = (new_origin - self.lo[:3]) * self.inv_span[:3]
        cond = ze if ce is None else torch.cat([ze, ce], dim=1)
        l_raw = self.lookat(torch.cat([new_origin, x[:, 3:]], dim=1), cond)
        out.update({k: self._output(l_raw[:, i], k, getattr(prior, k)) for i, k in enumerate(_LOOKAT_OUT)})
        return CameraParams(**out)


def random_labels(n: int, c_dim: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor | None:
    """n one-hot labels of uniformly random classes ([n, c_dim]), or None when c_dim is 0."""
    if c_dim <= 0:
        return None
    idx = torch.randint(c_dim, (n,), generator=generator)
    return F.one_hot(idx, c_dim).float().to(device)


@torch.no_grad()
def mean_camera(gen: CameraGenerator, camera_cfg: CameraConfig, n: int = 1024, c: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> CameraParams:
    """3DGP's mean camera: the average of n posterior cameras (prior samples, random z; the class `c` ([c_dim]
    or [1, c_dim]) for all of them, or random classes when None). Returns CameraParams of length 1;
    `core.cameras.params_to_cameras` turns it into a camera, around which trajectories are laid out."""
    device = gen.lo.device
    prior = sample_prior(camera_cfg, n, generator, device=device)
    z = torch.randn(n, gen.z_dim, generator=generator).to(device)
    if gen.c_dim > 0 and c is not None:
        c = torch.as_tensor(c, dtype=torch.float32, device=device).reshape(1, gen.c_dim).expand(n, gen.c_dim)
    elif gen.c_dim > 0:
        c = random_labels(n, gen.c_dim, generator, device)
    post = gen(prior, z, c)
    return CameraParams(*(getattr(post, k).mean().reshape(1) for k in PARAM_NAMES))
