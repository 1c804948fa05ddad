"""Geometry extraction against independent oracles: analytic spheres, the volume renderer's
silhouette, file-format readers (trimesh, plyfile, mrcfile), a spy on the field for the memory
bound, and the CLI end to end."""

import io
import math

import numpy as np
import pytest
import torch
import trimesh

from core import cameras as camlib
from core.errors import UserError
from core.geometry import Box, auto_level, density_grid, export, extract_mesh, parse_box
from core.geometry.mesh import NoSurfaceError
from core.render.rays import make_rays
from core.render.renderer import render_rays

CENTER = torch.tensor([0.03, -0.02, 0.05])
R = 0.2


def ramp_sphere(points):
    """Density linear in the distance to CENTER (1000 per unit), 500 on the sphere of radius R;
    colour = the position (so colours are checkable)."""
    d = (points - CENTER.to(points)).norm(dim=-1)
    return (points / 0.3).clamp(-1, 1), 1000.0 * (R - d) + 500.0


@pytest.mark.parametrize("backend", ["pymcubes", "skimage"])
def test_sphere_vertices_on_radius_and_volume(backend):
    grid = density_grid(ramp_sphere, Box.cube(0.3), 64)
    mesh = extract_mesh(grid, 500.0, backend=backend, color_field=ramp_sphere, color_mode="surface")
    voxel = grid.spacing[0]
    r = np.linalg.norm(mesh.vertices - CENTER.numpy(), axis=1)
    assert np.abs(r - R).max() < voxel / 2
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * R ** 3, rel=0.02)  # positive: outward faces
    # normals point outwards, colours are the field's rgb at the vertices
    radial = (mesh.vertices - CENTER.numpy()) / r[:, None]
    assert (np.sum(mesh.vertex_normals * radial, axis=1) > 0.9).all()
    expected = np.clip(np.rint((np.clip(mesh.vertices / 0.3, -1, 1) + 1) * 127.5), 0, 255)
    assert np.abs(mesh.visual.vertex_colors[:, :3].astype(int) - expected).max() <= 1


def test_ray_colours_are_the_closed_form_composite_along_the_normal():
    """A ball of constant density s0 whose colour falls linearly with depth below its surface: a
    ray entering along the inward normal sees c(x) = c0 - k x weighted by s0 exp(-s0 x) over the
    marched depth L, i.e. c0 - k E[x] with E[x] = 1/s0 - L e^(-s0 L) / (1 - e^(-s0 L)); the field's
    colour at the vertex itself (c0) is far from that."""
    s0, c0, k, rad = 40.0, 0.8, 20.0, 0.2

    def soft_ball(points):
        d = (points - CENTER.to(points)).norm(dim=-1)
        sigma = torch.where(d < rad, torch.full_like(d, s0), torch.zeros_like(d))
        c = (c0 - k * (rad - d).clamp_min(0)).clamp(-1, 1)
        return c[..., None].expand(*d.shape, 3), sigma

    grid = density_grid(lambda p: (None, 0.5 * s0 * (1 + torch.tanh((rad - (p - CENTER.to(p)).norm(dim=-1)) * 400))),
                        Box.cube(0.3), 48)
    depth = 0.04
    ray = extract_mesh(grid, 0.5 * s0, color_field=soft_ball, color_depth=depth)
    surf = extract_mesh(grid, 0.5 * s0, color_field=soft_ball, color_mode="surface")
    L = depth - (np.linalg.norm(ray.vertices - CENTER.numpy(), axis=1) - rad)  # marched depth below the surface
    ex = 1 / s0 - L * np.exp(-s0 * L) / (1 - np.exp(-s0 * L))
    expected = (c0 - k * ex + 1) * 127.5
    got = ray.visual.vertex_colors[:, 0].astype(float)
    # 32 samples over 1.25 * depth: the Riemann sum is within a few levels of the integral
    assert np.abs(got - expected).max() < 6, np.abs(got - expected).max()
    assert np.abs(surf.visual.vertex_colors[:, 0].astype(float) - expected).min() > 20
    with pytest.raises(UserError, match="colour mode"):
        extract_mesh(grid, 0.5 * s0, color_field=soft_ball, color_mode="nearest")


def test_crop_box_cut_is_closed_on_the_box_faces():
    box = Box((-0.3, -0.3, -0.3), (0.3, 0.3, float(CENTER[2])))  # cuts the sphere through its centre
    grid = density_grid(ramp_sphere, box, 48)
    mesh = extract_mesh(grid, 500.0)
    assert mesh.is_watertight
    assert mesh.vertices[:, 2].max() <= box.hi[2] + 1e-9
    assert mesh.volume == pytest.approx(2 / 3 * math.pi * R ** 3, rel=0.03)


def test_no_surface_is_a_clear_error_with_the_range():
    grid = density_grid(ramp_sphere, Box.cube(0.3), 16)
    with pytest.raises(NoSurfaceError, match=r"no surface at level 1e\+04.*ranges from"):
        extract_mesh(grid, 1e4)


def test_auto_level_is_half_opacity_over_one_reference_cell():
    for s in (0.2, 0.3):
        cell = 2 * s / 256
        assert 1 - math.exp(-auto_level(s) * cell) == pytest.approx(0.5)


def test_parse_box():
    assert parse_box(None, 0.3) == Box.cube(0.3)
    assert parse_box("0.1", 0.3) == Box.cube(0.1)
    assert parse_box("-1,-2,-3,1,2,3", 0.3) == Box((-1, -2, -3), (1, 2, 3))
    for bad in ("a", "1,2", "1,1,1,0,2,2", "-0.5"):
        with pytest.raises(UserError):
            parse_box(bad, 0.3)


# --------------------------------------------------------------------------------------------------
# The mesh lines up with the volume renderer


SPHERES = [(torch.tensor([0.10, 0.05, -0.05]), 0.12), (torch.tensor([-0.12, -0.06, 0.08]), 0.08)]


def two_spheres(points):
    """Two off-centre spheres of density ~K with a thin linear edge (K/2 on the spheres)."""
    k, w = 2000.0, 0.004
    sig = torch.zeros(points.shape[:-1], dtype=points.dtype)
    for c, r in SPHERES:
        d = (points - c.to(points)).norm(dim=-1)
        sig = torch.maximum(sig, k * (0.5 + (r - d) / w).clamp(0, 1))
    return torch.zeros(*points.shape[:-1], 3, dtype=points.dtype), sig


def _silhouette(mesh, cams, dirs):
    """Rasterise the projected triangles at the pixels' ray directions -> [H*W] bool."""
    rot = cams.cam2world[0, :3, :3].double().numpy()
    org = cams.cam2world[0, :3, 3].double().numpy()

    def project(p):  # world points (or directions with translate=False) -> (x/-z, y/-z) in camera
        pc = p @ rot
        return pc[:, :2] / -pc[:, 2:3]
    pix = project(dirs[0].double().numpy())  # [M, 2]
    tri = project(mesh.vertices - org)[mesh.faces]  # [T, 3, 2]
    inside = np.zeros(len(pix), bool)
    for s in range(0, len(tri), 512):
        t = tri[s:s + 512]
        a, b, c = (t[:, i, None, :] for i in range(3))

        def edge(p0, p1):
            return (p1[..., 0] - p0[..., 0]) * (pix[None, :, 1] - p0[..., 1]) - \
                   (p1[..., 1] - p0[..., 1]) * (pix[None, :, 0] - p0[..., 0])
        e0, e1, e2 = edge(a, b), edge(b, c), edge(c, a)
        hit = ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))
        inside |= hit.any(axis=0)
    return inside


def test_mesh_silhouette_matches_rendered_opacity():
    cams = camlib.from_angles(0.7, 1.2, radius=1.0, fov_deg=40.0, near=0.6, far=1.4, dtype=torch.float64)
    res = 64
    origins, dirs = make_rays(cams, res)
    out = render_rays(two_spheres, origins, dirs, cams.near, cams.far, num_coarse=128, num_fine=128,
                      far_opaque=False, deterministic=True)
    rendered = (out["opacity"][0] > 0.5).numpy()
    grid = density_grid(two_spheres, Box.cube(0.3), 96)
    mesh = extract_mesh(grid, 1000.0, keep_components=0)
    assert len(mesh.split(only_watertight=False)) == 2
    sil = _silhouette(mesh, cams, dirs)
    assert rendered.sum() > 300  # the objects cover a good part of the image
    iou = (sil & rendered).sum() / (sil | rendered).sum()
    assert iou > 0.95, iou
    # a mesh mirrored through the origin (a wrong frame) does not line up
    flipped = trimesh.Trimesh(-mesh.vertices, mesh.faces, process=False)
    sil_f = _silhouette(flipped, cams, dirs)
    assert (sil_f & rendered).sum() / (sil_f | rendered).sum() < 0.8


# --------------------------------------------------------------------------------------------------
# Files


def test_ply_round_trip_with_colours_and_normals(tmp_path):
    from plyfile import PlyData
    grid = density_grid(ramp_sphere, Box.cube(0.3), 32)
    mesh = extract_mesh(grid, 500.0, color_field=ramp_sphere)
    path = tmp_path / "m.ply"
    export.save_mesh(mesh, path)
    back = trimesh.load(path, process=False)
    np.testing.assert_allclose(back.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(back.faces, mesh.faces)
    np.testing.assert_array_equal(back.visual.vertex_colors[:, :3], mesh.visual.vertex_colors[:, :3])
    ply = PlyData.read(str(path))
    assert not ply.text  # binary
    v = ply["vertex"]
    names = v.data.dtype.names
    assert {"x", "y", "z", "red", "green", "blue", "nx", "ny", "nz"} <= set(names)
    rgb = np.stack([v["red"], v["green"], v["blue"]], axis=1)
    np.testing.assert_array_equal(rgb, mesh.visual.vertex_colors[:, :3])
    nrm = np.stack([v["nx"], v["ny"], v["nz"]], axis=1)
    np.testing.assert_allclose(nrm, mesh.vertex_normals, atol=1e-5)
    for fmt in ("obj", "glb"):
        export.save_mesh(mesh, tmp_path / f"m.{fmt}")
        other = trimesh.load(tmp_path / f"m.{fmt}", force="mesh", process=False)
        assert len(other.faces) == len(mesh.faces)
        assert np.abs(other.bounds - mesh.bounds).max() < 1e-5


def linear_field(points):
    return torch.zeros(*points.shape[:-1], 3), points[..., 0] + 2 * points[..., 1] + 3 * points[..., 2]


def test_mrc_valid_and_header_maps_voxels_to_world(tmp_path):
    import mrcfile
    box = Box((-0.3, -0.1, 0.05), (0.2, 0.4, 0.3))
    grid = density_grid(linear_field, box, 24)
    path = tmp_path / "g.mrc"
    export.save_mrc(grid, path, level=0.1)
    assert mrcfile.validate(str(path), print_file=io.StringIO())
    with mrcfile.open(path) as m:
        assert m.data.dtype == np.float32 and m.header.mode == 2
        vs = np.array([m.voxel_size.x, m.voxel_size.y, m.voxel_size.z], np.float64)
        origin = np.array([m.header.origin.x, m.header.origin.y, m.header.origin.z], np.float64)
        labels = b" ".join(bytes(x) for x in m.header.label[:m.header.nlabl]).decode()
        assert "activated density" in labels
        for i, j, k in [(0, 0, 0), (5, 17, 20), (23, 23, 23)]:
            world = origin + np.array([i, j, k]) * vs  # MRC data is [z, y, x]
            assert m.data[k, j, i] == pytest.approx(world[0] + 2 * world[1] + 3 * world[2], abs=1e-5)
        np.testing.assert_allclose(origin, box.lo, atol=1e-6)
        np.testing.assert_allclose(origin + 23 * vs, box.hi, atol=1e-5)
    export.save_npy(grid, tmp_path / "g.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "g.npy"), grid.values)


# --------------------------------------------------------------------------------------------------
# Memory bound


def test_chunking_bounds_points_per_call_at_512():
    res, chunk = 512, 1 << 20
    calls = []

    def spy(points):
        assert points.shape[0] == 1 and points.dtype == torch.float32
        calls.append(points.shape[1])
        return points[..., :0], points[..., 0]  # no rgb work; density = x

    grid = density_grid(spy, Box.cube(0.3), res, chunk_points=chunk)
    assert max(calls) <= chunk
    assert sum(calls) == res ** 3
    assert grid.values.shape == (res, res, res) and grid.values.dtype == np.float32
    # node ordering [x, y, z] and positions: values[i, j, k] = x of node i
    x = grid.world([[7, 300, 511]])[0, 0]
    assert grid.values[7, 300, 511] == pytest.approx(x, abs=1e-6)
    assert grid.values[511, 0, 0] == pytest.approx(0.3, abs=1e-6)


# --------------------------------------------------------------------------------------------------
# CLI


def test_cli_no_surface_message(tmp_path, capsys):
    from core.errors import cli_main
    from core.extract_mesh import main
    rc = cli_main(main)(["--ckpt", "random:demo", "--res", "32", "--surface", "density", "--level", "1e6", "--outdir", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: no surface at level 1e+06") and "ranges from" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_end_to_end_random_demo(tmp_path, capsys):
    import mrcfile

    from core.checkpoint import load_generator
    from core.extract_mesh import main
    from core.geometry import generator_field
    from core.runtime import z_from_seed
    G, _ = load_generator("random:demo")
    planes = G.planes(G.mapping(z_from_seed(1, G.cfg.generator.z_dim)))
    probe = density_grid(generator_field(G, planes), Box.cube(G.cfg.generator.cube_scale), 32)
    level = float(np.quantile(probe.values, 0.7))  # a level this random model certainly crosses
    rc = main(["--ckpt", "random:demo", "--seeds", "1", "--res", "32", "--surface", "density", "--level", f"{level:.6f}",
               "--format", "ply,obj,glb,mrc,npy", "--outdir", str(tmp_path)])
    assert rc == 0
    out = capsys.readouterr().out
    assert f"level {level:.4g}" in out
    mesh = trimesh.load(tmp_path / "seed0001.ply", process=False)
    s = G.cfg.generator.cube_scale
    assert len(mesh.faces) > 0 and np.abs(mesh.vertices).max() <= s + 1e-6  # world units, in the box
    assert mesh.visual.vertex_colors.shape[1] == 4
    for ext in ("obj", "glb", "npy"):
        assert (tmp_path / f"seed0001.{ext}").stat().st_size > 0
    assert mrcfile.validate(str(tmp_path / "seed0001.mrc"), print_file=io.StringIO())
    # the reference's raw threshold: the volume then holds raw density
    rc = main(["--ckpt", "random:demo", "--seeds", "1", "--res", "32", "--raw-level", "0",
               "--format", "mrc", "--outdir", str(tmp_path / "raw")])
    assert rc == 0
    with mrcfile.open(tmp_path / "raw" / "seed0001.mrc") as m:
        assert b"raw density" in bytes(m.header.label[1])
