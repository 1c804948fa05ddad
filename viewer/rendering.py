"""Renders for the viewer through the one generator API, with a tri-plane cache and cancellation.

`RenderEngine.render(request, quality, cancelled)` resolves the latent to w (viewer/latent.py),
takes the tri-planes from its cache (keyed by model and LatentSpec: a camera move re-runs only the
decoder and compositing), and calls `G.render` on square tiles (core's `Patch`, which renders
exactly the crop of the full image) so that a stale full-quality render can stop between tiles.
Normals come from the density gradient, by autograd through `G.query`. EG3D models render whole
frames in one `G.render` call instead (viewer/eg3d_render.py): their super-resolution sees the
whole neural image, so they have no tiles.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.cameras import Cameras
from core.images import image_to_uint8
from core.networks.generator import background_color
from core.render.rays import Patch, make_rays

from .camera import OrbitCamera
from .eg3d_render import is_eg3d, preview_neural_res, render_whole
from .latent import LatentResolver, LatentSpec

_model_ids = itertools.count(1)

MIN_COARSE = 4
"""Fewest coarse samples the viewer asks for: core's importance sampling needs at least 3 (it
builds its bins from the interior coarse weights), and fewer than 4 shows little anyway."""


@dataclass(eq=False)
class LoadedModel:
    """A generator ready to render, with where it came from (uid tells models apart in caches)."""

    G: torch.nn.Module
    info: dict[str, Any]
    spec: str
    device: torch.device
    uid: int = field(default_factory=lambda: next(_model_ids))

    @property
    def cfg(self):
        return self.G.cfg

    @property
    def eg3d(self) -> bool:
        """An EG3D model: whole frames, a super-resolved image and a raw neural one."""
        return is_eg3d(self.G.cfg)


@dataclass(frozen=True)
class ViewSpec:
    """What to render of a latent: camera, mode, full-quality resolution and samples, background."""

    camera: OrbitCamera
    mode: str = "rgb"
    resolution: int = 256
    coarse_mult: float = 1.0
    fine_mult: float = 1.0
    background: tuple[float, float, float] | None = None  # RGB in [-1, 1]; None = the model's
    show_bg_model: bool = True  # a model's background MLP (generator.bg_model) behind the object

    def __hash__(self) -> int:
        return hash((self.camera.key(), self.mode, self.resolution, self.coarse_mult, self.fine_mult,
                     self.background, self.show_bg_model))


@dataclass(frozen=True, eq=False)
class RenderRequest:
    """One thing to show: model + latent + view. `interactive`: the camera is moving right now;
    `baked`: the baked GL preview is on screen, so no neural preview is needed before the full frame."""

    model: LoadedModel
    latent: LatentSpec
    view: ViewSpec
    interactive: bool = False
    generation: int = 0
    baked: bool = False


@dataclass(frozen=True)
class Quality:
    """How finely a request is rendered: pixels per side and samples per ray (EG3D models: and
    the neural resolution under the super-resolution; None = the model's)."""

    resolution: int
    num_coarse: int
    num_fine: int
    level: str = "full"  # preview | full
    neural_res: int | None = None

    @property
    def cost(self) -> float:
        """Work units: rays x samples (the neural render's rays for an EG3D model)."""
        return float((self.neural_res or self.resolution)**2 * (self.num_coarse + self.num_fine))


@dataclass
class RenderResult:
    """A finished render (CPU arrays) and how it was made."""

    request: RenderRequest
    quality: Quality
    image: np.ndarray  # [H, W, 3] uint8: the RGB render, or the normals picture in normals mode
    depth: np.ndarray  # [H, W] float32, normalised by opacity (the far bound where empty); EG3D: [r, r]
    opacity: np.ndarray  # [H, W] float32; EG3D: [r, r], the neural resolution
    w: torch.Tensor  # [1, w_dim] the latent rendered
    near: float
    far: float
    render_s: float
    planes_cached: bool
    raw: np.ndarray | None = None  # EG3D: [r, r, 3] uint8, the neural render under the super-resolution

    @property
    def generation(self) -> int:
        return self.request.generation


def full_quality(model: LoadedModel, view: ViewSpec) -> Quality:
    """The full-quality settings of a view: its resolution, the model's samples times the multipliers."""
    rc = model.cfg.render
    nr = model.cfg.generator.neural_res if model.eg3d else None
    return Quality(view.resolution, max(MIN_COARSE, round(rc.num_coarse * view.coarse_mult)),
                   max(0, round(rc.num_fine * view.fine_mult)), "full", nr)


def eg3d_preview(full: Quality, samples_mult: float) -> Quality:
    """An EG3D model's moving-camera quality: the same output size, half the neural resolution
    (at least 16), the samples times `samples_mult`."""
    return Quality(full.resolution, max(MIN_COARSE, round(full.num_coarse * samples_mult)),
                   max(0, round(full.num_fine * samples_mult)), "preview", preview_neural_res(full.neural_res))


def tile_size(resolution: int, max_tile: int = 64) -> int:
    """The largest divisor of `resolution` that is at most max_tile pixels (tiles must be square and exact)."""
    n = -(-resolution // max_tile)
    while resolution % n:
        n += 1
    return resolution // n


def surface_normals(G: torch.nn.Module, planes: torch.Tensor, cams: Cameras, depth: torch.Tensor,
                    resolution: int, patch: Patch | None = None) -> torch.Tensor:
    """Camera-frame unit normals [1, 3, r, r] at the rendered depth: -grad(sigma) by autograd through G.query."""
    origins, dirs = make_rays(cams, resolution, patch)  # [1, N, 3] each
    pts = (origins + dirs * depth.reshape(1, -1, 1)).detach()
    with torch.enable_grad():
        pts.requires_grad_(True)
        _, sigma = G.query(planes, pts)  # [1, N]
        (grad,) = torch.autograd.grad(sigma.sum(), pts)
    n_world = -F.normalize(grad, dim=-1)  # [1, N, 3]
    n_cam = n_world @ cams.cam2world[:, :3, :3]  # R^T n, row-vector form
    return n_cam.transpose(1, 2).reshape(1, 3, resolution, resolution)


class PlaneCache:
    """LRU cache of tri-planes and w per (model uid, LatentSpec), bounded in bytes. Thread-safe."""

    def __init__(self, max_bytes: int = 512 << 20):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> tuple[torch.Tensor, torch.Tensor] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return item

    def put(self, key: tuple, planes: torch.Tensor, w: torch.Tensor) -> None:
        with self._lock:
            self._items[key] = (planes, w)
            self._items.move_to_end(key)
            while len(self._items) > 1 and sum(p.numel() * p.element_size() for p, _ in self._items.values()) \
                    > self.max_bytes:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class RenderEngine:
    """Renders requests at a given quality; shared by the render worker and the exports."""

    def __init__(self, cache: PlaneCache | None = None):
        self.cache = cache or PlaneCache()
        self._resolvers: dict[int, LatentResolver] = {}

    def resolver(self, model: LoadedModel) -> LatentResolver:
        if model.uid not in self._resolvers:
            self._resolvers = {model.uid: LatentResolver(model.G, model.device)}
        return self._resolvers[model.uid]

    @torch.no_grad()
    def planes(self, model: LoadedModel, latent: LatentSpec) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(planes [1, 3, C, Rp, Rp], w [1, w_dim], cache hit) for a latent."""
        key = (model.uid, latent)
        item = self.cache.get(key)
        if item is not None:
            return item[0], item[1], True
        w = self.resolver(model).resolve(latent)
        planes = model.G.planes(w)
        self.cache.put(key, planes, w)
        return planes, w, False

    @torch.no_grad()
    def render(self, req: RenderRequest, quality: Quality, cancelled: Callable[[], bool] = lambda: False,
               max_tile: int = 64) -> RenderResult | None:
        """Render `req` at `quality`; None when `cancelled()` turned true between tiles."""
        t0 = time.perf_counter()
        model, view = req.model, req.view
        G = model.G
        planes, w, hit = self.planes(model, req.latent)
        if model.eg3d:
            return self._render_whole(req, quality, planes, w, hit, t0, cancelled)
        # a latent's first frame does not wait for its occupancy grid (G.prepare, run on the worker
        # when idle, or the next frame builds it): switching latents stays as quick as before
        skip = None if hit or G.prepared(planes) else False
        cams = view.camera.to_cameras(model.cfg.camera, device=model.device)
        r_full = quality.resolution
        tile = tile_size(r_full, max_tile)
        n = r_full // tile
        image = torch.empty(3, r_full, r_full)
        depth = torch.empty(1, r_full, r_full)
        opacity = torch.empty(1, r_full, r_full)
        for j in range(n):
            for i in range(n):
                if cancelled():
                    return None
                patch = None if n == 1 else Patch(torch.tensor([tile / r_full]),
                                                  torch.tensor([[i * tile / r_full, j * tile / r_full]]))
                out = G.render(planes, cams, resolution=tile, patch=patch, num_coarse=quality.num_coarse,
                               num_fine=quality.num_fine, background=view.background, w=w,
                               show_background=view.show_bg_model, skip_empty=skip)
                img = out["image"][0]
                if view.mode == "normals":
                    nrm = surface_normals(G, planes, cams, out["depth"], tile, patch)[0]
                    bg = background_color(model.cfg.render.background if view.background is None
                                          else view.background, img.device, img.dtype)
                    a = out["opacity"][0]
                    img = nrm * a + bg[:, None, None] * (1 - a)  # normals in [-1, 1] shown like an image
                sl = (slice(None), slice(j * tile, (j + 1) * tile), slice(i * tile, (i + 1) * tile))
                image[sl] = img.float().cpu()
                depth[sl] = out["depth"][0].float().cpu()
                opacity[sl] = out["opacity"][0].float().cpu()
        if view.mode == "ddepth" and G.depth_adaptor is not None:  # 3DGP: the depth channel D sees, in grey
            from .learned_camera import adapted_depth
            d = adapted_depth(G, depth.to(planes.device), opacity.to(planes.device), float(cams.near[0]),
                              float(cams.far[0]))
            image = d.float().cpu().clamp(-1, 1).expand(3, -1, -1)
        return RenderResult(req, quality, image_to_uint8(image), depth[0].numpy(), opacity[0].numpy(),
                            w.detach().cpu(), float(cams.near[0]), float(cams.far[0]),
                            time.perf_counter() - t0, hit)

    def _render_whole(self, req: RenderRequest, quality: Quality, planes: torch.Tensor, w: torch.Tensor,
                      hit: bool, t0: float, cancelled: Callable[[], bool]) -> RenderResult | None:
        """An EG3D frame: one G.render call (it cannot stop halfway: a stale one is dropped before)."""
        if cancelled():
            return None
        model, view = req.model, req.view
        cams = view.camera.to_cameras(model.cfg.camera, device=model.device)
        out = render_whole(model.G, planes, w, cams, quality.resolution, quality.num_coarse, quality.num_fine,
                           quality.neural_res, view.background, view.mode, super_resolve=quality.level != "preview")
        return RenderResult(req, quality, image_to_uint8(out["image"].float().cpu()),
                            out["depth"][0].float().cpu().numpy(), out["opacity"][0].float().cpu().numpy(),
                            w.detach().cpu(), float(cams.near[0]), float(cams.far[0]),
                            time.perf_counter() - t0, hit, image_to_uint8(out["raw"].float().cpu()))
