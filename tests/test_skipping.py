"""Empty-space skipping against closed forms: a constant-density sphere, a Gaussian blob and a thin
Gaussian shell, each rendered through its occupancy grid and compared with the optical depth
integrated by hand; plus the pieces (compositing with given intervals, the compacting march, the
folded decoder) against independent definitions."""

import math

import pytest
import torch

from core.kernels import reference
from core.render.march import march_compact
from core.render.occupancy import (
    OccupancyGrid,
    cells_from_nodes,
    density_threshold,
    field_node_density,
    grid_from_nodes,
    reach_half_size,
    skip_depths,
)
from core.render.renderer import Skip, render_rays

torch.set_default_dtype(torch.float32)
DT = torch.float64
NEAR, FAR = 1.0, 3.0  # rays start at z = 2 and look down -z: the field lives around the origin
COLOR = torch.tensor([0.2, -0.3, 0.5], dtype=DT)


def rays(b_values, dist=2.0):
    """Rays from (b, 0, dist) towards -z: impact parameter b from the origin."""
    b = torch.as_tensor(b_values, dtype=DT)
    origins = torch.stack([b, 0.3 * b, torch.full_like(b, dist)], -1)[None]
    dirs = torch.tensor([0.0, 0.0, -1.0], dtype=DT).expand_as(origins).clone()
    return origins, dirs


def impact(b):
    return math.hypot(b, 0.3 * b)


def sphere(radius=0.5, k=3.0):
    def field(points):
        inside = (points.norm(dim=-1) < radius).to(points.dtype)
        return COLOR.to(points).expand(*points.shape[:-1], 3), k * inside
    return field, lambda b: k * 2 * math.sqrt(max(radius ** 2 - impact(b) ** 2, 0.0))


def blob(amp=40.0, s=0.15):
    def field(points):
        return COLOR.to(points).expand(*points.shape[:-1], 3), amp * torch.exp(-points.pow(2).sum(-1) / (2 * s * s))
    # along the ray the density is amp e^{-b^2/2s^2} e^{-(t - 2)^2/2s^2}; [NEAR, FAR] holds it all
    return field, lambda b: amp * math.exp(-impact(b) ** 2 / (2 * s * s)) * s * math.sqrt(2 * math.pi)


SHELL_CENTRE = torch.tensor([0.013, 0.007, 0.021], dtype=DT)  # off the grid's nodes


def shell(radius=0.5, width=0.002, amp=200.0):
    def field(points):
        r = (points - SHELL_CENTRE.to(points)).norm(dim=-1)
        return COLOR.to(points).expand(*points.shape[:-1], 3), amp * torch.exp(-(r - radius) ** 2 / (2 * width ** 2))

    def tau(b):  # two crossings, each amp * width * sqrt(2 pi) / cos(angle to the normal)
        c = SHELL_CENTRE.tolist()
        cos = math.sqrt(1 - math.hypot(b - c[0], 0.3 * b - c[1]) ** 2 / radius ** 2)
        return 2 * amp * width * math.sqrt(2 * math.pi) / cos
    return field, tau


def field_grid(field, res=32, half=0.8, dilation=1, max_loss=1e-3) -> OccupancyGrid:
    cell = 2 * half / res
    lo = (-half, -half, -half)
    nodes = field_node_density(field, lo, cell, res + 1, "cpu", DT)
    return grid_from_nodes(nodes, lo, cell, density_threshold(max_loss, NEAR, FAR), dilation, 0.5)


def skip_for(field, grid, steps):
    def item_field(i, points):
        return field(points)
    return Skip(grid, steps, lambda o, d, t, deltas: march_compact(item_field, o, d, t, deltas, 0.0))


def render(field, bs, grid=None, steps=32, coarse=48, fine=48):
    o, d = rays(bs)
    near, far = torch.tensor([NEAR], dtype=DT), torch.tensor([FAR], dtype=DT)
    skip = skip_for(field, grid, steps) if grid is not None else None
    return render_rays(field, o, d, near, far, num_coarse=coarse, num_fine=fine, far_opaque=False,
                       deterministic=True, skip=skip)


@pytest.mark.parametrize("kind", ["sphere", "blob"])
def test_skipping_matches_closed_form_as_closely_as_the_dense_path(kind):
    """Opacity and colour along rays at many impact parameters: the skipping path with half the samples
    per ray (48) is as close to 1 - exp(-tau) as the dense 48 + 48 path, and close in absolute terms."""
    field, tau = sphere() if kind == "sphere" else blob()
    bs = [0.0, 0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.48, 0.6, 0.9]
    want = torch.tensor([1 - math.exp(-tau(b)) for b in bs], dtype=DT)
    dense = render(field, bs)
    skipped = render(field, bs, field_grid(field), steps=48)
    err_dense = (dense["opacity"][0] - want).abs()
    err_skip = (skipped["opacity"][0] - want).abs()
    assert err_skip.max() <= max(1.05 * err_dense.max(), 1e-3), (err_skip, err_dense)
    assert err_skip.mean() <= max(1.05 * err_dense.mean(), 1e-4)
    torch.testing.assert_close(skipped["rgb"][0], want[:, None] * COLOR, atol=3 * float(err_skip.max()) + 1e-9,
                               rtol=0)
    # beyond the field nothing is evaluated and nothing shows
    assert float(skipped["opacity"][0, -1]) < 1e-6


def test_thin_shell_is_kept_by_the_dilation_and_lost_without_it():
    """A shell 0.002 thick seen by a 32^3 grid (cells of 0.05): most of its grid nodes fall beside it.
    Every point along the rays where its density is above the threshold must lie in occupied cells
    of the (dilated) grid; without any dilation the grid would skip a good part of it."""
    field, _ = shell()
    thr = density_threshold(1e-3, NEAR, FAR)
    bs = torch.linspace(0.0, 0.45, 46).tolist()
    o, d = rays(bs)
    t = torch.linspace(NEAR, FAR, 40001, dtype=DT)
    pts = o[:, :, None, :] + d[:, :, None, :] * t[:, None]  # [1, R, T, 3]
    matters = field(pts.reshape(1, -1, 3))[1].reshape(pts.shape[:-1]) >= thr
    assert int(matters.sum()) > 1000

    grid = field_grid(field)
    assert bool(grid.lookup(pts)[matters].all()), "the dilated grid skips density above its threshold"
    bare = cells_from_nodes(field_node_density(field, grid.lo, grid.cell, grid.res + 1, "cpu", DT), thr, 0)
    bare = OccupancyGrid(bare, grid.density, grid.lo, grid.cell, thr, 0.0, False)
    assert float(bare.lookup(pts)[matters].float().mean()) < 0.9, "the shell should escape an undilated grid"


def test_skip_depths_tile_the_occupied_length():
    """A slab of occupied cells across the rays: every sample lies in it, the intervals add up to its
    thickness (in whole segments), the far sample is not evaluated, and a ray beside the slab gets
    nothing to evaluate."""
    res, half = 20, 1.0
    cell = 2 * half / res
    occ = torch.zeros(1, res, res, res, dtype=torch.bool)
    occ[:, :10, :, 8:12] = True  # x < 0, z in [-0.2, 0.2)
    grid = OccupancyGrid(occ, torch.zeros(1, res, res, res), (-half,) * 3, cell, 1.0, 0.0, False)
    o = torch.tensor([[[-0.5, 0.1, 2.0], [0.5, 0.1, 2.0]]], dtype=DT)
    d = torch.tensor([0.0, 0.0, -1.0], dtype=DT).expand_as(o).clone()
    near, far = torch.full((1, 2), NEAR, dtype=DT), torch.full((1, 2), FAR, dtype=DT)
    t, deltas = skip_depths(grid, o, d, near, far, 16, 1e-3, False)
    assert t.shape == deltas.shape == (1, 2, 17)
    z = 2.0 - t[0, 0, :-1]
    assert bool(((z >= -0.2 - 1e-9) & (z < 0.2 + 1e-9)).all()), z
    seg = (FAR - NEAR) / math.ceil((FAR - NEAR) / cell)
    assert abs(float(deltas[0, 0, :-1].sum()) - 0.4) <= seg + 1e-9
    assert bool((deltas[0, 0, :-1] > 0).all()) and float(deltas[0, 0, -1]) == 0.0
    assert bool((deltas[0, 1] == 0).all())  # beside the slab: nothing
    assert bool((t[0, 0, 1:] >= t[0, 0, :-1]).all())


def test_points_outside_the_grid_count_as_occupied():
    grid = OccupancyGrid(torch.zeros(1, 4, 4, 4, dtype=torch.bool), torch.zeros(1, 4, 4, 4), (0.0, 0.0, 0.0), 0.25,
                         0.5, 0.0, False)
    pts = torch.tensor([[[0.5, 0.5, 0.5], [1.5, 0.5, 0.5], [-0.1, 0.2, 0.2], [0.9, 0.9, 0.99]]])
    occ, dens = grid.lookup(pts, with_density=True)
    assert occ.tolist() == [[False, True, True, False]]
    assert dens.tolist() == [[0.0, 0.5, 0.5, 0.0]]


def test_threshold_bounds_the_transmittance_lost():
    """A ray through density just below the threshold over the whole [near, far] loses max_loss."""
    thr = density_threshold(1e-3, 0.75, 1.25)
    assert abs((1 - math.exp(-thr * 0.5)) - 1e-3) < 1e-12


def test_reach_covers_every_ray_point():
    """The cube of reach_half_size holds every sample point of cameras on the sphere of the prior."""
    from core.cameras import from_angles
    from core.config import CameraConfig
    from core.render.rays import make_rays
    cfg = CameraConfig(fov_deg=30.0, radius=1.0, near=0.75, far=1.25)
    half = reach_half_size(cfg)
    g = torch.Generator().manual_seed(0)
    yaw, pitch = torch.rand(16, generator=g) * 6.28, torch.rand(16, generator=g) * 3.1
    cams = from_angles(yaw, pitch, 1.0, 30.0, near=0.75, far=1.25)
    o, d = make_rays(cams, 16)
    for t in (0.75, 1.0, 1.25):
        assert float((o + t * d).abs().max()) <= half
    assert half < 0.6  # and not wastefully large


def test_composite_with_intervals_matches_a_per_ray_loop():
    g = torch.Generator().manual_seed(0)
    rgb = torch.randn(5, 7, 3, generator=g, dtype=DT)
    sigma = torch.rand(5, 7, generator=g, dtype=DT) * 4
    t = torch.sort(torch.rand(5, 7, generator=g, dtype=DT), -1).values
    deltas = torch.rand(5, 7, generator=g, dtype=DT) * 0.5 * (torch.rand(5, 7, generator=g) > 0.3)
    for stop in (0.0, 0.3):
        out = reference.composite_deltas(rgb, sigma, t, deltas, stop)
        for r in range(5):
            trans, col, op, dep = 1.0, torch.zeros(3, dtype=DT), 0.0, 0.0
            for s in range(7):
                a = 1 - math.exp(-float(sigma[r, s] * deltas[r, s]))
                w = trans * a if trans >= stop else 0.0
                col, op, dep = col + w * rgb[r, s], op + w, dep + w * float(t[r, s])
                trans *= 1 - a
            torch.testing.assert_close(out["rgb"][r], col)
            assert abs(float(out["opacity"][r]) - op) < 1e-12 and abs(float(out["depth_raw"][r]) - dep) < 1e-12


@pytest.mark.parametrize("stop", [0.0, 1e-3, 0.2])
def test_compacting_march_equals_evaluating_every_sample(stop):
    """march_compact (rounds, dead and skipped samples never evaluated) against evaluating the field
    at every sample and compositing with the same intervals."""
    g = torch.Generator().manual_seed(1)
    b, r, s = 2, 50, 21
    o = torch.randn(b, r, 3, generator=g, dtype=DT)
    d = torch.nn.functional.normalize(torch.randn(b, r, 3, generator=g, dtype=DT), dim=-1)
    t = torch.sort(torch.rand(b, r, s, generator=g, dtype=DT) * 3, -1).values
    deltas = torch.rand(b, r, s, generator=g, dtype=DT) * 0.3 * (torch.rand(b, r, s, generator=g) > 0.4)
    deltas[0, :5] = 0  # rays with nothing to evaluate
    scale = torch.tensor([1.0, 2.0], dtype=DT)

    def field(points):  # batch-dependent, smooth
        sig = torch.exp(-points.pow(2).sum(-1)) * 6 * scale[:, None]
        return torch.sin(points * 3), sig

    calls = []

    def item_field(i, points):
        calls.append(points.shape[1])
        c, sg = field(points.expand(2, -1, -1))
        return c[i:i + 1], sg[i:i + 1]

    got = march_compact(item_field, o, d, t, deltas, stop)
    pts = o[:, :, None] + d[:, :, None] * t[..., None]
    c, sg = field(pts.reshape(b, -1, 3))
    want = reference.composite_deltas(c.reshape(b, r, s, 3), sg.reshape(b, r, s), t, deltas, stop)
    for k in ("rgb", "opacity", "depth", "depth_raw", "weights"):
        torch.testing.assert_close(got[k], want[k])
    assert sum(calls) <= int((deltas > 0).sum())  # skipped samples are never evaluated


def test_folded_decoder_equals_the_decoder_module():
    """Folding the first layer into the planes: the same raw outputs as G.decode (the decoder module
    on the sampled features), to float rounding."""
    from core.config import get_preset
    from core.networks.generator import TriPlaneGenerator
    cfg = get_preset("demo")
    g = cfg.generator
    g.plane_res, g.channel_base, g.channel_max, g.z_dim, g.w_dim = 16, 256, 32, 16, 16
    G = TriPlaneGenerator(cfg).eval()
    gen = torch.Generator().manual_seed(0)
    planes = torch.randn(2, 3, g.plane_channels, 16, 16, generator=gen)
    pts = (torch.rand(2, 300, 3, generator=gen) * 2 - 1) * g.cube_scale * 1.2
    f_planes, f_params = reference.fold_first_layer(planes, G.decoder.params())
    assert f_params[0] is None and f_planes.shape[2] == g.decoder_hidden
    with torch.no_grad():
        rgb, sigma = reference.query_points(f_planes, pts, g.cube_scale, f_params, g.density_shift)
        raw = G.decode(planes, pts, impl="reference")
    torch.testing.assert_close(rgb, raw[..., :3], atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(sigma, torch.nn.functional.softplus(raw[..., 3] + g.density_shift), atol=2e-5,
                               rtol=1e-4)
