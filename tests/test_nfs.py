"""3DGP's non-flatness score: the histogram formula at its bounds, the masked expected depth against
the renderer and a closed-form oracle, and the metric through compute_metrics and the CLI."""

from __future__ import annotations

import math

import pytest
import torch

from core.cameras import from_angles
from core.checkpoint import build_generator
from core.kernels.reference import composite
from core.metrics.evaluate import compute_metrics, parse_metrics
from core.metrics.nfs import compute_nfs, masked_depth, nfs_from_depths, quantile_rows
from tests.conftest import tiny_config

# ------------------------------------------------------------------------------------------------
# The formula


def test_flat_depth_scores_one():
    for value in (0.75, 0.9, 1.25, 3.0):  # beyond far: clamped into the last bin, still one bin
        assert nfs_from_depths(torch.full((3, 8, 8), value), 0.75, 1.25) == pytest.approx(1.0, abs=1e-12)


def test_depth_spread_over_all_bins_scores_the_bin_count():
    near, far, bins = 0.75, 1.25, 64
    centres = near + (torch.arange(bins) + 0.5) / bins * (far - near)
    depth = centres.repeat(4).reshape(1, 16, 16).expand(2, 16, 16)  # each bin 4 times per image
    assert nfs_from_depths(depth, near, far, bins) == pytest.approx(64.0, abs=1e-3)
    edges = near + torch.arange(bins) / bins * (far - near)  # left edges land in their own bin
    assert nfs_from_depths(edges[None], near, far) == pytest.approx(64.0, abs=1e-3)


def test_two_equal_bins_score_two_and_images_are_averaged():
    half = torch.cat([torch.full((32,), 0.5), torch.full((32,), 2.0)]).reshape(1, 8, 8)  # clamped to near, far
    assert nfs_from_depths(half, 0.75, 1.25) == pytest.approx(2.0, abs=1e-12)
    both = torch.cat([torch.full((1, 8, 8), 1.0), half])
    assert nfs_from_depths(both, 0.75, 1.25) == pytest.approx(1.5, abs=1e-12)
    # entropy of a 3:1 split, and per-image bounds
    skew = torch.cat([torch.full((48,), 1.0), torch.full((16,), 1.2)]).reshape(1, 8, 8)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert nfs_from_depths(skew, 0.75, 1.25) == pytest.approx(math.exp(h), abs=1e-12)
    assert nfs_from_depths(torch.cat([skew, skew + 1]), torch.tensor([0.75, 1.75]),
                           torch.tensor([1.25, 2.25])) == pytest.approx(math.exp(h), abs=1e-12)


def test_quantile_rows_matches_torch_quantile():
    x = torch.rand(3, 1001)
    for q in (0.0, 0.3, 0.5, 1.0):
        torch.testing.assert_close(quantile_rows(x, q), torch.quantile(x, q, dim=1))
    x = torch.rand(2, 10)
    torch.testing.assert_close(quantile_rows(x, 0.5), torch.quantile(x, 0.5, dim=1))


# ------------------------------------------------------------------------------------------------
# The masked expected depth


def test_unmasked_depth_is_the_renderers_depth():
    cfg = tiny_config(stop_transmittance=0.0, skip_empty=False, fused_march=False)
    G = build_generator(cfg).eval()
    with torch.no_grad():
        w = G.mapping(torch.randn(2, cfg.generator.z_dim))
        planes = G.planes(w)
        cams = G.default_cameras(2)
        ours = masked_depth(G, planes, cams, 12, samples=10, quantile=0.0)
        ref = G.render(planes, cams, resolution=12, num_coarse=10, num_fine=0, deterministic=True)["depth"]
    torch.testing.assert_close(ours, ref[:, 0], rtol=1e-5, atol=1e-5)


class SlabField:
    """A stand-in G: haze of varying density everywhere and a dense slab |z| < 0.05 (closed form)."""

    def __init__(self):
        self.cfg = tiny_config()

    def query(self, planes, pts):
        z = pts[..., 2]
        haze = 1.0 + torch.sin(40 * pts[..., 0]) * torch.cos(30 * pts[..., 1]) + 0.5 * torch.sin(25 * z)
        sigma = torch.where(z.abs() < 0.05, torch.full_like(z, 50.0), haze.clamp_min(0))
        return pts[..., :0], sigma


def test_masked_depth_zeroes_each_images_lower_half_of_densities():
    G = SlabField()
    cams = from_angles(torch.tensor([0.3, -0.5]), torch.tensor([1.4, 1.7]), 1.0, 30.0, cfg=G.cfg.camera)
    res, s = 6, 24
    planes = torch.zeros(2, 1)
    got = masked_depth(G, planes, cams, res, samples=s, quantile=0.5)
    # oracle: per image, the median of all its samples' densities; samples below it get density 0
    from core.render.rays import make_rays
    o, d = make_rays(cams, res)
    steps = torch.linspace(0, 1, s)
    for i in range(2):
        t = (cams.near[i] + (cams.far[i] - cams.near[i]) * steps).expand(res * res, s)
        _, sigma = G.query(None, o[i, :, None] + d[i, :, None] * t[..., None])
        cut = torch.quantile(sigma.flatten(), 0.5)
        masked = torch.where(sigma < cut, 0.0, sigma)
        assert 0.4 < (masked == 0).float().mean() < 0.6
        want = composite(sigma[..., None], masked, t, far_opaque=G.cfg.render.far_opaque)["depth"]
        torch.testing.assert_close(got[i].flatten(), want, rtol=1e-5, atol=1e-5)
    unmasked = masked_depth(G, planes, cams, res, samples=s, quantile=0.0)
    assert (got - unmasked).abs().max() > 1e-3  # the cut moves the depth


# ------------------------------------------------------------------------------------------------
# The metric


def test_compute_nfs_on_a_tiny_random_model():
    cfg = tiny_config()
    G = build_generator(cfg).eval()
    score, depth = compute_nfs(G, n=5, batch=2, return_depths=True)
    assert 1.0 <= score <= 64.0 and depth.shape == (5, 16, 16)
    cam = cfg.camera
    assert depth.min() >= cam.near - 1e-6 and depth.max() <= cam.far + 1e-6
    # seeded and, with a per-image quantile, independent of the batch size
    assert compute_nfs(G, n=5, batch=5) == pytest.approx(score, abs=1e-9)
    assert compute_nfs(G, n=5, batch=5, seed=1) != pytest.approx(score, abs=1e-9)
    # explicit cameras (e.g. a learned camera distribution's mean)
    assert compute_nfs(G, n=5, batch=2, cameras=G.default_cameras(1)) == pytest.approx(score, abs=1e-9)


def test_compute_nfs_conditional_without_a_dataset():
    cfg = tiny_config()
    cfg.generator.c_dim = 3
    G = build_generator(cfg).eval()
    assert 1.0 <= compute_nfs(G, n=3, batch=3) <= 64.0


def test_nfs_is_a_registered_metric():
    assert parse_metrics("nfs256,fid2k") == [("nfs256", "nfs", 256), ("fid2k", "fid", 2000)]
    G = build_generator(tiny_config()).eval()
    out = compute_metrics(G, None, ["nfs4"], "cpu", batch=2, progress=False)  # no dataset, no Inception
    assert set(out) == {"nfs4"} and out["nfs4"] == pytest.approx(compute_nfs(G, n=4, batch=2), abs=1e-9)


def test_metrics_cli_nfs_without_data(capsys):
    from core.metrics.__main__ import main

    assert main(["--ckpt", "random:demo", "--metrics", "nfs4", "--device", "cpu", "--batch", "2"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("nfs4"))
    assert 1.0 <= float(line.split()[1]) <= 64.0
