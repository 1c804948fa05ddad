"""The renderer against closed forms: a sphere of constant density seen along many rays."""

import math

import pytest
import torch

from core.render.renderer import render_rays, render_rays_chunked

A, K = 0.5, 3.0  # sphere radius and density
COLOR = torch.tensor([0.2, -0.3, 0.5], dtype=torch.float64)


def sphere_field(points):
    inside = (points.norm(dim=-1) < A).to(points.dtype)
    return COLOR.to(points).expand(*points.shape[:-1], 3), K * inside


def rays_with_impact(b_values, dist=2.0):
    """Rays from (0, 0, dist) towards -z, offset sideways by the impact parameter b."""
    b = torch.as_tensor(b_values, dtype=torch.float64)
    origins = torch.stack([b, torch.zeros_like(b), torch.full_like(b, dist)], -1)[None]
    dirs = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64).expand_as(origins).clone()
    return origins, dirs


def chord(b):
    return 2 * math.sqrt(max(A * A - b * b, 0.0))


@pytest.mark.parametrize("fine", [0, 128])
def test_sphere_opacity_depth_colour_match_chord_formula(fine):
    bs = [0.0, 0.1, 0.2, 0.3, 0.4, 0.45, 0.6, 0.9]
    origins, dirs = rays_with_impact(bs)
    near, far = torch.tensor([1.0], dtype=torch.float64), torch.tensor([3.0], dtype=torch.float64)
    out = render_rays(sphere_field, origins, dirs, near, far, num_coarse=512 if fine == 0 else 128, num_fine=fine,
                      far_opaque=False, deterministic=True)
    for i, b in enumerate(bs):
        L = chord(b)
        opacity = 1 - math.exp(-K * L)
        assert out["opacity"][0, i].item() == pytest.approx(opacity, abs=0.01), b
        torch.testing.assert_close(out["rgb"][0, i], COLOR * opacity, atol=0.01, rtol=0)
        if L > 0:
            t0 = 2.0 - L / 2  # entry distance
            depth = t0 + 1 / K - L * math.exp(-K * L) / (1 - math.exp(-K * L))
            assert out["depth"][0, i].item() == pytest.approx(depth, abs=0.01), b
            assert out["depth_raw"][0, i].item() == pytest.approx(depth * opacity, abs=0.025), b
        else:
            assert out["depth"][0, i].item() == pytest.approx(3.0)  # nothing hit: the far bound


def test_far_opaque_makes_every_ray_opaque_at_the_far_bound():
    origins, dirs = rays_with_impact([0.0, 0.9])
    near, far = torch.tensor([1.0], dtype=torch.float64), torch.tensor([3.0], dtype=torch.float64)

    def thin(points):  # almost empty space: only the infinite last interval makes it opaque
        return torch.zeros(*points.shape[:-1], 3, dtype=points.dtype), torch.full(points.shape[:-1], 1e-3,
                                                                                  dtype=points.dtype)
    out = render_rays(thin, origins, dirs, near, far, 16, 0, far_opaque=True, deterministic=True)
    torch.testing.assert_close(out["opacity"], torch.ones_like(out["opacity"]))
    out = render_rays(thin, origins, dirs, near, far, 16, 0, far_opaque=False, deterministic=True)
    assert out["opacity"].max() < 0.01  # 1 - exp(-1e-3 * 2) ~ 0.002


def test_chunking_bounds_points_per_call_and_changes_nothing():
    origins, dirs = rays_with_impact(torch.linspace(0, 0.6, 100).tolist())
    near, far = torch.tensor([1.0], dtype=torch.float64), torch.tensor([3.0], dtype=torch.float64)
    sizes = []

    def spy(points):
        sizes.append(points.shape[1])
        return sphere_field(points)
    kw = dict(num_coarse=16, num_fine=16, far_opaque=False, deterministic=True)
    full = render_rays(sphere_field, origins, dirs, near, far, **kw)
    chunked = render_rays_chunked(spy, origins, dirs, near, far, chunk_rays=7, **kw)
    assert max(sizes) <= 7 * 16
    for k in full:
        torch.testing.assert_close(chunked[k], full[k])
