"""Official EpiGRAF snapshots: opened without running their code, and computing what the official code computes.

The fixtures in tests/fixtures/ were written by the official code (universome/epigraf at bda8d47,
CPU, float32): two small snapshots pickled exactly as its training loop pickles them (storages
tagged 'cuda:0', the embedded module source replaced by a placeholder), and the official G_ema's
outputs for fixed inputs (see tests/fixtures/README.md). Tolerances are near float32 rounding.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.cameras import from_angles
from core.checkpoint import load_generator

FIX = Path(__file__).parent / "fixtures"


def _expected(name):
    e = np.load(FIX / f"expected_{name}_tiny.npz", allow_pickle=False)
    return e, json.loads(str(e["meta_json"]))


@pytest.fixture(scope="module", params=["megascans", "ffhq_bg"])
def imported(request):
    name = request.param
    G, info = load_generator(str(FIX / f"snapshot_{name}_tiny.pkl"))
    e, meta = _expected(name)
    return name, G, info, e, meta


def test_config_is_read_from_the_snapshot(imported):
    name, G, info, e, meta = imported
    g, r, c = G.cfg.generator, G.cfg.render, G.cfg.camera
    assert info["meta"]["source_kind"] == "official-epigraf"
    assert (g.c_dim, g.pose_cond, g.w_dim, g.plane_res, g.plane_channels) == (
        meta["c_dim"], meta["camera_cond"], meta["w_dim"], meta["tp_res"], meta["feat_dim"])
    assert g.cube_scale == pytest.approx(meta["cube_scale"]) and g.density_shift == meta["density_shift"]
    assert (c.near, c.far, c.radius, c.fov_deg) == (meta["near"], meta["far"], meta["radius"], meta["fov_deg_config"])
    assert (r.num_coarse, r.num_fine) == (meta["num_ray_steps"], meta["num_ray_steps"])
    assert r.background == ("white" if meta["white_back"] else "zero")
    assert g.conv_clamp == 256.0 and r.pdf_eps == 2e-5
    assert (g.bg_model == "sphere") == (meta["bg_model"] is not None)
    assert r.far_opaque == (meta["bg_model"] is None)
    if g.pose_cond:
        np.testing.assert_allclose([c.yaw_mean, c.pitch_mean], e["mean_camera_pose"][:2], atol=1e-7)


def _pose(e):
    return torch.from_numpy(e["cond_yaw_pitch"]) if "cond_yaw_pitch" in e else None


@torch.no_grad()
def test_mapping_matches_the_official_w(imported):
    name, G, info, e, meta = imported
    z, c = torch.from_numpy(e["z"]), torch.from_numpy(e["c"])
    np.testing.assert_allclose(G.mapping_network.w_avg.numpy(), e["w_avg"], atol=1e-7)
    for psi, key in ((1.0, "w_psi1"), (0.7, "w_psi07")):
        np.testing.assert_allclose(G.mapping(z, c, psi, pose=_pose(e)).numpy(), e[key], atol=1e-4, rtol=0)
    if "w_meanpose_psi1" in e:  # no pose: the official evaluation pose (mapping.mean_camera_pose)
        np.testing.assert_allclose(G.mapping(z, c, 1.0).numpy(), e["w_meanpose_psi1"], atol=1e-4, rtol=0)


@torch.no_grad()
def test_planes_and_field_match_the_official_ones(imported):
    name, G, info, e, meta = imported
    w = torch.from_numpy(e["w_psi07"])
    planes = G.planes(w)
    ref = torch.from_numpy(e["planes"]).reshape(1, 3, meta["feat_dim"], meta["tp_res"], meta["tp_res"])
    rel = ((planes[:1] - ref).abs().max() / ref.abs().max()).item()
    assert rel < 1e-3, rel
    points = torch.from_numpy(e["points"])[None].expand(2, -1, -1)
    rgb, sigma = G.query(planes, points)
    np.testing.assert_allclose(rgb.numpy(), e["raw_rgb"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(sigma.numpy(), e["sigma"], atol=1e-4, rtol=0)
    # with the official planes of latent 0 as well (the decoder and lookup alone)
    rgb0, sigma0 = G.query(ref, points[:1])
    np.testing.assert_allclose(rgb0.numpy(), e["raw_rgb"][:1], atol=1e-4, rtol=0)
    np.testing.assert_allclose(sigma0.numpy(), e["sigma"][:1], atol=1e-4, rtol=0)


def _cameras(G, e, k):
    b = e["z"].shape[0]
    return from_angles(torch.full((b,), float(e["cam_yaw"][k])), torch.full((b,), float(e["cam_pitch"][k])),
                       float(e["cam_radius"][k]), float(e["cam_fov_deg"][k]), cfg=G.cfg.camera)


@torch.no_grad()
def test_renders_match_the_official_renders(imported):
    """Deterministic renders (half-pixel centres, levels (k + 0.5)/n): image and sum(w t) depth."""
    name, G, info, e, meta = imported
    w = torch.from_numpy(e["w_psi07"])
    planes = G.planes(w)
    res = meta["render_res"]
    for k in range(len(e["cam_yaw"])):
        out = G.render(planes, _cameras(G, e, k), resolution=res, w=w)
        np.testing.assert_allclose(out["image"].numpy(), e["image"][:, k], atol=2e-3, rtol=0)
        np.testing.assert_allclose(out["depth_raw"].numpy(), e["depth"][:, k], atol=2e-3, rtol=0)
        if "image_fg" in e:  # the background model: its own colour, and the foreground alone
            np.testing.assert_allclose(out["background"].numpy(), e["image_bg_only"][:, k], atol=2e-3, rtol=0)
            fg = G.render(planes, _cameras(G, e, k), resolution=res, show_background=False)
            np.testing.assert_allclose(fg["image"].numpy(), e["image_fg"][:, k], atol=2e-3, rtol=0)
            assert "background" not in fg
