"""3DGP's cameras: the ball-in-sphere camera model, its prior, the camera generator and its regularisers."""

import itertools
import math

import pytest
import torch
from scipy import stats

from core import cameras as camlib
from core.config import CameraConfig, CameraGenConfig, ModelConfig, apply_override, from_dict, to_dict
from core.networks.camera_generator import PITCH_MARGIN, CameraGenerator, mean_camera
from core.training.camera_reg import camera_regularizer, emd_1d, emd_ramp

# 3DGP's default prior: FoV ~ U[10, 45], yaw ~ U[-pi/2, pi/2], pitch ~ U[pi/4, 3pi/4], look-at in a 0.2 ball
GP_CAM = CameraConfig(fov_dist="uniform", fov_min=10.0, fov_max=45.0, dist="uniform", yaw_std=math.pi / 2,
                      pitch_std=math.pi / 4, lookat_dist="ball", lookat_radius_max=0.2, near=0.75, far=1.25)
GEN = CameraGenConfig(enabled=True, hidden=32)


def _gen(c_dim=0, cam=GP_CAM, z_dim=8):
    return CameraGenerator(cam, GEN, z_dim=z_dim, c_dim=c_dim)


def test_sorted_emd_is_the_optimal_transport():
    g = torch.Generator().manual_seed(1)
    for n in range(1, 8):
        a, b = torch.randn(n, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)
        brute = min(sum((a[i] - b[j]).item() ** 2 for i, j in enumerate(p)) / n for p in itertools.permutations(range(n)))
        assert emd_1d(a, b).item() == pytest.approx(brute, rel=1e-12, abs=1e-15)
    a = torch.randn(16, requires_grad=True)
    emd_1d(a, torch.randn(16)).backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        emd_1d(torch.zeros(3), torch.zeros(4))


def test_cam2world_is_a_rotation_looking_at_the_lookat_point():
    p = camlib.sample_prior(GP_CAM, 200, torch.Generator().manual_seed(0))
    cams = camlib.params_to_cameras(p, GP_CAM)
    rot = cams.cam2world[:, :3, :3]
    torch.testing.assert_close(rot.transpose(1, 2) @ rot, torch.eye(3).expand(200, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(200), atol=1e-5, rtol=0)
    target = camlib.angles_to_origins(p.lookat_yaw, p.lookat_pitch, p.lookat_radius)  # centre (0, 0, 0)
    assert (target.norm(dim=-1) <= 0.2 + 1e-6).all()
    towards = torch.nn.functional.normalize(target - cams.origins, dim=-1)
    torch.testing.assert_close(-rot[:, :, 2], towards, atol=1e-5, rtol=0)
    assert rot[:, 1, 0].abs().max() < 1e-5  # no roll: camera x stays horizontal
    torch.testing.assert_close(cams.origins.norm(dim=-1), p.radius, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.rad2deg(cams.fov), p.fov_deg, atol=1e-3, rtol=0)
    torch.testing.assert_close(cams.near, torch.full((200,), 0.75))
    # the camera generator's gradient reaches the cameras' parameters through params_to_cameras
    q = camlib.CameraParams(*(t.clone().requires_grad_() for t in p.stack().unbind(-1)))
    out = camlib.params_to_cameras(q, GP_CAM)
    (out.cam2world.sum() + out.intrinsics.sum()).backward()
    assert all(getattr(q, k).grad is not None for k in camlib.PARAM_NAMES)


def test_params_from_cameras_round_trip():
    p = camlib.sample_prior(GP_CAM, 50, torch.Generator().manual_seed(2))
    cams = camlib.params_to_cameras(p, GP_CAM)
    back = camlib.params_to_cameras(camlib.params_from_cameras(cams, GP_CAM), GP_CAM)
    torch.testing.assert_close(back.cam2world, cams.cam2world, atol=1e-5, rtol=0)
    torch.testing.assert_close(back.intrinsics, cams.intrinsics, atol=1e-4, rtol=1e-5)
    given = camlib.params_from_angles(GP_CAM, torch.tensor([0.1, -0.2]), torch.tensor([1.0, 2.0]))
    assert given.yaw.tolist() == pytest.approx([0.1, -0.2]) and given.pitch.tolist() == pytest.approx([1.0, 2.0])
    assert ((given.fov_deg >= 10) & (given.fov_deg <= 45)).all()


@pytest.mark.parametrize("cam", [
    GP_CAM,
    CameraConfig(dist="truncnormal", fov_dist="truncnormal", fov_deg=20.0, fov_std=10.0, lookat_dist="ball"),
    CameraConfig(dist="spherical_uniform", yaw_std=math.pi, pitch_std=math.pi / 2, fov_dist="normal", fov_std=2.0),
])
def test_prior_samples_lie_in_the_bounds(cam):
    p = camlib.sample_prior(cam, 20_000, torch.Generator().manual_seed(0))
    for k, (lo, hi) in camlib.prior_bounds(cam).items():
        v = getattr(p, k)
        if cam.fov_dist == "normal" and k == "fov_deg":
            assert ((v >= lo) & (v <= hi)).float().mean() > 0.99  # a Gaussian spans +-3 std, uncut
        else:
            assert v.min() >= lo - 1e-5 and v.max() <= hi + 1e-5, k


def test_lookat_directions_are_area_uniform_and_the_mean_pitch_is_exact():
    p = camlib.sample_prior(GP_CAM, 20_000, torch.Generator().manual_seed(3))
    assert stats.kstest(torch.cos(p.lookat_pitch).numpy(), "uniform", args=(-1, 2)).pvalue > 1e-3
    assert stats.kstest(p.lookat_radius.numpy(), "uniform", args=(0, 0.2)).pvalue > 1e-3
    cam = CameraConfig(dist="spherical_uniform", yaw_std=0.5, pitch_mean=1.0, pitch_std=0.6)
    pitch = camlib.sample_angles(cam, 200_000, torch.Generator().manual_seed(0))[:, 1]
    assert camlib.prior_mean_angles(cam)[1] == pytest.approx(pitch.mean().item(), abs=2e-3)


def test_epigraf_defaults_give_the_old_cameras():
    for cam in (CameraConfig(), CameraConfig(look_at=(0.0, 0.1, 0.2), radius=2.7, near=2.25, far=3.3,
                                             dist="spherical_uniform", yaw_std=math.pi, pitch_std=math.pi / 2)):
        g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        new = camlib.params_to_cameras(camlib.sample_prior(cam, 64, g1), cam)
        old = camlib.sample_cameras(cam, 64, g2)
        for k in ("cam2world", "intrinsics", "near", "far"):
            assert torch.equal(getattr(new, k), getattr(old, k)), k
    assert CameraConfig().fov_dist == "fixed" and CameraConfig().lookat_dist == "fixed"


@pytest.mark.parametrize("c_dim", [0, 5])
def test_camera_generator_outputs(c_dim):
    gen = _gen(c_dim)
    with torch.no_grad():  # push the outputs into saturation: the bounds and the margin must hold
        for m in gen.modules():
            if hasattr(m, "weight_gain"):
                m.weight.mul_(50)
    n = 256
    prior = camlib.sample_prior(GP_CAM, n, torch.Generator().manual_seed(0))
    c = torch.nn.functional.one_hot(torch.randint(5, (n,)), 5).float() if c_dim else None
    post = gen(prior, torch.randn(n, 8), c)
    for k, (lo, hi) in camlib.prior_bounds(GP_CAM).items():
        v = getattr(post, k)
        assert v.min() >= lo - 1e-6 and v.max() <= hi + 1e-6, k
    for k in ("pitch", "lookat_pitch"):
        v = getattr(post, k)
        assert v.min() >= PITCH_MARGIN * 0.99 and v.max() <= math.pi - PITCH_MARGIN * 0.99
    assert torch.equal(post.radius, prior.radius)
    cams = camlib.params_to_cameras(post, GP_CAM)  # roll 0: camera x horizontal
    assert cams.cam2world[:, 1, 0].abs().max() < 1e-5
    with pytest.raises(ValueError):
        gen(prior, torch.randn(n, 8), None if c_dim else torch.ones(n, 3))


def test_gradients_reach_both_mlps_and_fixed_parameters_stay_fixed():
    gen = _gen(c_dim=3)
    prior = camlib.sample_prior(GP_CAM, 32, torch.Generator().manual_seed(0))
    post = gen(prior, torch.randn(32, 8), torch.eye(3)[torch.randint(3, (32,))])
    (post.yaw.sum() + post.fov_deg.sum() + post.lookat_radius.sum()).backward()
    for part in (gen.origin, gen.lookat, gen.z_embed, gen.c_embed):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    fixed_cam = CameraConfig(dist="uniform", yaw_std=1.0, pitch_std=0.5, fov_deg=17.0)  # fixed FoV and look-at
    gen = _gen(cam=fixed_cam)
    prior = camlib.sample_prior(fixed_cam, 16)
    post = gen(prior, torch.randn(16, 8))
    for k in ("radius", "fov_deg", "lookat_yaw", "lookat_pitch", "lookat_radius"):
        assert torch.equal(getattr(post, k), getattr(prior, k)), k
    assert not torch.equal(post.yaw, prior.yaw)
    mean = mean_camera(gen, fixed_cam, n=1024)
    assert len(mean) == 1 and mean.fov_deg.item() == pytest.approx(17.0)
    assert len(mean_camera(_gen(c_dim=3), GP_CAM, n=64, c=torch.eye(3)[1])) == 1


def test_regulariser_ramp_and_size():
    assert emd_ramp(0.0, 10000.0) == 0.0 and emd_ramp(10000.0, 10000.0) == 1.0 and emd_ramp(5000.0, 1e4) == 0.5
    cfg = CameraGenConfig(enabled=True, hidden=32, mean_forcing=0.0)

    class Identity(torch.nn.Module):  # a "generator" that returns the prior, possibly shifted in yaw
        def __init__(self, shift):
            super().__init__()
            self.register_buffer("lo", torch.zeros(1))
            self.z_dim, self.c_dim, self.shift = 4, 0, shift

        def forward(self, prior, z, c=None):
            return camlib.CameraParams(prior.yaw + self.shift, *(getattr(prior, k) for k in camlib.PARAM_NAMES[1:]))

    fixed = camlib.sample_prior(GP_CAM, 64, torch.Generator().manual_seed(0))
    same, s = camera_regularizer(Identity(0.0), GP_CAM, cfg, kimg=1e9, prior_fn=lambda n: fixed[:n])
    assert same.item() == pytest.approx(0.0, abs=1e-12) and s["camera/emd_mult"] == 1.0
    shifted, s = camera_regularizer(Identity(0.5), GP_CAM, cfg, kimg=1e9, prior_fn=lambda n: fixed[:n])
    assert shifted.item() == pytest.approx(2.0 * 0.25, rel=1e-5) and s["camera/emd_yaw"] == pytest.approx(0.25)
    zero, _ = camera_regularizer(Identity(0.5), GP_CAM, cfg, kimg=0.0, prior_fn=lambda n: fixed[:n])
    assert zero.item() == 0.0
    # the real generator: a differentiable loss with the mean forcing, and its logged scalars
    gen = _gen(c_dim=4)
    loss, s = camera_regularizer(gen, GP_CAM, GEN, kimg=5000.0, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert loss.item() > 0 and s["camera/emd_mult"] == 0.5 and s["camera/mean_forcing"] > 0
    assert {"camera/emd_fov_deg", "camera/yaw_std", "camera/lookat_radius_mean"} <= set(s)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in gen.origin.parameters())


def test_config_round_trip_and_old_configs():
    cfg = ModelConfig()
    apply_override(cfg, "camera.fov_dist=uniform")
    apply_override(cfg, "camera.lookat_dist=ball")
    apply_override(cfg, "camera_gen.enabled=true")
    apply_override(cfg, "camera_gen.ramp_kimg=3000")
    assert from_dict(ModelConfig, to_dict(cfg)) == cfg
    old = to_dict(ModelConfig())
    del old["camera_gen"]
    for k in ("fov_dist", "fov_min", "fov_max", "fov_std", "lookat_dist", "lookat_radius_max", "trunc_stds"):
        del old["camera"][k]
    assert from_dict(ModelConfig, old) == ModelConfig()
    from core.config_cli import overrides_from_args
    from core.train import build_parser
    ns = build_parser().parse_args(["--data", "x", "--outdir", "y", "--camera_gen.enabled", "true",
                                    "--camera.fov_dist", "truncnormal"])
    assert set(overrides_from_args(ns)) == {"camera_gen.enabled=true", "camera.fov_dist=truncnormal"}


def test_per_class_emd_sees_a_collapse_that_mixed_classes_hide():
    """A generator whose origin depends on the class alone: class k puts every camera at the k-th smallest
    prior yaw. Over one sample of every class the learned yaws are the prior's, so the mixed-class distance
    is 0; the per-class one sees class 0's single view against the prior: mean((sort(prior) - min)^2)."""
    n = 64
    fixed = camlib.sample_prior(GP_CAM, n, torch.Generator().manual_seed(1))
    ordered = torch.sort(fixed.yaw).values

    class ClassOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("lo", torch.zeros(1))
            self.z_dim, self.c_dim = 4, n

        def forward(self, prior, z, c=None):
            yaw = ordered[c.argmax(dim=1)]
            return camlib.CameraParams(yaw, *(getattr(prior, k) for k in camlib.PARAM_NAMES[1:]))

    every_class = torch.eye(n)
    for per_class, expected in ((False, 0.0), (True, (ordered - ordered[0]).square().mean().item())):
        cfg = CameraGenConfig(enabled=True, mean_forcing=0.0, emd_samples=n, emd_per_class=per_class)
        _, s = camera_regularizer(ClassOnly(), GP_CAM, cfg, kimg=1e9, prior_fn=lambda m: fixed[:m],
                                  label_fn=lambda m: every_class[:m])
        assert s["camera/emd_yaw"] == pytest.approx(expected, abs=1e-7), per_class
    assert expected > 0.1  # the prior's yaws are spread: the collapse is not a small distance
