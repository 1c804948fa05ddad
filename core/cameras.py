"""Cameras: a batch of cam2world matrices + normalised intrinsics + near/far bounds.

Conventions (EpiGRAF's):
- World: y up. A look-at camera sits at  look_at + r * (sin p cos y, cos p, sin p sin y):
  yaw y = 0 puts it on +x (the frontal view of a face dataset), pitch p = pi/2 on the equator,
  p -> 0 above the object. Roll is always 0.
- Camera frame: OpenGL (x right, y up, looking down -z). `cam2world[:, :3, 3]` is the origin.
- Intrinsics are normalised by the image size: fx, fy in units of the image width/height,
  cx = cy = 0.5 for a centred principal point. For square images fov = 2 atan(0.5 / fy).
- near/far are distances along the unit ray direction.

EG3D's 25-float labels (OpenCV cam2world, world pivot (0, 0, 0.2), radius 2.7, frontal on +z)
convert to ours by a similarity transform: shift by the pivot, scale by our_radius / their_radius
and rotate by +90 deg about y, so that their frontal camera lands on our yaw 0.

3DGP's cameras (`CameraParams`, `sample_prior`, `params_to_cameras`, `prior_bounds`) add a field of
view and a look-at point in a ball around `look_at` to the prior; docs/3dgp.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import CameraConfig
from .errors import UserError

_PITCH_EPS = 1e-5


@dataclass
class Cameras:
    cam2world: torch.Tensor  # [B, 4, 4] OpenGL camera-to-world
    intrinsics: torch.Tensor  # [B, 3, 3] normalised by image size
    near: torch.Tensor  # [B]
    far: torch.Tensor  # [B]

    def __post_init__(self) -> None:
        b = self.cam2world.shape[0]
        if self.cam2world.shape != (b, 4, 4) or self.intrinsics.shape != (b, 3, 3):
            raise ValueError(f"bad camera shapes {tuple(self.cam2world.shape)}, {tuple(self.intrinsics.shape)}")
        if self.near.shape != (b,) or self.far.shape != (b,):
            raise ValueError("near/far must have shape [B]")

    def __len__(self) -> int:
        return self.cam2world.shape[0]

    @property
    def origins(self) -> torch.Tensor:  # [B, 3]
        return self.cam2world[:, :3, 3]

    @property
    def fov(self) -> torch.Tensor:  # [B] vertical field of view in radians
        return 2 * torch.atan(0.5 / self.intrinsics[:, 1, 1])

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "Cameras":
        return Cameras(*(t.to(device=device, dtype=dtype) for t in
                         (self.cam2world, self.intrinsics, self.near, self.far)))

    def __getitem__(self, idx) -> "Cameras":
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return Cameras(self.cam2world[idx], self.intrinsics[idx], self.near[idx], self.far[idx])

    @staticmethod
    def cat(cams: list["Cameras"]) -> "Cameras":
        return Cameras(*(torch.cat([getattr(c, k) for c in cams]) for k in
                         ("cam2world", "intrinsics", "near", "far")))


# --------------------------------------------------------------------------------------------------
# Building blocks


def fov_to_intrinsics(fov: torch.Tensor) -> torch.Tensor:
    """[B] fov in radians -> [B, 3, 3] normalised intrinsics (square pixels, centred)."""
    f = 0.5 / torch.tan(fov / 2)
    k = torch.zeros(fov.shape[0], 3, 3, dtype=fov.dtype, device=fov.device)
    k[:, 0, 0] = f
    k[:, 1, 1] = f
    k[:, 0, 2] = 0.5
    k[:, 1, 2] = 0.5
    k[:, 2, 2] = 1
    return k


def look_at(origins: torch.Tensor, targets: torch.Tensor, up: tuple[float, float, float] = (0, 1, 0)) -> torch.Tensor:
    """[B, 3] origins and targets -> [B, 4, 4] OpenGL cam2world (roll 0 w.r.t. `up`)."""
    up_t = torch.tensor(up, dtype=origins.dtype, device=origins.device).expand_as(origins)
    back = torch.nn.functional.normalize(origins - targets, dim=-1)  # camera +z
    right = torch.linalg.cross(up_t, back, dim=-1)
    if (right.norm(dim=-1) < 1e-9).any():
        raise ValueError("camera looks along the up vector: roll is undefined")
    right = torch.nn.functional.normalize(right, dim=-1)
    true_up = torch.linalg.cross(back, right, dim=-1)
    m = torch.zeros(origins.shape[0], 4, 4, dtype=origins.dtype, device=origins.device)
    m[:, :3, 0] = right
    m[:, :3, 1] = true_up
    m[:, :3, 2] = back
    m[:, :3, 3] = origins
    m[:, 3, 3] = 1
    return m


def angles_to_origins(yaw: torch.Tensor, pitch: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """EpiGRAF's sphere parametrisation, relative to the look-at point: [B] x3 -> [B, 3]."""
    pitch = pitch.clamp(_PITCH_EPS, math.pi - _PITCH_EPS)
    return torch.stack([radius * torch.sin(pitch) * torch.cos(yaw),
                        radius * torch.cos(pitch),
                        radius * torch.sin(pitch) * torch.sin(yaw)], dim=-1)


def _bt(x, b: int, dtype, device) -> torch.Tensor:
    """Broadcast a float, sequence or tensor to a [b] tensor (never modifying the input)."""
    t = torch.as_tensor(x, dtype=dtype, device=device)
    return t.expand(b).clone() if t.ndim == 0 else t.reshape(b).clone()


def from_angles(yaw, pitch, radius=1.0, fov_deg=12.0, look_at_point=(0.0, 0.0, 0.0), near=None, far=None,
                cfg: CameraConfig | None = None, device=None, dtype=torch.float32) -> Cameras:
    """Look-at cameras from yaw/pitch (radians), radius and fov (degrees); all may be floats or [B].

    near/far default to the config's bounds shifted with the radius (the object stays where it was):
    near = cfg.near + (radius - cfg.radius).
    """
    yaw_t = torch.as_tensor(yaw, dtype=dtype, device=device)
    b = 1 if yaw_t.ndim == 0 else yaw_t.shape[0]
    yaw_t = _bt(yaw_t, b, dtype, device)
    pitch_t = _bt(pitch, b, dtype, device)
    r = _bt(radius, b, dtype, device)
    fov = _bt(fov_deg, b, dtype, device) * (math.pi / 180)
    target = torch.as_tensor(look_at_point, dtype=dtype, device=device).reshape(-1, 3).expand(b, 3)
    cfg = cfg or CameraConfig()
    near_t = _bt(near, b, dtype, device) if near is not None else r + (cfg.near - cfg.radius)
    far_t = _bt(far, b, dtype, device) if far is not None else r + (cfg.far - cfg.radius)
    origins = target + angles_to_origins(yaw_t, pitch_t, r)
    return Cameras(look_at(origins, target), fov_to_intrinsics(fov), near_t.clamp_min(1e-4), far_t)


def from_matrices(cam2world: torch.Tensor, intrinsics: torch.Tensor, cfg: CameraConfig) -> Cameras:
    """Cameras from [B, 4, 4] cam2world and [B, 3, 3] intrinsics, with near/far placed like the
    config's bounds around the look-at point: near = dist + (cfg.near - cfg.radius), far likewise."""
    target = torch.as_tensor(cfg.look_at, dtype=cam2world.dtype, device=cam2world.device)
    dist = (cam2world[:, :3, 3] - target).norm(dim=-1)
    return Cameras(cam2world, intrinsics, (dist + (cfg.near - cfg.radius)).clamp_min(1e-4),
                   dist + (cfg.far - cfg.radius))


def to_angles(cams: Cameras, look_at_point=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """[B, 3] (yaw, pitch, radius) of the camera origins around a look-at point."""
    target = torch.as_tensor(look_at_point, dtype=cams.cam2world.dtype, device=cams.cam2world.device)
    d = cams.origins - target
    r = d.norm(dim=-1)
    pitch = torch.acos((d[:, 1] / r).clamp(-1, 1))
    yaw = torch.atan2(d[:, 2], d[:, 0])
    return torch.stack([yaw, pitch, r], dim=-1)


def from_config(cfg: CameraConfig, yaw=None, pitch=None, radius=None, fov_deg=None, device=None) -> Cameras:
    """Cameras at the config's mean pose, radius and fov; any may be overridden (floats or [B])."""
    return from_angles(cfg.yaw_mean if yaw is None else yaw,
                       cfg.pitch_mean if pitch is None else pitch,
                       cfg.radius if radius is None else radius,
                       cfg.fov_deg if fov_deg is None else fov_deg,
                       cfg.look_at, cfg=cfg, device=device)


# --------------------------------------------------------------------------------------------------
# Pose samplers


def sample_angles(cfg: CameraConfig, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """[n, 2] (yaw, pitch) from the config's prior, pitch clamped to (eps, pi - eps).

    gaussian: yaw ~ N(mean, std), pitch ~ N(mean, std);
    uniform: each uniform in mean +- std;
    spherical_uniform: yaw uniform in mean +- std, pitch so that the directions are uniform on the
    sphere's zone: v ~ U(mean/pi +- std/pi), pitch = arccos(1 - 2v) (pi-GAN's scheme);
    truncnormal: each N(mean, std) cut at mean +- cfg.trunc_stds std (3DGP's kind).
    """
    u = torch.rand(n, 2, generator=generator)
    g = torch.randn(n, 2, generator=generator)
    if cfg.dist == "gaussian":
        yaw = g[:, 0] * cfg.yaw_std + cfg.yaw_mean
        pitch = g[:, 1] * cfg.pitch_std + cfg.pitch_mean
    elif cfg.dist == "uniform":
        yaw = (u[:, 0] * 2 - 1) * cfg.yaw_std + cfg.yaw_mean
        pitch = (u[:, 1] * 2 - 1) * cfg.pitch_std + cfg.pitch_mean
    elif cfg.dist == "spherical_uniform":
        yaw = (u[:, 0] * 2 - 1) * cfg.yaw_std + cfg.yaw_mean
        v = ((u[:, 1] * 2 - 1) * cfg.pitch_std + cfg.pitch_mean) / math.pi
        pitch = torch.acos(1 - 2 * v.clamp(1e-5, 1 - 1e-5))
    elif cfg.dist == "truncnormal":
        k = cfg.trunc_stds
        yaw = _truncnormal(u[:, 0], cfg.yaw_mean, cfg.yaw_std, cfg.yaw_mean - k * cfg.yaw_std, cfg.yaw_mean + k * cfg.yaw_std)
        pitch = _truncnormal(u[:, 1], cfg.pitch_mean, cfg.pitch_std, cfg.pitch_mean - k * cfg.pitch_std,
                             cfg.pitch_mean + k * cfg.pitch_std)
    else:
        raise UserError(f"unknown camera distribution '{cfg.dist}' (gaussian, uniform, spherical_uniform, truncnormal)")
    return torch.stack([yaw, pitch.clamp(_PITCH_EPS, math.pi - _PITCH_EPS)], dim=-1)


def sample_cameras(cfg: CameraConfig, n: int, generator: torch.Generator | None = None, device=None) -> Cameras:
    """n cameras from the prior, at the config's radius and fov."""
    a = sample_angles(cfg, n, generator)
    return from_angles(a[:, 0], a[:, 1], cfg.radius, cfg.fov_deg, cfg.look_at, cfg=cfg, device=device)


def pose_cond_vector(yaw: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
    """EpiGRAF's generator pose conditioning: sign(a) * (|a| mod 2pi) / 2pi for yaw and pitch -> [B, 2]."""
    def enc(a):
        return torch.sign(a) * torch.remainder(a.abs(), 2 * math.pi) / (2 * math.pi)
    return torch.stack([enc(yaw), enc(pitch)], dim=-1)


# --------------------------------------------------------------------------------------------------
# EG3D labels

_CV_TO_GL = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
EG3D_PIVOT = (0.0, 0.0, 0.2)
EG3D_RADIUS = 2.7


def _eg3d_world_to_ours(pivot, their_radius: float, our_radius: float, dtype) -> torch.Tensor:
    """4x4 similarity: p_ours = s * R_y(+90deg) (p_eg3d - pivot)."""
    s = our_radius / their_radius
    rot = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]], dtype=dtype)  # +z -> +x
    m = torch.eye(4, dtype=dtype)
    m[:3, :3] = s * rot
    m[:3, 3] = -s * rot @ torch.tensor(pivot, dtype=dtype)
    return m


def from_eg3d_labels(labels: torch.Tensor, pivot=EG3D_PIVOT, their_radius: float = EG3D_RADIUS,
                     our_radius: float = 1.0, near: float | None = None, far: float | None = None) -> Cameras:
    """[B, 25] EG3D labels -> our Cameras (similarity transform recorded in the module docstring).

    near/far default to our radius -+ 0.12 (the FFHQ bounds) scaled to each camera's distance.
    """
    labels = torch.as_tensor(labels, dtype=torch.float32)
    if labels.ndim != 2 or labels.shape[1] != 25:
        raise UserError(f"EG3D labels must have 25 floats each, got shape {tuple(labels.shape)}")
    c2w_cv = labels[:, :16].reshape(-1, 4, 4)
    k = labels[:, 16:].reshape(-1, 3, 3).clone()
    m = _eg3d_world_to_ours(pivot, their_radius, our_radius, labels.dtype)
    s = our_radius / their_radius
    c2w = m @ c2w_cv @ _CV_TO_GL
    c2w[:, :3, :3] /= s  # keep the rotation orthonormal: only the translation is scaled
    dist = c2w[:, :3, 3].norm(dim=-1)
    near_t = dist - 0.12 if near is None else torch.full_like(dist, near)
    far_t = dist + 0.12 if far is None else torch.full_like(dist, far)
    return Cameras(c2w, k, near_t, far_t)


def to_eg3d_labels(cams: Cameras, pivot=EG3D_PIVOT, their_radius: float = EG3D_RADIUS,
                   our_radius: float = 1.0) -> torch.Tensor:
    """Inverse of from_eg3d_labels: our Cameras -> [B, 25] EG3D labels."""
    m = _eg3d_world_to_ours(pivot, their_radius, our_radius, cams.cam2world.dtype)
    s = our_radius / their_radius
    c2w = cams.cam2world.clone()
    c2w[:, :3, :3] *= s
    c2w_cv = torch.linalg.inv(m) @ c2w @ _CV_TO_GL.to(c2w.dtype)
    return torch.cat([c2w_cv.reshape(-1, 16), cams.intrinsics.reshape(-1, 9)], dim=1)


def orbit_angles(cfg: CameraConfig, n: int) -> torch.Tensor:
    """[n, 2] (yaw, pitch) for an orbit video: a full turn for priors that cover the whole circle,
    otherwise a swing of +-2 std in yaw with a gentle pitch wave (face datasets)."""
    k = torch.arange(n, dtype=torch.float32) / n
    if cfg.dist != "gaussian" and cfg.yaw_std >= math.pi - 1e-6:
        yaw = cfg.yaw_mean + 2 * math.pi * k
        pitch = torch.full_like(k, cfg.pitch_mean - 0.25 * min(cfg.pitch_std, 1.0))
    else:
        yaw = cfg.yaw_mean + 2 * cfg.yaw_std * torch.sin(2 * math.pi * k)
        pitch = cfg.pitch_mean + 0.5 * cfg.pitch_std * torch.cos(2 * math.pi * k)
    return torch.stack([yaw, pitch.clamp(_PITCH_EPS, math.pi - _PITCH_EPS)], dim=-1)


# --------------------------------------------------------------------------------------------------
# 3DGP's camera ("3D generation on ImageNet", ICLR 2023): an origin on a sphere (yaw, pitch, radius;
# roll 0), a look-at point in a small ball (its own yaw, pitch, radius) and a field of view. Both
# are placed around the config's `look_at` point (the scene centre): origin = centre + r (sin p cos y,
# cos p, sin p sin y), target = centre + the look-at offset in the same parametrisation. EpiGRAF's
# camera is the special case of a zero offset and a fixed field of view.

PARAM_NAMES = ("yaw", "pitch", "radius", "fov_deg", "lookat_yaw", "lookat_pitch", "lookat_radius")
"""The scalars of a CameraParams, in the order of its `stack()` columns."""
LOOKAT_CENTRE = (0.0, math.pi / 2, 0.0)
"""(yaw, pitch, radius) of a look-at offset of zero: the fixed look-at prior's values."""
_FOV_RANGE = (1e-2, 179.0)  # degrees; Gaussian fields of view are clamped into it


@dataclass
class CameraParams:
    """A batch of n cameras as scalars, each a [n] tensor: origin yaw, pitch (radians) and radius around the
    scene centre, the field of view in degrees and the look-at offset's yaw, pitch and radius."""

    yaw: torch.Tensor
    pitch: torch.Tensor
    radius: torch.Tensor
    fov_deg: torch.Tensor
    lookat_yaw: torch.Tensor
    lookat_pitch: torch.Tensor
    lookat_radius: torch.Tensor

    def __post_init__(self) -> None:
        n = self.yaw.shape[0] if self.yaw.ndim == 1 else -1
        if any(getattr(self, k).shape != (n,) for k in PARAM_NAMES):
            raise ValueError(f"camera parameters must all have shape [n]: "
                             f"{ {k: tuple(getattr(self, k).shape) for k in PARAM_NAMES} }")

    def __len__(self) -> int:
        return self.yaw.shape[0]

    def __getitem__(self, idx) -> "CameraParams":
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return CameraParams(*(getattr(self, k)[idx] for k in PARAM_NAMES))

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {k: getattr(self, k) for k in PARAM_NAMES}

    def stack(self) -> torch.Tensor:
        """[n, 7] in PARAM_NAMES order."""
        return torch.stack([getattr(self, k) for k in PARAM_NAMES], dim=-1)

    @staticmethod
    def unstack(t: torch.Tensor) -> "CameraParams":
        """Inverse of stack(): [n, 7] -> CameraParams."""
        return CameraParams(*t.unbind(dim=-1))

    def to(self, device=None, dtype: torch.dtype | None = None) -> "CameraParams":
        return CameraParams(*(getattr(self, k).to(device=device, dtype=dtype) for k in PARAM_NAMES))

    @staticmethod
    def cat(params: list["CameraParams"]) -> "CameraParams":
        return CameraParams(*(torch.cat([getattr(p, k) for p in params]) for k in PARAM_NAMES))


def _truncnormal(u: torch.Tensor, mean: float, std: float, lo: float, hi: float) -> torch.Tensor:
    """Inverse-CDF samples of N(mean, std) cut to [lo, hi] from uniforms u in [0, 1] (in float64)."""
    if std <= 0:
        return torch.full_like(u, mean)
    sn = torch.special
    a = sn.ndtr(torch.tensor((lo - mean) / std, dtype=torch.float64))
    b = sn.ndtr(torch.tensor((hi - mean) / std, dtype=torch.float64))
    q = (a + (b - a) * u.double()).clamp(1e-300, 1 - 1e-16)
    return (mean + std * sn.ndtri(q)).clamp(lo, hi).to(u.dtype)


def _spherical_pitch(v: float) -> float:
    return math.acos(1 - 2 * min(max(v, 1e-5), 1 - 1e-5))


def _check_prior(cfg: CameraConfig) -> None:
    if cfg.fov_dist in ("uniform", "truncnormal") and not 0 < cfg.fov_min <= cfg.fov_max < 180:
        raise UserError(f"camera.fov_min/fov_max ({cfg.fov_min}, {cfg.fov_max}) must satisfy 0 < min <= max < 180")
    if cfg.fov_dist in ("normal", "truncnormal") and cfg.fov_std < 0:
        raise UserError(f"camera.fov_std must be >= 0, got {cfg.fov_std}")
    if cfg.lookat_dist == "ball" and cfg.lookat_radius_max < 0:
        raise UserError(f"camera.lookat_radius_max must be >= 0, got {cfg.lookat_radius_max}")
    if cfg.trunc_stds <= 0:
        raise UserError(f"camera.trunc_stds must be > 0, got {cfg.trunc_stds}")


def prior_bounds(cfg: CameraConfig) -> dict[str, tuple[float, float]]:
    """Per parameter (PARAM_NAMES) the [min, max] of the prior, which the camera generator normalises to [0, 1]
    and maps its outputs back into. Uniform kinds: their range; 'truncnormal': mean +- trunc_stds std; a plain
    Gaussian (not cut) spans the same mean +- trunc_stds std; pitches are kept inside (0, pi). A parameter the
    prior fixes has min == max."""
    _check_prior(cfg)
    k = cfg.trunc_stds
    spread = cfg.yaw_std if cfg.dist in ("uniform", "spherical_uniform") else k * cfg.yaw_std
    yaw = (cfg.yaw_mean - spread, cfg.yaw_mean + spread)
    if cfg.dist == "spherical_uniform":
        pitch = (_spherical_pitch((cfg.pitch_mean - cfg.pitch_std) / math.pi),
                 _spherical_pitch((cfg.pitch_mean + cfg.pitch_std) / math.pi))
    else:
        spread = cfg.pitch_std if cfg.dist == "uniform" else k * cfg.pitch_std
        pitch = (cfg.pitch_mean - spread, cfg.pitch_mean + spread)
    pitch = tuple(min(max(p, _PITCH_EPS), math.pi - _PITCH_EPS) for p in pitch)
    if cfg.fov_dist == "fixed":
        fov = (cfg.fov_deg, cfg.fov_deg)
    elif cfg.fov_dist == "normal":
        fov = tuple(min(max(cfg.fov_deg + s * k * cfg.fov_std, _FOV_RANGE[0]), _FOV_RANGE[1]) for s in (-1, 1))
    else:
        fov = (cfg.fov_min, cfg.fov_max)
    if cfg.lookat_dist == "ball":
        look = {"lookat_yaw": (-math.pi, math.pi), "lookat_pitch": (0.0, math.pi),
                "lookat_radius": (0.0, cfg.lookat_radius_max)}
    else:
        look = {name: (v, v) for name, v in zip(PARAM_NAMES[4:], LOOKAT_CENTRE, strict=True)}
    return {"yaw": yaw, "pitch": pitch, "radius": (cfg.radius, cfg.radius), "fov_deg": fov, **look}


def prior_mean_angles(cfg: CameraConfig) -> tuple[float, float]:
    """The prior's mean origin (yaw, pitch): the configured means, except the pitch of 'spherical_uniform',
    whose exact mean E[arccos(1 - 2v)], v ~ U[a, b], differs from pitch_mean unless that is pi/2."""
    if cfg.dist != "spherical_uniform" or cfg.pitch_std <= 0:
        return cfg.yaw_mean, cfg.pitch_mean
    a = min(max((cfg.pitch_mean - cfg.pitch_std) / math.pi, 0.0), 1.0)
    b = min(max((cfg.pitch_mean + cfg.pitch_std) / math.pi, 0.0), 1.0)
    if b <= a:
        return cfg.yaw_mean, _spherical_pitch(a)

    def antiderivative(s: float) -> float:  # of arccos(s)
        return s * math.acos(s) - math.sqrt(max(0.0, 1 - s * s))
    return cfg.yaw_mean, (antiderivative(1 - 2 * a) - antiderivative(1 - 2 * b)) / (2 * (b - a))


def sample_prior(cfg: CameraConfig, n: int, generator: torch.Generator | None = None, device=None,
                 dtype: torch.dtype = torch.float32) -> CameraParams:
    """n cameras from the prior of `cfg`. The origin angles are `sample_angles`' (the same random draws, first),
    so a fixed field of view and look-at give exactly `sample_cameras`' cameras; the field of view and then the
    look-at offset are drawn only when their priors are not fixed. A 'ball' look-at offset has length
    ~ U[0, lookat_radius_max] and a direction uniform over the sphere (yaw ~ U[-pi, pi], pitch = arccos(1 - 2v))."""
    _check_prior(cfg)
    angles = sample_angles(cfg, n, generator)
    if cfg.fov_dist == "fixed":
        fov = torch.full((n,), cfg.fov_deg)
    elif cfg.fov_dist == "uniform":
        fov = cfg.fov_min + (cfg.fov_max - cfg.fov_min) * torch.rand(n, generator=generator)
    elif cfg.fov_dist == "normal":
        fov = (cfg.fov_deg + cfg.fov_std * torch.randn(n, generator=generator)).clamp(*_FOV_RANGE)
    else:
        fov = _truncnormal(torch.rand(n, generator=generator), cfg.fov_deg, cfg.fov_std, cfg.fov_min, cfg.fov_max)
    if cfg.lookat_dist == "ball":
        u = torch.rand(n, 3, generator=generator)
        look = [(u[:, 0] * 2 - 1) * math.pi, torch.acos((1 - 2 * u[:, 1]).clamp(-1, 1)), u[:, 2] * cfg.lookat_radius_max]
    else:
        look = [torch.full((n,), v) for v in LOOKAT_CENTRE]
    out = CameraParams(angles[:, 0], angles[:, 1], torch.full((n,), cfg.radius), fov, *look)
    return out.to(device=device, dtype=dtype)


def params_from_angles(cfg: CameraConfig, yaw, pitch, radius=None, fov_deg=None,
                       generator: torch.Generator | None = None, device=None,
                       dtype: torch.dtype = torch.float32) -> CameraParams:
    """Prior cameras with given origin angles (floats or [n]; e.g. each image's own pose when the dataset is the
    prior, train.camera_source 'dataset'): the radius is the config's and the field of view and look-at offset
    are drawn from their priors, unless `radius` / `fov_deg` are given."""
    yaw_t = torch.as_tensor(yaw, dtype=dtype, device=device)
    n = 1 if yaw_t.ndim == 0 else yaw_t.shape[0]
    p = sample_prior(cfg, n, generator, device=device, dtype=dtype)
    p.yaw, p.pitch = _bt(yaw_t, n, dtype, device), _bt(pitch, n, dtype, device).clamp(_PITCH_EPS, math.pi - _PITCH_EPS)
    if radius is not None:
        p.radius = _bt(radius, n, dtype, device)
    if fov_deg is not None:
        p.fov_deg = _bt(fov_deg, n, dtype, device)
    return p


def params_from_cameras(cams: Cameras, cfg: CameraConfig) -> CameraParams:
    """CameraParams of given (roll-free) look-at cameras, e.g. a dataset's: the origin's angles around the
    config's look_at point, the field of view from the intrinsics, and as look-at point the point of the optical
    axis nearest to look_at (any point of the axis gives the same cam2world; this one lies inside every ball
    around look_at that holds some point of the axis). params_to_cameras gives the cameras back."""
    centre = torch.as_tensor(cfg.look_at, dtype=cams.cam2world.dtype, device=cams.cam2world.device)
    origin = to_angles(cams, cfg.look_at)
    fwd = -cams.cam2world[:, :3, 2]
    o = cams.origins
    offset = o + ((centre - o) * fwd).sum(-1, keepdim=True) * fwd - centre
    r = offset.norm(dim=-1)
    pitch = torch.acos((offset[:, 1] / r.clamp_min(1e-12)).clamp(-1, 1))
    yaw = torch.atan2(offset[:, 2], offset[:, 0])
    return CameraParams(origin[:, 0], origin[:, 1], origin[:, 2], torch.rad2deg(cams.fov), yaw, pitch, r)


def params_to_cameras(params: CameraParams, cfg: CameraConfig) -> Cameras:
    """Cameras of a batch of CameraParams (differentiable in every parameter): a look-at cam2world with world up
    +y from centre + origin offset towards centre + look-at offset, the centre being cfg.look_at.

    near/far follow `from_angles`' convention: cfg.near/far shifted with the radius, near = cfg.near + (radius -
    cfg.radius), measured along the unit ray. For 3DGP's rays, integrated between the absolute distances 0.75
    and 1.25 at radius 1, set camera.near 0.75 and camera.far 1.25. With a zero look-at offset the cameras are
    exactly from_angles'."""
    dtype, device = params.yaw.dtype, params.yaw.device
    n = len(params)
    centre = torch.as_tensor(cfg.look_at, dtype=dtype, device=device).reshape(-1, 3).expand(n, 3)
    target = centre + angles_to_origins(params.lookat_yaw, params.lookat_pitch, params.lookat_radius)
    origins = centre + angles_to_origins(params.yaw, params.pitch, params.radius)
    r = params.radius
    near = (r + (cfg.near - cfg.radius)).clamp_min(1e-4)
    return Cameras(look_at(origins, target), fov_to_intrinsics(params.fov_deg * (math.pi / 180)), near,
                   r + (cfg.far - cfg.radius))
