"""The outside-density penalty (train.outside_density_weight): its points lie on the cameras' rays
between near and far, and its value and gradient match closed forms: for a constant decoder, and
for constant planes read with zero padding beyond the cube's faces."""

import math

import pytest
import torch
import torch.nn.functional as F

from core import cameras as camlib
from core.config import get_preset
from core.networks.generator import TriPlaneGenerator
from core.training.loss import outside_density_penalty, outside_ray_points
from tests.conftest import run_g_phase, tiny_config

SQRT2 = math.sqrt(2.0)


def _cameras(cfg, fov_deg=30.0, near=0.75, far=1.25):
    yaw = torch.tensor([0.0, 1.1, -2.5, 0.4])
    pitch = torch.tensor([math.pi / 2, 0.35, 2.6, 1.2])
    return camlib.from_angles(yaw, pitch, radius=1.0, fov_deg=fov_deg, near=near, far=far, cfg=cfg.camera)


def test_points_lie_on_the_pixel_rays_between_near_and_far():
    cfg = tiny_config()
    cams = _cameras(cfg)
    r = 8
    pts, outside = outside_ray_points(cams, r * r + 5, cube_scale=0.2)  # floor(sqrt(69)) = 8 rays a side
    assert pts.shape == (4, r * r, 3) and outside.shape == (4, r * r)
    rel = pts - cams.origins[:, None]
    dist = rel.norm(dim=-1)
    assert (dist >= cams.near[:, None] - 1e-6).all() and (dist <= cams.far[:, None] + 1e-6).all()
    # project back into each camera: every point lands on a pixel centre of the r x r image, in order
    local = torch.einsum("bji,bnj->bni", cams.cam2world[:, :3, :3], rel)  # world -> camera (rotation^T)
    k = cams.intrinsics
    u = k[:, 0, 0, None] * local[..., 0] / -local[..., 2] + k[:, 0, 2, None]
    v = -k[:, 1, 1, None] * local[..., 1] / -local[..., 2] + k[:, 1, 2, None]
    centres = (torch.arange(r, dtype=torch.float32) + 0.5) / r
    torch.testing.assert_close(u, centres.repeat(r).expand(4, -1), atol=1e-5, rtol=0)
    torch.testing.assert_close(v, centres.repeat_interleave(r).expand(4, -1), atol=1e-5, rtol=0)
    assert outside.any() and not outside.all()


def test_no_penalty_when_every_ray_segment_stays_in_the_cube():
    cfg = tiny_config()
    G = TriPlaneGenerator(cfg)
    planes = G.planes(G.mapping(torch.randn(4, cfg.generator.z_dim), None))
    # fov 10: at most 1.05 tan(5 deg) sqrt(2) = 0.13 off the axis, and +-0.05 along it
    cams = _cameras(cfg, fov_deg=10.0, near=0.95, far=1.05)
    assert not outside_ray_points(cams, 256, cfg.generator.cube_scale)[1].any()
    penalty = outside_density_penalty(G, planes, cams, 256)
    assert penalty.item() == 0.0
    penalty.backward()
    assert G.decoder.fc1.bias.grad.abs().max().item() == 0.0


def _set_linear_decoder(G, k: float):
    """Raw density = k * feature[0] for feature[0] >= 0 (the lrelu passes it), colour 0."""
    fc0, fc1 = G.decoder.fc0, G.decoder.fc1
    with torch.no_grad():
        fc0.weight.zero_()
        fc0.bias.zero_()
        fc0.weight[0, 0] = 1.0 / (fc0.weight_gain * SQRT2)  # the lrelu layer folds in sqrt 2
        fc1.weight.zero_()
        fc1.bias.zero_()
        fc1.weight[3, 0] = k / fc1.weight_gain


def _padded_weight(x: torch.Tensor, texel: float) -> torch.Tensor:
    """A constant texture's bilinear weight at normalised coordinate x with zero padding beyond
    [-1, 1] (align_corners: the next, zero, texel is `texel` further out)."""
    return (1 - (x.abs() - 1).clamp_min(0) / texel).clamp(0, 1)


def test_penalty_matches_constant_planes_read_with_zero_padding():
    cfg = tiny_config()
    s = 0.15  # a small cube: rays leave it through one face, two and three
    cfg.generator.plane_res, cfg.generator.cube_scale = 32, s
    G = TriPlaneGenerator(cfg)
    k, c, shift = 3.0, 2.0, cfg.generator.density_shift
    _set_linear_decoder(G, k)
    planes = torch.full((2, 3, cfg.generator.plane_channels, 32, 32), c, requires_grad=True)
    cams = _cameras(cfg)[:2]

    torch.manual_seed(3)
    penalty = outside_density_penalty(G, planes, cams, 400)
    torch.manual_seed(3)
    pts, _ = outside_ray_points(cams, 400, s)

    q = (pts / s).double()
    texel = 2.0 / (32 - 1)
    wx, wy, wz = (_padded_weight(q[..., i], texel) for i in range(3))
    feature = c * (wx * wy + wx * wz + wy * wz) / 3  # the three planes' mean
    sigma = F.softplus(k * feature + shift)
    outside = (q.abs() > 1).any(dim=-1)
    n_faces = (q.abs() > 1).sum(dim=-1)
    assert (n_faces[outside] == 1).any() and (n_faces[outside] >= 2).any()
    expected = sigma[outside].mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)
    # inside, the density is softplus(k c); the penalty stays below it (it sees only the outside)
    assert penalty.item() < F.softplus(torch.tensor(k * c + shift)).item() - 1.0

    penalty.backward()  # d/d(density bias) of mean(softplus(raw + b)) = mean(sigmoid(raw + shift))
    bias_grad = G.decoder.fc1.bias.grad[3] / G.decoder.fc1.bias_gain
    assert bias_grad.item() == pytest.approx(torch.sigmoid(k * feature + shift)[outside].mean().item(), rel=1e-5)


def _constant_density_generator(cfg, raw: float):
    G = TriPlaneGenerator(cfg)
    with torch.no_grad():
        G.decoder.fc1.weight.zero_()
        G.decoder.fc1.bias.copy_(torch.tensor([0.0, 0.0, 0.0, raw]) / G.decoder.fc1.bias_gain)
    return G


def _g_phase(cfg, raw):
    torch.manual_seed(1)
    G = _constant_density_generator(cfg, raw)
    stats = run_g_phase(cfg, G)
    return G.decoder.fc1.bias.grad[3] / G.decoder.fc1.bias_gain, stats


def test_g_phase_adds_the_weighted_penalty_to_the_gan_loss():
    cfg = tiny_config()
    cfg.train.patch_res = 8
    cfg.train.rgb_range_weight = 0.0
    raw, shift = -0.5, cfg.generator.density_shift
    cfg.train.outside_density_weight = 0.0
    grad_off, stats_off = _g_phase(cfg, raw)
    assert "outside_density" not in stats_off
    cfg.train.outside_density_weight = 0.5
    grad_on, stats_on = _g_phase(cfg, raw)
    # the density is softplus(raw + shift) everywhere, so is its mean outside the cube
    assert stats_on["outside_density"] == pytest.approx(F.softplus(torch.tensor(raw + shift)).item(), rel=1e-5)
    assert stats_on["loss_G"] == pytest.approx(stats_off["loss_G"], rel=1e-6)  # loss_G stays the GAN part
    expected = 0.5 * torch.sigmoid(torch.tensor(raw + shift))
    torch.testing.assert_close(grad_on - grad_off, expected, rtol=1e-4, atol=1e-6)


def test_the_demo_preset_uses_the_penalty_and_the_reference_presets_do_not():
    assert get_preset("demo").train.outside_density_weight > 0
    assert get_preset("ffhq512").train.outside_density_weight == 0
    assert get_preset("megascans256").train.outside_density_weight == 0
