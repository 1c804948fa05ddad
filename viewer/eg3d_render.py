"""EG3D models in the viewer: whole frames in one `G.render` call, the raw neural image, normals
from the depth image.

An EG3D generator (core/networks/eg3d.py, generator.family 'eg3d') renders whole images only: a
neural render at `neural_res` feeds a 2D super-resolution network modulated by w, so core's
patches (the viewer's tiles for EpiGRAF) do not apply. `G.render(..., resolution=S, neural_res=r)`
returns the final image at S^2 (the SR output resized) and, at r^2, the raw neural image, depth
and opacity; the viewer shows those as they come (the display shader upsamples them). While the
camera moves, frames are the neural render alone (no super-resolution: seconds per frame for a
512^2 model on a CPU) at half the model's neural resolution (at least 16), with fewer samples.
Normals come from the depth image (finite differences of the surface points along the pixels'
rays), not from the density gradient: EG3D's density is a feature of the neural render, and its
depth is what EG3D itself shows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.cameras import Cameras
from core.networks.generator import background_color
from core.render.rays import make_rays

PREVIEW_MIN_NEURAL = 16
"""The lowest neural resolution of a moving-camera frame."""


def is_eg3d(cfg) -> bool:
    """Whether a model config (G.cfg) is of the EG3D family."""
    return getattr(cfg.generator, "family", "epigraf") == "eg3d"


def family_name(cfg) -> str:
    return "EG3D" if is_eg3d(cfg) else "EpiGRAF"


def preview_neural_res(neural_res: int) -> int:
    """The neural resolution of frames rendered while the camera moves: half, at least 16."""
    return min(neural_res, max(PREVIEW_MIN_NEURAL, neural_res // 2))


def depth_normals(cams: Cameras, depth: torch.Tensor) -> torch.Tensor:
    """Camera-frame unit normals [1, 3, r, r] of the surface seen in a depth image [1, 1, r, r]
    (distances along the rays): cross product of the surface points' central differences across
    the image, turned towards the camera."""
    r = depth.shape[-1]
    origins, dirs = make_rays(cams, r)  # [1, r*r, 3], row-major pixels
    pts = (origins + dirs * depth.reshape(1, -1, 1)).reshape(1, r, r, 3).permute(0, 3, 1, 2)
    p = F.pad(pts, (1, 1, 1, 1), mode="replicate")
    du = p[..., 1:-1, 2:] - p[..., 1:-1, :-2]  # along the image's x
    dv = p[..., 2:, 1:-1] - p[..., :-2, 1:-1]  # along the image's y (down)
    n = F.normalize(torch.cross(du, dv, dim=1), dim=1)
    d = dirs.reshape(1, r, r, 3).permute(0, 3, 1, 2)
    facing = (n * d).sum(1, keepdim=True) > 0  # points away from the camera: flip
    n = torch.where(facing, -n, n)
    rot = cams.cam2world[0, :3, :3].to(n.dtype)
    return torch.einsum("bchw,cd->bdhw", n, rot)  # R^T n: world -> camera frame


def render_whole(G: torch.nn.Module, planes: torch.Tensor, w: torch.Tensor, cams: Cameras, resolution: int,
                 num_coarse: int, num_fine: int, neural_res: int | None, background, mode: str = "rgb",
                 super_resolve: bool = True) -> dict[str, torch.Tensor]:
    """One EG3D frame: image [3, S, S] (the final image, or the normals picture in normals mode),
    raw [3, r, r], depth and opacity [1, r, r] (r the neural resolution), straight from G.render.
    super_resolve False (moving-camera frames): the neural render alone (`G.render_field`), its raw
    image upsampled as the image; the super-resolution of a 512^2 model costs seconds on a CPU."""
    if super_resolve:
        out = G.render(planes, cams, resolution=resolution, num_coarse=num_coarse, num_fine=num_fine, w=w,
                       neural_res=neural_res, background=background)
        image = out["image"][0]
    else:
        out = G.render_field(planes, cams, neural_res, num_coarse=num_coarse, num_fine=num_fine,
                             background=background)
        image = F.interpolate(out["image_raw"], size=(resolution, resolution), mode="bilinear",
                              align_corners=False)[0]
    if mode == "normals":
        nrm = depth_normals(cams, out["depth"])[0]
        bg = background_color(G.cfg.render.background if background is None else background, nrm.device, nrm.dtype)
        a = out["opacity"][0]
        pic = nrm * a + bg[:, None, None] * (1 - a)
        image = F.interpolate(pic[None], size=(resolution, resolution), mode="bilinear", align_corners=False)[0]
    return {"image": image, "raw": out["image_raw"][0], "depth": out["depth"][0], "opacity": out["opacity"][0]}
