"""3DGP in the viewer: learned cameras turned into orbit cameras (same origin, direction and field of
view as core's camera), samples within the prior's bounds, and the D-depth mode against the adaptor
applied to core's own render."""

import math

import numpy as np
import pytest
import torch
from viewer_testlib import tiny_cfg

from core import cameras as camlib
from core.checkpoint import build_generator
from core.images import image_to_uint8
from core.networks.depth_adaptor import fake_expected_depth
from core.runtime import z_from_seed
from viewer.camera import OrbitCamera
from viewer.latent import LatentSpec
from viewer.learned_camera import mean_orbit, orbit_from_params, sample_orbit, summarise
from viewer.rendering import LoadedModel, Quality, RenderEngine, RenderRequest, ViewSpec


def _cfg():
    cfg = tiny_cfg()
    cam = cfg.camera
    cam.fov_dist, cam.fov_min, cam.fov_max = "uniform", 15.0, 35.0
    cam.lookat_dist, cam.lookat_radius_max = "ball", 0.1
    cam.dist, cam.yaw_std, cam.pitch_std = "uniform", 1.0, 0.5
    cfg.camera_gen.enabled = True
    cfg.depth.enabled = True
    return cfg


@pytest.fixture(scope="module")
def model():
    G = build_generator(_cfg(), seed=0).eval().requires_grad_(False)
    return LoadedModel(G, {"source": "tiny3dgp"}, "tiny3dgp", torch.device("cpu"))


def test_orbit_camera_sees_what_the_learned_camera_sees():
    cfg = _cfg().camera
    cfg.look_at = (0.02, -0.01, 0.03)
    params = camlib.sample_prior(cfg, 16, torch.Generator().manual_seed(0))
    want = camlib.params_to_cameras(params, cfg)
    for i in range(16):
        cam = orbit_from_params(params, cfg, i)
        got = cam.to_cameras(cfg)
        torch.testing.assert_close(got.cam2world[0, :3, :4], want.cam2world[i, :3, :4], atol=2e-5, rtol=0)
        assert math.isclose(float(got.fov[0]), float(want.fov[i]), rel_tol=1e-5)
        # the orbit's centre is the 3DGP camera's look-at point
        offset = camlib.angles_to_origins(params.lookat_yaw[i:i + 1], params.lookat_pitch[i:i + 1],
                                          params.lookat_radius[i:i + 1])[0]
        np.testing.assert_allclose(cam.look_at, (torch.tensor(cfg.look_at) + offset).numpy(), atol=1e-6)


def test_samples_and_mean_stay_in_the_prior_bounds(model):
    G = model.G
    bounds = camlib.prior_bounds(G.cfg.camera)
    for seed in range(5):
        cam = sample_orbit(G, None, seed)
        assert bounds["fov_deg"][0] - 1e-4 <= cam.fov_deg <= bounds["fov_deg"][1] + 1e-4
    mean = mean_orbit(G)
    assert bounds["fov_deg"][0] <= mean.fov_deg <= bounds["fov_deg"][1]
    s = summarise(G, n=256)
    lo, hi = bounds["fov_deg"]
    assert lo <= s.stats["fov (deg)"][0] <= hi and s.stats["fov (deg)"][1] > 0
    assert s.stats["look-at offset"][0] <= G.cfg.camera.lookat_radius_max


def test_d_depth_mode_is_the_adaptors_output_on_the_render(model):
    G = model.G
    cam = OrbitCamera(0.3, 1.4, 1.0, 25.0, [0.01, 0.0, 0.02])
    res = RenderEngine().render(RenderRequest(model, LatentSpec.from_seed(2), ViewSpec(cam, "ddepth", 16)),
                                Quality(16, 8, 8))
    cams = camlib.from_angles(0.3, 1.4, 1.0, 25.0, (0.01, 0.0, 0.02), cfg=G.cfg.camera)
    out = G.render(G.planes(G.mapping(z_from_seed(2, 16))), cams, resolution=16, num_coarse=8, num_fine=8)
    want = G.depth_adaptor(fake_expected_depth(out["depth_raw"], out["opacity"], cams.far), cams.near, cams.far)
    assert float(want.std()) > 0
    ref = image_to_uint8(want[0].clamp(-1, 1).expand(3, -1, -1))
    assert np.abs(res.image.astype(int) - ref.astype(int)).max() <= 1
    rgb = RenderEngine().render(RenderRequest(model, LatentSpec.from_seed(2), ViewSpec(cam, "rgb", 16)),
                                Quality(16, 8, 8))
    assert not np.array_equal(rgb.image, res.image)
