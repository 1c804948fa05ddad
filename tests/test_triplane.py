"""Tri-plane lookup against a brute-force bilinear formula, point by point."""

import math

import torch

from core.kernels import triplane_sample as sample_triplanes


def bilinear(plane, u, v):
    """plane [C, H, W]; u, v in [-1, 1] (align_corners=True: -1 and 1 are the outer texel centres)."""
    c, h, w = plane.shape
    fx, fy = (u + 1) / 2 * (w - 1), (v + 1) / 2 * (h - 1)
    x0, y0 = math.floor(fx), math.floor(fy)
    out = torch.zeros(c, dtype=plane.dtype)
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - abs(fx - xi)) * (1 - abs(fy - yi))
            if 0 <= xi < w and 0 <= yi < h and weight > 0:
                out += weight * plane[:, yi, xi]
    return out


def test_sample_triplanes_matches_per_point_bilinear():
    torch.manual_seed(0)
    planes = torch.randn(2, 3, 4, 5, 7, dtype=torch.float64)
    scale = 0.4
    points = (torch.rand(2, 30, 3, dtype=torch.float64) * 2 - 1) * scale * 1.2  # some outside the cube
    got = sample_triplanes(planes, points, scale)
    for b in range(2):
        for n in range(30):
            x, y, z = (points[b, n] / scale).tolist()
            expected = (bilinear(planes[b, 0], x, y) + bilinear(planes[b, 1], x, z) + bilinear(planes[b, 2], y, z)) / 3
            torch.testing.assert_close(got[b, n], expected)


def test_planes_are_stored_channels_last_at_inference_and_the_lookup_keeps_no_cache():
    """G.planes at inference stores the planes channels-last, so the reference's gather table is a view
    of them (no copy per chunk, and no cache kept in the kernels); under autograd they stay as computed."""
    import core.kernels.reference as ref
    from core.checkpoint import build_generator
    from tests.conftest import tiny_config

    G = build_generator(tiny_config(), seed=0)
    w = G.mapping(torch.randn(2, 16))
    with torch.no_grad():
        p = G.planes(w)
    assert ref.is_channels_last(p) and ref.plane_table(p).data_ptr() == p.data_ptr()
    std = p.contiguous()
    assert not ref.is_channels_last(std) and ref.plane_table(std).data_ptr() != std.data_ptr()
    torch.testing.assert_close(ref.plane_table(std), ref.plane_table(p), rtol=0, atol=0)
    trained = G.planes(w)  # autograd records: the planes as the synthesis made them
    assert trained.requires_grad and trained.is_contiguous()
    assert not [k for k in vars(ref) if k.isupper() and "TABLE" in k]
