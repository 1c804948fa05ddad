"""A tiny procedural multi-view dataset, made in seconds with nothing downloaded.

Each object is the union of 1-3 primitives (spheres, rounded boxes, ellipsoids) with their own
colours and stripes, written as a closed-form density + colour field and rendered with our own
volume renderer (make_rays + render_rays, deterministic sampling, far bound open, white
background) from cameras drawn from the demo preset's prior (the whole sphere, radius 1, fov 30).
Shading is Lambert from a light fixed in the world, so the field, like the generator's, does not
depend on the view direction. Objects stay inside a ball of radius OBJECT_RADIUS, which the demo
cameras frame fully (inside the frustum and the near/far bounds).
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..cameras import from_angles, sample_angles
from ..config import CameraConfig, get_preset
from ..render.rays import make_rays
from ..render.renderer import render_rays

OBJECT_RADIUS = 0.23  # every primitive lies inside this ball (the demo frames a ball of ~0.25)
SIGMA_MAX = 400.0  # density inside a primitive
EDGE = 0.001  # width of the soft surface in world units
LIGHT = (0.35, 0.8, 0.5)  # direction towards the light, world space
KINDS = ("sphere", "box", "ellipsoid")


@dataclass
class Primitive:
    kind: str  # sphere | box | ellipsoid
    center: list[float]  # [3] world
    size: list[float]  # [3] radii / half-extents in the local frame
    rotation: list[list[float]]  # [3, 3] local -> world
    color: list[float]  # [3] albedo in [0, 1]
    stripes: float  # stripe frequency along the local x axis (0 = plain)


def _rotation(gen: torch.Generator) -> torch.Tensor:
    """A random rotation matrix [3, 3] (QR of a Gaussian matrix, det +1)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))[None]
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_object(gen: torch.Generator) -> list[Primitive]:
    """1-3 primitives of random kind, size, pose and colour, all inside the OBJECT_RADIUS ball."""
    prims = []
    n = int(torch.randint(1, 4, (1,), generator=gen))
    for j in range(n):
        u = torch.rand(8, generator=gen, dtype=torch.float64)
        kind = KINDS[int(torch.randint(0, 3, (1,), generator=gen))]
        big = 0.11 + 0.06 * float(u[0]) if j == 0 else 0.05 + 0.06 * float(u[0])
        size = [big] * 3 if kind == "sphere" else [big * (0.45 + 0.55 * float(x)) for x in u[1:4]]
        if kind != "sphere":
            size[int(torch.argmax(torch.tensor(size)))] = big
        reach = big * (math.sqrt(3) if kind == "box" else 1.0)  # bounding radius of the primitive
        room = max(OBJECT_RADIUS - reach, 0.0) * (0.3 if j == 0 else 1.0)
        d = F.normalize(torch.randn(3, generator=gen, dtype=torch.float64), dim=0) * room * float(u[4]) ** (1 / 3)
        hue = torch.rand(3, generator=gen, dtype=torch.float64)
        color = (0.15 + 0.8 * hue / hue.max()).tolist()  # saturated, never black
        stripes = 0.0 if u[5] < 0.5 else 30.0 + 50.0 * float(u[6])
        prims.append(Primitive(kind, d.tolist(), size, _rotation(gen).tolist(), color, stripes))
    return prims


def _local(pr: Primitive, p: torch.Tensor) -> torch.Tensor:
    """World points [N, 3] -> the primitive's local coordinates [N, 3]: R^T (p - c)."""
    rot = torch.tensor(pr.rotation, dtype=p.dtype)
    return torch.addmm(-(torch.tensor(pr.center, dtype=p.dtype) @ rot), p, rot)


def _distance(pr: Primitive, q: torch.Tensor) -> torch.Tensor:
    """Local points [N, 3] -> signed distance [N] (approximate for ellipsoids)."""
    s = torch.tensor(pr.size, dtype=q.dtype)
    if pr.kind == "sphere":
        return q.norm(dim=-1) - s[0]
    if pr.kind == "ellipsoid":
        k0 = (q / s).norm(dim=-1)
        return k0 * (k0 - 1) / (q / (s * s)).norm(dim=-1).clamp_min(1e-9)
    rr = 0.15 * float(s.min())  # a box with its edges rounded by 15% of its smallest half-extent
    e = q.abs() - (s - rr)
    return e.clamp_min(0).norm(dim=-1) + e.max(dim=-1).values.clamp_max(0) - rr


def _normal(pr: Primitive, q: torch.Tensor) -> torch.Tensor:
    """Local points [N, 3] -> outward unit normal [N, 3] in world space (gradient of the distance)."""
    s = torch.tensor(pr.size, dtype=q.dtype)
    if pr.kind == "sphere":
        n = q
    elif pr.kind == "ellipsoid":
        n = q / (s * s)
    else:
        e = q.abs() - (s - 0.15 * float(s.min()))
        emax = e.max(dim=-1, keepdim=True).values
        inside = F.one_hot(e.argmax(dim=-1), 3).to(q.dtype)
        n = torch.where(emax > 0, e.clamp_min(0), inside) * torch.sign(q)
    return F.normalize(n, dim=-1) @ torch.tensor(pr.rotation, dtype=q.dtype).T


def object_field(prims: list[Primitive]) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """The object as a radiance field: points [B, M, 3] -> (rgb [B, M, 3] in [-1, 1], sigma [B, M]).

    Union of the primitives: the nearest one gives density and colour. Colours are computed only
    where the density is not negligible (elsewhere they are white and carry no weight).
    """
    light = F.normalize(torch.tensor(LIGHT), dim=0)

    def field(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = p.shape[:-1]
        pts = p.reshape(-1, 3)  # [N, 3]
        d = torch.stack([_distance(pr, _local(pr, pts)) for pr in prims])  # [P, N]
        best, which = d.min(dim=0)  # [N]
        sigma = SIGMA_MAX * torch.sigmoid(-best / EDGE)
        rgb = torch.ones(pts.shape[0], 3, dtype=p.dtype)
        for j, pr in enumerate(prims):
            idx = torch.nonzero((which == j) & (best < 12 * EDGE))[:, 0]
            if idx.numel() == 0:
                continue
            q = _local(pr, pts[idx])  # [K, 3]
            shade = 0.35 + 0.65 * (_normal(pr, q) @ light.to(p.dtype)).clamp_min(0)  # Lambert + ambient, [K]
            if pr.stripes > 0:
                shade = shade * (1 - 0.25 * (torch.sin(pr.stripes * q[:, 0]) > 0).to(p.dtype))
            rgb[idx] = (shade[:, None] * torch.tensor(pr.color, dtype=p.dtype)).clamp(0, 1)
        return (rgb * 2 - 1).reshape(*shape, 3), sigma.reshape(shape)

    return field


def bounding_radius(prims: list[Primitive]) -> float:
    """Radius of a ball around the origin that holds the whole object (soft edge included)."""
    return max(float(torch.tensor(p.center).norm()) + max(p.size) * (math.sqrt(3) if p.kind == "box" else 1.0)
               for p in prims) + 10 * EDGE


@torch.no_grad()
def render_views(prims: list[Primitive], angles: torch.Tensor, res: int, cfg: CameraConfig,
                 num_samples: int = 16, chunk: int = 8) -> np.ndarray:
    """angles [V, 2] (yaw, pitch) -> [V, res, res, 3] uint8 on a white background.

    Only the rays that meet the object's bounding ball are rendered, each between its entry and exit
    points (clipped to the cameras' near/far): outside the ball the density is zero, so the image is
    the same as with the full [near, far] range, at a fraction of the cost.
    """
    field = object_field(prims)
    rad = bounding_radius(prims)
    out = []
    for a in angles.split(chunk):
        cams = from_angles(a[:, 0], a[:, 1], cfg.radius, cfg.fov_deg, cfg.look_at, cfg=cfg)
        o, d = make_rays(cams, res)  # [B, N, 3] each
        b, n, _ = o.shape
        rel = o - torch.tensor(cfg.look_at, dtype=o.dtype)
        tc = -(rel * d).sum(-1)  # [B, N] distance to the point nearest the centre
        h2 = rad ** 2 - (rel.square().sum(-1) - tc ** 2)
        t0 = torch.maximum(tc - h2.clamp_min(0).sqrt(), cams.near[:, None].expand(b, n))
        t1 = torch.minimum(tc + h2.clamp_min(0).sqrt(), cams.far[:, None].expand(b, n))
        hit = (h2 > 0) & (t1 > t0)  # [B, N]
        rgb = torch.ones(b, n, 3)  # white
        if hit.any():  # one ray per batch item, so that each has its own bounds
            r = render_rays(field, o[hit][:, None], d[hit][:, None], t0[hit], t1[hit], num_coarse=num_samples,
                            num_fine=num_samples, far_opaque=False, deterministic=True)
            rgb[hit] = r["rgb"][:, 0] + (1 - r["opacity"][:, 0, None])  # white background, [-1, 1] range
        img = rgb.reshape(b, res, res, 3)
        out.append(((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy())
    return np.concatenate(out)


def png_bytes(img: np.ndarray) -> bytes:
    """[H, W, 3] uint8 -> PNG file bytes."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def make_synthetic(out: str | Path, num_objects: int = 8, views: int = 16, res: int = 64, seed: int = 0,
                   progress: Callable | None = None, threads: int | None = 1) -> dict:
    """Write the dataset zip (EpiGRAF-form dataset.json) and return its dataset.json dict.

    progress: an optional wrapper around the object iterator (e.g. tqdm). threads: torch intra-op
    threads while rendering (restored afterwards; None keeps the current setting). One is the
    default because these small tensors gain little from more, and on a busy 2-core machine two
    threads were measured 3-6x slower than one.
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _make_synthetic(Path(out), num_objects, views, res, seed, progress)
    finally:
        torch.set_num_threads(before)


def _make_synthetic(out: Path, num_objects: int, views: int, res: int, seed: int, progress: Callable | None) -> dict:
    cfg = get_preset("demo").camera
    gen = torch.Generator().manual_seed(seed)
    objects = [random_object(gen) for _ in range(num_objects)]
    angles_all: dict[str, list[float]] = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    it = range(num_objects) if progress is None else progress(range(num_objects))
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for k in it:
            angles = sample_angles(cfg, views, gen).double()  # [V, 2]
            imgs = render_views(objects[k], angles, res, cfg)
            for v in range(views):
                name = f"obj{k:04d}/view{v:03d}.png"
                zf.writestr(name, png_bytes(imgs[v]))
                angles_all[name] = [float(angles[v, 0]), float(angles[v, 1]), 0.0]
        meta = {
            "camera_angles": angles_all,
            "synthetic": {"seed": seed, "resolution": res, "views_per_object": views,
                          "camera": {"radius": cfg.radius, "fov_deg": cfg.fov_deg, "near": cfg.near, "far": cfg.far,
                                     "prior": "demo preset (spherical_uniform, whole sphere)"},
                          "background": "white", "object_radius": OBJECT_RADIUS,
                          "objects": [[asdict(p) for p in obj] for obj in objects]},
        }
        zf.writestr("dataset.json", json.dumps(meta))
    return meta
