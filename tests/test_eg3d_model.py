"""The EG3D family on our parts: parameter counts of the official configs, the compositing rule
against a per-ray loop, the super-resolution's in-place quirk, and the API's guards."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.config import get_preset
from core.kernels.reference import composite_midpoint
from core.networks.eg3d import EG3DGenerator, build
from core.render.sampling import importance_eg3d


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("preset,total,sr", [("eg3d_ffhq512", 30_662_136, 1_649_578),
                                             ("eg3d_afhq512", 30_662_136, 1_649_578),
                                             ("eg3d_shapenet128", 29_587_512, 574_954)])
def test_parameter_counts_of_the_official_configs(preset, total, sr):
    with torch.device("meta"):
        G = build(get_preset(preset))
    assert isinstance(G, EG3DGenerator)
    assert _count(G) == total and _count(G.superresolution) == sr
    assert _count(G.mapping_network) == 800_768 and _count(G.synthesis) == 28_207_533 and _count(G.decoder) == 4_257


def test_midpoint_compositing_against_a_per_ray_loop():
    torch.manual_seed(0)
    rgb, raw = torch.randn(3, 7, 5, dtype=torch.float64), torch.randn(3, 7, dtype=torch.float64) * 3
    t = torch.sort(torch.rand(3, 7, dtype=torch.float64) + 2, dim=-1).values
    out = composite_midpoint(rgb, raw, t)
    for r in range(3):
        trans, acc, acc_w, acc_d = 1.0, torch.zeros(5, dtype=torch.float64), 0.0, 0.0
        for k in range(6):
            sigma = math.log1p(math.exp((raw[r, k] + raw[r, k + 1]).item() / 2))
            a = 1 - math.exp(-sigma * (t[r, k + 1] - t[r, k]).item())
            w = a * trans
            acc += w * (rgb[r, k] + rgb[r, k + 1]) / 2
            acc_w += w
            acc_d += w * (t[r, k] + t[r, k + 1]).item() / 2
            trans *= 1 - a + 1e-10
        assert torch.allclose(out["rgb"][r], acc) and abs(out["opacity"][r].item() - acc_w) < 1e-12
        want_depth = min(max(acc_d / acc_w, t.min().item()), t.max().item())
        assert abs(out["depth"][r].item() - want_depth) < 1e-12


def test_importance_levels_follow_the_smoothed_weights():
    """All weight on interval 5 of 10: smoothed, the interior weights are 0.01 except 0.51, 1.01, 0.51
    over the bins mids[3]..mids[6] (the bins are the midpoints without the last, the weights
    without the first and last), so 2.03 / 2.08 of the fine depths land there."""
    t = torch.linspace(2.0, 3.0, 11)[None]
    w = torch.zeros(1, 10)
    w[0, 5] = 1.0
    fine = importance_eg3d(t, w, 64, deterministic=True)
    mids = 0.5 * (t[0, 1:] + t[0, :-1])
    inside = ((fine >= mids[3]) & (fine <= mids[6])).float().mean().item()
    assert abs(inside - 2.03 / 2.08) < 1.5 / 64 and fine.min() >= mids[0] and fine.max() <= mids[-2]


def _tiny(**gen):
    cfg = get_preset("eg3d_demo")
    g = cfg.generator
    g.z_dim = g.w_dim = 16
    g.plane_res, g.channel_base, g.channel_max = 8, 64, 8
    g.sr_channels = (8, 4)
    cfg.render.num_coarse = cfg.render.num_fine = 6
    for k, v in gen.items():
        setattr(g, k, v)
    return cfg


def test_raw_image_as_returned_when_no_resize_happens():
    """At the SR's input resolution EG3D adds block0's ToRGB into the raw image it returns; at any
    other resolution it returns the raw render itself."""
    torch.manual_seed(0)
    G = build(_tiny()).eval()
    with torch.no_grad():
        w = G.mapping(torch.randn(2, 16))
        planes = G.planes(w)
        cams = G.default_cameras(2)
        seen = {}
        hook = G.superresolution.block0.torgb.register_forward_hook(lambda m, i, o: seen.__setitem__("y", o))
        same = G.render(planes, cams, w=w, neural_res=32)  # the SR input of a 64^2 2x model
        hook.remove()
        other = G.render(planes, cams, w=w, neural_res=16)
    assert torch.allclose(same["image_raw_returned"], same["image_raw"] + seen["y"])
    assert not torch.allclose(same["image_raw_returned"], same["image_raw"])
    assert torch.equal(other["image_raw_returned"], other["image_raw"])
    assert same["image"].shape == other["image"].shape == (2, 3, 64, 64)
    assert other["depth"].shape == (2, 1, 16, 16)


def test_background_and_conditioning():
    torch.manual_seed(0)
    G = build(_tiny(pose_cond=False)).eval()
    z = torch.randn(2, 16)
    with torch.no_grad():
        a = G.mapping(z, pose=torch.tensor([[0.1, 1.0], [0.2, 1.3]]))
        b = G.mapping(z)
    assert torch.equal(a, b)  # without pose conditioning the label is zeros
    G = build(_tiny(pose_cond=True)).eval()
    with torch.no_grad():
        a = G.mapping(z, pose=torch.tensor([[0.1, 1.0], [0.2, 1.3]]))
        b = G.mapping(z)
        planes = G.planes(b)
        out = G.render(planes, G.default_cameras(2), w=b, background="white")
        # every feature channel shows the background where the rays are empty
        alpha = out["opacity"]
        floor = out["image_feature"] - (1 - alpha)
    assert not torch.equal(a, b)
    assert (floor <= alpha * 1.002 + 1e-5).all() and (floor >= -alpha * 1.002 - 1e-5).all()


def test_guards():
    G = build(_tiny()).eval()
    w = G.mapping(torch.randn(1, 16))
    planes = G.planes(w)
    with pytest.raises(ValueError, match="w=w"):
        G.render(planes, G.default_cameras(1))
    with pytest.raises(ValueError, match="25"):
        G.mapping(torch.randn(1, 16), torch.zeros(1, 3))
    cfg = _tiny()
    cfg.generator.c_dim = 3
    with pytest.raises(ValueError, match="class labels"):
        build(cfg)


def test_lookup_matches_grid_sample():
    """EG3D's lookup (xy, xz, zx planes, align_corners False, zeros outside) against grid_sample."""
    from core.kernels import reference
    torch.manual_seed(0)
    planes = torch.randn(2, 3, 5, 7, 6, dtype=torch.float64)
    pts = (torch.rand(2, 50, 3, dtype=torch.float64) * 2 - 1) * 0.7
    x = pts / 0.5
    want = sum(F.grid_sample(planes[:, k], uv[:, None], mode="bilinear", padding_mode="zeros",
                             align_corners=False)[:, :, 0].transpose(1, 2)
               for k, uv in enumerate([x[..., [0, 1]], x[..., [0, 2]], x[..., [2, 0]]])) / 3
    assert (reference.triplane_sample(planes, pts, 0.5, "eg3d") - want).abs().max() < 1e-12
