"""The EG3D family (Chan et al., "Efficient Geometry-aware 3D GANs", CVPR 2022; NVlabs/eg3d): the
same generator API as EpiGRAF's, with EG3D's conventions as options of the shared parts.

    w = G.mapping(z, c=label25, psi=0.7)   # or pose=(yaw, pitch) [B, 2], or neither: the mean camera
    planes = G.planes(w)                   # [B, 3, 32, Rp, Rp], EG3D's layout
    rgb, sigma = G.query(planes, points)   # 2 f - 1 of the first 3 features, softplus(raw - 1)
    out = G.render(planes, cameras, w=w)   # image (super-resolved), image_raw, depth, opacity, ...

What differs from EpiGRAF (docs/eg3d.md):
- mapping: conditioned on the 25-float camera label (OpenCV cam2world row-major, then the
  normalised intrinsics) times `c_scale`, zeros without pose conditioning;
- lookup: planes xy, xz, zx, align_corners=False (`core.kernels.triplane_sample(lookup='eg3d')`);
- decoder (`OSGDecoder`): FC 32 -> 64, softplus, FC 64 -> 33; channel 0 the raw density, the other
  32 through sigmoid * 1.002 - 0.001; all 32 are composited;
- renderer: EG3D's rule of `core.render.renderer.render_rays` (values averaged at interval
  midpoints, density activated after averaging, EG3D's importance sampling);
- the neural render (`neural_res`) feeds `SuperResolution`, modulated by w.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import kernels
from ..cameras import Cameras, angles_to_origins, fov_to_intrinsics, look_at
from ..config import ModelConfig
from ..render.rays import Patch, make_rays
from ..render.renderer import render_rays_chunked
from .generator import TriPlaneGenerator, background_color, chunk_size
from .layers import FullyConnected
from .mapping import MappingNetwork
from .superres import SuperResolution
from .synthesis import SynthesisNetwork

LABEL_DIM = 25
_CV_FLIP = (1.0, -1.0, -1.0, 1.0)  # OpenGL <-> OpenCV camera axes (an involution)


def camera_label(cams: Cameras) -> torch.Tensor:
    """Cameras (OpenGL cam2world, in the model's world frame) -> [B, 25] EG3D labels."""
    flip = torch.tensor(_CV_FLIP, dtype=cams.cam2world.dtype, device=cams.cam2world.device)
    return torch.cat([(cams.cam2world * flip).reshape(-1, 16), cams.intrinsics.reshape(-1, 9)], dim=1)


def label_cameras(labels: torch.Tensor, near: float, far: float) -> Cameras:
    """[B, 25] EG3D labels -> Cameras in the same world frame with fixed ray bounds (EG3D's
    ray_start/ray_end)."""
    labels = torch.as_tensor(labels)
    if labels.ndim != 2 or labels.shape[1] != LABEL_DIM:
        raise ValueError(f"EG3D camera labels are [B, 25], got {tuple(labels.shape)}")
    flip = torch.tensor(_CV_FLIP, dtype=labels.dtype, device=labels.device)
    b = labels.shape[0]
    return Cameras(labels[:, :16].reshape(b, 4, 4) * flip, labels[:, 16:].reshape(b, 3, 3),
                   torch.full((b,), float(near), dtype=labels.dtype, device=labels.device),
                   torch.full((b,), float(far), dtype=labels.dtype, device=labels.device))


def pose_label(yaw: torch.Tensor, pitch: torch.Tensor, radius: float, pivot, fov_deg: float) -> torch.Tensor:
    """EG3D's conditioning label for a pose: the camera on the sphere of `radius` about the world
    origin (EG3D's LookAtPoseSampler) at our (yaw, pitch), looking at `pivot`. Yaw pi/2, pitch pi/2
    is EG3D's frontal camera (h = pi - yaw, v = pi (1 - cos pitch) / 2 in its angles)."""
    yaw = torch.as_tensor(yaw, dtype=torch.float32).reshape(-1)
    pitch = torch.as_tensor(pitch, dtype=torch.float32, device=yaw.device).reshape(-1)
    origins = angles_to_origins(yaw, pitch, torch.full_like(yaw, radius))
    c2w = look_at(origins, torch.tensor(pivot, dtype=yaw.dtype, device=yaw.device).expand_as(origins))
    k = fov_to_intrinsics(torch.full_like(yaw, math.radians(fov_deg)))
    return camera_label(Cameras(c2w, k, torch.zeros_like(yaw), torch.ones_like(yaw)))


class OSGDecoder(nn.Module):
    """EG3D's decoder: mean plane feature [..., C] -> (32 features in [-0.001, 1.001], raw density)."""

    def __init__(self, in_ch: int = 32, hidden: int = 64, features: int = 32, lr_mult: float = 1.0):
        super().__init__()
        self.fc0 = FullyConnected(in_ch, hidden, lr_mult=lr_mult)
        self.fc1 = FullyConnected(hidden, 1 + features, lr_mult=lr_mult)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.fc1(F.softplus(self.fc0(feats)))
        return torch.sigmoid(x[..., 1:]) * 1.002 - 0.001, x[..., 0]

    def raw(self, feats: torch.Tensor) -> torch.Tensor:
        """[..., C] -> raw [..., 4]: the colour in the image range (2 f - 1 of the first three
        features) and the density before its shift and softplus, like TriPlaneDecoder's output."""
        return self.head(self.fc0(feats))

    def head(self, pre: torch.Tensor) -> torch.Tensor:
        """raw [..., 4] from the first layer's output `pre` (the separable mesh grid sums it per plane)."""
        x = self.fc1(F.softplus(pre))
        return torch.cat([2 * (torch.sigmoid(x[..., 1:4]) * 1.002 - 0.001) - 1, x[..., :1]], dim=-1)


class EG3DGenerator(TriPlaneGenerator):
    """The EG3D generator on our layers, lookup, renderer and config (generator.family = 'eg3d')."""

    def __init__(self, cfg: ModelConfig):
        nn.Module.__init__(self)
        self.cfg = cfg
        g = cfg.generator
        if g.c_dim:
            raise ValueError("EG3D models take no class labels (generator.c_dim must be 0): "
                             "their mapping is conditioned on the camera label")
        self.c_dim = 0
        self.mapping_network = MappingNetwork(g.z_dim, LABEL_DIM, g.w_dim, g.mapping_layers, g.mapping_lr_mult,
                                              g.w_avg_beta, g.mapping_hidden)
        self.synthesis = SynthesisNetwork(g.w_dim, g.plane_res, 3 * g.plane_channels, g.channel_base,
                                          g.channel_max, g.use_noise, g.conv_clamp)
        self.decoder = OSGDecoder(g.plane_channels, g.decoder_hidden, 32)
        self.superresolution = SuperResolution(g.sr_module, cfg.img_resolution, tuple(g.sr_channels), g.w_dim,
                                               32, g.sr_antialias, g.sr_conv_clamp)
        self.background = None

    # ---------------------------------------------------------------------------------------------
    # Latents

    def label(self, batch: int, pose: torch.Tensor | None = None, device=None) -> torch.Tensor:
        """The conditioning label [B, 25] for poses [B, 2] (yaw, pitch), default the prior's mean."""
        cam = self.cfg.camera
        if pose is None:
            pose = torch.tensor([[cam.yaw_mean, cam.pitch_mean]]).expand(batch, 2)
        pose = pose.detach().float().cpu()
        return pose_label(pose[:, 0], pose[:, 1], cam.radius, cam.look_at, cam.fov_deg).to(device)

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0,
                pose: torch.Tensor | None = None, update_w_avg: bool = False) -> torch.Tensor:
        """z [B, z_dim] and the conditioning camera -> w [B, w_dim] (EG3D's ws are all this w).
        c: raw 25-float EG3D labels [B, 25]; else pose [B, 2] (yaw, pitch) on the camera prior's
        sphere; else the prior's mean camera. Without pose conditioning the label is zeros."""
        g = self.cfg.generator
        if c is None:
            c = self.label(z.shape[0], pose, z.device)
        elif c.ndim != 2 or c.shape[1] != LABEL_DIM:
            raise ValueError(f"an EG3D mapping takes camera labels [B, 25], got {tuple(c.shape)}")
        c = c.to(z.device, z.dtype)
        c = c * g.c_scale if g.pose_cond else torch.zeros_like(c)
        return self.mapping_network(z, c, psi=psi, update_w_avg=update_w_avg)

    # ---------------------------------------------------------------------------------------------
    # The radiance field

    def decode_features(self, planes: torch.Tensor, points: torch.Tensor, impl: str | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """points [B, N, 3] -> (32 features in [-0.001, 1.001], raw density) [B, N, 32], [B, N]."""
        feats = kernels.triplane_sample(planes, points, self.cfg.generator.cube_scale,
                                        impl=impl or self.cfg.render.kernel_impl, lookup="eg3d")
        return self.decoder(feats)

    def decode(self, planes: torch.Tensor, points: torch.Tensor, impl: str | None = None) -> torch.Tensor:
        """As TriPlaneGenerator.decode: raw outputs [B, N, 4], the colour in the image range (2 f - 1
        of the first three features) and the density before its shift and softplus (EG3D's sigma)."""
        feats = kernels.triplane_sample(planes, points, self.cfg.generator.cube_scale,
                                        impl=impl or self.cfg.render.kernel_impl, lookup="eg3d")
        return self.decoder.raw(feats)

    def query(self, planes: torch.Tensor, points: torch.Tensor, density_noise: float = 0.0,
              impl: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """points [B, N, 3] -> rgb [B, N, 3] = 2 f - 1 of the first three features, sigma [B, N] =
        softplus(raw + density_shift), EG3D's density of one sample."""
        f, raw = self.decode_features(planes, points, impl)
        raw = raw + self.cfg.generator.density_shift
        if density_noise > 0:
            raw = raw + density_noise * torch.randn_like(raw)
        return 2 * f[..., :3] - 1, F.softplus(raw)

    # ---------------------------------------------------------------------------------------------
    # Rendering

    def render(self, planes: torch.Tensor, cameras: Cameras, resolution: int | None = None,
               patch: Patch | None = None, num_coarse: int | None = None, num_fine: int | None = None,
               deterministic: bool = True, density_noise: float = 0.0, background=None,
               chunk_rays: int | None | str = "auto", generator: torch.Generator | None = None,
               w: torch.Tensor | None = None, show_background: bool = True, impl: str | None = None,
               fused_march: bool | None = None, skip_empty: bool | None = None,
               neural_res: int | None = None) -> dict[str, torch.Tensor]:
        """The neural render at `neural_res` (default generator.neural_res) and its super-resolution.

        Returns image [B, 3, S, S] (S = img_resolution, or `resolution` when given: the SR output
        resized), image_raw [B, 3, r, r] (the neural render's first three features),
        image_feature [B, 32, r, r], depth (EG3D's: sum w t / sum w, clamped to the ray bounds),
        depth_raw, opacity [B, 1, r, r], and image_raw_returned: the raw image as EG3D's own
        synthesis returns it (see SuperResolution). `w` [B, w_dim] is required: the SR is modulated
        by it. EG3D renders whole images only (no patches); skip_empty and fused_march do not apply
        (EG3D's rule has only the PyTorch compositing), show_background neither (no background model).
        """
        if patch is not None:
            raise ValueError("EG3D models render whole images (no patches)")
        if w is None:
            raise ValueError("an EG3D model's super-resolution is modulated by w: pass G.render(..., w=w)")
        result = self.render_field(planes, cameras, neural_res or self.cfg.generator.neural_res, num_coarse,
                                   num_fine, deterministic, density_noise, background, chunk_rays, generator, impl)
        feats = result["image_feature"]
        sr = self.superresolution(result["image_raw"], feats, w.to(feats.dtype))
        image = sr["image"]
        if resolution and resolution != image.shape[-1]:
            image = F.interpolate(image, size=(resolution, resolution), mode="bilinear", align_corners=False,
                                  antialias=resolution < image.shape[-1])
        result["image"] = image
        result["image_raw_returned"] = result["image_raw"] if sr["raw_returned"] is None else sr["raw_returned"]
        return result

    def render_field(self, planes: torch.Tensor, cameras: Cameras, resolution: int | None = None,
                     num_coarse: int | None = None, num_fine: int | None = None, deterministic: bool = True,
                     density_noise: float = 0.0, background=None, chunk_rays: int | None | str = "auto",
                     generator: torch.Generator | None = None, impl: str | None = None) -> dict[str, torch.Tensor]:
        """The neural render alone at `resolution` (default generator.neural_res), without the
        super-resolution: image_feature [B, 32, r, r], image_raw = image (its first three channels),
        opacity, depth, depth_raw [B, 1, r, r]."""
        rc, g = self.cfg.render, self.cfg.generator
        nr = resolution or g.neural_res
        impl = impl or rc.kernel_impl
        cams = cameras.to(planes.device, torch.float64 if planes.dtype == torch.float64 else torch.float32)
        if len(cams) != planes.shape[0]:
            raise ValueError(f"{len(cams)} cameras for {planes.shape[0]} sets of planes")
        recording = self._records_grad(planes)
        if chunk_rays == "auto":
            chunk_rays = None if recording else chunk_size(rc, planes.device)
        if not recording:
            planes = kernels.channels_last(planes)
        origins, dirs = make_rays(cams, nr)

        def field(points):
            f, raw = self.decode_features(planes, points, impl)
            raw = raw + g.density_shift
            if density_noise > 0:
                raw = raw + density_noise * torch.randn_like(raw)
            return 2 * f - 1, raw

        out = render_rays_chunked(field, origins, dirs, cams.near, cams.far, chunk_rays,
                                  num_coarse=num_coarse or rc.num_coarse,
                                  num_fine=rc.num_fine if num_fine is None else num_fine,
                                  far_opaque=rc.far_opaque, deterministic=deterministic, generator=generator,
                                  stop_transmittance=0.0, rule="eg3d")
        b = planes.shape[0]
        bg = background_color(rc.background if background is None else background, planes.device, planes.dtype)
        feats = out["rgb"] + (1 - out["opacity"][..., None]) * bg[:1]  # EG3D: every channel on the background
        feats = feats.transpose(1, 2).reshape(b, -1, nr, nr)
        result = {"image": feats[:, :3], "image_raw": feats[:, :3], "image_feature": feats}
        for k in ("opacity", "depth", "depth_raw"):
            result[k] = out[k].reshape(b, 1, nr, nr)
        return result

    @torch.no_grad()
    def prepare(self, planes: torch.Tensor) -> None:
        """Nothing to build ahead for EG3D models (no empty-space skipping on EG3D's rule)."""
        return None

    def prepared(self, planes: torch.Tensor) -> bool:
        return True


def build(cfg: ModelConfig) -> TriPlaneGenerator:
    """The generator of a config's family: TriPlaneGenerator (EpiGRAF) or EG3DGenerator."""
    return EG3DGenerator(cfg) if cfg.generator.family == "eg3d" else TriPlaneGenerator(cfg)
