"""Export panel: screenshot PNG; orbit / interpolation / interpolate-while-orbiting videos with progress."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imgui_bundle import imgui

from core.errors import UserError

from ..export import ExportJob, plan_video
from ..state import EXPORT_KINDS, RESOLUTIONS
from .common import combo, hint, message

if TYPE_CHECKING:
    from ..app_api import ViewerApi

KIND_LABELS = {"orbit": "orbit", "interp": "interpolation", "interp-orbit": "interpolate while orbiting"}


def draw(app: ViewerApi) -> None:
    e = app.state.export
    _, e.out_dir = imgui.input_text("folder", e.out_dir)
    if imgui.button("Save screenshot (Ctrl+S)"):
        app.save_screenshot_async()
    hint("the current view at full quality, as the viewport shows it (PNG)")
    imgui.separator_text("Video")
    labels = [KIND_LABELS[k] for k in EXPORT_KINDS]
    _, label = combo("kind", KIND_LABELS[e.kind], labels)
    e.kind = EXPORT_KINDS[labels.index(label)]
    _, e.frames = imgui.input_int("frames", e.frames)
    e.frames = max(1, min(e.frames, 10000))
    _, e.fps = imgui.input_int("fps", e.fps)
    e.fps = max(1, min(e.fps, 120))
    opts = [str(x) for x in sorted({*RESOLUTIONS, int(e.resolution)})]
    _, res = combo("resolution", str(e.resolution), opts)
    e.resolution = int(res)
    _, e.mp4 = imgui.checkbox("mp4", e.mp4)
    imgui.same_line()
    _, e.png_frames = imgui.checkbox("PNG frames", e.png_frames)
    job = app.export_job
    running = job is not None and not job.finished
    if running:
        imgui.progress_bar(job.progress, imgui.ImVec2(-1, 0), f"{job.done_frames} / {job.total}")
        if imgui.button("Abort"):
            job.abort()
    elif imgui.button("Start video export"):
        _start(app)
    if job is not None and job.finished:
        if job.error:
            message(f"export failed: {job.error}")
        elif job.aborted:
            message(f"aborted after {job.done_frames} frames")
        else:
            message("wrote " + ", ".join(str(p) for p in job.outputs))
    message(app.messages.get("export"))


def _start(app: ViewerApi) -> None:
    e = app.state.export
    req = app.current_request()
    if req is None:
        app.messages["export"] = "no model loaded"
        return
    if not (e.mp4 or e.png_frames):
        app.messages["export"] = "choose mp4 and/or PNG frames"
        return
    lat = app.state.latent
    spec = req.latent
    if e.kind != "orbit" and not (lat.interp and len(lat.keyframes) >= 2):
        spec = app.state.latent.spec(app.model.cfg.generator.c_dim, app.model.cfg.generator.pose_cond)
        spec = type(spec)(lat.keyframe_objects(), 0.0, lat.mode, lat.loop, spec.psi, spec.class_idx, spec.pose)
    try:
        plan = plan_video(e.kind, req.view.camera, spec, app.model.cfg.camera, e.frames)
    except UserError as err:
        app.messages["export"] = str(err)
        return
    from dataclasses import replace

    app.messages.pop("export", None)
    app.export_job = ExportJob(app.engine, req, replace(app.state.render), replace(e), plan).start()
