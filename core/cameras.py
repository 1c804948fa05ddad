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
    sphere's zone: v ~ U(mean/pi +- std/pi), pitch = arccos(1 - 2v) (pi-GAN's scheme).
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
    else:
        raise UserError(f"unknown camera distribution '{cfg.dist}' (gaussian, uniform, spherical_uniform)")
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
