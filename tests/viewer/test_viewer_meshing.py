"""The mesh panel's non-GUI logic: camera matrices against core's rays, estimates, settings, the
background job (progress, cancel, result equal to core.geometry's) and the preview worker."""

import time

import numpy as np
import pytest
import torch
from viewer_testlib import tiny_model

from core import cameras as camlib
from core.config import CameraConfig
from core.geometry import Box, density_grid, extract_mesh, generator_field
from core.render.rays import make_rays
from viewer import meshing
from viewer.mesh_jobs import MeshJob, PreviewWorker
from viewer.state import MeshState, ViewerState, state_from_dict, state_to_dict


@pytest.mark.parametrize("yaw,pitch,radius,fov,look", [(0.0, 1.5707963, 1.0, 30.0, (0, 0, 0)),
                                                       (2.1, 0.6, 1.4, 12.0, (0.05, -0.1, 0.02))])
def test_projection_puts_points_on_the_pixel_of_their_ray(yaw, pitch, radius, fov, look):
    cfg = CameraConfig(fov_deg=fov, near=0.5, far=2.0)
    cams = camlib.from_angles(yaw, pitch, radius, fov, look, cfg=cfg, dtype=torch.float64)
    res = 16
    origins, dirs = make_rays(cams, res)
    t = torch.linspace(0.6, 1.5, res * res, dtype=torch.float64)[:, None]
    pts = (origins[0] + t * dirs[0]).numpy()
    ndc = meshing.project(pts, cams)
    # pixel centres: row-major, u left -> right, v top -> bottom; NDC y is up
    idx = np.arange(res * res)
    u = (idx % res + 0.5) / res
    v = (idx // res + 0.5) / res
    np.testing.assert_allclose(ndc[:, 0], 2 * u - 1, atol=1e-9)
    np.testing.assert_allclose(ndc[:, 1], 1 - 2 * v, atol=1e-9)
    assert (np.abs(ndc[:, 2]) < 1).all()  # inside the depth range
    # nearer points get smaller depth
    near_pt = (origins[0, :1] + 0.7 * dirs[0, :1]).numpy()
    far_pt = (origins[0, :1] + 1.4 * dirs[0, :1]).numpy()
    assert meshing.project(near_pt, cams)[0, 2] < meshing.project(far_pt, cams)[0, 2]


def test_estimate_scales_with_the_grid():
    b32, s32 = meshing.estimate(32, 64)
    b256, s256 = meshing.estimate(256, 64)
    assert b256 > 256 ** 3 * 4 > b32 and s256 == pytest.approx(s32 * 512)
    assert meshing.estimate(256, 64, rate=1e6)[1] == pytest.approx(256 ** 3 / 1e6)
    vb, vs = meshing.estimate(256, 64, rate=1e6, surface="visibility")  # + the occlusion grid and its sweeps
    assert vb == b256 + 4 * 256 ** 3 and vs == pytest.approx(256 ** 3 / 1e6 + 26 * 256 ** 3 / meshing.OCCLUSION_RATE["cpu"])
    assert meshing.human_bytes(3 * 2 ** 20) == "3.0 MiB"


def test_mesh_state_round_trips_and_is_sanitised():
    s = ViewerState()
    s.mesh.resolution, s.mesh.crop, s.mesh.crop_lo, s.mesh.shading = 200, True, [-0.5, -1.0, 0.0], "colors"
    back = state_from_dict(state_to_dict(s))
    assert back.mesh == s.mesh
    warnings = []
    bad = state_from_dict({"mesh": {"resolution": 5000, "shading": "wire", "crop_lo": [1, 1, 1],
                                    "decimate": 3.0, "surface": "isosurface", "occlusion_level": 4.0}}, warnings)
    assert bad.mesh.resolution == 1024 and bad.mesh.shading == "shaded" and bad.mesh.decimate == 1.0
    assert bad.mesh.crop_lo == [-1.0, -1.0, -1.0]
    assert bad.mesh.surface == "visibility" and bad.mesh.occlusion_level == 0.999


def test_crop_box_in_world_units():
    m = MeshState(crop=True, crop_lo=[-0.5, 0.0, -1.0], crop_hi=[0.5, 1.0, 0.25])
    assert meshing.crop_box(m, 0.3) == Box((-0.15, 0.0, -0.3), (0.15, 0.3, 0.075))
    assert meshing.crop_box(MeshState(), 0.3) == Box.cube(0.3)


@pytest.fixture(scope="module")
def tiny():
    model = tiny_model(seed=2)
    G = model.G
    planes = G.planes(G.mapping(torch.randn(1, G.cfg.generator.z_dim, generator=torch.Generator().manual_seed(0))))
    return G, planes


def test_job_result_equals_core_geometry(tiny):
    G, planes = tiny
    box = Box.cube(G.cfg.generator.cube_scale)
    grid = density_grid(generator_field(G, planes), box, 40)
    level = float(np.quantile(grid.values, 0.8))
    seen = []
    job = MeshJob(G, lambda: planes, meshing.MeshParams(40, level, box, keep_components=0))
    job._progress = seen.append  # record the progress steps
    job.start().wait(120)
    assert job.finished and job.error is None
    ref = extract_mesh(grid, level, keep_components=0, color_field=generator_field(G, planes))
    np.testing.assert_allclose(job.result.mesh.vertices, ref.vertices, atol=1e-5)
    assert len(job.result.mesh.faces) == len(ref.faces)
    np.testing.assert_array_equal(job.result.mesh.visual.vertex_colors, ref.visual.vertex_colors)
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_job_visibility_surface_equals_core_geometry(tiny):
    """The panel's visibility surface is core's: the occlusion of the same grid, meshed at the same level."""
    from core.geometry.visibility import occlusion_grid
    G, planes = tiny
    box = Box.cube(G.cfg.generator.cube_scale)
    occ = occlusion_grid(density_grid(generator_field(G, planes), box, 40))
    level = float(np.quantile(occ.values, 0.8))
    job = MeshJob(G, lambda: planes, meshing.MeshParams(40, level, box, keep_components=0, colors=False,
                                                          surface="visibility"))
    stages, own = [], job._stage
    job._stage = lambda name: (stages.append(name), own(name))
    job.start().wait(120)
    assert job.finished and job.error is None and job.result.grid.kind == "activated"  # exports hold density
    assert stages == ["grid", "occlusion", "mesh"] and job.stage == "done"  # what the progress bar names
    ref = extract_mesh(occ, level, keep_components=0)
    np.testing.assert_allclose(job.result.mesh.vertices, ref.vertices, atol=1e-5)
    assert len(job.result.mesh.faces) == len(ref.faces)
    state = MeshState(surface="visibility", auto_level=False, occlusion_level=0.3, level=7.0)
    assert meshing.params_from_state(state, 0.3).level == 0.3
    state.surface = "density"
    assert meshing.params_from_state(state, 0.3).level == 7.0


def test_job_cancel(tiny):
    G, planes = tiny
    job = MeshJob(G, lambda: planes, meshing.MeshParams(512, 1.0, Box.cube(0.3)))
    job.cancel()  # before the first block
    job.start().wait(60)
    assert job.cancelled and job.result is None and job.error == "cancelled"


def test_preview_worker_reuses_its_grid_for_level_changes(tiny):
    G, planes = tiny
    calls = []

    def planes_fn():
        calls.append(1)
        return planes

    pw = PreviewWorker()
    try:
        box = Box.cube(G.cfg.generator.cube_scale)
        pw.request(("k",), G, planes_fn, box, None)
        deadline = time.monotonic() + 60
        while (pw.busy or pw.mesh_key is None) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pw.auto_level is not None and pw.mesh_key == (("k",), None)
        grid = pw.cache.grid
        lvl = float(np.quantile(grid.values, 0.9))
        pw.request(("k",), G, planes_fn, box, lvl)
        while (pw.busy or pw.mesh_key != (("k",), lvl)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pw.mesh_key == (("k",), lvl) and len(calls) == 1  # the grid was not recomputed
        ref = extract_mesh(grid, lvl, keep_components=0)
        assert len(pw.mesh.faces) == len(ref.faces)
    finally:
        pw.close()


def test_export_buttons_write_every_format(tiny, tmp_path):
    import io

    import mrcfile
    import trimesh
    G, planes = tiny
    box = Box.cube(G.cfg.generator.cube_scale)
    grid = density_grid(generator_field(G, planes), box, 32)
    level = float(np.quantile(grid.values, 0.8))
    result = meshing.extract(G, planes, meshing.MeshParams(32, level, box, keep_components=0))
    written = meshing.save_outputs(result, tmp_path / "out", "m", ["ply", "obj", "glb", "mrc", "npy"])
    assert [p.name for p in written] == ["m.ply", "m.obj", "m.glb", "m.mrc", "m.npy"]
    for p in written[:3]:
        back = trimesh.load(p, force="mesh", process=False)
        assert len(back.faces) == len(result.mesh.faces)
    assert mrcfile.validate(str(written[3]), print_file=io.StringIO())
    np.testing.assert_array_equal(np.load(written[4]), result.grid.values)
    assert sorted(x.name for x in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)  # no temp files
