"""Exports: video plans (orbit / interpolation / both), the background job with progress and abort, pictures."""

import math

import numpy as np
import pytest
from viewer_testlib import tiny_model

from core.errors import UserError
from viewer import colormaps
from viewer.camera import OrbitCamera
from viewer.export import ExportJob, camera_path, picture, plan_video
from viewer.latent import Keyframe, LatentSpec
from viewer.rendering import Quality, RenderEngine, RenderRequest, ViewSpec
from viewer.state import ExportState, RenderState

MODEL = tiny_model()


def test_camera_path_starts_at_the_view_and_turns():
    cfg = MODEL.cfg.camera  # whole-sphere prior: a full turn
    cam = OrbitCamera(0.3, 1.2, 1.1, 25.0)
    path = camera_path(cam, cfg, 8)
    assert path[0].key() == cam.key()
    steps = [(b.yaw - a.yaw) % (2 * math.pi) for a, b in zip(path, path[1:])]
    assert steps == pytest.approx([2 * math.pi / 8] * 7)
    assert all(c.pitch == pytest.approx(1.2) and c.radius == 1.1 for c in path)


def test_plans():
    keys = (Keyframe(seed=0), Keyframe(seed=1), Keyframe(seed=2))
    spec = LatentSpec(keys)
    cam = OrbitCamera()
    interp = plan_video("interp", cam, spec, MODEL.cfg.camera, 5)
    assert [s.t for _, s in interp.frames] == [0, 0.25, 0.5, 0.75, 1.0]
    assert all(c is cam for c, _ in interp.frames)
    both = plan_video("interp-orbit", cam, spec, MODEL.cfg.camera, 4)
    assert len({c.yaw for c, _ in both.frames}) == 4 and both.frames[-1][1].t == 1.0
    looped = plan_video("interp", cam, LatentSpec(keys, loop=True), MODEL.cfg.camera, 4)
    assert [s.t for _, s in looped.frames] == [0, 0.25, 0.5, 0.75]
    with pytest.raises(UserError):
        plan_video("interp", cam, LatentSpec.from_seed(0), MODEL.cfg.camera, 4)


def _job(tmp_path, kind="orbit", frames=4, **export):
    spec = LatentSpec((Keyframe(seed=0), Keyframe(seed=1)))
    req = RenderRequest(MODEL, spec, ViewSpec(OrbitCamera(), "rgb", 16))
    e = ExportState(out_dir=str(tmp_path), kind=kind, frames=frames, fps=10, resolution=16, **export)
    return ExportJob(RenderEngine(), req, RenderState(), e, plan_video(kind, req.view.camera, spec,
                                                                        MODEL.cfg.camera, frames))


def test_video_job_writes_mp4_and_frames(tmp_path):
    job = _job(tmp_path, "interp-orbit", png_frames=True).start()
    job.wait(60)
    assert job.finished and job.error is None and not job.aborted
    assert job.done_frames == 4 and job.progress == 1.0
    mp4 = [p for p in job.outputs if p.suffix == ".mp4"][0]
    frames_dir = [p for p in job.outputs if p.is_dir()][0]
    assert mp4.stat().st_size > 0 and len(list(frames_dir.glob("frame*.png"))) == 4


def test_video_job_abort(tmp_path):
    job = _job(tmp_path, frames=500, mp4=False, png_frames=True)
    job.abort()
    job.start().wait(30)
    assert job.finished and job.aborted and job.done_frames < 500


def test_picture_modes():
    req = RenderRequest(MODEL, LatentSpec.from_seed(0), ViewSpec(OrbitCamera(), "rgb", 16))
    r = RenderEngine().render(req, Quality(16, 8, 8))
    assert picture(r, RenderState(mode="rgb")) is r.image
    op = picture(r, RenderState(mode="opacity"))
    assert np.array_equal(op[..., 0], np.round(np.clip(r.opacity, 0, 1) * 255).astype(np.uint8))
    dep = picture(r, RenderState(mode="depth", colormap="grey", auto_range=False, depth_range=[0.5, 1.5]))
    expected = np.round((1 - np.clip(r.depth - 0.5, 0, 1)) * 255)
    assert np.abs(dep[..., 0].astype(int) - expected).max() <= 1  # near = white, like core's depth_to_uint8


def test_colormaps():
    for name in ("turbo", "viridis", "inferno", "grey"):
        t = colormaps.lut(name)
        assert t.shape == (256, 3) and t.dtype == np.uint8
    v = colormaps.lut("viridis").astype(int)  # the polynomial fit is within a few levels of matplotlib's ends
    assert np.abs(v[0] - (68, 1, 84)).max() <= 4 and np.abs(v[-1] - (253, 231, 37)).max() <= 5
    with pytest.raises(ValueError):
        colormaps.lut("jet")
