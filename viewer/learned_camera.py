"""3DGP's learned cameras in the viewer: a sample of the model's camera distribution, its mean camera,
a summary of the distribution, and the depth channel its discriminator sees.

A 3DGP camera sits on a sphere around the scene centre (cfg.look_at) and looks at a point offset from
that centre (`core.cameras.params_to_cameras`); the viewer's OrbitCamera sits on a sphere around the
point it looks at. `orbit_from_params` turns one into the other exactly (same origin, same viewing
direction, roll 0 both), so orbiting after "mean camera" turns around the mean camera's look-at point.
Near and far follow the viewer's rule (shifted with the distance to the look-at point), which differs
from the 3DGP camera's by the look-at offset's length along the ray: at most `lookat_radius_max`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core import cameras as camlib
from core.config import CameraConfig
from core.networks.depth_adaptor import fake_expected_depth

from .camera import OrbitCamera, clamp_pitch, preset


def orbit_from_params(params: camlib.CameraParams, cfg: CameraConfig, i: int = 0) -> OrbitCamera:
    """The OrbitCamera seeing what camera i of `params` sees (origin, direction and field of view)."""
    centre = torch.tensor(cfg.look_at, dtype=torch.float64)
    p = params[i:i + 1].to(dtype=torch.float64)
    origin = centre + camlib.angles_to_origins(p.yaw, p.pitch, p.radius)[0]
    target = centre + camlib.angles_to_origins(p.lookat_yaw, p.lookat_pitch, p.lookat_radius)[0]
    d = origin - target
    r = float(d.norm())
    pitch = math.acos(max(-1.0, min(1.0, float(d[1]) / r)))
    yaw = math.atan2(float(d[2]), float(d[0]))
    return OrbitCamera(yaw, clamp_pitch(pitch), r, float(p.fov_deg[0]), [float(x) for x in target])


def sample_orbit(G, c: torch.Tensor | None, seed: int) -> OrbitCamera:
    """A camera of G's (learned) camera distribution for a random latent (seed) and class label c [1, c_dim]."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(1, G.cfg.generator.z_dim, generator=gen)
    with torch.no_grad():
        params = G.camera_params(z, c, generator=gen)
    return orbit_from_params(params.to(dtype=torch.float32), G.cfg.camera)


def initial_camera(model) -> OrbitCamera:
    """Where a newly opened model's view starts: 3DGP's mean camera for a model with a learned camera
    distribution, else the prior's mean camera (`viewer.camera.preset('mean')`)."""
    cfg = model.cfg.camera
    if getattr(model.G, "camera_gen", None) is None:
        return preset("mean", cfg, model.cfg.generator.family)
    g = model.cfg.generator
    c = torch.nn.functional.one_hot(torch.tensor([0]), g.c_dim).float() if g.c_dim else None
    return mean_orbit(model.G, c).normalised(cfg.radius)


def mean_orbit(G, c: torch.Tensor | None = None) -> OrbitCamera:
    """3DGP's mean camera (the average of 1024 learned cameras of class c, or of random classes)."""
    return orbit_from_params(G.mean_camera_params(c), G.cfg.camera)


@dataclass
class Summary:
    """Means and standard deviations of the learned distribution (angles in degrees)."""

    n: int
    stats: dict[str, tuple[float, float]]

    def lines(self) -> list[str]:
        return [f"{k}: {m:.1f} +- {s:.1f}" for k, (m, s) in self.stats.items()]


def summarise(G, c: torch.Tensor | None = None, n: int = 1024, seed: int = 0) -> Summary:
    """Mean +- std over n learned cameras of yaw, pitch, FoV (degrees) and the look-at offset's length."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.cfg.generator.z_dim, generator=gen)
    cc = None
    if G.cfg.generator.c_dim > 0:
        cc = (c.reshape(1, -1).expand(n, -1) if c is not None else
              torch.nn.functional.one_hot(torch.randint(G.cfg.generator.c_dim, (n,), generator=gen),
                                          G.cfg.generator.c_dim).float())
    with torch.no_grad():
        p = G.camera_params(z, cc, generator=gen)
    stats = {"yaw (deg)": torch.rad2deg(p.yaw), "pitch (deg)": torch.rad2deg(p.pitch), "fov (deg)": p.fov_deg,
             "look-at offset": p.lookat_radius}
    return Summary(n, {k: (float(v.mean()), float(v.std())) for k, v in stats.items()})


def adapted_depth(G, depth: torch.Tensor, opacity: torch.Tensor, near: float, far: float) -> torch.Tensor:
    """The depth channel G's depth adaptor hands D (its last candidate, as at evaluation) for a rendered
    frame's depth and opacity [1, H, W] -> [1, H, W], about [-1, 1] (near -> -1). The expected depth is
    depth * opacity + (1 - opacity) * far, the renderer's sum of w t with the far bound behind it."""
    expected = fake_expected_depth(depth * opacity, opacity, far)
    with torch.no_grad():
        return G.depth_adaptor(expected[None], near, far)[0]
