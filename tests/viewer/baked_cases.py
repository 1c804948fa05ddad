"""Hand-made baked fields with closed-form renders, shared by the GL driver (gl_baked_driver.py,
which draws them with the preview's shader) and test_baked_preview.py (which computes what the
pictures must show from core's own rays and the ray-sphere / ray-box formulas)."""

from __future__ import annotations

import numpy as np

from core import cameras as camlib
from core.config import CameraConfig
from core.render.bake import SIGMA, BakedField

RES = 128  # nodes per side
LO, SIZE = (-0.5, -0.5, -0.5), 1.0
CENTRE, RADIUS = (0.06, 0.04, -0.03), 0.25
COLOUR = (0.9, 0.3, 0.2)
BACKGROUND = (0.2, 0.5, 0.8)
FOG_COLOUR = (0.3, 0.8, 0.4)
CAMERA = CameraConfig(fov_deg=40.0, radius=1.2, near=0.6, far=1.8)
VIEW = dict(yaw=0.4, pitch=1.2, radius=1.2, fov=40.0)
IMAGE = 96  # pixels per side
DEPTH_RANGE = (0.8, 1.5)

CASES = {  # name -> (sigma inside the sphere, fog sigma everywhere, far_opaque, modes, edge ramp)
    "soft": (5.0, 0.0, False, ("rgb", "opacity", "depth"), 0),
    # a smooth radial edge (sigma falls linearly over 4 node spacings around the radius): a
    # sharp one sampled on nodes would be a staircase of voxels, with staircase normals
    "opaque": (400.0, 0.0, False, ("rgb", "normals", "depth"), 4),
    "fog_open": (0.0, 0.8, False, ("rgb",), 0),
    "fog_far_opaque": (0.0, 0.8, True, ("rgb",), 0),
}


def cameras():
    """The test camera (float64)."""
    import torch

    return camlib.from_angles(VIEW["yaw"], VIEW["pitch"], VIEW["radius"], VIEW["fov"], (0.0, 0.0, 0.0),
                              cfg=CAMERA, dtype=torch.float64)


def field(sphere_sigma: float, fog_sigma: float, ramp: float = 0) -> BakedField:
    """A constant-density sphere of COLOUR (none when sphere_sigma is 0) in constant fog of FOG_COLOUR
    (none when fog_sigma is 0); sigma is stored directly."""
    ax = LO[0] + np.arange(RES) * SIZE / (RES - 1)
    x, y, z = np.meshgrid(ax, ax, ax, indexing="ij")
    r = np.sqrt((x - CENTRE[0]) ** 2 + (y - CENTRE[1]) ** 2 + (z - CENTRE[2]) ** 2)
    inside = (r <= RADIUS) & (sphere_sigma > 0)
    sigma = np.where(inside, sphere_sigma, fog_sigma).astype(np.float32)
    if ramp > 0:  # sigma * clip((RADIUS + w - r) / 2w, 0, 1), w = ramp / 2 node spacings
        w = ramp / 2 * SIZE / (RES - 1)
        sigma = (sphere_sigma * np.clip((RADIUS + w - r) / (2 * w), 0, 1)).astype(np.float32)
    rgb = np.empty((RES, RES, RES, 3), np.float32)
    rgb[:] = np.where(inside[..., None], COLOUR, FOG_COLOUR) if fog_sigma > 0 else COLOUR
    return BakedField.from_arrays(rgb, sigma, LO, SIZE, threshold=1e-3, kind=SIGMA)
