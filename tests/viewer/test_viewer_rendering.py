"""The viewer's renders against core's: tiles equal G.render, planes cached per latent, sphere normals."""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from viewer_testlib import tiny_model

from core import cameras as camlib
from core.images import image_to_uint8
from core.runtime import z_from_seed
from viewer.camera import OrbitCamera, preset
from viewer.latent import LatentSpec
from viewer.rendering import Quality, RenderEngine, RenderRequest, ViewSpec, surface_normals, tile_size


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_tile_size_divides():
    for r in (16, 48, 64, 96, 100, 192, 256, 384, 512):
        t = tile_size(r, 64)
        assert r % t == 0 and t <= 64
    assert tile_size(32, 64) == 32


def test_tiled_render_matches_core(model):
    G = model.G
    cam = OrbitCamera(0.4, 1.2, 1.1, 28.0, [0.0, 0.05, 0.0])
    req = RenderRequest(model, LatentSpec.from_seed(3, psi=0.8), ViewSpec(cam, "rgb", 32))
    res = RenderEngine().render(req, Quality(32, 8, 8), max_tile=8)  # 16 tiles
    w = G.mapping(z_from_seed(3, 16), psi=0.8)
    cams = camlib.from_angles(0.4, 1.2, 1.1, 28.0, (0.0, 0.05, 0.0), cfg=G.cfg.camera)
    ref = G.render(G.planes(w), cams, resolution=32, num_coarse=8, num_fine=8)
    assert np.abs(res.image.astype(int) - image_to_uint8(ref["image"][0]).astype(int)).max() <= 1
    assert np.allclose(res.depth, ref["depth"][0, 0].numpy(), atol=1e-4)
    assert np.allclose(res.opacity, ref["opacity"][0, 0].numpy(), atol=1e-5)
    assert torch.equal(res.w, w)


def test_camera_move_reuses_planes(model, monkeypatch):
    eng = RenderEngine()
    calls = []
    orig = model.G.planes
    monkeypatch.setattr(model.G, "planes", lambda w, *a: calls.append(1) or orig(w, *a))
    spec = LatentSpec.from_seed(1)
    for yaw in (0.0, 0.3, 0.6):
        r = eng.render(RenderRequest(model, spec, ViewSpec(OrbitCamera(yaw=yaw), "rgb", 16)), Quality(16, 4, 4))
    assert len(calls) == 1 and r.planes_cached
    eng.render(RenderRequest(model, LatentSpec.from_seed(2), ViewSpec(OrbitCamera(), "rgb", 16)), Quality(16, 4, 4))
    assert len(calls) == 2


def test_cancel_between_tiles(model):
    req = RenderRequest(model, LatentSpec.from_seed(0), ViewSpec(OrbitCamera(), "rgb", 32))
    seen = []
    assert RenderEngine().render(req, Quality(32, 4, 4), lambda: seen.append(1) or len(seen) > 2, max_tile=8) is None
    assert len(seen) == 3


class SphereField(torch.nn.Module):
    """A stand-in generator whose density is a soft ball of radius R at the origin."""

    R = 0.3

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg

    def query(self, planes, points):
        sigma = F.softplus(40.0 * (self.R - points.norm(dim=-1)))
        return torch.zeros_like(points), sigma


def test_normals_of_a_sphere(model):
    G = SphereField(model.cfg)
    cam = preset("mean", model.cfg.camera)
    cam.yaw, cam.pitch = 0.6, 1.1
    cams = cam.to_cameras(model.cfg.camera)
    res = 24
    from core.render.rays import make_rays
    o, d = make_rays(cams, res)  # closed-form ray / sphere hit as the oracle
    b = (o * d).sum(-1)
    disc = b**2 - (o * o).sum(-1) + G.R**2
    hit = disc > 1e-3
    t = -b - disc.clamp_min(0).sqrt()
    n = surface_normals(G, None, cams, t.reshape(1, 1, res, res), res)  # [1, 3, r, r]
    p = o + d * t[..., None]
    expected = F.normalize(p, dim=-1) @ cams.cam2world[0, :3, :3]
    got = n.reshape(3, -1).T[None]
    cos = (got * expected).sum(-1)[hit]
    assert hit.sum() > 50 and float(cos.min()) > 0.999


def test_bench_smoke(tmp_path, capsys):
    from viewer_testlib import tiny_cfg

    from core.checkpoint import build_generator, save_checkpoint
    from viewer.bench import main

    cfg = tiny_cfg()
    save_checkpoint(tmp_path / "t.pt", cfg, build_generator(cfg))
    threads = torch.get_num_threads()
    try:
        assert main(["--ckpt", str(tmp_path / "t.pt"), "--res", "16", "--frames", "2", "--device", "cpu"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "time to first frame" in out and "| 16^2 |" in out and "adaptive resolution" in out


def test_background_model_tiles_and_switch():
    """A model with the background MLP: tiled renders equal core's with the background, and the render
    panel's switch leaves it out (core's show_background=False)."""
    from pathlib import Path

    from core.checkpoint import load_generator
    from viewer.rendering import LoadedModel

    pkl = Path(__file__).resolve().parents[1] / "fixtures" / "snapshot_ffhq_bg_tiny.pkl"
    G, info = load_generator(str(pkl))
    m = LoadedModel(G, info, str(pkl), torch.device("cpu"))
    cam = OrbitCamera(0.2, 1.5, 1.0, 12.0)
    cams = camlib.from_angles(0.2, 1.5, 1.0, 12.0, cfg=G.cfg.camera)
    w = G.mapping(z_from_seed(3, G.cfg.generator.z_dim))
    for show in (True, False):
        req = RenderRequest(m, LatentSpec.from_seed(3), ViewSpec(cam, "rgb", 16, show_bg_model=show))
        res = RenderEngine().render(req, Quality(16, 8, 8), max_tile=8)  # 4 tiles
        with torch.no_grad():
            ref = G.render(G.planes(w), cams, resolution=16, num_coarse=8, num_fine=8, w=w, show_background=show)
        assert np.abs(res.image.astype(int) - image_to_uint8(ref["image"][0]).astype(int)).max() <= 1, show
