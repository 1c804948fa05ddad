"""Orbit-camera math for the viewer: drag deltas -> yaw/pitch, scroll -> radius, presets.

Angles follow core/cameras.py (EpiGRAF's convention): the camera sits at
look_at + r (sin p cos y, cos p, sin p sin y); yaw 0 is frontal (+x), pitch pi/2 the equator,
pitch -> 0 looks from above. Here the pitch is clamped to (PITCH_EPS, pi - PITCH_EPS) so the
look-at frame never degenerates, and the yaw is wrapped to (-pi, pi].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from core import cameras as camlib
from core.config import CameraConfig

PITCH_EPS = 1e-3
"""Smallest distance of the pitch from the poles (radians)."""

DRAG_RADIANS_PER_PIXEL = 0.01
"""Orbit speed: radians of yaw/pitch per pixel of mouse drag (scaled by the sensitivity)."""

ZOOM_PER_WHEEL_STEP = 0.1
"""Each wheel notch scales the radius by exp(-0.1) (towards the object) or exp(+0.1)."""

RADIUS_RANGE = (0.25, 5.0)
"""Radius bounds as multiples of the model's default camera radius."""

FOV_RANGE = (1.0, 120.0)
"""Field-of-view bounds in degrees."""


def wrap_angle(a: float) -> float:
    """Wrap an angle to (-pi, pi] (angles already inside are returned unchanged)."""
    if -math.pi < a <= math.pi:
        return a
    a = math.fmod(a + math.pi, 2 * math.pi)
    if a <= 0:
        a += 2 * math.pi
    return a - math.pi


def clamp_pitch(p: float, eps: float = PITCH_EPS) -> float:
    """Clamp a pitch to (eps, pi - eps)."""
    return min(max(p, eps), math.pi - eps)


@dataclass
class OrbitCamera:
    """A look-at camera on a sphere around `look_at` (yaw/pitch in radians, fov in degrees)."""

    yaw: float = 0.0
    pitch: float = math.pi / 2
    radius: float = 1.0
    fov_deg: float = 30.0
    look_at: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def copy(self) -> OrbitCamera:
        return replace(self, look_at=list(self.look_at))

    def normalised(self, default_radius: float = 1.0) -> OrbitCamera:
        """A copy with the yaw wrapped and pitch, radius and fov clamped to their bounds."""
        lo, hi = RADIUS_RANGE
        return OrbitCamera(wrap_angle(self.yaw), clamp_pitch(self.pitch),
                           min(max(self.radius, lo * default_radius), hi * default_radius),
                           min(max(self.fov_deg, FOV_RANGE[0]), FOV_RANGE[1]), [float(x) for x in self.look_at])

    def dragged(self, dx: float, dy: float, sensitivity: float = 1.0) -> OrbitCamera:
        """The camera after dragging the image by (dx, dy) pixels (x right, y down).

        Dragging right turns the object to the right (the camera moves left: yaw grows); dragging
        down tilts the object towards the viewer (the camera rises: pitch shrinks).
        """
        k = DRAG_RADIANS_PER_PIXEL * sensitivity
        out = self.copy()
        out.yaw = wrap_angle(self.yaw + k * dx)
        out.pitch = clamp_pitch(self.pitch - k * dy)
        return out

    def zoomed(self, wheel: float, default_radius: float = 1.0) -> OrbitCamera:
        """The camera after `wheel` notches of scrolling (positive = towards the object)."""
        out = self.copy()
        lo, hi = RADIUS_RANGE
        out.radius = min(max(self.radius * math.exp(-ZOOM_PER_WHEEL_STEP * wheel), lo * default_radius),
                         hi * default_radius)
        return out

    def orbited(self, d_yaw: float) -> OrbitCamera:
        """The camera turned by d_yaw radians about the vertical axis (auto-orbit)."""
        out = self.copy()
        out.yaw = wrap_angle(self.yaw + d_yaw)
        return out

    def to_cameras(self, cfg: CameraConfig, device=None) -> camlib.Cameras:
        """core Cameras [1] for this view; near/far follow the radius as in core.cameras.from_angles."""
        return camlib.from_angles(self.yaw, clamp_pitch(self.pitch), self.radius, self.fov_deg,
                                  tuple(self.look_at), cfg=cfg, device=device)

    def key(self) -> tuple:
        """A hashable identity of the view (for change detection)."""
        return (round(self.yaw, 9), round(self.pitch, 9), round(self.radius, 9), round(self.fov_deg, 9),
                tuple(round(x, 9) for x in self.look_at))


PRESETS = ("front", "side", "top", "mean")
"""Camera presets: frontal, side (a quarter turn from it), top (from above) and the dataset's mean camera."""


def front_yaw(family: str) -> float:
    """The yaw of the frontal view in a model family's world: +x for EpiGRAF (yaw 0), +z for EG3D."""
    return math.pi / 2 if family == "eg3d" else 0.0


def preset(name: str, cfg: CameraConfig, family: str = "epigraf") -> OrbitCamera:
    """A preset camera for a model's camera prior (radius, fov and look-at from the config); the
    front is the family's frontal direction (`front_yaw`)."""
    base = OrbitCamera(cfg.yaw_mean, cfg.pitch_mean, cfg.radius, cfg.fov_deg, [float(x) for x in cfg.look_at])
    front = front_yaw(family)
    if name == "mean":
        return base.normalised(cfg.radius)
    if name == "front":
        base.yaw, base.pitch = front, math.pi / 2
    elif name == "side":
        base.yaw, base.pitch = front + math.pi / 2, math.pi / 2
    elif name == "top":
        base.yaw, base.pitch = front, PITCH_EPS
    else:
        raise ValueError(f"unknown camera preset '{name}' ({', '.join(PRESETS)})")
    return base.normalised(cfg.radius)


def parse_camera(text: str, cfg: CameraConfig) -> OrbitCamera:
    """'yaw,pitch[,radius[,fov]]' (radians, radians, world units, degrees) -> OrbitCamera.

    Missing values come from the model's mean camera. Raises ValueError with a readable message.
    """
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not 2 <= len(parts) <= 4:
        raise ValueError(f"--camera '{text}': expected yaw,pitch[,radius[,fov]]")
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"--camera '{text}': values must be numbers (yaw,pitch in radians, fov in degrees)") from None
    cam = preset("mean", cfg)
    cam.yaw, cam.pitch = vals[0], vals[1]
    if len(vals) > 2:
        cam.radius = vals[2]
    if len(vals) > 3:
        cam.fov_deg = vals[3]
    return cam.normalised(cfg.radius)
