"""EG3D models in the viewer's render engine (no GUI): whole frames through G.render, the raw neural
image, depth and opacity at the neural resolution, normals from the depth image, the moving-camera
quality, the conditioning camera, and no baked preview.

The model is the official-format fixture tests/fixtures/eg3d_official/snapshot_ffhq_tiny.pkl (a tiny
FFHQ-config EG3D: 32^2 neural render, SR to 128^2, pose-conditioned).
"""

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from core import cameras as camlib
from core.checkpoint import load_generator
from core.config import CameraConfig
from core.images import image_to_uint8
from core.render.rays import make_rays
from core.runtime import z_from_seed
from viewer.bake_jobs import BakeController
from viewer.camera import OrbitCamera, preset
from viewer.eg3d_render import depth_normals, preview_neural_res
from viewer.export import picture, upsampled
from viewer.latent import LatentSpec
from viewer.render_worker import RenderWorker
from viewer.rendering import LoadedModel, Quality, RenderEngine, RenderRequest, ViewSpec, full_quality
from viewer.state import LatentState, RenderState

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "eg3d_official" / "snapshot_ffhq_tiny.pkl"
RES = 96


@pytest.fixture(scope="module")
def model():
    if not FIXTURE.exists():
        pytest.skip(f"no EG3D fixture at {FIXTURE}")
    G, info = load_generator(str(FIXTURE), torch.device("cpu"))
    return LoadedModel(G, info, str(FIXTURE), torch.device("cpu"))


def _camera(model, d_yaw: float = 0.3) -> OrbitCamera:
    cam = preset("mean", model.cfg.camera)
    cam.yaw, cam.pitch = cam.yaw + d_yaw, cam.pitch - 0.1
    return cam


def _reference(model, cam: OrbitCamera, seed: int, q: Quality, psi: float = 1.0, pose=None):
    """core's own render of the view (an independent oracle: mapping, planes, G.render)."""
    G = model.G
    with torch.no_grad():
        w = G.mapping(z_from_seed(seed, G.cfg.generator.z_dim), psi=psi, pose=pose)
        cams = camlib.from_angles(cam.yaw, cam.pitch, cam.radius, cam.fov_deg, tuple(cam.look_at), cfg=G.cfg.camera)
        out = G.render(G.planes(w), cams, resolution=q.resolution, num_coarse=q.num_coarse, num_fine=q.num_fine,
                       w=w, neural_res=q.neural_res)
    return w, out


def test_full_frame_is_g_render(model):
    """The worker's first full-quality frame is G.render's image of the same camera, bit for bit."""
    cam = _camera(model)
    req = RenderRequest(model, LatentSpec.from_seed(3, psi=0.8), ViewSpec(cam, "rgb", RES))
    worker = RenderWorker(RenderEngine().render)
    try:
        worker.submit(req)
        assert worker.wait_idle(120)
        res = worker.poll()
    finally:
        worker.close()
    assert worker.error is None and res is not None and res.quality.level == "full"
    g = model.cfg.generator
    assert res.quality == Quality(RES, model.cfg.render.num_coarse, model.cfg.render.num_fine, "full", g.neural_res)
    w, ref = _reference(model, cam, 3, res.quality, psi=0.8)
    assert torch.equal(res.w, w)
    assert np.array_equal(res.image, image_to_uint8(ref["image"][0]))
    assert np.array_equal(res.raw, image_to_uint8(ref["image_raw"][0]))
    assert np.array_equal(res.depth, ref["depth"][0, 0].numpy())
    assert np.array_equal(res.opacity, ref["opacity"][0, 0].numpy())


def test_frame_sizes_and_pictures(model):
    """rgb at the view's resolution; raw, depth, opacity at the neural one; every picture at the view's."""
    cam = _camera(model, -0.2)
    req = RenderRequest(model, LatentSpec.from_seed(1), ViewSpec(cam, "rgb", RES))
    res = RenderEngine().render(req, full_quality(model, req.view))
    nr = model.cfg.generator.neural_res
    assert res.image.shape == (RES, RES, 3) and res.raw.shape == (nr, nr, 3)
    assert res.depth.shape == res.opacity.shape == (nr, nr)
    assert res.image.std() > 5 and res.raw.std() > 2  # not blank
    assert res.depth.std() > 1e-3 and np.isfinite(res.depth).all()
    assert res.near <= res.depth.min() and res.depth.max() <= res.far + 1e-4
    assert 0 <= res.opacity.min() and res.opacity.max() <= 1 and res.opacity.std() > 1e-3
    pics = {}
    for name, rs in {"rgb": RenderState(), "raw": RenderState(raw_image=True), "depth": RenderState(mode="depth"),
                     "opacity": RenderState(mode="opacity")}.items():
        pics[name] = picture(res, rs)
        assert pics[name].shape == (RES, RES, 3) and pics[name].dtype == np.uint8 and pics[name].std() > 2, name
    assert np.array_equal(pics["rgb"], res.image)
    assert np.array_equal(pics["raw"], upsampled(res.raw, RES))
    assert not np.array_equal(pics["raw"], pics["rgb"])
    assert np.array_equal(picture(res, RenderState(mode="depth", raw_image=True)), pics["depth"])  # raw: RGB only


def test_moving_frames_use_a_lower_neural_resolution(model):
    """Interactive requests: half the neural resolution (at least 16), fewer samples, the same output
    size, and the neural render alone (the super-resolution waits for the camera to stop)."""
    cam = _camera(model)
    worker = RenderWorker(RenderEngine().render)
    try:
        req = RenderRequest(model, LatentSpec.from_seed(0), ViewSpec(cam, "rgb", RES), interactive=True)
        (q,) = worker.plan(req)
        rc, nr = model.cfg.render, model.cfg.generator.neural_res
        assert q.level == "preview" and q.resolution == RES and q.neural_res == max(16, nr // 2) < nr
        assert q.num_coarse < rc.num_coarse and q.num_fine < rc.num_fine
        worker.submit(req)
        assert worker.wait_idle(120)
        res = worker.poll()
    finally:
        worker.close()
    assert res.quality == q and res.image.shape == (RES, RES, 3) and res.depth.shape == (q.neural_res,) * 2
    _, ref = _reference(model, cam, 0, q)
    # no super-resolution while moving: the neural render's raw image, upsampled to the view
    raw_up = torch.nn.functional.interpolate(ref["image_raw"], size=(RES, RES), mode="bilinear", align_corners=False)
    assert np.array_equal(res.image, image_to_uint8(raw_up[0]))
    assert not np.array_equal(res.image, image_to_uint8(ref["image"][0]))
    assert preview_neural_res(16) == 16 and preview_neural_res(24) == 16 and preview_neural_res(128) == 64


def test_conditioning_pose_follows_the_camera_only_when_asked(model):
    """pose_mode 'mean' (default): w ignores the render camera and is EG3D's frontal-camera w;
    'camera': w follows the camera (what app.latent_spec builds from the state)."""
    g = model.cfg.generator
    assert g.pose_cond and LatentState().pose_mode == "mean"
    eng = RenderEngine()
    cams = [_camera(model, 0.0), _camera(model, 0.4)]

    def ws(lat: LatentState):
        specs = [lat.spec(g.c_dim, g.pose_cond, (c.yaw, c.pitch)) for c in cams]
        return specs, [eng.planes(model, s)[1] for s in specs]

    specs, (w0, w1) = ws(LatentState(seed=5))
    assert specs[0] == specs[1] and torch.equal(w0, w1)
    with torch.no_grad():
        assert torch.equal(w0, model.G.mapping(z_from_seed(5, g.z_dim)))
        front = torch.tensor([[math.pi / 2, math.pi / 2]])  # the camera prior's mean: EG3D's frontal camera
        assert torch.allclose(w0, model.G.mapping(z_from_seed(5, g.z_dim), pose=front))
    specs, (c0, c1) = ws(LatentState(seed=5, pose_mode="camera"))
    assert specs[0] != specs[1] and (c0 - c1).abs().max() > 1e-3
    with torch.no_grad():
        pose = torch.tensor([[cams[1].yaw, cams[1].pitch]], dtype=torch.float32)
        assert torch.equal(c1, model.G.mapping(z_from_seed(5, g.z_dim), pose=pose))


def test_normals_from_depth_of_a_sphere():
    """depth_normals on the analytic depth of a sphere gives the sphere's normals (camera frame)."""
    cams = camlib.from_angles(0.7, 1.2, 2.5, 30.0, (0.0, 0.0, 0.0), cfg=CameraConfig())
    r, radius = 64, 0.6
    o, d = make_rays(cams, r)
    b = (o * d).sum(-1)
    disc = b**2 - ((o * o).sum(-1) - radius**2)
    hit = disc > 0
    t = torch.where(hit, -b - disc.clamp(min=0).sqrt(), torch.full_like(b, 10.0))
    n = depth_normals(cams, t.reshape(1, 1, r, r))[0]  # [3, r, r]
    p = o + d * t[..., None]
    expected = (p / radius) @ cams.cam2world[0, :3, :3]  # world normals -> camera frame
    expected = expected.reshape(r, r, 3).permute(2, 0, 1)
    inner = (disc > 0.05 * radius**2).reshape(r, r)  # away from the silhouette's depth jump
    inner &= torch.nn.functional.max_pool2d((~inner).float()[None], 3, 1, 1)[0] == 0
    cos = (n * expected).sum(0)[inner]
    assert inner.sum() > 300 and cos.min() > 0.99
    assert (n[2][inner] > 0).all()  # towards the camera: +z in the camera frame


def test_normals_mode_and_no_baked_preview(model):
    cam = _camera(model)
    req = RenderRequest(model, LatentSpec.from_seed(0), ViewSpec(cam, "normals", RES))
    res = RenderEngine().render(req, full_quality(model, req.view))
    assert res.image.shape == (RES, RES, 3) and res.image.std() > 2
    app = SimpleNamespace(model=model, options=SimpleNamespace(screenshot=None),
                          state=SimpleNamespace(render=RenderState(), mesh=SimpleNamespace(show_mesh=False)))
    assert not BakeController(app).enabled()
    app.model = SimpleNamespace(eg3d=False)
    assert BakeController(app).enabled()  # the same state with an EpiGRAF model bakes


def test_png_frames_export_of_the_raw_image(model, tmp_path):
    """An orbit export renders whole EG3D frames at the export's size; with the raw toggle on, the
    frames are the raw neural image upsampled."""
    from PIL import Image

    from viewer.export import ExportJob, plan_video
    from viewer.state import ExportState

    cam = _camera(model)
    req = RenderRequest(model, LatentSpec.from_seed(2), ViewSpec(cam, "rgb", RES))
    e = ExportState(out_dir=str(tmp_path), kind="orbit", frames=2, resolution=48, mp4=False, png_frames=True)
    job = ExportJob(RenderEngine(), req, RenderState(raw_image=True), e,
                    plan_video("orbit", cam, req.latent, model.cfg.camera, 2)).start()
    job.wait(120)
    assert job.finished and job.error is None and job.done_frames == 2
    first = np.asarray(Image.open(job.outputs[0] / "frame0000.png").convert("RGB"))
    q = full_quality(model, ViewSpec(cam, "rgb", 48))
    _, ref = _reference(model, cam, 2, q)
    assert first.shape == (48, 48, 3) and np.array_equal(first, upsampled(image_to_uint8(ref["image_raw"][0]), 48))


def test_raw_on_the_command_line(monkeypatch, tmp_path):
    import run_viewer

    monkeypatch.setenv("EPIGRAF_STUDIO_CONFIG_DIR", str(tmp_path))
    for argv, raw in (([], False), (["--raw"], True)):
        args = run_viewer.build_parser().parse_args([str(FIXTURE), "--screenshot", str(tmp_path / "s.png"), *argv])
        state, _ = run_viewer.build_state(args, torch.device("cpu"), (800, 600))
        assert state.render.raw_image is raw and state.render.mode == "rgb"


def test_camera_presets_follow_the_family_front():
    """Front is EG3D's frontal camera (+z) for EG3D models and +x for EpiGRAF ones."""
    import math

    from core.config import get_preset
    from viewer.camera import preset
    cam = get_preset("eg3d_ffhq512").camera
    front = preset("front", cam, "eg3d").to_cameras(cam)
    assert abs(float(front.origins[0, 2]) - (cam.look_at[2] + cam.radius)) < 1e-5  # on +z of the look-at
    side = preset("side", cam, "eg3d")
    assert abs(side.yaw - math.pi) < 1e-9
    ep = get_preset("demo").camera
    assert abs(float(preset("front", ep).to_cameras(ep).origins[0, 0]) - ep.radius) < 1e-5  # +x
