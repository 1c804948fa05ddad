"""The baked preview: the bake against G.query, its occupancy and distance grids against brute
force, the GL pass (under Xvfb) against closed-form renders of hand-made fields along core's own
rays, and the worker glue (bakes off the GUI thread, stale bakes dropped)."""

import math
import threading
import time
import types
from pathlib import Path

import baked_cases as bc
import numpy as np
import pytest
import torch
from viewer_testlib import run_gui_driver, tiny_model

from core.geometry import Cancelled
from core.geometry.grid import Box, node_points
from core.render.bake import SOFTPLUS, bake, empty_distance, occupancy_cells
from core.render.occupancy import density_threshold, reach_half_size
from core.render.rays import make_rays
from viewer.app_api import AppOptions
from viewer.camera import OrbitCamera
from viewer.latent import LatentSpec
from viewer.render_worker import RenderWorker
from viewer.rendering import Quality, RenderEngine, RenderRequest, ViewSpec
from viewer.state import ViewerState

DRIVER = Path(__file__).with_name("gl_baked_driver.py")
SPACING = bc.SIZE / (bc.RES - 1)


# ---------------------------------------------------------------------------------------------
# the bake (no GL)


def test_bake_nodes_are_the_generator_field():
    model = tiny_model()
    G = model.G
    w = G.mapping(torch.randn(1, G.cfg.generator.z_dim))
    planes = G.planes(w)
    f = bake(G, planes, 24)
    half = reach_half_size(G.cfg.camera)
    assert f.res == 24 and f.rgba.shape == (24, 24, 24, 4) and f.rgba.dtype == np.float16
    assert np.allclose(f.lo, [c - half for c in G.cfg.camera.look_at]) and math.isclose(f.size, 2 * half)
    assert f.density == SOFTPLUS
    assert math.isclose(f.threshold, density_threshold(1e-3, G.cfg.camera.near, G.cfg.camera.far))
    # oracle: G.query at the node positions of the reach cube
    idx = torch.randint(0, 24**3, (300,), generator=torch.Generator().manual_seed(0))
    box = Box(f.lo, tuple(v + f.size for v in f.lo))
    pts = torch.cat([node_points(box, 24, int(i), int(i) + 1) for i in idx])[None]
    rgb, sigma = G.query(planes, pts)
    i, j, k = np.unravel_index(idx.numpy(), (24, 24, 24))
    got = f.rgba[i, j, k].astype(np.float32)
    assert np.allclose(got[:, :3], (rgb[0].numpy() + 1) / 2, atol=2e-3)
    got_sigma = np.logaddexp(0, got[:, 3])  # the shader's softplus of the stored argument
    assert np.allclose(got_sigma, sigma[0].numpy(), rtol=2e-3, atol=1e-3)


def test_bake_stops_when_cancelled():
    model = tiny_model()
    planes = model.G.planes(model.G.mapping(torch.randn(1, 16)))
    with pytest.raises(Cancelled):
        bake(model.G, planes, 32, cancel=lambda: True)


def test_occupancy_marks_every_cell_an_interpolated_sample_can_exceed_the_threshold():
    rng = np.random.default_rng(0)
    res, cells, thr = 17, 4, 0.5
    sigma = (rng.random((res, res, res)) > 0.985).astype(np.float32)  # a few isolated spikes
    occ = occupancy_cells(sigma, thr, cells) > 0
    # brute force: sample the trilinear field densely in each cell
    ax = (np.arange(cells * 6) + 0.5) / (cells * 6) * (res - 1)  # node coordinates
    for ci in range(cells):
        for cj in range(cells):
            for ck in range(cells):
                pts = [a[(c * 6):(c + 1) * 6] for a, c in zip((ax, ax, ax), (ci, cj, ck))]
                g = np.stack(np.meshgrid(*pts, indexing="ij"), -1).reshape(-1, 3)
                lo = np.floor(g).astype(int).clip(0, res - 2)
                fr = g - lo
                val = np.zeros(len(g))
                for corner in np.ndindex(2, 2, 2):
                    wgt = np.prod(np.where(corner, fr, 1 - fr), axis=1)
                    c = lo + corner
                    val += wgt * sigma[c[:, 0], c[:, 1], c[:, 2]]
                if val.max() >= thr:
                    assert occ[ci, cj, ck], (ci, cj, ck)
    assert 0 < occ.mean() < 1


def test_empty_distance_is_the_chebyshev_distance_to_the_nearest_occupied_cell():
    rng = np.random.default_rng(1)
    occ = rng.random((9, 9, 9)) > 0.97
    dist = empty_distance(occ)
    occupied = np.argwhere(occ)
    for c in np.ndindex(9, 9, 9):
        expected = np.abs(occupied - np.array(c)).max(1).min()
        assert dist[c] == expected, c
    assert (empty_distance(np.zeros((4, 4, 4), bool)) == 255).all()


# ---------------------------------------------------------------------------------------------
# the GL pass on hand-made fields (closed-form oracles along core's rays)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    pytest.importorskip("imgui_bundle", reason="the GL tests need imgui-bundle (pip install -r requirements.txt)")
    pytest.importorskip("OpenGL", reason="the GL tests need PyOpenGL (pip install -r requirements.txt)")
    tmp = tmp_path_factory.mktemp("baked_gl")
    results, _ = run_gui_driver(DRIVER, [], tmp, tmp / "out", timeout=120)
    if results.get("skip"):
        pytest.skip(f"GL tests skipped: {results['skip']}")
    return {name: np.load(tmp / "out" / f"{name}.npy") for name in results["drawn"]}


def _rays():
    o, d = make_rays(bc.cameras(), bc.IMAGE)
    return o[0].numpy(), d[0].numpy()


def _sphere():
    """Per pixel: chord entry/exit (nan on a miss), and the ray's closest distance to the centre."""
    o, d = _rays()
    oc = o - np.asarray(bc.CENTRE)
    b = (d * oc).sum(1)
    disc = b * b - ((oc * oc).sum(1) - bc.RADIUS**2)
    root = np.sqrt(np.where(disc > 0, disc, np.nan))
    closest = np.sqrt(np.maximum((oc * oc).sum(1) - b * b, 0))
    shape = (bc.IMAGE, bc.IMAGE)
    return (-b - root).reshape(shape), (-b + root).reshape(shape), closest.reshape(shape)


def _inner_outer():
    """Pixels whose rays pass clearly inside / clearly outside the sphere (2.5 node spacings)."""
    _, _, closest = _sphere()
    return closest < bc.RADIUS - 2.5 * SPACING, closest > bc.RADIUS + 2.5 * SPACING


def test_opacity_is_one_minus_exp_of_sigma_times_the_chord(drawn):
    t0, t1, _ = _sphere()
    inner, outer = _inner_outer()
    sigma = bc.CASES["soft"][0]
    expected = 1 - np.exp(-sigma * (t1 - t0))
    got = drawn["soft_opacity"][..., 0] / 255.0  # the grey table: index = round(opacity * 255)
    assert inner.sum() > 1000 and outer.sum() > 1000
    err = np.abs(got - expected)[inner]
    assert err.max() < 0.03 and err.mean() < 0.008, (err.max(), err.mean())
    assert (got[outer] == 0).all()
    assert expected[inner].min() < 0.7 and expected[inner].max() > 0.9  # the chord varies a lot


def test_rgb_composites_the_colour_over_the_background(drawn):
    t0, t1, _ = _sphere()
    inner, outer = _inner_outer()
    a = 1 - np.exp(-bc.CASES["soft"][0] * np.nan_to_num(t1 - t0))
    expected = np.asarray(bc.COLOUR) * a[..., None] + np.asarray(bc.BACKGROUND) * (1 - a[..., None])
    got = drawn["soft_rgb"].astype(np.float64) / 255
    assert np.abs(got - expected)[inner].max() < 0.03
    assert np.abs(got[outer] - np.asarray(bc.BACKGROUND)).max() <= 0.5 / 255 + 1e-9


def test_depth_is_the_weighted_mean_depth_and_far_where_empty(drawn):
    t0, t1, _ = _sphere()
    inner, outer = _inner_outer()
    s = bc.CASES["soft"][0]
    L = t1 - t0
    e = np.exp(-s * L)
    expected = t0 + (1 - e * (1 + s * L)) / (s * (1 - e))  # E[t] of w(t) = s exp(-s (t - t0)) on the chord
    lo, hi = bc.DEPTH_RANGE
    got = lo + drawn["soft_depth"][..., 0] / 255.0 * (hi - lo)
    err = np.abs(got - expected)[inner]
    assert err.max() < 0.012 and err.mean() < 0.004, (err.max(), err.mean())
    assert (drawn["soft_depth"][..., 0][outer] == 255).all()  # the far bound (1.8) is beyond the range
    # the opaque sphere with a ramped edge: the weighted mean depth by quadrature along each ray
    got = lo + drawn["opaque_depth"][..., 0] / 255.0 * (hi - lo)
    err = np.abs(got - _ramp_depth(inner))[inner]
    assert err.max() < 0.008 and err.mean() < 0.003, (err.max(), err.mean())


def _ramp_depth(mask):
    """sum(w t) / sum(w) of the "opaque" case's radial field, by fine quadrature on the masked rays."""
    sigma, _, _, _, ramp = bc.CASES["opaque"]
    w = ramp / 2 * SPACING
    o, d = _rays()
    idx = np.flatnonzero(mask.reshape(-1))
    t = np.linspace(bc.CAMERA.near, bc.CAMERA.far, 6001)
    dt = t[1] - t[0]
    out = np.full(o.shape[0], np.nan)
    for part in np.array_split(idx, max(1, len(idx) // 256)):
        p = o[part, None, :] + d[part, None, :] * t[None, :, None]
        r = np.linalg.norm(p - np.asarray(bc.CENTRE), axis=-1)
        s = sigma * np.clip((bc.RADIUS + w - r) / (2 * w), 0, 1)
        tau = np.cumsum(s * dt, axis=1) - s * dt
        wgt = np.exp(-tau) * -np.expm1(-s * dt)
        out[part] = (wgt * t).sum(1) / wgt.sum(1)
    return out.reshape(mask.shape)


def test_normals_point_radially_out_of_the_sphere(drawn):
    t0, _, _ = _sphere()
    inner, _ = _inner_outer()
    o, d = _rays()
    p = o + d * t0.reshape(-1, 1)
    n_world = (p - np.asarray(bc.CENTRE)) / bc.RADIUS
    rot = bc.cameras().cam2world[0, :3, :3].numpy()
    n_cam = (n_world @ rot).reshape(bc.IMAGE, bc.IMAGE, 3)  # R^T n
    got = drawn["opaque_normals"].astype(np.float64) / 255 * 2 - 1
    cos = (got * n_cam).sum(-1) / np.linalg.norm(got, axis=-1)
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))[inner]
    assert np.median(angle) < 3 and np.percentile(angle, 99) < 10, (np.median(angle), angle.max())
    assert n_cam[inner][:, 2].min() > 0  # all facing the camera, and spread over directions
    assert np.abs(got[inner][:, 0]).max() > 0.7 and np.abs(got[inner][:, 1]).max() > 0.7


def _box_length():
    """Length of each ray inside the baked cube, within [near, far]."""
    o, d = _rays()
    with np.errstate(divide="ignore"):
        inv = 1 / d
    lo, hi = np.asarray(bc.LO), np.asarray(bc.LO) + bc.SIZE
    ta, tb = (lo - o) * inv, (hi - o) * inv
    t_in = np.maximum(np.minimum(ta, tb).max(1), bc.CAMERA.near)
    t_out = np.minimum(np.maximum(ta, tb).min(1), bc.CAMERA.far)
    return np.maximum(t_out - t_in, 0).reshape(bc.IMAGE, bc.IMAGE)


def test_far_opaque_makes_the_far_bound_opaque_and_an_open_one_shows_the_background(drawn):
    length = _box_length()
    fog = bc.CASES["fog_open"][1]
    T = np.exp(-fog * length)[..., None]
    expected = np.asarray(bc.FOG_COLOUR) * (1 - T) + np.asarray(bc.BACKGROUND) * T
    got = drawn["fog_open_rgb"].astype(np.float64) / 255
    assert np.abs(got - expected).max() < 4 / 255
    assert T.min() < 0.6 and T.max() > 0.65  # the background shows through, by the path length
    got = drawn["fog_far_opaque_rgb"].astype(np.float64) / 255
    assert np.abs(got - np.asarray(bc.FOG_COLOUR)).max() < 1.5 / 255  # no background left anywhere


# ---------------------------------------------------------------------------------------------
# the worker glue (no GL: the controller uploads only when the app has a GL context)


class _App:
    """What BakeController uses of the ViewerApp: a real render worker and engine, a tiny model."""

    def __init__(self):
        from viewer.bake_jobs import BakeController

        self.state, self.options = ViewerState(), AppOptions()
        self.model = tiny_model()
        self.engine = RenderEngine()
        self.worker = RenderWorker(self.engine.render)
        self.result = None
        self.display = None
        self.messages = {}
        self.bakes = BakeController(self)
        self.state.render.bake_res = 24

    def latent_spec(self):
        return self.state.latent.spec(0)

    def view_spec(self):
        return ViewSpec(self.state.camera.camera, "rgb", 16)

    def moving(self, now):
        return False

    def current_request(self, interactive=False, baked=False):
        return RenderRequest(self.model, self.latent_spec(), self.view_spec(), interactive, baked=baked)

    def show_first_frame(self):
        """The current latent's first neural frame arrives."""
        self.result = self.engine.render(self.current_request(), Quality(16, 4, 4, "preview"))


def _wait(cond, timeout=30.0):
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        time.sleep(0.01)
    return cond()


def test_bake_runs_on_the_worker_after_the_first_frame():
    app = _App()
    try:
        b = app.bakes
        b.poll()
        assert b.stats.queued == 0  # no frame of this latent yet
        app.show_first_frame()
        b.poll()
        assert b.stats.queued == 1 and b.busy
        assert _wait(lambda: (b.poll(), b.available())[1])
        assert b.stats.baked == 1 and b.cache.get(b.key()).res == 24
        assert b.stats.thread == "render-worker" != threading.current_thread().name
        b.poll()
        assert b.stats.queued == 1  # cached: not baked again
        assert b.showing(time.monotonic())  # still: shown until the neural full frame arrives
        app.result = app.engine.render(app.current_request(), Quality(16, 4, 4, "full"))
        assert not b.showing(time.monotonic())
    finally:
        app.worker.close()


def test_a_stale_bake_is_dropped():
    app = _App()
    gate = threading.Event()
    try:
        b = app.bakes
        app.show_first_frame()
        app.worker.add_idle_task(lambda: gate.wait(10))  # the worker is busy until the gate opens
        b.poll()
        assert b.stats.queued == 1
        app.state.latent.seed = 7  # another latent before the bake ran
        b.poll()
        gate.set()
        assert _wait(lambda: (b.poll(), b.stats.dropped == 1)[1])
        assert b.stats.baked == 0 and not b.available()
        assert len(b.cache._items) == 0
        b.poll()  # seed 7 has no frame yet: nothing is queued for it
        assert b.stats.queued == 1
    finally:
        gate.set()
        app.worker.close()


def test_the_toggle_turns_baking_off():
    app = _App()
    try:
        app.state.render.baked_preview = False
        app.show_first_frame()
        app.bakes.poll()
        assert app.bakes.stats.queued == 0 and not app.bakes.available()
    finally:
        app.worker.close()


def test_a_baked_request_skips_the_neural_preview():
    w = RenderWorker(lambda *a: None)
    try:
        model = tiny_model()
        req = RenderRequest(model, LatentSpec.from_seed(0), ViewSpec(OrbitCamera(), "rgb", 256))
        w.adaptive.cost_s = 1.0  # renders look slow: a preview would come first
        assert [q.level for q in w.plan(req)] == ["preview", "full"]
        baked = types.SimpleNamespace(**{**req.__dict__, "baked": True})
        assert [q.level for q in w.plan(baked)] == ["full"]
    finally:
        w.close()


def test_the_options_round_trip_through_the_session():
    from viewer.state import state_from_dict, state_to_dict

    s = ViewerState()
    s.render.baked_preview, s.render.bake_res = False, 192
    back = state_from_dict(state_to_dict(s))
    assert back.render.baked_preview is False and back.render.bake_res == 192
    warnings = []
    odd = state_from_dict({"render": {"bake_res": 5000, "baked_preview": "yes"}}, warnings)
    assert odd.render.bake_res == 256 and odd.render.baked_preview is True and warnings
    assert ViewerState().render.baked_preview and ViewerState().render.bake_res == 128
