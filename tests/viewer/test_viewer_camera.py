"""Orbit math: drag deltas -> yaw/pitch (wrapped, clamped), scroll -> radius (bounded), presets."""

import math

import pytest
import torch

from core import cameras as camlib
from core.config import get_preset
from viewer.camera import (
    DRAG_RADIANS_PER_PIXEL,
    PITCH_EPS,
    RADIUS_RANGE,
    OrbitCamera,
    clamp_pitch,
    parse_camera,
    preset,
    wrap_angle,
)


def test_drag_maps_pixels_to_angles():
    cam = OrbitCamera(yaw=0.2, pitch=1.0)
    out = cam.dragged(30, -20)
    assert out.yaw == pytest.approx(0.2 + 30 * DRAG_RADIANS_PER_PIXEL)
    assert out.pitch == pytest.approx(1.0 + 20 * DRAG_RADIANS_PER_PIXEL)  # drag up lowers the camera
    assert cam.yaw == 0.2  # the original is unchanged
    twice = cam.dragged(10, 0, sensitivity=2.0)
    assert twice.yaw == pytest.approx(0.2 + 20 * DRAG_RADIANS_PER_PIXEL)


def test_drag_right_moves_the_camera_to_its_left():
    """Dragging right turns the object right: the camera moves along its own -x axis."""
    cfg = get_preset("demo").camera
    a = OrbitCamera(yaw=0.0, pitch=math.pi / 2)
    b = a.dragged(5, 0)
    ca, cb = a.to_cameras(cfg), b.to_cameras(cfg)
    right = ca.cam2world[0, :3, 0]
    assert float((cb.origins[0] - ca.origins[0]) @ right) < 0


def test_pitch_clamped_and_yaw_wrapped():
    cam = OrbitCamera(yaw=3.0, pitch=0.1)
    up = cam.dragged(0, 1e6)
    assert up.pitch == pytest.approx(PITCH_EPS)
    down = cam.dragged(0, -1e6)
    assert down.pitch == pytest.approx(math.pi - PITCH_EPS)
    spun = cam.dragged(1000, 0)
    assert -math.pi < spun.yaw <= math.pi
    assert math.cos(spun.yaw) == pytest.approx(math.cos(3.0 + 1000 * DRAG_RADIANS_PER_PIXEL))
    assert wrap_angle(math.pi) == pytest.approx(math.pi)
    assert wrap_angle(-math.pi) == pytest.approx(math.pi)
    assert wrap_angle(2 * math.pi + 0.5) == pytest.approx(0.5)
    assert clamp_pitch(-1) == PITCH_EPS


def test_zoom_scales_radius_within_bounds():
    cam = OrbitCamera(radius=1.0)
    assert cam.zoomed(1).radius == pytest.approx(math.exp(-0.1))
    assert cam.zoomed(-1).radius == pytest.approx(math.exp(0.1))
    assert cam.zoomed(1000).radius == pytest.approx(RADIUS_RANGE[0])
    assert cam.zoomed(-1000, default_radius=2.0).radius == pytest.approx(RADIUS_RANGE[1] * 2.0)


def test_presets_and_core_cameras_agree():
    cfg = get_preset("ffhq512").camera
    mean = preset("mean", cfg)
    assert (mean.yaw, mean.pitch, mean.radius, mean.fov_deg) == pytest.approx(
        (cfg.yaw_mean, cfg.pitch_mean, cfg.radius, cfg.fov_deg))
    top = preset("top", cfg).to_cameras(cfg)
    assert float(top.origins[0, 1]) == pytest.approx(cfg.radius, rel=1e-5)  # straight above
    side = preset("side", cfg)
    ref = camlib.from_angles(math.pi / 2, math.pi / 2, cfg.radius, cfg.fov_deg, cfg=cfg)
    assert torch.allclose(side.to_cameras(cfg).cam2world, ref.cam2world, atol=1e-6)
    angles = camlib.to_angles(preset("front", cfg).to_cameras(cfg))[0]
    assert angles.tolist() == pytest.approx([0.0, math.pi / 2, cfg.radius], abs=1e-5)
    with pytest.raises(ValueError):
        preset("bottom", cfg)


def test_parse_camera():
    cfg = get_preset("demo").camera
    cam = parse_camera("0.5,1.2,1.3,25", cfg)
    assert (cam.yaw, cam.pitch, cam.radius, cam.fov_deg) == pytest.approx((0.5, 1.2, 1.3, 25))
    cam = parse_camera("0.5, 1.2", cfg)
    assert cam.radius == cfg.radius and cam.fov_deg == cfg.fov_deg
    for bad in ("1", "a,b", "1,2,3,4,5"):
        with pytest.raises(ValueError):
            parse_camera(bad, cfg)
