"""Cameras: the sphere parametrisation, look-at geometry, samplers and EG3D labels."""

import math

import pytest
import torch

from core import cameras as camlib
from core.config import CameraConfig
from core.render.rays import make_rays


def test_yaw_zero_is_on_plus_x_and_pitch_zero_is_above():
    c = camlib.from_angles(torch.tensor([0.0, math.pi / 2, 0.0]), torch.tensor([math.pi / 2, math.pi / 2, 0.0]),
                           2.0, 30.0)
    torch.testing.assert_close(c.origins[0], torch.tensor([2.0, 0.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(c.origins[1], torch.tensor([0.0, 0.0, 2.0]), atol=1e-6, rtol=0)
    assert c.origins[2, 1] > 1.99  # pitch clamped just off the pole, camera above


def test_cameras_look_at_the_target_with_y_up_and_orthonormal_frames():
    yaw, pitch = torch.rand(50) * 6 - 3, torch.rand(50) * 2.8 + 0.15
    target = (0.1, -0.2, 0.3)
    c = camlib.from_angles(yaw, pitch, 1.5, 20.0, target)
    rot = c.cam2world[:, :3, :3]
    torch.testing.assert_close(rot.transpose(1, 2) @ rot, torch.eye(3).expand(50, 3, 3), atol=1e-5, rtol=0)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(50), atol=1e-5)
    # the central ray passes through the target; image-up has a positive world-y component; no roll
    o, d = make_rays(c, 2)  # 2x2 pixels: the mean of the four directions is the optical axis
    axis = torch.nn.functional.normalize(d.mean(1), dim=-1)
    expected = torch.nn.functional.normalize(torch.tensor(target) - c.origins, dim=-1)
    torch.testing.assert_close(axis, expected, atol=1e-5, rtol=0)
    assert (rot[:, 1, 1] > 0).all() and rot[:, 1, 0].abs().max() < 1e-5  # camera x stays horizontal
    back = camlib.to_angles(c, target)
    torch.testing.assert_close(back[:, 0], yaw, atol=1e-5, rtol=0)
    torch.testing.assert_close(back[:, 1], pitch, atol=1e-4, rtol=0)
    torch.testing.assert_close(back[:, 2], torch.full((50,), 1.5), atol=1e-5, rtol=0)


def test_fov_sets_the_angle_between_image_edges():
    c = camlib.from_angles(0.0, math.pi / 2, 1.0, 40.0)
    assert c.fov.item() == pytest.approx(math.radians(40.0))
    o, d = make_rays(c, 1000)  # the outermost pixel centres are half a pixel inside the edges
    d = d[0].reshape(1000, 1000, 3)
    angle = torch.acos((d[500, 0] * d[500, -1]).sum()).item()
    assert angle == pytest.approx(math.radians(40.0) * 999 / 1000, rel=2e-3)


def test_near_far_follow_the_radius():
    cfg = CameraConfig(radius=1.0, near=0.88, far=1.12)
    c = camlib.from_angles(0.0, 1.0, 1.5, 12.0, cfg=cfg)
    assert c.near.item() == pytest.approx(1.38) and c.far.item() == pytest.approx(1.62)


def test_spherical_uniform_covers_the_sphere_uniformly():
    cfg = CameraConfig(dist="spherical_uniform", yaw_mean=0.0, yaw_std=math.pi, pitch_mean=math.pi / 2,
                       pitch_std=math.pi / 2)
    a = camlib.sample_angles(cfg, 100_000, torch.Generator().manual_seed(0))
    y = torch.cos(a[:, 1])  # uniform on [-1, 1] for a uniform sphere
    assert abs(y.mean().item()) < 0.01 and abs(y.var().item() - 1 / 3) < 0.01
    assert a[:, 0].min() < -3.1 and a[:, 0].max() > 3.1


def test_gaussian_prior_moments():
    cfg = CameraConfig(dist="gaussian", yaw_mean=0.1, yaw_std=0.3, pitch_mean=1.5, pitch_std=0.155)
    a = camlib.sample_angles(cfg, 100_000, torch.Generator().manual_seed(0))
    assert a[:, 0].mean().item() == pytest.approx(0.1, abs=0.005)
    assert a[:, 0].std().item() == pytest.approx(0.3, abs=0.005)
    assert a[:, 1].std().item() == pytest.approx(0.155, abs=0.005)


def _eg3d_frontal_label(fx=4.2647):
    """An EG3D-style label built by hand: camera at pivot + 2.7 * (+z), OpenCV axes (x right, y down, z forward)."""
    c2w = torch.eye(4)
    c2w[:3, 0] = torch.tensor([1.0, 0.0, 0.0])
    c2w[:3, 1] = torch.tensor([0.0, -1.0, 0.0])
    c2w[:3, 2] = torch.tensor([0.0, 0.0, -1.0])
    c2w[:3, 3] = torch.tensor([0.0, 0.0, 0.2 + 2.7])
    k = torch.tensor([[fx, 0, 0.5], [0, fx, 0.5], [0, 0, 1]])
    return torch.cat([c2w.reshape(16), k.reshape(9)])[None]


def test_eg3d_frontal_label_becomes_our_frontal_camera():
    cams = camlib.from_eg3d_labels(_eg3d_frontal_label())
    yaw, pitch, r = camlib.to_angles(cams)[0]
    assert yaw.item() == pytest.approx(0.0, abs=1e-6)
    assert pitch.item() == pytest.approx(math.pi / 2, abs=1e-6)
    assert r.item() == pytest.approx(1.0, abs=1e-6)
    assert math.degrees(cams.fov.item()) == pytest.approx(2 * math.degrees(math.atan(0.5 / 4.2647)), abs=1e-4)
    ours = camlib.from_angles(0.0, math.pi / 2, 1.0, math.degrees(cams.fov.item()))
    torch.testing.assert_close(cams.cam2world, ours.cam2world, atol=1e-6, rtol=0)


def test_eg3d_round_trip_of_random_cameras():
    c = camlib.from_angles(torch.rand(20) * 6 - 3, torch.rand(20) * 2 + 0.5, 1.0, 13.0)
    back = camlib.from_eg3d_labels(camlib.to_eg3d_labels(c))
    torch.testing.assert_close(back.cam2world, c.cam2world, atol=1e-5, rtol=0)
    torch.testing.assert_close(back.intrinsics, c.intrinsics)


def test_pose_conditioning_encoding():
    v = camlib.pose_cond_vector(torch.tensor([-0.5, 7.0]), torch.tensor([1.0, -7.0]))
    two_pi = 2 * math.pi
    torch.testing.assert_close(v, torch.tensor([[-0.5 / two_pi, 1 / two_pi], [(7 - two_pi) / two_pi, -(7 - two_pi) / two_pi]]))


def test_no_input_tensor_is_modified():
    yaw, pitch = torch.tensor([0.1, 0.2]), torch.tensor([0.0, 4.0])  # out-of-range pitch gets clamped
    y0, p0 = yaw.clone(), pitch.clone()
    camlib.from_angles(yaw, pitch, 1.0, 12.0)
    assert torch.equal(yaw, y0) and torch.equal(pitch, p0)
