"""The visibility surface (core.geometry.visibility) against independent oracles: a per-node loop
that walks each grid line back to the box, the closed-form half-light depth of a linear-ramp shell,
and shapes whose topology is known (a torn shell that must close, a cup whose well and a torus
whose hole must stay open)."""

import math

import numpy as np
import pytest
import torch

from core.geometry import Box, density_grid, extract_mesh
from core.geometry.grid import DensityGrid
from core.geometry.visibility import DIRECTIONS, directional_transmittance, occlusion, occlusion_grid, surface_grid

HALF = 0.3
RES = 64
COS_WORST = 0.88  # the largest angle between a unit vector and the nearest of the 26 directions is 27.6 deg


def loop_transmittance(sigma, spacing, d, p):
    """Walk from node p against d until the upstream node leaves the grid, summing trapezoids."""
    length = math.sqrt(sum((di * h) ** 2 for di, h in zip(d, spacing)))
    tau, q = 0.0, tuple(p)
    while True:
        up = tuple(a - b for a, b in zip(q, d))
        if not all(0 <= u < n for u, n in zip(up, sigma.shape)):
            return math.exp(-tau)
        tau += 0.5 * (float(sigma[up]) + float(sigma[q])) * length
        q = up


def test_transmittance_matches_a_loop_along_each_grid_line():
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0, 3, size=(5, 6, 7)).astype(np.float32)
    sigma[rng.random(sigma.shape) < 0.3] = 0
    spacing = (0.11, 0.07, 0.13)  # not cubic: each direction has its own step length
    best = np.zeros(sigma.shape)
    for d in DIRECTIONS:
        got = directional_transmittance(sigma, spacing, d)
        want = np.array([loop_transmittance(sigma, spacing, d, p)
                         for p in np.ndindex(sigma.shape)]).reshape(sigma.shape)
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-7, err_msg=f"direction {d}")
        best = np.maximum(best, want)
    np.testing.assert_allclose(occlusion(sigma, spacing), 1 - best, rtol=2e-5, atol=1e-6)


def test_direction_and_kind_are_checked():
    with pytest.raises(ValueError):
        directional_transmittance(np.zeros((3, 3, 3)), (1, 1, 1), (0, 0, 0))
    raw = DensityGrid(np.zeros((4, 4, 4), np.float32), Box.cube(1.0), "raw")
    with pytest.raises(ValueError, match="activated"):
        occlusion_grid(raw)


def inside_mesh(mesh, points):
    """Point containment by the generalised winding number: the triangles' solid angles seen from
    each point (Van Oosterom and Strackee), summed over 4 pi; 1 inside a closed outward mesh, 0 outside."""
    tri = np.asarray(mesh.vertices)[np.asarray(mesh.faces)]  # [F, 3, 3]
    out = []
    for q in np.asarray(points, np.float64):
        a, b, c = (tri[:, i] - q for i in range(3))
        la, lb, lc = (np.linalg.norm(v, axis=1) for v in (a, b, c))
        num = np.einsum("ij,ij->i", a, np.cross(b, c))
        den = la * lb * lc + np.einsum("ij,ij->i", a, b) * lc + np.einsum("ij,ij->i", b, c) * la \
            + np.einsum("ij,ij->i", c, a) * lb
        out.append(np.sum(2 * np.arctan2(num, den)) / (4 * math.pi) > 0.5)
    return np.array(out)


def _radius(p):
    return p.norm(dim=-1)


def ramp_shell(k, r0, r1, dip=None):
    """sigma = k (r1 - r) on r0 < r < r1 (a shell whose density grows linearly inwards from its outer
    surface), 0 elsewhere; `dip(points)` in [0, 1] scales it (a torn place)."""
    def field(p):
        r = _radius(p)
        s = (k * (r1 - r)).clamp_min(0) * ((r - r0) / 0.004).clamp(0, 1)
        if dip is not None:
            s = s * dip(p)
        return torch.zeros(*p.shape[:-1], 3), s
    return field


def test_hollow_shell_meshes_as_a_ball_whose_surface_is_at_the_half_light_depth():
    """A ramp shell sigma = k (r1 - r): along a direction at angle theta to the normal, light is at
    half after depth x with k x^2 / (2 cos theta) = ln 2, so the surface lies between
    r1 - delta (radial) and r1 - delta sqrt(cos 27.6 deg) (the worst of 26 directions), delta = sqrt(2 ln 2 / k)."""
    r0, r1, delta = 0.12, 0.2, 0.02
    k = 2 * math.log(2) / delta ** 2
    grid = density_grid(ramp_shell(k, r0, r1), Box.cube(HALF), RES)
    h = grid.spacing[0]
    hollow = extract_mesh(grid, 0.25 * k * (r1 - r0), keep_components=0)
    assert len(hollow.split(only_watertight=False)) == 2  # an outer and an inner surface
    assert not inside_mesh(hollow, [[0.0, 0.0, 0.0]])[0]

    solid = extract_mesh(occlusion_grid(grid), 0.5)
    assert solid.is_watertight and solid.euler_number == 2
    assert inside_mesh(solid, [[0.0, 0.0, 0.0]])[0]
    r = np.linalg.norm(solid.vertices, axis=1)
    lo, hi = r1 - delta - h / 2, r1 - delta * math.sqrt(COS_WORST) + h / 2
    assert lo < r.min() and r.max() < hi, (r.min(), r.max(), lo, hi)
    assert solid.volume == pytest.approx(4 / 3 * math.pi * np.mean(r) ** 3, rel=0.03)


def test_torn_shell_is_closed_where_it_is_still_opaque():
    """The shell's density drops to a fifth on its +z cap: a density level above that tears the cap open
    (a bowl), but the cap still blocks the light (k/5 x^2/2 = ln 2 at x = 0.045 < thickness 0.08), so
    the visibility surface is a closed ball."""
    r0, r1, k = 0.12, 0.2, 3466.0

    def dip(p):
        return 1 - 0.8 * ((p[..., 2] / _radius(p).clamp_min(1e-6) - 0.5) / 0.2).clamp(0, 1)

    grid = density_grid(ramp_shell(k, r0, r1, dip), Box.cube(HALF), RES)
    torn = extract_mesh(grid, 0.3 * k * (r1 - r0))  # the largest part: a bowl open at the top
    assert not inside_mesh(torn, [[0.0, 0.0, 0.0]])[0]
    ball_volume = 4 / 3 * math.pi * r1 ** 3
    assert torn.volume < 0.5 * ball_volume
    solid = extract_mesh(occlusion_grid(grid), 0.5)
    assert solid.is_watertight and solid.euler_number == 2
    assert inside_mesh(solid, [[0.0, 0.0, 0.0], [0.0, 0.0, 0.1]]).all()
    assert solid.volume > 0.6 * ball_volume


def sharp(inside):
    """A hard-edged solid (sdf-like `inside` > 0 within): a step far sharper than a cell (so the nodes
    sample it as 0 or 2000), opaque within a cell (2000 * cell = 19 optical depths)."""
    def field(p):
        return torch.zeros(*p.shape[:-1], 3), 1000.0 * (1 + torch.tanh(inside(p) / 0.0005))
    return field


def test_cup_well_stays_open():
    ro, ri, z0, zb, z1 = 0.2, 0.14, -0.2, -0.14, 0.2  # outer/inner radius, bottom, bottom's top, rim

    def inside(p):
        rho = p[..., :2].norm(dim=-1)
        outer = torch.minimum(ro - rho, torch.minimum(p[..., 2] - z0, z1 - p[..., 2]))
        well = torch.minimum(ri - rho, p[..., 2] - zb)
        return torch.minimum(outer, -well)

    grid = density_grid(sharp(inside), Box.cube(HALF), RES)
    mesh = extract_mesh(surface_grid(grid, "visibility"), 0.5)
    assert mesh.is_watertight and mesh.euler_number == 2
    inside_pts = [[0.17, 0.0, 0.0], [0.0, 0.0, -0.17]]  # in the wall, in the bottom
    well_pts = [[0.0, 0.0, 0.0], [0.1, 0.0, -0.1], [0.0, 0.0, 0.19]]
    assert inside_mesh(mesh, inside_pts).all()
    assert not inside_mesh(mesh, well_pts).any()
    material = math.pi * (ro ** 2 - ri ** 2) * (z1 - zb) + math.pi * ro ** 2 * (zb - z0)
    assert mesh.volume == pytest.approx(material, rel=0.04)


def test_torus_hole_stays_open():
    big, small = 0.17, 0.07

    def inside(p):
        rho = p[..., :2].norm(dim=-1)
        return small - torch.stack([rho - big, p[..., 2]], -1).norm(dim=-1)

    grid = density_grid(sharp(inside), Box.cube(HALF), RES)
    mesh = extract_mesh(occlusion_grid(grid), 0.5)
    assert mesh.is_watertight and mesh.euler_number == 0  # genus 1
    assert not inside_mesh(mesh, [[0.0, 0.0, 0.0]])[0]
    assert mesh.volume == pytest.approx(2 * math.pi ** 2 * big * small ** 2, rel=0.04)


def test_cli_visibility_surface_and_its_errors(tmp_path, capsys):
    import mrcfile

    from core.errors import cli_main
    from core.extract_mesh import main
    rc = main(["--ckpt", "random:demo", "--seeds", "1", "--res", "32", "--surface", "visibility",
               "--format", "ply,mrc", "--outdir", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "seed 1: auto level" in out and "occlusion 0 .." in out
    with mrcfile.open(tmp_path / "seed0001.mrc") as m:  # the volume is the density; the label has the mesh's level
        labels = [bytes(x) for x in m.header.label[: m.header.nlabl]]
        assert b"activated density" in labels[1]
        assert any(b"mesh: visibility surface at occlusion" in x for x in labels)
        assert not any(b"iso-level used for the mesh" in x for x in labels)
    for bad, says in ((["--raw-level", "25"], "--raw-level"), (["--level", "3"], "occlusion in (0, 1)")):
        rc = cli_main(main)(["--ckpt", "random:demo", "--res", "32", "--surface", "visibility", *bad,
                             "--outdir", str(tmp_path / "bad")])
        err = capsys.readouterr().err
        assert rc == 2 and says in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_occlusion_on_cuda_equals_cpu():
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0, 40, size=(48, 40, 56)).astype(np.float32)
    spacing = (0.01, 0.012, 0.009)
    np.testing.assert_allclose(occlusion(sigma, spacing, "cuda"), occlusion(sigma, spacing, "cpu"), atol=2e-6)


def test_fine_grids_choose_their_level_on_a_probe_of_the_same_surface():
    """Above PROBE_MAX_RES the automatic level comes from a PROBE_RES grid of the same box and surface
    (the CLI and the viewer share this path); the fine grid's own values are not read."""
    from core.checkpoint import load_generator
    from core.geometry import generator_level, separable_grid
    from core.geometry.level import PROBE_MAX_RES, PROBE_RES, surface_level
    from core.runtime import z_from_seed
    G, _ = load_generator("random:demo")
    with torch.no_grad():
        planes = G.planes(G.mapping(z_from_seed(2, G.cfg.generator.z_dim)))
    box = Box.cube(G.cfg.generator.cube_scale)
    fine = PROBE_MAX_RES + 8
    probe = separable_grid(G, planes, box, PROBE_RES)
    for surface, want_grid in (("density", probe), ("visibility", occlusion_grid(probe))):
        kind = want_grid.kind
        unread = DensityGrid(np.full((fine,) * 3, np.nan, np.float32), box, kind)
        assert surface_level(G, planes, unread, surface) == generator_level(G, planes, want_grid)
