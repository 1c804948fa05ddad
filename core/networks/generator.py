"""The tri-plane generator and its one API, used by training, the viewer, videos and meshes:

    w = G.mapping(z, c, psi=0.7)                      # [B, w_dim]
    planes = G.planes(w)                              # [B, 3, C, Rp, Rp]  (cache these per w)
    out = G.render(planes, cameras, resolution=128, w=w)  # image [B, 3, H, W] in [-1, 1], depth, opacity
    rgb, sigma = G.query(planes, points)              # any world points [B, N, 3]

`w` is needed by `render` only for a model with a background MLP (generator.bg_model 'sphere'),
whose styles come from w; the tri-plane field itself lives in the planes.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import kernels
from ..cameras import (
    CameraParams,
    Cameras,
    from_config,
    params_from_cameras,
    params_to_cameras,
    pose_cond_vector,
    prior_mean_angles,
    sample_prior,
    to_angles,
)
from ..config import ModelConfig
from ..render.march import march_compact
from ..render.occupancy import OccupancyGrid, build_for_generator
from ..render.rays import Patch, make_rays
from ..render.renderer import Skip, render_rays_chunked
from . import plane_cache
from .background import SphereBackground, render_background
from .camera_generator import CameraGenerator
from .camera_generator import mean_camera as _mean_camera
from .depth_adaptor import DepthAdaptor
from .mapping import MappingNetwork
from .synthesis import SynthesisNetwork
from .triplane import TriPlaneDecoder

# the skipping path evaluates few samples per ray: on CPU it runs this many times more rays per
# chunk than the dense path (fewer calls of many small ops; measured 1.3-1.5x faster than 1x)
SKIP_CHUNK_MULT = 4

# the folded planes' size up to which folding pays on a CPU: 3 x 64^2 x 64 fp32 (the demo, 3 MB) read
# faster than a matrix product per sample; 3 x 512^2 x 64 (200 MB, ffhq512) were 0.86-1.03x as fast
FOLD_MAX_BYTES = 32 << 20

BACKGROUNDS = {"white": 1.0, "black": -1.0, "zero": 0.0}


def background_color(bg: str | float | torch.Tensor, device, dtype) -> torch.Tensor:
    """A background name ('white', 'black', 'zero'), a grey level or an RGB triple -> [3] in [-1, 1]."""
    if isinstance(bg, str):
        if bg not in BACKGROUNDS:
            raise ValueError(f"unknown background '{bg}' (white, black, zero)")
        bg = BACKGROUNDS[bg]
    return torch.as_tensor(bg, device=device, dtype=dtype).expand(3)


def chunk_size(rc, device: torch.device) -> int:
    """Rays per inference chunk: the config's, or by device when it is 0 (1024 on CPU, 65536 on GPU)."""
    return rc.chunk_rays or (1024 if torch.device(device).type == "cpu" else 65536)


class TriPlaneGenerator(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        g = cfg.generator
        self.c_dim = g.c_dim
        self.mapping_network = MappingNetwork(g.z_dim, g.c_dim + (2 if g.pose_cond else 0), g.w_dim,
                                              g.mapping_layers, g.mapping_lr_mult, g.w_avg_beta, g.mapping_hidden)
        self.synthesis = SynthesisNetwork(g.w_dim, g.plane_res, 3 * g.plane_channels, g.channel_base,
                                          g.channel_max, g.use_noise, g.conv_clamp)
        self.decoder = TriPlaneDecoder(g.plane_channels, g.decoder_hidden, 4)
        if g.bg_model not in ("none", "sphere"):
            raise ValueError(f"unknown generator.bg_model '{g.bg_model}' (none, sphere)")
        self.background = (SphereBackground(g.w_dim, g.bg_channels, g.bg_blocks, g.bg_period)
                           if g.bg_model == "sphere" else None)
        # 3DGP: the learned camera distribution and the depth adaptor (trained with G, kept in its weights)
        self.camera_gen = (CameraGenerator(cfg.camera, cfg.camera_gen, g.z_dim, g.c_dim)
                           if cfg.camera_gen.enabled else None)
        self.depth_adaptor = DepthAdaptor(cfg.depth) if cfg.depth.enabled else None

    # ---------------------------------------------------------------------------------------------
    # Latents

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None, psi: float = 1.0,
                pose: torch.Tensor | None = None, update_w_avg: bool = False) -> torch.Tensor:
        """z [B, z_dim], class label c [B, c_dim] -> w [B, w_dim].

        With generator pose conditioning, `pose` is [B, 2] (yaw, pitch) of the conditioning camera;
        None uses the camera prior's mean (the reference's evaluation behaviour).
        """
        g = self.cfg.generator
        parts = []
        if g.c_dim > 0:
            if c is None:
                raise ValueError(f"this generator is class-conditional: pass c with {g.c_dim} values")
            parts.append(c.to(z.device, z.dtype))
        if g.pose_cond:
            if pose is None:
                cam = self.cfg.camera
                pose = torch.tensor([[cam.yaw_mean, cam.pitch_mean]], device=z.device).expand(z.shape[0], 2)
            parts.append(pose_cond_vector(pose[:, 0], pose[:, 1]).to(z.device, z.dtype))
        cc = torch.cat(parts, dim=1) if parts else None
        return self.mapping_network(z, cc, psi=psi, update_w_avg=update_w_avg)

    def planes(self, w: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """w [B, w_dim] -> tri-planes [B, 3, C, Rp, Rp]. noise_mode: 'const', 'random' or 'none'."""
        img = self.synthesis(w, noise_mode)
        b, _, h, wd = img.shape
        planes = img.reshape(b, 3, self.cfg.generator.plane_channels, h, wd)
        # at inference, stored channels-last: every lookup then reads them without a copy
        return planes if torch.is_grad_enabled() and planes.requires_grad else kernels.channels_last(planes)

    # ---------------------------------------------------------------------------------------------
    # The radiance field

    def decode(self, planes: torch.Tensor, points: torch.Tensor, impl: str | None = None) -> torch.Tensor:
        """planes [B, 3, C, H, W], points [B, N, 3] -> raw outputs [B, N, 4] (rgb, density before activation).
        impl: the render ops' implementation (core.kernels), default the config's render.kernel_impl."""
        feats = kernels.triplane_sample(planes, points, self.cfg.generator.cube_scale,
                                        impl=impl or self.cfg.render.kernel_impl)
        return self.decoder(feats)

    def _records_grad(self, *tensors: torch.Tensor) -> bool:
        """Whether autograd is recording through these tensors or the decoder (training, normals)."""
        return torch.is_grad_enabled() and (any(t.requires_grad for t in tensors)
                                            or any(p.requires_grad for p in self.decoder.parameters()))

    def query(self, planes: torch.Tensor, points: torch.Tensor, density_noise: float = 0.0,
              impl: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """points [B, N, 3] -> rgb [B, N, 3] (raw, [-1, 1] image range), sigma [B, N] = softplus(raw + shift)."""
        g = self.cfg.generator
        impl = impl or self.cfg.render.kernel_impl
        if density_noise <= 0 and not self._records_grad(planes, points):  # inference: the fused op
            return kernels.query_points(planes, points, g.cube_scale, self.decoder.params(), g.density_shift,
                                        impl=impl)
        raw = self.decode(planes, points, impl)
        density = raw[..., 3] + g.density_shift
        if density_noise > 0:
            density = density + density_noise * torch.randn_like(density)
        return raw[..., :3], F.softplus(density)

    # ---------------------------------------------------------------------------------------------
    # Rendering

    def render(self, planes: torch.Tensor, cameras: Cameras, resolution: int | None = None,
               patch: Patch | None = None, num_coarse: int | None = None, num_fine: int | None = None,
               deterministic: bool = True, density_noise: float = 0.0, background=None,
               chunk_rays: int | None | str = "auto", generator: torch.Generator | None = None,
               w: torch.Tensor | None = None, show_background: bool = True, impl: str | None = None,
               fused_march: bool | None = None, skip_empty: bool | None = None) -> dict[str, torch.Tensor]:
        """Render images (or patches) of the field held in `planes`.

        resolution: output pixels per side (the patch's r when `patch` is given); defaults to the
        config's image resolution. num_coarse/num_fine default to the config's. deterministic: no
        jitter, evenly spaced inverse-CDF levels (evaluation); False for training. background: a
        name, grey level or RGB in [-1, 1] (default: the config's). chunk_rays: rays per chunk
        ('auto' = the config's, or all at once when gradients flow into `planes`).
        w [B, w_dim]: the latents of the planes, required when the model has a background MLP;
        show_background False leaves it out (the foreground alone, as the reference's ignore_bg).
        impl / fused_march: this call's render ops (core.kernels) and fused marching, default the
        config's render.kernel_impl / render.fused_march. skip_empty: empty-space skipping for this
        call (default the config's render.skip_empty); it applies to deterministic inference renders
        without density noise whose latent is not fog (docs/rendering.md), with
        render.skip_sample_ratio * (num_coarse + num_fine) samples per ray.
        Returns image [B, 3, H, W], opacity, depth (normalised by opacity; the far bound where
        empty) and depth_raw (sum of w * t) [B, 1, H, W], all of the foreground; with the
        background MLP also `background` [B, 3, H, W], its own colour before the foreground's
        transmittance.
        """
        rc = self.cfg.render
        impl = impl or rc.kernel_impl
        fused_march = rc.fused_march if fused_march is None else fused_march
        res = resolution or self.cfg.img_resolution
        cams = cameras.to(planes.device, torch.float64 if planes.dtype == torch.float64 else torch.float32)
        if len(cams) != planes.shape[0]:
            raise ValueError(f"{len(cams)} cameras for {planes.shape[0]} sets of planes")
        auto_chunk = chunk_rays == "auto"
        if chunk_rays == "auto":  # one pass when a graph through the planes is being recorded (training)
            chunk_rays = None if torch.is_grad_enabled() and planes.requires_grad else chunk_size(rc, planes.device)
        origins, dirs = make_rays(cams, res, patch)

        def field(points):
            return self.query(planes, points, density_noise, impl)

        march, skip = None, None
        num_coarse = num_coarse or rc.num_coarse
        num_fine = rc.num_fine if num_fine is None else num_fine
        inference = not self._records_grad(planes)
        if inference and density_noise <= 0:
            caller_planes = planes  # the cache key: the planes the caller holds
            planes = kernels.channels_last(planes)  # one copy for all chunks (none for G.planes' own)
            triton = kernels.will_use_triton(impl, planes)
            want_skip = deterministic and (rc.skip_empty if skip_empty is None else skip_empty)
            grid, folded = self._inference_extras(caller_planes, planes, want_skip, triton)
            g = self.cfg.generator
            if folded is not None:  # the reference ops on the planes with the first layer folded in
                f_planes, f_params = folded

                def field(points):
                    return kernels.query_points(f_planes, points, g.cube_scale, f_params, g.density_shift,
                                                impl="reference")
            if grid is not None and not grid.fog:
                steps = max(4, round(rc.skip_sample_ratio * (num_coarse + num_fine)))
                cpu_fused = not triton and kernels.resolve_impl(impl, "march_rays", planes) == "numba"
                skip = Skip(grid, steps, self._skip_march(planes, folded, triton, impl),
                            "numba" if cpu_fused else "reference")
                if auto_chunk and planes.device.type == "cpu":
                    chunk_rays *= SKIP_CHUNK_MULT
            elif fused_march and triton:
                params = self.decoder.params()

                def march(o, d, t):  # the fused per-ray kernel (inference)
                    return kernels.march_rays(planes, o, d, t, g.cube_scale, params, g.density_shift,
                                              rc.far_opaque, rc.stop_transmittance, impl=impl)

        out = render_rays_chunked(field, origins, dirs, cams.near, cams.far, chunk_rays,
                                  num_coarse=num_coarse, num_fine=num_fine,
                                  far_opaque=rc.far_opaque, deterministic=deterministic, generator=generator,
                                  composite_impl=impl,
                                  stop_transmittance=rc.stop_transmittance if inference else 0.0, march=march,
                                  pdf_eps=rc.pdf_eps, skip=skip)
        bg = background_color(rc.background if background is None else background, planes.device, planes.dtype)
        b = planes.shape[0]
        image = out["rgb"] + (1 - out["opacity"][..., None]) * bg
        result = {}
        if self.background is not None and show_background:
            if w is None:
                raise ValueError("this model has a background MLP: pass the planes' latents, G.render(..., w=w)")
            g = self.cfg.generator
            per = max(1, chunk_rays // b) if chunk_rays else origins.shape[1]  # rays of each image per chunk
            bg_rgb = torch.cat([render_background(self.background, w, origins[:, i:i + per], dirs[:, i:i + per],
                                                  g.bg_start, g.bg_steps, deterministic, bg, generator, impl)
                                for i in range(0, origins.shape[1], per)], dim=1)
            image = image + bg_rgb * out["transmittance_last"][..., None]
            result["background"] = bg_rgb.transpose(1, 2).reshape(b, -1, res, res)
        result["image"] = image.transpose(1, 2).reshape(b, -1, res, res)
        for k in ("opacity", "depth", "depth_raw"):
            result[k] = out[k].reshape(b, 1, res, res)
        return result

    def render_field(self, planes: torch.Tensor, cameras: Cameras, resolution: int | None = None,
                     **render_kwargs) -> dict[str, torch.Tensor]:
        """The radiance field's own render (no background model; for EG3D no super-resolution):
        image, opacity, depth at `resolution`. What silhouettes and mesh levels are matched against."""
        return self.render(planes, cameras, resolution, show_background=False, **render_kwargs)

    @torch.no_grad()
    def prepare(self, planes: torch.Tensor) -> OccupancyGrid | None:
        """Build now what inference renders of `planes` cache with them (the occupancy grid, the
        folded decoder), e.g. on a worker thread before the frames that use it; returns the grid
        (None when the config turns skipping off). Renders build it themselves when it is missing."""
        grid, _ = self._inference_extras(planes, kernels.channels_last(planes), self.cfg.render.skip_empty,
                                         kernels.will_use_triton(self.cfg.render.kernel_impl, planes), fold_now=True)
        return grid

    def prepared(self, planes: torch.Tensor) -> bool:
        """Whether renders of `planes` find their occupancy grid built (or need none: skipping off)."""
        rc = self.cfg.render
        return not rc.skip_empty or plane_cache.has(planes, self._grid_key())

    def _decoder_versions(self) -> tuple[int, ...]:
        return tuple(p._version for p in self.decoder.parameters())

    def _grid_key(self, versions: tuple[int, ...] | None = None) -> tuple:
        rc = self.cfg.render
        return ("occupancy", id(self), versions or self._decoder_versions(),
                (rc.skip_grid_res, rc.skip_max_loss, rc.skip_dilation, rc.skip_max_occupied))

    def _inference_extras(self, key: torch.Tensor, planes: torch.Tensor, want_skip: bool, triton: bool,
                          fold_now: bool = False) -> tuple[OccupancyGrid | None, tuple | None]:
        """(occupancy grid or None, (folded planes, folded params) or None) of these planes, cached
        with them (`plane_cache`). The fold serves the PyTorch reference only (the Triton kernels
        gain nothing from it), and from the planes' second render on (or `fold_now`): it costs about
        what it saves in one frame (0.15 s for 512^2 planes), so a one-off render goes without."""
        rc = self.cfg.render
        versions = self._decoder_versions()
        folded = None
        hidden = self.decoder.params()[0].shape[0]
        if not triton and rc.fold_decoder and planes[:, :, :1].numel() * hidden * 4 <= FOLD_MAX_BYTES:
            fold_key = ("fold", id(self), versions, planes.device)
            if fold_now or plane_cache.has(key, fold_key) or plane_cache.has(key, ("seen", *fold_key[1:])):
                folded = plane_cache.cached(key, fold_key,
                                            lambda: kernels.fold_first_layer(planes, self.decoder.params()))
            else:
                plane_cache.cached(key, ("seen", *fold_key[1:]), lambda: True)
        if not want_skip:
            return None, folded
        grid_key = self._grid_key(versions)
        grid = plane_cache.cached(key, grid_key, lambda: build_for_generator(self, planes, *grid_key[-1]))
        return grid, folded

    def _skip_march(self, planes: torch.Tensor, folded: tuple | None, triton: bool, impl: str):
        """The marcher of the skipping path: the Triton kernel per chunk; on the CPU the fused Numba
        kernel, or with impl 'reference' the compacting loop over the reference ops
        (`core.render.march`), both on the planes with the first layer folded in when it is."""
        g, rc = self.cfg.generator, self.cfg.render
        stop = rc.skip_stop_transmittance
        if triton:
            params = self.decoder.params()

            def march(o, d, t, deltas):
                return kernels.march_rays(planes, o, d, t, g.cube_scale, params, g.density_shift, rc.far_opaque,
                                          stop, impl=impl, deltas=deltas)
            return march
        f_planes, f_params = folded or (planes, self.decoder.params())
        if kernels.resolve_impl(impl, "march_rays", planes) == "numba":
            def march(o, d, t, deltas):  # the fused CPU kernel
                return kernels.march_rays(f_planes, o, d, t, g.cube_scale, f_params, g.density_shift, rc.far_opaque,
                                          stop, impl="numba", deltas=deltas)
            return march

        def item_field(i, points):
            return kernels.query_points(f_planes[i:i + 1], points, g.cube_scale, f_params, g.density_shift,
                                        impl="reference")

        def march(o, d, t, deltas):
            return march_compact(item_field, o, d, t, deltas, stop)
        return march

    def forward(self, z: torch.Tensor, cameras: Cameras, c: torch.Tensor | None = None, psi: float = 1.0,
                **render_kwargs) -> dict[str, torch.Tensor]:
        """Convenience: mapping -> planes -> render (pose conditioning from the render cameras)."""
        pose = to_angles(cameras.to(z.device))[:, :2] if self.cfg.generator.pose_cond else None
        w = self.mapping(z, c, psi, pose=pose)
        return self.render(self.planes(w), cameras, w=w, **render_kwargs)

    # ---------------------------------------------------------------------------------------------
    # Cameras (3DGP's learned distribution when the model has one)

    def camera_params(self, z: torch.Tensor, c: torch.Tensor | None = None, prior: CameraParams | None = None,
                      generator: torch.Generator | None = None) -> CameraParams:
        """The cameras G renders latents z [B, z_dim] (labels c) from: `prior` (default: drawn from the
        camera prior) mapped through the camera generator when the model has one, else the prior itself."""
        if prior is None:
            prior = sample_prior(self.cfg.camera, z.shape[0], generator, device=z.device)
        if self.camera_gen is None:
            return prior
        return self.camera_gen(prior.to(z.device), z, c if self.c_dim > 0 else None)

    def sample_cameras(self, z: torch.Tensor, c: torch.Tensor | None = None,
                       generator: torch.Generator | None = None) -> Cameras:
        """`camera_params` as Cameras: a sample of the (learned) camera distribution for each latent."""
        return params_to_cameras(self.camera_params(z, c, generator=generator), self.cfg.camera)

    @torch.no_grad()
    def mean_camera_params(self, c: torch.Tensor | None = None, n: int = 1024, seed: int = 0) -> CameraParams:
        """The mean camera (length 1): 3DGP's average of n learned cameras (class c, or random classes), or
        the prior's mean camera for a model without a camera generator."""
        cam = self.cfg.camera
        if self.camera_gen is None:
            yaw, pitch = prior_mean_angles(cam)
            return params_from_cameras(from_config(cam, yaw=yaw, pitch=pitch), cam)
        return _mean_camera(self.camera_gen, cam, n, c, torch.Generator().manual_seed(seed))

    def default_cameras(self, batch: int = 1, device=None) -> Cameras:
        """The camera prior's mean camera, repeated."""
        cam = self.cfg.camera
        return from_config(cam, yaw=torch.full((batch,), cam.yaw_mean), device=device)
